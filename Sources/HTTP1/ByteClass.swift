// ASCII byte classes of RFC 9110 §5.6 (tchar, field-vchar, OWS) as branch-light checks on single bytes.

/// Byte classes used by the head parser, the chunked decoder and the field-value helpers.
enum ByteClass {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let comma: UInt8 = 0x2C
    static let semicolon: UInt8 = 0x3B
    static let question: UInt8 = 0x3F

    // Bit b of `tcharLow` is set when byte b (0..<64) is a tchar; bit (b - 64) of `tcharHigh` for 64..<128.
    // Tests recompute both masks from the RFC 9110 §5.6.2 character list.
    static let tcharLow: UInt64 = 0x03ff_6cfa_0000_0000
    static let tcharHigh: UInt64 = 0x57ff_ffff_c7ff_fffe

    /// tchar of RFC 9110 §5.6.2: the characters a token (method, field name, coding name) may hold.
    @inline(__always)
    static func isTchar(_ byte: UInt8) -> Bool {
        if byte < 64 { return (tcharLow >> UInt64(byte)) & 1 == 1 }
        if byte < 128 { return (tcharHigh >> UInt64(byte &- 64)) & 1 == 1 }
        return false
    }

    /// field-vchar of RFC 9110 §5.5: VCHAR or obs-text.
    @inline(__always)
    static func isFieldVchar(_ byte: UInt8) -> Bool {
        (byte > 0x20 && byte < 0x7F) || byte >= 0x80
    }

    /// OWS member of RFC 9110 §5.6.3: SP or HTAB.
    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == sp || byte == htab
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= 0x30 && byte <= 0x39
    }

    /// ASCII lowercase; other bytes unchanged.
    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// Value of a hex digit, or nil when `byte` is not one (RFC 9112 §7.1 chunk-size is 1*HEXDIG).
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt64? {
        switch byte {
        case 0x30...0x39: return UInt64(byte &- 0x30)
        case 0x41...0x46: return UInt64(byte &- 0x41 &+ 10)
        case 0x61...0x66: return UInt64(byte &- 0x61 &+ 10)
        default: return nil
        }
    }
}

/// `equalsLowercase` eight bytes at a time, for literals of `a`–`z`, `0`–`9` and `-` only, compared with bytes the
/// parser accepted in a field name or value: then `byte | 0x20` equals a literal byte exactly when the byte equals it
/// ignoring case (the other bytes that map onto `-` and the digits, CR and controls 0x10–0x19, never pass the parser,
/// and every other byte maps outside the literal's alphabet).
@inline(__always)
func equalsKnownName(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ literal: StaticString) -> Bool {
    let count = end &- start
    guard count == literal.utf8CodeUnitCount, let base = bytes.baseAddress else { return false }
    let text = UnsafeRawPointer(base + start)
    let lit = UnsafeRawPointer(literal.utf8Start)
    let lower: UInt64 = 0x2020_2020_2020_2020
    if count >= 8 {
        var offset = 0
        while offset &+ 8 <= count {
            let word = text.loadUnaligned(fromByteOffset: offset, as: UInt64.self) | lower
            guard word == lit.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
            offset &+= 8
        }
        // The last bytes as one word ending at the end (it overlaps bytes already compared).
        if offset < count {
            let word = text.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self) | lower
            return word == lit.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
        }
        return true
    }
    for offset in 0..<count
    where text.load(fromByteOffset: offset, as: UInt8.self) | 0x20 != lit.load(fromByteOffset: offset, as: UInt8.self) {
        return false
    }
    return true
}

/// Case-insensitive ASCII comparison of a byte range with a lowercase literal.
@inline(__always)
func equalsLowercase(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ literal: StaticString) -> Bool {
    let count = literal.utf8CodeUnitCount
    guard end - start == count else { return false }
    let lit = literal.utf8Start
    var i = 0
    while i < count {
        if ByteClass.lower(bytes[start + i]) != lit[i] { return false }
        i += 1
    }
    return true
}
