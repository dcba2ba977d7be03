// RFC 6455 pieces ws-echo and ws-load share: the accept key, base64, masking, and frame headers.
import COpenSSL

/// Frame opcodes (RFC 6455 §5.2).
enum Opcode {
    static let continuation: UInt8 = 0x0
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    static func isKnown(_ opcode: UInt8) -> Bool { opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA) }
    static func isControl(_ opcode: UInt8) -> Bool { opcode >= 0x8 }
}

/// The opening handshake's key arithmetic (RFC 6455 §4.2.2 step 5.4 and §1.3).
enum Handshake {
    static let guid = Array("258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8)
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
    static func acceptKey<Key: Collection<UInt8>>(for key: Key) -> [UInt8] {
        let input = Array(key) + guid
        var digest = [UInt8](repeating: 0, count: 20)
        _ = input.withUnsafeBufferPointer { SHA1($0.baseAddress, $0.count, &digest) }
        return base64(digest)
    }

    /// Standard base64 with padding (RFC 4648 §4).
    static func base64(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let word = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int(word >> UInt32(shift) & 63)]) }
            index += 3
        }
        let left = bytes.count - index
        if left > 0 {
            let word = UInt32(bytes[index]) << 16 | (left == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out.append(alphabet[Int(word >> 18 & 63)])
            out.append(alphabet[Int(word >> 12 & 63)])
            out.append(left == 2 ? alphabet[Int(word >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return out
    }
}

/// A decoded frame header (RFC 6455 §5.2).
struct FrameHeader {
    var fin: Bool
    /// RSV1–3 as the three bits below FIN; nonzero without a negotiated extension is a protocol error.
    var reserved: UInt8
    var opcode: UInt8
    var masked: Bool
    var length: UInt64
    /// The masking key as loaded little-endian from its four wire bytes (see `applyMask`).
    var maskKey: UInt32
    /// Bytes the header occupies on the wire.
    var size: Int

    /// Header size from its first two bytes: 2, plus 2 or 8 for an extended length, plus 4 for a masking key.
    @inline(__always)
    static func size(first: UInt8, second: UInt8) -> Int {
        let length7 = second & 0x7F
        let extended = length7 == 126 ? 2 : (length7 == 127 ? 8 : 0)
        return 2 + extended + (second & 0x80 != 0 ? 4 : 0)
    }

    /// Decodes a header whose `size(first:second:)` bytes are all at `bytes`.
    @inline(__always)
    static func decode(_ bytes: UnsafeRawPointer) -> FrameHeader {
        let first = bytes.load(as: UInt8.self)
        let second = bytes.load(fromByteOffset: 1, as: UInt8.self)
        var length = UInt64(second & 0x7F)
        var offset = 2
        if length == 126 {
            length =
                UInt64(bytes.load(fromByteOffset: 2, as: UInt8.self)) << 8
                | UInt64(bytes.load(fromByteOffset: 3, as: UInt8.self))
            offset = 4
        } else if length == 127 {
            length = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            offset = 10
        }
        let masked = second & 0x80 != 0
        let key = masked ? bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self) : 0
        return FrameHeader(
            fin: first & 0x80 != 0, reserved: (first >> 4) & 0x7, opcode: first & 0x0F, masked: masked,
            length: length, maskKey: key, size: offset + (masked ? 4 : 0))
    }

    /// Writes a header with FIN set as given, `opcode`, `length`, and a masking key when `maskKey` is non-nil
    /// (the shortest length encoding, §5.2). Returns the bytes written (at most 14).
    @inline(__always)
    static func encode(
        into destination: UnsafeMutableRawPointer, fin: Bool, opcode: UInt8, length: Int, maskKey: UInt32?
    ) -> Int {
        destination.storeBytes(of: (fin ? 0x80 : 0) | opcode, as: UInt8.self)
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        var offset: Int
        if length <= 125 {
            destination.storeBytes(of: maskBit | UInt8(length), toByteOffset: 1, as: UInt8.self)
            offset = 2
        } else if length <= 0xFFFF {
            destination.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
            destination.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            offset = 4
        } else {
            destination.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
            destination.storeBytes(of: UInt64(length).bigEndian, toByteOffset: 2, as: UInt64.self)
            offset = 10
        }
        if let maskKey {
            destination.storeBytes(of: maskKey, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
        return offset
    }
}

/// XORs `count` bytes from `source` into `destination` with the masking key (RFC 6455 §5.3), starting at key byte
/// `phase` (the payload offset modulo 4). `source` and `destination` may be the same; eight bytes per step.
@inline(__always)
func applyMask(
    _ key: UInt32, phase: Int, from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, count: Int
) {
    // Key byte j of the wire sits at bit 8j of `key` (little-endian load); rotate so byte 0 is the one due now.
    let shift = UInt32((phase & 3) * 8)
    let rotated = shift == 0 ? key : (key >> shift) | (key << (32 - shift))
    let wide = UInt64(rotated) | UInt64(rotated) << 32
    var index = 0
    while index + 8 <= count {
        let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        destination.storeBytes(of: word ^ wide, toByteOffset: index, as: UInt64.self)
        index += 8
    }
    while index < count {
        let keyByte = UInt8(truncatingIfNeeded: rotated >> UInt32((index & 3) * 8))
        destination.storeBytes(
            of: source.load(fromByteOffset: index, as: UInt8.self) ^ keyByte, toByteOffset: index, as: UInt8.self)
        index += 1
    }
}

/// Reads frame headers from a byte stream that may split a header across reads: keeps the bytes of a partial
/// header (at most 14) until the rest arrives. Used by ws-echo and ws-load alike.
struct FrameHeaderReader {
    private var carry: (UInt64, UInt64) = (0, 0)
    private var carried = 0

    /// The next header starting at `cursor` (advanced past it, `left` reduced), or nil when the `left` bytes end
    /// inside a header (they are kept for the next call).
    mutating func next(_ cursor: inout UnsafeRawPointer, _ left: inout Int) -> FrameHeader? {
        if carried == 0 && left >= 2
            && left
                >= FrameHeader.size(
                    first: cursor.load(as: UInt8.self), second: cursor.load(fromByteOffset: 1, as: UInt8.self))
        {
            let header = FrameHeader.decode(cursor)
            cursor += header.size
            left -= header.size
            return header
        }
        // A header split across reads: gather it byte by byte (rare: only at a read boundary).
        var complete: FrameHeader?
        withUnsafeMutableBytes(of: &carry) { slot in
            while left > 0 {
                slot[carried] = cursor.load(as: UInt8.self)
                carried += 1
                cursor += 1
                left -= 1
                if carried >= 2 && carried == FrameHeader.size(first: slot[0], second: slot[1]) {
                    complete = FrameHeader.decode(UnsafeRawPointer(slot.baseAddress!))
                    return
                }
            }
        }
        if complete != nil { carried = 0 }
        return complete
    }
}
