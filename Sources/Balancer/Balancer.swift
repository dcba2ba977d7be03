// The balancer service: assignments from the newest valid ring on every replica; on the leader, the round that
// reads heartbeats, reweights, publishes the signed ring, scales, sets deletion costs and re-routes departed nodes.
import EventLoop
import HTTPServer
import JSON
import Kafka
import Redis
import Resolver
import Ring
import Sys
import Wire

/// The balancer's core (SYSTEM §3).
///
/// Every replica reads the socket nodes' heartbeats and the ring in Redis once per round, takes ring updates from
/// Kafka as they come, and answers `/ws/connect` from the newest ring whose signature and version it checked. Only
/// while `leadership.isLeader` does a replica act: it turns the heartbeats into ring weights, publishes a new ring
/// when they changed (its version from a Redis counter that never goes back, the ring written to Redis only if no
/// newer one is there, then produced to Kafka), decides the socket replica count, keeps deletion costs equal to live
/// connections, and re-routes what a departed node left in its delivery topic.
///
/// `@unchecked Sendable`: the balancer is confined to its loop. HTTP handlers (the server listens on this loop),
/// timers, Redis replies, Kafka callbacks and leadership changes all run on the loop's thread.
public final class Balancer: TimerHandler, @unchecked Sendable {
    public let configuration: BalancerConfiguration
    public let loop: EventLoop
    public let metrics: BalancerMetrics
    /// Readiness for `/readyz`: true while Redis answers or a ring is held.
    public let readiness = ReadinessFlag(false)
    let leadership: any Leadership
    let cluster: any ClusterActions
    let redis: RedisClient
    private var producer: KafkaProducer?
    private var ringConsumer: KafkaConsumer?
    private(set) var admin: KafkaAdmin?

    /// The newest valid ring update seen (from Redis, Kafka, or published here).
    public private(set) var current: RingUpdate?
    /// `current`'s ring, built once when it is held: `RingUpdate.ring` builds a new one (sort, seeds) on every
    /// call, which was half of an assignment's cost.
    private(set) var currentRing: Ring?
    /// The last heartbeat round's membership.
    public private(set) var membership = Membership(members: [])
    /// Pod IPs by node id, from the heartbeats (the `ip` URL form).
    private var addresses: [String: String] = [:] {
        didSet { if addresses != oldValue { answers.removeAll(keepingCapacity: true) } }
    }
    /// The 200 answer for each owner under the ring and addresses in force, made once: an assignment is then a
    /// placement and a copy-on-write copy, with no JSON written per request.
    private var answers: [String: Response] = [:]
    private var weights = Weights()
    private var weightsSeeded = false
    private(set) var scaler: Scaler
    /// The replica count last applied in direct mode, and the deletion costs last set (nil: set them next round).
    private var appliedReplicas: Int?
    private var appliedCosts: [String: Int]?
    private var costsInFlight = false
    private var replicasInFlight = false
    private var roundInFlight = false
    private var publishing = false
    private(set) var reroutes: [String: Reroute] = [:]
    private var stopped = false

    /// Most heartbeat keys read in one round; more are skipped and counted (`too_many`).
    static let maxHeartbeats = 10_000
    /// Redis set of departed nodes whose delivery topics still need re-routing (survives a leader change).
    static let pendingReroutes = "rtc:balancer:reroute"

    /// `INCR` of the version counter, lifted above the highest version known here if the counter was lost.
    static let nextVersion = RedisScript(
        """
        local v = redis.call('INCR', KEYS[1])
        local floor = tonumber(ARGV[1])
        if v <= floor then
          v = floor + 1
          redis.call('SET', KEYS[1], v)
        end
        return v
        """)
    /// `SET` of the ring only when the ring there is older (two leaders for a moment can never move it back).
    static let setIfNewer = RedisScript(
        """
        local held = redis.call('GET', KEYS[1])
        if held then
          local ok, ring = pcall(cjson.decode, held)
          if ok and type(ring) == 'table' and tonumber(ring.version) and tonumber(ring.version) >= tonumber(ARGV[2]) then
            return 0
          end
        end
        redis.call('SET', KEYS[1], ARGV[1])
        return 1
        """)

