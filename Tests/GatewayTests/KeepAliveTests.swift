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

        /// The upstream sends the head and 10 of 100 body bytes, then nothing for 6 s; `upstream_response` is 1 s.
        /// The relay phase has a deadline too: the client's connection is cut with the body incomplete, instead of
        /// hanging for as long as the upstream stalls.
        @Test func stalledResponseBodyIsCut() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send("GET /ws/connect?stall=6000 HTTP/1.1\r\nHost: gw\r\n\r\n")
            #expect(connection.waitForClose(timeout: .seconds(5)), "still open while the upstream stalls")
            let text = String(decoding: connection.unread, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200"))
            let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined()
            #expect(body == "aaaaaaaaaa", "the rest of the body arrived: the stall was not cut")
            #expect(
                try stack.metrics().count("rtc_gateway_upstream_errors_total", ["kind": "response_timeout"]) == 1)
        }

        /// The upstream closes after 10 of 100 declared body bytes: the response cannot be completed, so the
        /// client's connection is cut (not kept alive with a short body), and the next connection works.
        @Test func upstreamResetAfterResponseBytesCutsTheClient() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send("GET /ws/connect?truncate=1 HTTP/1.1\r\nHost: gw\r\n\r\n")
            #expect(connection.waitForClose(timeout: .seconds(5)))
            let text = String(decoding: connection.unread, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200") && text.hasSuffix("aaaaaaaaaa"), "\(text)")
            #expect(try stack.metrics().count("rtc_gateway_upstream_errors_total", ["kind": "reset"]) == 1)
            #expect(try stack.get("/ws/connect?after=1").status == 200)
        }

        /// `request_buffering off`: the body streams upstream as it arrives, so the upstream sees the head of a
        /// request whose chunked body turns bad later (the documented trade-off), while a good chunked upload
        /// still goes through; the buffered route next to it lets nothing through.
        @Test func requestBufferingOffStreams() throws {
            var settings = StackSettings(echo: false)
            settings.routes = "route exact /stream {\n    proxy http://balancer;\n    request_buffering off;\n}"
            let stack = try Stack(settings)
            defer { stack.stop() }
            let good = randomBytes(300_000)
            let file = try writeFile(good, to: stack.scratchPath("upload.bin"))
            let echoed = try stack.curl(
                ["--data-binary", "@\(file)", "-H", "Transfer-Encoding: chunked"], url: stack.url("/stream?good=1"))
            #expect(echoed.status == 200)
            #expect(echoed.body == good)

            // The bad chunk follows only once the upstream has the head: sent in one packet, the gateway may find
            // it before its upstream connection is ready, and then nothing reaches the upstream (no trade-off shown).
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send(
                "POST /stream?bad=1 HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            #expect(try waitUntil { try stack.upstreamPaths().contains("/stream?bad=1") })
            try connection.send("zz\r\n")
            #expect(try connection.readResponse().status == 400)
            #expect(connection.waitForClose())
            let paths = try stack.upstreamPaths()
            #expect(paths == ["/stream?good=1", "/stream?bad=1"], "\(paths)")
        }

        /// 2,000 pipelined requests for an 8 KB answer of the gateway's own (16 MB in all), sent in one go by a
        /// client that reads nothing until it has sent them all. Back-pressure is a level: the gateway stops
        /// answering (and reading) while the client's unsent bytes are above the high-water mark, so it never
        /// reaches the 4 MiB bound on unsent bytes and every answer arrives. Answering every request of a read
        /// regardless of the level (the high-water signal is seen only on its crossing) piles up what the kernel
        /// does not take of 16 MB, and the connection is cut at the bound (checked by disabling the check).
        @Test func pipelinedAnswersWaitForAClientThatDoesNotRead() throws {
            var settings = StackSettings(echo: false)
            let body = String(repeating: "x", count: 8000)
            settings.routes = "route exact /big {\n    return 200 \"\(body)\";\n}"
            let stack = try Stack(settings)
            defer { stack.stop() }
            let count = 2_000
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send(String(repeating: "GET /big HTTP/1.1\r\nHost: gw\r\n\r\n", count: count))
            var answered = 0
            while answered < count {
                guard let response = try? connection.readResponse(timeout: .seconds(10)) else { break }
                #expect(response.status == 200 && response.body.count == 8000)
                answered += 1
            }
            #expect(answered == count)
            #expect(try stack.metrics().count("rtc_gateway_connections_cut_total", ["reason": "unsent_limit"]) == 0)
        }

        /// 6,000 pipelined proxied requests from a client that reads nothing until it has sent them all: the
        /// upstream connection is paused while the client is above the high-water mark, goes back to the pool and is
        /// taken again between the responses, and every request still gets its 200. (The pool's own invariant, never
        /// pooled paused, is `UpstreamStateTests.aPausedConnectionIsNeverPooledPaused`: here the same client's
        /// drain would resume a paused connection anyway.)
        @Test func pipelinedProxiedRequestsOutliveAPausedUpstream() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let count = 6_000
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send(
                String(repeating: "GET /ws/connect?pipelined=1 HTTP/1.1\r\nHost: gw\r\n\r\n", count: count))
            var statuses: [Int: Int] = [:]
            var answered = 0
            while answered < count {
                guard let response = try? connection.readResponse(timeout: .seconds(10)) else { break }
                statuses[response.status, default: 0] += 1
                answered += 1
            }
            #expect(answered == count)
            #expect(statuses == [200: count], "\(statuses)")
        }
    }
}
