// The node: sessions by client id, acceptance through the store, delivery (local, relayed, replayed), the ring,
// moves, drain and heartbeats. Everything runs on one event loop.
import EventLoop
import HTTP1
import HTTPServer
import JSON
import Kafka
import Redis
import Resolver
import Ring
import Sys
import WebSocket
import Wire

/// The socket node's core (SYSTEM §4).
///
/// Delivery: a message is appended to its recipient's inbox in Redis first (one script: dedup by sender and msgId,
/// next offset, capped stream, expiry), which gives its offset; the sender is told `accepted` only then. The live
/// push follows: to the recipient's session here, or through Kafka to the node the ring names, where it is pushed
/// if the recipient is connected there (never forwarded again: no loops). A recipient that is offline, or whose
/// push was lost, reads the store when it comes back (`resumeOffset`), and a session reads it whenever a push
/// shows a gap, so order and completeness never depend on the push path.
///
/// `@unchecked Sendable`: the node is confined to its loop. Every method runs on the loop's thread — HTTP handlers
/// (the server listens on this loop), connection and timer callbacks, Redis replies and Kafka callbacks are all
/// delivered there; other threads reach it only through `loop.execute`.
public final class Node: TimerHandler, @unchecked Sendable {
    public let configuration: NodeConfiguration
    public let loop: EventLoop
    let metrics: NodeMetrics
    /// Readiness for `/readyz`: true once the store answered and until a drain starts.
    public let readiness = ReadinessFlag(false)
    let redis: RedisClient
    private var producer: KafkaProducer?
    private var deliveryConsumer: KafkaConsumer?
    private var ringConsumer: KafkaConsumer?
    /// Unmasking space for whole messages (owned by the loop, shared by every session).
    let scratch: UnsafeMutableRawBufferPointer
    let pingInterval: UInt64
    let idleTimeout: UInt64
    static let closeHandshakeTimeout: UInt64 = 5_000_000_000

    private(set) var sessions: [String: Session] = [:]
    /// Open sessions in a list, for batches (swap-remove by `Session.slot`).
    private var sessionList: [Session] = []
    private(set) var ring = Ring.empty
    private(set) var ringVersion: UInt64?
    /// Client ids to move to their new owner, oldest ring change first.
    private var moveQueue: [String] = []
    private var moveSchedule = BatchSchedule(total: 0, start: 0, window: 0)
    private var moved = 0

    private(set) var draining = false
    private var drainSchedule = BatchSchedule(total: 0, start: 0, window: 0)
    private var drainClosed = 0
    private var exitWhenDrained = false
    /// Called once when a drain that should end the process has closed every session.
    public var onDrained: (() -> Void)?
    private var storeReady = false
    private var batchTimerArmed = false
    private var stopped = false

    // Load figures for the heartbeat.
    private var messagesSinceHeartbeat = 0
    private var latencySamples: [Double] = []
    private var lastCPU = ProcessFigures.current().cpuSeconds
    private var lastHeartbeatAt: UInt64 = 0

    static let appendScriptText = Array(
        """
        local seen = redis.call('GET', KEYS[3])
        if seen then return {0, tonumber(seen)} end
        local n = redis.call('INCR', KEYS[1])
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], n .. '-0', 'e', ARGV[1])
        redis.call('EXPIRE', KEYS[2], ARGV[3])
        redis.call('EXPIRE', KEYS[1], ARGV[4])
        redis.call('SET', KEYS[3], n, 'EX', ARGV[5])
        return {1, n}
        """.utf8)
    static let evalWord = Array("EVAL".utf8)
    static let threeKeys = Array("3".utf8)
    /// Entries read per store fetch.
    static let fetchCount = 256
    /// Messages of one client waiting for the store before its reading pauses.
    static let maxAppendsInFlight = 64
    private enum TimerTag: UInt64 {
        case heartbeat = 1
        case batches = 2
        case ringPoll = 3
    }

