// The JSON messages of SYSTEM §4: envelopes, client frames, server frames, heartbeats and Kafka deliveries.
import JSON
import Ring

/// A message between clients as stored and delivered:
/// `{"msgId","from","toClientId","type","payloadJson","offset","ts"}`.
///
/// Decoding requires `msgId` to be a `MessageID`, `from` and `toClientId` to be `ClientID`s, `payloadJson` a
/// string (its content is the application's and is not parsed), `offset` an unsigned integer when present
/// (absent or `null` gives nil) and `ts` an integer; unknown members are ignored.
public struct Envelope: Equatable, Sendable {
    public var msgId: String
    public var from: String
    public var toClientId: String
    public var type: String
    /// The application payload as JSON text, carried as a JSON string.
    public var payloadJson: String
    /// The recipient's offset, once the message is in its inbox.
    public var offset: UInt64?
    /// Unix time in milliseconds when the message was accepted.
    public var ts: Int64

    public init(
        msgId: String, from: String, toClientId: String, type: String = "message", payloadJson: String,
        offset: UInt64? = nil, ts: Int64
    ) {
        self.msgId = msgId
        self.from = from
        self.toClientId = toClientId
        self.type = type
        self.payloadJson = payloadJson
        self.offset = offset
        self.ts = ts
    }

    /// The JSON object; `offset` is left out when nil.
    public func encoded() -> [UInt8] {
        var writer = JSONWriter(capacity: 128 + payloadJson.utf8.count)
        write(to: &writer)
        return writer.bytes
    }

    /// Writes the JSON object as the next value of `writer`.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("msgId", msgId)
        writer.field("from", from)
        writer.field("toClientId", toClientId)
        writer.field("type", type)
        writer.field("payloadJson", payloadJson)
        if let offset { writer.field("offset", offset) }
        writer.field("ts", ts)
        writer.endObject()
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Envelope {
        try decode(Fields(bytes))
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Envelope {
        try withBytes(bytes) { raw throws(WireError) in try decode(raw) }
    }

    static func decode(_ fields: Fields) throws(WireError) -> Envelope {
        let msgId = try fields.string("msgId")
        guard MessageID.isValid(msgId) else { throw WireError.badField("msgId", "not 1-128 printable characters") }
        let from = try fields.string("from")
        guard ClientID.isValid(from) else { throw WireError.badField("from", "not a valid client id") }
        let to = try fields.string("toClientId")
        guard ClientID.isValid(to) else { throw WireError.badField("toClientId", "not a valid client id") }
        return Envelope(
            msgId: msgId, from: from, toClientId: to, type: try fields.string("type"),
            payloadJson: try fields.string("payloadJson"), offset: try fields.optionalUInt64("offset"),
            ts: try fields.int64("ts"))
    }
}

/// What a client may send (SYSTEM §4), by `type`:
/// - `{"type":"message","msgId","toClientId","payloadJson"}`; any `from` is ignored (the node sets it);
/// - `{"type":"ack","offset":n}`: the client has everything up to and including its offset `n`;
/// - `{"type":"ping"}`.
public enum ClientFrame: Equatable, Sendable {
    case message(msgId: String, toClientId: String, payloadJson: String)
    case ack(offset: UInt64)
    case ping

    /// Parses and checks a client's text frame: `msgId` a `MessageID`, `toClientId` a `ClientID`, `payloadJson`
    /// a string of at most `maxPayloadBytes` UTF-8 bytes (error `too_large` beyond), a missing or unknown `type`
    /// is `bad_type`.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, maxPayloadBytes: Int = 64 * 1024
    ) throws(WireError)
        -> ClientFrame
    {
        let fields = try Fields(bytes)
        guard let type = fields.value["type"]?.stringValue else {
            throw WireError(code: "bad_type", message: "type: missing or not a string")
        }
        switch type {
        case "message":
            let msgId = try fields.string("msgId")
            guard MessageID.isValid(msgId) else {
                throw WireError.badField("msgId", "not 1-128 printable characters")
            }
            let to = try fields.string("toClientId")
            guard ClientID.isValid(to) else { throw WireError.badField("toClientId", "not a valid client id") }
            let payload = try fields.string("payloadJson")
            guard payload.utf8.count <= maxPayloadBytes else {
                throw WireError(code: "too_large", message: "payloadJson: more than \(maxPayloadBytes) bytes")
            }
            return .message(msgId: msgId, toClientId: to, payloadJson: payload)
        case "ack":
            return .ack(offset: try fields.uint64("offset"))
        case "ping":
            return .ping
        default:
            throw WireError(code: "bad_type", message: "type: unknown type")
        }
    }

