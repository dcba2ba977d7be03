// Head parser behaviour beyond single vectors: pipelining, reset, early limits, lookups, framing, error statuses.

import Testing

@testable import HTTP1

@Suite("Head parser behaviour")
struct HeadParserBehaviourTests {
    @Test("two pipelined requests in one buffer")
    func pipelined() {
        let first = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
        let second = "GET /b?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        let buffer = [UInt8](ascii: first + "hello" + second)
        var parser = HeadParser(kind: .request)
        #expect(parser.parse(buffer) == .complete(consumed: first.utf8.count))
        #expect(parser.method == .post)
        #expect(parser.bodyFraming == .contentLength(5))
        let rest = Array(buffer[(first.utf8.count + 5)...])
        parser.reset()
        #expect(parser.parse(rest) == .complete(consumed: second.utf8.count))
        #expect(parser.method == .get)
        #expect(text(parser.path) == "/b")
        #expect(text(parser.query ?? []) == "x=1")
        #expect(parser.keepAlive == false)
        #expect(parser.bodyFraming == .none)
        #expect(parser.fieldCount == 2)
    }

    @Test("reset keeps the storage capacity and forgets the previous head")
    func resetKeepsCapacity() {
        var parser = HeadParser(kind: .request)
        let big = [UInt8](ascii: "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 3000) + "\r\n\r\n")
        #expect(parser.parse(big) == .complete(consumed: big.count))
        let storageCapacity = parser.storage.capacity
        let fieldCapacity = parser.fields.capacity
        parser.reset()
        #expect(parser.storage.capacity == storageCapacity)
        #expect(!parser.isComplete)
        let small = [UInt8](ascii: "GET /2 HTTP/1.0\r\n\r\n")
        #expect(parser.parse(small) == .complete(consumed: small.count))
        #expect(parser.storage.capacity == storageCapacity)
        #expect(parser.fields.capacity == fieldCapacity)
        #expect(parser.fieldCount == 0)
        #expect(parser.version == .http1_0)
        #expect(parser.keepAlive == false)
        #expect(text(parser.headBytes) == "GET /2 HTTP/1.0\r\n\r\n")
    }

    @Test("a limit is reported as soon as it is crossed, before the head ends")
    func earlyLimits() {
        var line = HeadParser(kind: .request, limits: Limits(maxRequestLine: 16))
        #expect(line.parse([UInt8](ascii: "GET /0123456789a")) == .needMore)
        #expect(line.parse([UInt8](ascii: "b")) == .failure(.requestLineTooLong))
        var head = HeadParser(kind: .request, limits: Limits(maxHeaderBytes: 30))
        #expect(head.parse([UInt8](ascii: "GET / HTTP/1.1\r\nX: 0123456789abc")) == .failure(.headerBlockTooLarge))
        var count = HeadParser(kind: .request, limits: Limits(maxHeaderCount: 1))
        #expect(count.parse([UInt8](ascii: "GET / HTTP/1.1\r\nA: 1\r\nB")) == .failure(.tooManyHeaders))
    }

    @Test("default limits")
    func defaults() {
        #expect(Limits() == Limits(maxRequestLine: 8192, maxHeaderBytes: 32768, maxHeaderCount: 100))
        var parser = HeadParser(kind: .request)
        let longLine = [UInt8](ascii: "GET /" + String(repeating: "a", count: 8187) + " HTTP/1.1")
        #expect(parser.parse(longLine) == .failure(.requestLineTooLong))
        var ok = HeadParser(kind: .request)
        let atLimit = [UInt8](ascii: "GET /" + String(repeating: "a", count: 8178) + " HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(ok.parse(atLimit) == .complete(consumed: atLimit.count))
    }

    @Test("failure and completion are sticky until reset")
    func sticky() {
        var parser = HeadParser(kind: .request)
        #expect(parser.parse([UInt8](ascii: "G@T")) == .failure(.invalidMethod))
        #expect(parser.parse([UInt8](ascii: " / HTTP/1.1\r\n")) == .failure(.invalidMethod))
        parser.reset()
        #expect(parser.parse([UInt8](ascii: "GET / HTTP/1.1\r\nHost: a\r\n\r\n")) == .complete(consumed: 27))
        #expect(parser.parse([UInt8](ascii: "GET")) == .complete(consumed: 0))
    }

    @Test("case-insensitive field lookup returns the first match in order")
    func lookup() {
        var parser = HeadParser(kind: .request)
        let head = [UInt8](ascii: "GET / HTTP/1.1\r\nhOST: a\r\nX-Id: 1\r\nx-id: 2\r\n\r\n")
        #expect(parser.parse(head) == .complete(consumed: head.count))
        #expect(parser.firstIndex(ofField: "x-id") == 1)
        #expect(text(parser.value(ofField: "host") ?? []) == "a")
        #expect(text(parser.value(ofField: "x-id") ?? []) == "1")
        #expect(parser.value(ofField: "x-i") == nil)
        #expect(parser.value(ofField: "cookie") == nil)
        #expect(text(parser.name(at: 2)) == "x-id")
    }

    @Test(
        "response framing depends on the request method and status",
        arguments: [
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", Method.head, BodyFraming.none),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .head, .none),
            ("HTTP/1.1 200 Connection established\r\n\r\n", .connect, .tunnel),
            ("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", .connect, .contentLength(0)),
            ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", .get, .contentLength(3)),
            ("HTTP/1.1 100 Continue\r\n\r\n", .post, .none),
            ("HTTP/1.1 204 No Content\r\n\r\n", .delete, .none),
            ("HTTP/1.1 200 OK\r\n\r\n", .get, .untilClose),
        ])
    func responseFraming(head: String, method: Method, framing: BodyFraming) {
        var parser = HeadParser(kind: .response)
        let bytes = [UInt8](ascii: head)
        #expect(parser.parse(bytes) == .complete(consumed: bytes.count))
        #expect(parser.responseFraming(requestMethod: method) == framing)
    }

    @Test(
        "each error maps to its status",
        arguments: [
            (HeadError.requestLineTooLong, 414), (.headerBlockTooLarge, 431), (.tooManyHeaders, 431),
            (.unsupportedTransferCoding, 501), (.unsupportedVersion, 505), (.contentLengthWithTransferEncoding, 400),
            (.bareLF, 400), (.obsFold, 400), (.missingHost, 400), (.chunkedNotFinal, 400), (.invalidVersion, 400),
        ])
    func errorStatus(error: HeadError, status: Int) {
        #expect(error.status == status)
    }

    @Test("tchar masks match the RFC 9110 §5.6.2 list for every byte")
    func tcharTable() {
        let tchars = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(ByteClass.isTchar(byte) == tchars.contains(byte), "byte \(byte)")
        }
    }
}
