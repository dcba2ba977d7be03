// rtc-balancer: reads the settings, starts the balancer on one event loop, serves until SIGTERM or SIGINT.
import Balancer
import EventLoop
import Foundation
import HTTPServer
import Kube
import Metrics
import Resolver
import Sys

let version = "0.1.0"

let usage = """
    usage: rtc-balancer [options]
           rtc-balancer --help | --version

    The balancer of Reactive RTC: assigns clients to socket nodes by weighted rendezvous hashing over the ring;
    the leader builds that ring from the nodes' Redis heartbeats, publishes it signed (Redis and Kafka), scales the
    socket Deployment and keeps each socket pod's deletion cost equal to its live connections.
    In a pod (KUBERNETES_SERVICE_HOST, the service-account token and CA) or with KUBE_API_URL (plus KUBE_TOKEN and
    KUBE_CA_FILE), the replicas elect a leader on the Lease and the leader acts through the API. Without
    Kubernetes this replica leads and cluster actions are logged only.

    Every option can also be given by its environment variable (the option wins):
    \(BalancerConfiguration.helpText)

    endpoints (on the HTTP port):
      GET /ws/connect?clientId=ID   {"socketNodeId","url","ringVersion"}; 400 or 503 with {"error","message"}
      GET /api/v1/ring              the signed ring in force
      GET /healthz, GET /readyz, GET /metrics

    RTC_EVENTS=auto|epoll|io_uring picks the event loops' readiness backend (default epoll).

    signals: SIGTERM and SIGINT stop the balancer (leadership is given up first).

    """

func fail(_ message: String, status: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("rtc-balancer: \(message)\n".utf8))
    exit(status)
}

func say(_ message: String) {
    FileHandle.standardOutput.write(Data("\(message)\n".utf8))
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("--help") || arguments.contains("-h") {
    say(usage)
    exit(0)
}
if arguments.contains("--version") {
    say("rtc-balancer \(version)")
    exit(0)
}
let configuration: BalancerConfiguration
switch BalancerConfiguration.parse(arguments: arguments, environment: ProcessInfo.processInfo.environment) {
case .success(let value): configuration = value
case .failure(let error): fail("\(error)")
}

/// Cluster actions without Kubernetes: logged, not applied.
final class LoggedCluster: ClusterActions {
    func setReplicas(_ replicas: Int, _ done: @escaping (Result<Void, ClusterError>) -> Void) {
        say("rtc-balancer: no Kubernetes: would scale \(configuration.socketDeployment) to \(replicas)")
        done(.success(()))
    }

    func setDeletionCosts(_ costs: [String: Int], _ done: @escaping (Result<Void, ClusterError>) -> Void) {
        let text = costs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        say("rtc-balancer: no Kubernetes: deletion costs \(text)")
        done(.success(()))
    }
}

Signals.ignoreBrokenPipe()
let loop: EventLoop
let balancer: Balancer
do {
    loop = try EventLoop()
    let metrics = try BalancerMetrics()
    let resolver = try Resolver(loop: loop, configuration: ResolverConfiguration.system())
    var environment = ProcessInfo.processInfo.environment
    if !configuration.kubeAPIURL.isEmpty { environment["KUBE_API_URL"] = configuration.kubeAPIURL }
    let leadership: any Leadership
    let cluster: any ClusterActions
    if let endpoint = KubeEndpoint.fromEnvironment(environment) {
        // Kubernetes: the Lease decides who leads; the leader scales and sets deletion costs through the API.
        let client = try KubeClient(loop: loop, endpoint: endpoint, resolver: resolver, environment: environment)
        client.userAgent = configuration.podName
        client.onCall = { verb, status in metrics.kubeAPICall(verb: verb, success: (200..<300).contains(status)) }
        let lease = LeaseLeadership(
            client: client, namespace: configuration.namespace, name: configuration.leaseName,
            identity: configuration.podName)
        lease.onError = { error in say("rtc-balancer: lease \(configuration.leaseName): \(error)") }
        leadership = lease
        cluster = KubeCluster(
            client: client, namespace: configuration.namespace, deployment: configuration.socketDeployment)
        say(
            "rtc-balancer: Kubernetes API \(client.baseURL); leader election on lease \(configuration.leaseName) as \(configuration.podName)"
        )
    } else {
        leadership = AlwaysLeader()
        cluster = LoggedCluster()
        say("rtc-balancer: no Kubernetes API (KUBE_API_URL or KUBERNETES_SERVICE_HOST): this replica leads alone")
    }
    balancer = try Balancer(
        configuration: configuration, loop: loop, metrics: metrics, resolver: resolver, leadership: leadership,
        cluster: cluster)
} catch {
    fail("cannot start: \(error)", status: 1)
}

var router = Router()
balancer.install(in: &router)
AdminEndpoints.install(in: &router, registry: balancer.metrics.registry, readiness: balancer.readiness)
let server = HTTPServer(router: router)
let bound: SocketAddress
do {
    guard let address = SocketAddress(host: configuration.bindAddress, port: configuration.httpPort) else {
        fail("BIND_ADDRESS \(configuration.bindAddress) is not an address")
    }
    bound = try server.listen(on: loop, address: address)
} catch {
    fail("cannot listen on \(configuration.bindAddress):\(configuration.httpPort): \(error)", status: 1)
}
say(
    "rtc-balancer \(version): \(configuration.podName) in \(configuration.namespace), listening on \(bound) "
        + "(/ws/connect, /api/v1/ring, /healthz, /readyz, /metrics)")
say(
    "rtc-balancer: redis \(configuration.redisURL), kafka \(configuration.kafkaBootstrap), scale mode "
        + "\(configuration.scaleMode.rawValue) (\(configuration.minSocketReplicas)..\(configuration.maxSocketReplicas)), "
        + "url form \(configuration.urlForm.rawValue), round every \(configuration.reconcileIntervalSeconds) s")
say("rtc-balancer: \(EventsBackend.processDefault.logLine()) (RTC_EVENTS)")

/// SIGTERM/SIGINT on the loop: give up leadership, close the clients, stop.
final class SignalWatcher: EventHandler {
    let fd: FileDescriptor
    init(fd: FileDescriptor) { self.fd = fd }

    func ready(_ events: ReadyEvents) {
        _ = fd.drainEvent()
        for signal in Signals.takePending() {
            say("rtc-balancer: signal \(signal): stopping")
            server.stop()
            balancer.shutdown { loop.stop() }
            return
        }
    }

    func loopStopping() {}
}

do {
    let signals = try Signals.notify([Signals.terminate, Signals.interrupt])
    _ = try loop.register(signals, interest: .readable, handler: SignalWatcher(fd: signals))
    try balancer.start()
} catch {
    fail("cannot start: \(error)", status: 1)
}
do {
    try loop.run()
} catch {
    fail("event loop failed: \(error)", status: 1)
}
say("rtc-balancer: stopped")
exit(0)