    public init(
        configuration: NodeConfiguration, loop: EventLoop, metrics: NodeMetrics, resolver: Resolver?
    )
        throws(NodeStartError)
    {
        self.configuration = configuration
        self.loop = loop
        self.metrics = metrics
        let endpoint: RedisEndpoint
        do {
            endpoint = try RedisEndpoint.parse(url: configuration.redisURL)
        } catch {
            throw NodeStartError(message: "REDIS_URL: \(error)")
        }
        redis = RedisClient(loop: loop, endpoint: endpoint, resolver: resolver)
        scratch = .allocate(byteCount: max(64 * 1024, configuration.maxMessageBytes), alignment: 16)
        pingInterval = UInt64(configuration.pingIntervalSeconds) * 1_000_000_000
        idleTimeout = UInt64(configuration.idleTimeoutSeconds) * 1_000_000_000
        latencySamples.reserveCapacity(1024)
    }

    deinit { scratch.deallocate() }

    // MARK: Start and stop

    /// Connects to Redis and Kafka and starts the timers. On the loop thread.
    public func start() throws(NodeStartError) {
        redis.onConnectionChange = { [unowned self] connected in self.storeConnectionChanged(connected) }
        redis.start()
        let bootstrap = configuration.kafkaBootstrap
        let id = configuration.nodeID
        do {
            producer = try KafkaProducer(loop: loop, bootstrap: bootstrap, config: ["linger.ms": "1"])
            deliveryConsumer = try KafkaConsumer(
                loop: loop, bootstrap: bootstrap, groupID: "rtc-socket.\(id)", topics: [Keys.deliveryTopic(id)],
                // A node that dies holds its group for the session timeout: the balancer's re-route of its
                // undelivered records waits that long, so keep it short (librdkafka's default is 45 s).
                // The node creates its own topic as it subscribes (where the brokers allow auto-creation), so its
                // group is joined with the topic's partitions and the first record relayed to it needs no rebalance.
                config: [
                    "auto.offset.reset": "earliest", "session.timeout.ms": "10000", "heartbeat.interval.ms": "3000",
                    "max.poll.interval.ms": "20000", "allow.auto.create.topics": "true",
                    "fetch.wait.max.ms": String(configuration.kafkaFetchWaitMilliseconds),
                ],
                handler: { [unowned self] message in self.relayed(message) })
            deliveryConsumer?.onAssignment = { [unowned self] partitions in
                self.metrics.deliveryPartitions.set(Double(partitions.count))
            }
            // Every node reads every ring update: a group of its own, from the newest (the current ring is read
            // from Redis at start and on every heartbeat).
            ringConsumer = try KafkaConsumer(
                loop: loop, bootstrap: bootstrap, groupID: "rtc-socket.ring.\(id).\(processID())",
                topics: [Keys.ringTopic],
                config: [
                    "auto.offset.reset": "latest",
                    "fetch.wait.max.ms": String(configuration.kafkaFetchWaitMilliseconds),
                ],
                handler: { [unowned self] message in
                    message.value.withUnsafeBytes { self.ringUpdate($0, source: "kafka") }
                })
            // Reading from the newest misses what was published before the group was joined (seconds after the
            // start): the ring in Redis, read once the consumer holds its partition, covers that gap.
            ringConsumer?.onAssignment = { [unowned self] partitions in
                if !partitions.isEmpty { self.pollRing() }
            }
        } catch {
            throw NodeStartError(message: "KAFKA_BOOTSTRAP \(bootstrap): \(error)")
        }
        loop.schedule(after: .milliseconds(1), handler: self, tag: TimerTag.heartbeat.rawValue)
    }

    /// Stops the clients: the heartbeat is deleted (so the balancer drops this node at once), then Kafka consumers
    /// leave their groups and the producer flushes; `done` runs after. Called at the end of a drain or on a hard
    /// stop; librdkafka's close may block the loop briefly, which only happens here.
    public func shutdown(then done: @escaping () -> Void) {
        guard !stopped else { return }
        stopped = true
        var finished = false
        let finish = { [unowned self] in
            guard !finished else { return }
            finished = true
            self.deliveryConsumer?.close()
            self.ringConsumer?.close()
            self.producer?.close(flushTimeout: .seconds(2))
            self.deliveryConsumer = nil
            self.ringConsumer = nil
            self.producer = nil
            self.redis.close()
            done()
        }
        guard redis.isConnected else {
            finish()
            return
        }
        redis.send(["DEL", Keys.heartbeat(configuration.nodeID)]) { _ in finish() }
        loop.schedule(after: .seconds(2)) { finish() }
    }

