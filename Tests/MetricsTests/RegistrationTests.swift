// Name validation, duplicate names and bucket validation at registration.
import Testing

@testable import Metrics

@Suite struct RegistrationTests {
    @Test(arguments: ["", "1abc", "a-b", "a b", "caf\u{E9}", "a{b}", "a.b"])
    func invalidMetricNamesAreRejected(name: String) {
        #expect(throws: RegistrationError.invalidMetricName(name)) {
            try Registry().counter(name, help: "x")
        }
    }

    @Test(arguments: ["a:b_c1", "_x", ":x", "Z9"])
    func validMetricNamesAreAccepted(name: String) throws {
        let registry = Registry()
        _ = try registry.gauge(name, help: "x")
        #expect(registry.render() == "# HELP \(name) x\n# TYPE \(name) gauge\n\(name) 0\n")
    }

    @Test func invalidLabelNamesAreRejected() {
        let registry = Registry()
        #expect(throws: RegistrationError.invalidLabelName("")) {
            try registry.counter("a_total", help: "x", labelNames: [""])
        }
        #expect(throws: RegistrationError.invalidLabelName("1a")) {
            try registry.counter("a_total", help: "x", labelNames: ["ok", "1a"])
        }
        #expect(throws: RegistrationError.invalidLabelName("a:b")) {
            try registry.gauge("a", help: "x", labelNames: ["a:b"])
        }
        #expect(throws: RegistrationError.reservedLabelName("__name")) {
            try registry.gauge("a", help: "x", labelNames: ["__name"])
        }
        #expect(throws: RegistrationError.duplicateLabelName("pod")) {
            try registry.gauge("a", help: "x", labelNames: ["pod", "pod"])
        }
        #expect(throws: RegistrationError.reservedLabelName("le")) {
            try registry.histogram("h", help: "x", labelNames: ["le"])
        }
        // `le` is only reserved on histograms.
        #expect(throws: Never.self) { try registry.gauge("le_gauge", help: "x", labelNames: ["le", "_x1"]) }
    }

    @Test func duplicateNamesAreRejectedIncludingHistogramSuffixes() throws {
        let registry = Registry()
        _ = try registry.counter("x_total", help: "x")
        #expect(throws: RegistrationError.duplicateMetricName("x_total")) {
            try registry.gauge("x_total", help: "again")
        }
        _ = try registry.histogram("latency_seconds", help: "x")
        #expect(throws: RegistrationError.duplicateMetricName("latency_seconds_count")) {
            try registry.counter("latency_seconds_count", help: "x")
        }
        _ = try registry.gauge("queue_sum", help: "x")
        #expect(throws: RegistrationError.duplicateMetricName("queue_sum")) {
            try registry.histogram("queue", help: "x")
        }
        #expect(throws: RegistrationError.duplicateMetricName("x_total")) {
            try registry.counter("x_total", help: "x") { 1 }
        }
        // A refused registration leaves nothing behind.
        _ = try registry.counter("queue_total", help: "x")
        let types = registry.render().split(separator: "\n").filter { $0.hasPrefix("# TYPE") }
        #expect(
            types == [
                "# TYPE x_total counter", "# TYPE latency_seconds histogram", "# TYPE queue_sum gauge",
                "# TYPE queue_total counter",
            ])
    }

    @Test func bucketsAreValidated() throws {
        #expect(try Buckets.validate([1, 2, .infinity]) == [1, 2])
        #expect(try Buckets.validate([]) == [])
        #expect(throws: RegistrationError.self) { try Buckets.validate([1, 1]) }
        #expect(throws: RegistrationError.self) { try Buckets.validate([2, 1]) }
        #expect(throws: RegistrationError.self) { try Buckets.validate([1, .nan]) }
        #expect(throws: RegistrationError.self) { try Registry().histogram("h", help: "x", buckets: [0.5, 0.1]) }
    }

    @Test func bucketHelpers() throws {
        #expect(Buckets.defaults == [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        #expect(try Buckets.exponential(start: 0.25, factor: 2, count: 4) == [0.25, 0.5, 1, 2])
        #expect(try Buckets.linear(start: 1, width: 2, count: 3) == [1, 3, 5])
        #expect(throws: RegistrationError.self) { try Buckets.exponential(start: 1, factor: 1, count: 3) }
        #expect(throws: RegistrationError.self) { try Buckets.exponential(start: 0, factor: 2, count: 3) }
        #expect(throws: RegistrationError.self) { try Buckets.exponential(start: 1, factor: 2, count: 0) }
        #expect(throws: RegistrationError.self) { try Buckets.linear(start: 0, width: 0, count: 3) }
    }

    @Test func histogramWithoutBoundsHasOnlyInf() throws {
        let registry = Registry()
        let histogram = try registry.histogram("size_bytes", help: "x", buckets: [])
        histogram.observe(3)
        #expect(
            registry.render() == """
                # HELP size_bytes x
                # TYPE size_bytes histogram
                size_bytes_bucket{le="+Inf"} 1
                size_bytes_sum 3
                size_bytes_count 1

                """)
    }
}
