// Helpers for the resolver tests: a recording handler, reply builders, a hostile server.
import DNS
import EventLoop
import Metrics
import Resolver
import Synchronization
import Sys
import TestSupport

/// Records every outcome delivered to it, from the loop thread, for the test thread to read.
final class Recorder: ResolveHandler, Sendable {
    struct Delivery: Equatable {
        let outcome: ResolveOutcome
        let name: String
        let tag: UInt64
    }

    private let deliveries = Mutex<[Delivery]>([])

    func resolved(_ outcome: ResolveOutcome, name: String, tag: UInt64) {
        deliveries.withLock { $0.append(Delivery(outcome: outcome, name: name, tag: tag)) }
    }

    var all: [Delivery] { deliveries.withLock { $0 } }

    func outcome(tag: UInt64) -> ResolveOutcome? {
        deliveries.withLock { list in list.first { $0.tag == tag }?.outcome }
    }

    func count(tag: UInt64) -> Int {
        deliveries.withLock { list in list.filter { $0.tag == tag }.count }
    }
}

/// A resolver on its own loop thread, driven from the test thread.
final class Harness: @unchecked Sendable {
    let running: RunningLoop
    let registry = Registry()
    let metrics: ResolverMetrics
    // Touched only on the loop thread (through `sync`).
    private var resolverStorage: Resolver?
    let recorder = Recorder()
    private let nextTag = Atomic<UInt64>(1)

    init(_ configuration: ResolverConfiguration) throws {
        running = try RunningLoop()
        metrics = try ResolverMetrics(registry: registry)
        let metrics = self.metrics
        let made = try running.sync {
            try Resolver(loop: self.running.loop, configuration: configuration, metrics: metrics)
        }
        resolverStorage = made
    }

    var loop: EventLoop { running.loop }

    /// Runs `body` with the resolver on the loop thread.
    func sync<T>(_ body: @escaping (Resolver) throws -> T) throws -> T {
        try running.sync { try body(self.resolverStorage!) }
    }

    /// Starts a lookup; returns its tag and the immediate outcome, if any.
    func start(_ name: String) throws -> (tag: UInt64, immediate: ResolveOutcome?) {
        let tag = nextTag.add(1, ordering: .relaxed).newValue
        let recorder = self.recorder
        let immediate = try sync { $0.resolve(name, handler: recorder, tag: tag) }
        return (tag, immediate)
    }

    /// Resolves `name` and waits for the outcome; `immediate` says whether it came from inside `resolve`.
    func resolve(
        _ name: String, timeout: Duration = .seconds(5)
    ) throws -> (
        outcome: ResolveOutcome?, immediate: Bool
    ) {
        let (tag, immediate) = try start(name)
        if let immediate { return (immediate, true) }
        _ = waitUntil(timeout: timeout) { recorder.outcome(tag: tag) != nil }
        return (recorder.outcome(tag: tag), false)
    }

    func failures(_ kind: String) -> UInt64 { metrics.failures.labels(kind).value }

    func stop() {
        _ = try? sync { $0.close() }
        running.stop()
    }
}

/// The addresses of an outcome as a set of text forms (order is rotation, not meaning).
func addressSet(_ outcome: ResolveOutcome?) -> Set<String>? {
    guard case .addresses(let addresses, _) = outcome else { return nil }
    return Set(addresses.map(\.description))
}

// MARK: Building replies

/// A DNS message written byte by byte, for replies no well-behaved server would send.
struct ReplyBuilder {
    var bytes: [UInt8] = []

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(value & 0xFFFF))
    }

    mutating func name(_ name: Name) {
        bytes.append(contentsOf: name.wire)
    }

    /// A reply to `query` with the given flags (0x8180: response, RD, RA, NOERROR), counts and its question.
    static func header(
        for query: Question, id: UInt16, flags: UInt16 = 0x8180, answers: UInt16 = 0, authority: UInt16 = 0
    ) -> ReplyBuilder {
        var builder = ReplyBuilder()
        for value in [id, flags, 1, answers, authority, 0] { builder.u16(value) }
        builder.name(query.name)
        builder.u16(query.type.rawValue)
        builder.u16(query.recordClass.rawValue)
        return builder
    }

    /// An A record owned by the question's name (a compression pointer to offset 12).
    mutating func aRecord(_ address: IPv4Address, ttl: UInt32) {
        u16(0xC00C)
        u16(RecordType.a.rawValue)
        u16(1)
        u32(ttl)
        u16(4)
        bytes.append(contentsOf: address.octets)
    }

    mutating func aaaaRecord(_ address: IPv6Address, ttl: UInt32) {
        u16(0xC00C)
        u16(RecordType.aaaa.rawValue)
        u16(1)
        u32(ttl)
        u16(16)
        bytes.append(contentsOf: address.bytes)
    }
}

/// A NOERROR reply to `query` with `addresses`.
func answer(_ query: Question, id: UInt16, _ addresses: [String], ttl: UInt32 = 60) -> [UInt8] {
    var reply = ReplyBuilder.header(for: query, id: id, answers: UInt16(addresses.count))
    for text in addresses { reply.aRecord(IPv4Address(parsing: text)!, ttl: ttl) }
    return reply.bytes
}

/// A reply with no records and the given response code in the flags (2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED).
func emptyReply(_ query: Question, id: UInt16, code: UInt16, truncated: Bool = false) -> [UInt8] {
    ReplyBuilder.header(for: query, id: id, flags: 0x8180 | code | (truncated ? 0x0200 : 0)).bytes
}

// MARK: A hostile server

/// What the test server does with one query.
enum Reply {
    /// Sends these bytes from the server's own address.
    case send([UInt8])
    /// Sends these bytes from another socket (another source port).
    case sendFromOtherPort([UInt8])
}