    private func storeConnectionChanged(_ connected: Bool) {
        if connected {
            if !storeReady {
                storeReady = true
                say("rtc-socket: redis \(configuration.redisURL) connected")
            }
            readiness.set(!draining)
            pollRing()
            heartbeat()
            // Sessions whose reads failed while the store was away read it again.
            for session in sessionList
            where !session.fetchScheduled && (!session.replayed || session.cursor.highestPushed >= session.cursor.next)
            {
                fetch(session)
            }
        } else {
            say("rtc-socket: redis \(configuration.redisURL) unreachable; messages are refused until it is back")
        }
    }

    // MARK: HTTP endpoints

    /// `GET /ws/connect?clientId=…[&resumeOffset=n][&token=t]`: the WebSocket handshake (RFC 6455 §4.2).
    public func upgrade(_ request: Request) -> UpgradeDecision {
        if draining {
            return .reject(errorResponse(503, "draining", "this node is draining; ask the balancer again"))
        }
        let accept: [UInt8]
        switch Handshake.validateRequest(
            method: request.methodName, isHTTP11: request.version == .http1_1, upgrade: request.headers["upgrade"],
            connection: request.headers["connection"], key: request.headers["sec-websocket-key"],
            version: request.headers["sec-websocket-version"])
        {
        case .failure(let error):
            var response = errorResponse(error.status, "bad_handshake", error.reason)
            if error.status == 426 { response = response.adding(header: "Sec-WebSocket-Version", value: "13") }
            return .reject(response)
        case .success(let value):
            accept = value
        }
        guard let clientID = request.query["clientId"], ClientID.isValid(clientID) else {
            return .reject(errorResponse(400, "bad_client_id", "clientId must be 1-128 characters of [A-Za-z0-9._:@-]"))
        }
        var resumeOffset: UInt64 = 0
        if let text = request.query["resumeOffset"] {
            guard let value = UInt64(text) else {
                return .reject(errorResponse(400, "bad_resume_offset", "resumeOffset must be a whole number"))
            }
            resumeOffset = value
        }
        if !configuration.authSecret.isEmpty {
            let now = Int64(wallClockSeconds())
            let verdict = AuthToken.verify(
                request.query["token"] ?? "", clientId: clientID, now: now, secret: configuration.authSecret)
            guard verdict == .valid else {
                metrics.drops(.unauthorized)
                return .reject(errorResponse(401, "unauthorized", "token \(verdict)"))
            }
        }
        return .accept(
            upgrade: "websocket",
            headers: [.init(name: "Sec-WebSocket-Accept", value: String(decoding: accept, as: UTF8.self))],
            adopt: { [unowned self] connection in
                self.opened(clientID: clientID, connection: connection, resumeOffset: resumeOffset)
            })
    }

    /// `GET` or `POST /drain`: starts the drain (idempotent) and answers its status.
    public func drainRequest(_ request: Request) -> Response {
        startDrain(exitWhenDone: false)
        return drainStatus(request)
    }

    /// `GET /drain/status`.
    public func drainStatus(_ request: Request) -> Response {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("draining")
        writer.bool(draining)
        writer.key("complete")
        writer.bool(draining && sessionList.isEmpty)
        writer.key("remaining")
        writer.int(Int64(sessionList.count))
        writer.endObject()
        return .json(bytes: writer.bytes)
    }

    private func errorResponse(_ status: Int, _ code: String, _ message: String) -> Response {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("error")
        writer.string(code)
        writer.key("message")
        writer.string(message)
        writer.endObject()
        return .json(bytes: writer.bytes, status: status)
    }

    // MARK: Sessions

