import Synchronization
import Sys
import TestRandom
import TestSupport
import Testing

// Loop tests over real loopback sockets: echo integrity, back-pressure, stop while busy, fd reuse, connect, EMFILE.
@testable import EventLoop

/// A client that connects, writes its random-sized pattern writes, and checks every echoed byte.
final class Tally: Sendable {
    let done = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let reasons = Mutex<[String]>([])
}

final class EchoClient: ConnectHandler, ConnectionHandler, @unchecked Sendable {
    let stream: Int
    let sizes: [Int]
    let total: Int
    var received = 0
    var corrupt = false
    let tally: Tally

    init(stream: Int, sizes: [Int], tally: Tally) {
        self.stream = stream
        self.sizes = sizes
        self.total = sizes.reduce(0, +)
        self.tally = tally
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        guard case .connected(let fd) = result, let loop = loopForTag else {
            tally.reasons.withLock { $0.append("connect \(result)") }
            tally.failed.add(1, ordering: .relaxed)
            return
        }
        guard let connection = try? Connection(loop: loop, fd: fd, handler: self) else { return }
        var offset = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        for size in sizes {
            for index in 0..<size { chunk[index] = patternByte(stream: stream, offset: offset + index) }
            chunk.withUnsafeBytes { connection.write(UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
            offset += size
        }
    }

    var loopForTag: EventLoop?

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        for (index, byte) in bytes.enumerated() where byte != patternByte(stream: stream, offset: received + index) {
            corrupt = true
        }
        received += bytes.count
        if received >= total {
            if received == total && !corrupt {
                tally.done.add(1, ordering: .relaxed)
            } else {
                tally.failed.add(1, ordering: .relaxed)
            }
            connection.close()
        }
    }

    func closed(_ connection: Connection, error: Errno?) {
        if received < total {
            tally.reasons.withLock { $0.append("closed at \(received)/\(total): \(String(describing: error))") }
            tally.failed.add(1, ordering: .relaxed)
        }
    }
}

@Suite(.serialized) struct SocketTests {
    @Test func echoTwoThousandConnectionsWithRandomWrites() throws {
        try raiseOpenFileLimit()
        let server = EchoServer()
        let group = try EventLoopGroup(loops: 2)
        var port: UInt16 = 0
        for loop in group.loops {
            let listener = try Listener(
                loop: loop, address: .loopback(port: port), backlog: 4096, handler: server)
            port = listener.address.port
        }
        try group.start()
        defer { group.shutdown() }
        let serverPort = port
        let client = try RunningLoop()
        defer { client.stop() }
        let tally = Tally()
        let done = tally
        let failed = tally
        let connections = 2000
        var generator = SplitMix64(seed: 7)
        var clients: [EchoClient] = []
        var expectedBytes = 0
        for stream in 0..<connections {
            let count = Int.random(in: 1...3, using: &generator)
            // Mostly small writes, some up to 64 KiB, so both paths (immediate and pending) run.
            let sizes = (0..<count).map { _ in
                Bool.random(using: &generator)
                    ? Int.random(in: 1...512, using: &generator) : Int.random(in: 1...65536, using: &generator)
            }
            expectedBytes += sizes.reduce(0, +)
            clients.append(EchoClient(stream: stream, sizes: sizes, tally: tally))
        }
        let all = clients
        try client.sync {
            for echo in all {
                echo.loopForTag = client.loop
                try Connector.connect(
                    loop: client.loop, to: .loopback(port: serverPort), timeout: .seconds(20), handler: echo)
            }
        }
        #expect(
            waitUntil(timeout: .seconds(60)) {
                done.done.load(ordering: .relaxed) + failed.failed.load(ordering: .relaxed) >= connections
            })
        #expect(done.done.load(ordering: .relaxed) == connections)
        #expect(failed.failed.load(ordering: .relaxed) == 0, "\(tally.reasons.withLock { $0 })")
        #expect(try client.sync { all.map(\.received).reduce(0, +) } == expectedBytes)
        #expect(server.accepted.load(ordering: .relaxed) == connections)
        #expect(waitUntil(timeout: .seconds(10)) { server.closedCount.load(ordering: .relaxed) == connections })
    }

