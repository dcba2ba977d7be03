// The seam between an exchange's phase logic and the loop: its connections, and how upstreams are reached.
import EventLoop
import Resolver
import Sys

/// What an exchange needs from one of its connections (the downstream, or an upstream). `Connection` in the
/// gateway; a recording fake in tests, so the phase logic runs without sockets.
protocol ExchangeLink: AnyObject {
    /// Bytes accepted by `write` but not sent yet.
    var pendingByteCount: Int { get }
    /// Unsent bytes are above the high-water mark now (a level).
    var isAboveHighWater: Bool { get }
    var isClosed: Bool { get }
    func write(_ bytes: UnsafeRawBufferPointer)
    /// `head` then `body`, in one system call where the link can.
    func write(_ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer)
    func pauseReading()
    func resumeReading()
    /// Closes now, dropping unsent bytes; the exchange hears of it through `linkClosed` when it is the handler.
    func close()
    /// Closes once every unsent byte is sent.
    func closeWhenFlushed()
    /// FIN after the unsent bytes.
    func shutdownWrite()
}

/// A connect attempt in flight, cancelled when the exchange gives up on it.
protocol ConnectAttempt: AnyObject {
    func cancel()
}

/// How a connect attempt ended, as the exchange sees it (the socket already wrapped in a link).
enum ConnectAnswer<Link: ExchangeLink> {
    case connected(Link)
    case refused
    case timedOut
}

/// How an exchange reaches upstreams and leaves the worker. A generic parameter of `Exchange`, not an existential:
/// the gateway's `LoopTransport` is an empty value whose calls are specialized into the exchange (no boxing, no
/// allocation on the per-request path); tests give a fake that records what was asked and answers when told.
protocol ExchangeTransport {
    associatedtype Link: ExchangeLink
    associatedtype Attempt: ConnectAttempt

    /// Starts resolving `name`; an answer known now is returned, else `exchange.resolved` is called later with `tag`.
    func resolve(_ name: String, for exchange: Exchange<Self>, tag: UInt64) -> ResolveOutcome?
    /// Starts a connect; the answer comes later through `exchange.connectAnswered` (if `exchange.isCurrentConnect`).
    func connect(
        to address: SocketAddress, timeout: Duration, for exchange: Exchange<Self>, tag: UInt64
    ) throws(Errno)
        -> Attempt
    /// An idle keep-alive connection to `address`, now delivering its events to `exchange`.
    func takeIdle(_ address: SocketAddress, for exchange: Exchange<Self>) -> Link?
    /// Keeps `link` for another request to `address` (or closes it when `capacity` idle ones are kept).
    func putIdle(
        _ link: consuming Link, address: SocketAddress, capacity: Int, deadline: UInt64, from exchange: Exchange<Self>)
    /// The upgrade succeeded: both links become a tunnel, and the exchange leaves the worker's books.
    func handOver(_ exchange: Exchange<Self>, downstream: Link, upstream: Link, label: String, log: TunnelLogFields?)
    /// The downstream connection closed: the exchange leaves the worker's books.
    func remove(_ exchange: Exchange<Self>)
}

extension Connection: ExchangeLink {}
extension Connector: ConnectAttempt {}

/// The gateway's exchange: real connections on the worker's loop.
typealias LoopExchange = Exchange<LoopTransport>

/// The real transport: the worker's resolver, connector, keep-alive pool and tunnels. Holds nothing.
struct LoopTransport: ExchangeTransport {
    func resolve(_ name: String, for exchange: LoopExchange, tag: UInt64) -> ResolveOutcome? {
        exchange.worker.resolver.resolve(name, handler: exchange, tag: tag)
    }

    func connect(
        to address: SocketAddress, timeout: Duration, for exchange: LoopExchange, tag: UInt64
    ) throws(Errno)
        -> Connector
    {
        try Connector.connect(
            loop: exchange.worker.loop, to: address, timeout: timeout, handler: exchange, tag: tag,
            options: Self.upstreamOptions)
    }

    /// Set on every upstream socket before it connects. TCP_NODELAY: a head and then its body are two writes, and
    /// without it the body would wait for the head's ACK. TCP_QUICKACK off: the handshake's last ACK waits for the
    /// request head and goes out with it (one segment less per new upstream connection).
    static let upstreamOptions: [SocketOption] = [.noDelay(true), .quickAck(false)]

    func takeIdle(_ address: SocketAddress, for exchange: LoopExchange) -> Connection? {
        guard let pooled = exchange.worker.withPool({ $0.take(address) }) else { return nil }
        // Lent: the pool stays its owner, and gets it back in `putIdle` (the exchange puts or closes it first).
        pooled.lend(to: exchange)
        return pooled
    }

    func putIdle(
        _ link: consuming Connection, address: SocketAddress, capacity: Int, deadline: UInt64,
        from exchange: LoopExchange
    ) {
        // The pool resumes reading: a connection is never pooled paused. Moved all the way into the pool's bucket.
        var moving = Optional(link)
        exchange.worker.withPool { $0.put(moving.take()!, address: address, capacity: capacity, deadline: deadline) }
    }

    func handOver(
        _ exchange: LoopExchange, downstream: Connection, upstream: Connection, label: String, log: TunnelLogFields?
    ) {
        let worker = exchange.worker
        let tunnel = Tunnel(worker: worker, downstream: downstream, upstream: upstream, peer: exchange.peer, log: log)
        // Out of this worker's exchanges and into its tunnels in one step: the sockets stay open throughout.
        worker.remove(exchange)
        worker.add(tunnel, upstream: label)
        downstream.setHandler(tunnel)
        upstream.setHandler(tunnel)
        downstream.resumeReading()
        upstream.resumeReading()
        // On io_uring, a tunnel does its I/O by completion (multishot receive into the loop's buffers, sends submitted
        // with the loop's wait): no readiness event, read(2) or send(2) per relayed message. Nothing changes on epoll.
        downstream.switchToCompletionIO()
        upstream.switchToCompletionIO()
    }

    func remove(_ exchange: LoopExchange) {
        exchange.worker.remove(exchange)
    }
}

/// The loop delivers connection, connect and DNS events to the gateway's exchanges; each is handed to the phase
/// logic (which knows its links only as `ExchangeLink`).
extension Exchange: ConnectionHandler, ConnectHandler, ResolveHandler where Transport == LoopTransport {
    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        bytesArrived(on: connection, bytes)
    }

    func readEOF(_ connection: Connection) {
        eofArrived(on: connection)
    }

    func writabilityChanged(_ connection: Connection, writable: Bool) {
        writabilityChanged(on: connection, writable: writable)
    }

    func closed(_ connection: Connection, error: Errno?) {
        linkClosed(connection, error: error)
    }

    func loopStopping() {}

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        connected(result, tag: tag, connector: nil)
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector) {
        connected(result, tag: tag, connector: connector)
    }

    private func connected(_ result: ConnectResult, tag: UInt64, connector: Connector?) {
        guard isCurrentConnect(tag: tag) else {
            if case .connected(let fd) = result {
                connector?.releaseRegistration()
                fd.close()
            }
            return
        }
        switch result {
        case .connected(let fd):
            // Keep the connector's epoll registration (no deregister + register on the upgrade path).
            if let adopted = connector?.connection(handler: self) {
                connectAnswered(.connected(adopted))
            } else if let connection = try? Connection(loop: worker.loop, fd: fd, handler: self) {
                connectAnswered(.connected(connection))
            } else {
                connectAnswered(.refused)
            }
        case .failed:
            connectAnswered(.refused)
        case .timedOut:
            connectAnswered(.timedOut)
        }
    }
}
