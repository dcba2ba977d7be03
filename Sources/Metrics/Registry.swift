// The registry: registers metric families at start-up and renders them all in the Prometheus text format.
import Synchronization

/// Every metric family of one process, rendered in registration order as Prometheus text format 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
///
/// `shards` is the number of writer threads with an index (the gateway's event loops, `0..<shards`);
/// every metric keeps one lock-free slot set per shard and the scrape sums them. Registration takes a
/// lock and throws on invalid or duplicate names; rendering may run on any thread while loops write.
public final class Registry: Sendable {
    /// The number of shards every metric of this registry has.
    public let shards: Int
    private let state = Mutex(State())

    /// `Content-Type` of the rendered output.
    public static let contentType = TextFormat.contentType

    enum Entry {
        case counters(Family<Counter>)
        case gauges(Family<Gauge>)
        case histograms(Family<Histogram>)
        case collected(CollectedFamily)
    }

    struct State {
        var entries: [Entry] = []
        // Every sample name already taken, histogram suffixes included.
        var sampleNames: Set<String> = []
    }

    /// A registry whose metrics have `shards` per-thread slots (at least 1).
    public init(shards: Int = 1) {
        precondition(shards >= 1, "a registry needs at least one shard")
        self.shards = shards
    }

    // MARK: Counters

    /// Registers an unlabelled counter. Prometheus convention: the name ends in `_total`.
    public func counter(_ name: String, help: String) throws(RegistrationError) -> Counter {
        try counter(name, help: help, labelNames: []).labels([])
    }

    /// Registers a counter family with fixed label names.
    public func counter(
        _ name: String, help: String, labelNames: [String]
    ) throws(RegistrationError) -> CounterFamily {
        try Names.validateLabelNames(labelNames)
        let shards = self.shards
        let family = Family<Counter>(
            name: name, help: help, kind: .counter, labelNames: labelNames,
            make: { Counter(shards: shards) },
            appendSamples: { counter, name, labels, out in counter.appendSamples(name: name, labels: labels, to: &out) }
        )
        try register(.counters(family), name: name, sampleNames: [name])
        return family
    }

    /// Registers a counter whose value `collect` supplies at each render (e.g. `process_cpu_seconds_total`).
    /// `collect` runs on the rendering thread.
    public func counter(
        _ name: String, help: String, collect: @escaping @Sendable () -> Double
    ) throws(RegistrationError) {
        let family = CollectedFamily(name: name, help: help, kind: .counter, collect: collect)
        try register(.collected(family), name: name, sampleNames: [name])
    }

    // MARK: Gauges

    /// Registers an unlabelled gauge.
    public func gauge(_ name: String, help: String) throws(RegistrationError) -> Gauge {
        try gauge(name, help: help, labelNames: []).labels([])
    }

    /// Registers a gauge family with fixed label names.
    public func gauge(_ name: String, help: String, labelNames: [String]) throws(RegistrationError) -> GaugeFamily {
        try Names.validateLabelNames(labelNames)
        let shards = self.shards
        let family = Family<Gauge>(
            name: name, help: help, kind: .gauge, labelNames: labelNames,
            make: { Gauge(shards: shards) },
            appendSamples: { gauge, name, labels, out in gauge.appendSamples(name: name, labels: labels, to: &out) }
        )
        try register(.gauges(family), name: name, sampleNames: [name])
        return family
    }

    /// Registers a gauge whose value `collect` supplies at each render (e.g. `process_resident_memory_bytes`).
    /// `collect` runs on the rendering thread.
    public func gauge(
        _ name: String, help: String, collect: @escaping @Sendable () -> Double
    ) throws(RegistrationError) {
        let family = CollectedFamily(name: name, help: help, kind: .gauge, collect: collect)
        try register(.collected(family), name: name, sampleNames: [name])
    }

    // MARK: Histograms

    /// Registers an unlabelled histogram with these bucket upper bounds (strictly increasing; `+Inf` is implicit).
    public func histogram(
        _ name: String, help: String, buckets: [Double] = Buckets.defaults
    ) throws(RegistrationError) -> Histogram {
        try histogram(name, help: help, labelNames: [], buckets: buckets).labels([])
    }

    /// Registers a histogram family with fixed label names (`le` is reserved) and bucket upper bounds.
    public func histogram(
        _ name: String, help: String, labelNames: [String], buckets: [Double] = Buckets.defaults
    ) throws(RegistrationError) -> HistogramFamily {
        try Names.validateLabelNames(labelNames, reserved: ["le"])
        let bounds = try Buckets.validate(buckets)
        let shards = self.shards
        let family = Family<Histogram>(
            name: name, help: help, kind: .histogram, labelNames: labelNames,
            make: { Histogram(shards: shards, upperBounds: bounds) },
            appendSamples: { histogram, name, labels, out in
                histogram.appendSamples(name: name, labels: labels, to: &out)
            }
        )
        try register(
            .histograms(family), name: name,
            sampleNames: [name, name + "_bucket", name + "_sum", name + "_count"])
        return family
    }

    // MARK: Rendering

    /// Appends every family, in registration order, as Prometheus text format 0.0.4.
    public func render(into out: inout [UInt8]) {
        // Copy the list so registration never waits for a scrape.
        let entries = state.withLock { $0.entries }
        for entry in entries {
            switch entry {
            case .counters(let family): family.appendFamily(to: &out)
            case .gauges(let family): family.appendFamily(to: &out)
            case .histograms(let family): family.appendFamily(to: &out)
            case .collected(let family): family.appendFamily(to: &out)
            }
        }
    }

    /// Every family as Prometheus text format 0.0.4.
    public func render() -> String {
        var out: [UInt8] = []
        render(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func register(_ entry: Entry, name: String, sampleNames: [String]) throws(RegistrationError) {
        try Names.validateMetricName(name)
        let result: Result<Void, RegistrationError> = state.withLock { state in
            for sampleName in sampleNames where state.sampleNames.contains(sampleName) {
                return .failure(.duplicateMetricName(sampleName))
            }
            state.sampleNames.formUnion(sampleNames)
            state.entries.append(entry)
            return .success(())
        }
        try result.get()
    }
}

/// A family of one sample whose value a closure computes at render time.
final class CollectedFamily: Sendable {
    let name: String
    let help: String
    let kind: MetricKind
    let collect: @Sendable () -> Double

    init(name: String, help: String, kind: MetricKind, collect: @escaping @Sendable () -> Double) {
        self.name = name
        self.help = help
        self.kind = kind
        self.collect = collect
    }

    func appendFamily(to out: inout [UInt8]) {
        TextFormat.appendHeader(name: name, help: help, kind: kind, to: &out)
        TextFormat.appendSampleStart(name: name, suffix: "", labels: [], to: &out)
        TextFormat.appendDouble(collect(), to: &out)
        out.append(UInt8(ascii: "\n"))
    }
}
