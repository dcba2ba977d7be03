// The Kubernetes-backed roles: leadership from a coordination.k8s.io/v1 Lease, cluster actions through the API.
import Kube

/// Leadership held through a Lease (SYSTEM §3): `LeaderElector` renews it and steps down before it can expire.
public final class LeaseLeadership: Leadership {
    private let elector: LeaderElector
    public var onChange: ((Bool) -> Void)?
    public var isLeader: Bool { elector.isLeader }

    /// `identity` is this replica's pod name; `name` the Lease's.
    public init(client: KubeClient, namespace: String, name: String, identity: String) {
        let configuration = LeaderElection.Configuration(identity: identity, namespace: namespace, name: name)
        elector = LeaderElector(client: client, configuration: configuration)
        elector.onLeadershipChange = { [unowned self] leading in self.onChange?(leading) }
    }

    public var onError: ((KubeError) -> Void)? {
        get { elector.onError }
        set { elector.onError = newValue }
    }

    public func start() { elector.start() }

    /// Steps down at once and clears the Lease's holder, so another replica need not wait for it to expire.
    public func stop() { elector.release {} }
}

/// Cluster actions through the Kubernetes API: the socket Deployment's `scale` subresource and each socket pod's
/// `controller.kubernetes.io/pod-deletion-cost` annotation.
public final class KubeCluster: ClusterActions {
    public static let deletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"
    private let client: KubeClient
    private let namespace: String
    private let deployment: String

    public init(client: KubeClient, namespace: String, deployment: String) {
        self.client = client
        self.namespace = namespace
        self.deployment = deployment
    }

    public func setReplicas(_ replicas: Int, _ done: @escaping (Result<Void, ClusterError>) -> Void) {
        client.setScale(namespace: namespace, deployment: deployment, replicas: replicas) { result in
            switch result {
            case .success: done(.success(()))
            case .failure(let error): done(.failure(ClusterError(error.description, status: error.status)))
            }
        }
    }

    /// Annotates every pod named in `costs`; `done` runs once, after the last answer, with the first failure.
    public func setDeletionCosts(_ costs: [String: Int], _ done: @escaping (Result<Void, ClusterError>) -> Void) {
        guard !costs.isEmpty else {
            done(.success(()))
            return
        }
        var left = costs.count
        var failure: ClusterError?
        for (pod, cost) in costs.sorted(by: { $0.key < $1.key }) {
            client.annotatePod(
                namespace: namespace, name: pod, key: KubeCluster.deletionCostAnnotation, value: String(cost)
            ) {
                result in
                if case .failure(let error) = result, failure == nil {
                    failure = ClusterError("pod \(pod): \(error)", status: error.status)
                }
                left -= 1
                if left == 0 { done(failure.map { .failure($0) } ?? .success(())) }
            }
        }
    }
}
