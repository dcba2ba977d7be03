// Envelopes, client frames, server frames, heartbeats and deliveries: exact bytes, round trips, hostile input.
import JSON
import Testing

@testable import Wire

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
private func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

struct EnvelopeTests {
    static let envelope = Envelope(
        msgId: "m-1", from: "alice", toClientId: "bob", type: "message",
        payloadJson: "{\"text\":\"hi \\\"there\\\" é\",\"n\":[1,2]}", offset: 17, ts: 1_767_225_600_123)

    @Test func encodesTheDocumentedShape() {
        #expect(
            text(Self.envelope.encoded())
                == "{\"msgId\":\"m-1\",\"from\":\"alice\",\"toClientId\":\"bob\",\"type\":\"message\","
                + "\"payloadJson\":\"{\\\"text\\\":\\\"hi \\\\\\\"there\\\\\\\" é\\\",\\\"n\\\":[1,2]}\","
                + "\"offset\":17,\"ts\":1767225600123}")
        var noOffset = Self.envelope
        noOffset.offset = nil
        #expect(!text(noOffset.encoded()).contains("offset"))
    }

    static let samples: [Envelope] = [
        envelope,
        Envelope(msgId: "x", from: "a", toClientId: "b", payloadJson: "", ts: 0),
        Envelope(
            msgId: String(repeating: "~", count: 128), from: String(repeating: "f", count: 128), toClientId: "t@x:1",
            type: "custom", payloadJson: "\u{0}\n\t\u{1F}😀", offset: UInt64.max, ts: Int64.min),
    ]

    @Test(arguments: samples)
    func roundTrips(envelope: Envelope) throws {
        #expect(try Envelope.decode(envelope.encoded()) == envelope)
    }

    @Test func offsetMayBeNull() throws {
        let decoded = try Envelope.decode(
            utf8(
                "{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"offset\":null,\"ts\":1}"
            ))
        #expect(decoded.offset == nil)
    }

    static let hostile: [(String, String)] = [
        ("", "bad_json"), ("[]", "bad_json"), ("{\"msgId\":", "bad_json"),
        ("{\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"ts\":1}", "bad_field"),
        ("{\"msgId\":\"m\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"ts\":1}", "bad_field"),
        ("{\"msgId\":\"m\",\"from\":\"a\",\"type\":\"t\",\"payloadJson\":\"1\",\"ts\":1}", "bad_field"),
        ("{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"payloadJson\":\"1\",\"ts\":1}", "bad_field"),
        ("{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"ts\":1}", "bad_field"),
        ("{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\"}", "bad_field"),
        (
            "{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":{},\"ts\":1}",
            "bad_field"
        ),
        (
            "{\"msgId\":\"m\",\"from\":\"a b\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"ts\":1}",
            "bad_field"
        ),
        (
            "{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"\",\"type\":\"t\",\"payloadJson\":\"1\",\"ts\":1}",
            "bad_field"
        ),
        (
            "{\"msgId\":\"\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"ts\":1}",
            "bad_field"
        ),
        (
            "{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"offset\":-1,\"ts\":1}",
            "bad_field"
        ),
        (
            "{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"offset\":\"1-0\",\"ts\":1}",
            "bad_field"
        ),
        (
            "{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"ts\":1e3}",
            "bad_field"
        ),
        (
            "{\"msgId\":\"m\",\"from\":\"a\",\"toClientId\":\"b\",\"type\":\"t\",\"payloadJson\":\"1\",\"ts\":99999999999999999999}",
            "bad_field"
        ),
    ]

    @Test(arguments: hostile)
    func rejectsHostileEnvelopes(json: String, code: String) {
        do {
            let envelope = try Envelope.decode(utf8(json))
            Issue.record("decoded \(envelope)")
        } catch {
            #expect(error.code == code, "\(error.message)")
        }
    }
}

struct ClientFrameTests {
    static let accepted: [(String, ClientFrame)] = [
        (
            "{\"type\":\"message\",\"msgId\":\"m-1\",\"toClientId\":\"bob\",\"payloadJson\":\"{\\\"a\\\":1}\"}",
            .message(msgId: "m-1", toClientId: "bob", payloadJson: "{\"a\":1}")
        ),
        (
            "{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"bob\",\"payloadJson\":\"\",\"from\":\"mallory\",\"x\":[]}",
            .message(msgId: "m", toClientId: "bob", payloadJson: "")
        ),
        ("{\"type\":\"ack\",\"offset\":0}", .ack(offset: 0)),
        ("{\"offset\":18446744073709551615,\"type\":\"ack\"}", .ack(offset: UInt64.max)),
        ("{\"type\":\"ping\"}", .ping),
        (" { \"type\" : \"ping\" , \"ts\" : 5 } ", .ping),
    ]

