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

    /// The name `bytes[start..<end]` (bytes the parser accepted as a field name).
    @inline(__always)
    init(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) {
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
