// A WebSocket tunnel: bytes relayed both ways unchanged, with back-pressure and half-close.
import EventLoop
import Metrics
import Sys
import WebSocket

/// Two connections joined after a forwarded upgrade's 101 (RFC 6455 §4; the gateway does not parse frames).
///
/// Back-pressure: when one side's unsent bytes pass the loop's high-water mark, the other side stops being read
/// until they drain. Half-close: an EOF from one side becomes a FIN to the other (after its pending bytes); the
/// tunnel ends when both directions ended or either connection failed. Once a Close frame went each way (the
/// closing handshake, RFC 6455 §7.1.1), nothing either side sends means anything more: the first EOF ends the
/// tunnel, and the other peer's FIN is not waited for. An idle tunnel owns no buffer: this
/// object, two `Connection`s and the loop's shared read buffer (on io_uring, its shared ring of provided buffers)
/// are all there is.
///
/// The tunnel stays in the worker's books until both sockets are closed (not when it decides to end): a tunnel
/// flushing its last bytes is still counted, and its deadline cuts it when a peer does not take them in time.
final class Tunnel: ConnectionHandler, TimerHandler {
    // Strong and `let`: a call through it borrows the reference, where one through an `unowned(unsafe)` reference
    // retains and releases what it reaches (the byte counters, once per relayed message). The cycle with the
    // worker's tunnels ends when the tunnel leaves them (both sockets closed; the loop's stop closes them all).
    let worker: Worker
    let downstream: Connection
    let upstream: Connection
    /// The upstream host's (pod's) entry in `rtc_gateway_tunnels_by_upstream` while in the books (`Worker.add`).
    var upstreamTunnels: UpstreamTunnels?
    let peer: SocketAddress
    /// Index in `worker.tunnels`.
    var slot = -1
    /// Last time a byte moved (monotonic ns), for `tunnel_idle`: a store per read; the deadline, when it comes,
    /// is moved on from here (`Worker.armTunnel`).
    var lastActivity: UInt64
    /// The idle or closing deadline, on the loop's timer heap.
    var deadline = Deadline()
    private var ended: UInt8 = 0
    private var finished = false
    /// Sockets not closed yet; at zero the tunnel leaves the worker's books.
    private var openConnections: UInt8 = 2
    /// When `close()` started flushing (monotonic ns; 0: not closing).
    private(set) var closingSince: UInt64 = 0
    /// The access log line's fields (nil while the log is off), and how the tunnel ended.
    private var log: TunnelLogFields?
    private var endReason: TunnelEnd.Reason?
    private var initiator = TunnelEnd.Initiator.gateway
    /// Frames of the upstream → client direction, so a drain can put a Close between two of them; and of the
    /// other direction until the client's Close (for the closing handshake).
    private var serverFrames = FrameBoundaries()
    private var clientFrames = FrameBoundaries()
    /// A drain asked this tunnel to end: true once asked (the worker asks each tunnel once).
    private(set) var drainRequested = false
    /// The Close went to the client: its bytes are discarded until it closes too (or the drain window ends).
    private var closingClient = false

    /// Close 1001 "going away" (RFC 6455 §7.4.1), unmasked as a server sends it, without a reason.
    static let goingAway: [UInt8] = [0x88, 0x02, 0x03, 0xE9]

    init(
        worker: Worker, downstream: Connection, upstream: Connection, peer: SocketAddress, log: TunnelLogFields?
    ) {
        self.worker = worker
        self.log = log
        self.peer = peer
        self.downstream = downstream
        self.upstream = upstream
        lastActivity = worker.loop.now
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        lastActivity = worker.loop.now
        if connection === downstream {
            // After our Close, the client's bytes (its Close reply, late frames) have nowhere to go.
            if closingClient { return }
            if !clientFrames.closeSeen { _ = clientFrames.advance(bytes) }
            log?.bytesIn &+= UInt64(bytes.count)
            // The client's last bytes before its FIN: held for the FIN that `readEOF` sends next, one segment.
            if connection.endOfInputFollows { upstream.writeBeforeEnd(bytes) } else { upstream.write(bytes) }
            worker.metrics.bytesUpstream.increment(ownShard: worker.index, by: UInt64(bytes.count))
        } else if drainRequested {
            // Relay up to the next frame boundary, then the Close; the rest is dropped.
            guard let cut = serverFrames.advance(bytes, stopAtBoundary: true) else {
                downstream.write(bytes)
                return
            }
            downstream.write(UnsafeRawBufferPointer(rebasing: bytes[0..<cut]))
            sendGoingAway()
        } else {
            _ = serverFrames.advance(bytes)
            log?.bytesOut &+= UInt64(bytes.count)
            if connection.endOfInputFollows { downstream.writeBeforeEnd(bytes) } else { downstream.write(bytes) }
            worker.metrics.bytesDownstream.increment(ownShard: worker.index, by: UInt64(bytes.count))
        }
    }