    @Test(arguments: accepted)
    func decodesClientFrames(json: String, expected: ClientFrame) throws {
        #expect(try ClientFrame.decode(utf8(json)) == expected)
    }

    static let frames: [ClientFrame] = [
        .message(msgId: "m-1", toClientId: "bob", payloadJson: "{\"a\":[1,\"\\n\"]}"),
        .message(msgId: "~", toClientId: String(repeating: "b", count: 128), payloadJson: ""), .ack(offset: 0),
        .ack(offset: UInt64.max), .ping,
    ]

    @Test(arguments: frames)
    func encodedFramesDecodeBack(frame: ClientFrame) throws {
        #expect(try ClientFrame.decode(frame.encoded()) == frame)
    }

    static let tooLong = String(repeating: "k", count: 129)

    static let hostile: [(String, String)] = [
        ("", "bad_json"), ("ping", "bad_json"), ("[\"ping\"]", "bad_json"), ("\"ping\"", "bad_json"),
        ("{\"type\":\"ping\"", "bad_json"), ("{\"type\":\"ping\",}", "bad_json"), ("{\"type\":\"ping\"}x", "bad_json"),
        ("{}", "bad_type"), ("{\"type\":5}", "bad_type"), ("{\"type\":null}", "bad_type"),
        ("{\"type\":\"Message\"}", "bad_type"), ("{\"type\":\"pong\"}", "bad_type"), ("{\"type\":\"\"}", "bad_type"),
        ("{\"type\":\"message\",\"toClientId\":\"bob\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"\",\"toClientId\":\"bob\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"\(tooLong)\",\"toClientId\":\"bob\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"a b\",\"toClientId\":\"bob\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"é\",\"toClientId\":\"bob\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":7,\"toClientId\":\"bob\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"\(tooLong)\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"b o b\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"../bob\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"bøb\",\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":[\"bob\"],\"payloadJson\":\"1\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"bob\"}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"bob\",\"payloadJson\":{\"a\":1}}", "bad_field"),
        ("{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"bob\",\"payloadJson\":null}", "bad_field"),
        ("{\"type\":\"ack\"}", "bad_field"), ("{\"type\":\"ack\",\"offset\":-1}", "bad_field"),
        ("{\"type\":\"ack\",\"offset\":1.5}", "bad_field"), ("{\"type\":\"ack\",\"offset\":\"3\"}", "bad_field"),
        ("{\"type\":\"ack\",\"offset\":18446744073709551616}", "bad_field"),
    ]

    @Test(arguments: hostile)
    func rejectsHostileFrames(json: String, code: String) {
        do {
            let frame = try ClientFrame.decode(utf8(json))
            Issue.record("decoded \(frame)")
        } catch {
            #expect(error.code == code, "\(error.message)")
        }
    }

    private static func message(payload: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "message")
        writer.field("msgId", "m")
        writer.field("toClientId", "bob")
        writer.field("payloadJson", payload)
        writer.endObject()
        return writer.bytes
    }

    @Test func payloadLimitCountsUTF8Bytes() throws {
        let limit = 64 * 1024
        let atLimit = String(repeating: "x", count: limit)
        #expect(
            try ClientFrame.decode(Self.message(payload: atLimit))
                == .message(msgId: "m", toClientId: "bob", payloadJson: atLimit))
        #expect(throws: WireError(code: "too_large", message: "payloadJson: more than 65536 bytes")) {
            try ClientFrame.decode(Self.message(payload: atLimit + "x"))
        }
        // Two bytes per character: half as many characters fit.
        let wide = String(repeating: "é", count: 6)
        #expect(throws: WireError.self) { try ClientFrame.decode(Self.message(payload: wide), maxPayloadBytes: 11) }
        #expect(try ClientFrame.decode(Self.message(payload: wide), maxPayloadBytes: 12) != .ping)
        // An escaped payload is measured after unescaping.
        #expect(
            try ClientFrame.decode(
                utf8(
                    "{\"type\":\"message\",\"msgId\":\"m\",\"toClientId\":\"bob\",\"payloadJson\":\"\\u0041\\u0042\"}"),
                maxPayloadBytes: 2) == .message(msgId: "m", toClientId: "bob", payloadJson: "AB"))
    }
}

