// Downstream response heads: hop-by-hop removal, the Connection decision, X-Request-ID, the WebSocket 101.
import Forwarding
import HTTP1
import Testing

struct ResponseVector: Sendable, CustomTestStringConvertible {
    let name: String
    let response: String
    var keepAlive = true
    var webSocketUpgrade = false
    var requestID: String? = "req-1"
    let expected: String
    var testDescription: String { name }
}

let responseVectors: [ResponseVector] = [
    ResponseVector(
        name: "status line without a reason, and odd field whitespace, written canonically",
        response: "HTTP/1.1 204\r\nX-A:1\r\nX-B: \t2 \r\nX-C: 3\r\n\r\n",
        expected: "HTTP/1.1 204 \r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nConnection: keep-alive\r\n"
            + "X-Request-ID: req-1\r\n\r\n"),
    ResponseVector(
        name: "200 keep-alive: upstream Connection and Keep-Alive removed, id added",
        response: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n"
            + "Keep-Alive: timeout=5\r\n\r\n",
        expected: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            + "Connection: keep-alive\r\nX-Request-ID: req-1\r\n\r\n"),
    ResponseVector(
        name: "HTTP/1.0 upstream, reason kept, close downstream, Connection tokens removed, framing kept",
        response: "HTTP/1.0 503 Try Later\r\nConnection: X-Internal, content-length\r\nX-Internal: 1\r\n"
            + "Content-Length: 7\r\nProxy-Connection: close\r\nUpgrade: h2c\r\nTE: trailers\r\n\r\n",
        keepAlive: false,
        expected: "HTTP/1.1 503 Try Later\r\nContent-Length: 7\r\nConnection: close\r\n"
            + "X-Request-ID: req-1\r\n\r\n"),
    ResponseVector(
        name: "chunked framing kept though a Connection token names it",
        response: "HTTP/1.1 200 OK\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
        expected: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
            + "X-Request-ID: req-1\r\n\r\n"),
    ResponseVector(
        name: "upstream X-Request-ID kept, none added",
        response: "HTTP/1.1 404 Not Found\r\nx-request-id: upstream-9\r\nContent-Length: 0\r\n\r\n",
        expected: "HTTP/1.1 404 Not Found\r\nx-request-id: upstream-9\r\nContent-Length: 0\r\n"
            + "Connection: keep-alive\r\n\r\n"),
    ResponseVector(
        name: "no request id known",
        response: "HTTP/1.1 204 No Content\r\n\r\n", requestID: nil,
        expected: "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"),
    ResponseVector(
        name: "empty reason phrase",
        response: "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n", keepAlive: false,
        expected: "HTTP/1.1 299 \r\nContent-Length: 0\r\nConnection: close\r\nX-Request-ID: req-1\r\n\r\n"),
    ResponseVector(
        name: "101 on a WebSocket route keeps Upgrade and Sec-WebSocket fields",
        response: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n"
            + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        webSocketUpgrade: true,
        expected: "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            + "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
            + "Connection: Upgrade\r\nUpgrade: websocket\r\nX-Request-ID: req-1\r\n\r\n"),
    ResponseVector(
        name: "interim 103 gets no Connection or id",
        response: "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        expected: "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"),
]

@Suite struct ResponseRewriterTests {
    @Test(arguments: responseVectors)
    func downstreamHead(_ vector: ResponseVector) {
        let response = parsed(vector.response, kind: .response)
        var out: [UInt8] = []
        ResponseRewriter.writeDownstreamHead(
            response: response, keepAlive: vector.keepAlive, webSocketUpgrade: vector.webSocketUpgrade,
            requestID: vector.requestID.flatMap { RequestID(Array($0.utf8)) }, into: &out)
        let head = String(decoding: out, as: UTF8.self)
        #expect(head == vector.expected)
        _ = parsed(head, kind: .response)
    }
}
