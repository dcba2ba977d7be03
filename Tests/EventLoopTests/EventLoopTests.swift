import Synchronization
import Sys
import TestRandom
import TestSupport
import Testing

// Loop tests over real loopback sockets: slots, timers, cross-thread tasks, echo integrity, back-pressure, stop.
@testable import EventLoop

final class Recorder: TimerHandler, @unchecked Sendable {
    var fired: [UInt64] = []
    func timerFired(tag: UInt64) { fired.append(tag) }
}

final class Dummy: EventHandler, @unchecked Sendable {
    var readyCount = 0
    var lastEvents: UInt8 = 0
    func ready(_ events: ReadyEvents) {
        readyCount += 1
        lastEvents = events.rawValue
    }
    func loopStopping() {}
}

@Suite struct SlotTableTests {
    @Test func staleTokenIsDropped() {
        var table = SlotTable<Dummy>()
        let first = Dummy()
        let token = table.insert(first)
        #expect(table.lookup(token) === first)
        let removed = table.remove(token)
        #expect(removed)
        let second = Dummy()
        let reused = table.insert(second)
        // Same slot, new generation: the old token must not reach the new value.
        #expect(SlotTable<Dummy>.index(reused) == SlotTable<Dummy>.index(token))
        #expect(reused != token)
        #expect(table.lookup(token) == nil)
        #expect(table.lookup(reused) === second)
        // `contains` is what dispatch asks (it calls through its own unretained copy of the handler).
        #expect(!table.contains(token) && table.contains(reused))
        let removedAgain = table.remove(token)
        #expect(!removedAgain)
        #expect(table.count == 1)
        // `replace` and `take` hand back what they displace, for the loop to keep until its next turn.
        let third = Dummy()
        #expect(table.replace(reused, with: third) === second)
        #expect(table.replace(token, with: third) == nil)
        #expect(table.take(reused) === third)
        #expect(!table.contains(reused) && table.count == 0)
    }
}

@Suite struct TimerTests {
    @Test func heapOrderAndCancel() {
        var queue = TimerQueue()
        let recorder = Recorder()
        var generator = SplitMix64(seed: 42)
        var ids: [TimerID] = []
        var deadlines: [UInt64] = []
        for tag in 0..<10_000 {
            let deadline = UInt64.random(in: 1...1_000_000, using: &generator)
            deadlines.append(deadline)
            ids.append(queue.schedule(deadline: deadline, handler: recorder, tag: UInt64(tag), closure: nil))
        }
        // Cancel 9,000: every tag not divisible by 10.
        var cancelled = 0
        for tag in 0..<10_000 where tag % 10 != 0 && queue.cancel(ids[tag]) { cancelled += 1 }
        #expect(cancelled == 9000)
        let again = queue.cancel(ids[1])
        #expect(!again)
        #expect(queue.count == 1000)
        var fired: [UInt64] = []
        while let next = queue.popExpired(now: .max) {
            if case .handler(_, let tag) = next { fired.append(tag) }
        }
        #expect(fired.count == 1000)
        #expect(fired.allSatisfy { $0 % 10 == 0 })
        let firedDeadlines = fired.map { deadlines[Int($0)] }
        #expect(firedDeadlines == firedDeadlines.sorted())
        #expect(Set(fired).count == 1000)
    }

