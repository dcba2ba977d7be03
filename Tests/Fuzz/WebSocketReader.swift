// libFuzzer harness for WebSocket.MessageReader: split feeds agree, limits hold, built streams read as built.
import WebSocket

/// Input layout: byte 0 chooses the role, the message limit, the scratch size and the mode; bytes 1–4 the split
/// points; the rest is either the byte stream itself (raw mode, read in place so a read past its end is an
/// AddressSanitizer report) or a recipe from which frames are built with the events and close code they must
/// give (built mode: valid frames, fragments, interleaved control frames, then at most one violation).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 5 else { return 0 }
    let control = data[0]
    let role: Role = control & 1 == 0 ? .server : .client
    let limits = [0, 1, 5, 16, 125, 126, 1000, 65536]
    let maxMessageBytes = limits[Int(control >> 1 & 7)]
    let scratchSizes = [8, 64, 4096, 65536]
    let scratchSize = scratchSizes[Int(control >> 4 & 3)]
    let rest = UnsafeRawBufferPointer(start: data + 5, count: size - 5)
    let setup = Setup(role: role, maxMessageBytes: maxMessageBytes, scratchSize: scratchSize)
    if control & 0x40 == 0 {
        checkRaw(rest, cutSeed: data + 1, setup)
    } else {
        checkBuilt(recipe: rest, cutSeed: data + 1, setup)
    }
    return 0
}

struct Setup {
    var role: Role
    var maxMessageBytes: Int
    var scratchSize: Int
}

/// A delivered event, copied out of the reader's buffers.
enum Event: Equatable, CustomStringConvertible {
    case text([UInt8])
    case binary([UInt8])
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16?, [UInt8])

    var description: String {
        switch self {
        case .text(let bytes): "text(\(bytes.count))"
        case .binary(let bytes): "binary(\(bytes.count))"
        case .ping(let bytes): "ping(\(bytes.count))"
        case .pong(let bytes): "pong(\(bytes.count))"
        case .close(let code, let reason): "close(\(code.map(String.init) ?? "-"), \(reason.count))"
        }
    }
}

/// What reading a whole input gave: the events in order and the close code the connection failed with (nil: none).
struct Outcome: Equatable {
    var events: [Event] = []
    var code: UInt16?
}

/// Reads `input` fed in the pieces `cuts` delimits, checking the per-event invariants on the way.
func read(_ input: UnsafeRawBufferPointer, cuts: [Int], _ setup: Setup) -> Outcome {
    var reader = MessageReader(role: setup.role, maxMessageBytes: setup.maxMessageBytes)
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: setup.scratchSize, alignment: 16)
    defer { scratch.deallocate() }
    var outcome = Outcome()
    for index in 0..<(cuts.count - 1) {
        let piece = UnsafeRawBufferPointer(rebasing: input[cuts[index]..<cuts[index + 1]])
        // Garbage in scratch must not leak into what is delivered.
        scratch.initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: index &* 37 &+ 0xA5))
        let code = reader.feed(piece, scratch: scratch) { event in
            outcome.events.append(copy(event, setup))
        }
        if let code {
            outcome.code = code.rawValue
            // After a failure every call returns the same code and delivers nothing.
            var more = 0
            let again = reader.feed(piece, scratch: scratch) { _ in more += 1 }
            require(again == code && more == 0, "a failed reader returned \(String(describing: again)), \(more) events")
            require(
                code == .protocolError || code == .invalidPayload || code == .messageTooBig,
                "failure code \(code) is none of 1002, 1007, 1009")
            break
        }
    }
    return outcome
}

/// Copies an event out and checks what holds for every delivered event.
func copy(_ event: FrameEvent, _ setup: Setup) -> Event {
    switch event {
    case .text(let payload):
        require(payload.count <= setup.maxMessageBytes, "text of \(payload.count) over \(setup.maxMessageBytes)")
        require(isValidUTF8(payload), "text message is not valid UTF-8")
        return .text(Array(payload))
    case .binary(let payload):
        require(payload.count <= setup.maxMessageBytes, "binary of \(payload.count) over \(setup.maxMessageBytes)")
        return .binary(Array(payload))
    case .ping(let payload):
        require(payload.count <= 125, "ping payload of \(payload.count)")
        return .ping(Array(payload))
    case .pong(let payload):
        require(payload.count <= 125, "pong payload of \(payload.count)")
        return .pong(Array(payload))
    case .close(let code, let reason):
        require(reason.count <= 123, "close reason of \(reason.count)")
        require(isValidUTF8(reason), "close reason is not valid UTF-8")
        if let code {
            require(code.isValidOnWire, "close code \(code) is not valid on the wire")
        } else {
            require(reason.isEmpty, "a reason without a code")
        }
        return .close(code?.rawValue, Array(reason))
    }
}

