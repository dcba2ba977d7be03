// The server: configuration, listeners on one loop or one per loop of a group (SO_REUSEPORT), stop and drain.
import EventLoop
import HTTP1
import Synchronization
import Sys

/// Limits and timeouts of a server.
public struct ServerConfiguration: Sendable {
    /// Request-line, header-block and header-count limits (414 / 431), checked as bytes arrive.
    public var limits: Limits
    /// Largest request body (Content-Length or de-chunked); more is a 413 and the connection closes.
    public var maxBodyBytes: Int
    /// From the first byte of a request head to its end; a client slower than this (slowloris) gets a 408.
    /// While a body arrives, the same span is the longest allowed pause between two reads.
    public var headerTimeout: Duration
    /// How long a keep-alive connection may sit between requests before it is closed.
    public var idleTimeout: Duration
    /// After a response that closes the connection, how long unread input is drained before the socket closes
    /// (closing with unread input would send a RST that can destroy the response in flight).
    public var lingerTimeout: Duration
    /// Open connections over all loops; one more is answered 503 and closed at once.
    public var maxConnections: Int
    /// Whether responses carry `Date` (RFC 9110 §6.6.1: an origin server with a clock sends it).
    public var sendDate: Bool
    /// listen(2) backlog of each listener.
    public var backlog: Int32

    public init(
        limits: Limits = Limits(), maxBodyBytes: Int = 1 << 20, headerTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(60), lingerTimeout: Duration = .seconds(2), maxConnections: Int = 10_000,
        sendDate: Bool = true, backlog: Int32 = 1024
    ) {
        self.limits = limits
        self.maxBodyBytes = maxBodyBytes
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.lingerTimeout = lingerTimeout
        self.maxConnections = maxConnections
        self.sendDate = sendDate
        self.backlog = backlog
    }
}

/// State shared by every loop of one server.
final class ServerShared: Sendable {
    let connections = Atomic<Int>(0)
    let rejected = Atomic<Int>(0)
}

/// A small HTTP/1.1 server on event loops: routing, keep-alive, pipelining, bodies, limits and timeouts.
///
/// Handlers run on the loop thread of their connection; connections never leave the loop that accepted them.
///
/// Thread rules (like `EventLoop`'s): `listen` runs on the loop's thread or before the loop runs (set a group's
/// listeners up before `EventLoopGroup.start()`); `stop`, `closeIdle` and the counters may be called from any
/// thread.
public final class HTTPServer: Sendable {
    public let configuration: ServerConfiguration
    let router: Router
    let shared = ServerShared()
    private let contexts = Mutex<[LoopContext]>([])

    public init(router: Router, configuration: ServerConfiguration = ServerConfiguration()) {
        self.router = router
        self.configuration = configuration
    }

    /// Listens on `address` with one listener on `loop`; returns the bound address (the real port for port 0).
    /// Ignores SIGPIPE process-wide: a peer that vanished must be an error code, not the end of the process.
    @discardableResult
    public func listen(on loop: EventLoop, address: SocketAddress) throws(Errno) -> SocketAddress {
        Signals.ignoreBrokenPipe()
        let context = LoopContext(loop: loop, router: router, configuration: configuration, shared: shared)
        let listener = try Listener(
            loop: loop, address: address, backlog: configuration.backlog, reusePort: true, handler: context)
        context.listener = listener
        contexts.withLock { $0.append(context) }
        return listener.address
    }

    /// Listens on `address` with one SO_REUSEPORT listener per loop of `group` (port 0: the first listener picks
    /// the port, the others bind the same one). Call before `group.start()`. Returns the bound address.
    @discardableResult
    public func listen(on group: EventLoopGroup, address: SocketAddress) throws(Errno) -> SocketAddress {
        var address = address
        for loop in group.loops {
            address = try listen(on: loop, address: address)
        }
        return address
    }

    /// Open connections over all loops.
    public var connectionCount: Int { shared.connections.load(ordering: .relaxed) }

    /// Connections refused because `maxConnections` was reached.
    public var rejectedCount: Int { shared.rejected.load(ordering: .relaxed) }

    /// Closes every listener (new connections are refused by the kernel); open connections keep being served.
    public func stop() {
        for context in contexts.withLock({ $0 }) {
            context.onLoop { $0.closeListener() }
        }
    }

    /// For drains: closes the connections that are between requests now, and makes every later response say
    /// `Connection: close`, so the rest close once their request is answered.
    public func closeIdle() {
        for context in contexts.withLock({ $0 }) {
            context.onLoop { $0.closeIdle() }
        }
    }
}
