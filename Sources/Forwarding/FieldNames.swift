// Byte-level helpers over a parsed head: case-insensitive name tests, list walking and field roles.
import HTTP1

/// OWS of RFC 9110 §5.6.3.
@inline(__always)
func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

/// ASCII lowercase; other bytes unchanged.
@inline(__always)
func lowercased(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }

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