    private enum TimerTag: UInt64 {
        case round = 1
    }

    public init(
        configuration: BalancerConfiguration, loop: EventLoop, metrics: BalancerMetrics, resolver: Resolver?,
        leadership: any Leadership, cluster: any ClusterActions
    ) throws(BalancerStartError) {
        self.configuration = configuration
        self.loop = loop
        self.metrics = metrics
        self.leadership = leadership
        self.cluster = cluster
        let endpoint: RedisEndpoint
        do {
            endpoint = try RedisEndpoint.parse(url: configuration.redisURL)
        } catch {
            throw BalancerStartError(message: "REDIS_URL: \(error)")
        }
        redis = RedisClient(loop: loop, endpoint: endpoint, resolver: resolver)
        scaler = Scaler(policy: configuration.scalePolicy)
    }

    // MARK: Start and stop

    /// Connects to Redis and Kafka, starts leadership and the rounds. On the loop thread.
    public func start() throws(BalancerStartError) {
        redis.onConnectionChange = { [unowned self] connected in
            if connected {
                say("rtc-balancer: redis \(self.configuration.redisURL) connected")
                self.readiness.set(true)
                self.round()
            } else {
                say("rtc-balancer: redis \(self.configuration.redisURL) unreachable")
                self.readiness.set(self.current != nil)
            }
        }
        redis.start()
        let bootstrap = configuration.kafkaBootstrap
        do {
            producer = try KafkaProducer(loop: loop, bootstrap: bootstrap, config: ["linger.ms": "1"])
            // Every replica reads every ring update: a group of its own, from the newest (the ring in force is read
            // from Redis each round).
            ringConsumer = try KafkaConsumer(
                loop: loop, bootstrap: bootstrap,
                groupID: "rtc-balancer.ring.\(configuration.podName).\(processID())", topics: [Keys.ringTopic],
                config: ["auto.offset.reset": "latest"],
                handler: { [unowned self] message in self.received(message.value, source: "kafka") })
            admin = try KafkaAdmin(loop: loop, bootstrap: bootstrap, requestTimeout: .seconds(10))
        } catch {
            throw BalancerStartError(message: "KAFKA_BOOTSTRAP \(bootstrap): \(error)")
        }
        leadership.onChange = { [unowned self] leading in self.leadershipChanged(leading) }
        leadership.start()
        loop.schedule(
            after: .seconds(configuration.reconcileIntervalSeconds), handler: self, tag: TimerTag.round.rawValue)
    }

    /// Stops acting and closes the clients; `done` runs after. Closing the Kafka clients may block the loop briefly.
    public func shutdown(then done: @escaping () -> Void) {
        guard !stopped else { return }
        stopped = true
        leadership.stop()
        for reroute in reroutes.values { reroute.cancel() }
        reroutes.removeAll()
        ringConsumer?.close()
        producer?.close(flushTimeout: .seconds(2))
        admin?.close()
        ringConsumer = nil
        producer = nil
        admin = nil
        redis.close()
        done()
    }

    private func leadershipChanged(_ leading: Bool) {
        metrics.isLeader.set(leading ? 1 : 0)
        say("rtc-balancer: \(configuration.podName) is \(leading ? "now" : "no longer") the leader")
        if leading {
            // A new term: weights continue from the ring in force, costs and the scale are set again.
            weights = Weights()
            weightsSeeded = false
            scaler = Scaler(policy: configuration.scalePolicy)
            appliedReplicas = nil
            appliedCosts = nil
            resumePendingReroutes()
            if !roundInFlight { round() }
        } else {
            // Only the leader's count may be read (dashboards and KEDA take the max over replicas): a former leader's
            // number would hold the scale up.
            metrics.desiredReplicas.set(0)
            for reroute in reroutes.values { reroute.cancel() }
            reroutes.removeAll()
        }
    }

