// The balancer end to end: real redis-server, the librdkafka mock cluster, rtc-socket processes, curl, promtool.
import Foundation
import Kafka
import Ring
import Synchronization
import TestSupport
import Testing
import Wire

@testable import Balancer

#if canImport(Glibc)
import Glibc
#endif

/// Waits until `balancer` holds a ring satisfying `condition`; returns it.
func waitForRing(
    _ balancer: BalancerHandle, timeout: Duration = .seconds(15), _ condition: (RingUpdate) -> Bool
) -> RingUpdate? {
    var found: RingUpdate?
    _ = waitUntil(timeout: timeout) {
        guard let ring = balancer.ring, condition(ring) else { return false }
        found = ring
        return true
    }
    return found
}

func ids(_ update: RingUpdate) -> [String] { update.nodes.map(\.id).sorted() }

@Suite(.serialized) struct EndToEndTests {
    @Test func assignmentsThroughCurlInBothURLForms() throws {
        let stack = try Stack()
        defer { stack.stop() }
        let byName = try stack.startBalancer()
        // No node yet: 503 with a JSON error, and a 400 for bad client ids.
        #expect(waitUntil(timeout: .seconds(10)) { (try? curl(byName.url("/readyz")).status) == 200 })
        let empty = try byName.assign("u1")
        #expect(empty.status == 503)
        #expect(empty.body["error"] as? String == "no_node")
        for bad in ["", "a%20b", "a/b", String(repeating: "x", count: 129)] {
            let answer = try byName.assign(bad)
            #expect(answer.status == 400, "clientId=\(bad)")
            #expect(answer.body["error"] as? String == "bad_client_id")
        }
        let missing = try curl(byName.url("/ws/connect"))
        #expect(missing.status == 400)
        #expect(json(missing.body)["error"] as? String == "bad_client_id")

        try stack.startNode(1)
        try stack.startNode(2)
        let both = try #require(waitForRing(byName) { ids($0) == ["socket-1", "socket-2"] })
        let byIP = try stack.startBalancer(leading: false) { $0.urlForm = .ip }
        #expect(waitForRing(byIP) { $0.version == both.version } != nil)
        var owners: Set<String> = []
        for index in 0..<40 {
            let client = "client-\(index)"
            let owner = try #require(both.ring.owner(of: client))
            owners.insert(owner)
            let named = try byName.assign(client)
            #expect(named.status == 200)
            #expect(named.body["socketNodeId"] as? String == owner)
            #expect(named.body["url"] as? String == "/ws/\(owner)/connect")
            #expect((named.body["ringVersion"] as? NSNumber)?.uint64Value == both.version)
            // The ip form: the pod name still, and the node's heartbeat address dashed, a DNS-1123 label.
            let addressed = try byIP.assign(client)
            #expect(addressed.status == 200)
            #expect(addressed.body["socketNodeId"] as? String == owner)
            let index = Int(owner.dropFirst("socket-".count))!
            let label = stack.host(index).replacingOccurrences(of: ".", with: "-")
            #expect(addressed.body["url"] as? String == "/ws/\(label)/connect")
            #expect(isDNSLabel(label))
        }
        #expect(owners == ["socket-1", "socket-2"])
        // Stable: the same client gets the same node from any replica, again and again.
        for _ in 0..<3 {
            #expect(try byName.assign("client-7").body["socketNodeId"] as? String == both.ring.owner(of: "client-7"))
            #expect(try byIP.assign("client-7").body["socketNodeId"] as? String == both.ring.owner(of: "client-7"))
        }
        #expect(byName.metric("rtc_balancer_assignments_total", #"result="assigned""#) == 43)
        #expect(byName.metric("rtc_balancer_assignments_total", #"result="bad_client_id""#) == 5)
        #expect(byName.metric("rtc_balancer_assignments_total", #"result="no_node""#) == 1)
        // The ring endpoint serves the signed update as published.
        let ring = try curl(byIP.url("/api/v1/ring"))
        #expect(ring.status == 200)
        let update = try RingUpdate.decode(Array(ring.body.utf8))
        #expect(update.validate(secret: Array(stack.ringSecret.utf8), currentVersion: nil) == .accepted)
        #expect(update.version == both.version)
    }

