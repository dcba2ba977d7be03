// One pipelined Redis connection on one event loop: connect, AUTH/SELECT, commands in order, timeouts, reconnects.
//
// hiredis serves only as the protocol codec (Codec.swift). Its asynchronous API (`redisAsyncConnect`) is not used:
// it resolves host names with a blocking getaddrinfo on the calling thread, which here is the loop thread, and its
// read handler reads once per readiness event, which loses data under the loop's edge-triggered epoll. The I/O is
// the project's own: `Resolver` for host names, `Connector` for the nonblocking connect with its timeout, and
// `Connection` for reads (into the loop's shared buffer) and writes (it keeps only unsent bytes).
import EventLoop
import Resolver
import Sys

/// One connection to Redis on one loop. All methods on the loop's thread. Commands are pipelined: they are written
/// at once, replies come back in order. While disconnected, `send` fails at once with `.disconnected` (never queues
/// silently); in-flight commands fail with `.disconnected` when the connection drops. Reconnects with exponential
/// back-off (min..max, jitter), re-sending AUTH/SELECT first.
///
/// A command without a reply within `commandTimeout` fails with `.timedOut` and the connection is dropped (and made
/// again): a stuck server cannot hang callers. Completions run on the loop thread, in reply order; a completion
/// may send more commands or close the client. Commands that change the protocol flow (SUBSCRIBE, MONITOR) are not
/// supported: their pushed messages match no command and drop the connection as a protocol error.
///
/// Dropping the last reference to a client closes it as `close()` does (the loop holds it only weakly).
public final class RedisClient {
    public unowned let loop: EventLoop
    public let endpoint: RedisEndpoint
    let resolver: Resolver?
    let connectTimeout: Duration
    let commandTimeout: UInt64
    let backoff: (min: Duration, max: Duration)

    /// Told `true` once connected (AUTH and SELECT done), `false` when that connection is lost or closed.
    public var onConnectionChange: ((Bool) -> Void)?
    /// Told why each attempt to connect failed, or why a connection was lost.
    public var onConnectError: ((RedisConnectError) -> Void)?
    /// Why the last attempt failed or the last connection was lost; nil once connected again.
    public private(set) var lastConnectError: RedisConnectError?

    private var state: ConnectionState = .idle
    /// Counts connection attempts: results of an older attempt (resolver, connector) are ignored.
    private var generation: UInt64 = 0
    /// Failed attempts since the last successful connection: the back-off exponent.
    private var failedAttempts = 0
    private var timeoutTimer: TimerID?
    private var reconnectTimer: TimerID?
    private var events: ClientEvents!

    enum ConnectionState {
        /// Not started.
        case idle
        case resolving
        case connecting(Connector)
        /// Connected; AUTH and SELECT are in flight.
        case handshaking(Session)
        case connected(Session)
        /// Waiting for the back-off timer before the next attempt.
        case waiting
        case closed
    }

    /// A client for `endpoint`; nothing happens until `start()`. `resolver` (the loop's) is needed only when the host
    /// is a name: IP literals and `localhost` (RFC 6761 §6.3) are used as they are.
    public init(
        loop: EventLoop, endpoint: RedisEndpoint, resolver: Resolver?, connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(5),
        backoff: (min: Duration, max: Duration) = (.milliseconds(100), .seconds(5))
    ) {
        self.loop = loop
        self.endpoint = endpoint
        self.resolver = resolver
        self.connectTimeout = connectTimeout
        self.commandTimeout = nanoseconds(commandTimeout)
        self.backoff = backoff
        events = ClientEvents(self)
    }

    deinit { close() }

    /// Starts connecting (once; later calls do nothing).
    public func start() {
        guard case .idle = state else { return }
        connect()
    }

    /// Connected, with AUTH and SELECT done.
    public var isConnected: Bool { state.isConnected }

    /// Commands sent and not yet answered.
    public var inFlightCount: Int { session?.inFlight.count ?? 0 }

    /// Sends one command (its name and arguments, binary safe). `completion` runs on the loop thread with the reply
    /// (an error reply is `.success(.error(...))`), or at once with `.disconnected` when not connected.
    public func send(_ arguments: [[UInt8]], _ completion: @escaping (Result<RedisReply, RedisError>) -> Void) {
        guard case .connected(let session) = state else {
            completion(.failure(.disconnected))
            return
        }
        guard !arguments.isEmpty else {
            completion(.failure(.protocolError("a command needs at least its name")))
            return
        }
        guard send(arguments, as: .command(completion), on: session) else {
            completion(.failure(.protocolError("hiredis could not encode the command")))
            return
        }
    }

    /// `send` with text arguments (sent as their UTF-8 bytes).
    public func send(_ arguments: [String], _ completion: @escaping (Result<RedisReply, RedisError>) -> Void) {
        send(arguments.map { Array($0.utf8) }, completion)
    }

