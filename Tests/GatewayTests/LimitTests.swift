// End-to-end: the `limits` and `client_header` answers (431, 414, 413, 408, 503) with the configured values.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("limits")
    struct LimitTests {
        /// Limits well below the defaults (32k head, 8k URI, 100 fields, 1m body), so each over-limit request below
        /// would pass under the defaults: the refusal proves the configured value applies. Each has a passing control.
        static func limitedStack() throws -> Stack {
            var settings = StackSettings(echo: false)
            settings.limits = ["header_size 4k", "uri_length 1k", "header_count 20", "body_size 64k"]
            settings.timeouts = ["client_header 1s", "upstream_connect 1s", "upstream_response 2s", "drain 1s"]
            return try Stack(settings)
        }

        /// Sends `request` on a fresh connection; returns the answer and, for a refusal (status >= 400), whether the
        /// gateway closed the connection after it.
        static func exchange(_ stack: Stack, _ request: String) throws -> (HTTPResult, closed: Bool) {
            let connection = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try connection.send(request)
            let response = try connection.readResponse()
            return (response, response.status >= 400 && connection.waitForClose(timeout: .seconds(2)))
        }

        @Test func oversizedHeadURIAndFieldCountAreRefused() throws {
            let stack = try Self.limitedStack()
            defer { stack.stop() }
            let big = String(repeating: "a", count: 5000)
            let (huge, hugeClosed) = try Self.exchange(
                stack, "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-Big: \(big)\r\n\r\n")
            #expect(huge.status == 431)
            #expect(huge.text == "{\"error\":\"request_header_fields_too_large\"}\n")
            #expect(hugeClosed)
            let fits = String(repeating: "a", count: 3000)
            #expect(
                try Self.exchange(stack, "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-Big: \(fits)\r\n\r\n").0.status
                    == 200)

            let longQuery = String(repeating: "q", count: 1200)
            let (long, longClosed) = try Self.exchange(
                stack, "GET /ws/connect?x=\(longQuery) HTTP/1.1\r\nHost: gw\r\n\r\n")
            #expect(long.status == 414)
            #expect(long.text == "{\"error\":\"uri_too_long\"}\n")
            #expect(longClosed)
            let shortQuery = String(repeating: "q", count: 900)
            let (short, _) = try Self.exchange(stack, "GET /ws/connect?x=\(shortQuery) HTTP/1.1\r\nHost: gw\r\n\r\n")
            #expect(short.status == 200)
            #expect(try SeenRequest(short).path == "/ws/connect?x=\(shortQuery)")

            let many = (1...25).map { "X-Field-\($0): v\r\n" }.joined()
            let (tooMany, tooManyClosed) = try Self.exchange(
                stack, "GET /ws/connect HTTP/1.1\r\nHost: gw\r\n\(many)\r\n")
            #expect(tooMany.status == 431)
            #expect(tooManyClosed)
            let some = (1...15).map { "X-Field-\($0): v\r\n" }.joined()
            let (enough, _) = try Self.exchange(stack, "GET /ws/connect HTTP/1.1\r\nHost: gw\r\n\(some)\r\n")
            #expect(enough.status == 200)
            #expect(try SeenRequest(enough).header("X-Field-15") == "v")

            let (tooLarge, tooLargeClosed) = try Self.exchange(
                stack, "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: 70000\r\n\r\n")
            #expect(tooLarge.status == 413)
            #expect(tooLargeClosed)
            let payload = String(repeating: "p", count: 60000)
            let (small, _) = try Self.exchange(
                stack, "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: 60000\r\n\r\n\(payload)")
            #expect(small.status == 200)
            #expect(small.text == payload)

            let metrics = try stack.metrics()
            #expect(metrics.count("rtc_gateway_requests_total", ["route": RouteLabel.balancer, "status": "2xx"]) == 4)
            // Every refused request above stopped at the gateway.
            #expect(try stack.upstreamCount() == 4)
        }

        /// A head whose upper bound does not fit the worker's raw head memory (16 KiB) goes upstream whole through
        /// the array path, under the default 32k head limit.
        @Test func headLargerThanTheRawHeadMemoryIsForwardedWhole() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let big = String(repeating: "b", count: 20000)
            let (answer, _) = try Self.exchange(stack, "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-Big: \(big)\r\n\r\n")
            #expect(answer.status == 200)
            #expect(try SeenRequest(answer).header("X-Big") == big)
        }

        /// Refusals that happen before any route is chosen (431, 414, 413 on the declared length, 400) must not be
        /// charged to the first route of the file (the balancer's) but to route "none", like other unrouted answers.
        @Test func refusalsBeforeRoutingAreNotChargedToARoute() throws {
            let stack = try Self.limitedStack()
            defer { stack.stop() }
            let requests = [
                "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-Big: \(String(repeating: "a", count: 5000))\r\n\r\n",
                "GET /ws/connect?x=\(String(repeating: "q", count: 1200)) HTTP/1.1\r\nHost: gw\r\n\r\n",
                "POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: 70000\r\n\r\n",
                "GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-Fold: a\r\n b\r\n\r\n",
            ]
            for request in requests {
                let (response, _) = try Self.exchange(stack, request)
                #expect([400, 413, 414, 431].contains(response.status))
            }
            let metrics = try stack.metrics()
            #expect(metrics.count("rtc_gateway_requests_total", ["route": RouteLabel.balancer, "status": "4xx"]) == 0)
            #expect(metrics.count("rtc_gateway_requests_total", ["route": "none", "status": "4xx"]) == 4)
        }

        /// Slowloris: a head that stops half way, or trickles one byte at a time, gets 408 once `client_header 1s`
        /// has passed since its first byte, and the connection is closed.
        @Test func slowHeadsTimeOut() throws {
            let stack = try Self.limitedStack()
            defer { stack.stop() }
            let clock = ContinuousClock()

            let stalled = try RawConnection(host: stack.host, port: stack.gatewayPort)
            let started = clock.now
            try stalled.send("GET /ws/connect?clientId=u1 HTTP/1.1\r\nHost: gw\r\nX-Partial: ")
            let answer = try stalled.readResponse(timeout: .seconds(4))
            let elapsed = clock.now - started
            #expect(answer.status == 408)
            #expect(answer.text == "{\"error\":\"request_timeout\"}\n")
            #expect(elapsed >= .milliseconds(900) && elapsed < .milliseconds(2000), "\(elapsed)")
            #expect(stalled.waitForClose())

            // One byte every 150 ms never completes the head within the second either.
            let trickle = try RawConnection(host: stack.host, port: stack.gatewayPort)
            let trickleStarted = clock.now
            var answered: HTTPResult?
            for byte in Array("GET /ws/connect HTTP/1.1\r\nHost: gw\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n".utf8)
            {
                if (try? trickle.send([byte])) == nil { break }
                if trickle.fill(timeout: .milliseconds(150)) || trickle.peerClosed { break }
            }
            answered = try trickle.readResponse(timeout: .seconds(2))
            #expect(answered?.status == 408)
            #expect(clock.now - trickleStarted < .milliseconds(2500))
            #expect(try stack.upstreamCount() == 0)
        }

        /// A body that stops coming is answered 408 after `client_header` (1 s here) of silence, and the upstream
        /// never sees a complete request; a body that keeps coming, slowly, is not cut.
        @Test func stalledBodyTimesOut() throws {
            let stack = try Self.limitedStack()
            defer { stack.stop() }
            let clock = ContinuousClock()

            let stalled = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try stalled.send("POST /ws/connect HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n0123456789")
            let started = clock.now
            let answer = try stalled.readResponse(timeout: .seconds(4))
            let elapsed = clock.now - started
            #expect(answer.status == 408)
            #expect(elapsed >= .milliseconds(800) && elapsed < .milliseconds(2500), "\(elapsed)")
            #expect(stalled.waitForClose())
            #expect(try stack.upstreamCount() == 0)

            // 100 bytes, 10 every 300 ms: 3 s in all, but never 1 s of silence.
            let steady = try RawConnection(host: stack.host, port: stack.gatewayPort)
            try steady.send("POST /ws/connect?clientId=slow HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n")
            for _ in 0..<10 {
                _ = steady.fill(timeout: .milliseconds(300))
                try steady.send("0123456789")
            }
            let done = try steady.readResponse(timeout: .seconds(4))
            #expect(done.status == 200)
            #expect(try stack.upstreamCount() == 1)
        }

        /// `per_client_ip 5`: the sixth connection from one address gets 503 and is closed; the five stay usable and
        /// another address is still admitted.
        @Test func perClientIPLimit() throws {
            var settings = StackSettings(echo: false)
            settings.limits = ["per_client_ip 5"]
            settings.timeouts = [
                "client_header 10s", "client_keepalive 10s", "upstream_connect 1s", "upstream_response 2s",
            ]
            let stack = try Stack(settings)
            defer { stack.stop() }
            let client = stack.net + "21"
            let held = try (1...5).map { _ in
                try RawConnection(host: stack.host, port: stack.gatewayPort, source: client)
            }
            #expect(waitUntil { (try? stack.metrics().value("rtc_gateway_connections_active")) == 5 })
            let sixth = try RawConnection(host: stack.host, port: stack.gatewayPort, source: client)
            let refused = try sixth.readResponse()
            #expect(refused.status == 503)
            #expect(refused.text == "{\"error\":\"service_unavailable\"}\n")
            #expect(sixth.waitForClose())

            let other = try RawConnection(host: stack.host, port: stack.gatewayPort, source: stack.net + "22")
            try other.send("GET /ws/connect?clientId=other HTTP/1.1\r\nHost: gw\r\n\r\n")
            #expect(try other.readResponse().status == 200)
            for (index, connection) in held.enumerated() {
                try connection.send("GET /ws/connect?clientId=held\(index) HTTP/1.1\r\nHost: gw\r\n\r\n")
                #expect(try connection.readResponse().status == 200)
            }
            let metrics = try stack.metrics()
            #expect(metrics.count("rtc_gateway_connections_refused_total", ["reason": "per_client_ip"]) == 1)
            #expect(metrics.count("rtc_gateway_connections_refused_total", ["reason": "max_connections"]) == 0)
        }

        /// `max_connections 4`: the fifth open connection (any address) gets 503; once one closes, a new one is admitted.
        @Test func maxConnectionsLimit() throws {
            var settings = StackSettings(echo: false)
            settings.limits = ["max_connections 4"]
            settings.timeouts = [
                "client_header 10s", "client_keepalive 10s", "upstream_connect 1s", "upstream_response 2s",
            ]
            let stack = try Stack(settings)
            defer { stack.stop() }
            var held = try (1...4).map {
                try RawConnection(host: stack.host, port: stack.gatewayPort, source: stack.net + "\(30 + $0)")
            }
            #expect(waitUntil { (try? stack.metrics().value("rtc_gateway_connections_active")) == 4 })
            let fifth = try RawConnection(host: stack.host, port: stack.gatewayPort, source: stack.net + "35")
            #expect(try fifth.readResponse().status == 503)
            #expect(fifth.waitForClose())
            #expect(
                try stack.metrics().count("rtc_gateway_connections_refused_total", ["reason": "max_connections"]) == 1)

            held.removeLast()
            #expect(waitUntil { (try? stack.metrics().value("rtc_gateway_connections_active")) == 3 })
            let next = try RawConnection(host: stack.host, port: stack.gatewayPort, source: stack.net + "36")
            try next.send("GET /ws/connect?clientId=next HTTP/1.1\r\nHost: gw\r\n\r\n")
            #expect(try next.readResponse().status == 200)
            #expect(held.count == 3)
        }
    }
}
