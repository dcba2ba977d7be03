// A group consumer on the event loop thread that commits a record's offset only after it was handled.
import CRdKafka
import EventLoop

/// A consumer in a consumer group, served on the loop thread.
///
/// Records, rebalances and errors all arrive on librdkafka's consumer queue (the main queue is forwarded to it with
/// `rd_kafka_poll_set_consumer`), which is bridged into the loop through an eventfd.
///
/// Delivery is at-least-once: `enable.auto.offset.store=false`, and the offset after a record is stored
/// (`rd_kafka_offset_store`) only once `handler` has returned for it; librdkafka's auto commit
/// (`enable.auto.commit`, every `auto.commit.interval.ms`, and when partitions are revoked or the consumer closes)
/// commits only stored offsets. A crash re-delivers at most what was handled since the last commit; nothing
/// fetched but not handled is ever committed. Rebalances use the event API: the consumer applies the assignment
/// (eager or cooperative, whichever protocol the group chose) and then reports it through `onAssignment`.
///
/// Loop thread only: create, call and close it on the loop's thread; every callback runs there.
public final class KafkaConsumer: QueueServer {
    public let loop: EventLoop
    private var handle: OpaquePointer?
    private var queue: OpaquePointer?
    private var bridge: QueueBridge?
    private let handler: (KafkaMessage) -> Void
    private var serving = false
    private var closeRequested = false

    /// The assigned partitions changed (after a rebalance), on the loop thread: the whole current assignment.
    public var onAssignment: (([(topic: String, partition: Int32)]) -> Void)?
    /// Errors librdkafka reports (brokers down, a subscribed topic that does not exist), on the loop thread. They
    /// are informational: librdkafka keeps retrying.
    public var onError: ((KafkaError) -> Void)?
    /// The current assignment, as last reported to `onAssignment`.
    public private(set) var assignment: [(topic: String, partition: Int32)] = []