    private func opened(clientID: String, connection: Connection, resumeOffset: UInt64) -> any ConnectionHandler {
        let session = Session(node: self, clientID: clientID, connection: connection, resumeOffset: resumeOffset)
        if let previous = sessions[clientID] {
            // A second connection with the same id replaces the first (SYSTEM §4).
            previous.close(code: CloseCode(rawValue: 4001), reason: "replaced by a newer connection")
        }
        sessions[clientID] = session
        sessionList.appendSlotted(session)
        metrics.connections.set(Double(sessionList.count))
        if resumeOffset > 0 { metrics.resumes.increment() }
        session.sendText(
            ServerFrame.welcome(
                nodeId: configuration.nodeID, clientId: clientID, ringVersion: ringVersion ?? 0,
                resumeOffset: resumeOffset))
        session.start()
        fetch(session)
        return session
    }

    func removed(_ session: Session) {
        if sessions[session.clientID] === session { sessions[session.clientID] = nil }
        sessionList.removeSlotted(session)
        metrics.connections.set(Double(sessionList.count))
        if draining { checkDrained() }
    }

    // MARK: Frames from clients

    func clientFrame(_ session: Session, _ payload: UnsafeRawBufferPointer) {
        let frame: ClientFrame
        do {
            frame = try ClientFrame.decode(payload, maxPayloadBytes: configuration.maxMessageBytes)
        } catch {
            metrics.drops(.badFrame)
            session.sendText(ServerFrame.error(code: error.code, message: error.message, msgId: nil))
            return
        }
        switch frame {
        case .ping:
            session.sendText(ServerFrame.pong(ts: wallClockMilliseconds()))
        case .ack:
            break
        case .message(let msgId, let to, let payloadJson):
            accept(
                Envelope(
                    msgId: msgId, from: session.clientID, toClientId: to, type: "message", payloadJson: payloadJson,
                    offset: nil, ts: wallClockMilliseconds()), from: session)
        }
    }

    /// Appends the message to the recipient's inbox, then tells the sender and pushes it live.
    private func accept(_ envelope: Envelope, from session: Session) {
        metrics.messagesIn.increment()
        messagesSinceHeartbeat += 1
        guard redis.isConnected else {
            // Never dropped silently: the sender learns the message was not taken and may resend it.
            metrics.drops(.storeUnavailable)
            session.sendText(
                ServerFrame.error(
                    code: "unavailable", message: "message store unreachable; resend later", msgId: envelope.msgId))
            return
        }
        session.appendsInFlight += 1
        if session.appendsInFlight == Node.maxAppendsInFlight { session.setReading(false) }
        let to = envelope.toClientId
        let ttl = String(configuration.resumeTTLSeconds)
        // EVAL with the script's text, not EVALSHA: a NOSCRIPT fallback (after a Redis restart) would re-send one
        // message behind later ones and break per-sender order. Redis caches the compiled script by its hash.
        let arguments: [[UInt8]] = [
            Node.evalWord, Node.appendScriptText, Node.threeKeys, Array(Keys.offsetCounter(to).utf8),
            Array(Keys.inbox(to).utf8), Array(Keys.dedup(envelope.from, envelope.msgId).utf8), envelope.encoded(),
            Array(String(configuration.bufferMax).utf8), Array(ttl.utf8),
            Array(String(max(configuration.resumeTTLSeconds * 4, 86_400 * 7)).utf8),
            Array(String(configuration.dedupWindowSeconds).utf8),
        ]
        redis.send(arguments) { [unowned self] result in
            session.appendsInFlight -= 1
            if session.appendsInFlight == Node.maxAppendsInFlight - 1 { session.setReading(true) }
            switch result {
            case .success(.array(let items)) where items.count == 2:
                guard let fresh = items[0].integerValue, let offset = items[1].integerValue, offset > 0 else {
                    self.refused(envelope, session, "unexpected store reply")
                    return
                }
                session.sendText(
                    ServerFrame.accepted(msgId: envelope.msgId, offset: UInt64(offset), duplicate: fresh == 0))
                if fresh == 0 {
                    self.metrics.drops(.duplicate)
                } else {
                    var delivered = envelope
                    delivered.offset = UInt64(offset)
                    self.route(delivered)
                }
            case .success(let reply):
                self.refused(envelope, session, "store answered \(reply)")
            case .failure(let error):
                self.refused(envelope, session, "store: \(error)")
            }
        }
    }

    private func refused(_ envelope: Envelope, _ session: Session, _ why: String) {
        metrics.drops(.storeUnavailable)
        session.sendText(ServerFrame.error(code: "unavailable", message: why, msgId: envelope.msgId))
    }

