// MessageReader against tables of streams: RFC 6455 §5.7's examples, hostile frames, Autobahn-style fragmentation
// and UTF-8 cases, each fed whole, at every split point and byte by byte, with scratch buffers of several sizes.
import Testing
import WebSocket

/// A stream, the role reading it, and what must come out.
struct ReaderCase: Sendable, CustomTestStringConvertible {
    var name: String
    var role: Role
    var stream: [UInt8]
    var events: [Event]
    var failure: CloseCode?
    var maxMessageBytes = 1 << 20
    /// Whether the stream ends where the reader holds nothing (false when it ends inside a message).
    var idleAtEnd = true

    var testDescription: String { name }
}

extension Event: @unchecked Sendable {}

/// Runs a case under every feeding and scratch size: 0 (every message through the reader's own storage), 7 (a
/// message that outgrows scratch part way) and 64 KiB + 16 (every message of these tables fits).
private func check(_ test: ReaderCase) {
    let expected = Outcome(events: test.events, failure: test.failure)
    for scratchSize in [0, 7, (1 << 16) + 16] {
        for feeding in Feeding.all(test.stream.count) {
            let (outcome, idle) = feed(
                test.stream, role: test.role, feeding: feeding, scratchSize: scratchSize,
                maxMessageBytes: test.maxMessageBytes)
            #expect(outcome == expected, "\(test.name), \(feeding), scratch \(scratchSize)")
            #expect(idle == test.idleAtEnd, "\(test.name), \(feeding), scratch \(scratchSize): idle \(idle)")
            if outcome != expected || idle != test.idleAtEnd { return }
        }
    }
}

private let hello = bytes("Hello")
private let binary256 = (0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7) }
private let binary64K = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }

struct MessageReaderTests {
    /// RFC 6455 §5.7, byte for byte.
    static let rfcExamples: [ReaderCase] = [
        ReaderCase(
            name: "single-frame unmasked text", role: .client, stream: [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F],
            events: [.text("Hello")]),
        ReaderCase(
            name: "single-frame masked text", role: .server,
            stream: [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58], events: [.text("Hello")]),
        ReaderCase(
            name: "fragmented unmasked text", role: .client,
            stream: [0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F], events: [.text("Hello")]),
        ReaderCase(
            name: "unmasked ping", role: .client, stream: [0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F],
            events: [.ping(hello)]),
        ReaderCase(
            name: "masked pong", role: .server,
            stream: [0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58], events: [.pong(hello)]),
        ReaderCase(
            name: "256-byte binary, 16-bit length", role: .client, stream: [0x82, 0x7E, 0x01, 0x00] + binary256,
            events: [.binary(binary256)]),
        ReaderCase(
            name: "64 KiB binary, 64-bit length", role: .client,
            stream: [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0] + binary64K, events: [.binary(binary64K)]),
        ReaderCase(
            name: "64 KiB binary, masked", role: .server, stream: frame(Opcode.binary, binary64K, maskKey: exampleKey),
            events: [.binary(binary64K)]),
        ReaderCase(
            name: "several messages and controls back to back", role: .server,
            stream: clientFrame(Opcode.text, hello) + clientFrame(Opcode.ping, []) + clientFrame(Opcode.binary, [])
                + clientFrame(Opcode.text, []) + clientFrame(Opcode.binary, binary256)
                + clientFrame(Opcode.close, [0x03, 0xE8] + bytes("bye")),
            events: [.text("Hello"), .ping([]), .binary([]), .text(""), .binary(binary256), .close(1000, bytes("bye"))]
        ),
        ReaderCase(
            name: "empty close", role: .client, stream: frame(Opcode.close, []), events: [.close(nil, [])]),
    ]

    @Test(arguments: rfcExamples)
    func rfcExample(_ test: ReaderCase) { check(test) }

