// Connections that read by completion (io_uring multishot receive into the loop's provided buffers): bytes intact
// through pauses, an exhausted buffer ring, end of file and close; on epoll the switch is refused and nothing changes.
import Glibc
import Synchronization
import Sys
import TestSupport
import Testing

@testable import EventLoop

/// Echo server whose connections switch to completion reads on accept; pauses reading while its echo is above the
/// loop's high-water mark. Counts what the tests look at.
final class CompletionEchoServer: AcceptHandler, ConnectionHandler, @unchecked Sendable {
    let switched = Mutex<[Bool]>([])
    let pauses = Atomic<Int>(0)
    let eofs = Atomic<Int>(0)
    let closedWith = Mutex<[Errno?]>([])
    /// On end of file: close at once (true) or shut the writing side after the echo (false).
    let closeOnEOF: Bool
    var connections: [Connection] = []

    init(closeOnEOF: Bool = false) { self.closeOnEOF = closeOnEOF }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        guard let connection = try? Connection(loop: listener.loop, fd: fd, handler: self) else { return }
        connections.append(connection)
        let result = connection.switchToCompletionIO()
        switched.withLock { $0.append(result && connection.usesCompletionIO) }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) { connection.write(bytes) }

    func writabilityChanged(_ connection: Connection, writable: Bool) {
        if writable {
            connection.resumeReading()
        } else {
            pauses.add(1, ordering: .relaxed)
            connection.pauseReading()
        }
    }

    func readEOF(_ connection: Connection) {
        eofs.add(1, ordering: .relaxed)
        if closeOnEOF { connection.close() } else { connection.shutdownWrite() }
    }

    func closed(_ connection: Connection, error: Errno?) { closedWith.withLock { $0.append(error) } }
}

/// Sends `count` pattern bytes on a blocking socket from a thread of its own while this thread reads the echo back;
/// returns whether every byte came back in order, then shuts the writing side and expects end of file. Reading
/// starts once `startReading` holds (so that the echo piles up first).
func echoRoundTrip(
    port: UInt16, count: Int, stream: Int, chunk: Int = 3000, startReading: () -> Bool = { true }
) throws -> Bool {
    let fd = try connectedLoopbackSocket(port: port, receiveTimeout: 20)
    defer { Glibc.close(fd) }
    let writer = try Sys.Thread {
        var offset = 0
        var buffer = [UInt8](repeating: 0, count: chunk)
        while offset < count {
            let size = min(chunk, count - offset)
            for index in 0..<size { buffer[index] = patternByte(stream: stream, offset: offset + index) }
            var sent = 0
            while sent < size {
                let result = buffer.withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress! + sent, size - sent, Int32(MSG_NOSIGNAL))
                }
                if result <= 0 { return }
                sent += result
            }
            offset += size
        }
        Glibc.shutdown(fd, Int32(SHUT_WR))
    }
    defer { writer.join() }
    guard waitUntil(startReading) else { return false }
    let read = readPattern(fd, stream: stream)
    return read.intact && read.count == count
}

/// Reads `fd` until its end, `chunk` bytes at a time, checking every byte against stream `stream`'s pattern: how many
/// came, whether all matched, and the last recv result (0: end of file) with its errno.
func readPattern(_ fd: Int32, stream: Int, chunk: Int = 65536) -> (count: Int, intact: Bool, last: Int, error: Int32) {
    var buffer = [UInt8](repeating: 0, count: chunk)
    var count = 0
    var intact = true
    while true {
        let result = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
        if result < 0 && errno == EINTR { continue }
        if result <= 0 { return (count, intact, result, result < 0 ? errno : 0) }
        for index in 0..<result where buffer[index] != patternByte(stream: stream, offset: count + index) {
            intact = false
        }
        count += result
    }
}