    /// The live push of a stored message: here, through Kafka to the owner, or nowhere (the inbox keeps it).
    private func route(_ envelope: Envelope) {
        let to = envelope.toClientId
        let offset = envelope.offset ?? 0
        if let recipient = sessions[to] {
            metrics.messagesOut(.local)
            push(envelope.encoded(), offset: offset, ts: envelope.ts, to: recipient)
            return
        }
        guard let owner = ring.owner(of: to), owner != configuration.nodeID, let producer else {
            metrics.messagesOut(.buffered)
            return
        }
        metrics.messagesOut(.relay)
        let delivery = Delivery(recipient: to, offset: offset, origin: configuration.nodeID, envelope: envelope)
        let started = loop.now
        producer.produce(topic: Keys.deliveryTopic(owner), key: Array(to.utf8), value: delivery.encoded()) {
            [unowned self] result in
            switch result {
            case .success:
                self.metrics.kafkaPublishLatency.observe(Double(self.loop.now &- started) / 1e9)
            case .failure:
                // Stored already: the recipient gets it on its next read of the inbox.
                self.metrics.drops(.relayFailed)
            }
        }
    }

    /// A record from this node's delivery topic: push it if the recipient is here (never forwarded again).
    private func relayed(_ message: KafkaMessage) {
        guard let delivery = try? message.value.withUnsafeBytes({ try Delivery.decode($0) }) else {
            metrics.drops(.badFrame)
            return
        }
        guard let recipient = sessions[delivery.recipient] else {
            metrics.drops(.recipientGone)
            return
        }
        var envelope = delivery.envelope
        envelope.offset = delivery.offset
        push(envelope.encoded(), offset: delivery.offset, ts: envelope.ts, to: recipient)
    }

    private func push(_ frame: [UInt8], offset: UInt64, ts: Int64, to session: Session) {
        guard session.isOpen else { return }
        let wantsFetch = session.cursor.push(offset: offset, frame: frame) { _, frame in
            session.sendText(frame)
            self.observeLatency(since: ts)
        }
        if wantsFetch { fetch(session) }
    }

    private func observeLatency(since ts: Int64) {
        let seconds = max(0, Double(wallClockMilliseconds() - ts) / 1000)
        metrics.deliveryLatency.observe(seconds)
        if latencySamples.count < 4096 { latencySamples.append(seconds * 1000) }
    }

    /// Reads the session's inbox from `cursor.next` on (the replay at connect, and gap fills).
    private func fetch(_ session: Session) {
        guard session.isOpen, !session.cursor.isFetching else { return }
        guard redis.isConnected else {
            session.fetchScheduled = false
            return
        }
        session.fetchScheduled = true
        let from = session.cursor.beginFetch()
        redis.send(["XRANGE", Keys.inbox(session.clientID), "\(from)-0", "+", "COUNT", String(Node.fetchCount)]) {
            [unowned self] result in
            session.fetchScheduled = false
            guard session.isOpen else { return }
            guard case .success(.array(let items)) = result else {
                session.cursor.fetchFailed()
                return
            }
            var entries: [(offset: UInt64, frame: [UInt8])] = []
            entries.reserveCapacity(items.count)
            for item in items {
                guard let entry = Node.inboxEntry(item) else { continue }
                entries.append(entry)
            }
            let complete = items.count < Node.fetchCount
            let again = session.cursor.fetched(entries, complete: complete) { _, frame in
                session.sendText(frame)
            }
            if complete { session.replayed = true }
            if !entries.isEmpty { self.metrics.messagesOut(.replay, by: entries.count) }
            if again { self.fetch(session) }
        }
    }

    /// One XRANGE entry `[id, [field, value, ...]]` as (offset, delivered frame).
    static func inboxEntry(_ reply: RedisReply) -> (offset: UInt64, frame: [UInt8])? {
        guard case .array(let pair) = reply, pair.count == 2, case .string(let id) = pair[0],
            case .array(let fields) = pair[1]
        else { return nil }
        guard let dash = id.firstIndex(of: UInt8(ascii: "-")),
            let offset = UInt64(String(decoding: id[..<dash], as: UTF8.self))
        else { return nil }
        var index = 0
        while index + 1 < fields.count {
            if case .string(let name) = fields[index], name == Array("e".utf8),
                case .string(let value) = fields[index + 1]
            {
                guard var envelope = try? value.withUnsafeBytes({ try Envelope.decode($0) }) else { return nil }
                envelope.offset = offset
                return (offset, envelope.encoded())
            }
            index += 2
        }
        return nil
    }

