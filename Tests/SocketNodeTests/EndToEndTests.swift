// rtc-socket end to end: real redis-server, the librdkafka mock cluster, two or three nodes, Python clients.
import Foundation
import Kafka
import Ring
import Synchronization
import TestSupport
import Testing
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Client ids the ring gives to `node` (from a deterministic candidate list).
func clientIDs(ownedBy node: String, in ring: Ring, count: Int, prefix: String) -> [String] {
    var result: [String] = []
    var index = 0
    while result.count < count && index < 100_000 {
        let id = "\(prefix)\(index)"
        if ring.owner(of: id) == node { result.append(id) }
        index += 1
    }
    return result
}

func messageIDs(_ frames: [[String: Any]]) -> [String] { frames.compactMap { $0["msgId"] as? String } }
func offsets(_ frames: [[String: Any]]) -> [UInt64] {
    frames.compactMap { ($0["offset"] as? NSNumber)?.uint64Value }
}

/// Delivery reports counted across the loop thread and the test thread.
final class Delivered: Sendable {
    let count = Mutex<Int>(0)
}

@Suite(.serialized) struct EndToEndTests {
    static let twoNodes = [
        RingNode(id: "socket-1", weight: 1, draining: false), RingNode(id: "socket-2", weight: 1, draining: false),
    ]

    @Test func localAndCrossNodeMessagesArriveWithOffsets() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        try stack.publishRing(version: 1, nodes: EndToEndTests.twoNodes)
        let ring = Ring(version: 1, nodes: EndToEndTests.twoNodes)
        let one = clientIDs(ownedBy: "socket-1", in: ring, count: 2, prefix: "u")
        let two = clientIDs(ownedBy: "socket-2", in: ring, count: 1, prefix: "u")
        let clients = try Clients()
        let welcome = try clients.connect("a", stack.wsURL(1, client: one[0]))
        #expect(welcome["ok"] as? Bool == true)
        let greeting = welcome["welcome"] as? [String: Any]
        #expect(greeting?["nodeId"] as? String == "socket-1")
        #expect(greeting?["clientId"] as? String == one[0])
        #expect((greeting?["ringVersion"] as? NSNumber)?.intValue == 1)
        _ = try clients.connect("b", stack.wsURL(1, client: one[1]))
        _ = try clients.connect("c", stack.wsURL(2, client: two[0]))

