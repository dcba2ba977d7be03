// Frame headers (RFC 6455 §5.2) and masking (§5.3): decoding, encoding, and reading headers split across reads.

/// A decoded frame header (RFC 6455 §5.2).
public struct FrameHeader: Sendable, Equatable {
    public var fin: Bool
    /// RSV1–3 as the three bits below FIN; nonzero without a negotiated extension is a protocol error.
    public var reserved: UInt8
    public var opcode: UInt8
    public var masked: Bool
    public var length: UInt64
    /// The masking key as loaded little-endian from its four wire bytes (see `applyMask`).
    public var maskKey: UInt32
    /// Bytes the header occupies on the wire.
    public var size: Int

    @inlinable
    public init(fin: Bool, reserved: UInt8, opcode: UInt8, masked: Bool, length: UInt64, maskKey: UInt32, size: Int) {
        self.fin = fin
        self.reserved = reserved
        self.opcode = opcode
        self.masked = masked
        self.length = length
        self.maskKey = maskKey
        self.size = size
    }

    /// The most bytes a header occupies: 2, an 8-byte extended length and a 4-byte masking key.
    public static let maximumSize = 14

    /// Header size from its first two bytes: 2, plus 2 or 8 for an extended length, plus 4 for a masking key.
    @inlinable @inline(__always)
    public static func size(first: UInt8, second: UInt8) -> Int {
        let length7 = second & 0x7F
        let extended = length7 == 126 ? 2 : (length7 == 127 ? 8 : 0)
        return 2 + extended + (second & 0x80 != 0 ? 4 : 0)
    }

    /// Decodes a header whose `size(first:second:)` bytes are all at `bytes`.
    @inlinable @inline(__always)
    public static func decode(_ bytes: UnsafeRawPointer) -> FrameHeader {
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
    ///
    /// `maskKey` is stored as its in-memory (little-endian) bytes, the same form `decode` and `applyMask` use.
    @inlinable @inline(__always)
    public static func encode(
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
///
/// Invariant the caller keeps: `count` bytes are readable at `source` and writable at `destination`.
@inlinable @inline(__always)
public func applyMask(
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
/// header (at most 14, inline: no heap) until the rest arrives.
public struct FrameHeaderReader: Sendable {
    @usableFromInline var carry: (UInt64, UInt64) = (0, 0)
    @usableFromInline var carried = 0

    public init() {}

    /// True when no bytes of a partial header are held.
    @inlinable
    public var isEmpty: Bool { carried == 0 }

    /// The next header starting at `cursor` (advanced past it, `left` reduced), or nil when the `left` bytes end
    /// inside a header (they are kept for the next call). `left` bytes must be readable at `cursor`.
    @inlinable
    public mutating func next(_ cursor: inout UnsafeRawPointer, _ left: inout Int) -> FrameHeader? {
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
        return gather(&cursor, &left)
    }

    /// A header split across reads: gathered byte by byte (rare: only at a read boundary).
    @usableFromInline
    mutating func gather(_ cursor: inout UnsafeRawPointer, _ left: inout Int) -> FrameHeader? {
        var complete: FrameHeader?
        var carried = self.carried
        // `slot` is the 16 bytes of `carry`; `carried` stays below 14 between calls (a full header is decoded
        // and cleared at once), so the store at `slot[carried]` is in bounds.
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
        self.carried = complete == nil ? carried : 0
        return complete
    }
}
