// Upstream request heads: exact bytes for the shipped routes, hop-by-hop removal, forwarded fields, set_header.
import Forwarding
import Foundation
import GatewayConfig
import HTTP1
import Routing
import Testing

struct RewriteVector: Sendable, CustomTestStringConvertible {
    let name: String
    let request: String
    let expected: String
    var client = "203.0.113.9"
    var scheme = Scheme.http
    var server = 0
    var testDescription: String { name }
}

let rewriteVectors: [RewriteVector] = [
    RewriteVector(
        name: "fields are written as name: value whatever the received whitespace; HTTP/1.0 becomes 1.1",
        request: "GET /ws/connect?a=1 HTTP/1.0\r\nHost: h\r\nX-Tight:v1\r\nX-Wide: \t v2 \t\r\nX-Empty: \r\n"
            + "X-Plain: v3\r\n\r\n",
        expected: "GET /ws/connect?a=1 HTTP/1.1\r\nHost: rtc-balancer.rtc.svc.cluster.local:8081\r\n"
            + "X-Tight: v1\r\nX-Wide: v2\r\nX-Empty: \r\nX-Plain: v3\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n"
            + "X-Forwarded-Proto: http\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name: "balancer route keeps the query, sets Host with port, adds forwarded fields",
        request: "GET /ws/connect?clientId=u1&x=%20y HTTP/1.1\r\nHost: gw.example.com\r\nUser-Agent: curl/8\r\n"
            + "Accept: */*\r\n\r\n",
        expected: "GET /ws/connect?clientId=u1&x=%20y HTTP/1.1\r\n"
            + "Host: rtc-balancer.rtc.svc.cluster.local:8081\r\nUser-Agent: curl/8\r\nAccept: */*\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n"
            + "X-Forwarded-Proto: http\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name: "websocket route: path rewritten, dynamic host, upgrade passed",
        request: "GET /ws/socket-7d9f-abc12/connect?clientId=u1 HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n"
            + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + "Sec-WebSocket-Protocol: chat\r\n\r\n",
        expected: "GET /ws/connect?clientId=u1 HTTP/1.1\r\n"
            + "Host: socket-7d9f-abc12.socket.rtc.svc.cluster.local:8080\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + "Sec-WebSocket-Protocol: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\nX-Forwarded-Proto: http\r\n"
            + "X-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name: "hop-by-hop fields and fields named by Connection are removed; framing is kept",
        request: "POST /plain/a?b HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret, content-length\r\n"
            + "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nx-secret: 1\r\n"
            + "Proxy-Authorization: Basic Zm9vOmJhcg==\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
            + "Content-Length: 5\r\nX-Keep: yes\r\nConnection: x-other\r\nX-Other: 2\r\n\r\n",
        expected: "POST /plain/a?b HTTP/1.1\r\nHost: web.internal\r\nContent-Length: 5\r\nX-Keep: yes\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 198.51.100.1\r\nX-Real-IP: 198.51.100.1\r\n"
            + "X-Forwarded-Proto: https\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n",
        client: "198.51.100.1", scheme: .https),
    RewriteVector(
        name: "chunked body framing passes unchanged, Trailer kept, second server's Host",
        request: "PUT /plain/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
        expected: "PUT /plain/x HTTP/1.1\r\nHost: web2.internal:8000\r\nTransfer-Encoding: chunked\r\n"
            + "Trailer: X-Sum\r\nConnection: keep-alive\r\nX-Forwarded-For: 2001:db8::1\r\n"
            + "X-Real-IP: 2001:db8::1\r\nX-Forwarded-Proto: http\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n",
        client: "2001:db8::1", server: 1),
    RewriteVector(
        name: "X-Forwarded-For lines are joined and the client appended; X-Real-IP and proto overwritten",
        request: "GET /ws/connect HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1, 192.0.2.2\r\n"
            + "X-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: gopher\r\nx-forwarded-for: 192.0.2.3\r\n"
            + "X-Forwarded-For:\r\n\r\n",
        expected: "GET /ws/connect HTTP/1.1\r\nHost: rtc-balancer.rtc.svc.cluster.local:8081\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 192.0.2.1, 192.0.2.2, 192.0.2.3, 203.0.113.9\r\n"
            + "X-Real-IP: 203.0.113.9\r\nX-Forwarded-Proto: http\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name: "a valid X-Request-ID is kept (first one), later ones dropped",
        request: "GET /ws/connect HTTP/1.1\r\nHost: h\r\nX-Request-ID: abc-123_XYZ.~!\r\nX-Request-ID: second\r\n\r\n",
        expected: "GET /ws/connect HTTP/1.1\r\nHost: rtc-balancer.rtc.svc.cluster.local:8081\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n"
            + "X-Forwarded-Proto: http\r\nX-Request-ID: abc-123_XYZ.~!\r\n\r\n"),
    RewriteVector(
        name: "an X-Request-ID with a space is replaced",
        request: "GET /ws/connect HTTP/1.1\r\nHost: h\r\nX-Request-ID: two words\r\n\r\n",
        expected: "GET /ws/connect HTTP/1.1\r\nHost: rtc-balancer.rtc.svc.cluster.local:8081\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n"
            + "X-Forwarded-Proto: http\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name: "an empty X-Request-ID is replaced",
        request: "GET /ws/connect HTTP/1.1\r\nHost: h\r\nX-Request-ID: \r\n\r\n",
        expected: "GET /ws/connect HTTP/1.1\r\nHost: rtc-balancer.rtc.svc.cluster.local:8081\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n"
            + "X-Forwarded-Proto: http\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name: "an X-Request-ID of 129 bytes is replaced",
        request: "GET /ws/connect HTTP/1.1\r\nHost: h\r\nX-Request-ID: \(String(repeating: "a", count: 129))\r\n\r\n",
        expected: "GET /ws/connect HTTP/1.1\r\nHost: rtc-balancer.rtc.svc.cluster.local:8081\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n"
            + "X-Forwarded-Proto: http\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name:
            "set_header replaces (any case) and adds; Host and X-Forwarded-Proto from the route",
        request: "POST /api/orders?page=2 HTTP/1.0\r\nHost: client.example\r\nUser-Agent: curl/8\r\n"
            + "x-api: spoofed\r\nX-Forwarded-Proto: http\r\nContent-Length: 0\r\nX-Request-ID: r1\r\n\r\n",
        expected: "POST /v2/orders/items?page=2 HTTP/1.1\r\nHost: api.internal\r\nContent-Length: 0\r\n"
            + "Connection: keep-alive\r\nX-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n"
            + "X-Request-ID: r1\r\nX-Api: name=orders\r\nuser-agent: rtc-gateway\r\n"
            + "X-Forwarded-Proto: https\r\n\r\n"),
    RewriteVector(
        name: "set_header rendering to nothing is not sent, and removes the client's field",
        request: "GET /opt HTTP/1.1\r\nHost: h\r\nX-Tail: client\r\n\r\n",
        expected: "GET /opt HTTP/1.1\r\nHost: web.internal\r\nConnection: keep-alive\r\n"
            + "X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\nX-Forwarded-Proto: http\r\n"
            + "X-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name: "set_header with a capture that took part",
        request: "GET /opt/x HTTP/1.1\r\nHost: h\r\n\r\n",
        expected: "GET /opt/x HTTP/1.1\r\nHost: web.internal\r\nConnection: keep-alive\r\n"
            + "X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\nX-Forwarded-Proto: http\r\n"
            + "X-Request-ID: \(firstGeneratedID)\r\nX-Tail: /x\r\n\r\n"),
    RewriteVector(
        name: "an upgrade on a route without websocket is forwarded as plain HTTP",
        request: "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        expected: "GET /echo HTTP/1.1\r\nHost: rtc-balancer.rtc.svc.cluster.local:8081\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nConnection: keep-alive\r\n"
            + "X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\nX-Forwarded-Proto: http\r\n"
            + "X-Request-ID: \(firstGeneratedID)\r\n\r\n"),
    RewriteVector(
        name: "a method without a case and an HTTP/1.0 request go out as received, as HTTP/1.1",
        request: "PROPFIND /plain/ HTTP/1.0\r\n\r\n",
        expected: "PROPFIND /plain/ HTTP/1.1\r\nHost: web.internal\r\nConnection: keep-alive\r\n"
            + "X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\nX-Forwarded-Proto: http\r\n"
            + "X-Request-ID: \(firstGeneratedID)\r\n\r\n"),
]

