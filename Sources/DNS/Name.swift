// Domain names: a validated, lowercased wire form, parsed from text or decoded from messages.

/// A domain name held in its uncompressed wire form (RFC 1035 §3.1): length-prefixed labels ending with the zero
/// root label, ASCII letters lowercased so that equality and hashing are the case-insensitive comparison that
/// RFC 4343 asks for. Every value is valid: labels are 1–63 bytes and the whole wire form is at most 255 bytes.
public struct Name: Hashable, Sendable, CustomStringConvertible {
    /// The wire form, lowercased, ending with the root label `0`.
    public private(set) var wire: [UInt8]

    /// The maximum wire length of a name (RFC 1035 §2.3.4).
    public static let maximumWireLength = 255
    /// The maximum length of one label (RFC 1035 §2.3.4).
    public static let maximumLabelLength = 63

    /// The root name `"."`.
    public static let root = Name(uncheckedWire: [0])

    // Callers guarantee `wire` is a valid, lowercased wire form.
    init(uncheckedWire wire: [UInt8]) {
        self.wire = wire
    }

    /// Parses a name written as text, `"a.b.c."` or `"a.b.c"` (both give the same name; use `Name.isFQDN` to tell
    /// them apart). `"."` is the root. Bytes allowed in labels: printable ASCII except `.` and `\`; escapes
    /// (RFC 1035 §5.1 `\DDD`) are not supported because no name this gateway resolves needs them.
    public init(parsing text: some StringProtocol) throws(DNSError) {
        try self.init(parsingBytes: text.utf8)
    }

    /// Parses a name from the bytes of its text form; see `init(parsing:)`.
    public init(parsingBytes text: some Collection<UInt8>) throws(DNSError) {
        if text.isEmpty { throw .emptyName }
        if text.count == 1 && text.first == UInt8(ascii: ".") {
            self.wire = [0]
            return
        }
        var wire: [UInt8] = []
        wire.reserveCapacity(min(text.count + 2, Name.maximumWireLength))
        // `labelStart` indexes the length byte of the label being read, written when the label closes.
        var labelStart = 0
        wire.append(0)
        for byte in text {
            if byte == UInt8(ascii: ".") {
                let length = wire.count - labelStart - 1
                if length == 0 { throw .emptyLabel }
                wire[labelStart] = UInt8(length)
                labelStart = wire.count
                wire.append(0)
                continue
            }
            guard byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") else { throw .invalidCharacter(byte) }
            if wire.count - labelStart - 1 == Name.maximumLabelLength { throw .labelTooLong }
            wire.append(asciiLowercased(byte))
            // +1 for the root label still to come.
            if wire.count + 1 > Name.maximumWireLength { throw .nameTooLong }
        }
        let last = wire.count - labelStart - 1
        if last > 0 {
            wire[labelStart] = UInt8(last)
            wire.append(0)
        }
        // Otherwise the text ended with a dot and the open placeholder is the root label.
        self.wire = wire
    }

    /// Whether a name written as text is absolute (ends with a dot), so that no search list applies
    /// (resolv.conf(5), "search").
    public static func isFQDN(_ text: some StringProtocol) -> Bool {
        text.hasSuffix(".")
    }

    /// The number of labels, not counting the root.
    public var labelCount: Int {
        var count = 0
        var offset = 0
        while wire[offset] != 0 {
            count += 1
            offset += Int(wire[offset]) + 1
        }
        return count
    }

    /// Whether this is the root name.
    public var isRoot: Bool { wire.count == 1 }

    /// The labels as byte arrays, first (leftmost) label first.
    public var labels: [[UInt8]] {
        var result: [[UInt8]] = []
        var offset = 0
        while wire[offset] != 0 {
            let length = Int(wire[offset])
            result.append(Array(wire[offset + 1..<offset + 1 + length]))
            offset += length + 1
        }
        return result
    }

    /// This name followed by `suffix` (used for search-list expansion); fails when the result exceeds 255 bytes.
    public func appending(_ suffix: Name) throws(DNSError) -> Name {
        let length = wire.count - 1 + suffix.wire.count
        if length > Name.maximumWireLength { throw .nameTooLong }
        var combined = wire
        combined.removeLast()
        combined.append(contentsOf: suffix.wire)
        return Name(uncheckedWire: combined)
    }

    /// Appends the uncompressed wire form to `buffer` (RFC 1035 §3.1).
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: wire)
    }

    /// The text form with a trailing dot, `"www.example.com."`; bytes that are not printable, and dots inside a
    /// label, are written `\DDD` (RFC 1035 §5.1).
    public var description: String {
        if isRoot { return "." }
        var text: [UInt8] = []
        text.reserveCapacity(wire.count)
        var offset = 0
        while wire[offset] != 0 {
            let length = Int(wire[offset])
            for byte in wire[offset + 1..<offset + 1 + length] {
                if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: ".") && byte != UInt8(ascii: "\\") {
                    text.append(byte)
                } else {
                    text.append(UInt8(ascii: "\\"))
                    text.append(UInt8(ascii: "0") + byte / 100)
                    text.append(UInt8(ascii: "0") + byte / 10 % 10)
                    text.append(UInt8(ascii: "0") + byte % 10)
                }
            }
            text.append(UInt8(ascii: "."))
            offset += length + 1
        }
        return String(decoding: text, as: UTF8.self)
    }
}

@inline(__always)
func asciiLowercased(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
}

/// Whether `bytes` form a DNS-1123 label as Kubernetes defines it: `[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?`
/// (RFC 1123 §2.1 host name label, lowercase only, at most 63 bytes). The gateway rejects pod ids with this before
/// any lookup, so hostile paths never reach DNS.
public func isDNS1123Label(_ bytes: some Collection<UInt8>) -> Bool {
    let count = bytes.count
    guard count >= 1 && count <= 63 else { return false }
    var position = 0
    for byte in bytes {
        let isAlphanumeric =
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        if !isAlphanumeric {
            // A hyphen is allowed only inside the label.
            guard byte == UInt8(ascii: "-") && position != 0 && position != count - 1 else { return false }
        }
        position += 1
    }
    return true
}