    @Test func anExpiredNodeLeavesWithinOneIntervalAndEveryRingReachesTheNodes() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        let balancer = try stack.startBalancer()
        let both = try #require(waitForRing(balancer) { ids($0) == ["socket-1", "socket-2"] })
        // Every ring the balancer publishes is accepted by the nodes.
        for index in [1, 2] {
            #expect(
                waitUntil(timeout: .seconds(10)) {
                    stack.nodeMetric(index, "rtc_socket_ring_version") == Double(both.version)
                })
        }
        stack.node(2)!.send(SIGKILL)
        _ = stack.node(2)!.waitForExit()
        stack.forget(2)
        let killed = ContinuousClock.now
        let alone = try #require(waitForRing(balancer) { ids($0) == ["socket-1"] })
        // TTL (2 s) plus one round (1 s), with a second of slack for the test's own polling.
        let took = ContinuousClock.now - killed
        #expect(took < .seconds(4), "took \(took)")
        #expect(alone.version > both.version)
        #expect(alone.reason.contains("left socket-2"))
        #expect(
            waitUntil(timeout: .seconds(10)) { stack.nodeMetric(1, "rtc_socket_ring_version") == Double(alone.version) }
        )
        #expect(stack.nodeMetric(1, "rtc_socket_ring_updates_total", #"outcome="bad_signature""#) == 0)
        #expect(stack.ringInRedis()?.version == alone.version)
        #expect(balancer.metric("rtc_balancer_ring_nodes", #"state="active""#) == 1)
        #expect(balancer.metric("rtc_balancer_ring_version") == Double(alone.version))
        let assigned = try balancer.assign("anyone")
        #expect(assigned.body["socketNodeId"] as? String == "socket-1")
    }

    @Test func aDrainingNodeGetsWeightZeroAndNoNewClients() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        let balancer = try stack.startBalancer()
        _ = try #require(waitForRing(balancer) { ids($0) == ["socket-1", "socket-2"] })
        #expect(try curl(stack.nodeURL(2, "/drain"), method: "POST").status == 200)
        let drained = try #require(
            waitForRing(balancer) { $0.nodes.contains { $0.id == "socket-2" && $0.draining && $0.weight == 0 } })
        #expect(drained.nodes.first { $0.id == "socket-1" }?.weight ?? 0 > 0)
        #expect(drained.reason.contains("draining socket-2"))
        for index in 0..<60 {
            let answer = try balancer.assign("fresh-\(index)")
            #expect(answer.body["socketNodeId"] as? String == "socket-1")
        }
        #expect(balancer.metric("rtc_balancer_ring_nodes", #"state="draining""#) == 1)
        // The draining node took the ring too (it keeps its sessions but owns nobody).
        #expect(
            waitUntil(timeout: .seconds(10)) {
                stack.nodeMetric(2, "rtc_socket_ring_version") == Double(drained.version)
            })
    }

    @Test func theRingVersionNeverGoesBackAcrossLeaderChanges() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        let first = try stack.startBalancer(leading: true)
        let second = try stack.startBalancer(leading: false)
        var versions: [UInt64] = []
        let one = try #require(waitForRing(first) { ids($0) == ["socket-1"] })
        versions.append(one.version)
        #expect(waitForRing(second) { $0.version == one.version } != nil)
        #expect(first.metric("rtc_balancer_is_leader") == 1)
        #expect(second.metric("rtc_balancer_is_leader") == 0)
        #expect(waitUntil(timeout: .seconds(5)) { first.metric("rtc_balancer_desired_socket_replicas") == 2 })
        #expect(second.metric("rtc_balancer_desired_socket_replicas") == 0)

        // Failover: the second leads; a node joins; its ring is newer.
        try first.setLeader(false)
        try second.setLeader(true)
        try stack.startNode(2)
        let two = try #require(waitForRing(second) { ids($0) == ["socket-1", "socket-2"] })
        versions.append(two.version)
        #expect(first.metric("rtc_balancer_desired_socket_replicas") == 0)
        #expect(first.metric("rtc_balancer_is_leader") == 0)
        #expect(first.metric("rtc_balancer_ring_updates_published_total") == 1)
        #expect(second.metric("rtc_balancer_ring_updates_published_total") == 1)
        // The follower took it from Redis or Kafka.
        #expect(waitForRing(first) { $0.version == two.version } != nil)

        // The counter is lost (a Redis restart without persistence): versions still grow past the ring in force.
        _ = try stack.redisCLI(["DEL", Keys.ringVersion])
        try second.setLeader(false)
        try first.setLeader(true)
        stack.node(2)!.send(SIGKILL)
        _ = stack.node(2)!.waitForExit()
        stack.forget(2)
        let three = try #require(waitForRing(first) { ids($0) == ["socket-1"] })
        versions.append(three.version)

        // Two leaders for a moment: each publishes, and Redis never holds an older ring than before.
        try second.setLeader(true)
        try stack.startNode(3)
        var seen: [UInt64] = []
        _ = waitUntil(timeout: .seconds(10)) {
            if let version = stack.ringInRedis()?.version, seen.last != version { seen.append(version) }
            return stack.ringInRedis().map(ids) == ["socket-1", "socket-3"]
        }
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0 < $1 }, "\(seen)")
        versions.append(try #require(stack.ringInRedis()).version)
        #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }, "\(versions)")
        for index in [1, 3] {
            #expect(
                waitUntil(timeout: .seconds(10)) {
                    stack.nodeMetric(index, "rtc_socket_ring_version") == Double(versions.last!)
                })
        }
    }

    @Test func followersTakeOnlySignedNewerRingsFromRedisAndKafka() throws {
        let stack = try Stack()
        defer { stack.stop() }
        let follower = try stack.startBalancer(leading: false)
        let secret = Array(stack.ringSecret.utf8)
        let nodes = [RingNode(id: "socket-a", weight: 1, draining: false)]
        func update(_ version: UInt64, key: [UInt8]) -> RingUpdate {
            RingUpdate(version: version, nodes: nodes, reason: "test", ts: 1).signed(secret: key)
        }
        func setInRedis(_ update: RingUpdate) throws {
            _ = try stack.redisCLI(["SET", Keys.ring, String(decoding: update.encoded(), as: UTF8.self)])
        }
        try setInRedis(update(5, key: secret))
        #expect(waitForRing(follower) { $0.version == 5 } != nil)
        try setInRedis(update(9, key: Array("forged".utf8)))
        #expect(
            waitUntil(timeout: .seconds(10)) {
                (follower.metric("rtc_balancer_ring_updates_total", #"outcome="bad_signature""#) ?? 0) >= 1
            })
        #expect(follower.ring?.version == 5)

        let loop = try RunningLoop()
        defer { loop.stop() }
        let bootstrap = stack.kafka.bootstrap
        let producer = Unchecked(try loop.sync { try KafkaProducer(loop: loop.loop, bootstrap: bootstrap) })
        defer { _ = try? loop.sync { producer.value.close(flushTimeout: .seconds(1)) } }
        func produce(_ update: RingUpdate) throws {
            try loop.sync {
                producer.value.produce(topic: Keys.ringTopic, key: [], value: update.encoded(), partition: 0) { _ in }
            }
        }
        // The follower's ring consumer joins its group first (about 3 s with the mock cluster): retry until seen.
        let seen = waitUntil(timeout: .seconds(30)) {
            try? produce(update(7, key: secret))
            return waitForRing(follower, timeout: .seconds(2)) { $0.version == 7 } != nil
        }
        #expect(seen)
        try produce(update(6, key: secret))
        #expect(
            waitUntil(timeout: .seconds(10)) {
                (follower.metric("rtc_balancer_ring_updates_total", #"outcome="stale""#) ?? 0) >= 1
            })
        #expect(follower.ring?.version == 7)
        let answer = try follower.assign("u1")
        #expect(answer.body["socketNodeId"] as? String == "socket-a")
        #expect((answer.body["ringVersion"] as? NSNumber)?.intValue == 7)
        #expect(follower.metric("rtc_balancer_is_leader") == 0)
        #expect(follower.metric("rtc_balancer_ring_updates_published_total") == 0)
    }

    /// Writes a synthetic heartbeat (as a socket node would, with an expiry).
    static func setBeat(_ stack: Stack, _ beat: Heartbeat) throws {
        _ = try stack.redisCLI([
            "SET", Keys.heartbeat(beat.nodeId), String(decoding: beat.encoded(), as: UTF8.self), "EX", "30",
        ])
    }

    @Test func balancedLoadKeepsTheRingAndImbalanceMovesWeightsInBoundedSteps() throws {
        let stack = try Stack()
        defer { stack.stop() }
        for id in ["n-a", "n-b", "n-c"] { try EndToEndTests.setBeat(stack, beat(id, connections: 1000, cpu: 0.5)) }
        let balancer = try stack.startBalancer()
        let first = try #require(waitForRing(balancer) { ids($0) == ["n-a", "n-b", "n-c"] })
        #expect(first.nodes.allSatisfy { $0.weight == 1 })
        // Balanced (and slightly noisy) load for several rounds: no new ring.
        for round in 0..<4 {
            for (index, id) in ["n-a", "n-b", "n-c"].enumerated() {
                try EndToEndTests.setBeat(stack, beat(id, connections: 1000 + ((round + index) % 2) * 60, cpu: 0.5))
            }
            Thread.sleep(forTimeInterval: 1)
        }
        #expect(balancer.ring?.version == first.version)
        #expect(balancer.metric("rtc_balancer_ring_updates_published_total") == 1)

        // n-a runs hot: its weight falls over several rounds, never by more than one step at a time.
        try EndToEndTests.setBeat(stack, beat("n-a", connections: 3000, cpu: 1.5, p95: 80))
        try EndToEndTests.setBeat(stack, beat("n-b", connections: 1000, cpu: 0.5))
        try EndToEndTests.setBeat(stack, beat("n-c", connections: 1000, cpu: 0.5))
        var weights: [Double] = [1]
        _ = waitUntil(timeout: .seconds(20)) {
            if let weight = balancer.ring?.nodes.first(where: { $0.id == "n-a" })?.weight, weights.last != weight {
                weights.append(weight)
            }
            return (weights.last ?? 1) < 0.7
        }
        #expect((weights.last ?? 1) < 0.7, "\(weights)")
        #expect(weights.count >= 3, "\(weights)")
        #expect(zip(weights, weights.dropFirst()).allSatisfy { $0 > $1 && $0 - $1 <= 0.25 + 1e-9 }, "\(weights)")
        let cool = balancer.ring?.nodes.first { $0.id == "n-b" }?.weight ?? 0
        #expect(cool >= 1)
    }

    @Test func syntheticLoadScalesOutOncePerCooldownAndIdleScalesInToTheMinimum() throws {
        let stack = try Stack()
        defer { stack.stop() }
        for id in ["n-a", "n-b"] { try EndToEndTests.setBeat(stack, beat(id, connections: 9000)) }
        let balancer = try stack.startBalancer {
            $0.scaleMode = .direct
            $0.maxSocketReplicas = 8
            $0.scaleOutCooldownSeconds = 3
            $0.scaleInCooldownSeconds = 3
        }
        func replicas() -> [Int] {
            balancer.calls.compactMap { call in
                if case .setReplicas(let count) = call { return count }
                return nil
            }
        }
        // 18000 connections at 5000 a pod: 4.
        #expect(waitUntil(timeout: .seconds(10)) { replicas() == [4] }, "\(replicas())")
        // Still overloaded, but inside the cooldown: no second scale-out yet.
        for id in ["n-a", "n-b", "n-c", "n-d"] { try EndToEndTests.setBeat(stack, beat(id, connections: 12000)) }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(replicas() == [4])
        #expect(
            (balancer.metric("rtc_balancer_scaling_decisions_total", #"direction="none",reason="cooldown""#) ?? 0) >= 1)
        // After it: 48000 wants 10, clamped to the maximum, 8.
        #expect(waitUntil(timeout: .seconds(10)) { replicas() == [4, 8] }, "\(replicas())")
        for id in ["n-e", "n-f", "n-g", "n-h", "n-i"] { try EndToEndTests.setBeat(stack, beat(id, connections: 9000)) }
        Thread.sleep(forTimeInterval: 4)
        #expect(replicas() == [4, 8])
        #expect(balancer.metric("rtc_balancer_desired_socket_replicas") == 8)
        // Idle: down to the minimum after the scale-in cooldown.
        for id in ["n-a", "n-b", "n-c", "n-d", "n-e", "n-f", "n-g", "n-h", "n-i"] {
            try EndToEndTests.setBeat(stack, beat(id, connections: 0))
        }
        #expect(waitUntil(timeout: .seconds(10)) { replicas() == [4, 8, 2] }, "\(replicas())")
        #expect(balancer.metric("rtc_balancer_scaling_decisions_total", #"direction="up",reason="connections""#) == 1)
        #expect(balancer.metric("rtc_balancer_scaling_decisions_total", #"direction="up",reason="maximum""#) == 1)
        #expect(balancer.metric("rtc_balancer_scaling_decisions_total", #"direction="down",reason="minimum""#) == 1)
    }

    @Test func kedaOnlyExportsAndDirectOnlyScales() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        let keda = try stack.startBalancer { $0.minSocketReplicas = 3 }
        _ = try #require(waitForRing(keda) { ids($0) == ["socket-1"] })
        #expect(waitUntil(timeout: .seconds(5)) { keda.metric("rtc_balancer_desired_socket_replicas") == 3 })
        #expect(!keda.calls.contains { if case .setReplicas = $0 { true } else { false } })
        #expect(
            keda.metric("rtc_balancer_scaling_decisions_total", #"direction="up",reason="minimum""#) == 1)
        keda.stop()

        let direct = try stack.startBalancer {
            $0.minSocketReplicas = 4
            $0.scaleMode = .direct
        }
        #expect(waitUntil(timeout: .seconds(10)) { direct.metric("rtc_balancer_desired_socket_replicas") == 4 })
        #expect(waitUntil(timeout: .seconds(5)) { direct.calls.contains(.setReplicas(4)) })
        // Applied once: later rounds with the same count do not patch again.
        Thread.sleep(forTimeInterval: 2.5)
        #expect(direct.calls.filter { $0 == .setReplicas(4) }.count == 1)
        #expect((direct.metric("rtc_balancer_kube_api_calls_total", #"verb="patch",result="success""#) ?? 0) >= 1)
    }

    @Test func deletionCostsFollowConnectionCounts() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        let balancer = try stack.startBalancer()
        _ = try #require(waitForRing(balancer) { ids($0) == ["socket-1", "socket-2"] })
        func lastCosts() -> [String: Int]? {
            for call in balancer.calls.reversed() { if case .setDeletionCosts(let costs) = call { return costs } }
            return nil
        }
        #expect(waitUntil(timeout: .seconds(5)) { lastCosts() == ["socket-1": 0, "socket-2": 0] })
        func ws(_ index: Int, _ client: String) -> String {
            "ws://\(stack.host(index)):\(stack.port)/ws/connect?clientId=\(client)"
        }
        let held = try HeldConnections([ws(1, "a"), ws(1, "b"), ws(1, "c"), ws(2, "d")])
        #expect(
            waitUntil(timeout: .seconds(10)) { lastCosts() == ["socket-1": 3, "socket-2": 1] }, "\(balancer.calls)")
        held.close()
        #expect(waitUntil(timeout: .seconds(10)) { lastCosts() == ["socket-1": 0, "socket-2": 0] })
        // Set only on change: no two equal calls in a row.
        let costs = balancer.calls.compactMap { call -> [String: Int]? in
            if case .setDeletionCosts(let costs) = call { return costs }
            return nil
        }
        #expect(zip(costs, costs.dropFirst()).allSatisfy { $0 != $1 }, "\(costs)")
    }

    @Test func hostileHeartbeatsAreSkippedAndCounted() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        _ = try stack.redisCLI(["SET", "rtc:hb:x", "garbage"])
        _ = try stack.redisCLI([
            "SET", "rtc:hb:socket-evil",
            #"{"nodeId":"socket-evil","podIP":"1.2.3.4","port":1,"connections":-3,"messagesPerSecond":0,"p95DeliveryMs":0,"cpu":0,"memoryBytes":0,"draining":false,"ready":true,"ts":0}"#,
        ])
        let spoof = String(decoding: beat("socket-1").encoded(), as: UTF8.self)
        _ = try stack.redisCLI(["SET", "rtc:hb:socket-9", spoof])
        let balancer = try stack.startBalancer()
        let ring = try #require(waitForRing(balancer) { ids($0) == ["socket-1"] })
        #expect(ring.nodes.count == 1)
        #expect((balancer.metric("rtc_balancer_heartbeats_skipped_total", #"reason="malformed""#) ?? 0) >= 2)
        #expect((balancer.metric("rtc_balancer_heartbeats_skipped_total", #"reason="mismatch""#) ?? 0) >= 1)
        #expect(try balancer.assign("u").status == 200)
    }

    @Test func undeliveredRecordsOfAKilledNodeReachTheNewOwner() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        let balancer = try stack.startBalancer()
        let both = try #require(waitForRing(balancer) { ids($0) == ["socket-1", "socket-2"] })
        let recipients = (0..<2000).map { "r\($0)" }.filter { both.ring.owner(of: $0) == "socket-2" }.prefix(5)
        #expect(recipients.count == 5)
        // A warm-up record node 2 handles (its recipient is not connected, so it counts a drop): node 2 is in its
        // group, and after its auto commit (every 5 s) that record is behind the group's committed offset.
        let loop = try RunningLoop()
        defer { loop.stop() }
        let bootstrap = stack.kafka.bootstrap
        let producer = Unchecked(try loop.sync { try KafkaProducer(loop: loop.loop, bootstrap: bootstrap) })
        defer { _ = try? loop.sync { producer.value.close(flushTimeout: .seconds(1)) } }
        let delivered = Mutex(0)
        func produce(_ recipient: String, _ id: String, to node: String) throws {
            let envelope = Envelope(
                msgId: id, from: "sender", toClientId: recipient, type: "message", payloadJson: "{}", offset: nil, ts: 1
            )
            let value = Delivery(recipient: recipient, offset: 1, origin: "socket-1", envelope: envelope).encoded()
            try loop.sync {
                producer.value.produce(topic: Keys.deliveryTopic(node), key: Array(recipient.utf8), value: value) {
                    result in
                    if case .success = result { delivered.withLock { $0 += 1 } }
                }
            }
        }
        try produce(recipients.first!, "warm-up", to: "socket-2")
        #expect(
            waitUntil(timeout: .seconds(30)) {
                stack.nodeMetric(2, "rtc_socket_drops_total", #"reason="recipient_gone""#) == 1
            })
        Thread.sleep(forTimeInterval: 6)
        stack.node(2)!.send(SIGKILL)
        _ = stack.node(2)!.waitForExit()
        stack.forget(2)
        // Undelivered: produced after the node died, before the balancer noticed.
        for (index, recipient) in recipients.enumerated() { try produce(recipient, "lost-\(index)", to: "socket-2") }
        #expect(waitUntil(timeout: .seconds(10)) { delivered.withLock { $0 } == 6 })
        let alone = try #require(waitForRing(balancer) { ids($0) == ["socket-1"] })
        #expect(alone.version > both.version)

        // The new owner's topic gets exactly the undelivered records (not the warm-up one node 2 had handled).
        let received = Mutex<[String]>([])
        let reader = Unchecked(
            try loop.sync {
                try KafkaConsumer(
                    loop: loop.loop, bootstrap: bootstrap, groupID: "test-reader-\(getpid())",
                    topics: [Keys.deliveryTopic("socket-1")], config: ["auto.offset.reset": "earliest"]
                ) { message in
                    if let delivery = try? Delivery.decode(message.value) {
                        received.withLock { $0.append(delivery.envelope.msgId) }
                    }
                }
            })
        defer { _ = try? loop.sync { reader.value.close() } }
        let expected = (0..<5).map { "lost-\($0)" }
        // A SIGKILLed member stays in its group until its session times out (45 s by default): allow for that.
        let killed = ContinuousClock.now
        let arrived = waitUntil(timeout: .seconds(100)) { Set(received.withLock { $0 }).isSuperset(of: expected) }
        #expect(arrived, "received \(received.withLock { $0 })")
        print("re-routed records arrived \(ContinuousClock.now - killed) after the ring dropped the node")
        #expect(
            waitUntil(timeout: .seconds(15)) {
                balancer.metric("rtc_balancer_rerouted_records_total", #"outcome="rerouted""#) == 5
            })
        // Done: the node is no longer pending, and its topic's deletion was asked for once, after the re-route (the
        // mock cluster of librdkafka 2.0.2 refuses DeleteTopics, so the answer is counted as failed).
        #expect(waitUntil(timeout: .seconds(15)) { (try? stack.redisCLI(["SCARD", Balancer.pendingReroutes])) == "0" })
        #expect(
            waitUntil(timeout: .seconds(15)) {
                let deleted = balancer.metric("rtc_balancer_topic_deletions_total", #"result="deleted""#) ?? 0
                let failed = balancer.metric("rtc_balancer_topic_deletions_total", #"result="failed""#) ?? 0
                return deleted + failed == 1
            })
        #expect(!received.withLock { $0 }.contains("warm-up"))
    }

    @Test func aNodeBackUnderItsNameKeepsItsTopic() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        let balancer = try stack.startBalancer()
        _ = try #require(waitForRing(balancer) { ids($0) == ["socket-1", "socket-2"] })
        stack.node(2)!.send(SIGKILL)
        _ = stack.node(2)!.waitForExit()
        stack.forget(2)
        _ = try #require(waitForRing(balancer) { ids($0) == ["socket-1"] })
        #expect(waitUntil(timeout: .seconds(5)) { (try? balancer.withBalancer { $0.reroutes.count }) == 1 })
        // A local restart reuses the name: the re-route stops and leaves the topic and group to the node.
        try stack.startNode(2)
        _ = try #require(waitForRing(balancer) { ids($0) == ["socket-1", "socket-2"] })
        #expect(waitUntil(timeout: .seconds(5)) { (try? balancer.withBalancer { $0.reroutes.count }) == 0 })
        #expect(waitUntil(timeout: .seconds(5)) { (try? stack.redisCLI(["SCARD", Balancer.pendingReroutes])) == "0" })
        #expect(balancer.metric("rtc_balancer_topic_deletions_total", #"result="deleted""#) == 0)
        #expect(balancer.metric("rtc_balancer_topic_deletions_total", #"result="failed""#) == 0)
    }

    @Test func theProgramHelpVersionBadValuesAndPromtoolCleanMetrics() throws {
        let help = try output(of: Paths.balancer, ["--help"])
        for name in ["REDIS_URL", "SCALE_MODE", "SOCKET_URL_FORM", "RING_SECRET", "(default 8081)"] {
            #expect(help.contains(name), "\(name) missing")
        }
        #expect(try output(of: Paths.balancer, ["--version"]).hasPrefix("rtc-balancer "))
        let directory = try makeTemporaryDirectory("balancer-program")
        for (environment, name) in [
            (["RING_SECRET": "s", "SCALE_MODE": "both"], "SCALE_MODE"), ([:], "RING_SECRET"),
            (["RING_SECRET": "s", "MAX_SOCKET_REPLICAS": "zero"], "MAX_SOCKET_REPLICAS"),
        ] {
            let log = directory + "/bad-\(name).log"
            let process = try ChildProcess(Paths.balancer, [], environment: environment, logPath: log)
            #expect(process.waitForExit() == 2, "\(environment)")
            #expect(readText(log).contains(name), "\(readText(log))")
        }

        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        let port = freeTCPPort()
        var environment = ProcessInfo.processInfo.environment
        environment["RING_SECRET"] = stack.ringSecret
        environment["REDIS_URL"] = stack.redisURL
        environment["KAFKA_BOOTSTRAP"] = stack.kafka.bootstrap
        environment["BIND_ADDRESS"] = "127.0.0.1"
        environment["HTTP_PORT"] = String(port)
        environment["RECONCILE_INTERVAL_SEC"] = "1"
        let log = directory + "/balancer.log"
        let process = try ChildProcess(Paths.balancer, [], environment: environment, logPath: log)
        defer { process.stop() }
        let base = "http://127.0.0.1:\(port)"
        #expect(waitUntil(timeout: .seconds(15)) { (try? curl(base + "/ws/connect?clientId=u1").status) == 200 })
        #expect(json(try curl(base + "/ws/connect?clientId=u1").body)["socketNodeId"] as? String == "socket-1")
        #expect(try curl(base + "/healthz").status == 200)
        #expect(try curl(base + "/readyz").status == 200)
        let page = try curl(base + "/metrics").body
        for name in [
            "rtc_balancer_is_leader 1", "rtc_balancer_ring_version", "rtc_balancer_ring_nodes",
            "rtc_balancer_desired_socket_replicas 2", "rtc_balancer_assignments_total",
            "rtc_balancer_ring_updates_published_total 1", "rtc_balancer_scaling_decisions_total",
            "rtc_balancer_kube_api_calls_total", "process_resident_memory_bytes",
        ] {
            #expect(page.contains(name), "\(name) missing")
        }
        // What k8s/ (dashboard, KEDA) may name is exactly what the balancer serves, labels included.
        #expect(MetricNames.served(page, prefix: "rtc_balancer_") == (try MetricNames.listed(prefix: "rtc_balancer_")))
        let path = directory + "/metrics.txt"
        try page.write(toFile: path, atomically: true, encoding: .utf8)
        let promtool = Process()
        promtool.executableURL = URL(fileURLWithPath: "/bin/sh")
        promtool.arguments = ["-c", "\(Paths.promtool) check metrics < \(path)"]
        try promtool.run()
        promtool.waitUntilExit()
        #expect(promtool.terminationStatus == 0)
        // SIGTERM stops it cleanly.
        #expect(process.stop(grace: .seconds(10)) == 0)
        #expect(readText(log).contains("stopped"))
    }
}
