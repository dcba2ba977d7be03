// The load tool's histogram against a sorted reference, its merging across workers, and the report's round trip.
import Foundation
import JSON
import TestRandom
import Testing

@testable import Bench

/// The exact percentile of sorted values: the smallest value with at least p % of the values at or below it.
func reference(_ sorted: [UInt64], _ p: Double) -> UInt64 {
    let rank = max(1, Int((p / 100 * Double(sorted.count)).rounded(.up)))
    return sorted[rank - 1]
}

@Suite struct HistogramTests {
    static let percentiles: [Double] = [0, 1, 25, 50, 90, 99, 99.9, 99.99, 100]

    /// Latency-like data: mostly hundreds of µs to tens of ms, a tail to seconds, a few exact small values.
    static func sample(_ seed: UInt64, count: Int) -> [UInt64] {
        var mix = SplitMix64(seed: seed)
        return (0..<count).map { index in
            let roll = mix.next() % 1000
            if roll < 5 { return mix.next() % 256 }
            if roll > 990 { return 100_000 + mix.next() % 5_000_000 }
            return 200 + mix.next() % (1 << (8 + mix.next() % 8))
        }
    }

    @Test(arguments: [1 as UInt64, 2, 3])
    func percentilesAreWithinOneBucketAboveTheSortedReference(seed: UInt64) {
        let values = Self.sample(seed, count: 50_000)
        var histogram = Histogram()
        for value in values { histogram.record(value) }
        let sorted = values.sorted()
        #expect(histogram.count == UInt64(values.count))
        #expect(histogram.minimum == sorted.first)
        #expect(histogram.maximum == sorted.last)
        for p in Self.percentiles {
            let exact = reference(sorted, p)
            let reported = histogram.percentile(p)
            // Never below the true value, at most one bucket (1/128 of the value) above it.
            #expect(reported >= exact, "p\(p): \(reported) < \(exact)")
            #expect(Double(reported) <= Double(exact) * (1 + 1.0 / 128) + 1, "p\(p): \(reported) vs \(exact)")
        }
    }

    @Test func smallValuesAreExact() {
        var histogram = Histogram()
        for value in 0..<256 as Range<UInt64> { histogram.record(value) }
        for value in [0, 1, 100, 255] as [UInt64] {
            #expect(Histogram.highestValue(ofBucket: Histogram.index(of: value)) == value)
        }
        #expect(histogram.percentile(50) == 127)
        #expect(histogram.percentile(100) == 255)
    }

