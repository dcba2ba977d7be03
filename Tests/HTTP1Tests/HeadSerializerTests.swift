// Serializer output bytes, decimal and reason-phrase helpers, and serialize → parse round trips.

import HTTP1
import Testing

@Suite("Head serializer")
struct HeadSerializerTests {
    @Test("request head bytes")
    func requestHead() {
        var out: [UInt8] = []
        HeadSerializer.appendRequestHead(
            method: [UInt8](ascii: "GET"), target: [UInt8](ascii: "/ws/connect?clientId=u1"),
            fields: [([UInt8](ascii: "Host"), [UInt8](ascii: "balancer")), ([UInt8](ascii: "X-A"), [])], into: &out)
        #expect(text(out) == "GET /ws/connect?clientId=u1 HTTP/1.1\r\nHost: balancer\r\nX-A: \r\n\r\n")
    }

    @Test("response head bytes, with table and explicit reasons")
    func responseHead() {
        var out: [UInt8] = []
        HeadSerializer.appendResponseHead(status: 431, fields: [], into: &out)
        #expect(text(out) == "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
        out.removeAll()
        HeadSerializer.appendStatusLine(version: .http1_0, status: 200, reason: [UInt8](ascii: "Fine"), into: &out)
        HeadSerializer.appendField(name: [UInt8](ascii: "Content-Length"), decimal: 1234, into: &out)
        HeadSerializer.appendEndOfHead(into: &out)
        #expect(text(out) == "HTTP/1.0 200 Fine\r\nContent-Length: 1234\r\n\r\n")
        out.removeAll()
        HeadSerializer.appendStatusLine(status: 799, into: &out)
        #expect(text(out) == "HTTP/1.1 799 \r\n")
    }

    @Test(
        "decimal digits",
        arguments: [
            (UInt64(0), "0"), (7, "7"), (10, "10"), (99, "99"), (100, "100"), (12345, "12345"),
            (10_000_000_000_000_000_000, "10000000000000000000"), (UInt64.max, "18446744073709551615"),
        ])
    func decimal(value: UInt64, expected: String) {
        var out: [UInt8] = []
        HeadSerializer.appendDecimal(value, into: &out)
        #expect(text(out) == expected)
    }

    @Test(
        "reason phrases",
        arguments: [
            (101, "Switching Protocols"), (200, "OK"), (400, "Bad Request"), (404, "Not Found"),
            (408, "Request Timeout"),
            (413, "Content Too Large"), (414, "URI Too Long"), (502, "Bad Gateway"), (503, "Service Unavailable"),
            (504, "Gateway Timeout"), (299, ""),
        ])
    func reasons(status: Int, phrase: String) {
        #expect(ReasonPhrase.of(status).description == phrase)
    }

    @Test("serialize then parse gives the same request head")
    func requestRoundTrip() {
        let fields: [(name: [UInt8], value: [UInt8])] = [
            ([UInt8](ascii: "Host"), [UInt8](ascii: "socket-7.socket.rtc.svc.cluster.local:8080")),
            ([UInt8](ascii: "Connection"), [UInt8](ascii: "Upgrade")),
            ([UInt8](ascii: "Upgrade"), [UInt8](ascii: "websocket")),
            ([UInt8](ascii: "X-Forwarded-For"), [UInt8](ascii: "10.0.0.1, 10.0.0.2")),
        ]
        var out: [UInt8] = []
        HeadSerializer.appendRequestHead(
            method: [UInt8](ascii: "GET"), target: [UInt8](ascii: "/ws/connect?clientId=u1"), fields: fields,
            into: &out)
        var parser = HeadParser(kind: .request)
        #expect(parser.parse(out) == .complete(consumed: out.count))
        #expect(parser.method == .get)
        #expect(text(parser.path) == "/ws/connect")
        #expect(text(parser.query ?? []) == "clientId=u1")
        #expect(parser.fieldCount == fields.count)
        for index in 0..<fields.count {
            #expect(Array(parser.name(at: index)) == fields[index].name)
            #expect(Array(parser.value(at: index)) == fields[index].value)
        }
        #expect(parser.isWebSocketUpgrade)

        // Re-serialising from the parser's own slices reproduces the head byte for byte.
        var again: [UInt8] = []
        HeadSerializer.appendRequestLine(
            method: parser.methodBytes, target: parser.target, version: parser.version, into: &again)
        for index in 0..<parser.fieldCount {
            HeadSerializer.appendField(name: parser.name(at: index), value: parser.value(at: index), into: &again)
        }
        HeadSerializer.appendEndOfHead(into: &again)
        #expect(again == out)
    }

    @Test("serialize then parse gives the same response head")
    func responseRoundTrip() {
        var out: [UInt8] = []
        HeadSerializer.appendResponseHead(
            status: 101,
            fields: [
                ([UInt8](ascii: "Upgrade"), [UInt8](ascii: "websocket")),
                ([UInt8](ascii: "Connection"), [UInt8](ascii: "Upgrade")),
            ], into: &out)
        var parser = HeadParser(kind: .response)
        #expect(parser.parse(out) == .complete(consumed: out.count))
        #expect(parser.status == 101)
        #expect(text(parser.reason) == "Switching Protocols")
        #expect(parser.isWebSocketUpgrade)
        #expect(parser.bodyFraming == .none)
        #expect(Array(parser.headBytes) == out)
    }
}