    // MARK: HTTP endpoints

    /// Adds `GET /ws/connect` and `GET /api/v1/ring` to `router`.
    public func install(in router: inout Router) {
        router.get("/ws/connect") { [unowned self] request in self.assign(request) }
        router.get("/api/v1/ring") { [unowned self] request in self.ringResponse(request) }
    }

    /// `GET /ws/connect?clientId=…`: the owner of the client in the ring held (SYSTEM §3).
    public func assign(_ request: Request) -> Response {
        if let clientID = request.query["clientId"], ClientID.isValid(clientID),
            let owner = currentRing?.owner(of: clientID), let cached = answers[owner]
        {
            metrics.assigned.increment()
            return cached
        }
        let answer = Assignment.decide(
            clientID: request.query["clientId"], ring: currentRing, form: configuration.urlForm,
            address: { [addresses] node in addresses[node] })
        metrics.assignments.labels(answer.outcome).increment()
        var response = Response.json(bytes: answer.body, status: answer.status)
        response.headers.append(.init(name: "Cache-Control", value: "no-store"))
        if answer.status == 503 { response.headers.append(.init(name: "Retry-After", value: "1")) }
        if case .assigned(let owner, _, _) = answer { answers[owner] = response }
        return response
    }

    /// `GET /api/v1/ring`: the signed ring update held, as published (503 JSON error before the first one).
    public func ringResponse(_ request: Request) -> Response {
        guard let current else {
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("error", "no_ring")
            writer.field("message", "no ring has been published yet")
            writer.endObject()
            return .json(bytes: writer.bytes, status: 503)
        }
        return .json(bytes: current.encoded())
    }

    // MARK: Rings read

    /// A ring update from Redis or Kafka: taken only when signed with RING_SECRET and newer than the one held.
    func received(_ bytes: [UInt8], source: String) {
        let update: RingUpdate
        do {
            update = try RingUpdate.decode(bytes)
        } catch {
            metrics.ringUpdate(.malformed)
            return
        }
        // The Redis read sees the ring held again and again: nothing to check or count.
        if source == "redis", update.version == current?.version { return }
        switch update.validate(secret: configuration.ringSecret, currentVersion: current?.version) {
        case .badSignature:
            metrics.ringUpdate(.badSignature)
            say("rtc-balancer: ring version \(update.version) from \(source) rejected: bad signature")
        case .stale:
            metrics.ringUpdate(.stale)
        case .accepted:
            metrics.ringUpdate(.applied)
            hold(update)
        }
    }

    private func hold(_ update: RingUpdate) {
        current = update
        let ring = update.ring
        currentRing = ring
        answers.removeAll(keepingCapacity: true)
        readiness.set(true)
        metrics.ringVersion.set(Double(update.version))
        let draining = ring.nodes.filter(\.draining).count
        let active = ring.nodes.filter { $0.weight > 0 && !$0.draining }.count
        metrics.ringNodes.labels("active").set(Double(active))
        metrics.ringNodes.labels("draining").set(Double(draining))
        metrics.ringNodes.labels("unready").set(Double(ring.nodes.count - active - draining))
        // ip form: a ring naming a node whose heartbeat this replica has not read yet is answered 503 until it has;
        // read the heartbeats now rather than at the next round (a round in flight reads them anyway).
        if configuration.urlForm == .ip && ring.eligibleIDs.contains(where: { addresses[$0] == nil }) { round() }
    }

    // MARK: Rounds

    public func timerFired(tag: UInt64) {
        guard TimerTag(rawValue: tag) == .round, !stopped else { return }
        round()
        loop.schedule(
            after: .seconds(configuration.reconcileIntervalSeconds), handler: self, tag: TimerTag.round.rawValue)
    }

