// One lookup in flight: drives a `Resolution` through its tries, one UDP socket (or TCP connection) per try.
import DNS
import EventLoop
import Sys

/// The network side of one coalesced lookup. Each try has its own socket, id, deadline timer and `attempt`
/// number; callbacks that carry an older attempt number (a late timer, a connect that finished after its try
/// was abandoned) are ignored, and closing a try's socket drops its pending events (the loop's slot generations).
final class Lookup: EventHandler, TimerHandler, ConnectHandler, ConnectionHandler {
    unowned let resolver: Resolver
    unowned let loop: EventLoop
    let key: CacheKey
    private(set) var resolution: Resolution
    /// What to report if the tries run out: the kind of the last failure.
    private(set) var lastFailure = ResolveFailure.timeout

    // The try in flight.
    private var attempt: UInt64 = 0
    private var server = SocketAddress.loopback(port: 53)
    private var queryName = Name.root
    private var queryID: UInt16 = 0
    private var holdsID = false
    private var udp: FileDescriptor?
    private var udpToken: UInt64 = 0
    private var timer: TimerID?
    private var connector: Connector?
    private var connection: Connection?
    private var framer = TCPFramer()
    /// Set when the try failed before its deadline in a way that is only reported when the timer fires.
    private var pendingFailure: ResolveFailure?
    /// While `start` runs: an outcome reached then is delivered from a timer, never inside `resolve`.
    private var starting = false
    private var deferredOutcome: Resolution.Outcome?
    private var isDone = false

    /// Timer tag for delivering an outcome reached inside `start`.
    private static let deliverTag = UInt64.max
    /// Datagrams read per readiness event before yielding to other work.
    private static let datagramsPerEvent = 32

    init(resolver: Resolver, key: CacheKey, resolution: Resolution) {
        self.resolver = resolver
        loop = resolver.loop
        self.key = key
        self.resolution = resolution
    }

    private var metrics: ResolverMetrics? { resolver.metrics }

    func start() {
        starting = true
        perform(resolution.start(now: loop.now))
        starting = false
    }

    /// Abandons the lookup without reporting anything: the resolver is closing, or (`resolverGone`) being
    /// deinitialised, when it must not be touched any more.
    func cancel(resolverGone: Bool = false) {
        isDone = true
        if resolverGone { holdsID = false }
        endTry()
    }

    // MARK: Driving the resolution

    private func perform(_ first: Resolution.Action) {
        var action = first
        while true {
            switch action {
            case .finished(let outcome):
                finish(outcome)
                return
            case .send(let name, let server, let overTCP, let deadline):
                // A candidate whose answer is cached (fresh) needs no query: a negative one moves to the next.
                if !overTCP, let cached = resolver.freshAnswer(for: name) {
                    action = resolution.received(cached, now: loop.now)
                    continue
                }
                startTry(
                    name: name, server: resolver.configuration.servers[server], overTCP: overTCP, deadline: deadline)
                return
            }
        }
    }

    private func finish(_ outcome: Resolution.Outcome) {
        endTry()
        guard !isDone else { return }
        if starting {
            deferredOutcome = outcome
            timer = loop.schedule(deadline: loop.now, handler: self, tag: Self.deliverTag)
            return
        }
        isDone = true
        resolver.lookupFinished(self, outcome)
    }

    /// The try ended without an answer: count why and move to the next server (or give up).
    private func tryFailed(_ failure: ResolveFailure) {
        lastFailure = failure
        metrics?.count(failure)
        endTry()
        perform(resolution.timedOut(now: loop.now))
    }

    /// A reply that answers the query: cache what it says and let the resolution decide what is next.
    private func accept(_ answer: Answer) {
        switch answer {
        case .addresses, .nxdomain, .nodata:
            resolver.cache.store(answer, name: queryName, type: .a, now: loop.now)
        case .serverFailure(let code):
            lastFailure = code == .refused ? .refused : .serverFailure
            metrics?.count(lastFailure)
        case .truncated:
            break
        }
        endTry()
        perform(resolution.received(answer, now: loop.now))
    }

    // MARK: One try

    private func startTry(name: Name, server: SocketAddress, overTCP: Bool, deadline: UInt64) {
        endTry()
        attempt &+= 1
        self.server = server
        queryName = name
        queryID = resolver.takeQueryID()
        holdsID = true
        timer = loop.schedule(deadline: deadline, handler: self, tag: attempt)
        metrics?.queries.increment(shard: metrics!.shard)
        do {
            if overTCP {
                let timeout = Duration.nanoseconds(Int64(clamping: deadline &- min(deadline, loop.now)))
                connector = try Connector.connect(
                    loop: loop, to: server, timeout: timeout, handler: self, tag: attempt)
            } else {
                try sendUDP()
            }
        } catch {
            // Reported from the timer, so that no outcome is ever delivered inside `resolve`.
            closeSockets()
            pendingFailure = .unreachable
            if let timer { loop.cancel(timer) }
            timer = loop.schedule(deadline: loop.now, handler: self, tag: attempt)
        }
    }

