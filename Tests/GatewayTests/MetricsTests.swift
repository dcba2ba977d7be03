// End-to-end: /metrics moves with traffic and passes promtool; admin endpoints; a short wrk run with no errors.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("metrics and load")
    struct GatewayMetricsTests {
        /// Every gateway and process metric that k8s/monitoring/metric-names.txt lets the dashboard use is a family
        /// of the real output (its `# TYPE` line; labelled families such as the per-pod tunnel gauge have no sample
        /// while empty), and the label names listed after it are the ones its samples carry, so a rename cannot
        /// silently break the dashboard.
        @Test func dashboardMetricNamesExist() throws {
            let stack = try Stack()
            defer { stack.stop() }
            // Samples for the labelled families that are empty at start.
            #expect(try stack.get("/ws/connect?clientId=u1").status == 200)
            let lines = try String(
                contentsOfFile: Paths.packageRoot + "/k8s/monitoring/metric-names.txt", encoding: .utf8
            )
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            .map { $0.split(separator: " ").map(String.init) }
            .map { $0.first == "histogram" ? Array($0.dropFirst()) : $0 }
            let wanted = lines.filter { $0[0].hasPrefix("rtc_gateway_") || $0[0].hasPrefix("process_") }
            #expect(wanted.count >= 20)
            let metrics = try stack.metrics()
            for entry in wanted {
                let name = entry[0]
                #expect(metrics.text.contains("\n# TYPE \(name) "), "\(name) is not a family of /metrics")
                let samples = metrics.samples.filter { $0.name == name || $0.name == name + "_count" }
                for sample in samples {
                    let labels = Set(sample.labels.keys).subtracting(["le"])
                    #expect(
                        labels == Set(entry.dropFirst()),
                        "\(name) has labels \(labels.sorted()), not \(entry.dropFirst())")
                }
            }
        }

        /// N proxied requests add exactly N to the route's 2xx counter, M unknown paths add M to the default route's
        /// 4xx; tunnels_active and the per-pod gauge follow live tunnels; `promtool check metrics` accepts the text.
        @Test func metricsMoveWithTraffic() throws {
            let stack = try Stack()
            defer { stack.stop() }
            #expect(try stack.admin("/healthz").status == 200)
            #expect(try stack.admin("/readyz").status == 200)
            let before = try stack.metrics()
            let balancer = ["route": RouteLabel.balancer, "status": "2xx"]
            let fallback = ["route": RouteLabel.fallback, "status": "4xx"]

            // One curl, seven requests on one kept-alive connection, then three 404s.
            let urls =
                (1...7).map { stack.url("/ws/connect?clientId=m\($0)") } + (1...3).map { stack.url("/none/\($0)") }
            let (status, output) = try runProgram(
                Paths.curl, ["-s", "-w", "%{http_code}\n"] + urls.flatMap { ["-o", "/dev/null", $0] },
                scratch: stack.scratchPath("curl"))
            #expect(status == 0)
            #expect(
                output.split(separator: "\n") == Array(repeating: "200", count: 7) + Array(repeating: "404", count: 3))
            let after = try stack.metrics()
            #expect(
                after.count("rtc_gateway_requests_total", balancer)
                    - before.count("rtc_gateway_requests_total", balancer)
                    == 7)
            #expect(
                after.count("rtc_gateway_requests_total", fallback)
                    - before.count("rtc_gateway_requests_total", fallback)
                    == 3)
            #expect(
                after.count("rtc_gateway_connections_accepted_total") >= before.count(
                    "rtc_gateway_connections_accepted_total") + 1)
            let durations = after.count("rtc_gateway_request_duration_seconds_count")
            #expect(durations - before.count("rtc_gateway_request_duration_seconds_count") == 10)

            // Three live tunnels: the gauges rise to 3, then fall to 0 and the per-pod label goes away.
            let ready = stack.scratchPath("ready")
            let go = stack.scratchPath("go")
            let client = try stack.startClient(["hold", stack.wsURL(), "3", ready, go])
            #expect(waitUntil(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: ready) })
            let open = try stack.metrics()
            #expect(open.value("rtc_gateway_tunnels_active") == 3)
            #expect(open.value("rtc_gateway_tunnels_by_upstream", ["upstream": "pod-a" + Stack.podSuffix]) == 3)
            #expect(open.value("rtc_gateway_connections_by_state", ["state": "tunnel"]) == 3)
            #expect(open.count("rtc_gateway_requests_total", ["route": RouteLabel.pod, "status": "1xx"]) == 3)
            try promtoolCheck(open.text, stack)
            _ = FileManager.default.createFile(atPath: go, contents: nil)
            let result = try stack.clientResult(client)
            #expect(result["echoed_after"] as? Int == 3)
            #expect(waitUntil(timeout: .seconds(5)) { (try? stack.metrics().value("rtc_gateway_tunnels_active")) == 0 })
            let closed = try stack.metrics()
            #expect(closed.value("rtc_gateway_tunnels_by_upstream", ["upstream": "pod-a" + Stack.podSuffix]) == nil)
            #expect(closed.count("rtc_gateway_bytes_relayed_total", ["direction": "upstream"]) > 0)
            #expect(closed.value("rtc_gateway_config_hash") == 1)
            #expect(closed.count("process_open_fds") > 0)
            #expect(closed.count("process_resident_memory_bytes") > 0)
            try promtoolCheck(closed.text, stack)
        }

        /// `wrk -t1 -c20 -d2s` through the gateway: no non-2xx answer, no socket error, and the gateway counted at
        /// least every request wrk completed.
        @Test func wrkRunWithoutErrors() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let before = try stack.metrics().count(
                "rtc_gateway_requests_total", ["route": RouteLabel.balancer, "status": "2xx"])
            let (status, output) = try runProgram(
                Paths.wrk, ["-t1", "-c20", "-d2s", stack.url("/ws/connect?clientId=wrk")], timeout: .seconds(20),
                scratch: stack.scratchPath("wrk"))
            #expect(status == 0, "\(output)")
            #expect(!output.contains("Non-2xx"), "\(output)")
            #expect(!output.contains("Socket errors"), "\(output)")
            let completed =
                output.split(separator: "\n").first { $0.contains("requests in") }
                .flatMap { Int($0.trimmingCharacters(in: .whitespaces).prefix { $0.isNumber }) } ?? 0
            #expect(completed > 100, "\(output)")
            let after = try stack.metrics()
            let counted =
                after.count("rtc_gateway_requests_total", ["route": RouteLabel.balancer, "status": "2xx"]) - before
            #expect(counted >= Double(completed))
            #expect(after.count("rtc_gateway_requests_total", ["route": RouteLabel.balancer, "status": "5xx"]) == 0)
        }
    }
}

/// Runs `promtool check metrics` on `text` (it reads stdin only, hence the shell).
func promtoolCheck(_ text: String, _ stack: Stack) throws {
    let file = stack.scratchPath("metrics.txt")
    try text.write(toFile: file, atomically: true, encoding: .utf8)
    let (status, output) = try runProgram(
        "/bin/sh", ["-c", "\(Paths.promtool) check metrics < '\(file)'"], scratch: stack.scratchPath("promtool"))
    #expect(status == 0, "promtool: \(output)")
    #expect(output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool: \(output)")
}