/// A DNS server on the test's loop, UDP and TCP on one loopback port, whose replies a test scripts. Loop thread
/// only, except `port` and the atomic counters.
final class ScriptedServer: EventHandler, AcceptHandler, ConnectionHandler, @unchecked Sendable {
    let loop: EventLoop
    let port: UInt16
    var address: SocketAddress { .loopback(port: port) }
    private let udp: FileDescriptor
    private let other: FileDescriptor
    private var token: UInt64 = 0
    private var listener: Listener?
    private var framers: [ObjectIdentifier: TCPFramer] = [:]
    /// Replies to a UDP query (question, id); the default is silence.
    var udpScript: (Question, UInt16) -> [Reply] = { _, _ in [] }
    /// Replies to a TCP query; the default is silence.
    var tcpScript: (Question, UInt16) -> [UInt8]? = { _, _ in nil }
    let udpQueries = Atomic<Int>(0)
    let tcpQueries = Atomic<Int>(0)
    /// Source ports of the UDP queries seen (loop thread only).
    var sourcePorts: [UInt16] = []
    var queryIDs: [UInt16] = []

    /// Binds UDP and TCP on one free loopback port. Call on the loop thread.
    init(loop: EventLoop) throws {
        self.loop = loop
        var attempt = 0
        while true {
            let udp = try FileDescriptor.socket(.udp, for: .loopback(port: 0))
            try udp.bind(to: .loopback(port: 0))
            let port = try udp.localAddress().port
            // The TCP port of the same number must be free too; probe it (released at the end of the scope).
            do {
                _ = try Socket.listener(at: .loopback(port: port))
                self.udp = udp
                self.port = port
                break
            } catch {
                udp.close()
            }
            attempt += 1
            if attempt > 20 { throw Errno.addressInUse }
        }
        other = try FileDescriptor.socket(.udp, for: .loopback(port: 0))
        try other.bind(to: .loopback(port: 0))
        listener = try Listener(loop: loop, address: .loopback(port: port), reusePort: false, handler: self)
        token = try loop.register(udp, interest: .readable, handler: self)
    }

    private var isClosed = false

    /// Stops serving; idempotent (closing a number twice could close a descriptor someone else got since).
    func close() {
        guard !isClosed else { return }
        isClosed = true
        loop.deregister(udp, token: token, willClose: true)
        udp.close()
        other.close()
        listener?.close()
        listener = nil
    }

    func ready(_ events: ReadyEvents) {
        let buffer = loop.readBuffer
        while let datagram = try? udp.receiveFrom(into: buffer), let from = datagram.from {
            let bytes = Array(UnsafeRawBufferPointer(rebasing: buffer[0..<datagram.count]))
            guard let query = try? decodeResponse(bytes), let question = query.questions.first else { continue }
            udpQueries.add(1, ordering: .relaxed)
            sourcePorts.append(from.port)
            queryIDs.append(query.header.id)
            for reply in udpScript(question, query.header.id) {
                switch reply {
                case .send(let bytes): _ = bytes.withUnsafeBytes { try? udp.send($0, to: from) }
                case .sendFromOtherPort(let bytes): _ = bytes.withUnsafeBytes { try? other.send($0, to: from) }
                }
            }
        }
    }

    func loopStopping() { close() }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        _ = try? Connection(loop: loop, fd: fd, handler: self)
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        var framer = framers[ObjectIdentifier(connection)] ?? TCPFramer()
        framer.append(bytes)
        while let message = framer.nextMessage() {
            guard let query = try? decodeResponse(message), let question = query.questions.first else { continue }
            tcpQueries.add(1, ordering: .relaxed)
            guard let reply = tcpScript(question, query.header.id) else { continue }
            let framed = [UInt8(reply.count >> 8), UInt8(reply.count & 0xFF)] + reply
            framed.withUnsafeBytes { connection.write($0) }
        }
        framers[ObjectIdentifier(connection)] = framer
    }

    func closed(_ connection: Connection, error: Errno?) {
        framers[ObjectIdentifier(connection)] = nil
    }
}

/// Scripted servers on one loop thread and a resolver, asking them in order, on another.
final class HostileHarness: @unchecked Sendable {
    let harness: Harness
    let servers: [ScriptedServer]

    /// Makes `count` scripted servers and a resolver asking them in order with `configure` applied.
    init(count: Int = 1, configure: (inout ResolverConfiguration) -> Void = { _ in }) throws {
        let setup = try RunningLoop()
        let made = try setup.sync { try (0..<count).map { _ in try ScriptedServer(loop: setup.loop) } }
        // The servers run on a loop thread of their own, apart from the resolver's.
        var configuration = ResolverConfiguration(
            servers: made.map(\.address), timeout: .milliseconds(300), attempts: 1)
        configure(&configuration)
        harness = try Harness(configuration)
        servers = made
        serverLoop = setup
    }

    private let serverLoop: RunningLoop

    /// Changes a server's scripts on its loop thread.
    func script(
        _ index: Int, udp: @escaping (Question, UInt16) -> [Reply],
        tcp: @escaping (Question, UInt16) -> [UInt8]? = { _, _ in nil }
    ) throws {
        let server = servers[index]
        try serverLoop.sync {
            server.udpScript = udp
            server.tcpScript = tcp
        }
    }

    func onServerLoop<T>(_ body: @escaping () throws -> T) throws -> T {
        try serverLoop.sync(body)
    }

    func stop() {
        harness.stop()
        _ = try? serverLoop.sync { for server in self.servers { server.close() } }
        serverLoop.stop()
    }
}
