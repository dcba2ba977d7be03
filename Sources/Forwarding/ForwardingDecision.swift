// Whether the downstream and upstream connections stay open once a proxied response is done.
import HTTP1

/// What happens to the downstream connection after a response.
public enum AfterResponse: Sendable, Equatable {
    /// Read the next request (RFC 9112 §9.3).
    case keepAlive
    /// Close once the response is written.
    case close
    /// The connection became a WebSocket tunnel (101 to a forwarded upgrade, RFC 9110 §15.2.2).
    case tunnel
}

/// Connection decisions of the proxy engine; pure functions of the two heads.
public enum ForwardingDecision {
    /// The downstream connection after the response.
    ///
    /// - A 101: `.tunnel` when the request was forwarded as a WebSocket upgrade, else `.close` (the upstream
    ///   switched protocols nobody asked for).
    /// - `.close` when the request ends the connection (HTTP/1.0 without `keep-alive`, `Connection: close`;
    ///   RFC 9112 §9.3), when the response is delimited by closing (`.untilClose`, RFC 9112 §6.3 rule 8; or a
    ///   CONNECT tunnel, which this gateway never forwards), or when the gateway is draining.
    /// - The upstream's own `Connection: close` only ends the upstream connection (see `upstreamReusable`).
    @inlinable
    public static func downstream(
        requestKeepAlive: Bool, forwardedUpgrade: Bool, responseStatus: Int, responseFraming: BodyFraming,
        draining: Bool = false
    ) -> AfterResponse {
        if responseStatus == 101 { return forwardedUpgrade ? .tunnel : .close }
        switch responseFraming {
        case .untilClose, .tunnel: return .close
        case .none, .contentLength, .chunked: break
        }
        return requestKeepAlive && !draining ? .keepAlive : .close
    }

    /// `downstream(...)` read from the parsed heads; `forwardedUpgrade` is whether the request was sent upstream
    /// as a WebSocket upgrade (a `websocket on` route and `request.isWebSocketUpgrade`).
    @inlinable
    public static func downstream(
        request: borrowing HeadParser, forwardedUpgrade: Bool, response: borrowing HeadParser, draining: Bool = false
    ) -> AfterResponse {
        downstream(
            requestKeepAlive: request.keepAlive, forwardedUpgrade: forwardedUpgrade, responseStatus: response.status,
            responseFraming: response.responseFraming(requestMethod: request.method), draining: draining)
    }

    /// Whether the upstream connection may go back to the keep-alive pool once the response body was read
    /// completely: the upstream keeps it open (RFC 9112 §9.3), the body has its own delimiter, and it did not
    /// switch protocols.
    @inlinable
    public static func upstreamReusable(response: borrowing HeadParser, requestMethod: Method) -> Bool {
        guard response.keepAlive, response.status != 101 else { return false }
        switch response.responseFraming(requestMethod: requestMethod) {
        case .none, .contentLength, .chunked: return true
        case .untilClose, .tunnel: return false
        }
    }
}
