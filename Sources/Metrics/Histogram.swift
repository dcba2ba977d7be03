// Histogram: fixed bucket bounds, per-shard bucket counts and sum, rendered as cumulative buckets.

/// Observations counted into buckets with fixed upper bounds (Prometheus `histogram`).
///
/// A shard holds one count per bucket (not cumulative: an observation touches one slot), the `+Inf`
/// bucket, and the sum as a `Double` bit pattern. `observe(shard:_:)` is a binary search over the bounds,
/// one relaxed atomic add and one compare-exchange: no lock, no allocation. The scrape sums the shards
/// and renders cumulative `_bucket{le="…"}` lines, `_sum` and `_count` (`_count` equals the `+Inf` bucket).
public final class Histogram: Sendable {
    /// Bucket upper bounds, strictly increasing, without the implicit `+Inf`.
    public let upperBounds: [Double]
    private let slots: AtomicSlots
    /// `slots`' memory, for `observe(shard:_:)` (alive as long as `slots`, which this object holds).
    @usableFromInline let writer: SlotWriter
    private let boundLabels: [[UInt8]]

    init(shards: Int, upperBounds: [Double]) {
        self.upperBounds = upperBounds
        slots = AtomicSlots(shards: shards, slotsPerShard: upperBounds.count + 2)
        writer = slots.writer
        boundLabels = (upperBounds + [.infinity]).map { bound in
            var text: [UInt8] = Array("le=\"".utf8)
            TextFormat.appendDouble(bound, to: &text)
            text.append(UInt8(ascii: "\""))
            return text
        }
    }

    @inlinable var sumSlot: Int { upperBounds.count + 1 }

    /// The slot of the bucket `value` falls in: a binary search over the bounds.
    @inlinable @inline(__always)
    func bucket(_ value: Double) -> Int {
        var low = 0
        var high = upperBounds.count
        while low < high {
            let middle = (low + high) / 2
            if value <= upperBounds[middle] {
                high = middle
            } else {
                low = middle + 1
            }
        }
        return low
    }

    /// Records `value` on the caller's shard (its event-loop index, `0..<registry.shards`).
    /// A bucket counts values `<=` its bound; NaN lands in `+Inf` only and makes the sum NaN.
    @inlinable @inline(__always)
    public func observe(shard: Int, _ value: Double) {
        writer.add(shard: shard, slot: bucket(value), 1)
        writer.addDouble(shard: shard, slot: sumSlot, value)
    }

    /// `observe(shard:_:)` for a shard of this histogram that only the calling thread writes (a loop's own shard,
    /// never written by another thread): no locked instruction.
    @inlinable @inline(__always)
    public func observe(ownShard shard: Int, _ value: Double) {
        writer.addOwned(shard: shard, slot: bucket(value), 1)
        writer.addDoubleOwned(shard: shard, slot: sumSlot, value)
    }

    /// Records `value` on shard 0; safe from any thread.
    public func observe(_ value: Double) {
        observe(shard: 0, value)
    }

    /// The totals over all shards at this instant.
    public var snapshot: HistogramSnapshot {
        var cumulative: [UInt64] = []
        cumulative.reserveCapacity(upperBounds.count + 1)
        var running: UInt64 = 0
        for bucket in 0...upperBounds.count {
            running &+= slots.sum(slot: bucket)
            cumulative.append(running)
        }
        return HistogramSnapshot(
            upperBounds: upperBounds, cumulativeCounts: cumulative, sum: slots.sumDouble(slot: sumSlot))
    }

    func appendSamples(name: String, labels: [UInt8], to out: inout [UInt8]) {
        let totals = snapshot
        var bucketLabels = labels
        if !bucketLabels.isEmpty { bucketLabels.append(UInt8(ascii: ",")) }
        let prefixLength = bucketLabels.count
        for (index, count) in totals.cumulativeCounts.enumerated() {
            bucketLabels.removeSubrange(prefixLength...)
            bucketLabels.append(contentsOf: boundLabels[index])
            TextFormat.appendSampleStart(name: name, suffix: "_bucket", labels: bucketLabels, to: &out)
            TextFormat.appendDecimal(count, to: &out)
            out.append(UInt8(ascii: "\n"))
        }
        TextFormat.appendSampleStart(name: name, suffix: "_sum", labels: labels, to: &out)
        TextFormat.appendDouble(totals.sum, to: &out)
        out.append(UInt8(ascii: "\n"))
        TextFormat.appendSampleStart(name: name, suffix: "_count", labels: labels, to: &out)
        TextFormat.appendDecimal(totals.count, to: &out)
        out.append(UInt8(ascii: "\n"))
    }
}

/// A histogram's totals at one instant.
public struct HistogramSnapshot: Equatable, Sendable {
    /// Bucket upper bounds without the implicit `+Inf`.
    public let upperBounds: [Double]
    /// Observations `<=` each bound, then the `+Inf` bucket (all observations).
    public let cumulativeCounts: [UInt64]
    /// The sum of all observed values.
    public let sum: Double
    /// The number of observations (the `+Inf` bucket).
    public var count: UInt64 { cumulativeCounts.last ?? 0 }
}

/// Bucket bound sets for histograms.
public enum Buckets {
    /// The Prometheus client libraries' defaults, meant for durations in seconds.
    public static let defaults: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// `count` bounds: `start`, `start * factor`, `start * factor²`, … (as Go's `ExponentialBuckets`).
    public static func exponential(start: Double, factor: Double, count: Int) throws(RegistrationError) -> [Double] {
        guard start > 0, start.isFinite, factor > 1, factor.isFinite, count >= 1 else {
            throw .invalidBuckets("exponential buckets need start > 0, factor > 1, count >= 1")
        }
        var bounds: [Double] = []
        bounds.reserveCapacity(count)
        var bound = start
        for _ in 0..<count {
            bounds.append(bound)
            bound *= factor
        }
        return bounds
    }

    /// `count` bounds: `start`, `start + width`, `start + 2 * width`, … (as Go's `LinearBuckets`).
    public static func linear(start: Double, width: Double, count: Int) throws(RegistrationError) -> [Double] {
        guard start.isFinite, width > 0, width.isFinite, count >= 1 else {
            throw .invalidBuckets("linear buckets need a finite start, width > 0, count >= 1")
        }
        var bounds: [Double] = []
        bounds.reserveCapacity(count)
        var bound = start
        for _ in 0..<count {
            bounds.append(bound)
            bound += width
        }
        return bounds
    }

    /// Checks bounds are strictly increasing and not NaN; a trailing `+Inf` is dropped (it is implicit).
    static func validate(_ bounds: [Double]) throws(RegistrationError) -> [Double] {
        var result = bounds
        if result.last == .infinity { result.removeLast() }
        for (index, bound) in result.enumerated() {
            if bound.isNaN { throw .invalidBuckets("bucket bound is NaN") }
            if index > 0 && !(result[index - 1] < bound) {
                throw .invalidBuckets("bucket bounds must be strictly increasing: \(result[index - 1]), \(bound)")
            }
        }
        return result
    }
}