        // Local: a → b on the same node.
        try clients.message("a", to: one[1], id: "m-local", payload: #"{"text":"hi"}"#)
        let accepted = try clients.wait("a", "accepted", count: 1)
        #expect(accepted.first?["msgId"] as? String == "m-local")
        let local = try clients.wait("b", "message", count: 1)
        #expect(local.first?["from"] as? String == one[0])
        #expect(local.first?["payloadJson"] as? String == #"{"text":"hi"}"#)
        #expect(offsets(local) == [1])

        // Cross-node: a (node 1) → c (node 2), through Kafka.
        try clients.message("a", to: two[0], id: "m-cross")
        let cross = try clients.wait("c", "message", count: 1, timeout: 30)
        #expect(messageIDs(cross) == ["m-cross"])
        #expect(offsets(cross) == [1])
        #expect((try stack.metric(1, "rtc_socket_messages_out_total", #"path="relay""#)) == 1)

        // No loops: a relayed message whose recipient is not on the owner stays in the inbox there; the owner
        // never forwards it again.
        let ghost = clientIDs(ownedBy: "socket-2", in: ring, count: 2, prefix: "u")[1]
        try clients.message("a", to: ghost, id: "m-ghost")
        #expect(
            waitUntil(timeout: .seconds(20)) {
                (try? stack.metric(2, "rtc_socket_drops_total", #"reason="recipient_gone""#)) == 1
            })
        #expect((try stack.metric(1, "rtc_socket_messages_out_total", #"path="relay""#)) == 2)
        #expect((try stack.metric(2, "rtc_socket_messages_out_total", #"path="relay""#)) == 0)
        #expect((try stack.metric(1, "rtc_socket_drops_total", #"reason="recipient_gone""#)) == 0)

        // `from` is the sender's id whatever the frame says.
        try clients.call([
            "op": "send", "name": "c",
            "frame": [
                "type": "message", "msgId": "spoof", "toClientId": one[1], "from": "someone-else", "payloadJson": "{}",
            ],
        ])
        let spoofed = try clients.wait("b", "message", count: 1, timeout: 30)
        #expect(spoofed.first?["from"] as? String == two[0])
    }

    @Test func offlineThenResumeReturnsExactlyTheMessagesAfterTheOffset() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.publishRing(version: 1, nodes: [RingNode(id: "socket-1", weight: 1, draining: false)])
        let clients = try Clients()
        _ = try clients.connect("a", stack.wsURL(1, client: "alice"))
        for index in 1...5 { try clients.message("a", to: "bob", id: "m\(index)") }
        #expect(try clients.wait("a", "accepted", count: 5).count == 5)
        #expect((try stack.metric(1, "rtc_socket_messages_out_total", #"path="buffered""#)) == 5)
        // Bob was offline: a fresh connection replays the inbox.
        _ = try clients.connect("b", stack.wsURL(1, client: "bob"))
        let first = try clients.wait("b", "message", count: 5)
        #expect(messageIDs(first) == ["m1", "m2", "m3", "m4", "m5"])
        #expect(offsets(first) == [1, 2, 3, 4, 5])
        try clients.call(["op": "close", "name": "b"])
        for index in 6...8 { try clients.message("a", to: "bob", id: "m\(index)") }
        #expect(try clients.wait("a", "accepted", count: 3).count == 3)
        _ = try clients.connect("b2", stack.wsURL(1, client: "bob", query: "resumeOffset=5"))
        let resumed = try clients.wait("b2", "message", count: 3)
        #expect(messageIDs(resumed) == ["m6", "m7", "m8"])
        #expect(offsets(resumed) == [6, 7, 8])
        // Exactly those: nothing more arrives (a ping round trip orders the check after any stray frame).
        try clients.call(["op": "send", "name": "b2", "frame": ["type": "ping"]])
        _ = try clients.wait("b2", "pong", count: 1)
        #expect(
            (try clients.call(["op": "take", "name": "b2", "type": "message"])["frames"] as? [Any])?.isEmpty == true)
        #expect((try stack.metric(1, "rtc_socket_resumes_total")) == 1)
        // A repeated msgId is accepted once.
        try clients.message("a", to: "bob", id: "m8")
        let duplicate = try clients.wait("a", "accepted", count: 1)
        #expect(duplicate.first?["duplicate"] as? Bool == true)
        #expect((duplicate.first?["offset"] as? NSNumber)?.intValue == 8)
    }

    @Test func orderHoldsUnderLoadAcrossNodes() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        try stack.publishRing(version: 1, nodes: EndToEndTests.twoNodes)
        let ring = Ring(version: 1, nodes: EndToEndTests.twoNodes)
        let sender = clientIDs(ownedBy: "socket-1", in: ring, count: 1, prefix: "s")[0]
        let recipient = clientIDs(ownedBy: "socket-2", in: ring, count: 1, prefix: "r")[0]
        let clients = try Clients()
        _ = try clients.connect("s", stack.wsURL(1, client: sender))
        _ = try clients.connect("r", stack.wsURL(2, client: recipient))
        try clients.call(["op": "burst", "name": "s", "to": recipient, "count": 500, "prefix": "b"])
        let got = try clients.wait("r", "message", count: 500, timeout: 60)
        #expect(messageIDs(got) == (0..<500).map { "b\($0)" })
        #expect(offsets(got) == Array(1...500))
    }

    @Test func nothingIsLostWhenTheRecipientsNodeIsKilled() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        let doomed = try stack.startNode(2)
        try stack.publishRing(version: 1, nodes: EndToEndTests.twoNodes)
        let ring = Ring(version: 1, nodes: EndToEndTests.twoNodes)
        let sender = clientIDs(ownedBy: "socket-1", in: ring, count: 1, prefix: "s")[0]
        let recipient = clientIDs(ownedBy: "socket-2", in: ring, count: 1, prefix: "r")[0]
        let clients = try Clients()
        _ = try clients.connect("s", stack.wsURL(1, client: sender))
        _ = try clients.connect("r", stack.wsURL(2, client: recipient))
        try clients.call(["op": "burst", "name": "s", "to": recipient, "count": 100, "prefix": "x"])
        let early = try clients.wait("r", "message", count: 10, timeout: 30)
        doomed.send(SIGKILL)
        _ = doomed.waitForExit()
        stack.forget(2)
        _ = try clients.closed("r")
        // Everything the sender was told is accepted must reach the recipient once it resumes elsewhere.
        let accepted = try clients.wait("s", "accepted", count: 100, timeout: 30)
        #expect(accepted.count == 100)
        let last = offsets(early).last ?? 0
        _ = try clients.connect("r2", stack.wsURL(1, client: recipient, query: "resumeOffset=\(last)"))
        let rest = try clients.wait("r2", "message", count: 100 - early.count, timeout: 30)
        #expect(messageIDs(early + rest) == (0..<100).map { "x\($0)" })
        #expect(offsets(early + rest) == Array(1...100))
    }

    @Test func redisRestartLosesNothingAccepted() throws {
        // Every acknowledged write on disk before the answer: what was accepted survives the restart.
        let stack = try SocketStack(redisArguments: ["--appendonly", "yes", "--appendfsync", "always"])
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.publishRing(version: 1, nodes: [RingNode(id: "socket-1", weight: 1, draining: false)])
        let clients = try Clients()
        _ = try clients.connect("s", stack.wsURL(1, client: "sender"))
        _ = try clients.connect("r", stack.wsURL(1, client: "receiver"))
        try clients.call(["op": "burst", "name": "s", "to": "receiver", "count": 50, "prefix": "p"])
        #expect(try clients.wait("s", "accepted", count: 50).count == 50)
        try stack.redis.restart()
        try clients.call(["op": "burst", "name": "s", "to": "receiver", "count": 50, "prefix": "q"])
        // Each message of the second burst is either accepted or refused with an error frame: never silence.
        var answered: [String: String] = [:]
        let done = waitUntil(timeout: .seconds(30)) {
            let frames = (try? clients.call(["op": "take", "name": "s"])["frames"] as? [[String: Any]]) ?? []
            for frame in frames {
                if let id = frame["msgId"] as? String, let type = frame["type"] as? String { answered[id] = type }
            }
            return answered.count == 50
        }
        #expect(done, "answered \(answered.count) of 50")
        let accepted = Set(answered.filter { $0.value == "accepted" }.keys)
        // The receiver gets every accepted message: live, or by resuming after what it has.
        let live =
            (try clients.call(["op": "take", "name": "r", "type": "message"])["frames"] as? [[String: Any]]) ?? []
        _ = try clients.connect("r2", stack.wsURL(1, client: "receiver"))
        let all = try clients.wait("r2", "message", count: 50 + accepted.count, timeout: 30)
        let received = Set(messageIDs(all))
        #expect(received.isSuperset(of: accepted))
        #expect(received.isSuperset(of: (0..<50).map { "p\($0)" }))
        #expect(live.count <= all.count)
    }

    @Test func drainClosesEveryoneWith1001InsideTheWindow() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        let clients = try Clients()
        for index in 0..<6 { _ = try clients.connect("c\(index)", stack.wsURL(1, client: "d\(index)")) }
        #expect(try stack.status(1, "/readyz") == 200)
        #expect(try stack.status(1, "/drain", method: "POST") == 200)
        #expect(try stack.status(1, "/readyz") == 503)
        #expect(try stack.status(1, "/healthz") == 200)
        let refused = try clients.connect("late", stack.wsURL(1, client: "late"))
        #expect(refused["status"] as? Int == 503)
        // That the closes are spread over DRAIN_SECONDS and all due at its end is BatchSchedule's (unit-tested);
        // here: every session gets the reconnect frame and 1001 (no wall-clock bound a loaded machine could miss).
        for index in 0..<6 {
            let closed = try clients.closed("c\(index)", timeout: 10)
            #expect(closed["code"] as? Int == 1001)
            let frames = closed["frames"] as? [[String: Any]] ?? []
            #expect(frames.contains { $0["type"] as? String == "reconnect" })
        }
        let status = try stack.get(1, "/drain/status")
        #expect(status.contains(#""complete":true"#))
        #expect(status.contains(#""remaining":0"#))
        #expect(try stack.status(1, "/healthz") == 200)
        #expect(stack.node(1)?.isRunning == true)
    }

    @Test func sigtermDrainsThenExits() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        let node = try stack.startNode(1)
        let clients = try Clients()
        _ = try clients.connect("c", stack.wsURL(1, client: "t1"))
        node.send(SIGTERM)
        let closed = try clients.closed("c", timeout: 10)
        #expect(closed["code"] as? Int == 1001)
        #expect(node.waitForExit(timeout: .seconds(15)) == 0)
        stack.forget(1)
        // The heartbeat left with the node.
        #expect(try stack.redisCLI(["EXISTS", Keys.heartbeat("socket-1")]) == "0")
    }

    @Test func ringChangeMovesExactlyTheClientsWhoseOwnerChanged() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        let alone = [RingNode(id: "socket-1", weight: 1, draining: false)]
        try stack.publishRing(version: 1, nodes: alone)
        let clients = try Clients()
        let ids = (0..<20).map { "m\($0)" }
        for id in ids { _ = try clients.connect(id, stack.wsURL(1, client: id)) }
        try stack.publishRing(version: 2, nodes: EndToEndTests.twoNodes)
        let grown = Ring(version: 2, nodes: EndToEndTests.twoNodes)
        let movers = ids.filter { grown.owner(of: $0) == "socket-2" }
        #expect(!movers.isEmpty && movers.count < ids.count)
        for id in movers {
            let closed = try clients.closed(id, timeout: 10)
            #expect(closed["code"] as? Int == 1012, "\(id)")
            #expect((closed["frames"] as? [[String: Any]] ?? []).contains { $0["type"] as? String == "reconnect" })
        }
        // The others stay: each still answers a ping after the move window.
        for id in ids where !movers.contains(id) {
            try clients.call(["op": "send", "name": id, "frame": ["type": "ping"]])
            #expect(try clients.wait(id, "pong", count: 1).count == 1, "\(id)")
        }
        #expect((try stack.metric(1, "rtc_socket_moves_total")) == Double(movers.count))
        #expect((try stack.metric(2, "rtc_socket_moves_total")) == 0)
    }

    @Test func ringUpdatesFromKafkaAreCheckedBeforeUse() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        let loop = try RunningLoop()
        defer { loop.stop() }
        let bootstrap = stack.kafka.bootstrap
        let secret = Array(stack.ringSecret.utf8)
        let producer = Unchecked(try loop.sync { try KafkaProducer(loop: loop.loop, bootstrap: bootstrap) })
        defer { _ = try? loop.sync { producer.value.close(flushTimeout: .seconds(1)) } }
        let delivered = Delivered()
        func publish(_ update: RingUpdate) throws {
            let before = delivered.count.withLock { $0 }
            try loop.sync {
                producer.value.produce(topic: Keys.ringTopic, key: [], value: update.encoded(), partition: 0) {
                    result in
                    if case .success = result { delivered.count.withLock { $0 += 1 } }
                }
            }
            #expect(waitUntil(timeout: .seconds(20)) { delivered.count.withLock { $0 } > before })
        }
        // The node's ring consumer joins its group first (about 3 s with the mock cluster): retry until seen.
        let good = RingUpdate(version: 7, nodes: EndToEndTests.twoNodes, reason: "kafka", ts: 1).signed(secret: secret)
        let seen = waitUntil(timeout: .seconds(30)) {
            try? publish(good)
            return waitUntil(timeout: .seconds(3)) { (try? stack.metric(1, "rtc_socket_ring_version")) == 7 }
        }
        #expect(seen)
        let forged = RingUpdate(version: 9, nodes: EndToEndTests.twoNodes, reason: "forged", ts: 2).signed(
            secret: Array("wrong".utf8))
        try publish(forged)
        #expect(
            waitUntil(timeout: .seconds(10)) {
                (try? stack.metric(1, "rtc_socket_ring_updates_total", #"outcome="bad_signature""#)) ?? 0 >= 1
            })
        let stale = RingUpdate(version: 3, nodes: EndToEndTests.twoNodes, reason: "old", ts: 3).signed(secret: secret)
        try publish(stale)
        #expect(
            waitUntil(timeout: .seconds(10)) {
                (try? stack.metric(1, "rtc_socket_ring_updates_total", #"outcome="stale""#)) ?? 0 >= 1
            })
        #expect((try stack.metric(1, "rtc_socket_ring_version")) == 7)
    }

    /// The ring consumer reads from the newest record, from when it has joined its group: what was published before
    /// then is read from Redis at that moment, not only at the next heartbeat. The delivery consumer reports its
    /// partitions once joined.
    @Test func aRingPublishedBeforeTheConsumersJoinedIsInForceOnceTheyHave() throws {
        // Heartbeats, and the poll of the ring that goes with each, once an hour: only the join reads it.
        let stack = try SocketStack(extraEnvironment: ["HEARTBEAT_INTERVAL_SEC": "3000", "HEARTBEAT_TTL_SEC": "3600"])
        defer { stack.stop() }
        try stack.kafka.setBroker(1, up: false)
        try stack.startNode(1)
        try stack.publishRing(version: 5, nodes: EndToEndTests.twoNodes, wait: false)
        #expect(try stack.metric(1, "rtc_socket_delivery_partitions") == 0)
        #expect(try stack.metric(1, "rtc_socket_ring_version") == 0)

        try stack.kafka.setBroker(1, up: true)
        #expect(waitUntil(timeout: .seconds(60)) { (try? stack.metric(1, "rtc_socket_ring_version")) == 5 })
        // Its delivery topic (which the mock cluster creates on first use, with 4 partitions) is all its own.
        #expect(waitUntil(timeout: .seconds(60)) { (try? stack.metric(1, "rtc_socket_delivery_partitions")) == 4 })
    }

    @Test func badFramesAreClosedWithTheirCodes() throws {
        let stack = try SocketStack(extraEnvironment: ["MAX_MESSAGE_BYTES": "1024"])
        defer { stack.stop() }
        try stack.startNode(1)
        let clients = try Clients()
        func raw(_ hex: String) throws -> Int? {
            let reply = try clients.call([
                "op": "raw", "host": stack.host(1), "port": Int(stack.port), "path": "/ws/connect?clientId=raw",
                "bytes": hex,
            ])
            #expect(reply["status"] as? Int == 101)
            return reply["close_code"] as? Int
        }
        // An unmasked client frame: 1002.
        #expect(try raw("81026869") == 1002)
        // Invalid UTF-8 in a text frame (masked with a zero key): 1007.
        #expect(try raw("8182" + "00000000" + "c328") == 1007)
        // A 2,000-byte message over the 1,024-byte limit: 1009.
        #expect(try raw("81fe07d0" + "00000000" + String(repeating: "61", count: 2000)) == 1009)
        // Binary frames are not part of the protocol: 1003.
        #expect(try raw("8281" + "00000000" + "00") == 1003)
        // A Close with an invalid code (1005 must not be sent): 1002.
        #expect(try raw("8882" + "00000000" + "03ed") == 1002)
        // JSON that is not a message: an error frame, the connection stays.
        _ = try clients.connect("j", stack.wsURL(1, client: "json"))
        try clients.call(["op": "send", "name": "j", "frame": ["type": "teleport"]])
        let error = try clients.wait("j", "error", count: 1)
        #expect(error.first?["code"] as? String != nil)
        try clients.call(["op": "send", "name": "j", "frame": ["type": "ping"]])
        #expect(try clients.wait("j", "pong", count: 1).count == 1)
    }

    @Test func tokensAreCheckedWhenAuthIsOn() throws {
        let secret = "auth-secret"
        let stack = try SocketStack(extraEnvironment: ["AUTH_SECRET": secret])
        defer { stack.stop() }
        try stack.startNode(1)
        let clients = try Clients()
        let now = Int64(Date().timeIntervalSince1970)
        let valid = AuthToken.make(clientId: "ann", expiresAt: now + 600, secret: Array(secret.utf8))
        let expired = AuthToken.make(clientId: "ann", expiresAt: now - 10, secret: Array(secret.utf8))
        let forged = AuthToken.make(clientId: "ann", expiresAt: now + 600, secret: Array("other".utf8))
        let otherClient = AuthToken.make(clientId: "bea", expiresAt: now + 600, secret: Array(secret.utf8))
        #expect(try clients.connect("none", stack.wsURL(1, client: "ann"))["status"] as? Int == 401)
        #expect(
            try clients.connect("e", stack.wsURL(1, client: "ann", query: "token=\(expired)"))["status"] as? Int == 401)
        #expect(
            try clients.connect("f", stack.wsURL(1, client: "ann", query: "token=\(forged)"))["status"] as? Int == 401)
        #expect(
            try clients.connect("o", stack.wsURL(1, client: "ann", query: "token=\(otherClient)"))["status"] as? Int
                == 401)
        #expect(
            try clients.connect("ok", stack.wsURL(1, client: "ann", query: "token=\(valid)"))["ok"] as? Bool == true)
        #expect((try stack.metric(1, "rtc_socket_drops_total", #"reason="unauthorized""#)) == 4)
    }

    @Test func aSecondConnectionReplacesTheFirst() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        let clients = try Clients()
        _ = try clients.connect("old", stack.wsURL(1, client: "twin"))
        _ = try clients.connect("new", stack.wsURL(1, client: "twin"))
        let closed = try clients.closed("old")
        #expect(closed["code"] as? Int == 4001)
        _ = try clients.connect("peer", stack.wsURL(1, client: "peer"))
        try clients.message("peer", to: "twin", id: "to-twin")
        #expect(messageIDs(try clients.wait("new", "message", count: 1)) == ["to-twin"])
        #expect((try stack.metric(1, "rtc_socket_connections")) == 2)
    }

    @Test func silentClientsArePingedThenClosed() throws {
        let stack = try SocketStack(extraEnvironment: ["PING_INTERVAL_SEC": "1", "IDLE_TIMEOUT_SEC": "2"])
        defer { stack.stop() }
        try stack.startNode(1)
        let clients = try Clients()
        // Sends nothing after the handshake and never answers a Ping.
        let reply = try clients.call([
            "op": "raw", "host": stack.host(1), "port": Int(stack.port), "path": "/ws/connect?clientId=mute",
            "bytes": "",
        ])
        let opcodes = reply["opcodes"] as? [Int] ?? []
        #expect(opcodes.contains(9), "a Ping before the close: \(opcodes)")
        #expect(reply["close_code"] as? Int == 1001)
        #expect((try stack.metric(1, "rtc_socket_drops_total", #"reason="idle_timeout""#)) == 1)
    }

    @Test func aClientThatOnlyReceivesIsPingedAndKept() throws {
        // Messages reach the receiver more often than every Ping interval, so the node always has written lately;
        // the receiver sends nothing of its own (it only answers Pings, as a browser does). It must be pinged for
        // its silence and kept, not closed as idle.
        let stack = try SocketStack(extraEnvironment: ["PING_INTERVAL_SEC": "1", "IDLE_TIMEOUT_SEC": "2"])
        defer { stack.stop() }
        try stack.startNode(1)
        let clients = try Clients()
        _ = try clients.connect("r", stack.wsURL(1, client: "listener"))
        _ = try clients.connect("s", stack.wsURL(1, client: "talker"))
        let clock = ContinuousClock()
        let start = clock.now
        var index = 0
        // The scenario needs time to pass (three idle timeouts); each round trip is checked as it happens.
        while clock.now - start < .seconds(6) {
            try clients.message("s", to: "listener", id: "tick\(index)")
            #expect(messageIDs(try clients.wait("r", "message", count: 1)) == ["tick\(index)"])
            index += 1
            usleep(300_000)
        }
        #expect((try stack.metric(1, "rtc_socket_drops_total", #"reason="idle_timeout""#)) == 0)
        try clients.message("s", to: "listener", id: "last")
        #expect(messageIDs(try clients.wait("r", "message", count: 1)) == ["last"])
    }

    @Test func heartbeatsCarryLoadAndThePodAddress() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1, environment: ["POD_IP": "10.1.2.3"])
        let clients = try Clients()
        _ = try clients.connect("h", stack.wsURL(1, client: "hb"))
        let found = waitUntil(timeout: .seconds(10)) {
            let text = (try? stack.redisCLI(["GET", Keys.heartbeat("socket-1")])) ?? ""
            return text.contains(#""connections":1"#)
        }
        #expect(found)
        let text = try stack.redisCLI(["GET", Keys.heartbeat("socket-1")])
        let beat = try Array(text.utf8).withUnsafeBytes { bytes throws(WireError) in try Heartbeat.decode(bytes) }
        #expect(beat.podIP == "10.1.2.3")
        #expect(beat.port == Int(stack.port))
        #expect(!beat.draining)
        let ttl = Int(try stack.redisCLI(["TTL", Keys.heartbeat("socket-1")])) ?? -1
        #expect(ttl > 0 && ttl <= 3)
    }

    @Test func metricsPassPromtool() throws {
        let stack = try SocketStack()
        defer { stack.stop() }
        try stack.startNode(1)
        let text = try stack.get(1, "/metrics")
        for name in [
            "rtc_socket_connections", "rtc_socket_draining", "rtc_socket_messages_in_total",
            "rtc_socket_messages_out_total", "rtc_socket_delivery_latency_seconds_bucket",
            "rtc_socket_kafka_publish_latency_seconds_bucket", "rtc_socket_drops_total", "rtc_socket_resumes_total",
            "process_resident_memory_bytes",
        ] {
            #expect(text.contains(name), "\(name) missing")
        }
        // What k8s/ (dashboard, KEDA) may name is exactly what the node serves, labels included.
        #expect(MetricNames.served(text, prefix: "rtc_socket_") == (try MetricNames.listed(prefix: "rtc_socket_")))
        let path = stack.directory + "/metrics.txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\(Paths.promtool) check metrics < \(path)"]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