    /// The frame as a client writes it (used by test clients and the load tool).
    public func encoded() -> [UInt8] {
        var writer = JSONWriter(capacity: 64)
        writer.beginObject()
        switch self {
        case .message(let msgId, let toClientId, let payloadJson):
            writer.field("type", "message")
            writer.field("msgId", msgId)
            writer.field("toClientId", toClientId)
            writer.field("payloadJson", payloadJson)
        case .ack(let offset):
            writer.field("type", "ack")
            writer.field("offset", offset)
        case .ping:
            writer.field("type", "ping")
        }
        writer.endObject()
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8], maxPayloadBytes: Int = 64 * 1024) throws(WireError) -> ClientFrame {
        try withBytes(bytes) { raw throws(WireError) in try decode(raw, maxPayloadBytes: maxPayloadBytes) }
    }
}

/// The frames a node sends besides delivered envelopes, as compact JSON.
public enum ServerFrame {
    /// The first frame of a session: `{"type":"welcome","nodeId","clientId","ringVersion","resumeOffset"}`.
    public static func welcome(nodeId: String, clientId: String, ringVersion: UInt64, resumeOffset: UInt64) -> [UInt8] {
        var writer = JSONWriter(capacity: 128)
        writer.beginObject()
        writer.field("type", "welcome")
        writer.field("nodeId", nodeId)
        writer.field("clientId", clientId)
        writer.field("ringVersion", ringVersion)
        writer.field("resumeOffset", resumeOffset)
        writer.endObject()
        return writer.bytes
    }

    /// The sender's acknowledgement: `{"type":"accepted","msgId","offset","duplicate"}`; `offset` is the
    /// recipient's offset the message got (for a duplicate, the one it got the first time, or 0 if unknown).
    public static func accepted(msgId: String, offset: UInt64, duplicate: Bool) -> [UInt8] {
        var writer = JSONWriter(capacity: 96 + msgId.utf8.count)
        writer.beginObject()
        writer.field("type", "accepted")
        writer.field("msgId", msgId)
        writer.field("offset", offset)
        writer.field("duplicate", duplicate)
        writer.endObject()
        return writer.bytes
    }

    /// `{"type":"error","code","message","msgId"}`; `msgId` is left out when nil.
    public static func error(code: String, message: String, msgId: String?) -> [UInt8] {
        var writer = JSONWriter(capacity: 96 + message.utf8.count)
        writer.beginObject()
        writer.field("type", "error")
        writer.field("code", code)
        writer.field("message", message)
        if let msgId { writer.field("msgId", msgId) }
        writer.endObject()
        return writer.bytes
    }

    /// `{"type":"reconnect","afterMs":n}`: sent before Close 1012 or 1001.
    public static func reconnect(afterMs: Int) -> [UInt8] {
        var writer = JSONWriter(capacity: 48)
        writer.beginObject()
        writer.field("type", "reconnect")
        writer.field("afterMs", afterMs)
        writer.endObject()
        return writer.bytes
    }

    /// `{"type":"pong","ts":n}`: the answer to a client's ping.
    public static func pong(ts: Int64) -> [UInt8] {
        var writer = JSONWriter(capacity: 48)
        writer.beginObject()
        writer.field("type", "pong")
        writer.field("ts", ts)
        writer.endObject()
        return writer.bytes
    }
}

