// The answer cache: TTL capped like nginx's `valid=`, negative entries (RFC 2308), a stale window, LRU bound,
// round-robin turns.

/// What the cache holds for one (name, type).
public enum CachedResult: Hashable, Sendable {
    case addresses([IPAddress])
    /// The name does not exist (RFC 2308 §5).
    case nxdomain
    /// The name exists without records of this type (RFC 2308 §5).
    case nodata
}

/// The key of a cache entry.
public struct CacheKey: Hashable, Sendable {
    public var name: Name
    public var type: RecordType

    public init(name: Name, type: RecordType) {
        self.name = name
        self.type = type
    }
}

/// A cache entry as handed to one caller.
public struct CacheEntry: Hashable, Sendable {
    public var result: CachedResult
    /// Monotonic nanoseconds after which the entry is stale.
    public var expiresAt: UInt64
    /// This caller's turn for round-robin: each lookup of the entry gets the next turn.
    public var turn: Int

    public init(result: CachedResult, expiresAt: UInt64, turn: Int = 0) {
        self.result = result
        self.expiresAt = expiresAt
        self.turn = turn
    }

    /// The address for this caller's turn, so that successive callers are spread over all addresses; `nil` for
    /// a negative entry.
    public func nextAddress() -> IPAddress? {
        guard case .addresses(let addresses) = result, !addresses.isEmpty else { return nil }
        return addresses[turn % addresses.count]
    }

    /// All addresses starting with this caller's turn, for trying the others when a connect fails.
    public func rotatedAddresses() -> [IPAddress] {
        guard case .addresses(let addresses) = result, !addresses.isEmpty else { return [] }
        let first = turn % addresses.count
        return Array(addresses[first...] + addresses[..<first])
    }
}

/// The result of a cache lookup.
public enum CacheLookup: Hashable, Sendable {
    /// Not expired.
    case fresh(CacheEntry)
    /// Expired less than `staleWindow` ago: refresh it, and serve it if the refresh fails (RFC 8767 §4).
    case stale(CacheEntry)
    case miss
}

/// A bounded cache of answers keyed by (name, type). Time is passed in as monotonic nanoseconds; nothing here
/// reads a clock. When full, storing a new key evicts the least recently used one, so hostile names cannot grow
/// it without bound.
public struct Cache: Sendable {
    /// Limits of a cache; all durations are seconds.
    public struct Configuration: Hashable, Sendable {
        /// The most entries held.
        public var capacity: Int
        /// Positive TTLs are capped at this, like nginx's `resolver ... valid=` (which replaces the TTL; a cap
        /// keeps shorter TTLs the zone asks for).
        public var maximumTTL: UInt32
        /// TTLs below this are raised to it, so a zero-TTL record does not turn every request into a query.
        public var minimumTTL: UInt32
        /// Negative TTLs are capped at this (RFC 2308 §5 suggests one to three hours; a gateway wants less, so
        /// a new pod's name appears quickly).
        public var negativeMaximumTTL: UInt32
        /// How long after expiry an entry is still returned as `.stale`.
        public var staleWindow: UInt32

        public init(
            capacity: Int = 4096, maximumTTL: UInt32 = 300, minimumTTL: UInt32 = 1, negativeMaximumTTL: UInt32 = 10,
            staleWindow: UInt32 = 60
        ) {
            self.capacity = max(1, capacity)
            self.maximumTTL = maximumTTL
            self.minimumTTL = minimumTTL
            self.negativeMaximumTTL = negativeMaximumTTL
            self.staleWindow = staleWindow
        }
    }

    private struct Slot: Sendable {
        var key: CacheKey
        var result: CachedResult
        var expiresAt: UInt64
        var rotation: Int
        // Neighbours in recency order, -1 at the ends.
        var older: Int
        var newer: Int
    }

    public let configuration: Configuration
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var index: [CacheKey: Int] = [:]
    private var newest = -1
    private var oldest = -1

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The number of entries held.
    public var count: Int { index.count }

