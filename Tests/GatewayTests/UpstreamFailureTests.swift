// End-to-end: upstream failures become 502 (unreachable, unresolvable) and 504 (too slow), counted by kind.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("upstream failures")
    struct UpstreamFailureTests {
        /// Nothing listens on the upstream's address: 502, and the error is counted as a refused connect.
        @Test func upstreamDownIsBadGateway() throws {
            var settings = StackSettings(echo: false)
            let deadPort = freeTCPPort()
            settings.upstreams = "upstream dead {\n    server \(allocateNetwork())9:\(deadPort);\n}"
            settings.routes = "route exact /dead {\n    proxy http://dead;\n}"
            let stack = try Stack(settings)
            defer { stack.stop() }
            let result = try stack.get("/dead?x=1")
            #expect(result.status == 502)
            #expect(result.text == "{\"error\":\"bad_gateway\"}\n")
            let metrics = try stack.metrics()
            #expect(metrics.count("rtc_gateway_upstream_errors_total", ["kind": "connect_refused"]) == 1)
            #expect(metrics.count("rtc_gateway_requests_total", ["route": "exact /dead", "status": "5xx"]) == 1)
            // The balancer route next to it still works.
            #expect(try stack.get("/ws/connect?clientId=u1").status == 200)
        }

        /// A pod id that is a valid label but has no DNS record (NXDOMAIN from dnsmasq): 502, counted as a DNS error.
        @Test func unresolvablePodIsBadGateway() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let result = try stack.upgrade("/ws/pod-gone/connect?clientId=u1")
            #expect(result.status == 502)
            #expect(result.text == "{\"error\":\"bad_gateway\"}\n")
            #expect(stack.dns.queryCount(for: "pod-gone" + Stack.podSuffix) >= 1)
            #expect(stack.dns.queriesLog().contains("pod-gone\(Stack.podSuffix) is NXDOMAIN"))
            #expect(try stack.metrics().count("rtc_gateway_upstream_errors_total", ["kind": "dns"]) == 1)
        }

        /// The upstream answers after 2.5 s but `upstream_response` is 1 s: 504 after about one second.
        @Test func slowUpstreamIsGatewayTimeout() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let clock = ContinuousClock()
            let started = clock.now
            let result = try stack.get("/ws/connect?clientId=u1&sleep=2500")
            let elapsed = clock.now - started
            #expect(result.status == 504)
            #expect(result.text == "{\"error\":\"gateway_timeout\"}\n")
            #expect(elapsed >= .milliseconds(900) && elapsed < .milliseconds(2200), "\(elapsed)")
            #expect(try stack.metrics().count("rtc_gateway_upstream_errors_total", ["kind": "response_timeout"]) == 1)
            // A fast request right after is unaffected.
            #expect(try stack.get("/ws/connect?clientId=u2&sleep=100").status == 200)
        }

        /// The balancer's name resolves to a live and a dead address (nothing listens there). Every request gets
        /// its 200: a refused connect is retried on the other address before any byte reached the client, and the
        /// dead address is then skipped for `fail_timeout` (nginx's `max_fails=1 fail_timeout=10s` defaults), so
        /// it is tried at most once per worker. Retries and skipped addresses are counted.
        @Test func deadAddressIsRetriedThenSkipped() throws {
            var settings = StackSettings(echo: false)
            settings.deadBalancerAddress = true
            let stack = try Stack(settings)
            defer { stack.stop() }
            for index in 0..<12 {
                let result = try stack.get("/ws/connect?clientId=r\(index)")
                #expect(result.status == 200, "request \(index): \(result.text)")
                #expect(try SeenRequest(result).server == "\(stack.upstreamHost):\(stack.upstreamPort)")
            }
            let metrics = try stack.metrics()
            let refused = metrics.count("rtc_gateway_upstream_errors_total", ["kind": "connect_refused"])
            #expect(refused >= 1 && refused <= Double(settings.workers), "\(refused) refused connects")
            #expect(metrics.count("rtc_gateway_upstream_retries_total") == refused)
            #expect(metrics.count("rtc_gateway_upstream_addresses_down_total") == refused)
            #expect(metrics.count("rtc_gateway_requests_total", ["route": RouteLabel.balancer, "status": "2xx"]) == 12)
            #expect(try stack.upstreamCount() == 12)
        }

        /// `max_fails=0`: the dead address is never skipped, yet every request still succeeds through the retry;
        /// nothing is counted as put out of use.
        @Test func maxFailsZeroNeverSkipsButStillRetries() throws {
            var settings = StackSettings(echo: false)
            settings.deadBalancerAddress = true
            settings.balancerServerExtra = "max_fails=0"
            settings.workers = 1
            let stack = try Stack(settings)
            defer { stack.stop() }
            for index in 0..<6 {
                #expect(try stack.get("/ws/connect?clientId=z\(index)").status == 200)
            }
            let metrics = try stack.metrics()
            // Round-robin over two addresses: about every other request meets the dead one first.
            #expect(metrics.count("rtc_gateway_upstream_errors_total", ["kind": "connect_refused"]) >= 2)
            #expect(metrics.count("rtc_gateway_upstream_retries_total") >= 2)
            #expect(metrics.count("rtc_gateway_upstream_addresses_down_total") == 0)
        }
    }
}
