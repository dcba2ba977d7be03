// Exact Prometheus text for every metric type, labels, escaping, special values and eviction.
import Synchronization
import Testing

@testable import Metrics

@Suite struct RenderTests {
    @Test func counterAndGaugeSumTheirShards() throws {
        let registry = Registry(shards: 3)
        let requests = try registry.counter("requests_total", help: "Requests handled.")
        requests.increment(shard: 0)
        requests.increment(shard: 2, by: 41)
        requests.increment(by: 3)
        let active = try registry.gauge("active_connections", help: "Open connections.")
        active.add(shard: 1, 5)
        active.sub(shard: 2, 2)
        active.add(0.5)
        #expect(requests.value == 45)
        #expect(active.value == 3.5)
        #expect(
            registry.render() == """
                # HELP requests_total Requests handled.
                # TYPE requests_total counter
                requests_total 45
                # HELP active_connections Open connections.
                # TYPE active_connections gauge
                active_connections 3.5

                """)
    }

    @Test func gaugeSetIsAbsoluteAndLaterDeltasCountOnTop() throws {
        let registry = Registry(shards: 2)
        let gauge = try registry.gauge("desired_replicas", help: "Replicas wanted.")
        gauge.add(shard: 1, 7)
        gauge.set(10)
        #expect(gauge.value == 10)
        gauge.add(shard: 0, 2)
        gauge.sub(1)
        #expect(gauge.value == 11)
        gauge.set(-4)
        #expect(registry.render().hasSuffix("desired_replicas -4\n"))
    }

    @Test func labelledFamiliesRenderChildrenInCreationOrder() throws {
        let registry = Registry(shards: 2)
        let requests = try registry.counter(
            "http_requests_total", help: "Requests by method and status class.", labelNames: ["method", "class"])
        let getOK = requests.labels("GET", "2xx")
        getOK.increment(shard: 1, by: 2)
        requests.labels("POST", "5xx").increment(shard: 0)
        #expect(requests.labels("GET", "2xx") === getOK)
        requests.labels(["GET", "2xx"]).increment()
        let tunnels = try registry.gauge("tunnels", help: "Tunnels per pod.", labelNames: ["pod"])
        #expect(
            registry.render() == """
                # HELP http_requests_total Requests by method and status class.
                # TYPE http_requests_total counter
                http_requests_total{method="GET",class="2xx"} 3
                http_requests_total{method="POST",class="5xx"} 1
                # HELP tunnels Tunnels per pod.
                # TYPE tunnels gauge

                """)
        tunnels.labels("socket-1").add(shard: 0, 1)
        #expect(requests.labelValues == [["GET", "2xx"], ["POST", "5xx"]])
        #expect(registry.render().hasSuffix("# TYPE tunnels gauge\ntunnels{pod=\"socket-1\"} 1\n"))
    }

    @Test func histogramRendersCumulativeBucketsSumAndCount() throws {
        let registry = Registry(shards: 3)
        let duration = try registry.histogram(
            "request_duration_seconds", help: "Time to answer.", buckets: [0.25, 0.5, 1])
        duration.observe(shard: 0, 0.125)
        duration.observe(shard: 1, 0.25)  // on the bound: counted in le="0.25"
        duration.observe(shard: 0, 0.375)
        duration.observe(shard: 2, 2)
        duration.observe(1)
        #expect(
            duration.snapshot
                == HistogramSnapshot(upperBounds: [0.25, 0.5, 1], cumulativeCounts: [2, 3, 4, 5], sum: 3.75))
        #expect(duration.snapshot.count == 5)
        #expect(
            registry.render() == """
                # HELP request_duration_seconds Time to answer.
                # TYPE request_duration_seconds histogram
                request_duration_seconds_bucket{le="0.25"} 2
                request_duration_seconds_bucket{le="0.5"} 3
                request_duration_seconds_bucket{le="1"} 4
                request_duration_seconds_bucket{le="+Inf"} 5
                request_duration_seconds_sum 3.75
                request_duration_seconds_count 5

                """)
    }

    @Test func labelledHistogramPutsLeAfterItsLabels() throws {
        let registry = Registry(shards: 1)
        let family = try registry.histogram(
            "connect_seconds", help: "Upstream connect time.", labelNames: ["upstream"], buckets: [0.001, 0.01])
        family.labels("balancer").observe(shard: 0, 0.005)
        family.labels("balancer").observe(shard: 0, 0.5)
        #expect(
            registry.render() == """
                # HELP connect_seconds Upstream connect time.
                # TYPE connect_seconds histogram
                connect_seconds_bucket{upstream="balancer",le="0.001"} 0
                connect_seconds_bucket{upstream="balancer",le="0.01"} 1
                connect_seconds_bucket{upstream="balancer",le="+Inf"} 2
                connect_seconds_sum{upstream="balancer"} 0.505
                connect_seconds_count{upstream="balancer"} 2

                """)
    }

    @Test func helpAndLabelValuesAreEscaped() throws {
        let registry = Registry()
        let family = try registry.counter(
            "escapes_total", help: "Back\\slash, \"quotes\" kept,\nnew line.", labelNames: ["path"])
        family.labels("C:\\dir \"x\"\nnext").increment()
        #expect(
            registry.render() == """
                # HELP escapes_total Back\\\\slash, "quotes" kept,\\nnew line.
                # TYPE escapes_total counter
                escapes_total{path="C:\\\\dir \\"x\\"\\nnext"} 1

                """)
    }

    @Test func specialFloatValues() throws {
        let registry = Registry()
        let up = try registry.gauge("up_value", help: "Plus infinity.")
        let down = try registry.gauge("down_value", help: "Minus infinity.")
        let unknown = try registry.gauge("unknown_value", help: "Not a number.")
        up.set(.infinity)
        down.set(-.infinity)
        unknown.set(.nan)
        let text = registry.render()
        #expect(text.contains("\nup_value +Inf\n"))
        #expect(text.contains("\ndown_value -Inf\n"))
        #expect(text.contains("\nunknown_value NaN\n"))
    }

    @Test func nanObservationLandsInInfAndPoisonsTheSum() throws {
        let registry = Registry()
        let histogram = try registry.histogram("odd_seconds", help: "x", buckets: [1])
        histogram.observe(.nan)
        histogram.observe(0.5)
        #expect(histogram.snapshot.cumulativeCounts == [1, 2])
        #expect(histogram.snapshot.sum.isNaN)
        #expect(registry.render().hasSuffix("odd_seconds_sum NaN\nodd_seconds_count 2\n"))
    }

    @Test(arguments: [
        (0.0, "0"), (-0.0, "0"), (3.0, "3"), (-2.0, "-2"), (0.1, "0.1"), (1e-05, "1e-05"), (2.5, "2.5"),
        (1e20, "1e+20"), (9_007_199_254_740_991, "9007199254740991"), (-1.5e-7, "-1.5e-07"),
    ])
    func doubleFormatting(value: Double, text: String) {
        #expect(TextFormat.formatDouble(value) == text)
    }

    @Test(arguments: [(UInt64(0), "0"), (7, "7"), (10, "10"), (UInt64.max, "18446744073709551615")])
    func integerFormatting(value: UInt64, text: String) {
        var out: [UInt8] = []
        TextFormat.appendDecimal(value, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == text)
    }

    @Test func removedChildLeavesTheOutput() throws {
        let registry = Registry(shards: 2)
        let tunnels = try registry.gauge("tunnels_active", help: "Tunnels per pod.", labelNames: ["pod"])
        let first = tunnels.labels("socket-a")
        first.add(shard: 1, 3)
        tunnels.labels("socket-b").add(shard: 0, 1)
        #expect(tunnels.remove("socket-a"))
        #expect(!tunnels.remove("socket-a"))
        #expect(
            registry.render() == """
                # HELP tunnels_active Tunnels per pod.
                # TYPE tunnels_active gauge
                tunnels_active{pod="socket-b"} 1

                """)
        let again = tunnels.labels("socket-a")
        #expect(again !== first)
        #expect(again.value == 0)
        #expect(tunnels.labelValues == [["socket-b"], ["socket-a"]])
    }

    @Test func collectedValuesAreReadAtRender() throws {
        let registry = Registry()
        let memory = Atomic<Int>(4096)
        try registry.gauge("process_resident_memory_bytes", help: "Resident memory.") {
            Double(memory.load(ordering: .relaxed))
        }
        try registry.counter("process_cpu_seconds_total", help: "CPU time.") { 1.25 }
        #expect(
            registry.render() == """
                # HELP process_resident_memory_bytes Resident memory.
                # TYPE process_resident_memory_bytes gauge
                process_resident_memory_bytes 4096
                # HELP process_cpu_seconds_total CPU time.
                # TYPE process_cpu_seconds_total counter
                process_cpu_seconds_total 1.25

                """)
        memory.store(8192, ordering: .relaxed)
        #expect(registry.render().contains("\nprocess_resident_memory_bytes 8192\n"))
    }

    @Test func renderIntoAppendsBytes() throws {
        let registry = Registry()
        try registry.counter("a_total", help: "A.").increment(by: 2)
        var out: [UInt8] = Array("prefix\n".utf8)
        registry.render(into: &out)
        #expect(
            String(decoding: out, as: UTF8.self) == "prefix\n# HELP a_total A.\n# TYPE a_total counter\na_total 2\n")
        #expect(Registry.contentType == "text/plain; version=0.0.4; charset=utf-8")
    }
}
