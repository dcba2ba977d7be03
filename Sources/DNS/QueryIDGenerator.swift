// Query ids from random bytes the runtime supplies (getrandom), so the id logic stays pure.

/// Hands out 16-bit query ids from a pool of random bytes (RFC 5452 §4.3: ids must be unpredictable). The
/// runtime refills it from getrandom(2); the generator never makes randomness of its own.
public struct QueryIDGenerator: Sendable {
    private var pool: [UInt8] = []
    private var position = 0

    public init() {}

    /// The number of ids left before a refill is needed.
    public var remaining: Int { (pool.count - position) / 2 }

    /// Replaces the pool with `randomBytes` (two bytes per id).
    public mutating func refill(_ randomBytes: some Collection<UInt8>) {
        pool.removeAll(keepingCapacity: true)
        pool.append(contentsOf: randomBytes)
        position = 0
    }

    /// The next id, or `nil` when the pool is exhausted (refill and ask again). Ids for which `inUse` is true are
    /// skipped, so a new query never shares an id with one still in flight.
    public mutating func next(skipping inUse: (UInt16) -> Bool = { _ in false }) -> UInt16? {
        while pool.count - position >= 2 {
            let id = UInt16(pool[position]) << 8 | UInt16(pool[position + 1])
            position += 2
            if !inUse(id) { return id }
        }
        return nil
    }
}