    @Test func bucketsCoverEveryValueInOrder() {
        var previous = -1
        var mix = SplitMix64(seed: 9)
        var values: [UInt64] = [0, 255, 256, 257, 511, 512, 1 << 40, UInt64.max]
        for _ in 0..<10_000 { values.append(mix.next() >> (mix.next() % 64)) }
        for value in values.sorted() {
            let index = Histogram.index(of: value)
            #expect(index >= previous)
            #expect(index < Histogram.bucketCount)
            #expect(Histogram.highestValue(ofBucket: index) >= value)
            if index > 0 { #expect(Histogram.highestValue(ofBucket: index - 1) < value) }
            previous = index
        }
    }

    @Test func mergingEqualsRecordingEverythingInOne() {
        let parts = (1...4).map { Self.sample(UInt64(10 + $0), count: 10_000) }
        var merged = Histogram()
        var whole = Histogram()
        for part in parts {
            var one = Histogram()
            for value in part {
                one.record(value)
                whole.record(value)
            }
            merged.merge(one)
        }
        #expect(merged == whole)
        let sorted = parts.flatMap { $0 }.sorted()
        for p in Self.percentiles { #expect(merged.percentile(p) >= reference(sorted, p)) }
        var empty = Histogram()
        empty.merge(Histogram())
        #expect(empty.count == 0 && empty.percentile(99) == 0)
    }

    @Test func jsonRoundTripKeepsEveryCount() throws {
        var histogram = Histogram()
        for value in Self.sample(5, count: 5_000) { histogram.record(value) }
        let text = histogram.json().serialized()
        let parsed = try JSONParser.parse(text)
        #expect(Histogram(json: parsed) == histogram)
        // A tampered count no longer adds up: refused.
        let tampered = String(decoding: text, as: UTF8.self).replacingFirst("\"count\":5000", "\"count\":5001")
        #expect(Histogram(json: try JSONParser.parse(tampered)) == nil)
    }
}

@Suite struct RunReportTests {
    static func report(seed: UInt64, clients: UInt64, seconds: Int) -> RunReport {
        var report = RunReport()
        report.counters.clients = clients
        report.counters.connected = clients
        report.counters.held = clients
        report.counters.sent = clients * 10
        report.counters.accepted = clients * 10
        report.counters.delivered = clients * 10 - seed
        report.counters.errors["assign_status_503"] = seed
        for value in HistogramTests.sample(seed, count: 1000) { report.messageLatency.record(value) }
        report.assignLatency.record(1000 + seed)
        report.upgradeLatency.record(2000 + seed)
        report.timeline = (0..<seconds).map {
            TimelinePoint(
                second: $0, connections: clients, delivered: UInt64($0) * seed, errors: 0, p99Micros: 1000 * seed)
        }
        report.seconds = Double(seconds)
        return report
    }

    @Test func workersMergeIntoOneAccount() throws {
        var total = RunReport()
        total.merge(Self.report(seed: 1, clients: 100, seconds: 3))
        total.merge(Self.report(seed: 2, clients: 50, seconds: 4))
        #expect(total.counters.clients == 150)
        #expect(total.counters.accepted == 1500)
        #expect(total.counters.lost == 3)
        #expect(total.counters.errors == ["assign_status_503": 3])
        #expect(total.messageLatency.count == 2000)
        #expect(total.timeline.map(\.second) == [0, 1, 2, 3])
        #expect(total.timeline[1].connections == 150)
        #expect(total.timeline[1].delivered == 3)
        #expect(total.timeline[3].connections == 50)
        #expect(total.timeline[0].p99Micros == 2000)
        #expect(total.seconds == 4)
        #expect(!total.isClean)
        let parsed = try JSONParser.parse(total.json().serialized())
        #expect(RunReport(json: parsed) == total)
        let markdown = total.markdown(title: "t", command: "rtc-bench run")
        #expect(markdown.contains("| 150 | 150 | 150 | 0 | 0 | 0 | 1500 | 1500 | 1497 | 3 | 0 | 0 | 0 | 3 |"))
        #expect(markdown.contains("`assign_status_503` 3"))
    }

    @Test func processesOfOneProgramAreSummed() {
        let watched = [
            WatchedProcess(name: "gateway", residentBytesBefore: 100, residentBytesAfter: 1100, cpuSeconds: 1),
            WatchedProcess(name: "gateway-2", residentBytesBefore: 100, residentBytesAfter: 2100, cpuSeconds: 2),
            WatchedProcess(name: "socket-1", residentBytesBefore: 10, residentBytesAfter: 20, cpuSeconds: 0.5),
            WatchedProcess(name: "redis", residentBytesBefore: 1, residentBytesAfter: 2, cpuSeconds: 0),
        ]
        let groups = RunReport.groups(of: watched)
        #expect(groups.map(\.name) == ["all 2 gateway processes"])
        #expect(groups.first?.residentBytesAfter == 3200)
        #expect(groups.first?.residentBytesBefore == 200)
        #expect(groups.first?.cpuSeconds == 3)
    }

    @Test func aCleanRunIsClean() {
        var report = RunReport()
        report.counters.clients = 2
        report.counters.connected = 2
        report.counters.accepted = 4
        report.counters.delivered = 4
        #expect(report.isClean)
        report.counters.duplicates = 1
        #expect(!report.isClean)
    }

    @Test func chartDrawsBothSeriesInsideThePlot() {
        let report = Self.report(seed: 3, clients: 1000, seconds: 20)
        let svg = Chart.svg(title: "smoke <run>", timeline: report.timeline)
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("smoke &lt;run&gt;"))
        let polylines = svg.components(separatedBy: "<polyline").count - 1
        #expect(polylines == 2)
        #expect(Chart.niceCeiling(1234) == 2000)
        #expect(Chart.niceCeiling(5000) == 5000)
        #expect(Chart.niceCeiling(0.37) == 0.5)
    }

    @Test func numbersAreFormattedWithoutFoundation() {
        #expect(format(3.14159, digits: 2) == "3.14")
        #expect(format(2.005, digits: 1) == "2.0")
        #expect(format(-1.5, digits: 0) == "-2")
        #expect(format(1234567, digits: 0) == "1234567")
        #expect(format(0.05, digits: 2) == "0.05")
        #expect(milliseconds(1_234) == "1.23")
    }
}

extension String {
    func replacingFirst(_ target: String, _ replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