    @Test func slowReaderBoundsPendingBytes() throws {
        let producer = Producer(total: 64 << 20)
        let server = try RunningLoop()
        defer { server.stop() }
        let port = try server.sync {
            try Listener(loop: server.loop, address: .loopback(port: 0), handler: producer).address.port
        }
        let reader = SlowReader()
        let client = try RunningLoop()
        defer { client.stop() }
        try client.sync {
            reader.loop = client.loop
            _ = try Connector.connect(
                loop: client.loop, to: .loopback(port: port), timeout: .seconds(5), handler: reader)
        }
        #expect(waitUntil(timeout: .seconds(120)) { reader.finished.load(ordering: .acquiring) })
        let (received, corrupt) = try client.sync { (reader.received, reader.corrupt) }
        #expect(received == 64 << 20)
        #expect(corrupt == false)
        // The reader's close reaches the producer as EOF (with io_uring only once the reader's loop submits the
        // removal of its poll, at the end of that loop turn).
        #expect(waitUntil(timeout: .seconds(10)) { (try? server.sync { producer.ended }) == true })
        let (falses, trues, maxPending, holds) = try server.sync {
            (producer.becameUnwritable, producer.becameWritable, producer.maxPending, producer.holdsBufferAtEnd)
        }
        #expect(falses > 0)
        #expect(trues == falses)
        // Bounded: the high-water mark plus at most one chunk written while still writable.
        #expect(maxPending <= 256 * 1024 + 65536)
        #expect(holds == false)
    }

    @Test func stopWhileBusyEndsPromptly() throws {
        let server = EchoServer()
        let loop = try RunningLoop()
        let port = try loop.sync {
            try Listener(loop: loop.loop, address: .loopback(port: 0), handler: server).address.port
        }
        let tally = Tally()
        let done = tally
        let failed = tally
        let client = try RunningLoop()
        defer { client.stop() }
        let clients = (0..<50).map {
            EchoClient(stream: $0, sizes: Array(repeating: 65536, count: 64), tally: tally)
        }
        try client.sync {
            for echo in clients {
                echo.loopForTag = client.loop
                try Connector.connect(loop: client.loop, to: .loopback(port: port), timeout: .seconds(5), handler: echo)
            }
        }
        #expect(waitUntil(timeout: .seconds(10)) { server.accepted.load(ordering: .relaxed) == 50 })
        let start = monotonicNanoseconds()
        loop.stop()
        let elapsed = monotonicNanoseconds() - start
        #expect(elapsed < 5_000_000_000)
        #expect(server.closedCount.load(ordering: .relaxed) == 50)
        #expect(loop.loop.execute {} == false)
        // The clients see the connections end instead of completing.
        #expect(waitUntil(timeout: .seconds(10)) { failed.failed.load(ordering: .relaxed) == 50 })
    }

