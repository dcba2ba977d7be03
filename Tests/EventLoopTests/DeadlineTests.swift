// The runtime's one timeout mechanism: movable deadlines on the loop's timer heap, their generation check, and the
// connect timeout that uses them.
import Synchronization
import Sys
import TestSupport
import Testing

@testable import EventLoop

@Suite struct DeadlineTests {
    @Test func movingLaterIsAStoreAndFiresOnlyAtTheNewTime() {
        var queue = TimerQueue()
        let recorder = Recorder()
        let id = queue.schedule(deadline: 100, handler: recorder, tag: 1, closure: nil)
        let other = queue.schedule(deadline: 150, handler: recorder, tag: 2, closure: nil)
        let r1 = queue.move(id, to: 200)
        #expect(r1)
        // The entry still comes up at 100 (the heap was not re-sorted) but goes back in without firing.
        #expect(queue.nextDeadline == 100)
        let r2 = queue.popExpired(now: 120)
        #expect(r2 == nil)
        #expect(queue.nextDeadline == 150)
        var fired: [UInt64] = []
        while let next = queue.popExpired(now: 199) {
            if case .handler(_, let tag) = next { fired.append(tag) }
        }
        #expect(fired == [2])
        while let next = queue.popExpired(now: 200) {
            if case .handler(_, let tag) = next { fired.append(tag) }
        }
        #expect(fired == [2, 1])
        let r3 = queue.move(id, to: 300)
        #expect(!r3, "a fired timer cannot be moved")
        _ = other
    }

    @Test func movingEarlierReSortsTheHeap() {
        var queue = TimerQueue()
        let recorder = Recorder()
        var ids: [TimerID] = []
        for tag in 0..<100 {
            ids.append(queue.schedule(deadline: 1000 + UInt64(tag), handler: recorder, tag: UInt64(tag), closure: nil))
        }
        let r4 = queue.move(ids[99], to: 10)
        #expect(r4)
        let r5 = queue.move(ids[50], to: 5000)
        #expect(r5)
        let r6 = queue.move(ids[50], to: 20)
        #expect(r6, "earlier than its due time, later than nothing: re-keyed")
        var fired: [UInt64] = []
        while let next = queue.popExpired(now: .max) {
            if case .handler(_, let tag) = next { fired.append(tag) }
        }
        #expect(Array(fired.prefix(2)) == [99, 50])
        #expect(Array(fired.dropFirst(2)) == (0..<99).filter { $0 != 50 }.map(UInt64.init))
    }

    /// A closed connection's timer never fires on (or moves, or cancels) the timer that reuses its heap slot.
    @Test func staleTimerOfAClosedConnectionDoesNotTouchTheReusedSlot() {
        var queue = TimerQueue()
        let closed = Recorder()
        let reusing = Recorder()
        let stale = queue.schedule(deadline: 100, handler: closed, tag: 7, closure: nil)
        let cancelled = queue.cancel(stale)  // the connection closed
        #expect(cancelled)
        let fresh = queue.schedule(deadline: 300, handler: reusing, tag: 8, closure: nil)
        #expect(fresh.slot == stale.slot && fresh.generation != stale.generation)
        let r7 = queue.move(stale, to: 50)
        #expect(!r7)
        let r8 = queue.cancel(stale)
        #expect(!r8)
        #expect(!queue.isPending(stale) && queue.isPending(fresh))
        var fired: [(Recorder, UInt64)] = []
        while let next = queue.popExpired(now: .max) {
            if case .handler(let handler, let tag) = next { fired.append((handler as! Recorder, tag)) }
        }
        #expect(fired.count == 1 && fired[0].0 === reusing && fired[0].1 == 8)
    }

    /// The same through `Deadline` on a running loop: the stale deadline re-armed or disarmed late leaves the
    /// reusing connection's timer alone, and the closed one's handler is never called.
    @Test func deadlineOfAClosedConnectionNeverFiresOnAReusedSlot() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let closed = Recorder()
        let reusing = Recorder()
        try running.sync {
            let loop = running.loop
            var old = Deadline()
            loop.arm(&old, at: loop.now &+ 20_000_000, handler: closed, tag: 1)
            let stale = old
            loop.disarm(&old)  // closed
            var new = Deadline()
            loop.arm(&new, at: loop.now &+ 40_000_000, handler: reusing, tag: 2)
            #expect(new.timer?.slot == stale.timer?.slot)
            // A late disarm of a copy of the closed connection's deadline: nothing happens to the new timer.
            var late = stale
            loop.disarm(&late)
            #expect(loop.isArmed(new) && !loop.isArmed(stale))
        }
        #expect(waitUntil(timeout: .seconds(5)) { (try? running.sync { reusing.fired }) == [2] })
        usleepMilliseconds(50)
        #expect(try running.sync { (closed.fired, reusing.fired, running.loop.timerCount) } == ([], [2], 0))
    }

    @Test func deadlineMovedOftenFiresOnceAtTheLastTime() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let recorder = Recorder()
        let start = monotonicNanoseconds()
        let deadline = try running.sync {
            let loop = running.loop
            var deadline = Deadline()
            // A connection whose phase changes 1,000 times: later, earlier, later; one heap entry throughout.
            for step in 0..<1000 {
                loop.arm(&deadline, at: loop.now &+ UInt64(10_000_000 + (step % 7) * 1_000_000), handler: recorder)
                #expect(loop.timerCount == 1)
            }
            loop.arm(&deadline, at: loop.now &+ 80_000_000, handler: recorder, tag: 9)
            return deadline
        }
        #expect(waitUntil(timeout: .seconds(5)) { (try? running.sync { recorder.fired.count }) == 1 })
        #expect(monotonicNanoseconds() - start >= 80_000_000)
        #expect(
            try running.sync { (recorder.fired, running.loop.isArmed(deadline), running.loop.timerCount) } == (
                [9], false, 0
            ))
    }

    @Test func connectToANonAnsweringAddressTimesOut() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        // Backlog 0 and never accepted: once the accept queue is full the kernel drops further SYNs, so the
        // later attempts get no answer at all (only loopback may carry test traffic).
        let listening = try Socket.listener(at: .loopback(port: 0), backlog: 0)
        let address = try listening.fd.localAddress()
        let outcomes = (0..<4).map { _ in Outcome() }
        let start = monotonicNanoseconds()
        try running.sync {
            for outcome in outcomes {
                try Connector.connect(loop: running.loop, to: address, timeout: .milliseconds(200), handler: outcome)
            }
        }
        #expect(waitUntil(timeout: .seconds(5)) { outcomes.allSatisfy { $0.result.withLock { $0 != nil } } })
        let elapsed = monotonicNanoseconds() - start
        let results = outcomes.map { $0.result.withLock { $0! } }
        #expect(results.contains(.timedOut), "\(results)")
        #expect(elapsed >= 200_000_000 && elapsed < 1_500_000_000, "\(elapsed) ns")
        // Every connector's deadline left the heap: the ones that connected disarmed it, the others fired.
        #expect(try running.sync { running.loop.timerCount } == 0)
        try running.sync {
            for case .connected(let fd) in results { fd.close() }
        }
        _ = consume listening
    }
}
