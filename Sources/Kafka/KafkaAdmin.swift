// Topic administration (create, delete) through librdkafka's Admin API, with results on the loop thread.
import CRdKafka
import EventLoop

/// Creates and deletes topics; each result runs its completion on the loop thread. Requests go to the cluster's
/// controller (CreateTopics, DeleteTopics) and fail with an error after `requestTimeout`, never silently.
///
/// librdkafka 2.0's mock cluster implements neither request (and names no controller), so against
/// `KafkaMockCluster` every request ends with an error after `requestTimeout`: create topics there with
/// `KafkaMockCluster.createTopic`, or rely on its auto-creation (4 partitions).
///
/// Loop thread only.
public final class KafkaAdmin: QueueServer {
    public let loop: EventLoop
    public let requestTimeout: Duration
    private var handle: OpaquePointer?
    private var queue: OpaquePointer?
    private var bridge: QueueBridge?
    private var pending: [UInt: (Result<Void, KafkaError>) -> Void] = [:]
    private var nextID: UInt = 1
    private var serving = false
    private var closeRequested = false

    public init(
        loop: EventLoop, bootstrap: String, config: [String: String] = [:], requestTimeout: Duration = .seconds(15)
    ) throws(KafkaError) {
        self.loop = loop
        self.requestTimeout = requestTimeout
        let settings = Client.settings(defaults: [], config: config, forced: [("bootstrap.servers", bootstrap)])
        let handle = try Client.make(RD_KAFKA_PRODUCER, settings: settings, events: 0)
        let queue = rd_kafka_queue_new(handle)!
        self.handle = handle
        self.queue = queue
        do {
            bridge = try QueueBridge(loop: loop, queue: queue, server: self)
        } catch {
            teardown()
            throw error
        }
    }

    deinit { teardown() }

    /// Requests in flight.
    public var inFlight: Int { pending.count }

    /// Creates `name` with `partitions` partitions; `replicationFactor` -1 takes the broker's default
    /// (`default.replication.factor`, Kafka 2.4+). An existing topic fails with `KafkaError.topicAlreadyExists`.
    public func createTopic(
        _ name: String, partitions: Int32, replicationFactor: Int32 = -1,
        _ completion: @escaping (Result<Void, KafkaError>) -> Void
    ) {
        guard let handle, let queue, !closeRequested else { return completion(.failure(.clientClosed)) }
        var errorText = [CChar](repeating: 0, count: 512)
        guard let topic = rd_kafka_NewTopic_new(name, partitions, replicationFactor, &errorText, errorText.count)
        else {
            return completion(.failure(KafkaError(RD_KAFKA_RESP_ERR__INVALID_ARG, Client.text(errorText))))
        }
        defer { rd_kafka_NewTopic_destroy(topic) }
        guard let options = options(RD_KAFKA_ADMIN_OP_CREATETOPICS, completion) else { return }
        defer { rd_kafka_AdminOptions_destroy(options) }
        var topics: [OpaquePointer?] = [topic]
        rd_kafka_CreateTopics(handle, &topics, 1, options, queue)
    }

    /// Deletes `name`; a topic that does not exist fails with `KafkaError.unknownTopicOrPartition`.
    public func deleteTopic(_ name: String, _ completion: @escaping (Result<Void, KafkaError>) -> Void) {
        guard let handle, let queue, !closeRequested else { return completion(.failure(.clientClosed)) }
        guard let topic = rd_kafka_DeleteTopic_new(name) else {
            return completion(.failure(KafkaError(RD_KAFKA_RESP_ERR__INVALID_ARG, "invalid topic name")))
        }
        defer { rd_kafka_DeleteTopic_destroy(topic) }
        guard let options = options(RD_KAFKA_ADMIN_OP_DELETETOPICS, completion) else { return }
        defer { rd_kafka_AdminOptions_destroy(options) }
        var topics: [OpaquePointer?] = [topic]
        rd_kafka_DeleteTopics(handle, &topics, 1, options, queue)
    }

    /// Options carrying the request's table key as opaque and our timeouts; registers `completion` under that key.
    private func options(
        _ operation: rd_kafka_admin_op_t, _ completion: @escaping (Result<Void, KafkaError>) -> Void
    ) -> OpaquePointer? {
        guard let handle, let options = rd_kafka_AdminOptions_new(handle, operation) else {
            completion(.failure(.clientClosed))
            return nil
        }
        var errorText = [CChar](repeating: 0, count: 512)
        let milliseconds = requestTimeout.kafkaMilliseconds
        if rd_kafka_AdminOptions_set_request_timeout(options, milliseconds, &errorText, errorText.count)
            != RD_KAFKA_RESP_ERR_NO_ERROR
            || rd_kafka_AdminOptions_set_operation_timeout(options, milliseconds, &errorText, errorText.count)
                != RD_KAFKA_RESP_ERR_NO_ERROR
        {
            rd_kafka_AdminOptions_destroy(options)
            completion(.failure(KafkaError(RD_KAFKA_RESP_ERR__INVALID_ARG, Client.text(errorText))))
            return nil
        }
        let id = nextID
        nextID &+= 1
        rd_kafka_AdminOptions_set_opaque(options, UnsafeMutableRawPointer(bitPattern: id))
        pending[id] = completion
        return options
    }

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
        let id = UInt(bitPattern: rd_kafka_event_opaque(event))
        guard let completion = pending.removeValue(forKey: id) else { return }
        let status = rd_kafka_event_error(event)
        if status != RD_KAFKA_RESP_ERR_NO_ERROR {
            return completion(.failure(KafkaError(status, String(cString: rd_kafka_event_error_string(event)))))
        }
        var count = 0
        let results: UnsafeMutablePointer<OpaquePointer?>?
        switch rd_kafka_event_type(event) {
        case RD_KAFKA_EVENT_CREATETOPICS_RESULT:
            results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count)
        case RD_KAFKA_EVENT_DELETETOPICS_RESULT:
            results = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event), &count)
        default:
            results = nil
        }
        guard let results, count > 0, let result = results[0] else {
            return completion(.failure(KafkaError(RD_KAFKA_RESP_ERR__BAD_MSG, "admin result without topic")))
        }
        let topicStatus = rd_kafka_topic_result_error(result)
        if topicStatus == RD_KAFKA_RESP_ERR_NO_ERROR { return completion(.success(())) }
        let text = rd_kafka_topic_result_error_string(result).map { String(cString: $0) }
        completion(.failure(text.map { KafkaError(topicStatus, $0) } ?? KafkaError(topicStatus)))
    }

    /// Releases the client; requests still in flight complete with `KafkaError.closed`. Called from inside a
    /// completion, it takes effect when that completion returns.
    public func close() {
        guard handle != nil else { return }
        closeRequested = true
        if serving { return }
        let orphans = pending.values
        pending.removeAll()
        teardown()
        for completion in orphans { completion(.failure(.clientClosed)) }
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
