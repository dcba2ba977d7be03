// Re-routing a departed node's delivery topic: its undelivered records go to their recipients' new owners.
import EventLoop
import Kafka
import Wire

/// Reads `rtc.deliver.<node>` in the node's own consumer group (`rtc-socket.<node>`), so only what the node had not
/// handled (after its committed offset) comes back, and produces each record, unchanged and keyed by recipient, to the
/// delivery topic of the recipient's owner in the ring held now (SYSTEM §3: a node's undelivered Kafka messages are
/// re-routed to the new owners, then its topic is deleted).
///
/// It ends once the group has given it the partitions and nothing arrived for `quiet`, or when `window` has passed
/// (a killed node stays a group member until its session times out, which delays the first assignment). Then the
/// consumer closes (committing what was handled, so nothing is re-routed twice) and the balancer deletes the topic.
///
/// Every record was appended to its recipient's inbox before it was produced, so a record that cannot be re-routed
/// (no owner, Kafka refused it) is still delivered when the recipient reads its inbox; it is counted, not retried.
///
/// Loop thread only.
final class Reroute: TimerHandler {
    let node: String
    unowned let balancer: Balancer
    private var consumer: KafkaConsumer?
    private let started: UInt64
    private let window: UInt64
    private let quiet: UInt64
    private var assigned = false
    private var lastActivity: UInt64
    private var records = 0
    private var done = false
    private var back = false
    private var timer: TimerID?

    init(node: String, balancer: Balancer, window: Duration, quiet: Duration = .seconds(5)) throws(KafkaError) {
        self.node = node
        self.balancer = balancer
        let loop = balancer.loop
        started = loop.now
        lastActivity = loop.now
        self.window = UInt64(window.components.seconds) * 1_000_000_000
        self.quiet = UInt64(quiet.components.seconds) * 1_000_000_000
        consumer = try KafkaConsumer(
            loop: loop, bootstrap: balancer.configuration.kafkaBootstrap, groupID: "rtc-socket.\(node)",
            topics: [Keys.deliveryTopic(node)],
            config: [
                "auto.offset.reset": "earliest", "session.timeout.ms": "10000", "max.poll.interval.ms": "20000",
                "fetch.wait.max.ms": "50",
            ],
            handler: { [unowned self] message in self.record(message) })
        consumer?.onAssignment = { [unowned self] partitions in
            if !self.assigned { say("rtc-balancer: \(self.node)'s group assigned \(partitions.count) partition(s)") }
            self.assigned = true
            self.lastActivity = self.balancer.loop.now
        }
        timer = loop.schedule(after: .seconds(1), handler: self, tag: 0)
    }

    private func record(_ message: KafkaMessage) {
        lastActivity = balancer.loop.now
        guard let delivery = try? Delivery.decode(message.value) else {
            balancer.metrics.reroute(.malformed)
            return
        }
        guard let owner = balancer.owner(of: delivery.recipient) else {
            balancer.metrics.reroute(.noOwner)
            return
        }
        records += 1
        let metrics = balancer.metrics
        balancer.produce(topic: Keys.deliveryTopic(owner), key: Array(delivery.recipient.utf8), value: message.value) {
            taken in
            metrics.reroute(taken ? .rerouted : .failed)
        }
        // The node is back under its old name (a local restart): this record went back to its own topic, and the
        // node's topic and group are its own again.
        // Not from inside the consumer's handler: the consumer is released on the way.
        if owner == node && !back {
            back = true
            balancer.loop.schedule(after: .milliseconds(1)) { [weak self] in
                guard let self, !self.done else { return }
                self.balancer.cameBack(self)
            }
        }
    }

    func timerFired(tag: UInt64) {
        timer = nil
        guard !done else { return }
        let now = balancer.loop.now
        if balancer.isPresent(node) {
            balancer.cameBack(self)
            return
        }
        if (assigned && now &- lastActivity >= quiet) || now &- started >= window {
            if !assigned { say("rtc-balancer: \(node)'s group gave no partitions within the re-route window") }
            finish()
            return
        }
        timer = balancer.loop.schedule(after: .seconds(1), handler: self, tag: 0)
    }

    private func finish() {
        guard !done else { return }
        done = true
        consumer?.close()
        consumer = nil
        balancer.finished(self, records: records)
    }

    /// Stops without finishing (leadership lost, shutdown): the node stays pending for the next leader.
    func cancel() {
        guard !done else { return }
        done = true
        if let timer { _ = balancer.loop.cancel(timer) }
        timer = nil
        consumer?.close()
        consumer = nil
    }
}
