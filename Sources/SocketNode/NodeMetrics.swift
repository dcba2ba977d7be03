// The socket node's metric families (SYSTEM §4): `rtc_socket_*` plus `process_*`.
import Metrics

/// Handles of every socket-node metric, registered once per process.
public final class NodeMetrics: Sendable {
    public let registry: Registry
    let connections: Gauge
    let draining: Gauge
    let messagesIn: Counter
    private let out: CounterFamily
    /// The children of `out` and `dropFamily`, looked up once (in `allCases` order): no label lookup per message.
    private let outByPath: [Counter]
    private let dropsByReason: [Counter]
    let deliveryLatency: Histogram
    let kafkaPublishLatency: Histogram
    private let dropFamily: CounterFamily
    let resumes: Counter
    let ringVersion: Gauge
    let deliveryPartitions: Gauge
    private let ringUpdateFamily: CounterFamily
    let moves: Counter
    let heartbeats: Counter

    /// Where a message went after it was stored.
    enum Path: String, CaseIterable {
        /// Pushed to a session on the accepting node.
        case local
        /// Handed to Kafka for the node the ring names.
        case relay
        /// No live push: the recipient is offline (the inbox keeps it).
        case buffered
        /// Read from the inbox by a session (resume or gap fill).
        case replay
    }

    /// Why something was not delivered or accepted (never silently).
    enum DropReason: String, CaseIterable {
        case duplicate
        case storeUnavailable = "store_unavailable"
        case badFrame = "bad_frame"
        case relayFailed = "relay_failed"
        case recipientGone = "recipient_gone"
        case slowConsumer = "slow_consumer"
        case idleTimeout = "idle_timeout"
        case unauthorized
    }

    enum RingOutcome: String, CaseIterable {
        case applied
        case stale
        case badSignature = "bad_signature"
        case malformed
    }

    public init(registry: Registry) throws(RegistrationError) {
        self.registry = registry
        connections = try registry.gauge("rtc_socket_connections", help: "Open WebSocket sessions.")
        draining = try registry.gauge("rtc_socket_draining", help: "1 while the node drains.")
        messagesIn = try registry.counter("rtc_socket_messages_in_total", help: "Messages received from clients.")
        out = try registry.counter(
            "rtc_socket_messages_out_total", help: "Stored messages by delivery path.", labelNames: ["path"])
        deliveryLatency = try registry.histogram(
            "rtc_socket_delivery_latency_seconds", help: "From acceptance to the live push to the recipient.",
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
        kafkaPublishLatency = try registry.histogram(
            "rtc_socket_kafka_publish_latency_seconds", help: "From produce to the delivery report.",
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
        dropFamily = try registry.counter(
            "rtc_socket_drops_total", help: "Messages refused or pushes not made, by reason.", labelNames: ["reason"])
        resumes = try registry.counter("rtc_socket_resumes_total", help: "Sessions opened with a resumeOffset.")
        ringVersion = try registry.gauge("rtc_socket_ring_version", help: "Version of the ring in force.")
        deliveryPartitions = try registry.gauge(
            "rtc_socket_delivery_partitions",
            help: "Partitions of this node's delivery topic assigned to its consumer (0 until its group is joined).")
        ringUpdateFamily = try registry.counter(
            "rtc_socket_ring_updates_total", help: "Ring updates received, by outcome.", labelNames: ["outcome"])
        moves = try registry.counter(
            "rtc_socket_moves_total", help: "Sessions asked to reconnect to their new owner after a ring change.")
        heartbeats = try registry.counter("rtc_socket_heartbeats_total", help: "Heartbeats written to Redis.")
        let out = self.out
        let dropFamily = self.dropFamily
        outByPath = Path.allCases.map { out.labels($0.rawValue) }
        dropsByReason = DropReason.allCases.map { dropFamily.labels($0.rawValue) }
        for outcome in RingOutcome.allCases { _ = ringUpdateFamily.labels(outcome.rawValue) }
    }

    func messagesOut(_ path: Path, by count: Int = 1) {
        outByPath[Path.allCases.firstIndex(of: path)!].increment(by: UInt64(count))
    }
    func drops(_ reason: DropReason) { dropsByReason[DropReason.allCases.firstIndex(of: reason)!].increment() }
    func ringUpdates(_ outcome: RingOutcome) { ringUpdateFamily.labels(outcome.rawValue).increment() }
}
