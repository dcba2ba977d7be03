// Lock-free shards under contention: 4 writer threads and a concurrent scraper; totals exact at the end.
import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Metrics

@Suite struct ConcurrencyTests {
    static let writers = 4
    static let iterations = 100_000

    /// Runs `body(index)` on `count` fresh threads and returns once all have finished.
    func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            let thread = Thread {
                body(index)
                group.leave()
            }
            thread.start()
        }
        await withCheckedContinuation { continuation in
            group.notify(queue: .global()) { continuation.resume() }
        }
    }

    @Test func writersOnOwnShardsAndSharedShardZeroWhileRendering() async throws {
        // Shard 0 is shared by all writers (the control-plane path); shards 1...4 have one writer each.
        let registry = Registry(shards: Self.writers + 1)
        let requests = try registry.counter("requests_total", help: "Requests.")
        let active = try registry.gauge("active_connections", help: "Connections.")
        let latency = try registry.histogram("latency_seconds", help: "Latency.", buckets: [0.5, 1])
        let done = Atomic<Int>(0)
        let scrapes = Mutex<[UInt64]>([])

        await onThreads(Self.writers + 1) { index in
            if index == Self.writers {
                // The scraper: every rendered count must be between the previous one and the final total.
                var seen: [UInt64] = []
                repeat {
                    let text = registry.render()
                    for line in text.split(separator: "\n") where line.hasPrefix("requests_total ") {
                        seen.append(UInt64(line.dropFirst("requests_total ".count))!)
                    }
                } while done.load(ordering: .acquiring) < Self.writers
                scrapes.withLock { $0 = seen }
                return
            }
            let shard = index + 1
            for _ in 0..<Self.iterations {
                requests.increment(shard: shard)
                requests.increment()
                active.add(shard: shard, 1)
                active.add(1)
                latency.observe(shard: shard, 0.5)
                latency.observe(2)
            }
            done.add(1, ordering: .releasing)
        }

        let total = UInt64(Self.writers * Self.iterations)
        #expect(requests.value == 2 * total)
        #expect(active.value == Double(2 * total))
        #expect(
            latency.snapshot
                == HistogramSnapshot(
                    upperBounds: [0.5, 1], cumulativeCounts: [total, total, 2 * total], sum: Double(total) * 2.5))
        let seen = scrapes.withLock { $0 }
        #expect(!seen.isEmpty)
        #expect(seen == seen.sorted())
        #expect(seen.allSatisfy { $0 <= 2 * total })
        #expect(
            registry.render() == """
                # HELP requests_total Requests.
                # TYPE requests_total counter
                requests_total 800000
                # HELP active_connections Connections.
                # TYPE active_connections gauge
                active_connections 800000
                # HELP latency_seconds Latency.
                # TYPE latency_seconds histogram
                latency_seconds_bucket{le="0.5"} 400000
                latency_seconds_bucket{le="1"} 400000
                latency_seconds_bucket{le="+Inf"} 800000
                latency_seconds_sum 1000000
                latency_seconds_count 800000

                """)
    }

    /// Gauges moved by loops on their own shards (a relaxed load and store, no locked instruction) while shard 0
    /// takes shard-less moves from every thread: exact at the end.
    @Test func gaugeMovesOnOwnShardsAndSharedShardZero() async throws {
        let registry = Registry(shards: Self.writers + 1)
        let active = try registry.gauge("active", help: "Connections.")
        await onThreads(Self.writers) { index in
            for _ in 0..<Self.iterations {
                active.add(ownShard: index + 1, 2)
                active.sub(ownShard: index + 1, 1)
                active.add(1)
            }
        }
        #expect(active.value == Double(2 * Self.writers * Self.iterations))
    }

    @Test func familyLookupsFromManyThreadsShareOneChild() async throws {
        let registry = Registry(shards: Self.writers)
        let family = try registry.counter("lookups_total", help: "Lookups.", labelNames: ["pod"])
        await onThreads(Self.writers) { index in
            for round in 0..<1_000 {
                family.labels("pod-\(round % 4)").increment(shard: index)
            }
        }
        #expect(family.labelValues.count == 4)
        for pod in 0..<4 {
            #expect(family.labels("pod-\(pod)").value == UInt64(Self.writers * 250))
        }
    }
}
