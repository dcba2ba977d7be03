// Table-driven head parser vectors, each citing its RFC section, each fed whole, at every split point and bytewise.

import HTTP1
import Testing

struct HeadVector: CustomTestStringConvertible, Sendable {
    enum Expect: Sendable {
        case ok(Check)
        case error(HeadError)
    }

    /// Exact expectations of a valid head; nil members are not checked, the others always are.
    struct Check: Sendable {
        var framing: BodyFraming = .none
        var keepAlive = true
        var upgrade = false
        var webSocket = false
        var method: Method?
        var methodText: String?
        var target: String?
        var path: String?
        var query: String??
        var version: Version?
        var status: Int?
        var reason: String?
        var fields: [String]?
        var consumed: Int?
    }

    let name: String
    /// The RFC 9112 / 9110 section the vector exercises.
    let section: String
    let kind: HeadParser.Kind
    let input: String
    let limits: Limits
    let expect: Expect
    var hostile: Bool { if case .error = expect { return true } else { return false } }
    var testDescription: String { "\(name) [\(section)]" }

    static func ok(
        _ name: String, _ section: String, _ input: String, kind: HeadParser.Kind = .request,
        limits: Limits = Limits(), _ check: Check = Check()
    ) -> HeadVector {
        HeadVector(name: name, section: section, kind: kind, input: input, limits: limits, expect: .ok(check))
    }

    static func bad(
        _ name: String, _ section: String, _ input: String, _ error: HeadError, kind: HeadParser.Kind = .request,
        limits: Limits = Limits()
    ) -> HeadVector {
        HeadVector(name: name, section: section, kind: kind, input: input, limits: limits, expect: .error(error))
    }
}

let small = Limits(maxRequestLine: 20, maxHeaderBytes: 27, maxHeaderCount: 3)

