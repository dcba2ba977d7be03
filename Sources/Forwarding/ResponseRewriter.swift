// The downstream response head: the upstream's status and fields without hop-by-hop ones, plus our Connection.
import HTTP1

/// Writes the head a proxied response is sent downstream with; allocates nothing beyond growing `out`.
public enum ResponseRewriter {
    /// Appends the downstream head for the upstream response `response` (a complete response head) to `out`.
    ///
    /// - The status line as received (code and reason), as HTTP/1.1 (RFC 9110 §2.5).
    /// - The upstream's fields in order, without hop-by-hop ones (RFC 9110 §7.6.1: `Connection`, `Keep-Alive`,
    ///   `Proxy-Connection`, `TE`, `Upgrade`, `HTTP2-Settings`, and any field a `Connection` token names, except
    ///   `Content-Length` and `Transfer-Encoding`: the body is relayed as framed).
    /// - For a 101 when `webSocketUpgrade` (the request was forwarded as a WebSocket upgrade): `Connection:
    ///   Upgrade` and `Upgrade: websocket` (RFC 6455 §4.2.2; `Sec-WebSocket-Accept`, `-Protocol`, `-Extensions`
    ///   pass as ordinary fields). A 101 without `webSocketUpgrade` is the caller's to refuse (502).
    /// - For other 1xx (100, 103) nothing more: interim responses carry no connection decision.
    /// - Otherwise `Connection: keep-alive` or `Connection: close` from `keepAlive` (see `ForwardingDecision`).
    /// - `X-Request-ID: requestID` when the upstream sent none (not on interim responses).
    public static func writeDownstreamHead(
        response: borrowing HeadParser, keepAlive: Bool, webSocketUpgrade: Bool = false, requestID: RequestID?,
        into out: inout [UInt8]
    ) {
        let storage = response.headBytes
        storage.withUnsafeBufferPointer { buf in
            let line = response.startLineRange
            let reason = response.reasonRange
            if response.version == .http1_1 && reason.lowerBound > line.lowerBound
                && buf[reason.lowerBound - 1] == 0x20
            {
                // `HTTP/1.1 NNN reason CRLF` as received is exactly what would be written: one copy.
                append(buf, line.lowerBound..<(line.upperBound &+ 2), to: &out)
            } else {
                append("HTTP/1.1 ", to: &out)
                HeadSerializer.appendDecimal(UInt64(response.status), into: &out)
                out.append(0x20)
                append(buf, reason, to: &out)
                append("\r\n", to: &out)
            }

            let tokens = ConnectionTokens(response, buf)
            var hasRequestID = false
            var run = FieldRun()
            for index in 0..<response.fieldCount {
                let name = response.nameRange(at: index)
                switch FieldRole(buf, name, request: false) {
                case .connection, .hopByHop:
                    continue
                case .framing:
                    break
                case .requestID:
                    if tokens.lists(name, response, buf) { continue }
                    hasRequestID = true
                default:
                    if tokens.lists(name, response, buf) { continue }
                }
                run.add(buf, name: name, value: response.valueRange(at: index), to: &out)
            }
            run.flush(buf, to: &out)

            let status = response.status
            // The upstream's own X-Request-ID is kept; else this request's id follows the Connection line, and the
            // blank line ends the head (each variant one append).
            let requestID = hasRequestID ? nil : requestID
            if status == 101 && webSocketUpgrade {
                append(
                    requestID == nil
                        ? "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                        : "Connection: Upgrade\r\nUpgrade: websocket\r\nX-Request-ID: ", to: &out)
            } else if status < 200 && status != 101 {
                append("\r\n", to: &out)
                return
            } else if keepAlive {
                append(
                    requestID == nil ? "Connection: keep-alive\r\n\r\n" : "Connection: keep-alive\r\nX-Request-ID: ",
                    to: &out)
            } else {
                append(requestID == nil ? "Connection: close\r\n\r\n" : "Connection: close\r\nX-Request-ID: ", to: &out)
            }
            if let requestID {
                requestID.append(to: &out)
                append("\r\n\r\n", to: &out)
            }
        }
    }
}
