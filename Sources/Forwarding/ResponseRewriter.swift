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
        var requestID = requestID
        out.appendHead(bound: downstreamHeadBound(response: response)) { output in
            writeDownstreamHead(
                response: response, keepAlive: keepAlive, webSocketUpgrade: webSocketUpgrade, requestID: &requestID,
                into: &output)
        }
    }

    /// Most bytes `writeDownstreamHead` writes for `response`: the head as received (each field line at most one
    /// byte longer), a rebuilt status line, the gateway's lines and the longest request id.
    @inline(__always)
    public static func downstreamHeadBound(response: borrowing HeadParser) -> Int {
        response.headByteCount &+ response.fieldCount &+ 128 &+ RequestID.maximumLength
    }

    /// `writeDownstreamHead` into raw memory: `out` must have room for `downstreamHeadBound(response:)` bytes.
    /// `requestID` is only read (`inout` so that the 136-byte id is read in place, not copied).
    public static func writeDownstreamHead(
        response: borrowing HeadParser, keepAlive: Bool, webSocketUpgrade: Bool = false,
        requestID: inout RequestID?, into out: inout HeadOutput
    ) {
        response.withUnsafeHeadBytes { buf in
            let line = response.startLineRange
            let reason = response.reasonRange
            if response.version == .http1_1 && reason.lowerBound > line.lowerBound
                && buf[reason.lowerBound - 1] == 0x20
            {
                // `HTTP/1.1 NNN reason CRLF` as received is exactly what would be written: one copy.
                out.write(buf, line.lowerBound..<(line.upperBound &+ 2))
            } else {
                // The received line is at least `HTTP/1.x NNN`: this is at most 2 bytes longer (SP, and CRLF
                // where the parser accepted a bare CR after the code).
                out.write("HTTP/1.1 ")
                let status = response.status
                out.write(
                    UInt8(truncatingIfNeeded: 0x30 &+ status / 100), UInt8(truncatingIfNeeded: 0x30 &+ status / 10 % 10)
                )
                out.write(UInt8(truncatingIfNeeded: 0x30 &+ status % 10), 0x20)
                out.write(buf, reason)
                out.write(0x0D, 0x0A)
            }

            let tokens = ConnectionTokens(response, buf)
            var hasRequestID = false
            var run = FieldRun()
            for index in 0..<response.fieldCount {
                let name = response.nameRange(at: index)
                switch FieldRole(response.knownName(at: index), request: false) {
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
            // blank line ends the head (each variant one copy).
            let writesID = !hasRequestID && RequestID.isPresent(&requestID)
            if status == 101 && webSocketUpgrade {
                out.write(
                    writesID
                        ? "Connection: Upgrade\r\nUpgrade: websocket\r\nX-Request-ID: "
                        : "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            } else if status < 200 && status != 101 {
                out.write(0x0D, 0x0A)
                return
            } else if keepAlive {
                out.write(writesID ? "Connection: keep-alive\r\nX-Request-ID: " : "Connection: keep-alive\r\n\r\n")
            } else {
                out.write(writesID ? "Connection: close\r\nX-Request-ID: " : "Connection: close\r\n\r\n")
            }
            if writesID {
                _ = RequestID.write(&requestID, to: &out)
                out.write("\r\n\r\n")
            }
        }
    }
}