    /// Random schedules, cancels, moves (earlier and later) and pops, with many equal deadlines, against a model:
    /// a pop never fires a timer before its time nor one that was cancelled or already fired, a drain leaves no
    /// timer that is due, every timer fires or is cancelled exactly once, and timers never moved fire in
    /// (deadline, scheduling order) within a drain.
    @Test(arguments: 0..<400)
    func randomOperationsKeepTheHeapsPromises(seed: UInt64) {
        var queue = TimerQueue(capacity: 4)
        let recorder = Recorder()
        var random = SplitMix64(seed: seed)
        // tag → (due, moved, id); tags are scheduling order.
        var live: [UInt64: (due: UInt64, moved: Bool, id: TimerID)] = [:]
        var done = Set<UInt64>()
        var nextTag: UInt64 = 0
        var now: UInt64 = 0
        for _ in 0..<3000 {
            switch random.below(10) {
            case 0..<4:
                let due = now + UInt64(random.below(50))
                let id = queue.schedule(deadline: due, handler: recorder, tag: nextTag, closure: nil)
                live[nextTag] = (due, false, id)
                nextTag += 1
            case 4, 5:
                guard !live.isEmpty else { continue }
                let tag = random.pick(live.keys.sorted())
                let cancelled = queue.cancel(live[tag]!.id)
                let again = queue.cancel(live[tag]!.id)
                #expect(cancelled && !again)
                live[tag] = nil
                done.insert(tag)
            case 6, 7:
                guard !live.isEmpty else { continue }
                let tag = random.pick(live.keys.sorted())
                let due = now + UInt64(random.below(60))
                let moved = queue.move(live[tag]!.id, to: due)
                #expect(moved)
                live[tag]!.due = due
                live[tag]!.moved = true
            default:
                now += UInt64(random.below(30))
                var fired: [UInt64] = []
                while let next = queue.popExpired(now: now) {
                    guard case .handler(_, let tag) = next else { continue }
                    fired.append(tag)
                }
                for tag in fired {
                    #expect(live[tag] != nil && live[tag]!.due <= now, "seed \(seed): tag \(tag) fired early or twice")
                }
                let unmoved = fired.compactMap { tag in live[tag].flatMap { $0.moved ? nil : ($0.due, tag) } }
                #expect(unmoved.map(\.1) == unmoved.sorted { $0 < $1 }.map(\.1), "seed \(seed): order")
                for tag in fired {
                    live[tag] = nil
                    done.insert(tag)
                }
                #expect(live.values.allSatisfy { $0.due > now }, "seed \(seed): a due timer was left")
                #expect(queue.count == live.count)
            }
        }
        while let next = queue.popExpired(now: .max) {
            if case .handler(_, let tag) = next {
                #expect(live.removeValue(forKey: tag) != nil)
                done.insert(tag)
            }
        }
        #expect(live.isEmpty && done.count == Int(nextTag))
    }

    @Test func loopTimersFireInOrderAndCancelledNever() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let recorder = Recorder()
        let start = monotonicNanoseconds()
        try running.sync {
            let loop = running.loop
            var ids: [TimerID] = []
            for tag in 0..<10_000 {
                // Deadlines spread over 0...50 ms in a scrambled order.
                let delay = Duration.microseconds((tag * 7919) % 50_000)
                ids.append(loop.schedule(after: delay, handler: recorder, tag: UInt64(tag)))
            }
            for tag in 0..<10_000 where tag % 10 != 0 { loop.cancel(ids[tag]) }
        }
        #expect(waitUntil(timeout: .seconds(5)) { (try? running.sync { recorder.fired.count }) == 1000 })
        let fired = try running.sync { recorder.fired }
        #expect(fired.count == 1000)
        #expect(fired.allSatisfy { $0 % 10 == 0 })
        let delays = fired.map { (Int($0) * 7919) % 50_000 }
        #expect(delays == delays.sorted())
        #expect(monotonicNanoseconds() - start >= 49_000_000)
        // Nothing else fires later.
        usleepMilliseconds(60)
        #expect(try running.sync { (recorder.fired.count, running.loop.timerCount) } == (1000, 0))
    }
}

func usleepMilliseconds(_ milliseconds: Int) {
    let end = monotonicNanoseconds() + UInt64(milliseconds) * 1_000_000
    while monotonicNanoseconds() < end { _ = try? Latch() }
}

@Suite struct CrossThreadTests {
    @Test func fourThreadsTenThousandTasksEach() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let seen = Mutex<[UInt8]>([UInt8](repeating: 0, count: 40_000))
        let offLoop = Atomic<Int>(0)
        let loop = running.loop
        var threads: [Sys.Thread] = []
        for producer in 0..<4 {
            threads.append(
                try Sys.Thread {
                    for index in 0..<10_000 {
                        let slot = producer * 10_000 + index
                        loop.execute {
                            if !loop.isInLoop { offLoop.add(1, ordering: .relaxed) }
                            seen.withLock { $0[slot] &+= 1 }
                        }
                    }
                })
        }
        threads.forEach { $0.join() }
        #expect(waitUntil(timeout: .seconds(10)) { seen.withLock { !$0.contains(0) } })
        usleepMilliseconds(20)
        #expect(seen.withLock { $0.allSatisfy { $0 == 1 } })
        #expect(offLoop.load(ordering: .relaxed) == 0)
    }
}
