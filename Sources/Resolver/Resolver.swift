// The stub resolver of one event loop: cache first, then one coalesced lookup per name over UDP (TCP on truncation).
import DNS
import EventLoop
import Sys

/// An asynchronous DNS stub resolver for IPv4 addresses, owned by one event loop and used only on its thread.
///
/// - Names follow resolv.conf(5): the search list and `ndots` give the candidate names, tried in order until one
///   has addresses; each candidate is asked of each server in turn, `attempts` rounds, `timeout` per try.
/// - Every query goes out from a new UDP socket (a fresh random source port) with a random id, and a reply is
///   used only when it comes from the server asked and carries the id and question sent (RFC 5452 §9.1); other
///   datagrams are counted and ignored while the try keeps waiting. A truncated reply is asked again over TCP
///   (RFC 7766 §5).
/// - Answers are cached per candidate name with their TTL, capped by `maximumTTL`; NXDOMAIN and NODATA are
///   cached too (RFC 2308 §5, capped by `negativeTTLCap`). Concurrent lookups of one name share one query.
/// - An expired answer is refreshed first: the caller waits for the new answer like on a miss. Only when that
///   refresh fails is the expired answer (still inside `staleWindow`) served, and from then on at once while the
///   name's refreshes keep failing; each such lookup starts the next refresh in the background (RFC 8767 §4).
public final class Resolver {
    /// The loop this resolver runs on.
    public unowned let loop: EventLoop
    /// The configuration it was made with.
    public let configuration: ResolverConfiguration
    let metrics: ResolverMetrics?
    let plan: QueryPlan
    var cache: Cache
    // The search list and ndots, in the form `candidateNames` takes.
    private let conf: ResolvConf
    private var coalescer: Coalescer<UInt32>
    private var lookups: [CacheKey: Lookup] = [:]
    private var waiters: [Waiter] = []
    private var freeWaiters: [UInt32] = []
    private var ids = QueryIDGenerator()
    private var idsInUse: Set<UInt16> = []
    /// Lookups whose last refresh failed: their stale answers are served at once until one succeeds.
    private var failingRefreshes: Set<CacheKey> = []
    private var sweepTimer: TimerID?
    private let sweeper = Sweeper()
    /// Whether `close()` was called.
    public private(set) var isClosed = false
    /// Reused for encoding each query.
    var queryBuffer: [UInt8] = []

    private struct Waiter {
        var handler: (any ResolveHandler)?
        var name: String
        var tag: UInt64
    }

    /// The waiter token of a refresh nobody waits for.
    private static let refreshOnly = UInt32.max
    /// The coalescing key type of a name the search list applies to: from the private-use range (RFC 6895 §3.1)
    /// and never sent, it keeps `web` (tried as `web.<search>` first) apart from `web.` (tried alone).
    static let searchedKeyType = RecordType(rawValue: 0xFF01)
    /// How often entries past their stale window are dropped, in nanoseconds.
    static let sweepInterval: UInt64 = 60_000_000_000

    /// A resolver for `loop`; call on the loop's thread (or before the loop runs). Throws `EINVAL` when the
    /// configuration names no server.
    public init(loop: EventLoop, configuration: ResolverConfiguration, metrics: ResolverMetrics? = nil) throws(Errno) {
        guard !configuration.servers.isEmpty else { throw Errno.invalidArgument }
        self.loop = loop
        self.configuration = configuration
        self.metrics = metrics
        plan = QueryPlan(
            serverCount: configuration.servers.count, attempts: configuration.attempts,
            timeout: nanoseconds(configuration.timeout))
        let staleSeconds = (nanoseconds(configuration.staleWindow) + 999_999_999) / 1_000_000_000
        cache = Cache(
            configuration: Cache.Configuration(
                capacity: configuration.cacheCapacity, maximumTTL: configuration.maximumTTL ?? .max,
                negativeMaximumTTL: configuration.negativeTTLCap,
                staleWindow: UInt32(clamping: staleSeconds)))
        conf = ResolvConf(nameservers: [], search: configuration.search, ndots: configuration.ndots)
        coalescer = Coalescer(maximumInFlight: max(1, configuration.cacheCapacity))
        queryBuffer.reserveCapacity(512)
        sweeper.resolver = self
        sweepTimer = loop.schedule(deadline: loop.now &+ Self.sweepInterval, handler: sweeper)
    }

    // Dropped without `close()`: nobody can be told any more, but sockets and timers must not outlive it.
    deinit {
        if let sweepTimer { loop.cancel(sweepTimer) }
        for lookup in lookups.values { lookup.cancel(resolverGone: true) }
    }

