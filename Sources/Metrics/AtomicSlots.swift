// Per-shard blocks of 64-bit atomics: the lock-free storage behind every metric handle.
import Synchronization

/// A fixed block of `UInt64` atomics laid out as `shards` rows of `slotsPerShard` slots.
///
/// Each row starts on its own 64-byte cache line (when there is more than one shard), so loops that
/// write their own shard never share a line with another loop's writes.
///
/// Invariant: `base` points at `shards * stride` initialised `Atomic<UInt64>` values, 64-byte aligned,
/// owned by this object and freed only in `deinit`; every access checks `shard < shards` and
/// `slot < slotsPerShard`, and goes through `Atomic`, so concurrent readers and writers are well defined.
final class AtomicSlots: @unchecked Sendable {
    // Why @unchecked: the pointer is immutable after init and every element is an Atomic.
    let shards: Int
    let slotsPerShard: Int
    private let stride: Int
    private let base: UnsafeMutablePointer<Atomic<UInt64>>

    private static let cacheLine = 64
    private static let slotsPerLine = cacheLine / MemoryLayout<UInt64>.stride

    init(shards: Int, slotsPerShard: Int) {
        precondition(shards >= 1 && slotsPerShard >= 1)
        self.shards = shards
        self.slotsPerShard = slotsPerShard
        // A single shard has nobody to share a line with; skip the padding.
        if shards == 1 {
            stride = slotsPerShard
        } else {
            stride = (slotsPerShard + Self.slotsPerLine - 1) / Self.slotsPerLine * Self.slotsPerLine
        }
        let count = shards * stride
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: count * MemoryLayout<UInt64>.stride, alignment: Self.cacheLine)
        base = raw.bindMemory(to: Atomic<UInt64>.self, capacity: count)
        for index in 0..<count {
            (base + index).initialize(to: Atomic<UInt64>(0))
        }
    }

    /// A writer for these slots: valid while this object lives.
    var writer: SlotWriter { SlotWriter(base: base, shards: shards, slotsPerShard: slotsPerShard, stride: stride) }

    deinit {
        base.deinitialize(count: shards * stride)
        UnsafeMutableRawPointer(base).deallocate()
    }

    @inline(__always)
    private func address(shard: Int, slot: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        writer.address(shard: shard, slot: slot)
    }

    @inline(__always)
    func add(shard: Int, slot: Int, _ amount: UInt64) {
        writer.add(shard: shard, slot: slot, amount)
    }

    @inline(__always)
    func load(shard: Int, slot: Int) -> UInt64 {
        address(shard: shard, slot: slot).pointee.load(ordering: .relaxed)
    }

    /// Adds `delta` to the `Double` stored as a bit pattern in the slot (compare-exchange loop, lock free).
    @inline(__always)
    func addDouble(shard: Int, slot: Int, _ delta: Double) {
        writer.addDouble(shard: shard, slot: slot, delta)
    }

    func loadDouble(shard: Int, slot: Int) -> Double {
        Double(bitPattern: load(shard: shard, slot: slot))
    }

    /// The wrapping sum of one slot over every shard.
    func sum(slot: Int) -> UInt64 {
        var total: UInt64 = 0
        for shard in 0..<shards {
            total &+= load(shard: shard, slot: slot)
        }
        return total
    }

    /// The sum of one `Double` slot over every shard.
    func sumDouble(slot: Int) -> Double {
        var total = 0.0
        for shard in 0..<shards {
            total += loadDouble(shard: shard, slot: slot)
        }
        return total
    }
}

/// The hot-path writes, as a value: a metric keeps one beside its `AtomicSlots` (which owns the memory) so
/// that an `@inlinable` update from another module is an address computation and one atomic operation, with
/// no object to retain and release around it (a call through the object did, once per request).
@usableFromInline
struct SlotWriter: @unchecked Sendable {
    // Why @unchecked: the same memory as the owning `AtomicSlots`, reached only through `Atomic`.
    @usableFromInline let base: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let shards: Int
    @usableFromInline let slotsPerShard: Int
    @usableFromInline let stride: Int

    @inlinable @inline(__always)
    func address(shard: Int, slot: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        precondition(shard >= 0 && shard < shards, "metric shard index out of range")
        precondition(slot >= 0 && slot < slotsPerShard)
        return base + (shard &* stride &+ slot)
    }

    @inlinable @inline(__always)
    func add(shard: Int, slot: Int, _ amount: UInt64) {
        address(shard: shard, slot: slot).pointee.wrappingAdd(amount, ordering: .relaxed)
    }

    /// `add` for a slot that only the calling thread writes: a relaxed load and a relaxed store, where `add` is
    /// a locked instruction that waits for every earlier store of the thread to drain (after a relayed message
    /// is copied, 3 % of the gateway's CPU for one such add). Readers still see whole values.
    @inlinable @inline(__always)
    func addOwned(shard: Int, slot: Int, _ amount: UInt64) {
        let pointer = address(shard: shard, slot: slot)
        pointer.pointee.store(pointer.pointee.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// `addDouble` for a slot that only the calling thread writes (see `addOwned`).
    @inlinable @inline(__always)
    func addDoubleOwned(shard: Int, slot: Int, _ delta: Double) {
        let pointer = address(shard: shard, slot: slot)
        let sum = Double(bitPattern: pointer.pointee.load(ordering: .relaxed)) + delta
        pointer.pointee.store(sum.bitPattern, ordering: .relaxed)
    }

    /// Adds `delta` to the `Double` stored as a bit pattern in the slot (compare-exchange loop, lock free).
    @inlinable @inline(__always)
    func addDouble(shard: Int, slot: Int, _ delta: Double) {
        let pointer = address(shard: shard, slot: slot)
        var current = pointer.pointee.load(ordering: .relaxed)
        while true {
            let next = (Double(bitPattern: current) + delta).bitPattern
            let (exchanged, original) = pointer.pointee.compareExchange(
                expected: current, desired: next, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
