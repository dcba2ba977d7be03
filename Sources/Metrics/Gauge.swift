// Gauge: a value that goes up and down, set absolutely or moved by per-shard deltas, summed at scrape.
import Synchronization

/// A value that can go up and down (Prometheus `gauge`).
///
/// Its value is a base plus the sum of per-shard deltas. Loops move it with `add(shard:_:)` /
/// `sub(shard:_:)` (for example active connections: +1 on accept and −1 on close, on the same loop),
/// lock free: a compare-exchange loop on the shard's `Double` bit pattern, which the single writer of a
/// shard wins at the first try. `set(_:)` is for an absolute figure with one writer (a process figure,
/// the desired replica count): it moves the base so that the total becomes the given value.
public final class Gauge: Sendable {
    private let slots: AtomicSlots
    private let base = Atomic<UInt64>(0.0.bitPattern)
    /// `slots`' memory, for `add(ownShard:_:)` (alive as long as `slots`, which this object holds).
    @usableFromInline let writer: SlotWriter

    init(shards: Int) {
        slots = AtomicSlots(shards: shards, slotsPerShard: 1)
        writer = slots.writer
    }

    /// Adds `delta` on the caller's shard (its event-loop index, `0..<registry.shards`).
    public func add(shard: Int, _ delta: Double) {
        slots.addDouble(shard: shard, slot: 0, delta)
    }

    /// Subtracts `delta` on the caller's shard.
    public func sub(shard: Int, _ delta: Double) {
        slots.addDouble(shard: shard, slot: 0, -delta)
    }

    /// `add(shard:_:)` for a shard of this gauge that only the calling thread writes (a loop's own shard, never
    /// written by another thread; the shard-less `add`/`sub` write shard 0): inlined, no call, no locked
    /// instruction.
    @inlinable @inline(__always)
    public func add(ownShard shard: Int, _ delta: Double) {
        writer.addDoubleOwned(shard: shard, slot: 0, delta)
    }

    /// `sub(shard:_:)` for a shard only the calling thread writes (see `add(ownShard:_:)`).
    @inlinable @inline(__always)
    public func sub(ownShard shard: Int, _ delta: Double) {
        writer.addDoubleOwned(shard: shard, slot: 0, -delta)
    }

    /// Adds `delta` on shard 0; safe from any thread.
    public func add(_ delta: Double) {
        slots.addDouble(shard: 0, slot: 0, delta)
    }

    /// Subtracts `delta` on shard 0; safe from any thread.
    public func sub(_ delta: Double) {
        slots.addDouble(shard: 0, slot: 0, -delta)
    }

    /// Makes the value `value`: deltas added after this call still count on top of it. Two threads
    /// calling `set` at once leave one of the two values (plus concurrent deltas); use one setter.
    public func set(_ value: Double) {
        base.store((value - slots.sumDouble(slot: 0)).bitPattern, ordering: .relaxed)
    }

    /// Base plus the sum of every shard's deltas at this instant.
    public var value: Double {
        Double(bitPattern: base.load(ordering: .relaxed)) + slots.sumDouble(slot: 0)
    }

    func appendSamples(name: String, labels: [UInt8], to out: inout [UInt8]) {
        TextFormat.appendSampleStart(name: name, suffix: "", labels: labels, to: &out)
        TextFormat.appendDouble(value, to: &out)
        out.append(UInt8(ascii: "\n"))
    }
}