    /// EVALSHA with the script's SHA-1, falling back to EVAL on NOSCRIPT (transparently; EVAL also loads the script
    /// into the server's cache). After a fallback the reply comes after the replies of commands sent meanwhile.
    public func eval(
        _ script: RedisScript, keys: [String], arguments: [[UInt8]],
        _ completion: @escaping (Result<RedisReply, RedisError>) -> Void
    ) {
        var command: [[UInt8]] = [Array("EVALSHA".utf8), Array(script.sha1.utf8), Array(String(keys.count).utf8)]
        command.reserveCapacity(3 + keys.count + arguments.count)
        for key in keys { command.append(Array(key.utf8)) }
        command.append(contentsOf: arguments)
        let evalsha = command
        send(evalsha) { [weak self] result in
            guard case .success(.error(let message)) = result, message.hasPrefix("NOSCRIPT") else {
                completion(result)
                return
            }
            guard let self else {
                completion(.failure(.disconnected))
                return
            }
            var eval = evalsha
            eval[0] = Array("EVAL".utf8)
            eval[1] = Array(script.source.utf8)
            self.send(eval, completion)
        }
    }

    /// Closes the connection for good: in-flight commands fail with `.disconnected`, no reconnect follows, and
    /// `onConnectionChange(false)` is told if it was connected. Idempotent.
    public func close() {
        let previous = state
        if case .closed = previous { return }
        state = .closed
        cancelTimers()
        switch previous {
        case .connecting(let connector):
            connector.cancel()
        case .handshaking(let session), .connected(let session):
            end(session, wasConnected: previous.isConnected, failingHeadWith: nil)
        case .idle, .resolving, .waiting, .closed:
            break
        }
    }

    // MARK: Connecting

    private func connect() {
        generation &+= 1
        let host = endpoint.host
        if let address = SocketAddress(host: host, port: endpoint.port) {
            startConnect(to: address)
            return
        }
        if host.lowercased() == "localhost" || host.lowercased().hasSuffix(".localhost") {
            startConnect(to: .loopback(port: endpoint.port))
            return
        }
        guard let resolver else {
            attemptFailed(.resolveFailed(host: host, reason: "no resolver given for a host name"))
            return
        }
        state = .resolving
        if let outcome = resolver.resolve(host, handler: events, tag: generation) {
            resolved(outcome, tag: generation)
        }
    }

    fileprivate func resolved(_ outcome: ResolveOutcome, tag: UInt64) {
        guard tag == generation, case .resolving = state else { return }
        switch outcome {
        case .addresses(let addresses, _) where !addresses.isEmpty:
            // The resolver hands successive lookups the addresses in turn: take its first.
            startConnect(to: SocketAddress(addresses[0], port: endpoint.port))
        case .addresses, .noAddresses:
            attemptFailed(.resolveFailed(host: endpoint.host, reason: "no IPv4 address"))
        case .nameNotFound:
            attemptFailed(.resolveFailed(host: endpoint.host, reason: "no such name"))
        case .failed(let failure):
            attemptFailed(.resolveFailed(host: endpoint.host, reason: "\(failure)"))
        }
    }

    private func startConnect(to address: SocketAddress) {
        do {
            let connector = try Connector.connect(
                loop: loop, to: address, timeout: connectTimeout, handler: events, tag: generation)
            state = .connecting(connector)
        } catch {
            attemptFailed(.connectFailed(error))
        }
    }

