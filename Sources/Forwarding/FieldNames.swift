// Byte-level helpers over a parsed head: case-insensitive name tests, list walking and field roles.
import HTTP1

/// OWS of RFC 9110 §5.6.3.
@inline(__always)
func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

/// ASCII lowercase; other bytes unchanged.
@inline(__always)
func lowercased(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }

/// Whether `buf[range]` equals the lowercase `literal`, ignoring ASCII case (field names: RFC 9110 §5.1).
@inline(__always)
func equalsLowercase(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ literal: StaticString) -> Bool {
    guard range.count == literal.utf8CodeUnitCount else { return false }
    let bytes = literal.utf8Start
    var offset = 0
    for index in range {
        if lowercased(buf[index]) != bytes[offset] { return false }
        offset += 1
    }
    return true
}

/// Whether `buf[range]` equals `literal`, ignoring ASCII case, eight bytes at a time: for literals of `a`–`z`, `0`–`9`
/// and `-` only, compared with bytes the parser accepted in a field name or value. Then `byte | 0x20` equals a literal
/// byte exactly when the byte equals it ignoring case: the other bytes that map onto `-` and the digits (CR and
/// controls 0x10–0x19) never pass the parser, and every other byte maps outside the literal's alphabet.
@inline(__always)
func equalsKnownName(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ literal: StaticString) -> Bool {
    let count = range.count
    guard count == literal.utf8CodeUnitCount, let base = buf.baseAddress else { return false }
    let bytes = UnsafeRawPointer(base + range.lowerBound)
    let lit = UnsafeRawPointer(literal.utf8Start)
    let lower: UInt64 = 0x2020_2020_2020_2020
    if count >= 8 {
        var offset = 0
        while offset &+ 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) | lower
            guard word == lit.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
            offset &+= 8
        }
        // The last bytes as one word ending at the end (it overlaps bytes already compared).
        if offset < count {
            let word = bytes.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self) | lower
            return word == lit.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
        }
        return true
    }
    for offset in 0..<count
    where bytes.load(fromByteOffset: offset, as: UInt8.self) | 0x20 != lit.load(fromByteOffset: offset, as: UInt8.self)
    {
        return false
    }
    return true
}

/// Whether `buf[range]` equals `lowercase` (already lowercase), ignoring ASCII case.
@inline(__always)
func equalsLowercase(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ lowercase: [UInt8]) -> Bool {
    guard range.count == lowercase.count else { return false }
    var offset = 0
    for index in range {
        if lowercased(buf[index]) != lowercase[offset] { return false }
        offset += 1
    }
    return true
}

/// Whether two ranges of `buf` hold the same bytes, ignoring ASCII case.
@inline(__always)
func equalsIgnoringCase(_ buf: UnsafeBufferPointer<UInt8>, _ left: Range<Int>, _ right: Range<Int>) -> Bool {
    guard left.count == right.count else { return false }
    var other = right.lowerBound
    for index in left {
        if lowercased(buf[index]) != lowercased(buf[other]) { return false }
        other += 1
    }
    return true
}

/// Calls `body` with each comma-separated element of `buf[range]`, OWS trimmed, empty ones skipped (RFC 9110
/// §5.6.1); `body` returns false to stop. Returns false when stopped.
@inline(__always)
@discardableResult
func forEachListElement(
    _ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Bool
) -> Bool {
    var elementStart = range.lowerBound
    while elementStart < range.upperBound {
        var elementEnd = elementStart
        while elementEnd < range.upperBound && buf[elementEnd] != 0x2C { elementEnd += 1 }
        var start = elementStart
        var end = elementEnd
        while start < end && isWhitespace(buf[start]) { start += 1 }
        while end > start && isWhitespace(buf[end - 1]) { end -= 1 }
        if start < end && !body(start..<end) { return false }
        elementStart = elementEnd + 1
    }
    return true
}

/// What the rewriters do with a received field, decided from its name alone.
enum FieldRole {
    case other
    case host
    /// `Connection` (RFC 9110 §7.6.1): dropped; its tokens name more fields to drop.
    case connection
    /// Hop-by-hop by definition (RFC 9110 §7.6.1, §7.8, §10.1.4, §11.7.2): dropped.
    case hopByHop
    /// Framing: never dropped, even when a Connection token names it (that would desynchronise the body).
    case framing
    case forwardedFor
    case realIP
    case forwardedProto
    case requestID

    /// Role of a field the parser recognised as `known`, in a request (`request` true) or a response.
    @inline(__always)
    init(_ known: KnownField, request: Bool) {
        switch known {
        case .other: self = .other
        case .host: self = .host
        case .connection: self = .connection
        case .upgrade, .te, .keepAlive, .proxyConnection, .http2Settings: self = .hopByHop
        case .proxyAuthorization: self = request ? .hopByHop : .other
        case .contentLength, .transferEncoding: self = .framing
        case .xForwardedFor: self = .forwardedFor
        case .xForwardedProto: self = .forwardedProto
        case .xRealIP: self = .realIP
        case .xRequestID: self = .requestID
        }
    }