@Suite(.enabled(if: EventsBackend.ioURingUnavailability == nil, "io_uring is not available here"))
struct CompletionReadTests {
    func serve(
        _ server: CompletionEchoServer, receiveBuffers: (count: Int, size: Int) = (64, 64 * 1024),
        highWaterMark: Int = 256 * 1024
    ) throws -> (RunningLoop, UInt16) {
        let running = try RunningLoop(loop: try EventLoop(backend: .ioURing, receiveBuffers: receiveBuffers))
        let port = try running.sync {
            running.loop.highWaterMark = highWaterMark
            return try Listener(loop: running.loop, address: .loopback(port: 0), handler: server).address.port
        }
        return (running, port)
    }

    /// 8 MiB echoed through a 16 KiB high-water mark: reading pauses (its receive is cancelled) and resumes many
    /// times, the 4 MiB buffer ring is reused twice over, and every byte comes back in order.
    @Test func bytesSurvivePausesAndBufferReuse() throws {
        let server = CompletionEchoServer()
        let (running, port) = try serve(server, highWaterMark: 16 * 1024)
        defer { running.stop() }
        #expect(
            try echoRoundTrip(port: port, count: 8 << 20, stream: 1, chunk: 60000) {
                server.pauses.load(ordering: .relaxed) > 0
            })
        #expect(server.switched.withLock { $0 } == [true])
        #expect(server.eofs.load(ordering: .relaxed) == 1)
    }

    /// Two 64-byte buffers for the whole loop: arrivals outrun them, receives end with ENOBUFS and are armed again
    /// once the buffers come back; four connections at once still get every byte.
    @Test func anExhaustedBufferRingLosesNothing() throws {
        let server = CompletionEchoServer()
        let (running, port) = try serve(server, receiveBuffers: (2, 64))
        defer { running.stop() }
        let results = Mutex<[Bool]>([])
        var threads: [Sys.Thread] = []
        for stream in 0..<4 {
            threads.append(
                try Sys.Thread {
                    let ok = (try? echoRoundTrip(port: port, count: 200_000, stream: stream, chunk: 1500)) ?? false
                    results.withLock { $0.append(ok) }
                })
        }
        for thread in threads { thread.join() }
        #expect(results.withLock { $0 } == [true, true, true, true])
        #expect(server.switched.withLock { $0 } == [true, true, true, true])
    }

    /// End of file comes as a receipt; closing a connection whose receive is armed sends the FIN (the receive, which
    /// holds the file, is cancelled with the registration).
    @Test func endOfFileAndCloseReachThePeer() throws {
        let server = CompletionEchoServer(closeOnEOF: true)
        let (running, port) = try serve(server)
        defer { running.stop() }
        let fd = try connectedLoopbackSocket(port: port, receiveTimeout: 20)
        defer { Glibc.close(fd) }
        #expect(waitUntil { server.switched.withLock { $0.count } == 1 })
        let message = Array("hello".utf8)
        _ = message.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let echoed = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
        #expect(echoed == 5 && Array(buffer[0..<5]) == message)
        Glibc.shutdown(fd, Int32(SHUT_WR))
        // The server closes on EOF: its FIN arrives (recv returns 0; a receive left armed would keep it open until
        // the 20 s receive timeout, and recv would return -1).
        let end = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
        #expect(end == 0)
        #expect(server.eofs.load(ordering: .relaxed) == 1)
        // Nothing holds the socket after its receive saw the end: the FIN may be out before `closed` is called.
        #expect(waitUntil { server.closedWith.withLock { $0.count } == 1 })
    }

    /// A connection closed by the loop's side while idle (its receive armed, no bytes moving) releases its socket.
    @Test func closingAnIdleConnectionSendsTheFIN() throws {
        let server = CompletionEchoServer()
        let (running, port) = try serve(server)
        defer { running.stop() }
        let fd = try connectedLoopbackSocket(port: port, receiveTimeout: 20)
        defer { Glibc.close(fd) }
        #expect(waitUntil { server.switched.withLock { $0.count } == 1 })
        try running.sync { for connection in server.connections { connection.close() } }
        var buffer = [UInt8](repeating: 0, count: 16)
        let end = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
        #expect(end == 0)
    }
}