    /// Drain: ends the tunnel with a WebSocket Close 1001 to the client at the next frame boundary (at once when
    /// the upstream is between frames), instead of cutting TCP under a half-sent frame (SYSTEM §2.3).
    func drainClose() {
        guard !finished, !drainRequested else { return }
        drainRequested = true
        if serverFrames.isAtBoundary { sendGoingAway() }
    }

    private func sendGoingAway() {
        guard !closingClient, !finished else { return }
        closingClient = true
        noteEnd(.drain, by: .gateway)
        // The upstream sees the client leave (EOF); the client gets the Close, then our FIN, and closes its side.
        upstream.close()
        Self.goingAway.withUnsafeBytes { downstream.write($0) }
        downstream.shutdownWrite()
        downstream.resumeReading()
    }

    func writabilityChanged(_ connection: Connection, writable: Bool) {
        // `connection` has too many unsent bytes: stop reading the side that feeds it.
        let source = connection === downstream ? upstream : downstream
        if writable { source.resumeReading() } else { source.pauseReading() }
    }

    func readEOF(_ connection: Connection) {
        if closingClient {
            if connection === downstream { cut() }
            return
        }
        let isDownstream = connection === downstream
        noteEnd(.closed, by: isDownstream ? .client : .upstream)
        ended |= isDownstream ? 1 : 2
        // Both directions ended, or the closing handshake is over: closing sends the last FIN (a shutdown first
        // would be one more system call).
        if ended == 3 || (serverFrames.closeSeen && clientFrames.closeSeen) {
            close()
        } else {
            (isDownstream ? upstream : downstream).shutdownWrite()
        }
    }

    func closed(_ connection: Connection, error: Errno?) {
        openConnections -= 1
        if error == .noBufferSpace {
            worker.metrics.cut.labels("unsent_limit").increment(shard: worker.index)
            noteEnd(.unsentLimit, by: .gateway)
        } else if error != nil {
            noteEnd(.error, by: connection === downstream ? .client : .upstream)
        } else {
            noteEnd(.closed, by: connection === downstream ? .client : .upstream)
        }
        if openConnections == 0 {
            leaveBooks()
            return
        }
        // The upstream closed by `sendGoingAway` while the client still reads the Close: not the end yet.
        if closingClient && connection === upstream { return }
        // Ending already (`close`, `cut`): the other socket flushes its last bytes and closes on its own (the sweep
        // cuts it if its peer does not take them in time). Cutting it here would drop those bytes and take the tunnel
        // off the books while a socket is still open.
        if finished { return }
        cut()
    }

    /// Ends the tunnel: both connections close once their pending bytes are sent (the closing deadline cuts them if
    /// the peer does not take them in time).
    func close() {
        guard !finished else { return }
        finished = true
        closingSince = worker.loop.now
        worker.armTunnel(self)
        downstream.closeWhenFlushed()
        upstream.closeWhenFlushed()
    }

    func timerFired(tag: UInt64) { worker.tunnelDeadlinePassed(self) }

    /// Closes at once, dropping unsent bytes (idle timeout, drain, a failed side).
    func cut(reason: TunnelEnd.Reason? = nil) {
        if let reason { noteEnd(reason, by: .gateway) }
        finished = true
        downstream.close()
        upstream.close()
    }

    /// The first cause seen is the one logged.
    private func noteEnd(_ reason: TunnelEnd.Reason, by side: TunnelEnd.Initiator) {
        guard endReason == nil else { return }
        endReason = reason
        initiator = side
    }

    private func leaveBooks() {
        finished = true
        if let log {
            worker.logTunnel(
                peer: peer, fields: log, durationNanoseconds: worker.loop.now &- log.startedAt,
                reason: endReason ?? .closed, initiator: initiator)
        }
        worker.remove(self)
    }
}

/// The event loop's listener (GatewayConfig has a `Listener` too).
typealias LoopListener = Listener
