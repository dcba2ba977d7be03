// The balancer's metric families (SYSTEM §3): `rtc_balancer_*` plus `process_*`.
import HTTPServer
import Metrics

/// Handles of every balancer metric, registered once per process.
public final class BalancerMetrics: Sendable {
    public let registry: Registry
    let isLeader: Gauge
    let ringVersion: Gauge
    let ringNodes: GaugeFamily
    let desiredReplicas: Gauge
    /// `assignments_total{result="assigned"}`, looked up once.
    let assigned: Counter
    let assignments: CounterFamily
    let published: Counter
    let ringUpdates: CounterFamily
    let scalingDecisions: CounterFamily
    let kubeAPICalls: CounterFamily
    let heartbeatsSkipped: CounterFamily
    let heartbeatRounds: CounterFamily
    let rerouted: CounterFamily
    let topicDeletions: CounterFamily

    /// Outcomes of ring updates received from Redis or Kafka.
    enum RingOutcome: String, CaseIterable {
        case applied
        case stale
        case badSignature = "bad_signature"
        case malformed
    }

    /// What happened to one record of a departed node's delivery topic.
    enum RerouteOutcome: String, CaseIterable {
        case rerouted
        /// No node in the ring may take the recipient (the record stays in the recipient's inbox).
        case noOwner = "no_owner"
        case malformed
        case failed
    }

    /// A registry of its own with the balancer's families and `process_*`.
    public convenience init() throws(RegistrationError) {
        let registry = Registry(shards: 1)
        try self.init(registry: registry)
        try ProcessMetrics.register(in: registry)
    }

    public init(registry: Registry) throws(RegistrationError) {
        self.registry = registry
        isLeader = try registry.gauge("rtc_balancer_is_leader", help: "1 while this replica leads.")
        ringVersion = try registry.gauge("rtc_balancer_ring_version", help: "Version of the newest valid ring held.")
        ringNodes = try registry.gauge(
            "rtc_balancer_ring_nodes", help: "Socket nodes in the ring held, by state.", labelNames: ["state"])
        desiredReplicas = try registry.gauge(
            "rtc_balancer_desired_socket_replicas", help: "Socket replicas the leader wants (KEDA's input).")
        assignments = try registry.counter(
            "rtc_balancer_assignments_total", help: "Answers to /ws/connect, by result.", labelNames: ["result"])
        assigned = assignments.labels("assigned")
        published = try registry.counter(
            "rtc_balancer_ring_updates_published_total", help: "Ring updates this replica published as leader.")
        ringUpdates = try registry.counter(
            "rtc_balancer_ring_updates_total", help: "Ring updates read from Redis or Kafka, by outcome.",
            labelNames: ["outcome"])
        scalingDecisions = try registry.counter(
            "rtc_balancer_scaling_decisions_total", help: "Scaling decisions of the leader, by direction and reason.",
            labelNames: ["direction", "reason"])
        kubeAPICalls = try registry.counter(
            "rtc_balancer_kube_api_calls_total", help: "Kubernetes API calls, by verb and result.",
            labelNames: ["verb", "result"])
        heartbeatsSkipped = try registry.counter(
            "rtc_balancer_heartbeats_skipped_total", help: "Heartbeats refused, by reason.", labelNames: ["reason"])
        heartbeatRounds = try registry.counter(
            "rtc_balancer_heartbeat_reads_total", help: "Rounds of heartbeat reads, by result.", labelNames: ["result"])
        rerouted = try registry.counter(
            "rtc_balancer_rerouted_records_total", help: "Records of departed nodes' delivery topics, by outcome.",
            labelNames: ["outcome"])
        topicDeletions = try registry.counter(
            "rtc_balancer_topic_deletions_total",
            help: "Delivery topics of departed nodes deleted after their re-route, by result.", labelNames: ["result"])
        for state in ["active", "draining", "unready"] { ringNodes.labels(state).set(0) }
        for outcome in ["assigned", "bad_client_id", "no_node", "no_address"] { _ = assignments.labels(outcome) }
        for outcome in RingOutcome.allCases { _ = ringUpdates.labels(outcome.rawValue) }
        for reason in ["malformed", "mismatch", "unaddressable", "too_many"] { _ = heartbeatsSkipped.labels(reason) }
        for result in ["ok", "failed"] { _ = heartbeatRounds.labels(result) }
        for outcome in RerouteOutcome.allCases { _ = rerouted.labels(outcome.rawValue) }
        for result in ["deleted", "failed"] { _ = topicDeletions.labels(result) }
        for verb in ["get", "list", "create", "update", "patch"] {
            for result in ["success", "failure"] { _ = kubeAPICalls.labels(verb, result) }
        }
    }

    /// Counts one Kubernetes API call. Kubernetes-backed `Leadership` and `ClusterActions` report their calls here.
    public func kubeAPICall(verb: String, success: Bool) {
        kubeAPICalls.labels(verb, success ? "success" : "failure").increment()
    }

    func ringUpdate(_ outcome: RingOutcome) { ringUpdates.labels(outcome.rawValue).increment() }
    func reroute(_ outcome: RerouteOutcome, by count: Int = 1) {
        rerouted.labels(outcome.rawValue).increment(by: UInt64(count))
    }
}