    /// Looks `name` up (A records). Answers at once from the cache (fresh, or stale while the name's refreshes keep
    /// failing), with `.failed(.malformed)` for a name that is not a valid DNS name (nothing is sent), or returns
    /// `nil` and later calls `handler.resolved(_:name:tag:)` exactly once on the loop thread, never inside this
    /// call. The handler is held strongly until then.
    public func resolve(_ name: String, handler: any ResolveHandler, tag: UInt64) -> ResolveOutcome? {
        guard !isClosed else { return .failed(.closed) }
        let candidates = candidateNames(for: name, conf: conf)
        guard !candidates.isEmpty else {
            metrics?.invalidNames.increment(shard: metrics!.shard)
            return .failed(.malformed)
        }
        switch cachedOutcome(candidates) {
        case .fresh(let outcome):
            metrics?.cacheHits.increment(shard: metrics!.shard)
            return outcome
        case .stale(let outcome):
            let key = lookupKey(name, candidates)
            // Wait for the refresh unless the name's refreshes are known to fail (SYSTEM §2.2: stale only then).
            guard failingRefreshes.contains(key) else { break }
            metrics?.cacheHits.increment(shard: metrics!.shard)
            metrics?.staleAnswers.increment(shard: metrics!.shard)
            if !coalescer.isInFlight(name: key.name, type: key.type) {
                _ = startLookup(key: key, candidates: candidates, waiter: Self.refreshOnly)
            }
            return outcome
        case .miss:
            break
        }
        let waiter = addWaiter(Waiter(handler: handler, name: name, tag: tag))
        if let failure = startLookup(key: lookupKey(name, candidates), candidates: candidates, waiter: waiter) {
            _ = takeWaiter(waiter)
            metrics?.count(failure)
            return .failed(failure)
        }
        return nil
    }