    @Test func staleEventForReusedDescriptorIsNotDelivered() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let probe = Dummy()
        let swapper = Swapper(probe: probe)
        try running.sync {
            // Kept open until the end, so the lowest free number after the swap is the closed connection's.
            let listening = try Socket.listener(at: .loopback(port: 0)).release()
            swapper.clients.append(listening)
            let address = try listening.localAddress()
            var clients: [FileDescriptor] = []
            for _ in 0..<2 {
                let fd = try FileDescriptor.socket(.tcp, for: address)
                _ = try fd.connect(to: address)
                clients.append(fd)
            }
            var served: [FileDescriptor] = []
            while served.count < 2 {
                if let (fd, _) = try listening.accept() { served.append(fd) }
            }
            swapper.loop = running.loop
            swapper.connections = try served.map { try Connection(loop: running.loop, fd: $0, handler: swapper) }
            swapper.clients += clients
            // Both peers send, so both server sockets are ready in the same epoll_wait batch.
            for fd in clients { _ = try [UInt8(1)].withUnsafeBytes { try fd.write($0) } }
        }
        // Polled without `running.sync`: each sync makes an eventfd on this thread, which could take the number the
        // loop thread has just closed and is about to dup2 onto (that race once hung the whole test run).
        #expect(waitUntil(timeout: .seconds(5)) { swapper.done.load(ordering: .acquiring) })
        usleepMilliseconds(50)
        let (reused, readyCount, bits) = try running.sync { (swapper.reusedNumber, probe.readyCount, probe.lastEvents) }
        #expect(reused)
        #expect(readyCount == 0, "events \(bits)")
        try running.sync { swapper.clients.forEach { $0.close() } }
    }

    /// Options passed to `connect` are on the socket it hands over (set before the connect).
    @Test(arguments: [true, false])
    func connectSetsTheOptionsGiven(noDelay: Bool) throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let listening = try Socket.listener(at: .loopback(port: 0)).release()
        defer { listening.close() }
        let address = try listening.localAddress()
        let outcome = Outcome()
        try running.sync {
            _ = try Connector.connect(
                loop: running.loop, to: address, timeout: .seconds(5), handler: outcome,
                options: noDelay ? [.noDelay(true), .quickAck(false)] : [])
        }
        #expect(waitUntil(timeout: .seconds(5)) { outcome.result.withLock { $0 != nil } })
        guard case .connected(let fd) = outcome.result.withLock({ $0 }) else {
            Issue.record("not connected")
            return
        }
        defer { fd.close() }
        #expect(try fd.noDelay() == noDelay)
    }

    @Test func connectRefused() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let outcome = Outcome()
        let port = freeTCPPort()
        try running.sync {
            _ = try Connector.connect(
                loop: running.loop, to: .loopback(port: port), timeout: .seconds(5), handler: outcome)
        }
        #expect(waitUntil(timeout: .seconds(5)) { outcome.result.withLock { $0 != nil } })
        #expect(outcome.result.withLock { $0 } == .failed(.connectionRefused))
    }

    @Test func connectTimesOutWhenBacklogIsFull() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        // Backlog 0, never accepted: once the accept queue is full the kernel drops further SYNs.
        let listening = try Socket.listener(at: .loopback(port: 0), backlog: 0)
        let address = try listening.fd.localAddress()
        let outcomes = (0..<4).map { _ in Outcome() }
        let start = monotonicNanoseconds()
        try running.sync {
            for outcome in outcomes {
                try Connector.connect(loop: running.loop, to: address, timeout: .milliseconds(300), handler: outcome)
            }
        }
        #expect(waitUntil(timeout: .seconds(5)) { outcomes.allSatisfy { $0.result.withLock { $0 != nil } } })
        let results = outcomes.map { $0.result.withLock { $0! } }
        #expect(results.contains(.timedOut))
        #expect(monotonicNanoseconds() - start >= 300_000_000)
        try running.sync {
            for case .connected(let fd) in results { fd.close() }
        }
        _ = consume listening
    }

    @Test func acceptBacksOffOnEMFILE() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let server = EchoServer()
        let box = try running.sync {
            let listener = try Listener(loop: running.loop, address: .loopback(port: 0), handler: server)
            listener.injectedErrors = [.tooManyOpenFiles]
            return UncheckedBox(listener)
        }
        let listener = box.value
        let client = try FileDescriptor.socket(.tcp, for: listener.address)
        defer { client.close() }
        let start = monotonicNanoseconds()
        _ = try client.connect(to: listener.address)
        #expect(waitUntil(timeout: .seconds(2)) { server.accepted.load(ordering: .relaxed) == 1 })
        let elapsed = monotonicNanoseconds() - start
        #expect(elapsed >= 95_000_000)
        #expect(try running.sync { (box.value.backoffCount, box.value.isBackingOff) } == (1, false))
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

final class Outcome: ConnectHandler, @unchecked Sendable {
    let result = Mutex<ConnectResult?>(nil)
    func connectCompleted(_ result: ConnectResult, tag: UInt64) { self.result.withLock { $0 = result } }
}

