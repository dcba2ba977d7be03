// Handlers are called without reference counting: one that a connection lets go from inside its own callback must
// outlive that callback (the loop keeps it until its next turn), and must not outlive the turn after. Only an
// optimized build shows the first (a debug build retains around the call anyway): `make test` runs these again on
// its release build.
import Glibc
import Synchronization
import Sys
import TestSupport
import Testing

@testable import EventLoop

/// What the tests read: whether the first handler was deinitialized while its callback still ran, and when.
final class LifetimeRecord: Sendable {
    let deinitialized = Atomic<Bool>(false)
    let deinitializedDuringCallback = Atomic<Bool>(false)
    let callbackEnded = Atomic<Bool>(false)
}

/// Accepts one connection and gives it a `HandsItselfOver` that nothing else references.
final class LifetimeAcceptor: AcceptHandler, @unchecked Sendable {
    let record: LifetimeRecord
    let closeInstead: Bool
    var connection: Connection?
    init(record: LifetimeRecord, closeInstead: Bool) {
        self.record = record
        self.closeInstead = closeInstead
    }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        connection = try? Connection(
            loop: listener.loop, fd: fd, handler: HandsItselfOver(record: record, closeInstead: closeInstead))
    }
}

/// On its first bytes, replaces itself with a `Sink` (or closes its connection): the connection's reference was the
/// last one, so it is freed as soon as the loop lets it go.
final class HandsItselfOver: ConnectionHandler {
    let record: LifetimeRecord
    let closeInstead: Bool
    init(record: LifetimeRecord, closeInstead: Bool) {
        self.record = record
        self.closeInstead = closeInstead
    }
    deinit { record.deinitialized.store(true, ordering: .relaxed) }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        if closeInstead { connection.close() } else { connection.setHandler(Sink()) }
        // Still running: freed here would be a use after free.
        if record.deinitialized.load(ordering: .relaxed) {
            record.deinitializedDuringCallback.store(true, ordering: .relaxed)
        }
        record.callbackEnded.store(true, ordering: .relaxed)
    }

    func closed(_ connection: Connection, error: Errno?) {}
}

final class Sink: ConnectionHandler {
    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {}
    func closed(_ connection: Connection, error: Errno?) {}
}

@Suite struct HandlerLifetimeTests {
    @Test(arguments: [false, true])
    func aHandlerLetGoInItsOwnCallbackOutlivesItThenGoes(closeInstead: Bool) throws {
        let record = LifetimeRecord()
        let acceptor = LifetimeAcceptor(record: record, closeInstead: closeInstead)
        let running = try RunningLoop(loop: try EventLoop())
        defer { running.stop() }
        let port = try running.sync {
            try Listener(loop: running.loop, address: .loopback(port: 0), handler: acceptor).address.port
        }
        let fd = try connectedLoopbackSocket(port: port, receiveTimeout: 20)
        defer { Glibc.close(fd) }
        var byte: UInt8 = 1
        #expect(Glibc.send(fd, &byte, 1, 0) == 1)
        #expect(waitUntil { record.callbackEnded.load(ordering: .relaxed) })
        let freedTooSoon = record.deinitializedDuringCallback.load(ordering: .relaxed)
        #expect(!freedTooSoon)
        // Released when a later turn begins (a task makes one).
        #expect(waitUntil { (try? running.sync {}) != nil && record.deinitialized.load(ordering: .relaxed) })
    }
}

/// What `HandlerLifetimeTests.aLentConnectionReachesItsBorrowerThenGoesBackToItsOwner` reads.
final class LendingRecord: Sendable {
    let ownerReads = Atomic<Int>(0)
    let borrowerReads = Atomic<Int>(0)
    let ownerClosed = Atomic<Bool>(false)
    let ownerDeinitialized = Atomic<Bool>(false)
}

/// Accepts one connection and gives it a `LendingOwner` that nothing else references.
final class LendingAcceptor: AcceptHandler, @unchecked Sendable {
    let record: LendingRecord
    init(record: LendingRecord) { self.record = record }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        _ = try? Connection(loop: listener.loop, fd: fd, handler: LendingOwner(record: record))
    }
}

/// On its first bytes, lends its connection to a `LendingBorrower` (which it holds, as a pool holds nothing of a
/// request but the request holds its connection); the borrower gives it back on the next bytes.
final class LendingOwner: ConnectionHandler {
    let record: LendingRecord
    var borrower: LendingBorrower?
    init(record: LendingRecord) { self.record = record }
    deinit { record.ownerDeinitialized.store(true, ordering: .relaxed) }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        if record.ownerReads.add(1, ordering: .relaxed).newValue == 1 {
            let borrower = LendingBorrower(record: record, owner: self)
            self.borrower = borrower
            connection.lend(to: borrower)
        }
    }

    func closed(_ connection: Connection, error: Errno?) {
        record.ownerClosed.store(true, ordering: .relaxed)
    }
}

final class LendingBorrower: ConnectionHandler {
    let record: LendingRecord
    weak var owner: LendingOwner?
    init(record: LendingRecord, owner: LendingOwner) {
        self.record = record
        self.owner = owner
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        record.borrowerReads.add(1, ordering: .relaxed)
        if let owner { connection.setHandler(owner) }
    }

    func closed(_ connection: Connection, error: Errno?) {}
}

extension HandlerLifetimeTests {
    /// A lent connection delivers to its borrower, which the connection does not hold; the owner stays its handler
    /// throughout (the only reference to it is the connection's), gets it back, and goes once it closes.
    @Test func aLentConnectionReachesItsBorrowerThenGoesBackToItsOwner() throws {
        let record = LendingRecord()
        let acceptor = LendingAcceptor(record: record)
        let running = try RunningLoop(loop: try EventLoop())
        defer { running.stop() }
        let port = try running.sync {
            try Listener(loop: running.loop, address: .loopback(port: 0), handler: acceptor).address.port
        }
        let fd = try connectedLoopbackSocket(port: port, receiveTimeout: 20)
        var closed = false
        defer { if !closed { Glibc.close(fd) } }
        var byte: UInt8 = 1
        #expect(Glibc.send(fd, &byte, 1, 0) == 1)
        #expect(waitUntil { record.ownerReads.load(ordering: .relaxed) == 1 })
        #expect(Glibc.send(fd, &byte, 1, 0) == 1)
        #expect(waitUntil { record.borrowerReads.load(ordering: .relaxed) == 1 })
        let ownerReadsWhileLent = record.ownerReads.load(ordering: .relaxed)
        #expect(ownerReadsWhileLent == 1)
        #expect(Glibc.send(fd, &byte, 1, 0) == 1)
        #expect(waitUntil { record.ownerReads.load(ordering: .relaxed) == 2 })
        let borrowerReadsAfter = record.borrowerReads.load(ordering: .relaxed)
        #expect(borrowerReadsAfter == 1)
        let ownerFreedWhileOpen = record.ownerDeinitialized.load(ordering: .relaxed)
        #expect(!ownerFreedWhileOpen)
        Glibc.close(fd)
        closed = true
        #expect(waitUntil { record.ownerClosed.load(ordering: .relaxed) })
        #expect(waitUntil { (try? running.sync {}) != nil && record.ownerDeinitialized.load(ordering: .relaxed) })
    }
}
