// Keep-alive decisions after a proxied response, on both sides.
import Forwarding
import HTTP1
import Testing

struct DecisionVector: Sendable, CustomTestStringConvertible {
    let request: String
    let response: String
    var forwardedUpgrade = false
    var draining = false
    let expected: AfterResponse
    var testDescription: String { "\(request.prefix(40)) / \(response.prefix(30))" }
}

let decisionVectors: [DecisionVector] = [
    DecisionVector(
        request: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", response: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        expected: .keepAlive),
    DecisionVector(
        request: "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        response: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", expected: .close),
    DecisionVector(
        request: "GET / HTTP/1.0\r\n\r\n", response: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        expected: .close),
    DecisionVector(
        request: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        response: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", expected: .keepAlive),
    DecisionVector(
        request: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", response: "HTTP/1.1 200 OK\r\n\r\n", expected: .close),
    DecisionVector(
        request: "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", response: "HTTP/1.1 200 OK\r\n\r\n", expected: .keepAlive),
    DecisionVector(
        request: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        expected: .keepAlive),
    DecisionVector(
        request: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", response: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        draining: true, expected: .close),
    DecisionVector(
        request: "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        forwardedUpgrade: true, expected: .tunnel),
    DecisionVector(
        request: "GET /ws HTTP/1.1\r\nHost: h\r\n\r\n",
        response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        expected: .close),
    DecisionVector(
        request: "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        response: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", forwardedUpgrade: true,
        expected: .keepAlive),
]

@Suite struct ForwardingDecisionTests {
    @Test(arguments: decisionVectors)
    func downstream(_ vector: DecisionVector) {
        let request = parsed(vector.request)
        let response = parsed(vector.response, kind: .response)
        #expect(
            ForwardingDecision.downstream(
                request: request, forwardedUpgrade: vector.forwardedUpgrade, response: response,
                draining: vector.draining) == vector.expected)
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", Method.get, true),
        ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", .get, false),
        ("HTTP/1.1 200 OK\r\n\r\n", .get, false),
        ("HTTP/1.1 200 OK\r\n\r\n", .head, true),
        ("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", .get, false),
        ("HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n", .get, true),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", .get, false),
        ("HTTP/1.1 204 No Content\r\n\r\n", .get, true),
    ])
    func upstreamReuse(_ response: String, _ method: Method, _ expected: Bool) {
        #expect(
            ForwardingDecision.upstreamReusable(response: parsed(response, kind: .response), requestMethod: method)
                == expected)
    }
}
