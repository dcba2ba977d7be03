// Client ids, message ids, and the Redis keys and Kafka topics derived from them.
import Ring

/// Client ids (SYSTEM §3): 1–128 characters of `[A-Za-z0-9._:@-]`.
public enum ClientID {
    public static func isValid(_ id: String) -> Bool { isIdentifier(id, maxBytes: 128) }
}

/// Message ids chosen by senders: 1–128 printable ASCII characters other than space (0x21–0x7E), so an id
/// can sit in a Redis key and a log line as it is.
public enum MessageID {
    public static func isValid(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard !utf8.isEmpty, utf8.count <= 128 else { return false }
        for byte in utf8 where byte < 0x21 || byte > 0x7E { return false }
        return true
    }
}

/// Every Redis key and Kafka topic name of the system, in one place.
public enum Keys {
    /// The recipient's inbox, a capped Redis stream whose entry ids `"<offset>-0"` are its offsets.
    public static func inbox(_ clientId: String) -> String { "rtc:inbox:" + clientId }
    /// The recipient's offset counter (`INCR` gives the next offset).
    public static func offsetCounter(_ clientId: String) -> String { "rtc:off:" + clientId }
    /// Marks a (sender, msgId) pair as accepted, so a resent message is not delivered twice:
    /// `"rtc:dedup:<from>:<msgId>"`, where `%` and `:` in the msgId are written `%25` and `%3A`. A client id has
    /// neither, so the last `:` always separates the two and one sender cannot name another sender's key
    /// (without the escape, sender `a` with msgId `b:c` and sender `a:b` with msgId `c` would share a key).
    public static func dedup(_ from: String, _ msgId: String) -> String {
        var key = "rtc:dedup:" + from + ":"
        key.reserveCapacity(key.utf8.count + msgId.utf8.count)
        for scalar in msgId.unicodeScalars {
            switch scalar {
            case "%": key += "%25"
            case ":": key += "%3A"
            default: key.unicodeScalars.append(scalar)
            }
        }
        return key
    }
    /// A socket node's heartbeat, written with an expiry.
    public static func heartbeat(_ nodeId: String) -> String { "rtc:hb:" + nodeId }
    /// `SCAN MATCH` pattern of every heartbeat key.
    public static let heartbeatPattern = "rtc:hb:*"
    /// The current signed ring (its `encoded()` bytes).
    public static let ring = "rtc:ring"
    /// The ring's version counter (`INCR`), so versions keep growing across leader changes.
    public static let ringVersion = "rtc:ring:version"
    /// The Kafka topic a node consumes deliveries from.
    public static func deliveryTopic(_ nodeId: String) -> String { "rtc.deliver." + nodeId }
    /// The Kafka topic of ring updates (one partition, so order holds).
    public static let ringTopic = "rtc.control.ring"
    /// The stream entry id of an offset in an inbox.
    public static func streamID(offset: UInt64) -> String { String(offset) + "-0" }
}
