// A fake transport for `Exchange`: links that record what was written and how reading was left, and a transport
// whose resolutions, connects, pool and tunnel handover the test plays by hand. No sockets.
import DNS
import EventLoop
import Foundation
import GatewayConfig
import Metrics
import Resolver
import Sys
import Testing

@testable import Gateway

/// One side of an exchange (the client, or an upstream), as the exchange sees it.
///
/// `holding`: the peer reads nothing, so every byte written stays pending; crossing `highWaterMark` upwards and
/// draining back to zero report writability to the handler, as `Connection` does. `close` reports `linkClosed`
/// synchronously, as `Connection.close` does.
final class FakeLink: ExchangeLink {
    let name: String
    var highWaterMark: Int
    /// Every byte the exchange wrote, in order (whether or not the peer read it yet).
    private(set) var output: [UInt8] = []
    var unsent = 0
    var holding = false
    private(set) var readingPaused = false
    private(set) var isClosed = false
    private(set) var closingWhenFlushed = false
    private(set) var writeShut = false
    weak var handler: Exchange<FakeTransport>?

    init(_ name: String, highWaterMark: Int = 1 << 20) {
        self.name = name
        self.highWaterMark = highWaterMark
    }

    var text: String { String(decoding: output, as: UTF8.self) }
    var pendingByteCount: Int { unsent }
    var isAboveHighWater: Bool { unsent > highWaterMark }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard !isClosed, !closingWhenFlushed, !writeShut else { return }
        output.append(contentsOf: bytes)
        guard holding else { return }
        let wasAbove = isAboveHighWater
        unsent += bytes.count
        if !wasAbove && isAboveHighWater { handler?.writabilityChanged(on: self, writable: false) }
    }

    func write(_ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer) {
        write(head)
        write(body)
    }

    func pauseReading() { readingPaused = true }

    func resumeReading() {
        if !closingWhenFlushed { readingPaused = false }
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        unsent = 0
        let handler = self.handler
        self.handler = nil
        handler?.linkClosed(self, error: nil)
    }

    func closeWhenFlushed() {
        guard !isClosed else { return }
        closingWhenFlushed = true
        readingPaused = true
        if unsent == 0 { close() }
    }

    func shutdownWrite() { writeShut = true }

    /// The peer reads everything pending: writable again (as `Connection` reports it, once flushed).
    func peerReadAll() {
        let wasAbove = isAboveHighWater
        unsent = 0
        holding = false
        if closingWhenFlushed {
            close()
        } else if wasAbove {
            handler?.writabilityChanged(on: self, writable: true)
        }
    }

    /// Clears what was written so far (to look at the next response alone).
    func clearOutput() { output.removeAll() }
}

/// Records what the exchange asked of the loop; the test answers.
final class FakeTransport: ExchangeTransport {
    final class Attempt: ConnectAttempt {
        let address: SocketAddress
        let tag: UInt64
        private(set) var cancelled = false
        init(address: SocketAddress, tag: UInt64) {
            self.address = address
            self.tag = tag
        }
        func cancel() { cancelled = true }
    }

    var lookups: [(name: String, tag: UInt64)] = []
    /// Answers known at once (a cache hit); else the test calls `resolved` later.
    var cached: [String: ResolveOutcome] = [:]
    var attempts: [Attempt] = []
    /// Socket creation fails for this many connects (e.g. EMFILE), before any attempt starts.
    var failingConnects = 0
    /// Idle keep-alive links the exchange may take, per address.
    var idle: [SocketAddress: [FakeLink]] = [:]
    /// Links the exchange handed back for reuse.
    var pooled: [(link: FakeLink, address: SocketAddress)] = []
    var handover: (downstream: FakeLink, upstream: FakeLink, label: String)?
    var removals = 0

    func resolve(_ name: String, for exchange: Exchange<FakeTransport>, tag: UInt64) -> ResolveOutcome? {
        lookups.append((name, tag))
        return cached[name]
    }

    func connect(
        to address: SocketAddress, timeout: Duration, for exchange: Exchange<FakeTransport>, tag: UInt64
    )
        throws(Errno) -> Attempt
    {
        if failingConnects > 0 {
            failingConnects -= 1
            throw .tooManyOpenFiles
        }
        let attempt = Attempt(address: address, tag: tag)
        attempts.append(attempt)
        return attempt
    }

    func takeIdle(_ address: SocketAddress, for exchange: Exchange<FakeTransport>) -> FakeLink? {
        guard let link = idle[address]?.popLast() else { return nil }
        link.handler = exchange
        return link
    }

    func putIdle(
        _ link: FakeLink, address: SocketAddress, capacity: Int, deadline: UInt64,
        from exchange: Exchange<FakeTransport>
    ) {
        link.handler = nil
        // As the real pool does: never pooled paused.
        link.resumeReading()
        pooled.append((link, address))
        idle[address, default: []].append(link)
    }

