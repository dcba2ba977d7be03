// The resolver's Prometheus counters: queries sent, cache hits, stale answers served, failures by kind.
import Metrics

/// Counter handles for one resolver, looked up once so that counting is a lock-free add.
public struct ResolverMetrics: Sendable {
    /// Queries sent, over UDP and TCP (every try counts).
    public let queries: Counter
    /// Lookups answered from the cache without waiting (stale answers included).
    public let cacheHits: Counter
    /// Expired answers served while their refresh was in flight or failing.
    public let staleAnswers: Counter
    /// Things that went wrong, by `kind`: `timeout` (a try got no answer in time), `server_failure`, `refused`,
    /// `malformed` (a reply that did not decode, or a CNAME loop), `mismatched` (a reply ignored because its
    /// source, id or question was not the query's), `unreachable` (socket or connection errors), `overloaded`,
    /// `invalid_name`.
    public let failures: CounterFamily
    /// The event-loop index the counts go to (`Counter.increment(shard:)`).
    public let shard: Int

    let timeouts: Counter
    let serverFailures: Counter
    let refusals: Counter
    let malformedReplies: Counter
    let mismatchedReplies: Counter
    let unreachable: Counter
    let overloads: Counter
    let invalidNames: Counter

    /// Registers `rtc_gateway_dns_queries_total`, `rtc_gateway_dns_cache_hits_total`,
    /// `rtc_gateway_dns_stale_answers_total` and `rtc_gateway_dns_failures_total{kind}` with `registry`.
    public init(registry: Registry) throws(RegistrationError) {
        let queries = try registry.counter("rtc_gateway_dns_queries_total", help: "DNS queries sent (UDP and TCP).")
        let cacheHits = try registry.counter(
            "rtc_gateway_dns_cache_hits_total", help: "DNS lookups answered from the cache.")
        let staleAnswers = try registry.counter(
            "rtc_gateway_dns_stale_answers_total", help: "Expired DNS answers served while refreshing them.")
        let failures = try registry.counter(
            "rtc_gateway_dns_failures_total", help: "DNS tries and replies that went wrong, by kind.",
            labelNames: ["kind"])
        self.init(queries: queries, cacheHits: cacheHits, staleAnswers: staleAnswers, failures: failures, shard: 0)
    }

    private init(queries: Counter, cacheHits: Counter, staleAnswers: Counter, failures: CounterFamily, shard: Int) {
        self.queries = queries
        self.cacheHits = cacheHits
        self.staleAnswers = staleAnswers
        self.failures = failures
        self.shard = shard
        timeouts = failures.labels("timeout")
        serverFailures = failures.labels("server_failure")
        refusals = failures.labels("refused")
        malformedReplies = failures.labels("malformed")
        mismatchedReplies = failures.labels("mismatched")
        unreachable = failures.labels("unreachable")
        overloads = failures.labels("overloaded")
        invalidNames = failures.labels("invalid_name")
    }

    /// The same counters, counted on `shard` (the loop's index), for the resolver of another loop.
    public func forShard(_ shard: Int) -> ResolverMetrics {
        ResolverMetrics(
            queries: queries, cacheHits: cacheHits, staleAnswers: staleAnswers, failures: failures, shard: shard)
    }

    func count(_ failure: ResolveFailure) {
        let counter: Counter
        switch failure {
        case .timeout: counter = timeouts
        case .serverFailure: counter = serverFailures
        case .refused: counter = refusals
        case .malformed: counter = malformedReplies
        case .unreachable: counter = unreachable
        case .overloaded: counter = overloads
        case .closed: return
        }
        counter.increment(shard: shard)
    }
}