    /// Role of the field named `buf[name]` in a request (`request` true) or a response.
    @inline(__always)
    init(_ buf: UnsafeBufferPointer<UInt8>, _ name: Range<Int>, request: Bool) {
        switch name.count {
        case 2 where equalsKnownName(buf, name, "te"):
            self = .hopByHop
        case 4 where equalsKnownName(buf, name, "host"):
            self = .host
        case 7 where equalsKnownName(buf, name, "upgrade"):
            self = .hopByHop
        case 9 where equalsKnownName(buf, name, "x-real-ip"):
            self = .realIP
        case 10 where equalsKnownName(buf, name, "connection"):
            self = .connection
        case 10 where equalsKnownName(buf, name, "keep-alive"):
            self = .hopByHop
        case 12 where equalsKnownName(buf, name, "x-request-id"):
            self = .requestID
        case 14 where equalsKnownName(buf, name, "content-length"):
            self = .framing
        case 14 where equalsKnownName(buf, name, "http2-settings"):
            self = .hopByHop
        case 15 where equalsKnownName(buf, name, "x-forwarded-for"):
            self = .forwardedFor
        case 16 where equalsKnownName(buf, name, "proxy-connection"):
            self = .hopByHop
        case 17 where equalsKnownName(buf, name, "transfer-encoding"):
            self = .framing
        case 17 where equalsKnownName(buf, name, "x-forwarded-proto"):
            self = .forwardedProto
        case 19 where request && equalsKnownName(buf, name, "proxy-authorization"):
            self = .hopByHop
        default:
            self = .other
        }
    }
}

/// Connection tokens of a head that name other fields (anything but `close`, `keep-alive` and `upgrade`, whose
/// fields are dropped anyway). Checked per field only when such a token exists, so the common head costs one pass.
struct ConnectionTokens {
    let namesOtherFields: Bool

    /// From what the parser found while it read the head's Connection fields.
    @inline(__always)
    init(_ head: borrowing HeadParser, _ buf: UnsafeBufferPointer<UInt8>) {
        namesOtherFields = head.connectionNamesOtherFields
    }

    /// Whether a Connection field of `head` lists the field name `buf[name]` (RFC 9110 §7.6.1).
    @inline(__always)
    func lists(_ name: Range<Int>, _ head: borrowing HeadParser, _ buf: UnsafeBufferPointer<UInt8>) -> Bool {
        // The common head names no other field: decided here, without a call (the call retained the parser).
        namesOtherFields && Self.connectionLists(name, head, buf)
    }

    private static func connectionLists(
        _ name: Range<Int>, _ head: borrowing HeadParser, _ buf: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        for index in 0..<head.fieldCount where head.knownName(at: index) == .connection {
            let completed = forEachListElement(buf, head.valueRange(at: index)) { token in
                !equalsIgnoringCase(buf, token, name)
            }
            if !completed { return true }
        }
        return false
    }
}

/// Appends a static string's bytes.
@inline(__always)
func append(_ string: StaticString, to out: inout [UInt8]) {
    string.withUTF8Buffer { out.append(contentsOf: $0) }
}

/// Appends `buf[range]`.
@inline(__always)
func append(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, to out: inout [UInt8]) {
    out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[range]))
}

/// Field lines kept as received, gathered while each follows the previous one in the head, so that a run of them
/// is one copy. `flush` before anything else is written.
struct FieldRun {
    /// The gathered lines: `buf[start..<end]` (empty: none).
    private var start = 0
    private var end = 0

    /// Adds the field line `name: buf[value]`: to the run when it is written as received (`name: value CRLF`)
    /// and follows the run; else after the run, on its own. Writes at most the line's length as received + 1.
    @inline(__always)
    mutating func add(
        _ buf: UnsafeBufferPointer<UInt8>, name: Range<Int>, value: Range<Int>, to out: inout HeadOutput
    ) {
        let valueEnd = value.upperBound
        guard
            value.lowerBound == name.upperBound &+ 2 && buf[name.upperBound &+ 1] == 0x20
                && valueEnd &+ 1 < buf.count && buf[valueEnd] == 0x0D && !value.isEmpty
        else {
            flush(buf, to: &out)
            writeField(buf, name: name, value: value, to: &out)
            return
        }
        if name.lowerBound != end || start == end {
            flush(buf, to: &out)
            start = name.lowerBound
        }
        end = valueEnd &+ 2
    }

    /// Writes the gathered lines.
    @inline(__always)
    mutating func flush(_ buf: UnsafeBufferPointer<UInt8>, to out: inout HeadOutput) {
        guard start != end else { return }
        out.write(buf, start..<end)
        start = 0
        end = 0
    }
}

/// Writes `name: buf[value] CRLF` with the name as received: at most one byte more than the line as received
/// (`name:value CRLF` gains the SP).
@inline(__always)
func writeField(_ buf: UnsafeBufferPointer<UInt8>, name: Range<Int>, value: Range<Int>, to out: inout HeadOutput) {
    out.write(buf, name)
    out.write(0x3A, 0x20)
    out.write(buf, value)
    out.write(0x0D, 0x0A)
}
