// The one set of canned error answers, shared by the gateway and HTTPServer: status line, fields, JSON body.

/// An error answer a server writes itself, the same bytes from the gateway and from every `HTTPServer` service.
///
/// The body is JSON, `{"error":"<name>"}` and a newline, like the services' own API errors (which add a
/// `message`). Status line, `Content-Type: application/json` and `Content-Length` are serialised once per status
/// (`head`); a writer adds only what belongs to the connection or the request (`Connection`, `Date`,
/// `X-Request-ID`, `Allow`), then the final CRLF and `body`.
public enum CannedError: Int, Sendable, CaseIterable {
    /// A malformed request (RFC 9110 §15.5.1).
    case badRequest = 400
    /// No route, or a host capture that is not a DNS-1123 label (RFC 9110 §15.5.5).
    case notFound = 404
    /// The path exists but not for this method; sent with `Allow` (RFC 9110 §15.5.6).
    case methodNotAllowed = 405
    /// The request head (or the rest of its body) did not arrive in time (RFC 9110 §15.5.9).
    case requestTimeout = 408
    /// The body is larger than the configured limit (RFC 9110 §15.5.14).
    case contentTooLarge = 413
    /// The request-target is longer than the configured limit (RFC 9110 §15.5.15).
    case uriTooLong = 414
    /// A WebSocket route got a plain request; sent with `Upgrade: websocket` (RFC 9110 §15.5.22).
    case upgradeRequired = 426
    /// The head is larger than the configured limit or has too many fields (RFC 6585 §5).
    case requestHeaderFieldsTooLarge = 431
    /// The server failed (RFC 9110 §15.6.1).
    case internalServerError = 500
    /// A transfer coding the server does not implement (RFC 9112 §6.1).
    case notImplemented = 501
    /// The upstream could not be reached or answered garbage (RFC 9110 §15.6.3).
    case badGateway = 502
    /// Overloaded, draining, not ready, or no upstream address (RFC 9110 §15.6.4).
    case serviceUnavailable = 503
    /// The upstream did not answer in time (RFC 9110 §15.6.5).
    case gatewayTimeout = 504
    /// A request version other than HTTP/1.0 or 1.1 (RFC 9110 §15.6.6).
    case httpVersionNotSupported = 505

    /// The answer to a rejected request head (`HeadError.status`).
    public init(_ error: HeadError) {
        self = CannedError(rawValue: error.status) ?? .badRequest
    }

    /// The status code.
    public var status: Int { rawValue }

    /// Answers to a request whose head or body was not read completely: the connection cannot be reused, so
    /// writers send `Connection: close` whatever the request asked (RFC 9112 §9.6).
    public var closesConnection: Bool {
        switch self {
        case .badRequest, .requestTimeout, .contentTooLarge, .uriTooLong, .requestHeaderFieldsTooLarge,
            .notImplemented, .httpVersionNotSupported:
            return true
        case .notFound, .methodNotAllowed, .upgradeRequired, .internalServerError, .badGateway,
            .serviceUnavailable, .gatewayTimeout:
            return false
        }
    }

    /// The JSON body, `{"error":"<name>"}` and a newline.
    public var body: StaticString {
        switch self {
        case .badRequest: return "{\"error\":\"bad_request\"}\n"
        case .notFound: return "{\"error\":\"not_found\"}\n"
        case .methodNotAllowed: return "{\"error\":\"method_not_allowed\"}\n"
        case .requestTimeout: return "{\"error\":\"request_timeout\"}\n"
        case .contentTooLarge: return "{\"error\":\"content_too_large\"}\n"
        case .uriTooLong: return "{\"error\":\"uri_too_long\"}\n"
        case .upgradeRequired: return "{\"error\":\"upgrade_required\"}\n"
        case .requestHeaderFieldsTooLarge: return "{\"error\":\"request_header_fields_too_large\"}\n"
        case .internalServerError: return "{\"error\":\"internal_server_error\"}\n"
        case .notImplemented: return "{\"error\":\"not_implemented\"}\n"
        case .badGateway: return "{\"error\":\"bad_gateway\"}\n"
        case .serviceUnavailable: return "{\"error\":\"service_unavailable\"}\n"
        case .gatewayTimeout: return "{\"error\":\"gateway_timeout\"}\n"
        case .httpVersionNotSupported: return "{\"error\":\"http_version_not_supported\"}\n"
        }
    }

    /// The body's bytes.
    public var bodyBytes: UnsafeRawBufferPointer {
        let body = self.body
        return UnsafeRawBufferPointer(start: body.utf8Start, count: body.utf8CodeUnitCount)
    }

    /// Status line, `Content-Type: application/json` and `Content-Length`, each ending in CRLF: serialised once.
    public var head: [UInt8] { Self.heads[rawValue - 400] }

    // Indexed by status - 400; statuses outside the set stay empty.
    private static let heads: [[UInt8]] = {
        var heads = [[UInt8]](repeating: [], count: 106)
        for error in CannedError.allCases {
            var head: [UInt8] = []
            HeadSerializer.appendStatusLine(status: error.status, into: &head)
            head.append(contentsOf: "Content-Type: application/json\r\n".utf8)
            HeadSerializer.appendField(
                name: "Content-Length".utf8, decimal: UInt64(error.body.utf8CodeUnitCount), into: &head)
            heads[error.rawValue - 400] = head
        }
        return heads
    }()

    /// Appends the whole answer: `head`, `Upgrade: websocket` for 426, `Connection` (`close` when asked or when
    /// `closesConnection`; for 426 it also lists `Upgrade`, RFC 9110 §7.8), the final CRLF and the body unless `includeBody` is false (answers to HEAD keep the Content-Length,
    /// RFC 9110 §9.3.2). Allocates nothing beyond growing `out`.
    public func write(keepAlive: Bool, includeBody: Bool = true, into out: inout [UInt8]) {
        writeHead(keepAlive: keepAlive, into: &out)
        Self.append("\r\n", to: &out)
        if includeBody { out.append(contentsOf: bodyBytes) }
    }

    /// `head`, the Upgrade and Connection lines: what `write` sends before the caller's own fields.
    public func writeHead(keepAlive: Bool, into out: inout [UInt8]) {
        out.append(contentsOf: head)
        let keep = keepAlive && !closesConnection
        if self == .upgradeRequired {
            Self.append("Upgrade: websocket\r\n", to: &out)
            Self.append(keep ? "Connection: Upgrade, keep-alive\r\n" : "Connection: Upgrade, close\r\n", to: &out)
        } else {
            Self.append(keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n", to: &out)
        }
    }

    @inline(__always)
    private static func append(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
}