    /// One round: the ring in Redis, then the heartbeats, then (leader only) the leader's work.
    func round() {
        guard !roundInFlight, !stopped, redis.isConnected else { return }
        roundInFlight = true
        redis.send(["GET", Keys.ring]) { [unowned self] result in
            if case .success(.string(let bytes)) = result { self.received(bytes, source: "redis") }
            self.readHeartbeats(cursor: "0", keys: [], seen: []) { [unowned self] entries in
                self.roundInFlight = false
                guard let entries, !self.stopped else {
                    self.metrics.heartbeatRounds.labels("failed").increment()
                    return
                }
                self.metrics.heartbeatRounds.labels("ok").increment()
                let membership = Membership.read(entries, form: self.configuration.urlForm)
                for skipped in membership.skipped {
                    self.metrics.heartbeatsSkipped.labels(skipped.reason.rawValue).increment()
                }
                self.membership = membership
                var addresses: [String: String] = [:]
                for beat in membership.members { addresses[beat.nodeId] = beat.podIP }
                self.addresses = addresses
                if self.leadership.isLeader { self.lead(membership) }
            }
        }
    }

    /// `SCAN` over the heartbeat keys, then `MGET` of them in batches; nil when Redis failed on the way.
    private func readHeartbeats(
        cursor: String, keys: [String], seen: Set<String>, _ done: @escaping ([(key: String, value: [UInt8]?)]?) -> Void
    ) {
        redis.send(["SCAN", cursor, "MATCH", Keys.heartbeatPattern, "COUNT", "1000"]) { [unowned self] result in
            guard case .success(.array(let parts)) = result, parts.count == 2, let next = parts[0].stringValue,
                let found = parts[1].arrayValue
            else { return done(nil) }
            var keys = keys
            var seen = seen
            for key in found {
                guard let key = key.stringValue, seen.insert(key).inserted else { continue }
                if keys.count >= Balancer.maxHeartbeats {
                    self.metrics.heartbeatsSkipped.labels("too_many").increment()
                    continue
                }
                keys.append(key)
            }
            if next != "0" {
                self.readHeartbeats(cursor: next, keys: keys, seen: seen, done)
            } else {
                self.values(of: keys, from: 0, into: [], done)
            }
        }
    }

    private func values(
        of keys: [String], from start: Int, into entries: [(key: String, value: [UInt8]?)],
        _ done: @escaping ([(key: String, value: [UInt8]?)]?) -> Void
    ) {
        guard start < keys.count else { return done(entries) }
        let batch = Array(keys[start..<min(keys.count, start + 500)])
        redis.send(["MGET"] + batch) { [unowned self] result in
            guard case .success(.array(let values)) = result, values.count == batch.count else { return done(nil) }
            var entries = entries
            for (key, value) in zip(batch, values) { entries.append((key, value.bytesValue)) }
            self.values(of: keys, from: start + batch.count, into: entries, done)
        }
    }

    // MARK: The leader's work

    private func lead(_ membership: Membership) {
        if !weightsSeeded, let ring = currentRing {
            weights.seed(from: ring)
        }
        weightsSeeded = true
        let nodes = weights.step(membership)
        let proposed = Ring(version: 0, nodes: nodes)
        if let held = currentRing {
            if held.nodes != proposed.nodes && !publishing {
                publish(proposed.nodes, reason: reason(from: held, to: proposed))
            }
        } else if !nodes.isEmpty && !publishing {
            publish(proposed.nodes, reason: "first ring")
        }
        scale(membership)
        setDeletionCosts(membership)
    }

