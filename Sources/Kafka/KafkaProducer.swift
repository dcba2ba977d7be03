// A producer whose delivery reports arrive on the event loop thread.
import CRdKafka
import EventLoop

/// Producer with delivery reports: librdkafka's main queue carries them as `RD_KAFKA_EVENT_DR` events and is
/// bridged into the loop through an eventfd. The idempotent producer is on (`enable.idempotence=true`), so retries
/// neither duplicate nor reorder records: records with one key (one partition) are stored in the order produced.
///
/// Loop thread only: create, call and close it on the loop's thread; every completion runs there too.
public final class KafkaProducer: QueueServer {
    public let loop: EventLoop
    private var handle: OpaquePointer?
    private var queue: OpaquePointer?
    private var bridge: QueueBridge?
    private var topics: [String: OpaquePointer] = [:]
    private var pending: [UInt: Pending] = [:]
    private var nextID: UInt = 1
    private var serving = false
    private var closeRequested: Duration?

    private struct Pending {
        var topic: String
        var completion: (Result<KafkaDelivery, KafkaError>) -> Void
    }

    /// Errors librdkafka reports for the client as a whole (brokers down, fatal idempotence errors), on the loop
    /// thread. They are informational: librdkafka retries, and each record's own outcome still comes to its
    /// completion.
    public var onError: ((KafkaError) -> Void)?

    /// `config` holds librdkafka properties (CONFIGURATION.md), applied over our defaults; `bootstrap.servers` and
    /// `enable.idempotence` are always ours.
    public init(loop: EventLoop, bootstrap: String, config: [String: String] = [:]) throws(KafkaError) {
        self.loop = loop
        let settings = Client.settings(
            defaults: [("linger.ms", "5")], config: config,
            forced: [("bootstrap.servers", bootstrap), ("enable.idempotence", "true")])
        let handle = try Client.make(
            RD_KAFKA_PRODUCER, settings: settings, events: Int32(RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR))
        let queue = rd_kafka_queue_get_main(handle)!
        do {
            bridge = try QueueBridge(loop: loop, queue: queue, server: self)
        } catch {
            rd_kafka_queue_destroy(queue)
            rd_kafka_destroy(handle)
            throw error
        }
        self.handle = handle
        self.queue = queue
    }

    deinit { teardown() }

    /// Events served per loop wake-up before the rest waits for the next loop iteration (fairness to the loop's
    /// other registrations).
    public var eventsPerWakeUp: Int {
        get { bridge?.budget ?? 0 }
        set { bridge?.budget = max(1, newValue) }
    }

    /// Records queued or in flight whose completion has not run yet.
    public var inFlight: Int { pending.count }

    /// Queues one record. The key decides the partition with librdkafka's default partitioner (records with equal
    /// keys go to one partition; an empty key is sent as no key and lands on a random partition); `partition`
    /// forces one. `completion` runs on the loop thread with the delivery
    /// report, or at once, before `produce` returns, when the record could not be queued (local queue full, unknown
    /// partition, closed producer). Key and value are copied.
    public func produce(
        topic: String, key: [UInt8], value: [UInt8], partition: Int32? = nil,
        _ completion: @escaping (Result<KafkaDelivery, KafkaError>) -> Void
    ) {
        guard handle != nil, closeRequested == nil else { return completion(.failure(.clientClosed)) }
        guard let topicHandle = topicHandle(topic) else {
            return completion(.failure(KafkaError(rd_kafka_last_error())))
        }
        let id = nextID
        nextID &+= 1
        // RD_KAFKA_MSG_F_COPY: librdkafka copies key and value before returning. The opaque is our table key.
        let status = key.withUnsafeBytes { keyBytes in
            value.withUnsafeBytes { valueBytes in
                rd_kafka_produce(
                    topicHandle, partition ?? -1, RD_KAFKA_MSG_F_COPY,
                    UnsafeMutableRawPointer(mutating: valueBytes.baseAddress), valueBytes.count,
                    keyBytes.baseAddress, keyBytes.count, UnsafeMutableRawPointer(bitPattern: id))
            }
        }
        if status != 0 {
            return completion(.failure(KafkaError(rd_kafka_last_error())))
        }
        pending[id] = Pending(topic: topic, completion: completion)
    }

    private func topicHandle(_ name: String) -> OpaquePointer? {
        if let known = topics[name] { return known }
        guard let handle, let created = rd_kafka_topic_new(handle, name, nil) else { return nil }
        topics[name] = created
        return created
    }

    func serve(budget: Int) -> Bool {
        guard let queue else { return false }
        serving = true
        var served = 0
        while served < budget, closeRequested == nil, let event = rd_kafka_queue_poll(queue, 0) {
            served += 1
            handle(event)
            rd_kafka_event_destroy(event)
        }
        serving = false
        if let timeout = closeRequested {
            close(flushTimeout: timeout)
            return false
        }
        return served == budget
    }

    private func handle(_ event: OpaquePointer) {
        switch rd_kafka_event_type(event) {
        case RD_KAFKA_EVENT_DR:
            while let message = rd_kafka_event_message_next(event) {
                let id = UInt(bitPattern: message.pointee._private)
                guard let entry = pending.removeValue(forKey: id) else { continue }
                if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    entry.completion(
                        .success(
                            KafkaDelivery(
                                topic: entry.topic, partition: message.pointee.partition,
                                offset: message.pointee.offset)))
                } else {
                    entry.completion(.failure(KafkaError(message.pointee.err)))
                }
            }
        case RD_KAFKA_EVENT_ERROR:
            let error = KafkaError(rd_kafka_event_error(event), String(cString: rd_kafka_event_error_string(event)))
            onError?(error)
        default:
            break
        }
    }

    /// Waits up to `flushTimeout` for the outstanding delivery reports (running their completions), then purges
    /// what is left (those completions get an error), and releases the client. This blocks the loop thread for up
    /// to `flushTimeout`: call it at shutdown only. Called from inside a completion, it takes effect when that
    /// completion returns.
    public func close(flushTimeout: Duration = .seconds(5)) {
        guard handle != nil, let queue else { return }
        if serving {
            closeRequested = flushTimeout
            return
        }
        closeRequested = flushTimeout
        bridge?.detach()
        // rd_kafka_flush would wait for us to destroy the delivery reports it counts, so we serve the queue here.
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: flushTimeout)
        drain(queue, until: deadline)
        if !pending.isEmpty, let handle {
            rd_kafka_purge(handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
            drain(queue, until: clock.now.advanced(by: .milliseconds(500)))
        }
        let orphans = pending.values
        pending.removeAll()
        teardown()
        for entry in orphans { entry.completion(.failure(.clientClosed)) }
    }

    private func drain(_ queue: OpaquePointer, until deadline: ContinuousClock.Instant) {
        let clock = ContinuousClock()
        serving = true
        defer { serving = false }
        while !pending.isEmpty {
            let left = clock.now.duration(to: deadline)
            guard left > .zero else { return }
            guard let event = rd_kafka_queue_poll(queue, min(left, .milliseconds(100)).kafkaMilliseconds) else {
                continue
            }
            handle(event)
            rd_kafka_event_destroy(event)
        }
    }

    /// Releases everything without running completions.
    private func teardown() {
        bridge?.detach()
        bridge = nil
        for topic in topics.values { rd_kafka_topic_destroy(topic) }
        topics.removeAll()
        if let queue { rd_kafka_queue_destroy(queue) }
        queue = nil
        if let handle { rd_kafka_destroy(handle) }
        handle = nil
    }
}
