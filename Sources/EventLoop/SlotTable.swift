// Registration slots addressed by (index, generation) tokens, so events for a closed and reused fd are dropped.

/// A table of values addressed by 64-bit tokens: low 32 bits the slot index, high 32 bits the slot's generation.
/// Removing a value bumps the generation, so a token held by a stale event no longer finds anything.
struct SlotTable<Value> {
    private var values: [Value?] = []
    private var generations: [UInt32] = []
    private var free: [UInt32] = []
    private(set) var count = 0

    init(capacity: Int = 1024) {
        values.reserveCapacity(capacity)
        generations.reserveCapacity(capacity)
        free.reserveCapacity(capacity)
    }

    static func index(_ token: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: token)) }
    static func generation(_ token: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: token >> 32) }

    mutating func insert(_ value: Value) -> UInt64 {
        let index: Int
        if let reused = free.popLast() {
            index = Int(reused)
            values[index] = value
        } else {
            index = values.count
            values.append(value)
            generations.append(1)
        }
        count += 1
        return UInt64(generations[index]) << 32 | UInt64(index)
    }

    @inline(__always)
    func lookup(_ token: UInt64) -> Value? {
        let index = Self.index(token)
        guard index < values.count, generations[index] == Self.generation(token) else { return nil }
        return values[index]
    }

    /// Removes the value; a stale token (already removed, or reused) is a no-op. Returns whether it removed.
    @discardableResult
    mutating func remove(_ token: UInt64) -> Bool { take(token) != nil }

    /// Removes the value and returns it (nil for a stale token).
    mutating func take(_ token: UInt64) -> Value? {
        let index = Self.index(token)
        guard index < values.count, generations[index] == Self.generation(token), let value = values[index] else {
            return nil
        }
        values[index] = nil
        generations[index] &+= 1
        free.append(UInt32(index))
        count -= 1
        return value
    }

    /// Whether `token` is live (inserted, not removed since).
    @inline(__always)
    func contains(_ token: UInt64) -> Bool {
        let index = Self.index(token)
        return index < values.count && generations[index] == Self.generation(token)
    }

    /// Puts `value` in the slot of a live token (same token, same generation) and returns the value it replaced;
    /// nil for a stale token.
    @discardableResult
    mutating func replace(_ token: UInt64, with value: Value) -> Value? {
        let index = Self.index(token)
        guard index < values.count, generations[index] == Self.generation(token), let old = values[index] else {
            return nil
        }
        values[index] = value
        return old
    }

    /// Every live value (for shutdown).
    var liveValues: [Value] { values.compactMap { $0 } }
}