/// Whichever of two connections reads first closes the other and immediately reuses its fd number for a probe.
final class Swapper: ConnectionHandler, @unchecked Sendable {
    let probe: Dummy
    var loop: EventLoop?
    var connections: [Connection] = []
    var clients: [FileDescriptor] = []
    var swapped = false
    var reusedNumber = false
    var pipeEnds: (FileDescriptor, FileDescriptor)?
    /// Set once the swap is over; read from the test thread.
    let done = Atomic<Bool>(false)

    init(probe: Dummy) { self.probe = probe }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard !swapped, let loop else { return }
        swapped = true
        let other = connections.first { $0 !== connection }!
        let number = other.fd.rawValue
        // The pipe is made while the number is still taken, so neither of its ends can be that number.
        guard let pipe = try? FileDescriptor.pipe() else { return }
        other.close()
        // A new file under the number just closed (as the next socket or accept would get), still in this batch.
        let reused = FileDescriptor(number)
        reusedNumber = (try? pipe.read.duplicate(onto: reused)) != nil
        pipe.read.close()
        pipeEnds = (reused, pipe.write)
        _ = try? loop.register(reused, interest: .readable, handler: probe)
        done.store(true, ordering: .releasing)
    }

    func closed(_ connection: Connection, error: Errno?) {}
}

/// Writes `total` pattern bytes in 64 KiB chunks while writable; stops on writabilityChanged(false).
final class Producer: AcceptHandler, ConnectionHandler, @unchecked Sendable {
    let total: Int
    var sent = 0
    var writable = true
    var becameUnwritable = 0
    var becameWritable = 0
    var maxPending = 0
    var holdsBufferAtEnd = true
    var ended = false
    let chunk: [UInt8]

    init(total: Int) {
        self.total = total
        chunk = (0..<(65536 + 251)).map { UInt8($0 % 251) }
    }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        guard let connection = try? Connection(loop: listener.loop, fd: fd, handler: self) else { return }
        produce(connection)
    }

    func produce(_ connection: Connection) {
        while writable && sent < total {
            let count = min(65536, total - sent)
            chunk.withUnsafeBytes {
                connection.write(UnsafeRawBufferPointer(rebasing: $0[(sent % 251)..<(sent % 251 + count)]))
            }
            sent += count
            maxPending = max(maxPending, connection.pendingByteCount)
        }
        if sent == total && writable {
            connection.shutdownWrite()
        }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {}

    func writabilityChanged(_ connection: Connection, writable: Bool) {
        self.writable = writable
        if writable {
            becameWritable += 1
            produce(connection)
        } else {
            becameUnwritable += 1
        }
    }

    func readEOF(_ connection: Connection) {
        // The reader closes after our FIN: by then every pending byte was sent and the buffer released.
        holdsBufferAtEnd = connection.holdsBuffer
        connection.close()
    }

    func closed(_ connection: Connection, error: Errno?) {
        if error != nil { holdsBufferAtEnd = connection.holdsBuffer }
        ended = true
    }
}

/// Reads slowly: pauses 1 ms after every 512 KiB, checks the pattern and order.
final class SlowReader: ConnectHandler, ConnectionHandler, TimerHandler, @unchecked Sendable {
    var loop: EventLoop?
    var connection: Connection?
    var received = 0
    var sinceLastPause = 0
    var corrupt = false
    let finished = Atomic<Bool>(false)

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        guard case .connected(let fd) = result, let loop else { return }
        connection = try? Connection(loop: loop, fd: fd, handler: self)
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        for (index, byte) in bytes.enumerated() where byte != UInt8((received + index) % 251) { corrupt = true }
        received += bytes.count
        sinceLastPause += bytes.count
        if sinceLastPause >= 512 * 1024 {
            sinceLastPause = 0
            connection.pauseReading()
            loop?.schedule(after: .milliseconds(1), handler: self)
        }
    }

    func timerFired(tag: UInt64) { connection?.resumeReading() }

    func readEOF(_ connection: Connection) {
        finished.store(true, ordering: .releasing)
        connection.close()
    }

    func closed(_ connection: Connection, error: Errno?) { self.connection = nil }
}

