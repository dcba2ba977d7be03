// The gateway's own answers (4xx/5xx with a small JSON body) and route `return` answers, from static bytes.
import HTTP1

/// A response the gateway writes itself. Everything but the Connection and X-Request-ID lines is static text
/// in the binary, so answering allocates nothing beyond growing the caller's buffer.
public enum ErrorResponse: Int, Sendable, CaseIterable {
    /// A malformed request (RFC 9110 §15.5.1).
    case badRequest = 400
    /// No route, or a host capture that is not a DNS-1123 label (RFC 9110 §15.5.5).
    case notFound = 404
    /// The request head did not arrive in time (RFC 9110 §15.5.9).
    case requestTimeout = 408
    /// The body is larger than `limits.body_size` (RFC 9110 §15.5.14).
    case contentTooLarge = 413
    /// The request-target is longer than `limits.uri_length` (RFC 9110 §15.5.15).
    case uriTooLong = 414
    /// A `websocket on` route got a plain request; sent with `Upgrade: websocket` (RFC 9110 §15.5.22).
    case upgradeRequired = 426
    /// The head is larger than `limits.header_size` or has too many fields (RFC 6585 §5).
    case requestHeaderFieldsTooLarge = 431
    /// A transfer coding the gateway does not implement (RFC 9112 §6.1).
    case notImplemented = 501
    /// The upstream could not be reached or answered garbage (RFC 9110 §15.6.3).
    case badGateway = 502
    /// Overloaded, draining, or no upstream address (RFC 9110 §15.6.4).
    case serviceUnavailable = 503
    /// The upstream did not answer in time (RFC 9110 §15.6.5).
    case gatewayTimeout = 504
    /// A request version other than HTTP/1.0 or 1.1 (RFC 9110 §15.6.6).
    case httpVersionNotSupported = 505

    /// The answer to a rejected request head (`HeadError.status`).
    public init(_ error: HeadError) {
        self = ErrorResponse(rawValue: error.status) ?? .badRequest
    }

    /// The status code.
    public var status: Int { rawValue }

    /// Answers to a request whose head or body was not read completely: the connection cannot be reused, so
    /// `write` sends `Connection: close` whatever `keepAlive` says (RFC 9112 §9.6).
    public var closesConnection: Bool {
        switch self {
        case .badRequest, .requestTimeout, .contentTooLarge, .uriTooLong, .requestHeaderFieldsTooLarge,
            .notImplemented, .httpVersionNotSupported:
            return true
        case .notFound, .upgradeRequired, .badGateway, .serviceUnavailable, .gatewayTimeout:
            return false
        }
    }

    /// The JSON body, `{"error":"<name>"}` and a newline.
    public var body: StaticString {
        switch self {
        case .badRequest: return "{\"error\":\"bad_request\"}\n"
        case .notFound: return "{\"error\":\"not_found\"}\n"
        case .requestTimeout: return "{\"error\":\"request_timeout\"}\n"
        case .contentTooLarge: return "{\"error\":\"content_too_large\"}\n"
        case .uriTooLong: return "{\"error\":\"uri_too_long\"}\n"
        case .upgradeRequired: return "{\"error\":\"upgrade_required\"}\n"
        case .requestHeaderFieldsTooLarge: return "{\"error\":\"request_header_fields_too_large\"}\n"
        case .notImplemented: return "{\"error\":\"not_implemented\"}\n"
        case .badGateway: return "{\"error\":\"bad_gateway\"}\n"
        case .serviceUnavailable: return "{\"error\":\"service_unavailable\"}\n"
        case .gatewayTimeout: return "{\"error\":\"gateway_timeout\"}\n"
        case .httpVersionNotSupported: return "{\"error\":\"http_version_not_supported\"}\n"
        }
    }

    /// Appends the whole response to `out`: status line, `Content-Type: application/json`, `Content-Length`,
    /// `Upgrade: websocket` for 426, `Connection`, `X-Request-ID` when known, the body unless `includeBody` is
    /// false (answers to HEAD, RFC 9110 §9.3.2, keep the Content-Length).
    public func write(keepAlive: Bool, requestID: RequestID?, includeBody: Bool = true, into out: inout [UInt8]) {
        let body = self.body
        HeadSerializer.appendStatusLine(status: status, into: &out)
        append("Content-Type: application/json\r\nContent-Length: ", to: &out)
        HeadSerializer.appendDecimal(UInt64(body.utf8CodeUnitCount), into: &out)
        append("\r\n", to: &out)
        let keep = keepAlive && !closesConnection
        if self == .upgradeRequired {
            // Upgrade is hop-by-hop, so Connection lists it (RFC 9110 §7.8).
            append("Upgrade: websocket\r\n", to: &out)
            append(keep ? "Connection: Upgrade, keep-alive\r\n" : "Connection: Upgrade, close\r\n", to: &out)
        } else {
            append(keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n", to: &out)
        }
        if let requestID {
            append("X-Request-ID: ", to: &out)
            requestID.append(to: &out)
            append("\r\n", to: &out)
        }
        append("\r\n", to: &out)
        if includeBody { append(body, to: &out) }
    }

    /// Appends a route's `return STATUS [BODY]` answer: `Content-Type: text/plain; charset=utf-8` when there is a
    /// body, `Content-Length`, `Connection`, `X-Request-ID` when known. A route `return` with a canned status and
    /// no body should use the canned response instead.
    public static func writeRouteResponse(
        status: Int, body: [UInt8], keepAlive: Bool, requestID: RequestID?, includeBody: Bool = true,
        into out: inout [UInt8]
    ) {
        HeadSerializer.appendStatusLine(status: status, into: &out)
        if !body.isEmpty { append("Content-Type: text/plain; charset=utf-8\r\n", to: &out) }
        append("Content-Length: ", to: &out)
        HeadSerializer.appendDecimal(UInt64(body.count), into: &out)
        append("\r\n", to: &out)
        append(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n", to: &out)
        if let requestID {
            append("X-Request-ID: ", to: &out)
            requestID.append(to: &out)
            append("\r\n", to: &out)
        }
        append("\r\n", to: &out)
        if includeBody { out.append(contentsOf: body) }
    }
}