    /// Stores what `answer` says about (name, type) as of `now`; `.serverFailure` and `.truncated` store nothing.
    /// Returns the stored entry, or `nil`.
    @discardableResult
    public mutating func store(_ answer: Answer, name: Name, type: RecordType, now: UInt64) -> CacheEntry? {
        switch answer {
        case .addresses(let addresses, let ttl):
            return store(.addresses(addresses), ttl: ttl, name: name, type: type, now: now)
        case .nxdomain(let ttl):
            return store(.nxdomain, ttl: ttl, name: name, type: type, now: now)
        case .nodata(let ttl):
            return store(.nodata, ttl: ttl, name: name, type: type, now: now)
        case .serverFailure, .truncated:
            return nil
        }
    }

    /// Stores `result` with `ttl` seconds, clamped by the configuration; replaces an existing entry but keeps its
    /// round-robin position.
    @discardableResult
    public mutating func store(
        _ result: CachedResult, ttl: UInt32, name: Name, type: RecordType, now: UInt64
    ) -> CacheEntry {
        let cap: UInt32
        if case .addresses = result { cap = configuration.maximumTTL } else { cap = configuration.negativeMaximumTTL }
        let seconds = min(max(ttl, configuration.minimumTTL), cap)
        let expiresAt = adding(seconds: seconds, to: now)
        let key = CacheKey(name: name, type: type)
        if let slot = index[key] {
            slots[slot].result = result
            slots[slot].expiresAt = expiresAt
            moveToNewest(slot)
            return CacheEntry(result: result, expiresAt: expiresAt, turn: slots[slot].rotation)
        }
        if index.count >= configuration.capacity, oldest >= 0 {
            remove(slot: oldest)
        }
        let slotData = Slot(key: key, result: result, expiresAt: expiresAt, rotation: 0, older: -1, newer: -1)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = slotData
        } else {
            slot = slots.count
            slots.append(slotData)
        }
        index[key] = slot
        linkAsNewest(slot)
        return CacheEntry(result: result, expiresAt: expiresAt)
    }

    /// Looks (name, type) up as of `now`. A hit gives the caller the next round-robin turn and marks the entry as
    /// recently used; an entry past its stale window is dropped.
    public mutating func lookup(name: Name, type: RecordType, now: UInt64) -> CacheLookup {
        guard let slot = index[CacheKey(name: name, type: type)] else { return .miss }
        let expiresAt = slots[slot].expiresAt
        let fresh = now < expiresAt
        guard fresh || now < adding(seconds: configuration.staleWindow, to: expiresAt) else {
            remove(slot: slot)
            return .miss
        }
        let entry = CacheEntry(result: slots[slot].result, expiresAt: expiresAt, turn: slots[slot].rotation)
        slots[slot].rotation &+= 1
        if slots[slot].rotation < 0 { slots[slot].rotation = 0 }
        moveToNewest(slot)
        return fresh ? .fresh(entry) : .stale(entry)
    }

    /// Drops the entry for (name, type), if any.
    public mutating func remove(name: Name, type: RecordType) {
        if let slot = index[CacheKey(name: name, type: type)] { remove(slot: slot) }
    }

    /// Drops every entry whose stale window has passed at `now`; O(count), for a periodic sweep.
    public mutating func removeExpired(now: UInt64) {
        var slot = oldest
        while slot >= 0 {
            let newer = slots[slot].newer
            if now >= adding(seconds: configuration.staleWindow, to: slots[slot].expiresAt) { remove(slot: slot) }
            slot = newer
        }
    }

    private func adding(seconds: UInt32, to time: UInt64) -> UInt64 {
        let (sum, overflow) = time.addingReportingOverflow(UInt64(seconds) * 1_000_000_000)
        return overflow ? UInt64.max : sum
    }

    private mutating func remove(slot: Int) {
        index[slots[slot].key] = nil
        unlink(slot)
        // Release the addresses now rather than when the slot is reused.
        slots[slot].result = .nodata
        freeSlots.append(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let older = slots[slot].older
        let newer = slots[slot].newer
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        slots[slot].older = -1
        slots[slot].newer = -1
    }

    private mutating func linkAsNewest(_ slot: Int) {
        slots[slot].older = newest
        slots[slot].newer = -1
        if newest >= 0 { slots[newest].newer = slot } else { oldest = slot }
        newest = slot
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAsNewest(slot)
    }
}