/// Records TCP_NODELAY and TCP_QUICKACK of each accepted socket.
final class NoDelayRecorder: AcceptHandler, @unchecked Sendable {
    let seen = Mutex<[Bool]>([])
    let quickAck = Mutex<[Bool]>([])
    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        let on = (try? fd.noDelay()) ?? false
        let quick = (try? fd.quickAck()) ?? true
        seen.withLock { $0.append(on) }
        quickAck.withLock { $0.append(quick) }
        fd.close()
    }
}

@Suite struct ListenerOptionTests {
    /// Options set once on the listener reach every accepted socket (the gateway sets none per accept): TCP_NODELAY,
    /// and TCP_QUICKACK off (accepted sockets start in delayed-ACK mode: a request's ACK waits for the answer).
    @Test(arguments: [true, false])
    func acceptedSocketsInheritTheListenersOptions(on: Bool) throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let recorder = NoDelayRecorder()
        let port = try running.sync {
            try Listener(
                loop: running.loop, address: .loopback(port: 0), noDelay: on, delayedAck: on, handler: recorder
            ).address.port
        }
        var clients: [FileDescriptor] = []
        defer { clients.forEach { $0.close() } }
        for _ in 0..<3 {
            let client = try FileDescriptor.socket(.tcp, for: .loopback(port: port))
            _ = try client.connect(to: .loopback(port: port))
            clients.append(client)
        }
        #expect(waitUntil(timeout: .seconds(10)) { recorder.quickAck.withLock { $0.count } == 3 })
        #expect(recorder.seen.withLock { $0 } == [on, on, on])
        #expect(recorder.quickAck.withLock { $0 } == [!on, !on, !on])
    }
}

/// Records the peer address of each accepted socket (and closes it).
final class PeerRecorder: AcceptHandler, @unchecked Sendable {
    let peers = Mutex<[SocketAddress?]>([])
    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        peers.withLock { $0.append(peer) }
        fd.close()
    }
}

@Suite struct ListenerAcceptTests {
    /// On either backend (io_uring: one multishot accept instead of accept4 per connection): every connection comes
    /// with its peer's address; a pause stops taking connections (they wait in the kernel's queue) and a resume takes
    /// them.
    @Test(arguments: [EventsBackend.epoll, .ioURing])
    func acceptsWithPeerAddressesAndPauses(backend: EventsBackend) throws {
        let running = try RunningLoop(loop: try EventLoop(backend: backend))
        defer { running.stop() }
        let recorder = PeerRecorder()
        let box = try running.sync {
            UncheckedBox(try Listener(loop: running.loop, address: .loopback(port: 0), handler: recorder))
        }
        let listener = box.value
        #expect(try running.sync { listener.acceptsByCompletion } == (backend == .ioURing))
        var clients: [FileDescriptor] = []
        defer { clients.forEach { $0.close() } }
        for _ in 0..<3 {
            let client = try FileDescriptor.socket(.tcp, for: listener.address)
            _ = try client.connect(to: listener.address)
            clients.append(client)
        }
        #expect(waitUntil(timeout: .seconds(5)) { recorder.peers.withLock { $0.count } == 3 })
        let expected = try clients.map { try $0.localAddress() }
        #expect(recorder.peers.withLock { $0 } == expected)
        try running.sync { listener.pause() }
        // The multishot accept's cancel has completed (nothing on epoll).
        #expect(waitUntil(timeout: .seconds(5)) { (try? running.sync { !listener.isAcceptArmed }) == true })
        let late = try FileDescriptor.socket(.tcp, for: listener.address)
        clients.append(late)
        _ = try late.connect(to: listener.address)
        // A few loop turns: an accept still armed would have delivered it by now.
        for _ in 0..<3 { try running.sync {} }
        #expect(recorder.peers.withLock { $0.count } == 3)
        try running.sync { listener.resume() }
        #expect(waitUntil(timeout: .seconds(5)) { recorder.peers.withLock { $0.count } == 4 })
        #expect(recorder.peers.withLock { $0.last } == (try late.localAddress()))
        try running.sync { listener.close() }
    }
}