    fileprivate func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector?) {
        guard tag == generation, case .connecting = state else {
            if case .connected(let fd) = result {
                connector?.releaseRegistration()
                fd.close()
            }
            return
        }
        switch result {
        case .connected(let fd):
            guard let connection = connector?.connection(handler: events) else {
                fd.close()
                attemptFailed(.connectFailed(.invalidArgument))
                return
            }
            // The connect's readiness event may also have said "readable" (a server that speaks first, such as
            // one refusing with "max number of clients"): under edge triggering no new edge will come for those
            // bytes, so have the connection look once (pausing outside a read callback makes resuming look).
            connection.pauseReading()
            connection.resumeReading()
            begin(Session(connection))
        case .failed(let errno):
            attemptFailed(.connectFailed(errno))
        case .timedOut:
            attemptFailed(.connectTimedOut)
        }
    }

    /// Sends AUTH and SELECT (pipelined) before anything else; connected once they succeed.
    private func begin(_ session: Session) {
        state = .handshaking(session)
        if let password = endpoint.password {
            var auth = [Array("AUTH".utf8)]
            if let username = endpoint.username { auth.append(Array(username.utf8)) }
            auth.append(Array(password.utf8))
            if send(auth, as: .handshake(.auth), on: session) { session.handshakeRemaining += 1 }
        }
        if endpoint.database != 0 {
            let select = [Array("SELECT".utf8), Array(String(endpoint.database).utf8)]
            if send(select, as: .handshake(.select), on: session) { session.handshakeRemaining += 1 }
        }
        if session.handshakeRemaining == 0 { becomeConnected(session) }
    }

    private func handshakeReplied(_ step: HandshakeStep, _ reply: RedisReply, on session: Session) {
        if case .error(let message) = reply {
            drop(session, because: .rejected(command: step.command, message: message))
            return
        }
        session.handshakeRemaining -= 1
        if session.handshakeRemaining == 0 { becomeConnected(session) }
    }

    private func becomeConnected(_ session: Session) {
        state = .connected(session)
        failedAttempts = 0
        lastConnectError = nil
        onConnectionChange?(true)
    }

    /// An attempt failed before a connection existed: wait, then try again.
    private func attemptFailed(_ reason: RedisConnectError) {
        scheduleReconnect()
        report(reason)
    }

    private func scheduleReconnect() {
        state = .waiting
        let delay = backoffDelay(
            failedAttempts: failedAttempts, minimum: nanoseconds(backoff.min), maximum: nanoseconds(backoff.max),
            random: UInt64.random(in: 0...UInt64(UInt32.max)))
        failedAttempts += 1
        reconnectTimer = loop.schedule(deadline: loop.now &+ delay, handler: events, tag: TimerTag.reconnect)
    }

    private func report(_ reason: RedisConnectError) {
        lastConnectError = reason
        onConnectError?(reason)
    }

    /// Drops the current session and schedules a reconnect; see `end`.
    private func drop(_ session: Session, because reason: RedisConnectError, headFailure: RedisError? = nil) {
        let wasConnected = isConnected
        scheduleReconnect()
        end(session, wasConnected: wasConnected, failingHeadWith: headFailure)
        report(reason)
    }

    /// Closes a session the state no longer names (so the connection's `closed` callback, run inside `close`, is
    /// ignored): `headFailure` (if any) goes to the oldest command, `.disconnected` to the others, then
    /// `onConnectionChange(false)` if it was connected. Completions may call back into the client.
    private func end(_ session: Session, wasConnected: Bool, failingHeadWith headFailure: RedisError?) {
        if let timeoutTimer { loop.cancel(timeoutTimer) }
        timeoutTimer = nil
        session.connection.close()
        var failed = session.inFlight.takeAll()
        if let headFailure, let head = failed.popFirst() { head.kind.fail(headFailure) }
        while let entry = failed.popFirst() { entry.kind.fail(.disconnected) }
        if wasConnected { onConnectionChange?(false) }
    }

    private var session: Session? {
        switch state {
        case .handshaking(let session), .connected(let session): session
        default: nil
        }
    }

    // MARK: Commands in flight

    /// Writes a command and queues what its reply is for; false when hiredis cannot encode it (nothing written).
    private func send(_ arguments: [[UInt8]], as kind: PendingCommand.Kind, on session: Session) -> Bool {
        guard CommandEncoder.withEncoded(arguments, { session.connection.write($0) }) != nil else { return false }
        let deadline = loop.now &+ commandTimeout
        session.inFlight.append(PendingCommand(kind: kind, deadline: deadline))
        if timeoutTimer == nil {
            timeoutTimer = loop.schedule(deadline: deadline, handler: events, tag: TimerTag.commandTimeout)
        }
        return true
    }

    fileprivate func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard let session, session.connection === connection else { return }
        do {
            try session.reader.feed(bytes)
        } catch {
            drop(session, because: .protocolError("\(error)"))
            return
        }
        while true {
            let reply: RedisReply?
            do {
                reply = try session.reader.next()
            } catch {
                drop(session, because: .protocolError("\(error)"))
                return
            }
            guard let reply else { break }
            guard let entry = session.inFlight.popFirst() else {
                drop(session, because: .protocolError("a reply to no command"))
                return
            }
            switch entry.kind {
            case .command(let completion): completion(.success(reply))
            case .handshake(let step): handshakeReplied(step, reply, on: session)
            }
            // The completion may have closed the client, or the handshake failed: this session is over.
            guard self.session === session else { return }
        }
        if session.inFlight.isEmpty, let timeoutTimer {
            loop.cancel(timeoutTimer)
            self.timeoutTimer = nil
        }
        session.reader.releaseLargeBuffer()
    }

    fileprivate func closed(_ connection: Connection, error: Errno?) {
        guard let session, session.connection === connection else { return }
        drop(session, because: .connectionLost(error))
    }

    fileprivate func timerFired(tag: UInt64) {
        switch tag {
        case TimerTag.reconnect:
            reconnectTimer = nil
            guard case .waiting = state else { return }
            connect()
        default:
            timeoutTimer = nil
            guard let session, let head = session.inFlight.first else { return }
            if head.deadline <= loop.now {
                drop(session, because: .commandTimedOut, headFailure: .timedOut)
            } else {
                timeoutTimer = loop.schedule(deadline: head.deadline, handler: events, tag: TimerTag.commandTimeout)
            }
        }
    }

    private func cancelTimers() {
        if let timeoutTimer { loop.cancel(timeoutTimer) }
        if let reconnectTimer { loop.cancel(reconnectTimer) }
        timeoutTimer = nil
        reconnectTimer = nil
    }

    /// For tests: how many times the reply reader was replaced to give back a large buffer.
    var readerRenewals: Int { session?.reader.renewals ?? 0 }
    /// For tests: whether the connection holds a buffer of unsent bytes.
    var holdsWriteBuffer: Bool { session?.connection.holdsBuffer ?? false }
    /// For tests: the capacity of the in-flight queue's array.
    var inFlightCapacity: Int { session?.inFlight.capacity ?? 0 }
}