    func handOver(
        _ exchange: Exchange<FakeTransport>, downstream: FakeLink, upstream: FakeLink, label: String,
        log: TunnelLogFields?
    ) {
        handover = (downstream, upstream, label)
        downstream.handler = nil
        upstream.handler = nil
        downstream.resumeReading()
        upstream.resumeReading()
    }

    func remove(_ exchange: Exchange<FakeTransport>) { removals += 1 }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
}

/// One exchange on a fake transport, with a real worker (metrics, parsers, snapshot) on a loop that never runs.
final class ExchangeHarness {
    static let config = """
        workers 1;
        listen 127.0.0.1:1;
        admin 127.0.0.1:2;
        resolver 127.0.0.1:53;
        upstream two {
            server 10.0.0.1:80;
            server 10.0.0.2:80;
            keepalive 4;
        }
        upstream named {
            server backend.test:80;
        }
        timeouts {
            client_header 2s;
            upstream_connect 1s;
            upstream_response 1s;
        }
        limits {
            body_size 1k;
        }
        route exact /local {
            return 200 "hi";
        }
        route exact /stream {
            proxy http://two;
            request_buffering off;
        }
        route exact /named {
            proxy http://named;
        }
        route regex "^/ws/(?<pod>[a-z]+)$" {
            websocket on;
            proxy http://$pod.pods.test:8080;
        }
        route exact /a {
            proxy http://two;
        }
        route regex "^/r/(?<name>[a-z]+)$" {
            proxy http://two;
            rewrite /got/$name;
        }
        route default {
            return 404;
        }

        """

    let exchange: Exchange<FakeTransport>
    let worker: Worker
    let transport = FakeTransport()
    let downstream: FakeLink
    let loop: EventLoop

    init(downstreamHighWaterMark: Int = 1 << 20) throws {
        let loop = try EventLoop()
        self.loop = loop
        guard case .success(let config) = loadConfig(text: Self.config, file: "fake.conf", environment: [:], cores: 1)
        else { throw HarnessError(description: "the harness config does not load") }
        let metrics = try GatewayMetrics(registry: Registry(shards: 2))
        let resolver = try Resolver(loop: loop, configuration: ResolverConfiguration())
        worker = Worker(
            index: 0, loop: loop, snapshot: Snapshot(config: config), shared: Shared(metrics: metrics),
            resolver: resolver)
        downstream = FakeLink("downstream", highWaterMark: downstreamHighWaterMark)
        exchange = Exchange(worker: worker, peer: .loopback(port: 40000), transport: transport)
        exchange.downstream = downstream
        downstream.handler = exchange
    }

    // The loop's timers hold the worker: its resolver must let go of the loop before the loop goes.
    deinit { worker.stop() }

    var phase: RequestPhase.Kind { exchange.phase.kind }

    /// The client sends `text` (one read).
    func send(_ text: String) {
        send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { exchange.bytesArrived(on: downstream, $0) }
    }

    /// `link` (an upstream) sends `text`.
    func reply(_ link: FakeLink, _ text: String) {
        Array(text.utf8).withUnsafeBytes { exchange.bytesArrived(on: link, $0) }
    }

    /// The last connect attempt succeeds: a new upstream link.
    @discardableResult
    func acceptConnect(highWaterMark: Int = 1 << 20) throws -> FakeLink {
        let attempt = try #require(transport.attempts.last)
        guard exchange.isCurrentConnect(tag: attempt.tag) else {
            throw HarnessError(description: "the exchange no longer waits for this connect")
        }
        let link = FakeLink("upstream \(attempt.address.hostText)", highWaterMark: highWaterMark)
        link.handler = exchange
        exchange.connectAnswered(.connected(link))
        return link
    }

    /// The last connect attempt ends without a connection.
    func failConnect(_ answer: ConnectAnswer<FakeLink>) throws {
        let attempt = try #require(transport.attempts.last)
        guard exchange.isCurrentConnect(tag: attempt.tag) else {
            throw HarnessError(description: "the exchange no longer waits for this connect")
        }
        exchange.connectAnswered(answer)
    }

    /// The last lookup ends with `outcome`.
    func answerLookup(_ outcome: ResolveOutcome) throws {
        let lookup = try #require(transport.lookups.last)
        exchange.resolved(outcome, name: lookup.name, tag: lookup.tag)
    }
}

/// How many times `needle` occurs in `text`.
func occurrences(of needle: String, in text: String) -> Int {
    text.components(separatedBy: needle).count - 1
}

/// A GET with keep-alive.
func get(_ path: String, extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: gateway.test\r\n\(extra)\r\n"
}