/// UTF-8 checked by the standard library, not by the reader's own validator.
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    String(validating: bytes, as: UTF8.self) != nil
}

func cuts(_ seed: UnsafePointer<UInt8>, count n: Int) -> [Int] {
    let a = (Int(seed[0]) << 8 | Int(seed[1])) % (n + 1)
    let b = (Int(seed[2]) << 8 | Int(seed[3])) % (n + 1)
    return [0, min(a, b), max(a, b), n]
}

/// Whole, three pieces, and (for short inputs) byte by byte: the same events and the same close code.
func readAllWays(_ input: UnsafeRawBufferPointer, cutSeed: UnsafePointer<UInt8>, _ setup: Setup) -> Outcome {
    let n = input.count
    let whole = read(input, cuts: [0, n], setup)
    let split = read(input, cuts: cuts(cutSeed, count: n), setup)
    require(
        split == whole,
        "split feed gave \(split.events) \(String(describing: split.code)); whole \(whole.events) \(String(describing: whole.code))"
    )
    if n <= 512 {
        let bytewise = read(input, cuts: Array(0...n), setup)
        require(bytewise == whole, "byte-by-byte feed gave \(bytewise.events) \(String(describing: bytewise.code))")
    }
    return whole
}

// MARK: Raw mode

/// A frame header as a plain reading of RFC 6455 §5.2 finds it.
struct PlainHeader {
    var masked: Bool
    var size: Int
    var length: UInt64
}

