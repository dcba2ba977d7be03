// IPv4 and IPv6 addresses as plain values, with text parsing and RFC 5952 formatting (no libc, no Foundation).

/// An IPv4 address; `value` holds the four octets with the first one in the most significant byte.
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad text, `"10.0.0.1"`: exactly four decimal parts of 0–255 without leading zeros (as
    /// inet_pton(3) does, so `"010"` is never read as octal by one program and decimal by another).
    public init?(parsing text: some StringProtocol) {
        guard let value = parseIPv4(text.utf8) else { return nil }
        self.value = value
    }

    /// The octets in network order.
    public var octets: [UInt8] {
        [
            UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
            UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value),
        ]
    }

    public var description: String {
        var text: [UInt8] = []
        text.reserveCapacity(15)
        appendIPv4(value, to: &text)
        return String(decoding: text, as: UTF8.self)
    }
}

/// An IPv6 address as two 64-bit halves, `high` holding the first eight bytes in network order.
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Builds an address from 16 bytes in network order; `nil` unless there are exactly 16.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var index = 0
        for byte in bytes {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            index += 1
        }
        self.high = high
        self.low = low
    }

    /// Parses the text forms of RFC 4291 §2.2: eight groups of 1–4 hex digits, one `::` standing for one or more
    /// zero groups, and an optional dotted-quad tail. Zone indices (`%eth0`) are not accepted.
    public init?(parsing text: some StringProtocol) {
        guard let (high, low) = parseIPv6(Array(text.utf8)) else { return nil }
        self.high = high
        self.low = low
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) {
            result.append(UInt8(truncatingIfNeeded: high >> UInt64(shift)))
        }
        for shift in stride(from: 56, through: 0, by: -8) {
            result.append(UInt8(truncatingIfNeeded: low >> UInt64(shift)))
        }
        return result
    }

    /// The 16-bit group at `index` (0–7), first group first.
    public func group(_ index: Int) -> UInt16 {
        let half = index < 4 ? high : low
        return UInt16(truncatingIfNeeded: half >> UInt64((3 - index % 4) * 16))
    }

    /// The RFC 5952 §4 canonical text: lowercase hex, no leading zeros, the longest run of two or more zero groups
    /// (the first such run on a tie) written `::`, and IPv4-mapped addresses written `::ffff:a.b.c.d` (§5).
    public var description: String {
        var text: [UInt8] = []
        text.reserveCapacity(39)
        if high == 0 && low >> 32 == 0xFFFF {
            text.append(contentsOf: "::ffff:".utf8)
            appendIPv4(UInt32(truncatingIfNeeded: low), to: &text)
            return String(decoding: text, as: UTF8.self)
        }
        var bestStart = -1
        var bestLength = 1  // a single zero group is never compressed (§4.2.2)
        var runStart = -1
        for index in 0..<8 {
            if group(index) == 0 {
                if runStart < 0 { runStart = index }
                let length = index - runStart + 1
                if length > bestLength {
                    bestStart = runStart
                    bestLength = length
                }
            } else {
                runStart = -1
            }
        }
        var index = 0
        while index < 8 {
            if index == bestStart {
                text.append(contentsOf: "::".utf8)
                index += bestLength
                continue
            }
            if index != 0 && text.last != UInt8(ascii: ":") { text.append(UInt8(ascii: ":")) }
            appendHex(group(index), to: &text)
            index += 1
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses either text form; see `IPv4Address(parsing:)` and `IPv6Address(parsing:)`.
    public init?(parsing text: some StringProtocol) {
        if text.utf8.contains(UInt8(ascii: ":")) {
            guard let address = IPv6Address(parsing: text) else { return nil }
            self = .v6(address)
        } else {
            guard let address = IPv4Address(parsing: text) else { return nil }
            self = .v4(address)
        }
    }

    public var description: String {
        switch self {
        case .v4(let address): return address.description
        case .v6(let address): return address.description
        }
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

private func appendHex(_ group: UInt16, to text: inout [UInt8]) {
    var started = false
    for shift in stride(from: 12, through: 0, by: -4) {
        let digit = Int(group >> UInt16(shift) & 0xF)
        if digit != 0 || started || shift == 0 {
            text.append(hexDigits[digit])
            started = true
        }
    }
}

private func appendIPv4(_ value: UInt32, to text: inout [UInt8]) {
    for shift in stride(from: 24, through: 0, by: -8) {
        let octet = UInt8(truncatingIfNeeded: value >> UInt32(shift))
        if octet >= 100 { text.append(UInt8(ascii: "0") + octet / 100) }
        if octet >= 10 { text.append(UInt8(ascii: "0") + octet / 10 % 10) }
        text.append(UInt8(ascii: "0") + octet % 10)
        if shift != 0 { text.append(UInt8(ascii: ".")) }
    }
}

private func parseIPv4(_ text: some Collection<UInt8>) -> UInt32? {
    var value: UInt32 = 0
    var parts = 0
    var part: UInt32 = 0
    var digits = 0
    for byte in text {
        if byte == UInt8(ascii: ".") {
            guard digits > 0 && parts < 3 else { return nil }
            value = value << 8 | part
            parts += 1
            part = 0
            digits = 0
        } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
            if digits > 0 && part == 0 { return nil }  // leading zero
            part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
            digits += 1
            guard part <= 255 else { return nil }
        } else {
            return nil
        }
    }
    guard digits > 0 && parts == 3 else { return nil }
    return value << 8 | part
}

private func hexValue(_ byte: UInt8) -> UInt16? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt16(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt16(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt16(byte - UInt8(ascii: "A") + 10)
    default: return nil
    }
}

private func parseIPv6(_ text: [UInt8]) -> (UInt64, UInt64)? {
    let count = text.count
    guard count >= 2 && count <= 45 else { return nil }
    var groups: [UInt16] = []
    groups.reserveCapacity(8)
    var compressAt: Int? = nil
    var index = 0
    if text[0] == UInt8(ascii: ":") {
        guard text[1] == UInt8(ascii: ":") else { return nil }
        compressAt = 0
        index = 2
    }
    while index < count {
        var end = index
        var hasDot = false
        while end < count && text[end] != UInt8(ascii: ":") {
            if text[end] == UInt8(ascii: ".") { hasDot = true }
            end += 1
        }
        if hasDot {
            // The dotted-quad tail fills the last two groups and must end the text.
            guard end == count, groups.count <= 6, let v4 = parseIPv4(text[index..<end]) else { return nil }
            groups.append(UInt16(truncatingIfNeeded: v4 >> 16))
            groups.append(UInt16(truncatingIfNeeded: v4))
            break
        }
        guard end - index >= 1 && end - index <= 4 else { return nil }
        var group: UInt16 = 0
        for position in index..<end {
            guard let digit = hexValue(text[position]) else { return nil }
            group = group << 4 | digit
        }
        groups.append(group)
        guard groups.count <= 8 else { return nil }
        if end == count { break }
        if end + 1 < count && text[end + 1] == UInt8(ascii: ":") {
            guard compressAt == nil else { return nil }
            compressAt = groups.count
            index = end + 2
        } else {
            index = end + 1
            guard index < count else { return nil }  // a single trailing colon
        }
    }
    if let compressAt {
        // "::" stands for at least one zero group (RFC 4291 §2.2).
        guard groups.count <= 7 else { return nil }
        groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: compressAt)
    } else {
        guard groups.count == 8 else { return nil }
    }
    var high: UInt64 = 0
    var low: UInt64 = 0
    for index in 0..<4 { high = high << 16 | UInt64(groups[index]) }
    for index in 4..<8 { low = low << 16 | UInt64(groups[index]) }
    return (high, low)
}
