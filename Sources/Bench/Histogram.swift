// A log-linear latency histogram in the manner of HdrHistogram: fixed relative precision, O(1) recording, exact
// merging across processes (bucket counts add), percentiles read from the counts.
import JSON

/// Values (microseconds, or any non-negative integer unit) in buckets whose width is at most 1/128 of the value:
/// every power of two `[2^k, 2^(k+1))` is split into 128 equal sub-buckets (values below 256 are exact). A percentile
/// is reported as the highest value of its bucket, so it is never below the true value and at most 0.8 % above it.
public struct Histogram: Equatable, Sendable {
    /// Sub-buckets per power of two (2^7).
    static let subBucketBits = 7
    static let subBuckets = 1 << subBucketBits
    /// Enough buckets for every UInt64.
    static let bucketCount = (64 - subBucketBits) * subBuckets + subBuckets

    /// Non-zero counts by bucket index, grown on demand (a run's values stay in a few hundred buckets).
    public private(set) var counts: [UInt64] = []
    public private(set) var count: UInt64 = 0
    public private(set) var minimum: UInt64 = .max
    public private(set) var maximum: UInt64 = 0
    /// Sum of recorded values, for the mean.
    public private(set) var sum: Double = 0

    public init() {}

    /// The bucket a value falls in.
    static func index(of value: UInt64) -> Int {
        if value < UInt64(2 * subBuckets) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // >= subBucketBits + 1
        let shift = exponent - subBucketBits
        // (value >> shift) is in [128, 256): the sub-bucket within this power of two.
        return (shift + 1) * subBuckets + Int(value >> UInt64(shift)) - subBuckets
    }

    /// The highest value of bucket `index` (the value a percentile in it reports).
    static func highestValue(ofBucket index: Int) -> UInt64 {
        if index < 2 * subBuckets { return UInt64(index) }
        let shift = index / subBuckets - 1
        let sub = UInt64(index % subBuckets + subBuckets)
        let low = sub << UInt64(shift)
        return low + ((1 << UInt64(shift)) - 1)
    }

    public mutating func record(_ value: UInt64) {
        let index = Self.index(of: value)
        if index >= counts.count { counts.append(contentsOf: repeatElement(0, count: index + 1 - counts.count)) }
        counts[index] += 1
        count += 1
        minimum = min(minimum, value)
        maximum = max(maximum, value)
        sum += Double(value)
    }

    /// Adds every value of `other` (the same as having recorded them here).
    public mutating func merge(_ other: Histogram) {
        guard other.count > 0 else { return }
        if other.counts.count > counts.count {
            counts.append(contentsOf: repeatElement(0, count: other.counts.count - counts.count))
        }
        for index in other.counts.indices { counts[index] += other.counts[index] }
        count += other.count
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        sum += other.sum
    }

    /// The value at percentile `p` (0...100): the smallest bucket whose cumulative count reaches `p`% of all
    /// values, reported as that bucket's highest value, capped at the maximum recorded. 0 when empty.
    public func percentile(_ p: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((p / 100 * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for index in counts.indices {
            seen += counts[index]
            if seen >= rank { return min(Self.highestValue(ofBucket: index), maximum) }
        }
        return maximum
    }

    public var mean: Double { count == 0 ? 0 : sum / Double(count) }

    // MARK: Exchange between processes

    /// `{"count","min","max","sum","buckets":[[index,count],…]}` with only the non-zero buckets.
    public func json() -> JSONValue {
        var buckets: [JSONValue] = []
        for index in counts.indices where counts[index] > 0 {
            buckets.append(.array([.int(Int64(index)), .uint(counts[index])]))
        }
        return .object([
            ("count", .uint(count)), ("min", .uint(count == 0 ? 0 : minimum)), ("max", .uint(maximum)),
            ("sum", .number(String(sum))), ("buckets", .array(buckets)),
        ])
    }

    /// The histogram `json()` wrote; nil when the value is not one.
    public init?(json: JSONValue) {
        guard let buckets = json["buckets"]?.arrayValue, let total = json["count"]?.uint64Value,
            let minimum = json["min"]?.uint64Value, let maximum = json["max"]?.uint64Value,
            let sum = json["sum"]?.doubleValue
        else { return nil }
        var counted: UInt64 = 0
        for bucket in buckets {
            guard let pair = bucket.arrayValue, pair.count == 2, let index = pair[0].int64Value,
                let value = pair[1].uint64Value, index >= 0, index < Int64(Self.bucketCount)
            else { return nil }
            let position = Int(index)
            if position >= counts.count {
                counts.append(contentsOf: repeatElement(0, count: position + 1 - counts.count))
            }
            counts[position] += value
            counted += value
        }
        guard counted == total else { return nil }
        count = total
        self.minimum = total == 0 ? .max : minimum
        self.maximum = maximum
        self.sum = sum
    }
}
