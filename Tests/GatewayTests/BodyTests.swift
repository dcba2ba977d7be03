// End-to-end: request and response bodies through the gateway (Content-Length, chunked, limits) and pipelining.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("bodies and pipelining")
    struct BodyTests {
        /// 5 MiB up with Content-Length, echoed back byte for byte; a chunked upload echoed too.
        @Test func largeBodiesBothWays() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let large = randomBytes(5 << 20)
            let file = try writeFile(large, to: stack.scratchPath("large.bin"))
            let echoed = try stack.curl(
                ["--data-binary", "@\(file)", "-H", "Content-Type: application/octet-stream"],
                url: stack.url("/ws/connect?clientId=u1"))
            #expect(echoed.status == 200)
            #expect(echoed.body.count == large.count)
            #expect(echoed.body == large, "the 5 MiB echo differs")

            let medium = randomBytes(1_234_567)
            let mediumFile = try writeFile(medium, to: stack.scratchPath("medium.bin"))
            let chunked = try stack.curl(
                ["--data-binary", "@\(mediumFile)", "-H", "Transfer-Encoding: chunked"],
                url: stack.url("/ws/connect?clientId=u1"))
            #expect(chunked.status == 200)
            #expect(chunked.body == medium, "the chunked echo differs (\(chunked.body.count) bytes)")
            #expect(try stack.upstreamCount() == 2)
        }

        /// The upstream answers with chunks of 1 to 65536 bytes; the client gets exactly the body it sent.
        @Test func chunkedResponseRelayedIntact() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let sizes = [1, 7, 100, 4096, 9000, 3, 65536, 2]
            let pattern = Array("0123456789".utf8)
            let expected = (0..<sizes.reduce(0, +)).map { pattern[$0 % 10] }
            let result = try stack.get("/ws/connect?clientId=u1&chunked=1")
            #expect(result.status == 200)
            #expect(result.body.count == expected.count)
            #expect(result.body == expected)
            // The same over a raw connection: the framing the client sees is chunked and complete.
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send("GET /ws/connect?chunked=1 HTTP/1.1\r\nHost: gw\r\n\r\n")
            let raw = try connection.readResponse()
            #expect(raw.header("Transfer-Encoding")?.lowercased() == "chunked")
            #expect(raw.body == expected)
        }

        /// `limits { body_size 6m; }`: a declared 7 MiB body is refused with 413 before any byte reaches the upstream;
        /// a chunked body that grows past the limit is cut off with 413 as well.
        @Test func bodyOverLimitIsContentTooLarge() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let declared = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try declared.send("POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: \(7 << 20)\r\n\r\n")
            let refused = try declared.readResponse()
            #expect(refused.status == 413)
            #expect(refused.text == "{\"error\":\"content_too_large\"}\n")
            #expect(declared.waitForClose(), "the connection stays open after 413")

            let big = try writeFile(randomBytes(7 << 20), to: stack.scratchPath("big.bin"))
            let viaCurl = try stack.curl(["--data-binary", "@\(big)"], url: stack.url("/ws/connect?clientId=u1"))
            #expect(viaCurl.status == 413)

            let chunked = try stack.curl(
                ["--data-binary", "@\(big)", "-H", "Transfer-Encoding: chunked"],
                url: stack.url("/ws/connect?clientId=u1"))
            #expect(chunked.status == 413)
            #expect(try stack.upstreamCount() == 0)
            #expect(try stack.upstreamPaths().isEmpty, "a request over the body limit reached the upstream")
        }

        /// Three requests in one write (two GETs around a POST with a body): three responses, in order, each right.
        @Test func pipelinedRequestsAnsweredInOrder() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send(
                "GET /ws/connect?n=1 HTTP/1.1\r\nHost: gw\r\n\r\n"
                    + "POST /ws/connect?n=2 HTTP/1.1\r\nHost: gw\r\nContent-Length: 11\r\n\r\nhello world"
                    + "GET /ws/connect?n=3 HTTP/1.1\r\nHost: gw\r\n\r\n")
            let first = try connection.readResponse()
            let second = try connection.readResponse()
            let third = try connection.readResponse()
            #expect(first.status == 200 && second.status == 200 && third.status == 200)
            #expect(try SeenRequest(first).path == "/ws/connect?n=1")
            #expect(second.text == "hello world")
            #expect(try SeenRequest(third).path == "/ws/connect?n=3")
            #expect(first.header("X-Request-ID") != third.header("X-Request-ID"))

            // Three GETs in one write, the last asking to close: three answers, then the gateway closes.
            let again = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try again.send(
                (1...3).map {
                    "GET /ws/connect?p=\($0) HTTP/1.1\r\nHost: gw\r\n\($0 == 3 ? "Connection: close\r\n" : "")\r\n"
                }
                .joined())
            for index in 1...3 {
                let response = try again.readResponse()
                #expect(response.status == 200)
                #expect(try SeenRequest(response).path == "/ws/connect?p=\(index)")
            }
            #expect(again.waitForClose())
            #expect(again.unread.isEmpty, "bytes after the third response: \(again.unread.count)")
            #expect(try stack.upstreamPaths().filter { $0.contains("?p=") } == (1...3).map { "/ws/connect?p=\($0)" })
        }
    }
}