    // MARK: Ring

    /// A ring update from Kafka or Redis: applied only when signed with RING_SECRET and newer than ours.
    func ringUpdate(_ bytes: UnsafeRawBufferPointer, source: String) {
        let update: RingUpdate
        do {
            update = try RingUpdate.decode(bytes)
        } catch {
            metrics.ringUpdates(.malformed)
            return
        }
        // The poll of Redis sees the ring in force again and again: nothing to check or count.
        if source == "redis", update.version == ringVersion { return }
        switch update.validate(secret: configuration.ringSecret, currentVersion: ringVersion) {
        case .badSignature:
            metrics.ringUpdates(.badSignature)
            say("rtc-socket: ring update version \(update.version) from \(source) rejected: bad signature")
        case .stale:
            metrics.ringUpdates(.stale)
        case .accepted:
            metrics.ringUpdates(.applied)
            apply(update.ring, reason: update.reason)
        }
    }

    private func apply(_ fresh: Ring, reason: String) {
        ring = fresh
        ringVersion = fresh.version
        metrics.ringVersion.set(Double(fresh.version))
        // Moves only when this node is a live member: a node the ring does not know yet keeps its clients.
        guard !draining, let me = fresh.node(configuration.nodeID), me.weight > 0, !me.draining else { return }
        moveQueue.removeFirst(moved)
        moved = 0
        var queued = Set(moveQueue)
        for session in sessionList where session.isOpen {
            guard let owner = fresh.owner(of: session.clientID), owner != configuration.nodeID else { continue }
            if queued.insert(session.clientID).inserted { moveQueue.append(session.clientID) }
        }
        // Clients a newer ring gave back to us stay.
        moveQueue.removeAll { fresh.owner(of: $0) == configuration.nodeID }
        moveSchedule = BatchSchedule(
            total: moveQueue.count, start: loop.now, window: UInt64(configuration.moveWindowSeconds) * 1_000_000_000)
        say(
            "rtc-socket: ring version \(fresh.version) (\(reason)): \(fresh.nodes.count) node(s), moving \(moveQueue.count) client(s)"
        )
        armBatches()
    }

    private func pollRing() {
        redis.send(["GET", Keys.ring]) { [unowned self] result in
            guard case .success(.string(let bytes)) = result else { return }
            bytes.withUnsafeBytes { self.ringUpdate($0, source: "redis") }
        }
    }

    // MARK: Drain

    /// Starts the drain: readiness false, no new sessions, sessions closed in batches over DRAIN_SECONDS with a
    /// reconnect frame and Close 1001. With `exitWhenDone`, `onDrained` runs once the last session is gone.
    public func startDrain(exitWhenDone: Bool) {
        if exitWhenDone { exitWhenDrained = true }
        if draining {
            checkDrained()
            return
        }
        draining = true
        readiness.set(false)
        metrics.draining.set(1)
        moveQueue.removeAll()
        drainClosed = 0
        drainSchedule = BatchSchedule(
            total: sessionList.count, start: loop.now, window: UInt64(configuration.drainSeconds) * 1_000_000_000)
        say("rtc-socket: draining \(sessionList.count) session(s) over \(configuration.drainSeconds) s")
        heartbeat()
        armBatches()
        checkDrained()
    }

    private func checkDrained() {
        guard draining, exitWhenDrained, sessionList.isEmpty, let onDrained else { return }
        self.onDrained = nil
        say("rtc-socket: drain complete")
        onDrained()
    }

    private func armBatches() {
        guard !batchTimerArmed else { return }
        batchTimerArmed = true
        loop.schedule(after: .milliseconds(100), handler: self, tag: TimerTag.batches.rawValue)
    }

