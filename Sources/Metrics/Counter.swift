// Counter: a monotonically increasing integer, one lock-free slot per shard, summed at scrape.

/// A monotonically increasing count (Prometheus `counter`).
///
/// Each event-loop thread increments its own shard (`increment(shard:by:)`): a relaxed atomic add on a
/// cache line no other loop writes, no lock and no allocation. Every write is an atomic add, so several
/// threads writing one shard (control-plane code using the shard-less `increment(by:)`, which writes
/// shard 0) stay exact too; they merely share a cache line.
public final class Counter: Sendable {
    private let slots: AtomicSlots
    /// `slots`' memory, for `increment(shard:by:)` (alive as long as `slots`, which this object holds).
    @usableFromInline let writer: SlotWriter

    init(shards: Int) {
        slots = AtomicSlots(shards: shards, slotsPerShard: 1)
        writer = slots.writer
    }

    /// Adds `amount` on the caller's shard (its event-loop index, `0..<registry.shards`).
    @inlinable @inline(__always)
    public func increment(shard: Int, by amount: UInt64 = 1) {
        writer.add(shard: shard, slot: 0, amount)
    }

    /// `increment(shard:by:)` for a shard of this counter that only the calling thread writes (a loop's own shard,
    /// never written by another thread): no locked instruction.
    @inlinable @inline(__always)
    public func increment(ownShard shard: Int, by amount: UInt64 = 1) {
        writer.addOwned(shard: shard, slot: 0, amount)
    }

    /// Adds `amount` on shard 0; safe from any thread.
    public func increment(by amount: UInt64 = 1) {
        slots.add(shard: 0, slot: 0, amount)
    }

    /// The sum over all shards at this instant (wraps at `UInt64.max`).
    public var value: UInt64 {
        slots.sum(slot: 0)
    }

    func appendSamples(name: String, labels: [UInt8], to out: inout [UInt8]) {
        TextFormat.appendSampleStart(name: name, suffix: "", labels: labels, to: &out)
        TextFormat.appendDecimal(value, to: &out)
        out.append(UInt8(ascii: "\n"))
    }
}
