// Building an `rd_kafka_t`: configuration properties (defaults, then the caller's, then the ones we rely on).
import CRdKafka

enum Client {
    /// Makes a client of `type` from `settings`, applied in order (a later value for a name replaces an earlier one).
    /// `events` is the `RD_KAFKA_EVENT_*` mask delivered through `rd_kafka_queue_poll`.
    static func make(
        _ type: rd_kafka_type_t, settings: [(String, String)], events: Int32
    ) throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, "rd_kafka_conf_new failed")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in settings
        where rd_kafka_conf_set(conf, name, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(RD_KAFKA_RESP_ERR__INVALID_ARG, "\(name): " + text(errorText))
        }
        if events != 0 { rd_kafka_conf_set_events(conf, events) }
        // On success the client owns `conf`; on failure we still do.
        guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, "rd_kafka_new: " + text(errorText))
        }
        return handle
    }

    /// `defaults`, then `config` (sorted by name, so the outcome does not depend on dictionary order), then `forced`.
    static func settings(
        defaults: [(String, String)], config: [String: String], forced: [(String, String)]
    ) -> [(String, String)] {
        defaults + config.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } + forced
    }

    static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

extension Duration {
    /// Whole milliseconds, clamped to what librdkafka's `int` timeouts take.
    var kafkaMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, milliseconds))
    }
}
