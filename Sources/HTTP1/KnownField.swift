// Field names the parser and the proxy's rewriters act on, recognised once per field while the head is interpreted.

/// A field name the parser recognised (any case, RFC 9110 §5.1), or `.other`.
public enum KnownField: UInt8, Sendable, Equatable {
    case other
    case host
    case connection
    case upgrade
    case contentLength
    case transferEncoding
    case te
    case keepAlive
    case proxyConnection
    case proxyAuthorization
    case http2Settings
    case xForwardedFor
    case xForwardedProto
    case xRealIP
    case xRequestID

    /// Length of the longest name with a case (`proxy-authorization`).
    static let longest = 19

    /// The name `bytes[start..<end]` (bytes the parser accepted as a field name, at least one).
    @inline(__always)
    init(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) {
        // Most names are none of these: their first letter and length rule them out without a comparison.
        guard Self.mayBeKnown(first: bytes[start], length: end &- start) else {
            self = .other
            return
        }
        self.init(comparing: bytes, start, end)
    }

    /// Whether a name of `length` bytes beginning with `first` can be one with a case: the lengths of the names with
    /// a case, by first letter (any case). Tests check every name with a case passes.
    @inline(__always)
    static func mayBeKnown(first: UInt8, length: Int) -> Bool {
        let lengths: UInt32
        switch first | 0x20 {
        case 0x63: lengths = 1 << 10 | 1 << 14  // connection, content-length
        case 0x68: lengths = 1 << 4 | 1 << 14  // host, http2-settings
        case 0x6B: lengths = 1 << 10  // keep-alive
        case 0x70: lengths = 1 << 16 | 1 << 19  // proxy-connection, proxy-authorization
        case 0x74: lengths = 1 << 2 | 1 << 17  // te, transfer-encoding
        case 0x75: lengths = 1 << 7  // upgrade
        case 0x78: lengths = 1 << 9 | 1 << 12 | 1 << 15 | 1 << 17  // x-real-ip, x-request-id, x-forwarded-…
        default: lengths = 0
        }
        return UInt(bitPattern: length) < 32 && (lengths >> UInt32(truncatingIfNeeded: length)) & 1 == 1
    }

    /// The name `bytes[start..<end]` compared with each name of its length.
    @inline(never)
    init(comparing bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) {
        switch end &- start {
        case 2 where equalsKnownName(bytes, start, end, "te"): self = .te
        case 4 where equalsKnownName(bytes, start, end, "host"): self = .host
        case 7 where equalsKnownName(bytes, start, end, "upgrade"): self = .upgrade
        case 9 where equalsKnownName(bytes, start, end, "x-real-ip"): self = .xRealIP
        case 10 where equalsKnownName(bytes, start, end, "connection"): self = .connection
        case 10 where equalsKnownName(bytes, start, end, "keep-alive"): self = .keepAlive
        case 12 where equalsKnownName(bytes, start, end, "x-request-id"): self = .xRequestID
        case 14 where equalsKnownName(bytes, start, end, "content-length"): self = .contentLength
        case 14 where equalsKnownName(bytes, start, end, "http2-settings"): self = .http2Settings
        case 15 where equalsKnownName(bytes, start, end, "x-forwarded-for"): self = .xForwardedFor
        case 16 where equalsKnownName(bytes, start, end, "proxy-connection"): self = .proxyConnection
        case 17 where equalsKnownName(bytes, start, end, "transfer-encoding"): self = .transferEncoding
        case 17 where equalsKnownName(bytes, start, end, "x-forwarded-proto"): self = .xForwardedProto
        case 19 where equalsKnownName(bytes, start, end, "proxy-authorization"): self = .proxyAuthorization
        default: self = .other
        }
    }
}
