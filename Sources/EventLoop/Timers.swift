// Loop timers: a binary min-heap over a slab of entries, with index tracking so cancel is O(log n) and allocates
// nothing.

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
        var deadline: UInt64 = 0
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

    /// Takes the earliest timer whose deadline is at or before `now`.
    mutating func popExpired(now: UInt64) -> Fired? {
        guard let top = heap.first, entries[Int(top)].deadline <= now else { return nil }
        let slot = Int(top)
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

    private mutating func release(_ slot: Int) {
        entries[slot].handler = nil
        entries[slot].closure = nil
        entries[slot].heapIndex = -1
        entries[slot].generation &+= 1
        free.append(UInt32(slot))
    }

    @inline(__always)
    private func less(_ a: Int, _ b: Int) -> Bool {
        let left = Int(heap[a])
        let right = Int(heap[b])
        let leftDeadline = entries[left].deadline
        let rightDeadline = entries[right].deadline
        return leftDeadline < rightDeadline
            || (leftDeadline == rightDeadline && entries[left].sequence < entries[right].sequence)
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        entries[Int(heap[a])].heapIndex = Int32(a)
        entries[Int(heap[b])].heapIndex = Int32(b)
    }

    private mutating func removeFromHeap(at index: Int) {
        let last = heap.count - 1
        if index != last { swapAt(index, last) }
        heap.removeLast()
        if index < heap.count {
            siftDown(index)
            siftUp(index)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var index = start
        while index > 0 {
            let parent = (index - 1) / 2
            guard less(index, parent) else { return }
            swapAt(index, parent)
            index = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var index = start
        while true {
            let left = 2 * index + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count && less(left + 1, left) { smallest = left + 1 }
            guard less(smallest, index) else { return }
            swapAt(index, smallest)
            index = smallest
        }
    }
}
