// A tunnel's place in its worker's books, on a running loop with socket pairs: it leaves only when both sockets closed.
import EventLoop
import Foundation
import GatewayConfig
import Glibc
import Metrics
import Resolver
import Sys
import TestSupport
import Testing

@testable import Gateway

@Suite(.serialized) struct TunnelBooksTests {
    /// Holds connections until the tunnel takes them.
    final class Placeholder: ConnectionHandler {
        func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {}
        func closed(_ connection: Connection, error: Errno?) {}
    }

    /// A connected pair: the gateway's end (nonblocking, for the loop) and the test's end (blocking, 5 s timeout).
    static func socketPair() throws -> (gateway: FileDescriptor, peer: Int32) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else { throw HarnessError(description: "socketpair failed") }
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (FileDescriptor(fds[0]), fds[1])
    }

    /// Reads `fd` until EOF (or an error / the receive timeout); returns the byte count.
    /// read(2) on the test's blocking end, again after EINTR: with a receive timeout set, Linux ends a read that a
    /// signal interrupts with EINTR even under SA_RESTART (socket(7)), and other tests' child processes signal this
    /// process.
    static func receive(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 || errno != EINTR { return count }
        }
    }

    static func readToEnd(_ fd: Int32) -> Int {
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { receive(fd, $0) }
            if count <= 0 { return total }
            total += count
        }
    }

    /// A worker on `loop` (a loop thread call) with one tunnel between the two gateway ends, in its books.
    static func tunnel(
        on loop: EventLoop, client: FileDescriptor, server: FileDescriptor, completionIO: Bool = false
    ) throws -> (Worker, Tunnel) {
        guard
            case .success(let config) = loadConfig(
                text: ExchangeHarness.config, file: "fake.conf", environment: [:], cores: 1)
        else { throw HarnessError(description: "the harness config does not load") }
        let metrics = try GatewayMetrics(registry: Registry(shards: 2))
        let worker = Worker(
            index: 0, loop: loop, snapshot: Snapshot(config: config), shared: Shared(metrics: metrics),
            resolver: try Resolver(loop: loop, configuration: ResolverConfiguration()))
        let placeholder = Placeholder()
        let downstream = try Connection(loop: loop, fd: client, handler: placeholder)
        let upstream = try Connection(loop: loop, fd: server, handler: placeholder)
        let tunnel = Tunnel(
            worker: worker, downstream: downstream, upstream: upstream, peer: .loopback(port: 1), log: nil)
        worker.add(tunnel, upstream: "pod")
        downstream.setHandler(tunnel)
        upstream.setHandler(tunnel)
        // As the gateway's hand-over does (on an epoll loop this changes nothing).
        if completionIO {
            _ = downstream.switchToCompletionIO()
            _ = upstream.switchToCompletionIO()
        }
        return (worker, tunnel)
    }

    typealias Pair = (gateway: FileDescriptor, peer: Int32)

    /// A running loop whose worker has one tunnel between the gateway's ends of two fresh pairs (`makePair`: socket
    /// pairs, or TCP over loopback); `body` gets the loop, the worker, the tunnel and both pairs, which are all stopped
    /// or closed after it.
    static func withTunnel(
        _ makePair: () throws -> Pair = socketPair, completionIO: Bool = false,
        _ body: (RunningLoop, Worker, Tunnel, Pair, Pair) throws -> Void
    ) throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let client = try makePair()
        let server = try makePair()
        defer {
            close(client.peer)
            close(server.peer)
        }
        let held = try running.sync { () -> Unchecked<(Worker, Tunnel)> in
            let (worker, tunnel) = try Self.tunnel(
                on: running.loop, client: client.gateway, server: server.gateway, completionIO: completionIO)
            return Unchecked((worker, tunnel))
        }
        let (worker, tunnel) = held.value
        defer { _ = try? running.sync { worker.stop() } }
        try body(running, worker, tunnel, client, server)
    }

    /// Polls `condition` (on the loop) for up to 20 s (a bound for a loaded machine: it returns as soon as it holds).
    static func waitUntil(_ running: RunningLoop, _ condition: @escaping () -> Bool) throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try running.sync(condition) { return true }
            usleep(10_000)
        }
        return try running.sync(condition)
    }

    /// Half-close: the client's FIN reaches the upstream and the tunnel stays (both sockets open, the other
    /// direction still relays); the upstream's FIN ends it, and only then does it leave the books.
    @Test func halfClosedTunnelStaysInTheBooksUntilBothDirectionsEnd() throws {
        try Self.withTunnel { running, worker, tunnel, client, server in
            #expect(shutdown(client.peer, Int32(SHUT_WR)) == 0)
            // The upstream sees the client's FIN, relayed.
            #expect(Self.readToEnd(server.peer) == 0)
            let halfOpen = try Self.books(running, worker, tunnel)
            #expect(halfOpen.tunnels == 1 && !halfOpen.downstreamClosed && !halfOpen.upstreamClosed)
            // The other direction still works.
            let bye = Array("bye".utf8)
            #expect(bye.withUnsafeBytes { write(server.peer, $0.baseAddress, $0.count) } == 3)
            var buffer = [UInt8](repeating: 0, count: 16)
            let count = buffer.withUnsafeMutableBytes { Self.receive(client.peer, $0) }
            #expect(count == 3)
            let tunnelCount = try running.sync { worker.tunnels.count }
            #expect(tunnelCount == 1)
            #expect(shutdown(server.peer, Int32(SHUT_WR)) == 0)
            #expect(Self.readToEnd(client.peer) == 0)
            try Self.expectLeftTheBooksWithBothClosed(running, worker, tunnel)
        }
    }

    /// The client's Close (masked, code 1000) and the upstream's (unmasked, code 1000): RFC 6455 §5.5.1.
    static let clientClose: [UInt8] = [0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2]
    static let serverClose: [UInt8] = [0x88, 0x02, 0x03, 0xE8]

    /// Writes all of `bytes` to `fd` and reads exactly `count` bytes from `other` (blocking, with the timeout).
    static func pass(_ bytes: [UInt8], from fd: Int32, to other: Int32) -> [UInt8] {
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { return [] }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while received.count < bytes.count {
            let count = buffer.withUnsafeMutableBytes {
                receive(
                    other, UnsafeMutableRawBufferPointer(rebasing: $0[..<min($0.count, bytes.count - received.count)]))
            }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return received
    }

    /// The closing handshake went both ways (a data frame, then the client's Close and the upstream's): the
    /// upstream's FIN ends the tunnel, both sockets close, and it leaves the books while the client has not closed.
    /// Before, the FIN became a half-close and the tunnel waited for the client's.
    @Test func closingHandshakeBothWaysEndsTheTunnelAtTheFirstEOF() throws {
        try Self.withTunnel { running, worker, tunnel, client, server in
            // A masked text frame whose payload looks like Close headers, then the Closes.
            let text: [UInt8] = [0x81, 0x84, 0, 0, 0, 0, 0x88, 0x02, 0x88, 0x00]
            #expect(Self.pass(text, from: client.peer, to: server.peer) == text)
            #expect(Self.pass(Self.clientClose, from: client.peer, to: server.peer) == Self.clientClose)
            #expect(Self.pass(Self.serverClose, from: server.peer, to: client.peer) == Self.serverClose)
            #expect(shutdown(server.peer, Int32(SHUT_WR)) == 0)
            #expect(Self.readToEnd(client.peer) == 0)
            try Self.expectLeftTheBooksWithBothClosed(running, worker, tunnel)
            // The upstream got the gateway's FIN too.
            #expect(Self.readToEnd(server.peer) == 0)
        }
    }

    /// A Close one way only (the upstream's, then its FIN; the client has not answered): still a half-close, the
    /// client's Close reply reaches the upstream, and the tunnel ends with the client's FIN.
    @Test func aCloseOneWayOnlyStaysAHalfClose() throws {
        try Self.withTunnel { running, worker, tunnel, client, server in
            #expect(Self.pass(Self.serverClose, from: server.peer, to: client.peer) == Self.serverClose)
            #expect(shutdown(server.peer, Int32(SHUT_WR)) == 0)
            #expect(Self.readToEnd(client.peer) == 0)
            let halfOpen = try Self.books(running, worker, tunnel)
            #expect(halfOpen.tunnels == 1 && !halfOpen.downstreamClosed && !halfOpen.upstreamClosed)
            #expect(Self.pass(Self.clientClose, from: client.peer, to: server.peer) == Self.clientClose)
            #expect(shutdown(client.peer, Int32(SHUT_WR)) == 0)
            #expect(Self.readToEnd(server.peer) == 0)
            let emptied = try Self.waitUntil(running) { worker.tunnels.isEmpty }
            #expect(emptied)
        }
    }

    /// A connected TCP pair over loopback: the gateway's end (nonblocking, for the loop) and the test's end
    /// (blocking, 5 s receive timeout).
    static func tcpPair() throws -> (gateway: FileDescriptor, peer: Int32) {
        let listening = try Socket.listener(at: .loopback(port: 0)).release()
        defer { listening.close() }
        let address = try listening.localAddress()
        let peer = try FileDescriptor.socket(.tcp, for: address)
        _ = try peer.connect(to: address)
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let (accepted, _) = try listening.accept() {
                let fd = peer.rawValue
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
                var timeout = timeval(tv_sec: 5, tv_usec: 0)
                _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                return (accepted, fd)
            }
            usleep(1000)
        }
        throw HarnessError(description: "no connection to accept")
    }

    /// Segments `fd` received so far: `tcpi_segs_in` of Linux's `struct tcp_info` (linux/tcp.h; glibc's copy of
    /// the struct stops before it), a 32-bit counter at byte 140.
    static func segmentsIn(_ fd: Int32) -> UInt32 {
        var info = [UInt8](repeating: 0, count: 256)
        var length = socklen_t(info.count)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0, length >= 144 else { return 0 }
        return info.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 140, as: UInt32.self) }
    }

    /// The upstream's last bytes and its FIN arrive together: the client gets both in one TCP segment (the bytes are
    /// written with MSG_MORE and the FIN joins them), not the bytes and then a segment with the FIN alone. With
    /// completion I/O (on an io_uring loop) the bytes and the end of file are two receipts of one wait.
    @Test(arguments: [false, true])
    func lastBytesAndTheirFINReachTheClientInOneSegment(completionIO: Bool) throws {
        try Self.withTunnel(Self.tcpPair, completionIO: completionIO) { running, worker, tunnel, client, server in
            let switched = try running.sync { tunnel.downstream.usesCompletionIO && tunnel.upstream.usesCompletionIO }
            #expect(switched == (completionIO && running.loop.backend == .ioURing))
            // The tunnel relays (and the client has nothing unacknowledged left to be answered).
            #expect(Self.pass(Array("hello".utf8), from: server.peer, to: client.peer) == Array("hello".utf8))
            let before = Self.segmentsIn(client.peer)
            #expect(before > 0)
            // Written while the loop runs this closure: the bytes and the FIN are both there when it next looks.
            try running.sync {
                let bye = Array("bye".utf8)
                #expect(bye.withUnsafeBytes { write(server.peer, $0.baseAddress, $0.count) } == 3)
                #expect(shutdown(server.peer, Int32(SHUT_WR)) == 0)
            }
            var buffer = [UInt8](repeating: 0, count: 16)
            let count = buffer.withUnsafeMutableBytes { Self.receive(client.peer, $0) }
            #expect(count == 3)
            #expect(Self.readToEnd(client.peer) == 0)
            #expect(Self.segmentsIn(client.peer) - before == 1)
        }
    }

    /// The tunnel ended: it leaves the worker's books, and both its sockets are closed.
    static func expectLeftTheBooksWithBothClosed(_ running: RunningLoop, _ worker: Worker, _ tunnel: Tunnel) throws {
        let emptied = try waitUntil(running) { worker.tunnels.isEmpty }
        #expect(emptied)
        let bothClosed = try running.sync { tunnel.downstream.isClosed && tunnel.upstream.isClosed }
        #expect(bothClosed)
    }

    struct Books {
        let tunnels: Int
        let downstreamClosed: Bool
        let upstreamClosed: Bool
    }

    /// The worker's tunnel count and which of the tunnel's sockets are closed, read on the loop.
    static func books(_ running: RunningLoop, _ worker: Worker, _ tunnel: Tunnel) throws -> Books {
        try running.sync {
            Books(
                tunnels: worker.tunnels.count, downstreamClosed: tunnel.downstream.isClosed,
                upstreamClosed: tunnel.upstream.isClosed)
        }
    }

    /// Reproduction: "a closed tunnel leaves the worker's books only when both its sockets are closed". The tunnel is
    /// closed while the client has not read 1 MiB relayed to it: the upstream socket closes at once (nothing pending),
    /// the downstream one must stay open to flush, and the tunnel must stay counted until it has closed too.
    @Test func closedTunnelLeavesTheBooksOnlyWhenBothSocketsClosed() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let client = try Self.socketPair()
        let server = try Self.socketPair()
        defer {
            close(client.peer)
            close(server.peer)
        }
        let relayed = 1 << 20
        let held = try running.sync { () -> Unchecked<(Worker, Tunnel)> in
            let (worker, tunnel) = try Self.tunnel(on: running.loop, client: client.gateway, server: server.gateway)
            // The upstream's last bytes, more than the socket takes: the rest stays pending in the gateway.
            [UInt8](repeating: 0x61, count: relayed).withUnsafeBytes { tunnel.downstream.write($0) }
            tunnel.close()
            return Unchecked((worker, tunnel))
        }
        let (worker, tunnel) = held.value
        // The loop's timers hold the worker: its resolver must let go of the loop before the loop goes.
        defer { _ = try? running.sync { worker.stop() } }
        let books = {
            try running.sync {
                Books(
                    tunnels: worker.tunnels.count, downstreamClosed: tunnel.downstream.isClosed,
                    upstreamClosed: tunnel.upstream.isClosed)
            }
        }
        let closing = try books()
        #expect(closing.upstreamClosed, "nothing was pending upstream: it closes at once")
        #expect(!closing.downstreamClosed, "the downstream still flushes its pending bytes")
        #expect(closing.tunnels == 1, "a tunnel with an open socket is still in the books")
        // The client reads everything, then sees the close.
        #expect(Self.readToEnd(client.peer) == relayed)
        var after = try books()
        let deadline = ContinuousClock.now + .seconds(2)
        while after.tunnels != 0 && ContinuousClock.now < deadline {
            usleep(10_000)
            after = try books()
        }
        #expect(after.downstreamClosed)
        #expect(after.tunnels == 0, "both sockets closed: the tunnel left the books")
    }
}