func plainHeader(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> PlainHeader? {
    guard offset + 2 <= bytes.count else { return nil }
    let masked = bytes[offset + 1] & 0x80 != 0
    let short = Int(bytes[offset + 1] & 0x7F)
    let extra = short == 126 ? 2 : short == 127 ? 8 : 0
    let size = 2 + extra + (masked ? 4 : 0)
    guard offset + size <= bytes.count else { return nil }
    var length = UInt64(short)
    if extra > 0 {
        length = 0
        for index in 0..<extra { length = length << 8 | UInt64(bytes[offset + 2 + index]) }
    }
    return PlainHeader(masked: masked, size: size, length: length)
}

func checkRaw(_ input: UnsafeRawBufferPointer, cutSeed: UnsafePointer<UInt8>, _ setup: Setup) {
    let outcome = readAllWays(input, cutSeed: cutSeed, setup)
    // Walk the frames: a complete header masked wrongly for the role (§5.1) means the reader failed at it or before.
    var offset = 0
    var frame = 0
    while let header = plainHeader(input, at: offset) {
        if header.masked != (setup.role == .server) {
            require(
                outcome.code != nil,
                "frame \(frame) is \(header.masked ? "masked" : "unmasked") for a \(setup.role) reader, yet no failure")
            if frame == 0 {
                require(
                    outcome.code == 1002 && outcome.events.isEmpty,
                    "a wrongly masked first frame gave \(String(describing: outcome.code))")
            }
            break
        }
        guard header.length <= UInt64(input.count - offset - header.size) else { break }
        offset += header.size + Int(header.length)
        frame += 1
    }
}

// MARK: Built mode

/// Builds frames from the recipe, with the events a correct reader delivers and the code it must fail with.
struct Builder {
    let setup: Setup
    var bytes: [UInt8] = []
    var expected = Outcome()
    var recipe: UnsafeRawBufferPointer.Iterator
    var keySeed: UInt32 = 0x1234_5678
    /// Set once a violation was written: nothing is built after it.
    var done = false

    init(setup: Setup, recipe: UnsafeRawBufferPointer) {
        self.setup = setup
        self.recipe = recipe.makeIterator()
    }

    mutating func next(_ fallback: UInt8 = 0) -> UInt8 { recipe.next() ?? fallback }

    mutating func frame(opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool? = nil, rsv: UInt8 = 0) {
        let mask = masked ?? (setup.role == .server)
        keySeed = keySeed &* 1_103_515_245 &+ 12345
        let start = bytes.count
        payload.withUnsafeBytes {
            FrameWriter.append(opcode: opcode, payload: $0, fin: fin, maskKey: mask ? keySeed : nil, to: &bytes)
        }
        bytes[start] |= rsv << 4
    }

    /// UTF-8 text of `count` characters of 1–4 bytes chosen by the recipe.
    mutating func text(_ count: Int) -> [UInt8] {
        let characters: [[UInt8]] = [Array("a".utf8), Array("é".utf8), Array("€".utf8), Array("𝄞".utf8)]
        var out: [UInt8] = []
        for _ in 0..<count { out += characters[Int(next() & 3)] }
        return out
    }

    /// One data message in `pieces` frames (split anywhere, even inside a character), a ping between fragments
    /// when asked; a message over the limit fails with 1009 at the first frame that goes past it.
    mutating func message(opcode: UInt8, payload: [UInt8], pieces: Int, interleave: Bool) {
        var cutsAt: [Int] = []
        for _ in 1..<pieces { cutsAt.append(payload.isEmpty ? 0 : Int(next()) % (payload.count + 1)) }
        cutsAt.sort()
        let bounds = [0] + cutsAt + [payload.count]
        var sent = 0
        for index in 0..<(bounds.count - 1) {
            let part = Array(payload[bounds[index]..<bounds[index + 1]])
            let last = index == bounds.count - 2
            frame(opcode: index == 0 ? opcode : Opcode.continuation, payload: part, fin: last)
            sent += part.count
            if sent > setup.maxMessageBytes {
                fail(1009)
                return
            }
            if interleave && !last {
                let ping = Array(part.prefix(3))
                frame(opcode: Opcode.ping, payload: ping)
                expected.events.append(.ping(ping))
            }
        }
        expected.events.append(opcode == Opcode.text ? .text(payload) : .binary(payload))
    }

    mutating func fail(_ code: UInt16) {
        expected.code = code
        done = true
    }

    mutating func build() {
        var count = 0
        while !done, count < 16, let op = recipe.next() {
            count += 1
            let length = Int(next()) % 40
            switch op & 7 {
            case 0, 5:
                message(
                    opcode: Opcode.text, payload: text(length), pieces: op & 7 == 0 ? 1 : 1 + Int(op >> 3 & 3),
                    interleave: op & 0x40 != 0)
            case 1, 6:
                let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(op)) }
                message(
                    opcode: Opcode.binary, payload: payload, pieces: op & 7 == 1 ? 1 : 1 + Int(op >> 3 & 3),
                    interleave: op & 0x40 != 0)
            case 2:
                let payload = Array(repeating: op, count: length)
                frame(opcode: Opcode.ping, payload: payload)
                expected.events.append(.ping(payload))
            case 3:
                let payload = Array(repeating: op, count: length * 3)
                frame(opcode: Opcode.pong, payload: payload)
                expected.events.append(.pong(payload))
            case 4:
                if op & 0x08 != 0 {
                    frame(opcode: Opcode.close, payload: [])
                    expected.events.append(.close(nil, []))
                } else {
                    let codes: [UInt16] = [1000, 1001, 1011, 3000, 4999]
                    let code = codes[Int(op >> 4) % codes.count]
                    let reason = text(length % 20)
                    frame(opcode: Opcode.close, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + reason)
                    expected.events.append(.close(code, reason))
                }
            default:
                violation(op >> 3)
            }
        }
    }

    /// Writes one frame the reader must fail on, with the code RFC 6455 names for it.
    mutating func violation(_ kind: UInt8) {
        switch kind % 8 {
        case 0:
            // Masking wrong for the role (§5.1): a server gets an unmasked frame, a client a masked one.
            frame(opcode: Opcode.binary, payload: [1, 2, 3], masked: setup.role != .server)
            fail(1002)
        case 1:
            frame(opcode: Opcode.text, payload: Array("x".utf8), rsv: 1 + (kind >> 3 & 3))
            fail(1002)
        case 2:
            frame(opcode: 3 + (kind >> 3 & 3), payload: [])
            fail(1002)
        case 3:
            frame(opcode: Opcode.continuation, payload: [0])
            fail(1002)
        case 4:
            frame(opcode: Opcode.ping, payload: Array(repeating: 0, count: 126))
            fail(1002)
        case 5:
            // Invalid UTF-8 (§8.1): a lone continuation byte, an overlong form, or a surrogate.
            let bad: [[UInt8]] = [[0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80]]
            let payload = bad[Int(kind >> 3) % bad.count]
            if payload.count > setup.maxMessageBytes {
                frame(opcode: Opcode.text, payload: payload)
                fail(1009)
            } else {
                frame(opcode: Opcode.text, payload: payload)
                fail(1007)
            }
        case 6:
            frame(opcode: Opcode.binary, payload: Array(repeating: 7, count: setup.maxMessageBytes + 1))
            fail(1009)
        default:
            // A Close with a code that never goes on the wire (§7.4.2).
            frame(opcode: Opcode.close, payload: [0x03, 0xED])
            fail(1002)
        }
    }
}

func checkBuilt(recipe: UnsafeRawBufferPointer, cutSeed: UnsafePointer<UInt8>, _ setup: Setup) {
    var builder = Builder(setup: setup, recipe: recipe)
    builder.build()
    let expected = builder.expected
    builder.bytes.withUnsafeBytes { input in
        let outcome = readAllWays(input, cutSeed: cutSeed, setup)
        require(
            outcome == expected,
            "built stream gave \(outcome.events) \(String(describing: outcome.code)), expected \(expected.events) \(String(describing: expected.code))"
        )
    }
}

/// Stops the run with the message; libFuzzer reports the abort as a crash and saves the input.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant broken: \(message())") }
}