    /// Why the ring changes, for logs and the update's `reason`.
    func reason(from held: Ring, to proposed: Ring) -> String {
        let before = Set(held.nodes.map(\.id))
        let after = Set(proposed.nodes.map(\.id))
        var parts: [String] = []
        let joined = proposed.nodes.map(\.id).filter { !before.contains($0) }
        let left = held.nodes.map(\.id).filter { !after.contains($0) }
        let draining = proposed.nodes.filter { node in node.draining && held.node(node.id)?.draining != true }.map(\.id)
        if !joined.isEmpty { parts.append("joined " + joined.joined(separator: ",")) }
        if !left.isEmpty { parts.append("left " + left.joined(separator: ",")) }
        if !draining.isEmpty { parts.append("draining " + draining.joined(separator: ",")) }
        if parts.isEmpty { parts.append("reweighted") }
        return parts.joined(separator: "; ")
    }

    /// Version from the counter, signed update set in Redis if newer, then produced to Kafka (partition 0).
    private func publish(_ nodes: [RingNode], reason: String) {
        publishing = true
        let floor = current?.version ?? 0
        redis.eval(Balancer.nextVersion, keys: [Keys.ringVersion], arguments: [Array(String(floor).utf8)]) {
            [unowned self] result in
            guard case .success(let reply) = result, let number = reply.integerValue, number > 0 else {
                self.publishing = false
                say("rtc-balancer: ring version counter failed: \(result)")
                return
            }
            guard self.leadership.isLeader, !self.stopped else {
                self.publishing = false
                return
            }
            let update = RingUpdate(
                version: UInt64(number), nodes: nodes, reason: reason, ts: Int64(wallClockSeconds() * 1000)
            ).signed(secret: self.configuration.ringSecret)
            let bytes = update.encoded()
            self.redis.eval(Balancer.setIfNewer, keys: [Keys.ring], arguments: [bytes, Array(String(number).utf8)]) {
                [unowned self] result in
                self.publishing = false
                guard case .success(.integer(1)) = result else {
                    say("rtc-balancer: ring version \(number) not written (a newer ring is in Redis, or: \(result))")
                    return
                }
                let previous = self.currentRing
                if update.version > (self.current?.version ?? 0) { self.hold(update) }
                self.metrics.published.increment()
                say("rtc-balancer: published ring version \(number) (\(reason)): \(nodes.count) node(s)")
                self.producer?.produce(topic: Keys.ringTopic, key: [], value: bytes, partition: 0) { result in
                    if case .failure(let error) = result {
                        say("rtc-balancer: ring version \(number) not produced to Kafka: \(error)")
                    }
                }
                if let previous {
                    let after = Set(nodes.map(\.id))
                    for node in previous.nodes where !after.contains(node.id) { self.departed(node.id) }
                }
            }
        }
    }

    private func scale(_ membership: Membership) {
        let decision = scaler.decide(membership, now: Double(loop.now) / 1e9)
        metrics.desiredReplicas.set(Double(decision.desired))
        metrics.scalingDecisions.labels(decision.direction.rawValue, decision.reason.rawValue).increment()
        if decision.direction != .none {
            say(
                "rtc-balancer: desired socket replicas \(decision.desired) (\(decision.direction.rawValue), "
                    + "\(decision.reason.rawValue))")
        }
        // keda: the gauge is the whole action. direct: patch the scale, never both.
        guard configuration.scaleMode == .direct, decision.desired != appliedReplicas, !replicasInFlight else { return }
        let desired = decision.desired
        replicasInFlight = true
        cluster.setReplicas(desired) { [unowned self] result in
            self.replicasInFlight = false
            self.metrics.kubeAPICall(verb: "patch", success: result.isSuccess)
            switch result {
            case .success: self.appliedReplicas = desired
            case .failure(let error): say("rtc-balancer: scaling to \(desired) failed: \(error)")
            }
        }
    }

