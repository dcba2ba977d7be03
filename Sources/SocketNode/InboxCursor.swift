// What a session has delivered of its recipient's inbox: every offset once, in order, gaps filled from the store.

/// Orders the messages one client receives by their offset (SYSTEM §4).
///
/// Offsets come from the shared store: a message is appended to the recipient's inbox (getting offset n) before any
/// live push, and offset n exists there before n + 1 is handed out (one atomic script). So a push with an offset past
/// `next` means the ones in between are in the store (or were trimmed); the cursor holds the push and asks for a
/// fetch. A fetch issued after some pushes were received sees every entry up to the largest of them, so after it a
/// gap below a held push can only be a trimmed entry: it is skipped, and counted.
///
/// Pure state: the session turns `deliver` calls into frames and `fetch` answers into store reads.
struct InboxCursor {
    /// The next offset the client should get.
    private(set) var next: UInt64
    /// Pushes ahead of `next`, sorted by offset, each offset once.
    private(set) var held: [(offset: UInt64, frame: [UInt8])] = []
    /// While a fetch is in flight: the largest offset pushed before it was issued (0 if none).
    private(set) var fetchCovers: UInt64?
    /// The largest offset ever pushed (0 if none).
    private(set) var highestPushed: UInt64 = 0
    /// Offsets given up for good (trimmed from the store before they could be read).
    private(set) var skipped: UInt64 = 0
    /// Held pushes beyond this are dropped: they are in the store and the next fetch reads them.
    let maxHeld: Int

    init(after resumeOffset: UInt64, maxHeld: Int = 256) {
        next = resumeOffset &+ 1
        self.maxHeld = maxHeld
    }

    var isFetching: Bool { fetchCovers != nil }

    /// Starts a fetch of everything from `next` on; returns where it starts.
    mutating func beginFetch() -> UInt64 {
        fetchCovers = highestPushed
        return next
    }

    /// A fetch failed (store unreachable): held pushes stay; the caller retries later with `beginFetch`.
    mutating func fetchFailed() {
        fetchCovers = nil
    }

    /// A live push. Returns true when a fetch should start now (a gap, and none in flight).
    mutating func push(offset: UInt64, frame: [UInt8], deliver: (UInt64, [UInt8]) -> Void) -> Bool {
        if offset < next { return false }
        highestPushed = max(highestPushed, offset)
        if offset == next {
            deliver(offset, frame)
            next = offset &+ 1
            drainHeld(deliver: deliver)
            return false
        }
        hold(offset: offset, frame: frame)
        return !isFetching
    }

    /// The entries a fetch returned, ascending. `complete` is false when the read stopped at its count limit
    /// (more may follow). Returns true when another fetch should start now.
    mutating func fetched(
        _ entries: [(offset: UInt64, frame: [UInt8])], complete: Bool, deliver: (UInt64, [UInt8]) -> Void
    ) -> Bool {
        let covers = fetchCovers ?? 0
        fetchCovers = nil
        for entry in entries where entry.offset >= next {
            // The store is the truth: an offset missing between two entries was trimmed.
            skipped &+= entry.offset - next
            // A held push of the same offset is the same message.
            deliver(entry.offset, entry.frame)
            next = entry.offset &+ 1
        }
        if !complete { return true }
        drainHeld(deliver: deliver)
        // Pushes received before the fetch was issued were in the store then: a gap below them is trimmed.
        while let first = held.first, first.offset <= covers {
            skipped &+= first.offset - next
            next = first.offset
            drainHeld(deliver: deliver)
        }
        if next <= covers {
            skipped &+= covers &+ 1 - next
            next = covers &+ 1
            drainHeld(deliver: deliver)
        }
        // Something pushed is still owed (held, or dropped from a full hold): read the store again.
        return highestPushed >= next
    }

    private mutating func drainHeld(deliver: (UInt64, [UInt8]) -> Void) {
        var index = 0
        while index < held.count && held[index].offset < next { index += 1 }
        while index < held.count && held[index].offset == next {
            deliver(held[index].offset, held[index].frame)
            next = held[index].offset &+ 1
            index += 1
        }
        if index > 0 { held.removeFirst(index) }
    }

    private mutating func hold(offset: UInt64, frame: [UInt8]) {
        // Sorted insert; most pushes arrive in order, so search from the end.
        var index = held.count
        while index > 0 && held[index - 1].offset > offset { index -= 1 }
        if index > 0 && held[index - 1].offset == offset { return }
        guard index < maxHeld else { return }
        held.insert((offset, frame), at: index)
        if held.count > maxHeld { held.removeLast() }
    }
}
