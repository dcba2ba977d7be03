// End-to-end: SIGHUP reload under 1,000 live tunnels (good and broken files) and SIGTERM drain; each has its own gateway.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("reload and drain")
    struct SignalTests {
        /// SYSTEM.md §2.2: SIGHUP swaps the configuration atomically. 1,000 tunnels stay up and keep echoing, the new
        /// route answers; then a broken file is rejected, counted as a failure and logged, and the old one keeps serving.
        @Test func reloadUnderLoadKeepsTunnelsAndRejectsBrokenConfig() throws {
            let stack = try Stack(.manyTunnels)
            defer { stack.stop() }
            let hashBefore = try configHash(stack)
            let ready = stack.scratchPath("ready")
            let go = stack.scratchPath("go")
            let client = try stack.startClient(["hold", stack.wsURL(), "1000", ready, go])
            #expect(waitUntil(timeout: .seconds(30)) { FileManager.default.fileExists(atPath: ready) })
            #expect(try stack.metrics().value("rtc_gateway_tunnels_active") == 1000)
            #expect(try stack.get("/new").status == 404)

            let withNewRoute = stack.config(routes: "route exact /new {\n    return 200 \"new\";\n}")
            #expect(try stack.reload(with: withNewRoute))
            #expect(stack.gatewayOutput.contains("reloaded"), "\(stack.gatewayOutput)")
            let fresh = try stack.get("/new")
            #expect(fresh.status == 200)
            #expect(fresh.text == "new")
            var metrics = try stack.metrics()
            #expect(metrics.count("rtc_gateway_config_reloads_total", ["result": "success"]) == 1)
            #expect(metrics.count("rtc_gateway_config_reloads_total", ["result": "failure"]) == 0)
            #expect(metrics.value("rtc_gateway_tunnels_active") == 1000)
            let hashAfter = try configHash(stack)
            #expect(hashAfter != hashBefore)

            _ = FileManager.default.createFile(atPath: go, contents: nil)
            let result = try stack.clientResult(client, timeout: .seconds(30))
            #expect(result["opened"] as? Int == 1000)
            #expect(result["echoed_before"] as? Int == 1000)
            #expect(result["echoed_after"] as? Int == 1000, "\(result["first_failures"] ?? "")")

            // A file with an undefined upstream: rejected, logged with file:line, counted; the previous one serves on.
            let broken = stack.config(routes: "route exact /broken {\n    proxy http://nowhere;\n}")
            let brokenLine = broken.components(separatedBy: "\n").firstIndex { $0.contains("http://nowhere") }! + 1
            #expect(try stack.reload(with: broken))
            let log = stack.gatewayOutput
            #expect(log.contains("reload rejected, the previous configuration keeps serving"), "\(log)")
            #expect(log.contains("\(stack.configPath):\(brokenLine): proxy to undefined upstream 'nowhere'"), "\(log)")
            metrics = try stack.metrics()
            #expect(metrics.count("rtc_gateway_config_reloads_total", ["result": "failure"]) == 1)
            #expect(metrics.count("rtc_gateway_config_reloads_total", ["result": "success"]) == 1)
            #expect(try configHash(stack) == hashAfter)
            #expect(try stack.get("/new").text == "new")
            #expect(try stack.get("/broken").status == 404)
            #expect(try stack.get("/ws/connect?clientId=u1").status == 200)
            #expect(stack.gateway.isRunning)
        }

        /// SIGTERM with a live tunnel and a slow request in flight: /readyz turns 503 at once, new connections are
        /// refused, the request still completes with 200 (and `Connection: close`), the tunnel is closed inside the
        /// 2 s drain window, and the process exits 0.
        @Test func drainFinishesInFlightWorkAndExitsZero() throws {
            var settings = StackSettings()
            settings.timeouts = ["client_header 2s", "upstream_connect 1s", "upstream_response 5s", "drain 2s"]
            let stack = try Stack(settings)
            defer { stack.stop() }
            let ready = stack.scratchPath("ready")
            let tunnel = try stack.startClient(["drain", stack.wsURL(), ready])
            #expect(waitUntil(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: ready) })

            let body = stack.scratchPath("slow-body")
            let head = stack.scratchPath("slow-head")
            let slowLog = stack.scratchPath("slow-log")
            let slow = try ChildProcess(
                Paths.curl,
                [
                    "-s", "-S", "-o", body, "-D", head, "-w", "\n__STATUS__%{http_code}",
                    stack.url("/ws/connect?clientId=slow&sleep=1500"),
                ], logPath: slowLog)
            // The request is in flight once the upstream has its head.
            #expect(
                waitUntil(timeout: .seconds(5)) {
                    (try? stack.upstreamPaths())?.contains { $0.contains("sleep=1500") } == true
                })

            let signalled = Date()
            stack.signalGateway(SIGTERM)
            #expect(waitUntil(timeout: .milliseconds(500)) { (try? stack.admin("/readyz").status) == 503 })
            #expect(try stack.admin("/healthz").status == 200)
            let refused = waitUntil(timeout: .milliseconds(500)) {
                do {
                    _ = try RawConnection(host: stack.host, port: stack.gatewayPort)
                    return false
                } catch let error as RawConnection.ConnectError {
                    return error.errno == ECONNREFUSED
                } catch {
                    return false
                }
            }
            #expect(refused, "new connections are still accepted while draining")

            #expect(slow.waitForExit(timeout: .seconds(10)) == 0)
            #expect(readText(slowLog).hasSuffix("__STATUS__200"), "\(readText(slowLog))")
            let answer = readText(head)
            #expect(answer.lowercased().contains("connection: close"), "\(answer)")
            #expect(readText(body).contains("sleep=1500"))

            let result = try stack.clientResult(tunnel)
            #expect(result["echo"] as? Bool == true)
            // A WebSocket Close "going away" at a frame boundary, not a cut connection (1006).
            #expect(result["code"] as? Int == 1001, "close code \(result["code"] ?? "none")")
            let closedAt = try #require(result["closed_at"] as? Double, "the tunnel was not closed")
            let closedAfter = closedAt - signalled.timeIntervalSince1970
            #expect(closedAfter >= 0 && closedAfter <= 2.5, "tunnel closed \(closedAfter) s after SIGTERM")

            let status = stack.gateway.waitForExit(timeout: .seconds(8))
            #expect(status == 0, "\(stack.gatewayOutput)")
            #expect(Date().timeIntervalSince(signalled) < 4.5)
            #expect(stack.gatewayOutput.contains("rtc-gateway: drained"), "\(stack.gatewayOutput)")
        }
    }
}

/// The `hash` label of `rtc_gateway_config_hash` (exactly one series).
private func configHash(_ stack: Stack) throws -> String {
    let series = try stack.metrics().samples.filter { $0.name == "rtc_gateway_config_hash" }
    #expect(series.count == 1)
    return series.first?.labels["hash"] ?? ""
}