    /// Stops every lookup: each caller still waiting gets `.failed(.closed)` (from inside this call), sockets are
    /// closed, and later `resolve` calls answer `.failed(.closed)`. Idempotent.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        if let sweepTimer { loop.cancel(sweepTimer) }
        sweepTimer = nil
        let stopped = lookups
        lookups.removeAll()
        for (key, lookup) in stopped {
            lookup.cancel()
            deliver(.failed(.closed), to: coalescer.finish(name: key.name, type: key.type))
        }
    }

    /// Entries in the cache (fresh, stale and negative).
    public var cachedNameCount: Int { cache.count }

    /// Names with a lookup in flight.
    public var lookupsInFlight: Int { lookups.count }

    fileprivate func sweep() {
        cache.removeExpired(now: loop.now)
        failingRefreshes.removeAll()
        sweepTimer = loop.schedule(deadline: loop.now &+ Self.sweepInterval, handler: sweeper)
    }

    // MARK: Cache

    enum CacheState {
        case fresh(ResolveOutcome)
        case stale(ResolveOutcome)
        case miss
    }

    /// What the cache says about a lookup of `candidates`: the first candidate with addresses, after candidates
    /// that are known (fresh) not to exist or to have no addresses; `.miss` when a candidate must be asked first.
    func cachedOutcome(_ candidates: [Name]) -> CacheState {
        var lastNegative = CachedResult.nxdomain
        let now = loop.now
        for name in candidates {
            switch cache.lookup(name: name, type: .a, now: now) {
            case .fresh(let entry):
                if case .addresses = entry.result {
                    return .fresh(.addresses(entry.rotatedAddresses(), ttl: secondsLeft(until: entry.expiresAt)))
                }
                lastNegative = entry.result
            case .stale(let entry):
                // An expired negative answer is not served: the name may exist by now.
                guard case .addresses = entry.result else { return .miss }
                return .stale(.addresses(entry.rotatedAddresses(), ttl: 0))
            case .miss:
                return .miss
            }
        }
        return .fresh(lastNegative == .nxdomain ? .nameNotFound : .noAddresses)
    }

    /// A fresh cached answer for one candidate name, as the `Answer` a server would have given.
    func freshAnswer(for name: Name) -> Answer? {
        guard case .fresh(let entry) = cache.lookup(name: name, type: .a, now: loop.now) else { return nil }
        let ttl = secondsLeft(until: entry.expiresAt)
        switch entry.result {
        case .addresses(let addresses): return .addresses(addresses, ttl: ttl)
        case .nxdomain: return .nxdomain(negativeTTL: ttl)
        case .nodata: return .nodata(negativeTTL: ttl)
        }
    }

    /// Whole seconds from now until `deadline`, rounded up.
    func secondsLeft(until deadline: UInt64) -> UInt32 {
        let now = loop.now
        guard deadline > now else { return 0 }
        return UInt32(clamping: (deadline - now + 999_999_999) / 1_000_000_000)
    }

    // MARK: Lookups

    /// The coalescing key of a lookup: lookups with one key have the same candidate list. `name` parsed, since
    /// `candidateNames` gave candidates for it.
    private func lookupKey(_ name: String, _ candidates: [Name]) -> CacheKey {
        let asGiven = (try? Name(parsing: name)) ?? candidates[0]
        let searched = candidates.count != 1 || candidates[0] != asGiven
        return CacheKey(name: asGiven, type: searched ? Self.searchedKeyType : .a)
    }

    /// Adds `waiter` to the lookup of `key`, starting it if none is in flight; returns why it cannot.
    private func startLookup(key: CacheKey, candidates: [Name], waiter: UInt32) -> ResolveFailure? {
        switch coalescer.begin(name: key.name, type: key.type, waiter: waiter) {
        case .joined:
            return nil
        case .overloaded:
            return .overloaded
        case .startQuery:
            let lookup = Lookup(resolver: self, key: key, resolution: Resolution(candidates: candidates, plan: plan))
            lookups[key] = lookup
            lookup.start()
            return nil
        }
    }

    /// Called by a lookup that ended: tells everyone waiting for it.
    func lookupFinished(_ lookup: Lookup, _ outcome: Resolution.Outcome) {
        guard lookups[lookup.key] === lookup else { return }
        lookups[lookup.key] = nil
        let waiting = coalescer.finish(name: lookup.key.name, type: lookup.key.type)
        let result: ResolveOutcome
        if case .failed = outcome {
            failingRefreshes.insert(lookup.key)
        } else {
            failingRefreshes.remove(lookup.key)
        }
        switch outcome {
        case .addresses(let name, let addresses, let ttl):
            if case .fresh(let entry) = cache.lookup(name: name, type: .a, now: loop.now) {
                result = .addresses(entry.rotatedAddresses(), ttl: secondsLeft(until: entry.expiresAt))
            } else {
                result = .addresses(addresses, ttl: ttl)
            }
        case .nxdomain:
            result = .nameNotFound
        case .nodata:
            result = .noAddresses
        case .failed:
            switch cachedOutcome(lookup.resolution.candidates) {
            case .fresh(let cached):
                result = cached
            case .stale(let cached):
                if waiting.contains(where: { $0 != Self.refreshOnly }) {
                    metrics?.staleAnswers.increment(shard: metrics!.shard)
                }
                result = cached
            case .miss:
                result = .failed(lookup.lastFailure)
            }
        case .invalidName:
            result = .failed(.malformed)
        }
        deliver(result, to: waiting)
    }

    private func deliver(_ outcome: ResolveOutcome, to waiting: [UInt32]) {
        var turn = 0
        for token in waiting where token != Self.refreshOnly {
            let waiter = takeWaiter(token)
            guard let handler = waiter.handler else { continue }
            // Successive callers start at successive addresses, as cache hits do.
            if case .addresses(let addresses, let ttl) = outcome, addresses.count > 1 {
                let first = turn % addresses.count
                handler.resolved(
                    .addresses(Array(addresses[first...] + addresses[..<first]), ttl: ttl), name: waiter.name,
                    tag: waiter.tag)
            } else {
                handler.resolved(outcome, name: waiter.name, tag: waiter.tag)
            }
            turn &+= 1
        }
    }

    private func addWaiter(_ waiter: Waiter) -> UInt32 {
        if let token = freeWaiters.popLast() {
            waiters[Int(token)] = waiter
            return token
        }
        waiters.append(waiter)
        return UInt32(waiters.count - 1)
    }

    private func takeWaiter(_ token: UInt32) -> Waiter {
        let waiter = waiters[Int(token)]
        waiters[Int(token)] = Waiter(handler: nil, name: "", tag: 0)
        freeWaiters.append(token)
        return waiter
    }

    // MARK: Query ids

    /// A random id not used by any query in flight (RFC 5452 §4.3).
    func takeQueryID() -> UInt16 {
        while true {
            if let id = ids.next(skipping: { idsInUse.contains($0) }) {
                idsInUse.insert(id)
                return id
            }
            var bytes = [UInt8](repeating: 0, count: 256)
            bytes.withUnsafeMutableBytes { fillRandom($0) }
            ids.refill(bytes)
        }
    }

    func releaseQueryID(_ id: UInt16) {
        idsInUse.remove(id)
    }
}

/// Runs the cache sweep; holds the resolver weakly so that the loop's timer does not keep it alive.
private final class Sweeper: TimerHandler {
    weak var resolver: Resolver?

    func timerFired(tag: UInt64) { resolver?.sweep() }
}
