// librdkafka's built-in mock cluster: real Kafka-protocol brokers on loopback, for tests and the local stack.
import CRdKafka
import Synchronization

/// A mock Kafka cluster in this process (`rd_kafka_mock_cluster_new` on a handle of its own): brokers listen on
/// random loopback ports and other clients, in this process or others, connect with `bootstrap`. Produce, fetch,
/// consumer groups, committed offsets and topic auto-creation (4 partitions) work; the Admin API does not (see
/// `KafkaAdmin`).
///
/// `@unchecked Sendable` because the C pointers are set once in `init` and never change, librdkafka's mock calls
/// are thread-safe (each is an operation handed to the cluster's own thread, which replies), and the `closed`
/// flag under a mutex keeps every call from overlapping the destroy.
public final class KafkaMockCluster: @unchecked Sendable {
    private let handle: OpaquePointer
    private let cluster: OpaquePointer
    private let closed = Mutex(false)
    /// `bootstrap.servers` for clients: `127.0.0.1:port` of each broker, comma-separated.
    public let bootstrap: String

    public init(brokers: Int = 1) throws(KafkaError) {
        // The handle only hosts the cluster: it connects nowhere, so its "no bootstrap.servers" notice is silenced.
        handle = try Client.make(RD_KAFKA_PRODUCER, settings: [("log_level", "4")], events: 0)
        guard let cluster = rd_kafka_mock_cluster_new(handle, Int32(brokers)) else {
            rd_kafka_destroy(handle)
            throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, "rd_kafka_mock_cluster_new failed")
        }
        self.cluster = cluster
        bootstrap = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit { close() }

    /// Creates `name` with `partitions` partitions (the mock's own call, not the Admin API).
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws(KafkaError) {
        let status = closed.withLock { closed in
            closed
                ? RD_KAFKA_RESP_ERR__DESTROY
                : rd_kafka_mock_topic_create(cluster, name, partitions, replicationFactor)
        }
        if status != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(status) }
    }

    /// Takes broker `id` (1-based) down, dropping its connections and refusing new ones, or brings it back up.
    public func setBroker(_ id: Int32, up: Bool) throws(KafkaError) {
        let status = closed.withLock { closed in
            closed
                ? RD_KAFKA_RESP_ERR__DESTROY
                : up ? rd_kafka_mock_broker_set_up(cluster, id) : rd_kafka_mock_broker_set_down(cluster, id)
        }
        if status != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(status) }
    }

    /// Stops the brokers (clients see their connections drop) and releases the cluster. Idempotent.
    public func close() {
        closed.withLock { closed in
            guard !closed else { return }
            closed = true
            rd_kafka_mock_cluster_destroy(cluster)
            rd_kafka_destroy(handle)
        }
    }
}