    private func runBatches() {
        batchTimerArmed = false
        let now = loop.now
        if draining {
            let due = drainSchedule.due(at: now)
            if drainClosed < due {
                for session in sessionList.lazy.filter({ $0.isOpen }).prefix(due - drainClosed) {
                    drainClosed += 1
                    session.close(
                        code: .goingAway, reason: "node draining", after: ServerFrame.reconnect(afterMs: jitter(2000)))
                }
            }
            if sessionList.contains(where: { $0.isOpen }) { armBatches() }
            return
        }
        let due = moveSchedule.due(at: now)
        while moved < due, moved < moveQueue.count {
            let id = moveQueue[moved]
            moved += 1
            guard let session = sessions[id], session.isOpen, ring.owner(of: id) != configuration.nodeID else {
                continue
            }
            metrics.moves.increment()
            session.close(code: .serviceRestart, reason: "moved", after: ServerFrame.reconnect(afterMs: jitter(1000)))
        }
        if moved < moveQueue.count {
            armBatches()
        } else {
            moveQueue.removeAll()
            moved = 0
        }
    }

    private func jitter(_ limit: UInt64) -> Int { Int(randomUInt64() % (limit + 1)) }

    // MARK: Heartbeats

    public func timerFired(tag: UInt64) {
        switch TimerTag(rawValue: tag) {
        case .heartbeat:
            heartbeat()
            pollRing()
            if !stopped {
                loop.schedule(
                    after: .seconds(configuration.heartbeatIntervalSeconds), handler: self,
                    tag: TimerTag.heartbeat.rawValue)
            }
        case .batches:
            runBatches()
        default:
            break
        }
    }

    /// Writes this node's load to Redis with a TTL (the balancer's membership); only once the store answered.
    private func heartbeat() {
        guard storeReady, redis.isConnected, !stopped else { return }
        let figures = ProcessFigures.current()
        let elapsed = max(1e-3, Double(loop.now &- lastHeartbeatAt) / 1e9)
        let cpu = lastHeartbeatAt == 0 ? 0 : (figures.cpuSeconds - lastCPU) / elapsed
        let rate = lastHeartbeatAt == 0 ? 0 : Double(messagesSinceHeartbeat) / elapsed
        lastCPU = figures.cpuSeconds
        lastHeartbeatAt = loop.now
        messagesSinceHeartbeat = 0
        latencySamples.sort()
        let p95 =
            latencySamples.isEmpty ? 0 : latencySamples[min(latencySamples.count - 1, latencySamples.count * 95 / 100)]
        latencySamples.removeAll(keepingCapacity: true)
        let beat = Heartbeat(
            nodeId: configuration.nodeID, podIP: configuration.podIP, port: Int(configuration.httpPort),
            connections: sessionList.count, messagesPerSecond: rate, p95DeliveryMs: p95, cpu: cpu,
            memoryBytes: Int(figures.residentBytes), draining: draining, ready: readiness.isReady,
            ts: wallClockMilliseconds())
        let key = Keys.heartbeat(configuration.nodeID)
        redis.send(
            [
                Array("SET".utf8), Array(key.utf8), beat.encoded(), Array("EX".utf8),
                Array(String(configuration.heartbeatTTLSeconds).utf8),
            ]
        ) { [unowned self] result in
            if case .success(.status) = result {
                self.metrics.heartbeats.increment()
            }
        }
    }

    public func loopStopping() {}
}

/// Why the node could not start.
public struct NodeStartError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// How many of `total` items should be done `elapsed` into a window: spread evenly, all of them at the end.
struct BatchSchedule: Equatable {
    var total: Int
    var start: UInt64
    var window: UInt64

    func due(at now: UInt64) -> Int {
        guard window > 0, now > start else { return window == 0 ? total : 0 }
        let elapsed = now - start
        if elapsed >= window { return total }
        // Rounded up: the first batch goes at once, the last one at the end of the window.
        return Int((UInt64(total) * elapsed + window - 1) / window)
    }
}

func wallClockMilliseconds() -> Int64 { Int64(wallClockSeconds() * 1000) }

func say(_ message: String) {
    var line = Array(message.utf8)
    line.append(0x0A)
    line.withUnsafeBytes { _ = try? FileDescriptor(1).write($0) }
}