struct ServerFrameTests {
    @Test func framesHaveTheDocumentedShape() throws {
        #expect(
            text(ServerFrame.welcome(nodeId: "socket-0", clientId: "alice", ringVersion: 12, resumeOffset: 40))
                == "{\"type\":\"welcome\",\"nodeId\":\"socket-0\",\"clientId\":\"alice\",\"ringVersion\":12,\"resumeOffset\":40}"
        )
        #expect(
            text(ServerFrame.accepted(msgId: "m\"1", offset: 7, duplicate: true))
                == "{\"type\":\"accepted\",\"msgId\":\"m\\\"1\",\"offset\":7,\"duplicate\":true}")
        #expect(
            text(ServerFrame.error(code: "bad_field", message: "toClientId: not valid", msgId: "m-1"))
                == "{\"type\":\"error\",\"code\":\"bad_field\",\"message\":\"toClientId: not valid\",\"msgId\":\"m-1\"}"
        )
        #expect(
            text(ServerFrame.error(code: "bad_json", message: "line\nbreak", msgId: nil))
                == "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":\"line\\nbreak\"}")
        #expect(text(ServerFrame.reconnect(afterMs: 1500)) == "{\"type\":\"reconnect\",\"afterMs\":1500}")
        #expect(text(ServerFrame.pong(ts: -3)) == "{\"type\":\"pong\",\"ts\":-3}")
        // Every frame is valid JSON.
        let frames = [
            ServerFrame.welcome(nodeId: "n", clientId: "c", ringVersion: UInt64.max, resumeOffset: 0),
            ServerFrame.accepted(msgId: "\u{1}", offset: 0, duplicate: false),
            ServerFrame.error(code: "c", message: "\\", msgId: "m"), ServerFrame.reconnect(afterMs: 0),
            ServerFrame.pong(ts: Int64.max),
        ]
        for frame in frames { #expect(try JSONParser.parse(frame)["type"]?.stringValue != nil) }
    }
}

struct ServerMessageTests {
    static let frames: [([UInt8], ServerMessage)] = [
        (
            ServerFrame.welcome(nodeId: "socket-0", clientId: "alice", ringVersion: 12, resumeOffset: 40),
            .welcome(nodeId: "socket-0", clientId: "alice", ringVersion: 12, resumeOffset: 40)
        ),
        (
            ServerFrame.accepted(msgId: "m\"1", offset: UInt64.max, duplicate: true),
            .accepted(msgId: "m\"1", offset: UInt64.max, duplicate: true)
        ),
        (
            ServerFrame.error(code: "bad_field", message: "x", msgId: "m"),
            .error(code: "bad_field", message: "x", msgId: "m")
        ),
        (
            ServerFrame.error(code: "bad_json", message: "", msgId: nil),
            .error(code: "bad_json", message: "", msgId: nil)
        ),
        (ServerFrame.reconnect(afterMs: 250), .reconnect(afterMs: 250)), (ServerFrame.pong(ts: -1), .pong(ts: -1)),
        (EnvelopeTests.envelope.encoded(), .envelope(EnvelopeTests.envelope)),
    ]

    @Test(arguments: frames)
    func serverFramesDecodeBack(bytes: [UInt8], expected: ServerMessage) throws {
        #expect(try ServerMessage.decode(bytes) == expected)
    }

    static let hostile: [String] = [
        "", "[]", "{}", "{\"type\":1}", "{\"type\":\"welcome\",\"nodeId\":\"n\",\"clientId\":\"c\",\"ringVersion\":1}",
        "{\"type\":\"accepted\",\"msgId\":\"m\",\"offset\":-1,\"duplicate\":false}",
        "{\"type\":\"error\",\"code\":\"c\",\"message\":\"m\",\"msgId\":5}",
        "{\"type\":\"reconnect\",\"afterMs\":\"1\"}",
        "{\"type\":\"pong\"}", "{\"type\":\"message\",\"msgId\":\"m\"}",
    ]

    @Test(arguments: hostile)
    func rejectsHostileServerFrames(json: String) {
        #expect(throws: WireError.self) { try ServerMessage.decode(utf8(json)) }
    }
}

struct HeartbeatTests {
    static let heartbeat = Heartbeat(
        nodeId: "socket-0", podIP: "10.1.2.3", port: 8080, connections: 9876, messagesPerSecond: 1234.5,
        p95DeliveryMs: 3.25, cpu: 0.75, memoryBytes: 123_456_789, draining: false, ready: true, ts: 1_767_225_600_000)