    /// Frames a reader must refuse, with the close code it must fail the connection with.
    static let hostile: [ReaderCase] = {
        var cases: [ReaderCase] = []
        func add(_ name: String, _ stream: [UInt8], _ code: CloseCode, role: Role = .server, events: [Event] = []) {
            cases.append(ReaderCase(name: name, role: role, stream: stream, events: events, failure: code))
        }
        for (rsv, bit) in [(4, "RSV1"), (2, "RSV2"), (1, "RSV3")] {
            add("\(bit) set", frame(Opcode.text, hello, rsv: UInt8(rsv), maskKey: 7), .protocolError)
        }
        for opcode: UInt8 in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            add("reserved opcode \(opcode)", frame(opcode, hello, maskKey: 7), .protocolError)
        }
        add("control frame of 126 bytes", clientFrame(Opcode.ping, Array(repeating: 1, count: 126)), .protocolError)
        add(
            "close of 126 bytes", clientFrame(Opcode.close, [3, 0xE8] + Array(repeating: 0x61, count: 124)),
            .protocolError)
        add("fragmented ping", clientFrame(Opcode.ping, hello, fin: false), .protocolError)
        add("fragmented close", clientFrame(Opcode.close, [3, 0xE8], fin: false), .protocolError)
        add("continuation first", clientFrame(Opcode.continuation, hello), .protocolError)
        add(
            "continuation after a complete message",
            clientFrame(Opcode.text, hello) + clientFrame(Opcode.continuation, hello), .protocolError,
            events: [.text("Hello")])
        add(
            "text inside a fragmented message",
            clientFrame(Opcode.text, bytes("Hel"), fin: false) + clientFrame(Opcode.text, bytes("lo")),
            .protocolError)
        add(
            "binary inside a fragmented message",
            clientFrame(Opcode.binary, [1], fin: false) + clientFrame(Opcode.binary, [2]), .protocolError)
        add("unmasked frame to a server", frame(Opcode.text, hello), .protocolError)
        add("unmasked ping to a server", frame(Opcode.ping, []), .protocolError)
        add("masked frame to a client", frame(Opcode.text, hello, maskKey: exampleKey), .protocolError, role: .client)
        add(
            "64-bit length with the top bit set", frame(Opcode.binary, [], maskKey: 7, declaredLength: 1 << 63),
            .protocolError)
        add("64-bit length all ones", frame(Opcode.binary, [], maskKey: 7, declaredLength: .max), .protocolError)
        add("close with 1 byte", clientFrame(Opcode.close, [3]), .protocolError)
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            add(
                "close code \(code)", clientFrame(Opcode.close, [UInt8(code >> 8), UInt8(code & 0xFF)]), .protocolError)
        }
        add("close reason with invalid UTF-8", clientFrame(Opcode.close, [3, 0xE8, 0x61, 0xFF]), .invalidPayload)
        add("close reason ending inside a character", clientFrame(Opcode.close, [3, 0xE8, 0xCE]), .invalidPayload)
        add("close reason with a surrogate", clientFrame(Opcode.close, [3, 0xE8, 0xED, 0xA0, 0x80]), .invalidPayload)
        add(
            "declared length 2^40 (header only)", frame(Opcode.binary, [], maskKey: 7, declaredLength: 1 << 40),
            .messageTooBig)
        add(
            "declared length 2^62 (header only)", frame(Opcode.binary, [], maskKey: 7, declaredLength: 1 << 62),
            .messageTooBig)
        add(
            "events before a violation are delivered",
            clientFrame(Opcode.ping, [1]) + clientFrame(Opcode.text, hello) + frame(Opcode.text, hello),
            .protocolError, events: [.ping([1]), .text("Hello")])
        return cases
    }()

    @Test(arguments: hostile)
    func hostileFrame(_ test: ReaderCase) { check(test) }

    /// `maxMessageBytes` counts the whole message, and is checked from each header before its payload is held.
    static let sizeLimits: [ReaderCase] = [
        ReaderCase(
            name: "one frame at the limit", role: .server, stream: clientFrame(Opcode.binary, binary256),
            events: [.binary(binary256)], maxMessageBytes: 256),
        ReaderCase(
            name: "one frame over the limit (header only)", role: .server,
            stream: Array(clientFrame(Opcode.binary, binary256).prefix(8)), events: [], failure: .messageTooBig,
            maxMessageBytes: 255),
        ReaderCase(
            name: "fragments over the limit together", role: .server,
            stream: clientFrame(Opcode.text, Array(repeating: 0x61, count: 200), fin: false)
                + clientFrame(Opcode.ping, [9]) + Array(clientFrame(Opcode.continuation, binary256).prefix(8)),
            events: [.ping([9])], failure: .messageTooBig, maxMessageBytes: 256),
        ReaderCase(
            name: "control frames do not count", role: .server,
            stream: clientFrame(Opcode.ping, Array(repeating: 1, count: 125)) + clientFrame(Opcode.text, hello),
            events: [.ping(Array(repeating: 1, count: 125)), .text("Hello")], maxMessageBytes: 5),
    ]

    @Test(arguments: sizeLimits)
    func sizeLimit(_ test: ReaderCase) { check(test) }

    @Test(arguments: [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4000, 4999] as [UInt16])
    func acceptedCloseCode(_ code: UInt16) {
        check(
            ReaderCase(
                name: "close \(code)", role: .server,
                stream: clientFrame(Opcode.close, [UInt8(code >> 8), UInt8(code & 0xFF)] + bytes("ok")),
                events: [.close(code, bytes("ok"))]))
    }

    /// Fragmentation and UTF-8 as the Autobahn test suite exercises them (sections 5 and 6).
    static let autobahn: [ReaderCase] = {
        let kosme: [UInt8] = [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5]
        let long = Array(repeating: UInt8(ascii: "a"), count: 3000)
        return [
            ReaderCase(
                name: "text split inside a 2-byte and a 3-byte character", role: .server,
                stream: clientFrame(Opcode.text, [0xCE], fin: false)
                    + clientFrame(Opcode.continuation, [0xBA, 0xE1], fin: false)
                    + clientFrame(Opcode.continuation, Array(kosme[3...])),
                events: [.text(kosme)]),
            ReaderCase(
                name: "one fragment per byte", role: .server,
                stream: kosme.indices.flatMap { index in
                    clientFrame(index == 0 ? Opcode.text : Opcode.continuation, [kosme[index]], fin: index == 10)
                },
                events: [.text(kosme)]),
            ReaderCase(
                name: "4-byte character split across fragments", role: .client,
                stream: frame(Opcode.text, [0x41, 0xF0, 0x9F], fin: false)
                    + frame(Opcode.continuation, [0x98], fin: false) + frame(Opcode.continuation, [0x80, 0x42]),
                events: [.text([0x41, 0xF0, 0x9F, 0x98, 0x80, 0x42])]),
            ReaderCase(
                name: "ping between fragments", role: .server,
                stream: clientFrame(Opcode.text, bytes("Hel"), fin: false) + clientFrame(Opcode.ping, bytes("p"))
                    + clientFrame(Opcode.continuation, bytes("lo")),
                events: [.ping(bytes("p")), .text("Hello")]),
            ReaderCase(
                name: "pong and ping between binary fragments", role: .client,
                stream: frame(Opcode.binary, [1], fin: false) + frame(Opcode.pong, [2])
                    + frame(Opcode.continuation, [3], fin: false) + frame(Opcode.ping, [])
                    + frame(Opcode.continuation, [4]),
                events: [.pong([2]), .ping([]), .binary([1, 3, 4])]),
            ReaderCase(
                name: "close between fragments", role: .server,
                stream: clientFrame(Opcode.text, bytes("Hel"), fin: false) + clientFrame(Opcode.close, [3, 0xE8]),
                events: [.close(1000, [])], idleAtEnd: false),
            ReaderCase(
                name: "empty fragments", role: .server,
                stream: clientFrame(Opcode.text, [], fin: false) + clientFrame(Opcode.continuation, [], fin: false)
                    + clientFrame(Opcode.continuation, []),
                events: [.text("")]),
            ReaderCase(
                name: "long fragmented text", role: .server,
                stream: clientFrame(Opcode.text, long, fin: false) + clientFrame(Opcode.continuation, kosme),
                events: [.text(long + kosme)]),
            ReaderCase(
                name: "invalid UTF-8 in the first fragment of a long message", role: .server,
                stream: clientFrame(Opcode.text, bytes("Hello") + [0xC0, 0xAF] + long, fin: false),
                events: [], failure: .invalidPayload),
            ReaderCase(
                name: "invalid UTF-8 early in a frame whose end has not arrived", role: .client,
                stream: Array(frame(Opcode.text, bytes("Hello") + [0xED, 0xA0, 0x80] + long).prefix(40)),
                events: [], failure: .invalidPayload),
            ReaderCase(
                name: "invalid UTF-8 in a later fragment", role: .server,
                stream: clientFrame(Opcode.text, kosme, fin: false)
                    + clientFrame(Opcode.continuation, [0xF4, 0x90, 0x80, 0x80], fin: false),
                events: [], failure: .invalidPayload),
            ReaderCase(
                name: "text ending inside a character", role: .server,
                stream: clientFrame(Opcode.text, [0x61, 0xE1, 0xBD]), events: [], failure: .invalidPayload),
            ReaderCase(
                name: "fragmented text ending inside a character", role: .server,
                stream: clientFrame(Opcode.text, [0x61, 0xE1], fin: false) + clientFrame(Opcode.continuation, [0xBD]),
                events: [], failure: .invalidPayload),
            ReaderCase(
                name: "binary is not checked as UTF-8", role: .server,
                stream: clientFrame(Opcode.binary, [0xFF, 0xC0]),
                events: [.binary([0xFF, 0xC0])]),
        ]
    }()

    @Test(arguments: autobahn)
    func autobahnStyle(_ test: ReaderCase) { check(test) }

    /// Every UTF-8 vector of the validator's table, as a text message: valid ones delivered, others 1007.
    @Test(arguments: UTF8ValidatorTests.table)
    func textMessageUTF8(_ vector: UTF8Vector) {
        let payload = bytes("x") + vector.bytes + bytes("y")
        let valid = vector.verdict == .valid
        check(
            ReaderCase(
                name: vector.name, role: .server, stream: clientFrame(Opcode.text, payload),
                events: valid ? [.text(payload)] : [], failure: valid ? nil : .invalidPayload))
    }

    @Test func idleAfterEachMessage() {
        let messages = [
            clientFrame(Opcode.text, hello), clientFrame(Opcode.binary, binary64K), clientFrame(Opcode.ping, [1]),
            clientFrame(Opcode.text, bytes("He"), fin: false) + clientFrame(Opcode.ping, [])
                + clientFrame(Opcode.continuation, bytes("llo")),
        ]
        for scratchSize in [0, 16, 1 << 17] {
            var reader = MessageReader(role: .server)
            #expect(reader.isIdle)
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchSize, alignment: 16)
            defer { scratch.deallocate() }
            for message in messages {
                // First in two reads cut in the middle (the message spans reads), then whole.
                let middle = message.count / 2
                message.withUnsafeBytes { all in
                    var count = 0
                    let first = reader.feed(UnsafeRawBufferPointer(rebasing: all[..<middle]), scratch: scratch) { _ in
                        count += 1
                    }
                    #expect(first == nil)
                    #expect(!reader.isIdle, "part of a message is held")
                    let second = reader.feed(UnsafeRawBufferPointer(rebasing: all[middle...]), scratch: scratch) { _ in
                        count += 1
                    }
                    #expect(second == nil)
                    #expect(count >= 1)
                    #expect(reader.isIdle, "scratch \(scratchSize): idle after a message that spanned reads")
                    let whole = reader.feed(all, scratch: scratch) { _ in }
                    #expect(whole == nil)
                    #expect(reader.isIdle, "scratch \(scratchSize): idle after a whole message")
                }
            }
        }
    }

    /// A message complete inside one read is never copied into the reader's own storage: a masked one is unmasked
    /// into scratch, an unmasked single frame is delivered from the input, fragments are joined in scratch.
    @Test(arguments: [Role.server, Role.client])
    func completeMessagesUseScratchOrInput(_ role: Role) {
        func make(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
            role == .server ? clientFrame(opcode, payload, fin: fin) : frame(opcode, payload, fin: fin)
        }
        let stream =
            make(Opcode.text, hello) + make(Opcode.binary, binary256) + make(Opcode.text, bytes("He"), fin: false)
            + make(Opcode.ping, [1]) + make(Opcode.continuation, bytes("llo"))
        var reader = MessageReader(role: role)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { scratch.deallocate() }
        func lies(_ inner: UnsafeRawBufferPointer, in outer: UnsafeRawBufferPointer) -> Bool {
            guard let start = inner.baseAddress, let base = outer.baseAddress else { return false }
            return start >= base && start + inner.count <= base + outer.count
        }
        var places: [String] = []
        let failure = stream.withUnsafeBytes { input in
            reader.feed(input, scratch: scratch) { event in
                let payload: UnsafeRawBufferPointer
                switch event {
                case .text(let bytes), .binary(let bytes): payload = bytes
                default: return
                }
                places.append(
                    lies(payload, in: UnsafeRawBufferPointer(scratch))
                        ? "scratch" : lies(payload, in: input) ? "input" : "elsewhere")
            }
        }
        #expect(failure == nil)
        let expected = role == .server ? ["scratch", "scratch", "scratch"] : ["input", "input", "scratch"]
        #expect(places == expected)
        #expect(reader.isIdle)
    }

    @Test func notIdleInsideAHeader() {
        var reader = MessageReader(role: .client)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
        defer { scratch.deallocate() }
        let stream = frame(Opcode.binary, binary256)
        stream.withUnsafeBytes { all in
            let first = reader.feed(UnsafeRawBufferPointer(rebasing: all[..<3]), scratch: scratch) { _ in }
            #expect(first == nil)
            #expect(!reader.isIdle)
            var received: [Event] = []
            let second = reader.feed(UnsafeRawBufferPointer(rebasing: all[3...]), scratch: scratch) {
                received.append(Event($0))
            }
            #expect(second == nil)
            #expect(received == [.binary(binary256)])
            #expect(reader.isIdle)
        }
    }

    @Test func failureIsFinal() {
        var reader = MessageReader(role: .server)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 16)
        defer { scratch.deallocate() }
        var calls = 0
        let bad = clientFrame(Opcode.text, bytes("He"), fin: false) + frame(Opcode.binary, [1])
        let good = clientFrame(Opcode.ping, [1]) + clientFrame(Opcode.text, hello)
        let failure = bad.withUnsafeBytes { reader.feed($0, scratch: scratch) { _ in calls += 1 } }
        #expect(failure == .protocolError)
        #expect(reader.isIdle, "a failed reader drops what it held")
        for _ in 0..<3 {
            let again = good.withUnsafeBytes { reader.feed($0, scratch: scratch) { _ in calls += 1 } }
            #expect(again == .protocolError)
        }
        #expect(calls == 0)
    }

    @Test func emptyFeedDoesNothing() {
        var reader = MessageReader(role: .client)
        var calls = 0
        let result = reader.feed(UnsafeRawBufferPointer(start: nil, count: 0), scratch: .init(start: nil, count: 0)) {
            _ in
            calls += 1
        }
        #expect(result == nil)
        #expect(calls == 0 && reader.isIdle)
    }
}
