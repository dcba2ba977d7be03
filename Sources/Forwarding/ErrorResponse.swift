// The gateway's own answers (the shared canned errors, with the request's ID) and route `return` answers.
import HTTP1

/// A response the gateway writes itself: the runtime's one canned-error set (`HTTP1.CannedError`, which
/// `HTTPServer` answers with too). Everything but the Connection and X-Request-ID lines is serialised once, so
/// answering allocates nothing beyond growing the caller's buffer.
public typealias ErrorResponse = CannedError

extension CannedError {
    /// Appends the whole response to `out`: status line, `Content-Type: application/json`, `Content-Length`,
    /// `Upgrade: websocket` for 426, `Connection` (`close` whatever `keepAlive` says when `closesConnection`),
    /// `X-Request-ID` when known, the body unless `includeBody` is false (answers to HEAD, RFC 9110 §9.3.2, keep
    /// the Content-Length).
    public func write(keepAlive: Bool, requestID: RequestID?, includeBody: Bool = true, into out: inout [UInt8]) {
        writeHead(keepAlive: keepAlive, into: &out)
        if let requestID {
            append("X-Request-ID: ", to: &out)
            requestID.append(to: &out)
            append("\r\n", to: &out)
        }
        append("\r\n", to: &out)
        if includeBody { out.append(contentsOf: bodyBytes) }
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
