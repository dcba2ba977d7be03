// InboxCursor: each offset delivered once and in order, gaps filled by fetches, trimmed gaps skipped.
import TestRandom
import Testing

@testable import SocketNode

@Suite struct InboxCursorTests {
    /// Drives a cursor against a simulated store, recording what the client got.
    struct Harness {
        var cursor: InboxCursor
        var delivered: [UInt64] = []
        var fetches: [UInt64] = []
        var store: [UInt64]

        init(after: UInt64, store: [UInt64], maxHeld: Int = 256) {
            cursor = InboxCursor(after: after, maxHeld: maxHeld)
            self.store = store
        }

        mutating func push(_ offset: UInt64) -> Bool {
            var got: [UInt64] = []
            let wantsFetch = cursor.push(offset: offset, frame: [UInt8(truncatingIfNeeded: offset)]) { o, f in
                #expect(f == [UInt8(truncatingIfNeeded: o)])
                got.append(o)
            }
            delivered += got
            return wantsFetch
        }

        /// Issues a fetch and answers it from `store` (count-limited), repeating while the cursor asks.
        mutating func fetchAll(limit: Int = 100) {
            var again = true
            while again {
                let from = cursor.beginFetch()
                fetches.append(from)
                let entries = store.filter { $0 >= from }.prefix(limit)
                var got: [UInt64] = []
                again = cursor.fetched(
                    entries.map { ($0, [UInt8(truncatingIfNeeded: $0)]) }, complete: entries.count < limit
                ) { o, _ in got.append(o) }
                delivered += got
                if fetches.count > 50 { Issue.record("fetch loop does not end"); return }
            }
        }
    }

    @Test func replayThenLivePushesInOrder() {
        var h = Harness(after: 0, store: [1, 2, 3])
        h.fetchAll()
        #expect(h.delivered == [1, 2, 3])
        h.store.append(4)
        #expect(h.push(4) == false)
        #expect(h.push(4) == false)  // a duplicate push (Kafka redelivery) is dropped
        #expect(h.delivered == [1, 2, 3, 4])
    }

    @Test func resumeOffsetStartsAfterIt() {
        var h = Harness(after: 2, store: [1, 2, 3, 4])
        h.fetchAll()
        #expect(h.delivered == [3, 4])
        #expect(h.cursor.next == 5)
    }

    @Test func pushesDuringTheReplayAreHeldThenDeduplicated() {
        var h = Harness(after: 0, store: [1, 2, 3])
        let from = h.cursor.beginFetch()
        #expect(from == 1)
        // Offsets 3 and 4 arrive live while the fetch (which saw 1...3) is in flight.
        h.store.append(4)
        #expect(h.push(3) == false)
        #expect(h.push(4) == false)
        #expect(h.delivered.isEmpty)
        var got: [UInt64] = []
        let again = h.cursor.fetched([(1, [1]), (2, [2]), (3, [3])], complete: true) { o, _ in got.append(o) }
        #expect(got == [1, 2, 3, 4])
        // 4 was pushed after the fetch was issued; it is delivered from the hold, nothing is owed.
        #expect(again == false)
    }

    @Test func aGapAsksForAFetchThatFillsIt() {
        var h = Harness(after: 0, store: [])
        h.fetchAll()
        h.store = [1, 2, 3]
        // 3 arrives first (1 and 2 travel a slower path): held, fetch requested.
        #expect(h.push(3) == true)
        #expect(h.delivered.isEmpty)
        h.fetchAll()
        #expect(h.delivered == [1, 2, 3])
        // The slow pushes of 1 and 2 arrive late: duplicates.
        #expect(h.push(1) == false)
        #expect(h.push(2) == false)
        #expect(h.delivered == [1, 2, 3])
    }

    @Test func trimmedEntriesAreSkippedAndCounted() {
        // The store kept only 8...10 (the inbox is capped); the client resumes after 2.
        var h = Harness(after: 2, store: [8, 9, 10])
        h.fetchAll()
        #expect(h.delivered == [8, 9, 10])
        #expect(h.cursor.skipped == 5)
    }