@Suite struct RequestRewriterTests {
    @Test(arguments: rewriteVectors)
    func upstreamHead(_ vector: RewriteVector) {
        guard
            let result = rewrite(vector.request, server: vector.server, client: vector.client, scheme: vector.scheme)
        else { return }
        #expect(result.head == vector.expected)
        // What goes upstream parses as one complete request head.
        _ = parsed(result.head)
    }

    @Test func reportsTheIDItSent() {
        let generated = rewrite("GET /ws/connect HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(generated?.id.description == firstGeneratedID)
        let kept = rewrite("GET /ws/connect HTTP/1.1\r\nHost: h\r\nX-Request-ID: client-id-7\r\n\r\n")
        #expect(kept?.id.description == "client-id-7")
    }

    @Test func appendsToWhatTheBufferHolds() {
        let config = testConfig
        let head = parsed("GET /ws/connect HTTP/1.1\r\nHost: h\r\n\r\n")
        let matcher = Matcher(for: config.routes)
        _ = config.routes.decide(path: Array(head.path), isWebSocketUpgrade: false, matcher: matcher)
        var ids = RequestIDGenerator(seed: 0)
        var out: [UInt8] = Array("prefix|".utf8)
        RequestRewriter(config: config).writeUpstreamHead(
            request: head, route: 0, matcher: matcher, clientAddress: Array("1.2.3.4".utf8), scheme: .http,
            requestIDs: &ids, into: &out)
        #expect(String(decoding: out, as: UTF8.self).hasPrefix("prefix|GET /ws/connect HTTP/1.1\r\nHost: "))
    }

    @Test func shippedConfigurationRoutes() throws {
        let file = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("gateway-config/gateway.conf")
        let text = try String(contentsOf: file, encoding: .utf8)
        let result = loadConfig(text: text, file: "gateway.conf", environment: ["POD_NAMESPACE": "rtc"], cores: 2)
        let config = try result.get()
        let balancer = rewrite("GET /ws/connect?clientId=u1 HTTP/1.1\r\nHost: gw\r\n\r\n", config: config)
        #expect(
            balancer?.head == "GET /ws/connect?clientId=u1 HTTP/1.1\r\n"
                + "Host: rtc-balancer.rtc.svc.cluster.local:8081\r\nConnection: keep-alive\r\n"
                + "X-Forwarded-For: 203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\nX-Forwarded-Proto: http\r\n"
                + "X-Request-ID: \(firstGeneratedID)\r\n\r\n")
        let socket = rewrite(
            "GET /ws/socket-7d9f-abc12/connect?clientId=u1 HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\n"
                + "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                + "Sec-WebSocket-Version: 13\r\n\r\n", config: config)
        #expect(
            socket?.head == "GET /ws/connect?clientId=u1 HTTP/1.1\r\n"
                + "Host: socket-7d9f-abc12.socket.rtc.svc.cluster.local:8080\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                + "Connection: Upgrade\r\nUpgrade: websocket\r\nX-Forwarded-For: 203.0.113.9\r\n"
                + "X-Real-IP: 203.0.113.9\r\nX-Forwarded-Proto: http\r\nX-Request-ID: \(firstGeneratedID)\r\n\r\n")
    }
}

@Suite struct RequestIDTests {
    @Test func splitMix64Vectors() {
        // SplitMix64 from seed 0 (reference implementation by Vigna): e220a8397b1dcdaf, 6e789e6aa1b965f4, ...
        var generator = RequestIDGenerator(seed: 0)
        #expect(generator.next().description == "e220a8397b1dcdaf6e789e6aa1b965f4")
        #expect(generator.next().description == "06c45d188009454ff88bb8a8724c81ec")
    }

    @Test(arguments: [
        ("a", true), ("abc-DEF_123.~!#", true), (String(repeating: "x", count: 128), true),
        ("", false), (String(repeating: "x", count: 129), false), ("a b", false), ("caf\u{e9}", false),
        ("tab\there", false), ("del\u{7f}", false),
    ])
    func validity(_ text: String, _ valid: Bool) {
        #expect(RequestID.isValid(Array(text.utf8)) == valid)
        #expect((RequestID(Array(text.utf8)) != nil) == valid)
        if valid { #expect(RequestID(Array(text.utf8))?.bytes == Array(text.utf8)) }
    }

    @Test func seededGeneratorsDiffer() {
        var a = RequestIDGenerator()
        var b = RequestIDGenerator()
        #expect(a.next() != b.next())
    }
}