    /// Joins `groupID` and subscribes to `topics`. `config` holds librdkafka properties applied over our defaults
    /// (`auto.offset.reset=earliest`); `bootstrap.servers`, `group.id`, `enable.auto.offset.store=false` and
    /// `enable.auto.commit=true` are always ours (tune `auto.commit.interval.ms` instead). `handler` runs on the loop thread for each record, in order within a partition.
    public init(
        loop: EventLoop, bootstrap: String, groupID: String, topics: [String], config: [String: String] = [:],
        handler: @escaping (KafkaMessage) -> Void
    ) throws(KafkaError) {
        self.loop = loop
        self.handler = handler
        let settings = Client.settings(
            defaults: [("auto.offset.reset", "earliest")], config: config,
            forced: [
                ("bootstrap.servers", bootstrap), ("group.id", groupID), ("enable.auto.offset.store", "false"),
                ("enable.auto.commit", "true"),
            ])
        let handle = try Client.make(
            RD_KAFKA_CONSUMER, settings: settings, events: Int32(RD_KAFKA_EVENT_REBALANCE | RD_KAFKA_EVENT_ERROR))
        rd_kafka_poll_set_consumer(handle)
        let queue = rd_kafka_queue_get_consumer(handle)!
        self.handle = handle
        self.queue = queue
        do {
            bridge = try QueueBridge(loop: loop, queue: queue, server: self)
        } catch {
            teardown()
            throw error
        }
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, -1) }
        let status = rd_kafka_subscribe(handle, list)
        if status != RD_KAFKA_RESP_ERR_NO_ERROR {
            teardown()
            throw KafkaError(status)
        }
    }

    deinit { teardown() }

    /// Events served per loop wake-up before the rest waits for the next loop iteration (fairness to the loop's
    /// other registrations).
    public var eventsPerWakeUp: Int {
        get { bridge?.budget ?? 0 }
        set { bridge?.budget = max(1, newValue) }
    }

    /// Whether `close()` has finished (a close requested inside `handler` finishes when the handler returns).
    public var isClosed: Bool { handle == nil }

    func serve(budget: Int) -> Bool {
        guard let queue else { return false }
        serving = true
        var served = 0
        while served < budget, !closeRequested, let event = rd_kafka_queue_poll(queue, 0) {
            served += 1
            handle(event)
            rd_kafka_event_destroy(event)
        }
        serving = false
        if closeRequested {
            close()
            return false
        }
        return served == budget
    }

    private func handle(_ event: OpaquePointer) {
        switch rd_kafka_event_type(event) {
        case RD_KAFKA_EVENT_FETCH:
            guard let message = rd_kafka_event_message_next(event) else { return }
            deliver(message.pointee)
        case RD_KAFKA_EVENT_REBALANCE:
            rebalance(rd_kafka_event_error(event), rd_kafka_event_topic_partition_list(event))
        case RD_KAFKA_EVENT_ERROR:
            onError?(KafkaError(rd_kafka_event_error(event), String(cString: rd_kafka_event_error_string(event))))
        default:
            break
        }
    }

    private func deliver(_ message: rd_kafka_message_t) {
        if message.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if message.err != RD_KAFKA_RESP_ERR__PARTITION_EOF { onError?(KafkaError(message.err)) }
            return
        }
        let record = KafkaMessage(
            topic: String(cString: rd_kafka_topic_name(message.rkt)), partition: message.partition,
            offset: message.offset, key: bytes(message.key, message.key_len), value: bytes(message.payload, message.len)
        )
        handler(record)
        // Handled: now the offset after it may be committed. Fails with _STATE when a rebalance took the partition
        // away meanwhile; the new owner then starts from the last commit (at-least-once).
        _ = rd_kafka_offset_store(message.rkt, message.partition, message.offset)
    }

    private func bytes(_ pointer: UnsafeMutableRawPointer?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private func rebalance(
        _ reason: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
    ) {
        guard let handle else { return }
        let cooperative = rd_kafka_rebalance_protocol(handle).map { String(cString: $0) == "COOPERATIVE" } ?? false
        switch reason {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(handle, partitions) { report(error) }
            } else {
                _ = rd_kafka_assign(handle, partitions)
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_unassign(handle, partitions) { report(error) }
            } else {
                _ = rd_kafka_assign(handle, nil)
            }
        default:
            // A failed rebalance: drop the assignment so librdkafka's state matches ours; the group rejoins.
            onError?(KafkaError(reason))
            _ = rd_kafka_assign(handle, nil)
        }
        assignment = currentAssignment(handle)
        onAssignment?(assignment)
    }

    private func report(_ error: OpaquePointer) {
        onError?(KafkaError(rd_kafka_error_code(error), String(cString: rd_kafka_error_string(error))))
        rd_kafka_error_destroy(error)
    }

    private func currentAssignment(_ handle: OpaquePointer) -> [(topic: String, partition: Int32)] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        var result: [(topic: String, partition: Int32)] = []
        result.reserveCapacity(Int(list.pointee.cnt))
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            result.append((String(cString: element.topic), element.partition))
        }
        return result.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    /// Leaves the group: stops delivering records, then `rd_kafka_consumer_close` commits the stored offsets and
    /// leaves the group so its partitions move to the other members at once. This blocks the loop thread while it
    /// talks to the group coordinator (milliseconds normally, up to about `session.timeout.ms` when the coordinator
    /// is unreachable): call it at shutdown only. Called from inside `handler`, it takes effect when the handler
    /// returns (that record's offset is still stored; no later record is delivered).
    public func close() {
        guard handle != nil else { return }
        if serving {
            closeRequested = true
            return
        }
        closeRequested = true
        bridge?.detach()
        bridge = nil
        // The consumer queue reference must go before rd_kafka_consumer_close.
        if let queue { rd_kafka_queue_destroy(queue) }
        queue = nil
        if let handle { _ = rd_kafka_consumer_close(handle) }
        teardown()
    }

    private func teardown() {
        bridge?.detach()
        bridge = nil
        if let queue { rd_kafka_queue_destroy(queue) }
        queue = nil
        if let handle { rd_kafka_destroy(handle) }
        handle = nil
    }
}
