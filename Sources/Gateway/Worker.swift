// One loop's share of the gateway: its listeners, exchanges, tunnels, upstream pool, resolver and scratch space.
import EventLoop
import Forwarding
import HTTP1
import Metrics
import Resolver
import Routing
import Synchronization
import Sys

/// Everything one event loop owns. Used only on that loop's thread; connections never move between workers.
final class Worker: AcceptHandler, TimerHandler {
    let index: Int
    // Invariant: a worker lives exactly as long as its loop runs.
    unowned(unsafe) let loop: EventLoop
    let shared: Shared
    var metrics: GatewayMetrics { shared.metrics }

    private(set) var snapshot: Snapshot
    private var groups: [UpstreamGroup] = []
    private var requestCounters: [[Counter]] = []
    private var unroutedCounters: [Counter] = []
    let matcher: Matcher
    /// The exchange whose request `matcher` matched last (its captures are the ones the matcher holds).
    var matcherHolder: ObjectIdentifier?
    var requestIDs = RequestIDGenerator()
    /// Reused for every head the worker writes (one at a time: the loop is single-threaded).
    var scratch: [UInt8] = []
    /// Raw memory the proxied heads are written into when their upper bound fits (else `scratch`); owned by the
    /// worker for its whole life and used by one head at a time.
    let headScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 8)
    /// The client address text of the exchange being forwarded.
    var clientAddress: [UInt8] = []
    let pool = UpstreamPool()

    /// Calls `body` with `matcher`, not retained around the call (passed from the property, it was retained and
    /// released once per use); the worker holds it for its whole life.
    @inline(__always)
    func withMatcher<Result>(_ body: (Matcher) -> Result) -> Result {
        Unmanaged.passUnretained(matcher)._withUnsafeGuaranteedRef(body)
    }

    /// Calls `body` with `pool`, not retained around the call (a call through the property retained and released
    /// it once per request); the worker holds the pool for its whole life.
    @inline(__always)
    func withPool<Result>(_ body: (UpstreamPool) -> Result) -> Result {
        Unmanaged.passUnretained(pool)._withUnsafeGuaranteedRef(body)
    }
    /// Calls `body` with the request-duration histogram, not retained around the call; the shared metrics hold it
    /// for the process's whole life.
    @inline(__always)
    func withRequestDuration<Result>(_ body: (Histogram) -> Result) -> Result {
        Unmanaged.passUnretained(shared.metrics.requestDuration)._withUnsafeGuaranteedRef(body)
    }
    let resolver: Resolver
    private var exchanges: [LoopExchange] = []
    private(set) var tunnels: [Tunnel] = []
    private var listeners: [LoopListener] = []
    private(set) var draining = false
    private var drainDeadline: UInt64 = 0

    // Per-snapshot values in the units the engine uses.
    private(set) var headLimits = HTTP1.Limits()
    private(set) var clientHeaderTimeout: UInt64 = 0
    private(set) var clientKeepaliveTimeout: UInt64 = 0
    private(set) var upstreamResponseTimeout: UInt64 = 0
    private(set) var tunnelIdleTimeout: UInt64 = 0
    /// Keep-alive pool size for dynamic (per-pod) upstreams, and how long their idle connections are kept.
    let dynamicKeepalive = 4
    static let dynamicKeepaliveTimeout: UInt64 = 60_000_000_000

    static let sweepInterval: Duration = .milliseconds(100)

    /// The access log's writer (nil: off), and this worker's buffer of lines not handed to it yet.
    let accessLog: AccessLogWriter?
    private var logBuffer: [UInt8] = []
    private var logClock = LogClock()

    init(
        index: Int, loop: EventLoop, snapshot: Snapshot, shared: Shared, resolver: Resolver,
        accessLog: AccessLogWriter? = nil
    ) {
        self.index = index
        self.accessLog = accessLog
        if accessLog != nil {
            logBuffer.reserveCapacity(AccessLogWriter.bufferCapacity)
            logClock.synchronize(monotonic: loop.now)
        }
        self.loop = loop
        self.shared = shared
        self.snapshot = snapshot
        self.resolver = resolver
        matcher = Matcher(captureCapacity: snapshot.captureCapacity)
        scratch.reserveCapacity(8192)
        clientAddress.reserveCapacity(64)
        install(snapshot)
        loop.schedule(after: Self.sweepInterval, handler: self)
    }

    deinit { headScratch.deallocate() }

    /// Binds this loop's listeners (SO_REUSEPORT: every worker binds the same addresses).
    func listen(on addresses: [SocketAddress]) throws(Errno) -> [SocketAddress] {
        var bound: [SocketAddress] = []
        for address in addresses {
            // Small writes (a response head, a WebSocket frame) go out at once: Nagle's algorithm would hold one
            // back until the peer ACKs the previous one, which a delayed ACK can stall for 40 ms (RFC 1122
            // §4.2.3.2). Set on the listener, TCP_NODELAY comes with every accepted socket.
            let listener = try LoopListener(
                loop: loop, address: address, backlog: 4096, noDelay: true, delayedAck: true, handler: self)
            listeners.append(listener)
            bound.append(listener.address)
        }
        return bound
    }

    /// Switches new requests to `snapshot` (requests in flight keep theirs; tunnels are untouched).
    func install(_ snapshot: Snapshot) {
        let previous = groups
        let previousSnapshot = self.snapshot
        self.snapshot = snapshot
        groups = snapshot.groups.map { plan in
            // Keep resolved addresses of an unchanged upstream across a reload.
            if let index = previousSnapshot.groups.firstIndex(where: { $0.name == plan.name }),
                index < previous.count, previous[index].plan.servers == plan.servers
            {
                return previous[index].adopting(plan)
            }
            return UpstreamGroup(plan: plan)
        }
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"]
        requestCounters = snapshot.routeLabels.map { label in
            classes.map { metrics.requests.labels(label, $0) }
        }
        unroutedCounters = classes.map { metrics.requests.labels("none", $0) }
        let config = snapshot.config
        headLimits = HTTP1.Limits(
            maxRequestLine: config.limits.uriLength + 64, maxHeaderBytes: config.limits.headerSize,
            maxHeaderCount: config.limits.headerCount)
        clientHeaderTimeout = nanoseconds(config.timeouts.clientHeader)
        clientKeepaliveTimeout = nanoseconds(config.timeouts.clientKeepalive)
        upstreamResponseTimeout = nanoseconds(config.timeouts.upstreamResponse)
        let previousIdle = tunnelIdleTimeout
        tunnelIdleTimeout = nanoseconds(config.timeouts.tunnelIdle)
        // Open tunnels take the new idle timeout (it applies to them: it is read when their deadline comes).
        if tunnelIdleTimeout != previousIdle {
            for tunnel in tunnels { armTunnel(tunnel) }
        }
    }

    /// The runtime state of upstream group `index` of `snapshot` (a request started before a reload keeps
    /// using its snapshot's plan).
    func group(_ index: Int, of snapshot: Snapshot) -> UpstreamGroup {
        if snapshot === self.snapshot { return groups[index] }
        let name = snapshot.groups[index].name
        if let current = groups.first(where: { $0.plan.name == name }) { return current }
        return UpstreamGroup(plan: snapshot.groups[index])
    }

    /// Calls `body` with `group(index, of: snapshot)`, not retained around the call when `snapshot` is the current
    /// one: `groups` holds it, and is replaced only by `install` (a reload), which `body` must not reach.
    @inline(__always)
    func withGroup<Result>(_ index: Int, of snapshot: Snapshot, _ body: (UpstreamGroup) -> Result) -> Result {
        if snapshot === self.snapshot { return Unmanaged.passUnretained(groups[index])._withUnsafeGuaranteedRef(body) }
        return body(group(index, of: snapshot))
    }

    func countRequest(route: Int, status: Int, snapshot: Snapshot) {
        let statusClass = min(max(status / 100, 1), 5) - 1
        if snapshot === self.snapshot, route >= 0, route < requestCounters.count {
            requestCounters[route][statusClass].increment(ownShard: index)
        } else if route >= 0 && route < snapshot.routeLabels.count {
            let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"]
            metrics.requests.labels(snapshot.routeLabels[route], classes[statusClass]).increment(shard: index)
        } else {
            unroutedCounters[statusClass].increment(ownShard: index)
        }
    }

    /// Calls `body` with `peer`'s address text: an IPv4 address is written into 16 bytes of stack, an IPv6 one
    /// into `clientAddress`.
    @inline(__always)
    func withClientAddress<Result>(_ peer: SocketAddress, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        switch peer {
        case .v4(let address, _):
            return withUnsafeTemporaryAllocation(byteCount: 16, alignment: 8) { text in
                // Each octet's digits and a dot, as one 4-byte store from `octetText` (the bytes past its digits and
                // dot are overwritten by the next octet's, or lie past the end): at most 4 × 4 bytes are written.
                var count = 0
                Self.octetText.withUnsafeBufferPointer { table in
                    for shift in stride(from: 24 as UInt32, through: 0, by: -8) {
                        let octet = UInt8(truncatingIfNeeded: address >> shift)
                        text.storeBytes(of: table[Int(octet)], toByteOffset: count, as: UInt32.self)
                        count &+= octet >= 100 ? 4 : octet >= 10 ? 3 : 2
                    }
                }
                // Without the last dot.
                return body(UnsafeRawBufferPointer(rebasing: text[0..<(count &- 1)]))
            }
        case .v6:
            clientAddress.removeAll(keepingCapacity: true)
            clientAddress.append(contentsOf: peer.hostText.utf8)
            return clientAddress.withUnsafeBytes(body)
        }
    }

    /// The decimal digits of every octet followed by a dot, as the bytes of a little-endian word in memory order
    /// (`7` is `7.`, `127` is `127.`; the bytes after the dot are zero).
    private static let octetText: [UInt32] = (0...255).map { octet in
        var word: UInt32 = 0
        var shift: UInt32 = 0
        for byte in Array(String(octet).utf8) + [UInt8(ascii: ".")] {
            word |= UInt32(byte) << shift
            shift += 8
        }
        return word
    }

    // MARK: Head parsers

    /// Parsers lent to exchanges while a head is read or a response awaited, so that a connection between
    /// requests owns none.
    // Enough for the heads in flight at once on a busy loop; more would only hold memory after a burst.
    private var requestParsers = HeadParserPool(kind: .request, capacity: 128)
    private var responseParsers = HeadParserPool(kind: .response, capacity: 128)

    /// Lends a parser into `parser`, an exchange's placeholder (`HeadParser(kind:reserving: false)`, no memory).
    func lendRequestParser(into parser: inout HeadParser) { requestParsers.lend(into: &parser, limits: headLimits) }

    func lendResponseParser(into parser: inout HeadParser) { responseParsers.lend(into: &parser, limits: Limits()) }

    func returnParser(_ parser: inout HeadParser) {
        if parser.kind == .request {
            requestParsers.giveBack(&parser)
        } else {
            responseParsers.giveBack(&parser)
        }
    }

    // MARK: Accepting

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: LoopListener) {
        let peer = peer ?? .loopback(port: 0)
        if draining {
            fd.close()
            return
        }
        if let reason = shared.admit(peer: peer, limits: snapshot.config.limits) {
            metrics.refused.labels(reason).increment(shard: index)
            Self.serviceUnavailable.withUnsafeBytes { _ = try? fd.send($0) }
            fd.close()
            return
        }
        metrics.accepted.increment(shard: index)
        metrics.active.add(ownShard: index, 1)
        let exchange = LoopExchange(worker: self, peer: peer, transport: LoopTransport())
        do {
            exchange.downstream = try Connection(loop: loop, fd: fd, handler: exchange)
        } catch {
            metrics.active.sub(ownShard: index, 1)
            shared.release(peer: peer, limits: snapshot.config.limits)
            return
        }
        exchanges.appendSlotted(exchange)
        phaseChanged(from: nil, to: .idle)
        // An accepted connection counts as idle until its first byte, with the header timeout as its deadline.
        exchange.deadline = loop.now &+ clientHeaderTimeout
    }

    static let serviceUnavailable: [UInt8] = {
        var out: [UInt8] = []
        ErrorResponse.serviceUnavailable.write(keepAlive: false, requestID: nil, into: &out)
        return out
    }()

    /// A downstream connection ended (exchange or tunnel).
    func connectionClosed(peer: SocketAddress) {
        metrics.active.sub(ownShard: index, 1)
        shared.release(peer: peer, limits: snapshot.config.limits)
    }

    // MARK: Bookkeeping

    func remove(_ exchange: LoopExchange) {
        guard exchanges.removeSlotted(exchange) else { return }
        loop.disarm(&exchange.deadlineTimer)
        exchange.armedAt = 0
        checkDrained()
    }

    /// A tunnel to the upstream host `label` enters the books.
    func add(_ tunnel: Tunnel, upstream label: String) {
        tunnels.appendSlotted(tunnel)
        armTunnel(tunnel)
        metrics.tunnel.add(ownShard: index, 1)
        metrics.tunnelsActive.add(ownShard: index, 1)
        tunnel.upstreamTunnels = metrics.tunnelOpened(upstream: label)
    }

    func remove(_ tunnel: Tunnel) {
        guard tunnels.removeSlotted(tunnel) else { return }
        loop.disarm(&tunnel.deadline)
        metrics.tunnel.sub(ownShard: index, 1)
        metrics.tunnelsActive.sub(ownShard: index, 1)
        if let entry = tunnel.upstreamTunnels { metrics.tunnelClosed(entry) }
        connectionClosed(peer: tunnel.peer)
        checkDrained()
    }

    /// Open exchanges per state (indexes of `StateCounts`); published to the gauges by the sweep, so a request
    /// changing state costs two integer updates instead of two atomic adds on shared cache lines.
    private var stateCounts = StateCounts()
    private var publishedCounts = StateCounts()

    struct StateCounts {
        /// Open exchanges per phase (indexed by `RequestPhase.Kind.rawValue`): a change is one indexed add, and the
        /// phases are grouped into the gauges' states only when they are published (a switch per change cost more).
        private var byKind = InlineArray<10, Int>(repeating: 0)

        var idle: Int { self[.idle] }
        var reading: Int { self[.head] + self[.body] }
        var waiting: Int { self[.resolving] + self[.connecting] + self[.sending] + self[.awaiting] }
        var writing: Int { self[.relaying] + self[.closing] }

        private subscript(_ kind: RequestPhase.Kind) -> Int { byKind[Int(kind.rawValue)] }

        @inline(__always)
        mutating func add(_ phase: RequestPhase.Kind, _ delta: Int) {
            byKind[Int(phase.rawValue)] &+= delta
        }
    }

    func phaseChanged(from old: RequestPhase.Kind?, to new: RequestPhase.Kind?) {
        if let old { stateCounts.add(old, -1) }
        if let new { stateCounts.add(new, 1) }
    }

    /// `phaseChanged` for an exchange's move between two phases (inlined there: four per request).
    @inline(__always)
    func phaseChanged(from old: RequestPhase.Kind, to new: RequestPhase.Kind) {
        stateCounts.add(old, -1)
        stateCounts.add(new, 1)
    }

    /// Moves the by-state gauges to this worker's current counts (each worker writes only its own shard).
    private func publishStateCounts() {
        let now = stateCounts
        let before = publishedCounts
        if now.idle != before.idle { metrics.idle.add(ownShard: index, Double(now.idle - before.idle)) }
        if now.reading != before.reading { metrics.reading.add(ownShard: index, Double(now.reading - before.reading)) }
        if now.waiting != before.waiting { metrics.waiting.add(ownShard: index, Double(now.waiting - before.waiting)) }
        if now.writing != before.writing {
            metrics.relaying.add(ownShard: index, Double(now.writing - before.writing))
        }
        publishedCounts = now
    }

    // MARK: Timeouts and drain

    /// An exchange's phase deadline came earlier than its timer (or it had none): the timer on the loop's heap is
    /// set for it. A later deadline leaves the timer where it is (see `exchangeTimerFired`), and 0 leaves a pending
    /// timer to find nothing to do when it comes.
    func deadlineMoved<Transport: ExchangeTransport>(_ exchange: Exchange<Transport>) {
        let deadline = exchange.deadline
        guard deadline != 0, exchange.slot >= 0 else { return }
        loop.arm(&exchange.deadlineTimer, at: deadline, handler: exchange)
        exchange.armedAt = deadline
    }

    /// An exchange's timer fired: its deadline passed, or it moved later since the timer was set (then the timer is
    /// set again for it).
    func exchangeTimerFired<Transport: ExchangeTransport>(_ exchange: Exchange<Transport>) {
        exchange.armedAt = 0
        guard exchange.slot >= 0, exchange.deadline != 0 else { return }
        if exchange.deadline <= loop.now {
            exchange.deadlineExpired()
        } else {
            deadlineMoved(exchange)
        }
    }

    /// Sets a tunnel's deadline: closing, `client_header` after the close began; open, `tunnel_idle` after the
    /// last byte moved (none when that timeout is off, or while draining: the drain ends every tunnel itself).
    func armTunnel(_ tunnel: Tunnel) {
        guard tunnel.slot >= 0 else { return }
        if tunnel.closingSince != 0 {
            loop.arm(&tunnel.deadline, at: tunnel.closingSince &+ clientHeaderTimeout, handler: tunnel)
        } else if tunnelIdleTimeout > 0 && !draining {
            loop.arm(&tunnel.deadline, at: tunnel.lastActivity &+ tunnelIdleTimeout, handler: tunnel)
        } else {
            loop.disarm(&tunnel.deadline)
        }
    }

    /// A tunnel's deadline came: cut it if it really passed (reads only stored `lastActivity`), else move it on.
    func tunnelDeadlinePassed(_ tunnel: Tunnel) {
        guard tunnel.slot >= 0 else { return }
        let now = loop.now
        if tunnel.closingSince != 0 {
            // Closing, but a peer does not take the last bytes: cut, as nginx's lingering close would.
            if now &- tunnel.closingSince >= clientHeaderTimeout {
                tunnel.cut()
                return
            }
        } else if !draining && tunnelIdleTimeout > 0 && now &- tunnel.lastActivity >= tunnelIdleTimeout {
            tunnel.cut(reason: .idleTimeout)
            return
        }
        armTunnel(tunnel)
    }

    /// The housekeeping tick (every `sweepInterval`): idle exchanges shed their parsers, the drain is paced, the
    /// access log is handed over and the gauges published. Deadlines are not here: each exchange and each tunnel
    /// has its own on the loop's timer heap, and the upstream pool one for its keep-alive times.
    func timerFired(tag: UInt64) {
        let now = loop.now
        defer { publishStateCounts() }
        var position = exchanges.count - 1
        while position >= 0 {
            if position < exchanges.count, case .idle = exchanges[position].phase {
                // Idle at this tick: its head parsers go back to the pool (lent again on the next byte).
                exchanges[position].shedParsers()
            }
            position -= 1
        }
        if draining { closeTunnelsForDrain(now: now) }
        flushAccessLog()
        if !(draining && exchanges.isEmpty && tunnels.isEmpty) {
            loop.schedule(after: Self.sweepInterval, handler: self)
        }
    }

    /// Stops accepting, closes idle keep-alive connections, lets requests in flight finish with `Connection:
    /// close`, and closes tunnels evenly over `window`.
    func drain(window: Duration) {
        guard !draining else { return }
        draining = true
        drainDeadline = loop.now &+ nanoseconds(window)
        for listener in listeners { listener.close() }
        listeners.removeAll()
        pool.closeAll()
        for exchange in exchanges.reversed() { exchange.drain() }
        checkDrained()
    }

    private func closeTunnelsForDrain(now: UInt64) {
        guard !tunnels.isEmpty else { return }
        // A second past the window, whatever is left (a frame that never ended, a client that never closed) is cut.
        if now >= drainDeadline &+ 1_000_000_000 {
            for tunnel in tunnels.reversed() { tunnel.cut(reason: .drain) }
            return
        }
        // Spread the Closes evenly: by each sweep, the share of the tunnels not yet asked whose turn has come.
        let waiting = tunnels.filter { !$0.drainRequested }
        guard !waiting.isEmpty else { return }
        let remaining = drainDeadline > now ? drainDeadline - now : 0
        let interval = nanoseconds(Self.sweepInterval)
        let ticksLeft = max(1, (remaining + interval - 1) / interval)
        let count = Int((UInt64(waiting.count) + ticksLeft - 1) / ticksLeft)
        for tunnel in waiting.prefix(count) { tunnel.drainClose() }
    }

    private var reportedDrained = false

    private func checkDrained() {
        if draining && !reportedDrained && exchanges.isEmpty && tunnels.isEmpty {
            reportedDrained = true
            shared.workerDrained()
        }
    }

    // MARK: Access log

    func logRequest(
        peer: SocketAddress, request: borrowing HeadParser, context: borrowing RequestContext, snapshot: Snapshot,
        durationNanoseconds: UInt64
    ) {
        let index = context.route
        logClock.advance(monotonic: loop.now)
        AccessLogLine.appendRequest(
            into: &logBuffer, time: logClock, peer: peer, request: request, context: context,
            route: index >= 0 && index < snapshot.routeLabels.count ? snapshot.routeLabels[index] : "-",
            durationNanoseconds: durationNanoseconds)
        if logBuffer.count >= AccessLogWriter.flushSize { flushAccessLog() }
    }

    func logTunnel(
        peer: SocketAddress, fields: TunnelLogFields, durationNanoseconds: UInt64, reason: TunnelEnd.Reason,
        initiator: TunnelEnd.Initiator
    ) {
        logClock.advance(monotonic: loop.now)
        AccessLogLine.appendTunnel(
            into: &logBuffer, time: logClock, peer: peer, fields: fields, durationNanoseconds: durationNanoseconds,
            reason: reason,
            initiator: initiator)
        if logBuffer.count >= AccessLogWriter.flushSize { flushAccessLog() }
    }

    /// Hands the lines written so far to the writer thread (by size, and at every sweep).
    private func flushAccessLog() {
        guard let accessLog else { return }
        logClock.synchronize(monotonic: loop.now)
        guard !logBuffer.isEmpty else { return }
        accessLog.submit(&logBuffer)
    }

    /// Closes everything at once (loop stop).
    func stop() {
        flushAccessLog()
        for listener in listeners { listener.close() }
        listeners.removeAll()
        pool.closeAll()
        resolver.close()
    }
}

extension Exchange: Slotted {}

extension Exchange: TimerHandler {
    func timerFired(tag: UInt64) { worker.exchangeTimerFired(self) }
}
extension Tunnel: Slotted {}

extension UpstreamGroup {
    /// A group for `plan` that keeps this group's resolved addresses.
    func adopting(_ plan: GroupPlan) -> UpstreamGroup {
        let group = UpstreamGroup(plan: plan)
        for index in servers.indices where index < group.servers.count {
            group.update(
                server: index, addresses: servers[index].addresses, expiresAt: servers[index].expiresAt)
        }
        return group
    }
}
