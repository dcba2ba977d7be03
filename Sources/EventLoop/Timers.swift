// Loop timers, the runtime's one timeout mechanism: a binary min-heap over a slab of entries, with index tracking
// so cancel is O(log n) and allocates nothing, and `Deadline`, a connection's movable phase deadline on that heap.

/// Identifies a scheduled timer; cancelling a timer that already fired or was cancelled is a no-op.
public struct TimerID: Hashable, Sendable {
    let slot: UInt32
    let generation: UInt32
}

/// The target of a timer: one class-bound call with a caller-chosen tag, so no closure is allocated per timer.
public protocol TimerHandler: AnyObject {
    func timerFired(tag: UInt64)
}

struct TimerQueue {
    struct Entry {
        /// The heap key: when the entry comes up.
        var deadline: UInt64 = 0
        /// When it fires: at or after `deadline` (later once `move` pushed it back without re-sorting the heap).
        var due: UInt64 = 0
        var sequence: UInt64 = 0
        var handler: (any TimerHandler)?
        var closure: (() -> Void)?
        var tag: UInt64 = 0
        var heapIndex: Int32 = -1
        var generation: UInt32 = 1
    }

    enum Fired {
        case handler(any TimerHandler, UInt64)
        case closure(() -> Void)
    }

    private(set) var entries: [Entry] = []
    private var free: [UInt32] = []
    private var heap: [UInt32] = []
    private var sequence: UInt64 = 0

    init(capacity: Int = 1024) {
        entries.reserveCapacity(capacity)
        free.reserveCapacity(capacity)
        heap.reserveCapacity(capacity)
    }

    var count: Int { heap.count }

    var nextDeadline: UInt64? { heap.first.map { entries[Int($0)].deadline } }

    mutating func schedule(
        deadline: UInt64, handler: (any TimerHandler)?, tag: UInt64, closure: (() -> Void)?
    ) -> TimerID {
        let slot: Int
        if let reused = free.popLast() {
            slot = Int(reused)
        } else {
            slot = entries.count
            entries.append(Entry())
        }
        sequence &+= 1
        entries[slot].deadline = deadline
        entries[slot].due = deadline
        entries[slot].sequence = sequence
        entries[slot].handler = handler
        entries[slot].closure = closure
        entries[slot].tag = tag
        entries[slot].heapIndex = Int32(heap.count)
        heap.append(UInt32(slot))
        siftUp(heap.count - 1)
        return TimerID(slot: UInt32(slot), generation: entries[slot].generation)
    }

    /// Returns whether the timer was pending.
    @discardableResult
    mutating func cancel(_ id: TimerID) -> Bool {
        let slot = Int(id.slot)
        guard slot < entries.count, entries[slot].generation == id.generation, entries[slot].heapIndex >= 0 else {
            return false
        }
        removeFromHeap(at: Int(entries[slot].heapIndex))
        release(slot)
        return true
    }

    /// Moves a pending timer to `deadline`; false (nothing changes) when `id` is stale: fired, cancelled, or its
    /// slot reused by another timer. Later is a store of `due`: the entry comes up at its old key and is put back
    /// at the new one then, without firing. Earlier re-keys it and sifts it up.
    @discardableResult
    mutating func move(_ id: TimerID, to deadline: UInt64, tag: UInt64? = nil) -> Bool {
        let slot = Int(id.slot)
        guard slot < entries.count, entries[slot].generation == id.generation, entries[slot].heapIndex >= 0 else {
            return false
        }
        if let tag { entries[slot].tag = tag }
        if deadline >= entries[slot].deadline {
            entries[slot].due = deadline
        } else {
            entries[slot].deadline = deadline
            entries[slot].due = deadline
            siftUp(Int(entries[slot].heapIndex))
        }
        return true
    }

    /// Takes the earliest timer whose deadline is at or before `now`.
    mutating func popExpired(now: UInt64) -> Fired? {
        var slot = 0
        while true {
            guard let top = heap.first, entries[Int(top)].deadline <= now else { return nil }
            slot = Int(top)
            guard entries[slot].due > now else { break }
            // Moved later since it was keyed: back into the heap at its due time.
            entries[slot].deadline = entries[slot].due
            siftDown(0)
        }
        removeFromHeap(at: 0)
        let fired: Fired =
            if let closure = entries[slot].closure {
                .closure(closure)
            } else {
                .handler(entries[slot].handler!, entries[slot].tag)
            }
        release(slot)
        return fired
    }

    /// Whether `id` is scheduled and has not fired.
    func isPending(_ id: TimerID) -> Bool {
        let slot = Int(id.slot)
        return slot < entries.count && entries[slot].generation == id.generation && entries[slot].heapIndex >= 0
    }

