// End-to-end: WebSocket tunnels at scale, the idle timeout, and DNS answers that change under live traffic.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("WebSocket tunnels")
    struct TunnelTests {
        /// 2,000 tunnels open at once from one asyncio client, each echoing binary messages of frame-boundary and random
        /// sizes plus a text message; every echo is compared byte for byte by the client.
        @Test func twoThousandConcurrentTunnelsEchoByteExact() throws {
            let stack = try Stack(.manyTunnels)
            defer { stack.stop() }
            let result = try stack.wsclient(["load", stack.wsURL(), "2000"], timeout: .seconds(60))
            let metrics = try stack.metrics()
            let answers = metrics.samples.filter {
                $0.name == "rtc_gateway_requests_total" || $0.name.contains("errors")
            }
            .filter { $0.value > 0 }.map { "\($0.name)\($0.labels) \($0.value)" }
            #expect(result["tunnels"] as? Int == 2000)
            #expect(
                result["failures"] as? Int == 0,
                "\(result["first_failures"] ?? "") after \(result["seconds"] ?? "") s; gateway: \(answers)")
            #expect(result["messages"] as? Int == 6000)
            let sent = Double(result["bytes"] as? Int ?? 0)
            #expect(metrics.count("rtc_gateway_requests_total", ["route": RouteLabel.pod, "status": "1xx"]) == 2000)
            // Every payload byte went up and came back (plus frame headers and masks).
            #expect(metrics.count("rtc_gateway_bytes_relayed_total", ["direction": "upstream"]) > sent)
            #expect(metrics.count("rtc_gateway_bytes_relayed_total", ["direction": "downstream"]) > sent)
            let drained = waitUntil(timeout: .seconds(10)) {
                (try? stack.metrics().value("rtc_gateway_tunnels_active")) == 0
            }
            #expect(drained, "tunnels left open after every client closed")
        }

        /// `tunnel_idle 3s`: a tunnel idle for 1.5 s still echoes; one idle past 3 s is closed by the gateway at about
        /// 3 s. nginx's default (`proxy_read_timeout 60s`) and this gateway's default (1 h) would keep both open, so
        /// the close proves the configured value is the one applied.
        @Test func idleTunnelClosedAfterConfiguredTimeout() throws {
            var settings = StackSettings()
            settings.timeouts.append("tunnel_idle 3s")
            let stack = try Stack(settings)
            defer { stack.stop() }
            let result = try stack.wsclient(["idle", stack.wsURL()], timeout: .seconds(20))
            #expect(result["a_after_idle"] as? Bool == true)
            let closedAfter = try #require(result["b_closed_after"] as? Double, "the idle tunnel was not closed")
            #expect(closedAfter >= 2.8 && closedAfter < 4.5, "closed after \(closedAfter) s")
            #expect(waitUntil(timeout: .seconds(3)) { (try? stack.metrics().value("rtc_gateway_tunnels_active")) == 0 })
        }

        /// dnsmasq answers with TTL 1: pod-a moves from .3 to .4 while tunnel T1 to .3 is open. After the TTL, new
        /// tunnels reach .4 (the second echo server reports its address) and T1 keeps echoing on .3. Every tunnel opened
        /// after the TTL must reach the new address: an expired answer served while its refresh is still in flight (not
        /// failed) sends a new tunnel to where the pod used to be.
        @Test func dnsChangeReachesNewTunnelsWhileOldTunnelKeepsWorking() throws {
            var settings = StackSettings()
            settings.dnsTTL = 1
            settings.secondEcho = true
            // One loop, one resolver cache: T1's cached answer is the one every later tunnel meets after its TTL.
            settings.workers = 1
            let stack = try Stack(settings)
            defer { stack.stop() }
            let ready = stack.scratchPath("ready")
            let go = stack.scratchPath("go")
            let client = try stack.startClient(["dnsflip", stack.wsURL(), ready, go, "1.5"])
            #expect(waitUntil(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: ready) })
            let queriesBefore = stack.dns.queryCount(for: "pod-a" + Stack.podSuffix)
            try stack.dns.update(records: [
                Stack.balancerName: [stack.upstreamHost], "pod-a" + Stack.podSuffix: [stack.echo2Host],
            ])
            _ = FileManager.default.createFile(atPath: go, contents: nil)
            let result = try stack.clientResult(client)
            let stale = try stack.metrics().count("rtc_gateway_dns_stale_answers_total")

            let old = "\(stack.echoHost):\(stack.echoPort)"
            let new = "\(stack.echo2Host):\(stack.echoPort)"
            #expect((result["before"] as? [String: Any])?["server"] as? String == old)
            #expect(
                result["later"] as? [String] == Array(repeating: new, count: 6),
                "stale DNS answers served: \(stale)")
            #expect(result["old_echo"] as? Bool == true)
            #expect((result["old_after"] as? [String: Any])?["server"] as? String == old)
            #expect(stack.dns.queryCount(for: "pod-a" + Stack.podSuffix) > queriesBefore)
        }
    }
}
