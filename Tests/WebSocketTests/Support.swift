// Test helpers: building frames, and feeding a MessageReader whole, at every split point and byte by byte.
import WebSocket

/// An event with its bytes copied out of the callback.
enum Event: Equatable, CustomStringConvertible {
    case text([UInt8])
    case binary([UInt8])
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16?, [UInt8])

    init(_ event: FrameEvent) {
        switch event {
        case .text(let bytes): self = .text(Array(bytes))
        case .binary(let bytes): self = .binary(Array(bytes))
        case .ping(let bytes): self = .ping(Array(bytes))
        case .pong(let bytes): self = .pong(Array(bytes))
        case .close(let code, let reason): self = .close(code?.rawValue, Array(reason))
        }
    }

    static func text(_ string: String) -> Event { .text(Array(string.utf8)) }

    var description: String {
        switch self {
        case .text(let bytes): "text(\(bytes.count) bytes)"
        case .binary(let bytes): "binary(\(bytes.count) bytes)"
        case .ping(let bytes): "ping(\(bytes))"
        case .pong(let bytes): "pong(\(bytes))"
        case .close(let code, let reason): "close(\(code.map(String.init) ?? "nil"), \(reason))"
        }
    }
}

/// What feeding a stream produced: the events in order and the failure, if any.
struct Outcome: Equatable, CustomStringConvertible {
    var events: [Event]
    var failure: CloseCode?

    var description: String { "\(events) failure: \(failure.map { String($0.rawValue) } ?? "none")" }
}

/// The masking key of RFC 6455 §5.7's examples (37 fa 21 3d), as `FrameWriter` takes it.
let exampleKey = UInt32(littleEndian: 0x3D21_FA37)

/// One frame's wire bytes. `declaredLength` overrides the length in the header (the payload is still appended
/// as given); `maskKey` masks the payload as a client does.
func frame(
    _ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, maskKey: UInt32? = nil,
    declaredLength: UInt64? = nil
) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | rsv << 4 | opcode]
    let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
    let length = declaredLength ?? UInt64(payload.count)
    if length < 126 {
        out.append(maskBit | UInt8(length))
    } else if length <= 0xFFFF {
        out += [maskBit | 126, UInt8(length >> 8), UInt8(length & 0xFF)]
    } else {
        out.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: length >> UInt64(shift)))
        }
    }
    guard let maskKey else { return out + payload }
    withUnsafeBytes(of: maskKey) { out += $0 }
    let start = out.count
    out += payload
    out.withUnsafeMutableBytes { bytes in
        let tail = bytes.baseAddress! + start
        applyMask(maskKey, phase: 0, from: tail, to: tail, count: payload.count)
    }
    return out
}

/// A frame as a client sends it (masked, for a server reader).
func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
    frame(opcode, payload, fin: fin, maskKey: 0x1234_5678 &+ UInt32(payload.count))
}

func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

/// How a stream is cut into reads.
enum Feeding: CustomStringConvertible {
    case whole
    case split(Int)
    case byteByByte

    func chunks(_ count: Int) -> [Range<Int>] {
        switch self {
        case .whole: [0..<count]
        case .split(let at): [0..<at, at..<count]
        case .byteByByte: (0..<count).map { $0..<($0 + 1) }
        }
    }

    var description: String {
        switch self {
        case .whole: "whole"
        case .split(let at): "split at \(at)"
        case .byteByByte: "byte by byte"
        }
    }

    /// Whole, at every split point (or, for long streams, at every point near the ends and a spread of points in
    /// between), and byte by byte.
    static func all(_ count: Int) -> [Feeding] {
        var points = Array(1..<max(1, count))
        if count > 4096 { points = points.filter { $0 < 64 || $0 > count - 64 || $0 % 1021 == 0 } }
        return [.whole] + points.map { .split($0) } + [.byteByByte]
    }
}

/// Feeds `stream` to a fresh reader in the reads `feeding` makes, with a scratch buffer of `scratchSize` bytes.
/// `idleAtEnd` reports whether the reader was idle (holding no memory) after the last read.
func feed(
    _ stream: [UInt8], role: Role, feeding: Feeding, scratchSize: Int = 1 << 16, maxMessageBytes: Int = 1 << 20
) -> (outcome: Outcome, idleAtEnd: Bool) {
    var reader = MessageReader(role: role, maxMessageBytes: maxMessageBytes)
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchSize, alignment: 16)
    defer { scratch.deallocate() }
    var events: [Event] = []
    var failure: CloseCode?
    stream.withUnsafeBytes { all in
        for range in feeding.chunks(stream.count) where failure == nil {
            // Each read is its own buffer, as a socket read would be, then poisoned: nothing may point into it later.
            let read = UnsafeMutableRawBufferPointer.allocate(byteCount: range.count, alignment: 1)
            read.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[range]))
            failure = reader.feed(UnsafeRawBufferPointer(read), scratch: scratch) { events.append(Event($0)) }
            read.initializeMemory(as: UInt8.self, repeating: 0xEE)
            read.deallocate()
            // Scratch is the caller's again between calls: a reader that kept data there would read this. (Its
            // start is enough: a message is gathered from offset 0; poisoning 64 KiB per byte fed is too slow.)
            UnsafeMutableRawBufferPointer(rebasing: scratch.prefix(4096)).initializeMemory(
                as: UInt8.self, repeating: 0xDD)
        }
    }
    return (Outcome(events: events, failure: failure), reader.isIdle)
}