let headVectors: [HeadVector] = [
    // MARK: Valid requests
    .ok(
        "minimal GET", "RFC 9112 §3", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        .init(
            method: .get, methodText: "GET", target: "/", path: "/", query: .some(nil), version: .http1_1,
            fields: ["Host: a"], consumed: 27)),
    .ok(
        "origin-form with query", "RFC 9112 §3.2.1",
        "GET /ws/connect?clientId=u1&x=2 HTTP/1.1\r\nHost: gw\r\n\r\n",
        .init(target: "/ws/connect?clientId=u1&x=2", path: "/ws/connect", query: "clientId=u1&x=2")),
    .ok(
        "query split at the first ?", "RFC 9112 §3.2.1", "GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n",
        .init(path: "/a", query: "b?c")),
    .ok("empty query", "RFC 9112 §3.2.1", "GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", .init(path: "/a", query: "")),
    .ok(
        "HTTP/1.0 without Host closes", "RFC 9112 §3.2, §9.3", "GET / HTTP/1.0\r\n\r\n",
        .init(keepAlive: false, version: .http1_0, fields: [])),
    .ok(
        "HTTP/1.0 keep-alive", "RFC 9112 §9.3", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        .init(keepAlive: true, version: .http1_0)),
    .ok(
        "HTTP/1.1 Connection: close", "RFC 9112 §9.6", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        .init(keepAlive: false)),
    .ok(
        "Connection list with close", "RFC 9110 §7.6.1",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive , CLOSE\r\n\r\n", .init(keepAlive: false)),
    .ok(
        "Content-Length body not consumed", "RFC 9112 §6.2",
        "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        .init(framing: .contentLength(5), method: .post, consumed: 48)),
    .ok(
        "Content-Length zero", "RFC 9110 §8.6", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        .init(framing: .contentLength(0))),
    .ok(
        "Content-Length leading zeros", "RFC 9110 §8.6", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
        .init(framing: .contentLength(7), method: .put)),
    .ok(
        "Content-Length identical list", "RFC 9110 §8.6",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", .init(framing: .contentLength(5))),
    .ok(
        "Content-Length repeated identical", "RFC 9110 §8.6",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
        .init(framing: .contentLength(5))),
    .ok(
        "Content-Length largest UInt64", "RFC 9110 §8.6",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
        .init(framing: .contentLength(UInt64.max))),
    .ok(
        "chunked request", "RFC 9112 §6.1", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        .init(framing: .chunked)),
    .ok(
        "chunked coding name is case-insensitive", "RFC 9112 §7",
        "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n", .init(framing: .chunked)),
    .ok(
        "empty list elements ignored in Transfer-Encoding", "RFC 9110 §5.6.1",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n", .init(framing: .chunked)),
    .ok(
        "WebSocket upgrade", "RFC 9110 §7.8, RFC 6455 §4.1",
        "GET /ws/socket-1/connect?clientId=u1 HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        .init(upgrade: true, webSocket: true, path: "/ws/socket-1/connect", query: "clientId=u1")),
    .ok(
        "WebSocket upgrade, mixed case list", "RFC 9110 §7.6.1, §7.8",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, UPGRADE\r\nUpgrade: WebSocket\r\n\r\n",
        .init(upgrade: true, webSocket: true)),
    .ok(
        "Upgrade without Connection token is no upgrade", "RFC 9110 §7.8",
        "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", .init(upgrade: false, webSocket: false)),
    .ok(
        "Connection upgrade without Upgrade field", "RFC 9110 §7.8",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", .init(upgrade: false)),
    .ok(
        "upgrade to another protocol", "RFC 9110 §7.8",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c, foo/2\r\n\r\n",
        .init(upgrade: true, webSocket: false)),
    .ok(
        "two empty lines before the request line", "RFC 9112 §2.2", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        .init(target: "/", consumed: 31)),
    .ok(
        "OWS trimmed around the value", "RFC 9110 §5.5", "GET / HTTP/1.1\r\nHost: \t a b \t\r\n\r\n",
        .init(fields: ["Host: a b"])),
    .ok(
        "empty field value", "RFC 9110 §5.5", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ws:   \r\n\r\n",
        .init(fields: ["Host: a", "X-Empty: ", "X-Ws: "])),
    .ok(
        "obs-text in a value", "RFC 9110 §5.5", "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\u{e9}\r\n\r\n",
        .init(fields: ["Host: a", "X-Name: caf\u{e9}"])),
    .ok(
        "field order and case kept", "RFC 9110 §5.3", "GET / HTTP/1.1\r\nX-B: 1\r\nhOsT: a\r\nx-a: 2\r\nX-B: 3\r\n\r\n",
        .init(fields: ["X-B: 1", "hOsT: a", "x-a: 2", "X-B: 3"])),
    .ok(
        "asterisk-form", "RFC 9112 §3.2.4", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        .init(method: .options, target: "*", path: "*", query: .some(nil))),
    .ok(
        "authority-form CONNECT", "RFC 9112 §3.2.3", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        .init(method: .connect, target: "example.com:443")),
    .ok(
        "absolute-form", "RFC 9112 §3.2.2", "GET http://a.example/b?c=1 HTTP/1.1\r\nHost: a.example\r\n\r\n",
        .init(path: "http://a.example/b", query: "c=1")),
    .ok(
        "extension method", "RFC 9110 §9.1", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",
        .init(method: .other, methodText: "PURGE")),
    .ok(
        "method is case-sensitive", "RFC 9110 §9.1", "get / HTTP/1.1\r\nHost: a\r\n\r\n",
        .init(method: .other, methodText: "get")),
    .ok("HEAD", "RFC 9110 §9.3.2", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", .init(method: .head)),
    .ok("DELETE", "RFC 9110 §9.3.5", "DELETE /r HTTP/1.1\r\nHost: a\r\n\r\n", .init(method: .delete)),
    .ok(
        "PATCH", "RFC 5789 §2", "PATCH /r HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
        .init(framing: .contentLength(2), method: .patch, consumed: 49)),
    .ok("TRACE", "RFC 9110 §9.3.8", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", .init(method: .trace)),
    .ok(
        "pipelined request not consumed", "RFC 9112 §9.3.2", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n",
        .init(consumed: 27)),
    .ok(
        "empty Host value", "RFC 9112 §3.2", "GET / HTTP/1.1\r\nHost:\r\n\r\n", .init(fields: ["Host: "])),
    .ok(
        "tab inside a value", "RFC 9110 §5.5", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n",
        .init(fields: ["Host: a", "X: a\tb"])),
    .ok(
        "every tchar in a field name", "RFC 9110 §5.6.2",
        "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
        .init(fields: ["Host: a", "!#$%&'*+-.^_`|~09azAZ: v"])),
    .ok(
        "request line exactly at the limit", "RFC 9112 §3", "GET /abcdef HTTP/1.0\r\n\r\n",
        limits: Limits(maxRequestLine: 20), .init(keepAlive: false, target: "/abcdef", version: .http1_0)),
    .ok(
        "head exactly at the limit", "RFC 6585 §5", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", limits: small,
        .init(consumed: 27)),
    .ok(
        "field count exactly at the limit", "RFC 6585 §5", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n",
        limits: Limits(maxHeaderCount: 3), .init(fields: ["Host: a", "A: 1", "B: 2"])),

    // MARK: Valid responses
    .ok(
        "200 with Content-Length", "RFC 9112 §4, §6.3", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        kind: .response, .init(framing: .contentLength(2), status: 200, reason: "OK", consumed: 38)),
    .ok(
        "204 has no body", "RFC 9112 §6.3 rule 1", "HTTP/1.1 204 No Content\r\n\r\n", kind: .response,
        .init(framing: .none, status: 204, reason: "No Content")),
    .ok(
        "304 ignores Content-Length", "RFC 9112 §6.3 rule 1", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        kind: .response, .init(framing: .none, status: 304)),
    .ok(
        "101 to WebSocket", "RFC 9110 §15.2.2, RFC 6455 §4.2.2",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        kind: .response, .init(framing: .none, upgrade: true, webSocket: true, status: 101)),
    .ok(
        "response without length reads until close", "RFC 9112 §6.3 rule 8", "HTTP/1.1 200 OK\r\n\r\nbody",
        kind: .response, .init(framing: .untilClose, consumed: 19)),
    .ok(
        "chunked response", "RFC 9112 §6.3 rule 4", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        kind: .response, .init(framing: .chunked)),
    .ok(
        "response coding not chunked reads until close", "RFC 9112 §6.3 rule 4",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", kind: .response, .init(framing: .untilClose)),
    .ok(
        "response gzip then chunked is chunked", "RFC 9112 §6.1",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", kind: .response, .init(framing: .chunked)),
    .ok(
        "HTTP/1.0 response closes", "RFC 9112 §9.3", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        kind: .response, .init(framing: .contentLength(0), keepAlive: false, version: .http1_0)),
    .ok(
        "status line without reason or its SP", "RFC 9112 §4", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
        kind: .response, .init(framing: .contentLength(0), status: 200, reason: "")),
    .ok(
        "empty reason", "RFC 9112 §4", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", kind: .response,
        .init(framing: .contentLength(0), status: 404, reason: "")),
    .ok(
        "reason with spaces and obs-text", "RFC 9112 §4", "HTTP/1.1 503 Service  Unavailable \u{e9}\r\n\r\n",
        kind: .response, .init(framing: .untilClose, status: 503, reason: "Service  Unavailable \u{e9}")),

    // MARK: Hostile: framing and request smuggling (RFC 9112 §11.2)
    .bad(
        "Content-Length with Transfer-Encoding", "RFC 9112 §6.1, §6.3 rule 3",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        .contentLengthWithTransferEncoding),
    .bad(
        "Transfer-Encoding then Content-Length", "RFC 9112 §6.1",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        .contentLengthWithTransferEncoding),
    .bad(
        "differing Content-Length fields", "RFC 9112 §6.3 rule 5",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .conflictingContentLength),
    .bad(
        "differing Content-Length list", "RFC 9110 §8.6", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
        .conflictingContentLength),
    .bad(
        "Content-Length with sign", "RFC 9110 §8.6", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        .invalidContentLength),
    .bad(
        "negative Content-Length", "RFC 9110 §8.6", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        .invalidContentLength),
    .bad(
        "Content-Length with inner space", "RFC 9110 §8.6",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  5 5\r\n\r\n",
        .invalidContentLength),
    .bad(
        "Content-Length overflow", "RFC 9110 §8.6",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", .invalidContentLength),
    .bad(
        "Content-Length in hex", "RFC 9110 §8.6", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        .invalidContentLength),
    .bad(
        "empty Content-Length", "RFC 9112 §6.3 rule 5", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        .invalidContentLength),
    .bad(
        "Content-Length list with empty member", "RFC 9110 §8.6",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", .invalidContentLength),
    .bad(
        "chunked then identity", "RFC 9112 §6.3 rule 4",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", .chunkedNotFinal),
    .bad(
        "gzip only", "RFC 9112 §6.3 rule 4", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        .chunkedNotFinal),
    .bad(
        "gzip then chunked is unsupported", "RFC 9112 §6.1",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferCoding),
    .bad(
        "chunked twice in a list", "RFC 9112 §6.1",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .chunkedAppliedTwice),
    .bad(
        "chunked in two fields", "RFC 9112 §6.1",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        .chunkedAppliedTwice),
    .bad(
        "chunked with parameters", "RFC 9112 §7",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
        .invalidTransferEncoding),
    .bad(
        "quoted chunked", "RFC 9112 §6.1", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
        .invalidTransferEncoding),
    .bad(
        "empty Transfer-Encoding", "RFC 9112 §6.1", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
        .invalidTransferEncoding),
    .bad(
        "space before colon on Transfer-Encoding", "RFC 9112 §5.1",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", .whitespaceBeforeColon),
    .bad(
        "Transfer-Encoding in HTTP/1.0", "RFC 9112 §6.1",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingInHTTP10),
    .bad(
        "response with Content-Length and Transfer-Encoding", "RFC 9112 §6.3 rule 3",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        .contentLengthWithTransferEncoding, kind: .response),
    .bad(
        "response with bad Content-Length", "RFC 9112 §6.3 rule 5", "HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n",
        .invalidContentLength, kind: .response),

    // MARK: Hostile: line and field syntax
    .bad("obs-fold", "RFC 9112 §5.2", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", .obsFold),
    .bad("obs-fold with tab", "RFC 9112 §5.2", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", .obsFold),
    .bad(
        "whitespace before the first field", "RFC 9112 §2.2", "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        .whitespaceBeforeFirstField),
    .bad("bare LF ending a field", "RFC 9112 §2.2", "GET / HTTP/1.1\r\nHost: a\n\r\n", .bareLF),
    .bad("bare LF ending the request line", "RFC 9112 §2.2", "GET / HTTP/1.1\nHost: a\r\n\r\n", .bareLF),
    .bad("bare LF ending the head", "RFC 9112 §2.2", "GET / HTTP/1.1\r\nHost: a\r\n\n", .bareLF),
    .bad("bare LF before the request line", "RFC 9112 §2.2", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", .bareLF),
    .bad("bare CR inside a value", "RFC 9112 §2.2", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", .bareCR),
    .bad("bare CR after the request line", "RFC 9112 §2.2", "GET / HTTP/1.1\rHost: a\r\n\r\n", .bareCR),
    .bad("CR CR LF ending a field", "RFC 9112 §2.2", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", .bareCR),
    .bad("bare CR ending the head", "RFC 9112 §2.2", "GET / HTTP/1.1\r\nHost: a\r\n\rX", .bareCR),
    .bad("NUL in a value", "RFC 9110 §5.5", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .invalidFieldValue),
    .bad("CTL in a value", "RFC 9110 §5.5", "GET / HTTP/1.1\r\nHost: a\r\nX: \u{1}\r\n\r\n", .invalidFieldValue),
    .bad("DEL in a value", "RFC 9110 §5.5", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7f}\r\n\r\n", .invalidFieldValue),
    .bad("method with (", "RFC 9110 §9.1, §5.6.2", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidMethod),
    .bad("method ends at CR", "RFC 9112 §3", "GET\r\nHost: a\r\n\r\n", .invalidMethod),
    .bad("field name with @", "RFC 9110 §5.1", "GET / HTTP/1.1\r\nHost: a\r\nX@Y: 1\r\n\r\n", .invalidFieldName),
    .bad(
        "field name with a space", "RFC 9112 §5.1", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n",
        .whitespaceBeforeColon),
    .bad("field line without colon", "RFC 9112 §5", "GET / HTTP/1.1\r\nHost\r\n\r\n", .invalidFieldName),
    .bad("field line starting with colon", "RFC 9112 §5", "GET / HTTP/1.1\r\n:a: b\r\n\r\n", .invalidFieldName),
    .bad(
        "two spaces after the method", "RFC 9112 §3", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    .bad("space inside the target", "RFC 9112 §3.2", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidVersion),
    .bad("space after the version", "RFC 9112 §3", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .invalidVersion),
    .bad("HTTP/0.9 request line", "RFC 9112 §3", "GET /\r\n\r\n", .invalidTarget),
    .bad("tab in the target", "RFC 9112 §3.2", "GET /\ta HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    .bad("NUL in the target", "RFC 9112 §3.2", "GET /\u{0} HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    .bad("fragment in the target", "RFC 9112 §3.2.1", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    .bad("non-ASCII in the target", "RFC 9112 §3.2", "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", .invalidTarget),
    .bad(
        "too many empty lines first", "RFC 9112 §2.2", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        .tooManyLeadingEmptyLines),

    // MARK: Hostile: version, Host, status
    .bad("HTTP/2.0 version", "RFC 9110 §15.6.6", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", .unsupportedVersion),
    .bad("HTTP/1.2 version", "RFC 9110 §15.6.6", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", .unsupportedVersion),
    .bad("lowercase http/1.1", "RFC 9112 §2.3", "GET / http/1.1\r\nHost: a\r\n\r\n", .invalidVersion),
    .bad("version HTTP/1.10", "RFC 9112 §2.3", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", .invalidVersion),
    .bad("version HTTP/1", "RFC 9112 §2.3", "GET / HTTP/1\r\nHost: a\r\n\r\n", .invalidVersion),
    .bad("missing Host in HTTP/1.1", "RFC 9112 §3.2", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", .missingHost),
    .bad("two Host fields", "RFC 9112 §3.2", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", .multipleHost),
    .bad("two-digit status", "RFC 9112 §4", "HTTP/1.1 20 OK\r\n\r\n", .invalidStatusCode, kind: .response),
    .bad("four-digit status", "RFC 9112 §4", "HTTP/1.1 2000 OK\r\n\r\n", .invalidStatusCode, kind: .response),
    .bad("status below 100", "RFC 9110 §15", "HTTP/1.1 099 X\r\n\r\n", .invalidStatusCode, kind: .response),
    .bad("CTL in the reason", "RFC 9112 §4", "HTTP/1.1 200 O\u{1}K\r\n\r\n", .invalidReason, kind: .response),
    .bad("obs-fold in a response", "RFC 9112 §5.2", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", .obsFold, kind: .response),
    .bad(
        "response with lowercase version", "RFC 9112 §2.3", "http/1.1 200 OK\r\n\r\n", .invalidVersion, kind: .response),

    // MARK: Hostile: limits
    .bad(
        "request line one over the limit", "RFC 9112 §3 (414)", "GET /abcdefg HTTP/1.1\r\n\r\n", .requestLineTooLong,
        limits: Limits(maxRequestLine: 20)),
    .bad(
        "long target without CRLF", "RFC 9112 §3 (414)", "GET /" + String(repeating: "a", count: 100),
        .requestLineTooLong, limits: Limits(maxRequestLine: 64)),
    .bad(
        "head one over the limit", "RFC 6585 §5 (431)", "GET / HTTP/1.1\r\nHost: ab\r\n\r\n", .headerBlockTooLarge,
        limits: small),
    .bad(
        "one field over the count", "RFC 6585 §5 (431)", "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        .tooManyHeaders, limits: Limits(maxHeaderCount: 3)),
    .bad(
        "huge field value", "RFC 6585 §5 (431)",
        "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 200) + "\r\n\r\n", .headerBlockTooLarge,
        limits: Limits(maxHeaderBytes: 128)),
]

@Suite("Head parser vectors")
struct HeadParserVectorTests {
    @Test("the table has enough vectors and enough hostile ones")
    func tableSize() {
        #expect(headVectors.count >= 60)
        #expect(headVectors.filter(\.hostile).count >= 20)
        #expect(headVectors.allSatisfy { $0.section.hasPrefix("RFC ") })
    }

    @Test("vector parsed whole, at every split point and byte by byte", arguments: headVectors)
    func vector(_ vector: HeadVector) {
        let bytes = [UInt8](ascii: vector.input)
        let whole = feed([bytes[...]], kind: vector.kind, limits: vector.limits)
        switch vector.expect {
        case .error(let error):
            #expect(whole == .failure(error))
        case .ok(let check):
            guard case .complete(let consumed, let head) = whole else {
                Issue.record("expected a complete head, got \(whole)")
                return
            }
            #expect(consumed == (check.consumed ?? bytes.count))
            #expect(head.framing == check.framing)
            #expect(head.keepAlive == check.keepAlive)
            #expect(head.upgrade == check.upgrade)
            #expect(head.webSocket == check.webSocket)
            if let method = check.method { #expect(head.method == method) }
            if let methodText = check.methodText { #expect(head.methodText == methodText) }
            if let target = check.target { #expect(head.target == target) }
            if let path = check.path { #expect(head.path == path) }
            if let query = check.query { #expect(head.query == query) }
            if let version = check.version { #expect(head.version == version) }
            if let status = check.status { #expect(head.status == status) }
            if let reason = check.reason { #expect(head.reason == reason) }
            if let fields = check.fields { #expect(head.fields == fields) }
        }
        for (cut, pieces) in everyCut(bytes).dropFirst() {
            let outcome = feed(pieces, kind: vector.kind, limits: vector.limits)
            #expect(outcome == whole, "\(cut)")
            if outcome != whole { break }
        }
    }
}
