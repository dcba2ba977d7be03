// Labelled metric families: one child handle per distinct tuple of label values, created once and cached.
import Synchronization

/// A metric family with fixed label names; `labels(_:)` returns the child for one tuple of values.
///
/// Looking a child up takes a lock and may allocate (first time: the child and its rendered labels).
/// Hot code therefore looks a child up once (at start, or when a connection picks its route/upstream) and
/// keeps the handle; the handle's own increments are lock free. `remove(_:)` evicts a child (e.g. a
/// per-pod label once the pod is gone): its lines leave the output; a handle still held keeps working
/// but is no longer rendered, and a later `labels(_:)` with the same values starts from zero.
public final class Family<Metric: AnyObject & Sendable>: Sendable {
    /// The metric name, as registered.
    public let name: String
    /// The label names, in the order `labels(_:)` takes their values.
    public let labelNames: [String]
    let help: String
    let kind: MetricKind
    private let make: @Sendable () -> Metric
    private let appendSamples: @Sendable (Metric, String, [UInt8], inout [UInt8]) -> Void
    private let children = Mutex(Children())

    struct Child {
        let values: [String]
        let labels: [UInt8]
        let metric: Metric
    }

    struct Children {
        var byValues: [[String]: Child] = [:]
        // Creation order, so the output is deterministic.
        var order: [[String]] = []
    }

    init(
        name: String, help: String, kind: MetricKind, labelNames: [String],
        make: @escaping @Sendable () -> Metric,
        appendSamples: @escaping @Sendable (Metric, String, [UInt8], inout [UInt8]) -> Void
    ) {
        self.name = name
        self.help = help
        self.kind = kind
        self.labelNames = labelNames
        self.make = make
        self.appendSamples = appendSamples
    }

    /// The child for these label values (one per label name, in order), created on first use.
    /// Takes a lock: look up once and keep the handle on hot paths.
    public func labels(_ values: String...) -> Metric {
        labels(values)
    }

    /// The child for these label values (one per label name, in order), created on first use.
    public func labels(_ values: [String]) -> Metric {
        precondition(
            values.count == labelNames.count,
            "\(name) takes \(labelNames.count) label values, got \(values.count)")
        return children.withLock { children in
            if let child = children.byValues[values] { return child.metric }
            let child = Child(
                values: values, labels: TextFormat.labelPairs(names: labelNames, values: values), metric: make())
            children.byValues[values] = child
            children.order.append(values)
            return child.metric
        }
    }

    /// Evicts the child for these label values; returns whether there was one.
    @discardableResult
    public func remove(_ values: String...) -> Bool {
        remove(values)
    }

    /// Evicts the child for these label values; returns whether there was one.
    @discardableResult
    public func remove(_ values: [String]) -> Bool {
        children.withLock { children in
            guard children.byValues.removeValue(forKey: values) != nil else { return false }
            children.order.removeAll { $0 == values }
            return true
        }
    }

    /// The label values of every child, in creation order.
    public var labelValues: [[String]] {
        children.withLock { $0.order }
    }

    func appendFamily(to out: inout [UInt8]) {
        // Copy the children out so the lock is not held while rendering.
        let current = children.withLock { children in children.order.map { children.byValues[$0]! } }
        TextFormat.appendHeader(name: name, help: help, kind: kind, to: &out)
        for child in current {
            appendSamples(child.metric, name, child.labels, &out)
        }
    }
}

/// A counter family: `family.labels("GET", "2xx").increment(shard: loop)`.
public typealias CounterFamily = Family<Counter>
/// A gauge family: `family.labels(podID).add(shard: loop, 1)`.
public typealias GaugeFamily = Family<Gauge>
/// A histogram family: `family.labels(route).observe(shard: loop, seconds)`.
public typealias HistogramFamily = Family<Histogram>