/// A frame as a client receives it, parsed: what `ServerFrame` writes, or a delivered `Envelope` (any other
/// `type`). Used by test clients and the load tool.
public enum ServerMessage: Equatable, Sendable {
    case welcome(nodeId: String, clientId: String, ringVersion: UInt64, resumeOffset: UInt64)
    case accepted(msgId: String, offset: UInt64, duplicate: Bool)
    case error(code: String, message: String, msgId: String?)
    case reconnect(afterMs: Int)
    case pong(ts: Int64)
    case envelope(Envelope)

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> ServerMessage {
        let fields = try Fields(bytes)
        guard let type = fields.value["type"]?.stringValue else {
            throw WireError(code: "bad_type", message: "type: missing or not a string")
        }
        switch type {
        case "welcome":
            return .welcome(
                nodeId: try fields.string("nodeId"), clientId: try fields.string("clientId"),
                ringVersion: try fields.uint64("ringVersion"), resumeOffset: try fields.uint64("resumeOffset"))
        case "accepted":
            return .accepted(
                msgId: try fields.string("msgId"), offset: try fields.uint64("offset"),
                duplicate: try fields.bool("duplicate"))
        case "error":
            let msgId: String?
            if let member = fields.value["msgId"], !member.isNull {
                msgId = try fields.string("msgId")
            } else {
                msgId = nil
            }
            return .error(code: try fields.string("code"), message: try fields.string("message"), msgId: msgId)
        case "reconnect":
            return .reconnect(afterMs: try fields.int("afterMs", in: Int.min...Int.max))
        case "pong":
            return .pong(ts: try fields.int64("ts"))
        default:
            return .envelope(try Envelope.decode(fields))
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> ServerMessage {
        try withBytes(bytes) { raw throws(WireError) in try decode(raw) }
    }
}

/// A socket node's load report, written to Redis under `Keys.heartbeat(nodeId)` with an expiry:
/// `{"nodeId","podIP","port","connections","messagesPerSecond","p95DeliveryMs","cpu","memoryBytes","draining",
/// "ready","ts"}`. Decoding requires a valid `NodeID`, a non-empty `podIP` of at most 64 bytes, `port` in
/// 0...65535, non-negative counts, and finite non-negative rates.
public struct Heartbeat: Equatable, Sendable {
    public var nodeId: String
    public var podIP: String
    public var port: Int
    public var connections: Int
    public var messagesPerSecond: Double
    public var p95DeliveryMs: Double
    /// CPU cores in use.
    public var cpu: Double
    public var memoryBytes: Int
    public var draining: Bool
    public var ready: Bool
    /// Unix time in milliseconds.
    public var ts: Int64

    public init(
        nodeId: String, podIP: String, port: Int, connections: Int, messagesPerSecond: Double,
        p95DeliveryMs: Double, cpu: Double, memoryBytes: Int, draining: Bool, ready: Bool, ts: Int64
    ) {
        self.nodeId = nodeId
        self.podIP = podIP
        self.port = port
        self.connections = connections
        self.messagesPerSecond = messagesPerSecond
        self.p95DeliveryMs = p95DeliveryMs
        self.cpu = cpu
        self.memoryBytes = memoryBytes
        self.draining = draining
        self.ready = ready
        self.ts = ts
    }

    public func encoded() -> [UInt8] {
        var writer = JSONWriter(capacity: 256)
        writer.beginObject()
        writer.field("nodeId", nodeId)
        writer.field("podIP", podIP)
        writer.field("port", port)
        writer.field("connections", connections)
        writer.field("messagesPerSecond", messagesPerSecond)
        writer.field("p95DeliveryMs", p95DeliveryMs)
        writer.field("cpu", cpu)
        writer.field("memoryBytes", memoryBytes)
        writer.field("draining", draining)
        writer.field("ready", ready)
        writer.field("ts", ts)
        writer.endObject()
        return writer.bytes
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Heartbeat {
        let fields = try Fields(bytes)
        let nodeId = try fields.string("nodeId")
        guard NodeID.isValid(nodeId) else { throw WireError.badField("nodeId", "not a valid node id") }
        let podIP = try fields.string("podIP")
        guard !podIP.isEmpty, podIP.utf8.count <= 64 else { throw WireError.badField("podIP", "empty or too long") }
        return Heartbeat(
            nodeId: nodeId, podIP: podIP, port: try fields.int("port", in: 0...65535),
            connections: try fields.int("connections", in: 0...Int.max),
            messagesPerSecond: try fields.nonNegativeDouble("messagesPerSecond"),
            p95DeliveryMs: try fields.nonNegativeDouble("p95DeliveryMs"), cpu: try fields.nonNegativeDouble("cpu"),
            memoryBytes: try fields.int("memoryBytes", in: 0...Int.max), draining: try fields.bool("draining"),
            ready: try fields.bool("ready"), ts: try fields.int64("ts"))
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Heartbeat {
        try withBytes(bytes) { raw throws(WireError) in try decode(raw) }
    }
}

/// The value of a Kafka record on a node's delivery topic (keyed by recipient):
/// `{"recipient","offset","origin","envelope":{…}}`. Decoding requires `recipient` to be a `ClientID`, `origin`
/// a `NodeID`, and the envelope's `toClientId` to be the recipient.
public struct Delivery: Equatable, Sendable {
    public var recipient: String
    /// The recipient's offset the message got in its inbox.
    public var offset: UInt64
    /// The node that accepted the message.
    public var origin: String
    public var envelope: Envelope

    public init(recipient: String, offset: UInt64, origin: String, envelope: Envelope) {
        self.recipient = recipient
        self.offset = offset
        self.origin = origin
        self.envelope = envelope
    }

    public func encoded() -> [UInt8] {
        var writer = JSONWriter(capacity: 192 + envelope.payloadJson.utf8.count)
        writer.beginObject()
        writer.field("recipient", recipient)
        writer.field("offset", offset)
        writer.field("origin", origin)
        writer.key("envelope")
        envelope.write(to: &writer)
        writer.endObject()
        return writer.bytes
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Delivery {
        let fields = try Fields(bytes)
        let recipient = try fields.string("recipient")
        guard ClientID.isValid(recipient) else { throw WireError.badField("recipient", "not a valid client id") }
        let origin = try fields.string("origin")
        guard NodeID.isValid(origin) else { throw WireError.badField("origin", "not a valid node id") }
        let offset = try fields.uint64("offset")
        let envelope = try Envelope.decode(fields.object("envelope"))
        guard envelope.toClientId == recipient else {
            throw WireError.badField("envelope.toClientId", "differs from recipient")
        }
        return Delivery(recipient: recipient, offset: offset, origin: origin, envelope: envelope)
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Delivery {
        try withBytes(bytes) { raw throws(WireError) in try decode(raw) }
    }
}