    @Test func encodesTheDocumentedShapeAndRoundTrips() throws {
        #expect(
            text(Self.heartbeat.encoded())
                == "{\"nodeId\":\"socket-0\",\"podIP\":\"10.1.2.3\",\"port\":8080,\"connections\":9876,"
                + "\"messagesPerSecond\":1234.5,\"p95DeliveryMs\":3.25,\"cpu\":0.75,\"memoryBytes\":123456789,"
                + "\"draining\":false,\"ready\":true,\"ts\":1767225600000}")
        #expect(try Heartbeat.decode(Self.heartbeat.encoded()) == Self.heartbeat)
        var other = Self.heartbeat
        other.draining = true
        other.ready = false
        other.messagesPerSecond = 0.1
        other.cpu = 0
        other.podIP = "fd00::1"
        other.port = 0
        #expect(try Heartbeat.decode(other.encoded()) == other)
    }

    /// Each replaces one member of a valid heartbeat.
    static let hostileMembers: [(String, String)] = [
        ("nodeId", "\"\""), ("nodeId", "\"a b\""), ("nodeId", "5"), ("podIP", "\"\""), ("podIP", "null"),
        ("port", "65536"), ("port", "-1"), ("port", "80.5"), ("port", "\"80\""), ("connections", "-1"),
        ("connections", "1e2"), ("messagesPerSecond", "-0.5"), ("messagesPerSecond", "1e999"),
        ("messagesPerSecond", "\"fast\""), ("p95DeliveryMs", "null"), ("cpu", "-1"), ("memoryBytes", "-5"),
        ("memoryBytes", "99999999999999999999"), ("draining", "\"false\""), ("ready", "1"), ("ts", "1.5"),
    ]

    @Test(arguments: hostileMembers)
    func rejectsHostileMembers(name: String, value: String) throws {
        var members = try JSONParser.parse(Self.heartbeat.encoded()).objectValue!
        let index = members.firstIndex { $0.0 == name }!
        members[index].1 = try JSONParser.parse(value)
        #expect(throws: WireError.self) { try Heartbeat.decode(JSONValue.object(members).serialized()) }
        members.remove(at: index)
        #expect(throws: WireError.self) { try Heartbeat.decode(JSONValue.object(members).serialized()) }
    }
}

struct DeliveryTests {
    static let delivery = Delivery(
        recipient: "bob", offset: 17, origin: "socket-1", envelope: EnvelopeTests.envelope)

    @Test func encodesTheDocumentedShapeAndRoundTrips() throws {
        let json = try JSONParser.parse(Self.delivery.encoded())
        #expect(json.objectValue!.map(\.0) == ["recipient", "offset", "origin", "envelope"])
        #expect(json["envelope"]?.serialized() == EnvelopeTests.envelope.encoded())
        #expect(try Delivery.decode(Self.delivery.encoded()) == Self.delivery)
    }

    static let hostile: [String] = [
        "", "[]", "{}", "{\"recipient\":\"bob\",\"offset\":1,\"origin\":\"socket-1\"}",
        "{\"recipient\":\"bob\",\"offset\":1,\"origin\":\"socket-1\",\"envelope\":\"{}\"}",
        "{\"recipient\":\"bob\",\"offset\":1,\"origin\":\"socket-1\",\"envelope\":{}}",
        "{\"recipient\":\"b b\",\"offset\":1,\"origin\":\"socket-1\",\"envelope\":ENV}",
        "{\"recipient\":\"bob\",\"offset\":-1,\"origin\":\"socket-1\",\"envelope\":ENV}",
        "{\"recipient\":\"bob\",\"origin\":\"socket-1\",\"envelope\":ENV}",
        "{\"recipient\":\"bob\",\"offset\":1,\"origin\":\"\",\"envelope\":ENV}",
        "{\"recipient\":\"bob\",\"offset\":1,\"envelope\":ENV}",
        "{\"recipient\":\"carol\",\"offset\":1,\"origin\":\"socket-1\",\"envelope\":ENV}",
    ]

    @Test(arguments: hostile)
    func rejectsHostileDeliveries(template: String) {
        let envelope = text(EnvelopeTests.envelope.encoded())
        let json = template.replacing("ENV", with: envelope)
        #expect(throws: WireError.self) { try Delivery.decode(utf8(json)) }
    }

    @Test func theTemplateItselfDecodes() throws {
        let envelope = text(EnvelopeTests.envelope.encoded())
        let json = "{\"recipient\":\"bob\",\"offset\":1,\"origin\":\"socket-1\",\"envelope\":\(envelope)}"
        #expect(try Delivery.decode(utf8(json)).envelope == EnvelopeTests.envelope)
    }
}