    private mutating func release(_ slot: Int) {
        entries[slot].handler = nil
        entries[slot].closure = nil
        entries[slot].heapIndex = -1
        entries[slot].generation &+= 1
        free.append(UInt32(slot))
    }

    /// Takes the heap position `index` out: the last entry fills the hole and moves up or down to its place.
    private mutating func removeFromHeap(at index: Int) {
        let last = heap.removeLast()
        guard index < heap.count else { return }
        heap[index] = last
        entries[Int(last)].heapIndex = Int32(index)
        siftDown(index)
        siftUp(index)
    }

    // The sifts move a hole instead of swapping (one store per level, and the moving entry's once at the end), on
    // the arrays' buffers: one uniqueness check per sift instead of three per level.

    private mutating func siftUp(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { heap in
            entries.withUnsafeMutableBufferPointer { entries in
                let moving = heap[start]
                let deadline = entries[Int(moving)].deadline
                let sequence = entries[Int(moving)].sequence
                var index = start
                while index > 0 {
                    let parent = (index - 1) / 2
                    let above = heap[parent]
                    let aboveDeadline = entries[Int(above)].deadline
                    guard
                        deadline < aboveDeadline
                            || (deadline == aboveDeadline && sequence < entries[Int(above)].sequence)
                    else { break }
                    heap[index] = above
                    entries[Int(above)].heapIndex = Int32(index)
                    index = parent
                }
                if index == start { return }
                heap[index] = moving
                entries[Int(moving)].heapIndex = Int32(index)
            }
        }
    }

    private mutating func siftDown(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { heap in
            entries.withUnsafeMutableBufferPointer { entries in
                @inline(__always) func less(_ a: UInt32, _ b: UInt32) -> Bool {
                    let left = entries[Int(a)].deadline
                    let right = entries[Int(b)].deadline
                    return left < right || (left == right && entries[Int(a)].sequence < entries[Int(b)].sequence)
                }
                let count = heap.count
                let moving = heap[start]
                var index = start
                while true {
                    let left = 2 * index + 1
                    guard left < count else { break }
                    var smallest = left
                    if left + 1 < count && less(heap[left + 1], heap[left]) { smallest = left + 1 }
                    let below = heap[smallest]
                    guard less(below, moving) else { break }
                    heap[index] = below
                    entries[Int(below)].heapIndex = Int32(index)
                    index = smallest
                }
                if index == start { return }
                heap[index] = moving
                entries[Int(moving)].heapIndex = Int32(index)
            }
        }
    }
}

/// A connection's phase deadline on its loop's timer heap: set at every phase change, fires once it passes.
///
/// One timer per connection at most. Setting a later time costs a store (the heap entry is put back at the new
/// time when its old one comes, without a call), an earlier time an O(log n) re-sort, a first time or a time after
/// the timer fired a new heap entry from the slab's free list: nothing is allocated once the heap reached its
/// working size. The held `TimerID` carries its slot's generation, so a deadline whose timer already fired, or
/// whose slot now holds another connection's timer, can neither move nor cancel that timer: it schedules anew.
public struct Deadline: Sendable {
    var timer: TimerID?

    public init() {}
}

extension EventLoop {
    /// Sets `deadline` to fire `handler.timerFired(tag:)` at `time` (monotonic nanoseconds) with this `tag`,
    /// replacing any earlier setting of it. A connection passes the same handler every time.
    @inline(__always)
    public func arm(_ deadline: inout Deadline, at time: UInt64, handler: any TimerHandler, tag: UInt64 = 0) {
        if let timer = deadline.timer, timers.move(timer, to: time, tag: tag) { return }
        deadline.timer = timers.schedule(deadline: time, handler: handler, tag: tag, closure: nil)
    }

    /// Cancels `deadline` (nothing happens for one that fired or was never set). Call it when the connection
    /// closes: the heap holds its handler until then.
    @inline(__always)
    public func disarm(_ deadline: inout Deadline) {
        if let timer = deadline.timer { timers.cancel(timer) }
        deadline.timer = nil
    }

    /// Whether `deadline`'s timer is still pending.
    public func isArmed(_ deadline: Deadline) -> Bool {
        guard let timer = deadline.timer else { return false }
        return timers.isPending(timer)
    }

    /// Moves a pending timer to `deadline`; false when it fired, was cancelled, or `timer` is stale (its slot
    /// reused), and then nothing changes. Allocates nothing.
    @discardableResult
    public func reschedule(_ timer: TimerID, deadline: UInt64) -> Bool { timers.move(timer, to: deadline) }
}