    private func sendUDP() throws(Errno) {
        let fd = try FileDescriptor.socket(.udp, for: server)
        do {
            // A connected socket gets a new random ephemeral port, and the kernel drops datagrams from other
            // sources and reports ICMP port unreachable as ECONNREFUSED.
            _ = try fd.connect(to: server)
            udpToken = try loop.register(fd, interest: .readable, handler: self)
        } catch {
            fd.close()
            throw error
        }
        udp = fd
        resolver.queryBuffer.removeAll(keepingCapacity: true)
        encodeQuery(id: queryID, name: queryName, type: .a, into: &resolver.queryBuffer)
        let result = resolver.queryBuffer.withUnsafeBytes { bytes in
            Result { () throws(Errno) -> IOResult in try fd.send(bytes) }
        }
        guard case .count(let sent) = try result.get(), sent == resolver.queryBuffer.count else {
            throw Errno.noBufferSpace
        }
    }

    /// Closes whatever the current try holds and forgets its id; late events of the try are dropped.
    private func endTry() {
        if let timer {
            loop.cancel(timer)
            self.timer = nil
        }
        closeSockets()
        if holdsID {
            resolver.releaseQueryID(queryID)
            holdsID = false
        }
        pendingFailure = nil
    }

    private func closeSockets() {
        if let fd = udp {
            udp = nil
            loop.deregister(fd, token: udpToken, willClose: true)
            fd.close()
        }
        if let connector {
            self.connector = nil
            connector.cancel()
        }
        if let connection {
            // Cleared first so that its `closed` callback is recognised as ours and ignored.
            self.connection = nil
            connection.close()
        }
        if framer.bufferedCount > 0 { framer = TCPFramer() }
    }

    /// Reads one reply; returns whether it ended the try (the caller must then stop touching the try's socket).
    private func handle(reply bytes: UnsafeRawBufferPointer) -> Bool {
        let message: Message
        do {
            message = try decodeResponse(bytes)
        } catch {
            // Undecodable: a reply to this query (response bit and our id) fails the try; anything else is noise.
            if bytes.count >= 3 && bytes[2] & 0x80 != 0 && UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == queryID {
                tryFailed(.malformed)
                return true
            }
            metrics?.count(.malformed)
            return false
        }
        guard message.matches(queryID: queryID, name: queryName, type: .a) else {
            metrics?.mismatchedReplies.increment(shard: metrics!.shard)
            return false
        }
        let answer: Answer
        do {
            answer = try extractAddresses(
                message: message, question: queryName, type: .a,
                defaultNegativeTTL: resolver.configuration.negativeTTLCap)
        } catch {
            // A CNAME loop or an over-long chain.
            tryFailed(.malformed)
            return true
        }
        accept(answer)
        return true
    }

    // MARK: EventHandler (the try's UDP socket)

    func ready(_ events: ReadyEvents) {
        guard let fd = udp else { return }
        let buffer = loop.readBuffer
        for _ in 0..<Self.datagramsPerEvent {
            let datagram: (count: Int, from: SocketAddress?)?
            do {
                datagram = try fd.receiveFrom(into: buffer)
            } catch {
                // ECONNREFUSED: the server's port is closed (ICMP port unreachable).
                tryFailed(.unreachable)
                return
            }
            guard let datagram else { return }
            guard datagram.from == server else {
                metrics?.mismatchedReplies.increment(shard: metrics!.shard)
                continue
            }
            if handle(reply: UnsafeRawBufferPointer(rebasing: buffer[0..<datagram.count])) { return }
        }
        // More datagrams may be queued; edge-triggered, so come back on the next iteration.
        loop.retryLater(udpToken)
    }

    func loopStopping() {
        isDone = true
        endTry()
    }

    // MARK: TimerHandler (the try's deadline)

    func timerFired(tag: UInt64) {
        if tag == Self.deliverTag {
            timer = nil
            guard let outcome = deferredOutcome, !isDone else { return }
            deferredOutcome = nil
            isDone = true
            resolver.lookupFinished(self, outcome)
            return
        }
        guard tag == attempt, !isDone else { return }
        timer = nil
        tryFailed(pendingFailure ?? .timeout)
    }

    // MARK: ConnectHandler, ConnectionHandler (the try's TCP connection)

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        guard tag == attempt, !isDone else {
            if case .connected(let fd) = result { fd.close() }
            return
        }
        connector = nil
        switch result {
        case .connected(let fd):
            let connection: Connection
            do {
                connection = try Connection(loop: loop, fd: fd, handler: self)
            } catch {
                tryFailed(.unreachable)
                return
            }
            self.connection = connection
            resolver.queryBuffer.removeAll(keepingCapacity: true)
            encodeTCPQuery(id: queryID, name: queryName, type: .a, into: &resolver.queryBuffer)
            resolver.queryBuffer.withUnsafeBytes { connection.write($0) }
        case .failed:
            tryFailed(.unreachable)
        case .timedOut:
            tryFailed(.timeout)
        }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard connection === self.connection else { return }
        framer.append(bytes)
        while let message = framer.nextMessage() {
            if message.withUnsafeBytes({ handle(reply: $0) }) { return }
        }
    }

    func closed(_ connection: Connection, error: Errno?) {
        guard connection === self.connection, !isDone else { return }
        self.connection = nil
        // The server closed (or reset) before a usable answer.
        tryFailed(.unreachable)
    }
}