/// Writes `size` bytes at once to each accepted connection after switching it to completion I/O, then closes it
/// once flushed, or (`cut`) leaves it to the test.
final class BlastThenClose: AcceptHandler, ConnectionHandler, @unchecked Sendable {
    let size: Int
    let cut: Bool
    let closed = Atomic<Int>(0)
    var connection: Connection?
    init(size: Int, cut: Bool) {
        self.size = size
        self.cut = cut
    }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        guard let connection = try? Connection(loop: listener.loop, fd: fd, handler: self) else { return }
        guard connection.switchToCompletionIO() else { return connection.close() }
        var bytes = [UInt8](repeating: 0, count: size)
        for index in 0..<size { bytes[index] = patternByte(stream: 5, offset: index) }
        bytes.withUnsafeBytes { connection.write($0) }
        self.connection = connection
        if !cut { connection.closeWhenFlushed() }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {}
    func closed(_ connection: Connection, error: Errno?) { closed.add(1, ordering: .relaxed) }
}

extension CompletionReadTests {
    /// A connection cut while its send is stuck (the peer reads nothing): the send is cancelled, its socket
    /// released (the peer sees the end), and its buffer freed by the loop when the cancelled send completes.
    @Test func cuttingWhileASendIsInFlightReleasesSocketAndBuffer() throws {
        // More than loopback's socket buffers take (the send must be stuck when the cut comes).
        let size = 48 << 20
        let server = BlastThenClose(size: size, cut: true)
        let running = try RunningLoop(loop: try EventLoop(backend: .ioURing))
        defer { running.stop() }
        let port = try running.sync {
            running.loop.maxPendingBytes = 64 << 20
            return try Listener(loop: running.loop, address: .loopback(port: 0), handler: server).address.port
        }
        let fd = try connectedLoopbackSocket(port: port, receiveTimeout: 20)
        defer { Glibc.close(fd) }
        // The first send took what the socket had room for; the next one, submitted with the following wait, finds
        // the socket full and waits for room that never comes. Cut then.
        #expect(
            waitUntil {
                (try? running.sync { server.connection.map { $0.pendingByteCount < size } ?? false }) ?? false
            })
        try running.sync { server.connection?.close() }
        #expect(waitUntil { server.closed.load(ordering: .relaxed) == 1 })
        let orphansLeft = {
            (try? running.sync {
                guard case .ioURing(let selector) = running.loop.selector else { return -1 }
                return selector.orphanCount
            }) ?? -1
        }
        #expect(waitUntil { orphansLeft() == 0 })
        // What was sent before the cut can be read, then the end (FIN, or a reset for bytes never taken).
        let read = readPattern(fd, stream: 5)
        #expect(read.intact && read.count < size)
        #expect(read.last == 0 || read.error == ECONNRESET)
    }

    /// `closeWhenFlushed` with 3 MiB in flight to a slow reader: every byte arrives, in order, then the FIN.
    @Test func closeWhenFlushedWaitsForTheSendInFlight() throws {
        let server = BlastThenClose(size: 3 << 20, cut: false)
        let running = try RunningLoop(loop: try EventLoop(backend: .ioURing))
        defer { running.stop() }
        let port = try running.sync {
            try Listener(loop: running.loop, address: .loopback(port: 0), handler: server).address.port
        }
        let fd = try connectedLoopbackSocket(port: port, receiveTimeout: 20)
        defer { Glibc.close(fd) }
        let read = readPattern(fd, stream: 5, chunk: 4096)
        #expect(read.intact && read.count == 3 << 20 && read.last == 0)
        #expect(waitUntil { server.closed.load(ordering: .relaxed) == 1 })
    }
}