    @Test func aHeldPushWhoseGapWasTrimmedIsDeliveredAfterOneFetch() {
        var h = Harness(after: 0, store: [])
        h.fetchAll()
        // 5 is pushed; 1...4 were trimmed before anyone read them.
        h.store = [5]
        #expect(h.push(5) == true)
        h.fetchAll()
        #expect(h.delivered == [5])
        #expect(h.cursor.skipped == 4)
        #expect(h.fetches.count == 2)
    }

    @Test func countLimitedFetchesContinue() {
        let all = Array(UInt64(1)...UInt64(1000))
        var h = Harness(after: 0, store: all)
        h.fetchAll(limit: 64)
        #expect(h.delivered == all)
        #expect(h.fetches.count == 16)
    }

    @Test func aFullHoldDropsPushesThatTheStoreStillHas() {
        var h = Harness(after: 0, store: [], maxHeld: 4)
        h.fetchAll()
        h.store = Array(1...20)
        for offset in UInt64(2)...20 { _ = h.push(offset) }
        #expect(h.cursor.held.count == 4)
        h.fetchAll()
        #expect(h.delivered == Array(1...20))
        #expect(h.cursor.skipped == 0)
    }

    @Test func aFailedFetchKeepsWhatIsHeld() {
        var h = Harness(after: 0, store: [1, 2])
        _ = h.cursor.beginFetch()
        h.cursor.fetchFailed()
        #expect(h.push(2) == true)
        h.fetchAll()
        #expect(h.delivered == [1, 2])
    }

    /// Random interleavings of pushes, duplicates and fetches: the client always gets 1...n once and in order.
    @Test(arguments: 0..<200) func randomInterleavingsDeliverEachOffsetOnceInOrder(seed: Int) {
        var random = SplitMix64(seed: UInt64(seed) &+ 0x9E37_79B9_7F4A_7C15)
        let count = UInt64(1 + random.next() % 60)
        var h = Harness(after: 0, store: [], maxHeld: 1 + Int(random.next() % 8))
        var pending = Array(1...count)
        var appended: UInt64 = 0
        var fetchInFlight: (from: UInt64, snapshot: [UInt64])?
        var steps = 0
        while h.delivered.count < Int(count) && steps < 10_000 {
            steps += 1
            switch random.next() % 4 {
            case 0 where appended < count:
                appended += 1
                h.store.append(appended)
            case 1 where !pending.isEmpty:
                // Deliver a pending push that is already in the store, in random order, sometimes twice.
                let candidates = pending.indices.filter { pending[$0] <= appended }
                guard let pick = candidates.randomElement(using: &random) else { break }
                let offset = pending[pick]
                if random.next() % 3 != 0 { pending.remove(at: pick) }
                if h.push(offset) && fetchInFlight == nil {
                    let from = h.cursor.beginFetch()
                    fetchInFlight = (from, h.store)
                }
            case 2 where fetchInFlight != nil:
                let (from, snapshot) = fetchInFlight!
                fetchInFlight = nil
                let entries = snapshot.filter { $0 >= from }.prefix(5)
                var got: [UInt64] = []
                let again = h.cursor.fetched(
                    entries.map { ($0, [UInt8(truncatingIfNeeded: $0)]) }, complete: entries.count < 5
                ) {
                    o, _ in got.append(o)
                }
                h.delivered += got
                if again {
                    let next = h.cursor.beginFetch()
                    fetchInFlight = (next, h.store)
                }
            default:
                if appended == count && pending.isEmpty && fetchInFlight == nil && h.delivered.count < Int(count) {
                    let from = h.cursor.beginFetch()
                    fetchInFlight = (from, h.store)
                }
            }
        }
        #expect(h.delivered == Array(1...count), "seed \(seed)")
        #expect(h.cursor.skipped == 0)
    }
}
