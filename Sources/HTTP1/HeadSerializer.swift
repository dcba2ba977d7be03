// Writers of request and response heads into a byte array (RFC 9112 §3, §4, §5), and the reason-phrase table.

/// Appends head lines to `inout [UInt8]`. Byte arguments are any `Collection<UInt8>` (arrays, slices from
/// `HeadParser`, raw buffers); the functions are inlinable so callers get specialised, allocation-free copies.
/// Nothing is validated here: callers pass bytes that came from a parser or from configuration checked at load.
public enum HeadSerializer {
    /// `method SP request-target SP HTTP-version CRLF` (RFC 9112 §3).
    @inlinable
    public static func appendRequestLine(
        method: some Collection<UInt8>, target: some Collection<UInt8>, version: Version = .http1_1,
        into out: inout [UInt8]
    ) {
        out.append(contentsOf: method)
        out.append(0x20)
        out.append(contentsOf: target)
        out.append(0x20)
        appendStatic(version.bytes, into: &out)
        out.append(0x0D)
        out.append(0x0A)
    }

    /// `HTTP-version SP status-code SP reason-phrase CRLF` (RFC 9112 §4).
    @inlinable
    public static func appendStatusLine(
        version: Version = .http1_1, status: Int, reason: some Collection<UInt8>, into out: inout [UInt8]
    ) {
        appendStatic(version.bytes, into: &out)
        out.append(0x20)
        appendDecimal(UInt64(status), into: &out)
        out.append(0x20)
        out.append(contentsOf: reason)
        out.append(0x0D)
        out.append(0x0A)
    }

    /// Status line with the reason phrase from `ReasonPhrase.of(_:)`.
    @inlinable
    public static func appendStatusLine(version: Version = .http1_1, status: Int, into out: inout [UInt8]) {
        ReasonPhrase.of(status).withUTF8Buffer {
            appendStatusLine(version: version, status: status, reason: $0, into: &out)
        }
    }

    /// `field-name: field-value CRLF` (RFC 9112 §5).
    @inlinable
    public static func appendField(
        name: some Collection<UInt8>, value: some Collection<UInt8>, into out: inout [UInt8]
    ) {
        out.append(contentsOf: name)
        out.append(0x3A)
        out.append(0x20)
        out.append(contentsOf: value)
        out.append(0x0D)
        out.append(0x0A)
    }

    /// `field-name: <decimal> CRLF`, for Content-Length without building a string.
    @inlinable
    public static func appendField(name: some Collection<UInt8>, decimal: UInt64, into out: inout [UInt8]) {
        out.append(contentsOf: name)
        out.append(0x3A)
        out.append(0x20)
        appendDecimal(decimal, into: &out)
        out.append(0x0D)
        out.append(0x0A)
    }

    /// The empty line that ends the header section.
    @inlinable
    public static func appendEndOfHead(into out: inout [UInt8]) {
        out.append(0x0D)
        out.append(0x0A)
    }

    /// A whole request head from a field list (cold paths and tests; the hot path calls the line writers).
    public static func appendRequestHead(
        method: [UInt8], target: [UInt8], version: Version = .http1_1, fields: [(name: [UInt8], value: [UInt8])],
        into out: inout [UInt8]
    ) {
        appendRequestLine(method: method, target: target, version: version, into: &out)
        for field in fields { appendField(name: field.name, value: field.value, into: &out) }
        appendEndOfHead(into: &out)
    }

    /// A whole response head from a field list; `reason` nil takes the table's phrase.
    public static func appendResponseHead(
        status: Int, reason: [UInt8]? = nil, version: Version = .http1_1,
        fields: [(name: [UInt8], value: [UInt8])], into out: inout [UInt8]
    ) {
        if let reason {
            appendStatusLine(version: version, status: status, reason: reason, into: &out)
        } else {
            appendStatusLine(version: version, status: status, into: &out)
        }
        for field in fields { appendField(name: field.name, value: field.value, into: &out) }
        appendEndOfHead(into: &out)
    }

    /// ASCII decimal digits of `value`, most significant first, without building a String.
    @inlinable
    public static func appendDecimal(_ value: UInt64, into out: inout [UInt8]) {
        var divisor: UInt64 = 1
        while value / divisor >= 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(0x30 + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// The UTF-8 bytes of a static string.
    @inlinable
    public static func appendStatic(_ string: StaticString, into out: inout [UInt8]) {
        string.withUTF8Buffer { out.append(contentsOf: $0) }
    }
}

/// Reason phrases of RFC 9110 §15 (and RFC 6585 for 428/429/431), for status lines the gateway writes itself.
public enum ReasonPhrase {
    /// The phrase for `status`; an unknown status gets an empty phrase, which RFC 9112 §4 allows.
    public static func of(_ status: Int) -> StaticString {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 426: return "Upgrade Required"
        case 428: return "Precondition Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return ""
        }
    }
}