@Suite struct CompletionReadOnEpollTests {
    /// On epoll the switch is refused and the connection goes on reading by readiness.
    @Test func epollRefusesAndStillEchoes() throws {
        let server = CompletionEchoServer()
        let running = try RunningLoop(loop: try EventLoop(backend: .epoll))
        defer { running.stop() }
        let port = try running.sync {
            try Listener(loop: running.loop, address: .loopback(port: 0), handler: server).address.port
        }
        #expect(try echoRoundTrip(port: port, count: 100_000, stream: 9))
        #expect(server.switched.withLock { $0 } == [false])
    }
}

extension CompletionReadTests {
    /// The provided buffers lent to sends (on the server's loop): -1 off io_uring.
    func lentBuffers(_ running: RunningLoop) -> Int {
        (try? running.sync {
            guard case .ioURing(let selector) = running.loop.selector else { return -1 }
            return selector.lentBufferCount
        }) ?? -1
    }

    /// An echo sends received bytes from the provided buffer they arrived in (lent to the send, no copy) while the
    /// peer is slow: at most half of an 8-buffer ring is lent at once, later writes are copied, every byte comes back
    /// in order, and every lent buffer comes back once the sends complete.
    @Test func sendsReadReceivedBytesInPlaceAndGiveTheBuffersBack() throws {
        let server = CompletionEchoServer()
        let (running, port) = try serve(server, receiveBuffers: (8, 4096), highWaterMark: 16 * 1024)
        defer { running.stop() }
        #expect(
            try echoRoundTrip(port: port, count: 8 << 20, stream: 3, chunk: 3000) {
                server.pauses.load(ordering: .relaxed) > 0
            })
        let (lends, most) = try running.sync { () -> (Int, Int) in
            guard case .ioURing(let selector) = running.loop.selector else { return (-1, -1) }
            return (selector.lendCount, selector.mostLentBuffers)
        }
        #expect(lends > 0 && most >= 1 && most <= 4)
        #expect(waitUntil { lentBuffers(running) == 0 })
    }

    /// Connections cut while their echo is stuck on peers that read nothing: whatever their sends read from (lent
    /// provided buffers or their own), it is given back or freed when the cancelled sends complete.
    @Test func cuttingStuckEchoesGivesEveryBufferBack() throws {
        let server = CompletionEchoServer()
        let (running, port) = try serve(server, receiveBuffers: (8, 4096), highWaterMark: 16 * 1024)
        defer { running.stop() }
        var sockets: [Int32] = []
        var writers: [Sys.Thread] = []
        defer {
            for writer in writers { writer.join() }
            for fd in sockets { Glibc.close(fd) }
        }
        for stream in 0..<4 {
            let fd = try connectedLoopbackSocket(port: port, receiveTimeout: 20)
            sockets.append(fd)
            // Sends until the server is gone (the cut), reading nothing.
            writers.append(
                try Sys.Thread {
                    var buffer = [UInt8](repeating: 0, count: 3000)
                    var offset = 0
                    while true {
                        for index in 0..<buffer.count {
                            buffer[index] = patternByte(stream: stream, offset: offset + index)
                        }
                        let result = buffer.withUnsafeBytes {
                            Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                        }
                        if result <= 0 { return }
                        offset += result
                    }
                })
        }
        // Every echo is stuck: each connection paused its reading above the high-water mark.
        #expect(waitUntil { server.pauses.load(ordering: .relaxed) >= 4 })
        try running.sync { for connection in server.connections { connection.close() } }
        for fd in sockets { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        let orphans = {
            (try? running.sync {
                guard case .ioURing(let selector) = running.loop.selector else { return -1 }
                return selector.orphanCount
            }) ?? -1
        }
        #expect(waitUntil { orphans() == 0 && lentBuffers(running) == 0 })
        #expect(server.closedWith.withLock { $0.count } == 4)
    }
}