    /// Deletion cost of each socket pod = its live connections; set only when some cost changed.
    private func setDeletionCosts(_ membership: Membership) {
        var costs: [String: Int] = [:]
        for beat in membership.members { costs[beat.nodeId] = min(beat.connections, Int(Int32.max)) }
        guard costs != appliedCosts, !costsInFlight, !costs.isEmpty else { return }
        costsInFlight = true
        cluster.setDeletionCosts(costs) { [unowned self] result in
            self.costsInFlight = false
            self.metrics.kubeAPICall(verb: "patch", success: result.isSuccess)
            switch result {
            case .success: self.appliedCosts = costs
            case .failure(let error): say("rtc-balancer: deletion costs not set: \(error)")
            }
        }
    }

    // MARK: Re-routing departed nodes

    /// A node left the ring: note it in Redis (so a next leader finishes the work), then re-route its topic.
    private func departed(_ node: String) {
        redis.send(["SADD", Balancer.pendingReroutes, node]) { _ in }
        startReroute(node)
    }

    private func resumePendingReroutes() {
        redis.send(["SMEMBERS", Balancer.pendingReroutes]) { [unowned self] result in
            guard self.leadership.isLeader, case .success(.array(let members)) = result else { return }
            for member in members {
                guard let node = member.stringValue, NodeID.isValid(node) else { continue }
                if self.currentRing?.node(node) == nil { self.startReroute(node) }
            }
        }
    }

    private func startReroute(_ node: String) {
        guard reroutes[node] == nil, leadership.isLeader, !stopped, membership.member(node) == nil else { return }
        do {
            let reroute = try Reroute(
                node: node, balancer: self, window: .seconds(configuration.rerouteWindowSeconds))
            reroutes[node] = reroute
            say("rtc-balancer: re-routing what \(node) left in \(Keys.deliveryTopic(node))")
        } catch {
            say("rtc-balancer: cannot re-route \(node): \(error)")
        }
    }

    /// The new owner of a recipient, for a departed node's records.
    func owner(of recipient: String) -> String? { currentRing?.owner(of: recipient) }

    /// Produces one re-routed record; `done` tells whether Kafka took it.
    func produce(topic: String, key: [UInt8], value: [UInt8], _ done: @escaping (Bool) -> Void) {
        guard let producer else { return done(false) }
        producer.produce(topic: topic, key: key, value: value) { result in done(result.isSuccess) }
    }

    /// Whether a node is alive (its heartbeat was read this round) or in the ring held.
    func isPresent(_ node: String) -> Bool { membership.member(node) != nil || currentRing?.node(node) != nil }

    /// A departed node is back under the same name (pod names are unique in a cluster; a local restart reuses one):
    /// stop re-routing, keep its topic.
    func cameBack(_ reroute: Reroute) {
        reroute.cancel()
        reroutes[reroute.node] = nil
        redis.send(["SREM", Balancer.pendingReroutes, reroute.node]) { _ in }
        say("rtc-balancer: \(reroute.node) is back: its topic is left to it")
    }

    /// A re-route ended: forget it, drop it from the pending set, delete the topic (a failure is logged only).
    func finished(_ reroute: Reroute, records: Int) {
        reroutes[reroute.node] = nil
        say("rtc-balancer: re-routed \(records) record(s) of \(reroute.node)")
        redis.send(["SREM", Balancer.pendingReroutes, reroute.node]) { _ in }
        guard !isPresent(reroute.node) else { return }
        let topic = Keys.deliveryTopic(reroute.node)
        let deletions = metrics.topicDeletions
        admin?.deleteTopic(topic) { result in
            switch result {
            case .success:
                deletions.labels("deleted").increment()
                say("rtc-balancer: deleted \(topic)")
            case .failure(let error):
                deletions.labels("failed").increment()
                say("rtc-balancer: \(topic) not deleted: \(error)")
            }
        }
    }

    public func loopStopping() {}
}

/// Why the balancer could not start.
public struct BalancerStartError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}

func say(_ message: String) {
    var line = Array(message.utf8)
    line.append(0x0A)
    line.withUnsafeBytes { _ = try? FileDescriptor(1).write($0) }
}
