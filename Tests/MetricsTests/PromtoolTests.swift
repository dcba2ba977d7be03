// Rendered output checked by Prometheus's own `promtool check metrics` (parser and linter).
import Foundation
import Testing

@testable import Metrics

@Suite struct PromtoolTests {
    static let promtool = "/usr/bin/promtool"

    /// Runs `promtool check metrics < file` and returns its exit status and combined output.
    func check(_ text: String) throws -> (status: Int32, output: String) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).prom")
        try Data(text.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.promtool)
        process.arguments = ["check", "metrics"]
        process.standardInput = try FileHandle(forReadingFrom: url)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func registryWithEveryType() throws -> Registry {
        let registry = Registry(shards: 2)
        let requests = try registry.counter(
            "rtc_gateway_requests_total", help: "Requests by route and status class.",
            labelNames: ["route", "status_class"])
        requests.labels("balancer", "2xx").increment(shard: 1, by: 12)
        requests.labels("socket \"pod\"\\x\nline", "5xx").increment()
        let bytes = try registry.counter("rtc_gateway_relayed_bytes_total", help: "Bytes relayed.\nBoth ways \\ all.")
        bytes.increment(shard: 0, by: 1 << 40)
        let tunnels = try registry.gauge(
            "rtc_gateway_tunnels_active", help: "Open WebSocket tunnels per pod.", labelNames: ["pod"])
        tunnels.labels("socket-7d9f-abc12").add(shard: 1, 3)
        tunnels.labels("socket-gone").add(shard: 0, 1)
        tunnels.remove("socket-gone")
        let ratio = try registry.gauge("rtc_gateway_weird_ratio", help: "Special values.", labelNames: ["kind"])
        ratio.labels("up").set(.infinity)
        ratio.labels("down").set(-.infinity)
        ratio.labels("nan").set(.nan)
        ratio.labels("tiny").set(1e-05)
        let duration = try registry.histogram(
            "rtc_gateway_request_duration_seconds", help: "Request duration.", labelNames: ["route"])
        duration.labels("balancer").observe(shard: 1, 0.003)
        duration.labels("balancer").observe(shard: 0, 0.2)
        duration.labels("balancer").observe(42)
        let connect = try registry.histogram(
            "rtc_gateway_upstream_connect_seconds", help: "Upstream connect time.",
            buckets: try Buckets.exponential(start: 0.0001, factor: 4, count: 8))
        connect.observe(shard: 1, 0.0007)
        try registry.gauge("process_resident_memory_bytes", help: "Resident memory size in bytes.") { 123_456_789 }
        try registry.counter("process_cpu_seconds_total", help: "Total user and system CPU time in seconds.") {
            0.37
        }
        return registry
    }

    @Test func renderedOutputPassesPromtool() throws {
        let text = try registryWithEveryType().render()
        let result = try check(text)
        #expect(result.status == 0, "promtool output: \(result.output)\n--- text ---\n\(text)")
        #expect(result.output == "")
    }

    @Test func promtoolRejectsMalformedText() throws {
        let result = try check("# TYPE broken counter\nbroken{le=\"1 2\n")
        #expect(result.status != 0)
        #expect(result.output.contains("error"))
    }

    @Test func promtoolLintCatchesConventionBreaks() throws {
        let registry = Registry()
        try registry.counter("requests", help: "No _total suffix.").increment()
        let result = try check(registry.render())
        #expect(result.status != 0)
        #expect(result.output.contains("_total"))
    }
}
