// Where WebSocket frames start in a relayed byte stream (RFC 6455 §5.2), without decoding or copying payloads.

/// Follows the frames of one direction of a WebSocket connection so that a relay knows when it stands between two
/// frames: the only place a frame of its own (a Close on drain, RFC 6455 §5.5.1) may be put into the stream.
///
/// Only the header is read: byte 1's mask bit and 7-bit length, then the 16- or 64-bit extended length and the
/// masking key; payload bytes are skipped in bulk. Control frames may sit between the fragments of a message
/// (RFC 6455 §5.4), so every frame boundary is a place for a Close. It also notes when a Close frame began in
/// this direction (`closeSeen`), so that a relay knows when the closing handshake has gone both ways.
public struct FrameBoundaries: Sendable, Equatable {
    /// Payload bytes of the current frame still to come.
    private var remaining: UInt64 = 0
    /// The payload length being read from the header.
    private var length: UInt64 = 0
    /// Header bytes of the current frame seen so far (0 between frames).
    private var headerSeen: UInt8 = 0
    /// Length of the current header once byte 1 was seen (2 before).
    private var headerLength: UInt8 = 2
    /// Where the extended payload length ends in the header (2 when there is none).
    private var extendedEnd: UInt8 = 2

    /// A Close frame (opcode 0x8) began in this direction: its first header byte was followed.
    public private(set) var closeSeen = false

    public init() {}

    /// True between two frames: the stream so far ends exactly where a frame ended.
    public var isAtBoundary: Bool { remaining == 0 && headerSeen == 0 }

    /// Follows `bytes`. With `stopAtBoundary`, stops at the first frame boundary at or after the start of `bytes`
    /// and returns its offset (0 when already between frames); the bytes after it are not followed. Returns nil
    /// when no boundary was reached (or `stopAtBoundary` is false).
    public mutating func advance(_ bytes: UnsafeRawBufferPointer, stopAtBoundary: Bool = false) -> Int? {
        var offset = 0
        let count = bytes.count
        while true {
            if stopAtBoundary && isAtBoundary { return offset }
            if offset == count { return nil }
            if remaining > 0 {
                let step = Int(min(remaining, UInt64(count - offset)))
                remaining -= UInt64(step)
                offset += step
                continue
            }
            // A whole header in `bytes` (14 bytes is the longest): read at once. Otherwise byte by byte, across reads.
            if headerSeen == 0 && count - offset >= 14 {
                offset += readWholeHeader(bytes, at: offset)
                continue
            }
            let byte = bytes[offset]
            offset += 1
            readHeaderByte(byte)
        }
    }

    /// Reads the header at `bytes[start...]` (at least 14 bytes there) and returns its length.
    private mutating func readWholeHeader(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Int {
        if bytes[start] & 0x0F == 0x8 { closeSeen = true }
        let second = bytes[start + 1]
        let masked = second & 0x80 != 0 ? 4 : 0
        switch second & 0x7F {
        case 126:
            remaining = UInt64(bytes[start + 2]) << 8 | UInt64(bytes[start + 3])
            return 4 + masked
        case 127:
            var value: UInt64 = 0
            for index in (start + 2)..<(start + 10) { value = value << 8 | UInt64(bytes[index]) }
            remaining = value
            return 10 + masked
        case let short:
            remaining = UInt64(short)
            return 2 + masked
        }
    }

    private mutating func readHeaderByte(_ byte: UInt8) {
        let position = headerSeen
        headerSeen += 1
        switch position {
        case 0:
            if byte & 0x0F == 0x8 { closeSeen = true }
            length = 0
            headerLength = 2
            extendedEnd = 2
        case 1:
            let masked: UInt8 = byte & 0x80 != 0 ? 4 : 0
            let short = byte & 0x7F
            switch short {
            case 126: extendedEnd = 4
            case 127: extendedEnd = 10
            default:
                extendedEnd = 2
                length = UInt64(short)
            }
            headerLength = extendedEnd + masked
        default:
            // Extended length bytes (network order) come before the masking key.
            if position < extendedEnd { length = length << 8 | UInt64(byte) }
        }
        if headerSeen >= 2 && headerSeen == headerLength {
            headerSeen = 0
            remaining = length
        }
    }
}
