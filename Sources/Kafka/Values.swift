// The values the Kafka clients hand to their callers: errors, delivery reports and consumed records.
import CRdKafka

/// A librdkafka error: `code` is an `rd_kafka_resp_err_t` (negative codes are local to the client, positive ones
/// come from the broker, as in the Kafka protocol's error table).
public struct KafkaError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    init(_ error: rd_kafka_resp_err_t) {
        code = error.rawValue
        message = String(cString: rd_kafka_err2str(error))
    }

    init(_ error: rd_kafka_resp_err_t, _ message: String) {
        code = error.rawValue
        self.message = message
    }

    public var description: String { "Kafka error \(code): \(message)" }

    /// The local queue is full (`queue.buffering.max.messages`): the record was not queued.
    public static let queueFull: Int32 = RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue
    /// The record was not delivered within `message.timeout.ms`.
    public static let messageTimedOut: Int32 = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue
    /// A request (admin) did not complete within its timeout.
    public static let timedOut: Int32 = RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue
    /// The partition does not exist in the topic.
    public static let unknownPartition: Int32 = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION.rawValue
    /// The topic does not exist (broker code 3).
    public static let unknownTopicOrPartition: Int32 = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue
    /// CreateTopics for a topic that exists (broker code 36).
    public static let topicAlreadyExists: Int32 = RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue
    /// The client was closed before the operation completed.
    public static let closed: Int32 = RD_KAFKA_RESP_ERR__DESTROY.rawValue
    /// A configuration property was rejected.
    public static let invalidConfiguration: Int32 = RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue

    static let clientClosed = KafkaError(RD_KAFKA_RESP_ERR__DESTROY, "the client was closed")
}

/// Where a produced record landed (the broker acknowledged it).
public struct KafkaDelivery: Equatable, Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}

/// One consumed record. A record without a key or value has an empty array there.
public struct KafkaMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]
    public var value: [UInt8]

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8], value: [UInt8]) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
    }
}
