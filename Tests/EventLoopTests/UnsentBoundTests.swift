// Every connection has a bound on unsent bytes: a peer that stops reading cannot make a writer grow without end.
import Synchronization
import Sys
import TestSupport
import Testing

@testable import EventLoop

/// Writes 16 MiB at once to each accepted connection, ignoring back-pressure (what a buggy handler would do).
final class Flooder: AcceptHandler, ConnectionHandler, @unchecked Sendable {
    let closedWith = Mutex<[Errno?]>([])
    var maxPending = 0

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        guard let connection = try? Connection(loop: listener.loop, fd: fd, handler: self) else { return }
        let chunk = [UInt8](repeating: 0x61, count: 65536)
        for _ in 0..<256 {
            chunk.withUnsafeBytes { connection.write($0) }
            maxPending = max(maxPending, connection.pendingByteCount)
        }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {}

    func closed(_ connection: Connection, error: Errno?) { closedWith.withLock { $0.append(error) } }
}

/// Connects and never reads.
final class DeafClient: ConnectHandler, ConnectionHandler, @unchecked Sendable {
    var loop: EventLoop?
    var connection: Connection?

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        guard case .connected(let fd) = result, let loop else { return }
        connection = try? Connection(loop: loop, fd: fd, handler: self)
        connection?.pauseReading()
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {}
    func closed(_ connection: Connection, error: Errno?) {}
}

@Suite struct UnsentBoundTests {
    /// `maxPendingBytes` 1 MiB: the writer's connection closes with ENOBUFS, and never held much more than the bound.
    @Test func peerThatStopsReadingIsClosedAtTheBound() throws {
        let flooder = Flooder()
        let server = try RunningLoop()
        defer { server.stop() }
        let port = try server.sync {
            server.loop.maxPendingBytes = 1 << 20
            return try Listener(loop: server.loop, address: .loopback(port: 0), handler: flooder).address.port
        }
        let client = try RunningLoop()
        defer { client.stop() }
        let deaf = DeafClient()
        try client.sync {
            deaf.loop = client.loop
            _ = try Connector.connect(loop: client.loop, to: .loopback(port: port), timeout: .seconds(5), handler: deaf)
        }
        #expect(waitUntil(timeout: .seconds(10)) { !flooder.closedWith.withLock { $0.isEmpty } })
        #expect(flooder.closedWith.withLock { $0 } == [.noBufferSpace])
        #expect(try server.sync { flooder.maxPending } <= 1 << 20)
    }
}

@Suite struct LoopFailureTests {
    /// The backend's wait failing (the epoll or ring descriptor replaced by an eventfd: epoll_wait gives EINVAL,
    /// io_uring_enter EOPNOTSUPP) reaches the group's failure handler with the loop's index and the error; before,
    /// `try? loop.run()` ended the thread silently.
    @Test func aFailingLoopIsReportedNotSwallowed() throws {
        let group = try EventLoopGroup(loops: 1)
        let notSelector = try FileDescriptor.eventFD()
        defer { notSelector.close() }
        let loop = group.loop(at: 0)
        try notSelector.duplicate(onto: loop.selector.descriptor)
        let failures = Mutex<[String]>([])
        try group.start { index, error in failures.withLock { $0.append("\(index) \(error.code)") } }
        group.join()
        let expected = loop.backend == .epoll ? Errno.invalidArgument : Errno.notSupported
        #expect(failures.withLock { $0 } == ["0 \(expected.code)"])
    }
}
