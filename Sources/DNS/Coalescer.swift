// The in-flight table: concurrent lookups of one (name, type) share a single query.

/// Merges concurrent lookups of the same (name, type) into one query. The runtime calls `begin` for each lookup
/// that missed the cache, sends a query only on `.startQuery`, and on the answer (or failure) calls `finish` to
/// get every waiter to resume. Waiters are plain tokens (connection ids, say), never closures.
public struct Coalescer<Waiter: Hashable & Sendable>: Sendable {
    /// What `begin` decided.
    public enum Begin: Hashable, Sendable {
        /// First lookup of this key: send a query.
        case startQuery
        /// A query is already out; the waiter was added to it.
        case joined
        /// Too many keys in flight, or too many waiters on this one: fail the lookup now.
        case overloaded
    }

    /// The most distinct keys in flight; bounds the work hostile names can start.
    public let maximumInFlight: Int
    /// The most waiters on one key.
    public let maximumWaiters: Int
    private var inFlight: [CacheKey: [Waiter]] = [:]

    public init(maximumInFlight: Int = 1024, maximumWaiters: Int = 65536) {
        self.maximumInFlight = maximumInFlight
        self.maximumWaiters = maximumWaiters
    }

    /// The number of keys with a query out.
    public var inFlightCount: Int { inFlight.count }

    /// Registers `waiter` as wanting (name, type).
    public mutating func begin(name: Name, type: RecordType, waiter: Waiter) -> Begin {
        let key = CacheKey(name: name, type: type)
        if inFlight[key] != nil {
            guard inFlight[key]!.count < maximumWaiters else { return .overloaded }
            inFlight[key]!.append(waiter)
            return .joined
        }
        guard inFlight.count < maximumInFlight else { return .overloaded }
        inFlight[key] = [waiter]
        return .startQuery
    }

    /// Ends the query for (name, type) and returns its waiters in arrival order (empty if none was in flight).
    public mutating func finish(name: Name, type: RecordType) -> [Waiter] {
        inFlight.removeValue(forKey: CacheKey(name: name, type: type)) ?? []
    }

    /// Removes one waiter that gave up (its connection closed). The query stays in flight even with no waiters
    /// left, so its answer still fills the cache.
    public mutating func cancel(name: Name, type: RecordType, waiter: Waiter) {
        let key = CacheKey(name: name, type: type)
        guard let position = inFlight[key]?.firstIndex(of: waiter) else { return }
        inFlight[key]!.remove(at: position)
    }

    /// Whether a query for (name, type) is in flight.
    public func isInFlight(name: Name, type: RecordType) -> Bool {
        inFlight[CacheKey(name: name, type: type)] != nil
    }
}
