// End-to-end: what one request leaves behind on a kept-alive connection (nothing), and pipelined local answers.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("keep-alive and pipelining")
    struct KeepAliveTests {
        /// A proxied `GET` that succeeds, then on the same connection one to an upstream that refuses connections:
        /// the second gets its 502 (the first one's "response started" must not survive it), and the connection
        /// still carries a third request.
        @Test func failureAfterASuccessOnTheSameConnectionIsBadGateway() throws {
            var settings = StackSettings(echo: false)
            settings.upstreams = "upstream dead {\n    server \(allocateNetwork())9:\(freeTCPPort());\n}"
            settings.routes = "route exact /dead {\n    proxy http://dead;\n}"
            let stack = try Stack(settings)
            defer { stack.stop() }
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send("GET /ws/connect?n=1 HTTP/1.1\r\nHost: gw\r\n\r\n")
            #expect(try connection.readResponse().status == 200)
            try connection.send("GET /dead HTTP/1.1\r\nHost: gw\r\n\r\n")
            let failed = try connection.readResponse()
            #expect(failed.status == 502)
            #expect(failed.text == "{\"error\":\"bad_gateway\"}\n")
            try connection.send("GET /ws/connect?n=3 HTTP/1.1\r\nHost: gw\r\n\r\n")
            let third = try connection.readResponse()
            #expect(third.status == 200)
            #expect(try SeenRequest(third).path == "/ws/connect?n=3")
        }

        /// 2,000 requests answered by the gateway itself (404), pipelined in one write: 2,000 answers in order, the
        /// gateway still up (answering them must be a loop, not one stack frame per request).
        @Test func twoThousandPipelinedLocalAnswers() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let count = 2_000
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send((0..<count).map { "GET /nope/\($0) HTTP/1.1\r\nHost: gw\r\n\r\n" }.joined())
            var answered = 0
            while answered < count {
                guard let response = try? connection.readResponse(timeout: .seconds(10)) else { break }
                #expect(response.status == 404)
                answered += 1
            }
            #expect(answered == count)
            #expect(stack.gateway.isRunning, "the gateway died: \(stack.gatewayOutput.suffix(2000))")
            // The connection is still good for a proxied request after them.
            try connection.send("GET /ws/connect?after=1 HTTP/1.1\r\nHost: gw\r\n\r\n")
            #expect(try connection.readResponse().status == 200)
        }
    }
}
