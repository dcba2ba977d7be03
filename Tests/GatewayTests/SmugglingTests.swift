// End-to-end: request smuggling attempts are refused at the gateway and no complete request reaches the upstream.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("request smuggling")
    struct SmugglingTests {
        struct Attempt: CustomTestStringConvertible, Sendable {
            let name: String
            let request: String
            /// What RFC 9112 asks for: 400, or 501 for a transfer coding the server does not implement (§6.1).
            let status: Int
            var testDescription: String { name }
        }

        /// Each attempt ends with a second request, `GET /smuggled`, that a desynchronised parser would forward.
        static let smuggled = "GET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"

        static let attempts: [Attempt] = [
            Attempt(
                name: "Content-Length and Transfer-Encoding",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "0\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "Transfer-Encoding and Content-Length",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
                    + "0\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "two different Content-Lengths",
                request: "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhello"
                    + smuggled, status: 400),
            Attempt(
                name: "Content-Length list with different values",
                request: "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: 5, 44\r\n\r\nhello" + smuggled,
                status: 400),
            Attempt(
                name: "Content-Length with a sign",
                request: "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: +5\r\n\r\nhello" + smuggled,
                status: 400),
            Attempt(
                name: "obs-fold",
                request: "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-Folded: a\r\n b\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "obs-fold hiding Transfer-Encoding",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n"
                    + "0\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "bare CR in a field value",
                request: "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-CR: a\rTransfer-Encoding: chunked\r\n\r\n"
                    + smuggled,
                status: 400),
            Attempt(
                name: "bare LF line ending",
                request: "GET /ws/connect HTTP/1.1\r\nHost: gw\nX-LF: a\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "whitespace before the colon",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n"
                    + "0\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "Transfer-Encoding: chunked, identity",
                request: "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                    + "0\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "chunked twice",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "0\r\n\r\n" + smuggled, status: 400),
            // Chunked not final: the body length cannot be known, so 400 (RFC 9112 §6.3 rule 4)...
            Attempt(
                name: "Transfer-Encoding: xchunked",
                request: "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
                    + smuggled,
                status: 400),
            // ...while chunked last with a coding the gateway does not implement is 501 (§6.1).
            Attempt(
                name: "Transfer-Encoding: gzip, chunked",
                request: "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
                    + smuggled, status: 501),
            Attempt(
                name: "Transfer-Encoding in HTTP/1.0",
                request: "POST /ws/connect HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    + smuggled,
                status: 400),
            Attempt(
                name: "invalid chunk size",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
                    + smuggled, status: 400),
            Attempt(
                name: "negative chunk size",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"
                    + smuggled, status: 400),
            Attempt(
                name: "chunk size with 0x prefix",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"
                    + smuggled, status: 400),
            Attempt(
                name: "chunk size that overflows 64 bits",
                request: "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "10000000000000005\r\nhello\r\n0\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "chunk data longer than its size",
                request:
                    "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"
                    + smuggled, status: 400),
            Attempt(
                name: "non-token method",
                request: "G(T /ws/connect HTTP/1.1\r\nHost: gw\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "non-token field name",
                request: "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX Bad: v\r\n\r\n" + smuggled, status: 400),
            Attempt(
                name: "NUL in a field value",
                request: "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-Nul: a\u{0}b\r\n\r\n" + smuggled, status: 400),
        ]

        /// A chunked body that turns out malformed (bad size, a size past 64 bits, more data than the size said, a
        /// bad chunk after good ones in a later write): 400, and the upstream saw nothing at all, not even the head
        /// (nginx's request buffering).
        @Test func malformedChunkedBodiesNeverReachTheUpstream() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let head = "POST /ws/connect?bad=1 HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
            let bodies: [[String]] = [
                ["zz\r\nhello\r\n0\r\n\r\n"],
                ["10000000000000005\r\nhello\r\n0\r\n\r\n"],
                ["3\r\nhello\r\n0\r\n\r\n"],
                ["5\r\nhello\r\n", "5\r\nworld\r\nq\r\n"],
            ]
            for (index, parts) in bodies.enumerated() {
                let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
                try connection.send(head)
                for part in parts { try connection.send(part) }
                let response = try connection.readResponse()
                #expect(response.status == 400, "body \(index)")
                #expect(connection.waitForClose(), "body \(index): the connection stays open")
            }
            #expect(try stack.upstreamPaths().isEmpty)
            #expect(try stack.upstreamCount() == 0)
        }

        /// Each attempt on its own connection: the gateway answers with the status RFC 9112 asks for, closes the
        /// connection without a second answer, and the upstream never gets a complete request nor `/smuggled`.
        @Test func smugglingAttemptsNeverReachTheUpstream() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            for attempt in Self.attempts {
                let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
                try connection.send(attempt.request)
                let response: HTTPResult
                do {
                    response = try connection.readResponse()
                } catch {
                    Issue.record("\(attempt.name): \(error)")
                    continue
                }
                #expect(response.status == attempt.status, "\(attempt.name)")
                #expect(connection.waitForClose(), "\(attempt.name): the connection stays open")
                #expect(connection.unread.isEmpty, "\(attempt.name): a second answer followed")
            }
            #expect(try stack.upstreamCount() == 0)
            // Not even a head: bodies are checked before the upstream sees the request.
            let paths = try stack.upstreamPaths()
            #expect(paths.isEmpty, "the upstream saw \(paths)")

            // Control: a well-formed chunked request followed by a pipelined GET is forwarded whole, both of them.
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send(
                "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                    + "GET /ws/connect?after=1 HTTP/1.1\r\nHost: gw\r\n\r\n")
            let echoed = try connection.readResponse()
            #expect(echoed.status == 200)
            #expect(echoed.text == "hello")
            #expect(try SeenRequest(try connection.readResponse()).path == "/ws/connect?after=1")
            #expect(try stack.upstreamCount() == 2)
        }
    }
}
