// The two roles the balancer depends on and Kubernetes fills: who leads, and what the leader does to the cluster.

/// Who acts: only the leader reweights, publishes the ring, scales and sets deletion costs (SYSTEM §3). Without
/// Kubernetes this replica always leads; the Kubernetes-backed implementation holds a `coordination.k8s.io/v1` Lease.
///
/// Loop thread only: `start`, `stop` and every `onChange` call happen on the balancer's loop thread.
public protocol Leadership: AnyObject {
    /// Whether this replica may act now. A leader that could not renew in time reads `false` before its lease can
    /// be taken by another replica.
    var isLeader: Bool { get }
    /// Told each change of `isLeader`, with the new value.
    var onChange: ((Bool) -> Void)? { get set }
    func start()
    func stop()
}

/// Leadership without Kubernetes: this replica leads from `start()` until `stop()` (SYSTEM §3, local runs).
public final class AlwaysLeader: Leadership {
    public private(set) var isLeader = false
    public var onChange: ((Bool) -> Void)?

    public init() {}

    public func start() {
        guard !isLeader else { return }
        isLeader = true
        onChange?(true)
    }

    public func stop() {
        guard isLeader else { return }
        isLeader = false
        onChange?(false)
    }
}

/// Why an action on the cluster failed: `status` is the HTTP status of the API's answer when there was one.
public struct ClusterError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var status: Int?

    public init(_ message: String, status: Int? = nil) {
        self.message = message
        self.status = status
    }

    public var description: String { status.map { "\(message) (HTTP \($0))" } ?? message }
}

/// What the leader does to the cluster. Completions run on the balancer's loop thread.
public protocol ClusterActions: AnyObject {
    /// Sets the socket Deployment's replica count (its `scale` subresource). Called only with `SCALE_MODE=direct`.
    func setReplicas(_ replicas: Int, _ done: @escaping (Result<Void, ClusterError>) -> Void)
    /// Sets `controller.kubernetes.io/pod-deletion-cost` on each socket pod: pod name → live connections, so a
    /// scale-in removes the least-loaded pods first.
    func setDeletionCosts(_ costs: [String: Int], _ done: @escaping (Result<Void, ClusterError>) -> Void)
}

/// No cluster (local runs): records the calls and succeeds without doing anything. Tests read the record.
public final class NoCluster: ClusterActions {
    /// One call, in order.
    public enum Call: Equatable, Sendable {
        case setReplicas(Int)
        case setDeletionCosts([String: Int])
    }

    public private(set) var calls: [Call] = []
    /// Calls kept at most (the oldest are dropped), so a long local run does not grow without bound.
    public let limit: Int

    public init(limit: Int = 1000) { self.limit = limit }

    public func setReplicas(_ replicas: Int, _ done: @escaping (Result<Void, ClusterError>) -> Void) {
        record(.setReplicas(replicas))
        done(.success(()))
    }

    public func setDeletionCosts(_ costs: [String: Int], _ done: @escaping (Result<Void, ClusterError>) -> Void) {
        record(.setDeletionCosts(costs))
        done(.success(()))
    }

    private func record(_ call: Call) {
        if calls.count >= limit { calls.removeFirst(calls.count - limit + 1) }
        calls.append(call)
    }
}