extension RedisClient.ConnectionState {
    var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }
}

/// One connection's life: the socket, its reply reader (a new connection must not see an old one's partial reply),
/// the commands in flight on it and the handshake steps still unanswered.
final class Session {
    let connection: Connection
    let reader = ReplyReader()
    var inFlight = PendingQueue()
    var handshakeRemaining = 0

    init(_ connection: Connection) { self.connection = connection }
}

/// The delay before reconnect attempt `failedAttempts + 1`: `minimum · 2^failedAttempts` capped at `maximum`, then
/// scaled by a jitter factor in [½, 1] taken from `random` (uniform over 0...2³²−1), so that many clients cut off
/// together do not come back together.
func backoffDelay(failedAttempts: Int, minimum: UInt64, maximum: UInt64, random: UInt64) -> UInt64 {
    var delay = max(minimum, 1)
    var step = 0
    while step < failedAttempts && delay < maximum {
        delay = delay > maximum / 2 ? maximum : delay * 2
        step += 1
    }
    delay = min(delay, max(maximum, minimum))
    let half = delay / 2
    return half + (delay - half) * min(random, UInt64(UInt32.max)) / UInt64(UInt32.max)
}

private enum TimerTag {
    static let commandTimeout: UInt64 = 1
    static let reconnect: UInt64 = 2
}

enum HandshakeStep {
    case auth
    case select

    var command: String {
        switch self {
        case .auth: "AUTH"
        case .select: "SELECT"
        }
    }
}

/// A command written and waiting for its reply.
struct PendingCommand {
    enum Kind {
        case command((Result<RedisReply, RedisError>) -> Void)
        case handshake(HandshakeStep)

        func fail(_ error: RedisError) {
            if case .command(let completion) = self { completion(.failure(error)) }
        }
    }

    var kind: Kind
    /// Monotonic nanoseconds by which the reply must have come.
    var deadline: UInt64
}

/// A FIFO of commands in flight: an array read from a moving head, compacted as it drains, and given back once
/// empty (an idle client holds no buffer but hiredis's reader).
struct PendingQueue {
    private var items: [PendingCommand?] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: PendingCommand? { isEmpty ? nil : items[head] }
    /// The array's capacity (for tests).
    var capacity: Int { items.capacity }

    mutating func append(_ command: PendingCommand) { items.append(command) }

    mutating func popFirst() -> PendingCommand? {
        guard head < items.count else { return nil }
        let command = items[head]
        items[head] = nil
        head += 1
        if head == items.count {
            items.removeAll()
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return command
    }

    /// Empties the queue, returning what it held.
    mutating func takeAll() -> PendingQueue {
        let taken = self
        self = PendingQueue()
        return taken
    }
}

/// The loop-facing side of a client (connector, connection, resolver and timer callbacks). The loop, resolver and
/// connector hold this object, not the client, and it holds the client weakly, so a client nobody references can
/// be released (its `deinit` closes what is open).
final class ClientEvents: ConnectHandler, ConnectionHandler, ResolveHandler, TimerHandler {
    weak var client: RedisClient?

    init(_ client: RedisClient) { self.client = client }

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        if let client {
            client.connectCompleted(result, tag: tag, connector: nil)
        } else if case .connected(let fd) = result {
            fd.close()
        }
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector) {
        if let client {
            client.connectCompleted(result, tag: tag, connector: connector)
        } else if case .connected(let fd) = result {
            connector.releaseRegistration()
            fd.close()
        }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard let client else {
            connection.close()
            return
        }
        client.received(connection, bytes)
    }

    func closed(_ connection: Connection, error: Errno?) {
        client?.closed(connection, error: error)
    }

    func resolved(_ outcome: ResolveOutcome, name: String, tag: UInt64) {
        client?.resolved(outcome, tag: tag)
    }

    func timerFired(tag: UInt64) {
        client?.timerFired(tag: tag)
    }
}
