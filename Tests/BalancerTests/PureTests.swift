// Tables of vectors for the balancer's pure parts: membership, weights, scaling, assignment, settings.
import Foundation
import JSON
import Ring
import Testing
import Wire

@testable import Balancer

func beat(
    _ id: String, connections: Int = 0, cpu: Double = 0, p95: Double = 0, draining: Bool = false, ready: Bool = true,
    ip: String = "10.0.0.1"
) -> Heartbeat {
    Heartbeat(
        nodeId: id, podIP: ip, port: 8080, connections: connections, messagesPerSecond: 0, p95DeliveryMs: p95,
        cpu: cpu, memoryBytes: 1, draining: draining, ready: ready, ts: 1)
}

func entry(_ beat: Heartbeat) -> (key: String, value: [UInt8]?) { (Keys.heartbeat(beat.nodeId), beat.encoded()) }

@Suite struct MembershipTests {
    @Test func validHeartbeatsBecomeMembersSortedByID() {
        let membership = Membership.read(
            [entry(beat("socket-b")), entry(beat("socket-a", draining: true)), entry(beat("socket-c", ready: false))],
            form: .name)
        #expect(membership.members.map(\.nodeId) == ["socket-a", "socket-b", "socket-c"])
        #expect(membership.skipped.isEmpty)
        #expect(membership.eligible.map(\.nodeId) == ["socket-b"])
        #expect(membership.counts == (active: 1, draining: 1, unready: 1))
    }

    struct Hostile: Sendable, CustomStringConvertible {
        var key: String
        var value: String
        var reason: Membership.SkipReason
        var description: String { "\(key) = \(value)" }
    }

    static let good = String(decoding: beat("socket-x").encoded(), as: UTF8.self)

    static let hostile: [Hostile] = [
        Hostile(key: "rtc:hb:x", value: "garbage", reason: .malformed),
        Hostile(key: "rtc:hb:x", value: "", reason: .malformed),
        Hostile(key: "rtc:hb:x", value: "[1,2,3]", reason: .malformed),
        Hostile(key: "rtc:hb:x", value: "{\"nodeId\":\"x\"}", reason: .malformed),
        Hostile(
            key: "rtc:hb:socket-x",
            value: good.replacingOccurrences(of: "\"connections\":0", with: "\"connections\":-5"),
            reason: .malformed),
        Hostile(
            key: "rtc:hb:socket-x", value: good.replacingOccurrences(of: "\"cpu\":0.0", with: "\"cpu\":-1"),
            reason: .malformed),
        Hostile(
            key: "rtc:hb:socket-x",
            value: good.replacingOccurrences(of: "\"connections\":0", with: "\"connections\":1e400"), reason: .malformed
        ),
        Hostile(
            key: "rtc:hb:socket-x", value: good.replacingOccurrences(of: "\"port\":8080", with: "\"port\":70000"),
            reason: .malformed),
        Hostile(key: "rtc:hb:socket-y", value: good, reason: .mismatch),
        Hostile(key: "rtc:hb:", value: good, reason: .mismatch),
        Hostile(key: "other:socket-x", value: good, reason: .mismatch),
        Hostile(
            key: "rtc:hb:Socket_X", value: good.replacingOccurrences(of: "socket-x", with: "Socket_X"),
            reason: .unaddressable),
    ]

    @Test(arguments: hostile)
    func hostileHeartbeatsAreSkippedAndCounted(_ vector: Hostile) {
        let membership = Membership.read(
            [(key: vector.key, value: Array(vector.value.utf8) as [UInt8]?), entry(beat("socket-ok"))], form: .name)
        #expect(membership.members.map(\.nodeId) == ["socket-ok"])
        #expect(membership.skipped == [Membership.Skipped(key: vector.key, reason: vector.reason)])
    }

    @Test func anExpiredKeyIsNoMemberAndNoError() {
        let membership = Membership.read([(key: "rtc:hb:gone", value: nil), entry(beat("socket-1"))], form: .name)
        #expect(membership.members.map(\.nodeId) == ["socket-1"])
        #expect(membership.skipped.isEmpty)
    }

    @Test func theIPFormNeedsAnIPv4Address() {
        let membership = Membership.read(
            [
                entry(beat("socket-1", ip: "10.1.2.3")), entry(beat("socket-2", ip: "fd00::1")),
                entry(beat("socket-3", ip: "my-host")),
            ], form: .ip)
        #expect(membership.members.map(\.nodeId) == ["socket-1"])
        #expect(membership.skipped.map(\.reason) == [.unaddressable, .unaddressable])
        // The name form does not look at the address.
        #expect(
            Membership.read([entry(beat("socket-2", ip: "fd00::1"))], form: .name).members.map(\.nodeId) == [
                "socket-2"
            ])
    }

    @Test(
        arguments: [
            ("10.1.2.3", "10-1-2-3"), ("0.0.0.0", "0-0-0-0"), ("255.255.255.255", "255-255-255-255"),
            ("127.0.0.1", "127-0-0-1"), ("256.1.1.1", nil), ("01.1.1.1", nil), ("1.1.1", nil), ("1.1.1.1.1", nil),
            ("1..1.1", nil), ("a.b.c.d", nil), ("+1.1.1.1", nil), ("", nil), ("1.1.1.1 ", nil),
        ] as [(String, String?)])
    func dashedAddresses(_ address: String, _ expected: String?) {
        #expect(dashedIPv4(address) == expected)
        if let expected { #expect(isDNSLabel(expected)) }
    }

    @Test(arguments: [
        ("socket-7d9f-abc12", true), ("a", true), ("0", true), ("a-b", true), (String(repeating: "a", count: 63), true),
        (String(repeating: "a", count: 64), false), ("-a", false), ("a-", false), ("A", false), ("a.b", false),
        ("", false), ("a_b", false),
    ])
    func dnsLabels(_ value: String, _ expected: Bool) {
        #expect(isDNSLabel(value) == expected)
    }
}

@Suite struct WeightsTests {
    static func membership(_ beats: [Heartbeat]) -> Membership { Membership(members: beats) }

    static func weights(_ nodes: [RingNode]) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0.weight) })
    }

    @Test func balancedLoadNeverChangesTheRing() {
        var weights = Weights()
        let loads: [[Heartbeat]] = [
            [beat("a"), beat("b"), beat("c")],
            [beat("a", connections: 1000, cpu: 0.5, p95: 10), beat("b", connections: 1000, cpu: 0.5, p95: 10)],
            // Within the dead band: 10 % apart.
            [beat("a", connections: 1050, cpu: 0.52, p95: 11), beat("b", connections: 950, cpu: 0.48, p95: 9)],
            // Small numbers are no imbalance: 3 connections against 0.
            [beat("a", connections: 3), beat("b", connections: 0)],
        ]
        for load in loads {
            for _ in 0..<30 {
                let nodes = weights.step(WeightsTests.membership(load))
                #expect(nodes.allSatisfy { $0.weight == 1 && !$0.draining }, "\(load.map(\.connections)): \(nodes)")
            }
        }
    }

    @Test func oscillatingLoadDoesNotOscillateTheWeights() {
        var weights = Weights()
        var seen: [[String: Double]] = []
        for round in 0..<60 {
            let heavy = round % 2 == 0
            let load = [
                beat("a", connections: heavy ? 1500 : 500, cpu: heavy ? 0.75 : 0.25, p95: heavy ? 30 : 10),
                beat("b", connections: heavy ? 500 : 1500, cpu: heavy ? 0.25 : 0.75, p95: heavy ? 10 : 30),
            ]
            seen.append(WeightsTests.weights(weights.step(WeightsTests.membership(load))))
        }
        // A load flipping 3:1 every round averages out before it reaches the dead band.
        #expect(seen.allSatisfy { $0 == ["a": 1, "b": 1] }, "\(seen)")
    }

    @Test func sustainedImbalanceMovesMonotonicallyInBoundedSteps() {
        var weights = Weights()
        let load = [
            beat("hot", connections: 3000, cpu: 1.5, p95: 80), beat("cool", connections: 1000, cpu: 0.5, p95: 20),
            beat("mid", connections: 2000, cpu: 1.0, p95: 50),
        ]
        var previous: [String: Double] = ["hot": 1, "cool": 1, "mid": 1]
        var hotSeries: [Double] = []
        for _ in 0..<40 {
            let now = WeightsTests.weights(weights.step(WeightsTests.membership(load)))
            for (id, weight) in now {
                #expect(abs(weight - previous[id]!) <= 0.25 + 1e-9, "\(id) jumped \(previous[id]!) → \(weight)")
                #expect(weight >= 0.1)
            }
            hotSeries.append(now["hot"]!)
            previous = now
        }
        #expect(zip(hotSeries, hotSeries.dropFirst()).allSatisfy { $0 >= $1 }, "\(hotSeries)")
        #expect(previous["hot"]! < 0.8)
        #expect(previous["cool"]! > 1.2)
        #expect(previous["mid"]! == 1)
        // Settled: more rounds of the same load change nothing.
        let settled = WeightsTests.weights(weights.step(WeightsTests.membership(load)))
        #expect(settled == previous)
    }

    @Test func drainingNodesGetWeightZeroAndStayListed() {
        var weights = Weights()
        let nodes = weights.step(
            WeightsTests.membership([beat("a"), beat("b", draining: true), beat("c", ready: false)]))
        #expect(
            nodes == [
                RingNode(id: "a", weight: 1, draining: false), RingNode(id: "b", weight: 0, draining: true),
                RingNode(id: "c", weight: 0, draining: false),
            ])
        let ring = Ring(version: 1, nodes: nodes)
        for index in 0..<200 { #expect(ring.owner(of: "u\(index)") == "a") }
    }

    @Test func anEmptyNewNodeClimbsInBoundedStepsToAtMostTheMaximum() {
        var weights = Weights()
        let load = [beat("old1", connections: 5000), beat("old2", connections: 5000), beat("new", connections: 0)]
        var series: [Double] = []
        for _ in 0..<30 { series.append(WeightsTests.weights(weights.step(WeightsTests.membership(load)))["new"]!) }
        #expect(series.first! <= 1.25)
        #expect(series.last! <= 4)
        #expect(series.last! > 1.5)
        #expect(zip(series, series.dropFirst()).allSatisfy { $1 >= $0 && $1 - $0 <= 0.25 + 1e-9 })
    }

    @Test func aNewLeaderContinuesFromTheRingInForce() {
        var weights = Weights()
        weights.seed(from: Ring(version: 9, nodes: [RingNode(id: "a", weight: 0.6, draining: false)]))
        let nodes = weights.step(WeightsTests.membership([beat("a"), beat("b")]))
        // Balanced now: "a" climbs back by at most one step, "b" starts at 1.
        #expect(WeightsTests.weights(nodes) == ["a": 0.85, "b": 1])
    }

    @Test func nodesThatLeftAreForgotten() {
        var weights = Weights()
        _ = weights.step(WeightsTests.membership([beat("a"), beat("b")]))
        _ = weights.step(WeightsTests.membership([beat("a")]))
        #expect(weights.state.keys.sorted() == ["a"])
    }
}

@Suite struct ScalerTests {
    static func pods(_ count: Int, connections: Int = 0, cpu: Double = 0, p95: Double = 0) -> Membership {
        Membership(members: (0..<count).map { beat("s\($0)", connections: connections, cpu: cpu, p95: p95) })
    }

    struct Step: Sendable, CustomStringConvertible {
        var at: Double
        var load: Membership
        var expected: ScalingDecision
        var description: String { "t=\(at) → \(expected)" }
    }

    static func decide(_ steps: [Step], policy: ScalePolicy = ScalePolicy()) {
        var scaler = Scaler(policy: policy)
        for step in steps {
            #expect(scaler.decide(step.load, now: step.at) == step.expected, "\(step)")
        }
    }

    @Test func overloadScalesOutOncePerCooldown() {
        // 2 pods at 9000 connections each: 18000 / 5000 → 4.
        ScalerTests.decide([
            Step(
                at: 0, load: ScalerTests.pods(2, connections: 9000),
                expected: .init(desired: 4, direction: .up, reason: .connections)),
            Step(
                at: 10, load: ScalerTests.pods(4, connections: 9000),
                expected: .init(desired: 4, direction: .none, reason: .cooldown)),
            Step(
                at: 59, load: ScalerTests.pods(4, connections: 9000),
                expected: .init(desired: 4, direction: .none, reason: .cooldown)),
            Step(
                at: 60, load: ScalerTests.pods(4, connections: 9000),
                expected: .init(desired: 8, direction: .up, reason: .connections)),
            Step(
                at: 70, load: ScalerTests.pods(8, connections: 4900),
                expected: .init(desired: 8, direction: .none, reason: .steady)),
        ])
    }

    @Test func cpuAndLatencyScaleOutToo() {
        ScalerTests.decide([
            Step(at: 0, load: ScalerTests.pods(3, cpu: 1.5), expected: .init(desired: 6, direction: .up, reason: .cpu)),
            Step(
                at: 100, load: ScalerTests.pods(6, cpu: 0.6, p95: 400),
                expected: .init(desired: 7, direction: .up, reason: .latency)),
            Step(
                at: 120, load: ScalerTests.pods(7, cpu: 0.6, p95: 400),
                expected: .init(desired: 7, direction: .none, reason: .cooldown)),
        ])
    }

    @Test func idleScalesInToTheMinimumAfterTheCooldown() {
        ScalerTests.decide([
            Step(at: 0, load: ScalerTests.pods(10), expected: .init(desired: 2, direction: .down, reason: .minimum)),
            Step(at: 5, load: ScalerTests.pods(2), expected: .init(desired: 2, direction: .none, reason: .minimum)),
        ])
        ScalerTests.decide([
            Step(
                at: 0, load: ScalerTests.pods(2, connections: 12000),
                expected: .init(desired: 5, direction: .up, reason: .connections)),
            // Idle now, but a scale-in waits 300 s after any change.
            Step(at: 100, load: ScalerTests.pods(5), expected: .init(desired: 5, direction: .none, reason: .cooldown)),
            Step(at: 299, load: ScalerTests.pods(5), expected: .init(desired: 5, direction: .none, reason: .cooldown)),
            Step(at: 300, load: ScalerTests.pods(5), expected: .init(desired: 2, direction: .down, reason: .minimum)),
        ])
    }

    @Test func scaleInKeepsHeadroom() {
        // 4 pods, 14000 connections: 3 pods would run at 4667 each, above 80 % of 5000: stay at 4.
        ScalerTests.decide([
            Step(
                at: 0, load: ScalerTests.pods(4, connections: 3500),
                expected: .init(desired: 4, direction: .none, reason: .steady)),
            // 11000: 3 pods at 3667 each, under 4000: scale in.
            Step(
                at: 1, load: ScalerTests.pods(4, connections: 2750),
                expected: .init(desired: 3, direction: .down, reason: .connections)),
        ])
    }

    @Test func neverBeyondTheMaximum() {
        var policy = ScalePolicy()
        policy.maxReplicas = 6
        ScalerTests.decide(
            [
                Step(
                    at: 0, load: ScalerTests.pods(2, connections: 50000),
                    expected: .init(desired: 6, direction: .up, reason: .maximum)),
                Step(
                    at: 1000, load: ScalerTests.pods(6, connections: 50000),
                    expected: .init(desired: 6, direction: .none, reason: .maximum)),
                Step(
                    at: 2000, load: ScalerTests.pods(6, p95: 900),
                    expected: .init(desired: 6, direction: .none, reason: .maximum)),
            ], policy: policy)
    }

    @Test func drainingPodsLoadCountsButTheyDoNot() {
        var scaler = Scaler()
        let membership = Membership(members: [
            beat("a", connections: 4000), beat("b", connections: 4000), beat("c", connections: 4000, draining: true),
        ])
        // 12000 connections need 3 pods; 2 are live.
        #expect(scaler.decide(membership, now: 0) == .init(desired: 3, direction: .up, reason: .connections))
    }

    @Test func belowTheMinimumIsRaisedToIt() {
        ScalerTests.decide([
            Step(at: 0, load: ScalerTests.pods(0), expected: .init(desired: 2, direction: .up, reason: .minimum)),
            Step(at: 1, load: ScalerTests.pods(1), expected: .init(desired: 2, direction: .none, reason: .minimum)),
        ])
    }

    @Test func hostileFiguresStayFinite() {
        var scaler = Scaler()
        let membership = Membership(members: [beat("a", connections: Int.max, cpu: 1e300)])
        #expect(scaler.decide(membership, now: 0) == .init(desired: 50, direction: .up, reason: .maximum))
    }
}

@Suite struct AssignmentTests {
    static let ring = Ring(
        version: 12,
        nodes: [
            RingNode(id: "socket-a", weight: 1, draining: false), RingNode(id: "socket-b", weight: 1, draining: false),
            RingNode(id: "socket-c", weight: 0, draining: true),
        ])
    static let addresses = ["socket-a": "10.0.0.5", "socket-b": "10.0.0.6", "socket-c": "10.0.0.7"]

    static func decide(
        _ id: String?, _ form: URLForm, ring: Ring? = ring, addresses: [String: String] = addresses
    )
        -> Assignment
    {
        Assignment.decide(clientID: id, ring: ring, form: form, address: { addresses[$0] })
    }

    @Test func bothFormsNameThePodAndTheRingVersion() throws {
        for index in 0..<50 {
            let id = "user-\(index)"
            let owner = try #require(AssignmentTests.ring.owner(of: id))
            #expect(owner != "socket-c")
            #expect(
                AssignmentTests.decide(id, .name)
                    == .assigned(socketNodeId: owner, url: "/ws/\(owner)/connect", ringVersion: 12))
            let dashed = AssignmentTests.addresses[owner]!.replacingOccurrences(of: ".", with: "-")
            #expect(
                AssignmentTests.decide(id, .ip)
                    == .assigned(socketNodeId: owner, url: "/ws/\(dashed)/connect", ringVersion: 12))
        }
    }

    @Test func theBodyIsTheDocumentedJSON() throws {
        let answer = Assignment.assigned(socketNodeId: "socket-7d9f-abc12", url: "/ws/10-1-2-3/connect", ringVersion: 3)
        #expect(answer.status == 200)
        #expect(
            String(decoding: answer.body, as: UTF8.self)
                == #"{"socketNodeId":"socket-7d9f-abc12","url":"/ws/10-1-2-3/connect","ringVersion":3}"#)
    }

    @Test(
        arguments: [
            nil, "", String(repeating: "x", count: 129), "a b", "a/b", "ü", "a?b", "<script>", "a%20b", "a\u{0}b",
        ] as [String?])
    func badClientIDsAre400JSON(_ id: String?) throws {
        let answer = AssignmentTests.decide(id, .name)
        #expect(answer == .badClientID)
        #expect(answer.status == 400)
        let body = try answer.body.withUnsafeBytes { try JSONParser.parse($0, maxDepth: 4) }
        #expect(body["error"]?.stringValue == "bad_client_id")
    }

    @Test(arguments: ["a", String(repeating: "x", count: 128), "A.b_c:d@e-f", "0"])
    func goodClientIDsAreAssigned(_ id: String) {
        #expect(AssignmentTests.decide(id, .name).status == 200)
    }

    @Test func noNodeIs503JSON() throws {
        for ring in [nil, Ring.empty, Ring(version: 4, nodes: [RingNode(id: "x", weight: 0, draining: true)])] {
            let answer = AssignmentTests.decide("u1", .name, ring: ring)
            #expect(answer == .noNode)
            #expect(answer.status == 503)
            let body = try answer.body.withUnsafeBytes { try JSONParser.parse($0, maxDepth: 4) }
            #expect(body["error"]?.stringValue == "no_node")
        }
    }

    @Test func anUnknownOrUnusableAddressIs503() {
        let owner = AssignmentTests.ring.owner(of: "u1")!
        #expect(AssignmentTests.decide("u1", .ip, addresses: [:]) == .noAddress(node: owner))
        #expect(AssignmentTests.decide("u1", .ip, addresses: [owner: "fd00::1"]) == .noAddress(node: owner))
        #expect(AssignmentTests.decide("u1", .ip, addresses: [:]).status == 503)
    }
}

@Suite struct ConfigurationTests {
    static let base = ["RING_SECRET": "s"]

    @Test func defaultsMatchTheManifests() throws {
        let configuration = try BalancerConfiguration.parse(arguments: [], environment: ConfigurationTests.base).get()
        #expect(configuration.httpPort == 8081)
        #expect(configuration.scaleMode == .keda)
        #expect(configuration.minSocketReplicas == 2)
        #expect(configuration.maxSocketReplicas == 50)
        #expect(configuration.urlForm == .name)
        #expect(configuration.leaseName == "rtc-balancer-leader")
    }

    @Test func environmentThenFlags() throws {
        let configuration = try BalancerConfiguration.parse(
            arguments: ["--scale-mode", "direct", "--socket-url-form=ip", "--port", "9000"],
            environment: ConfigurationTests.base.merging(
                ["SCALE_MODE": "keda", "MIN_SOCKET_REPLICAS": "3", "MAX_SOCKET_REPLICAS": "7", "HTTP_PORT": "1"]
            ) { $1 }
        ).get()
        #expect(configuration.scaleMode == .direct)
        #expect(configuration.urlForm == .ip)
        #expect(configuration.httpPort == 9000)
        #expect(configuration.minSocketReplicas == 3)
        #expect(configuration.maxSocketReplicas == 7)
    }

    @Test(arguments: [
        (["SCALE_MODE": "both"], "SCALE_MODE"), (["SOCKET_URL_FORM": "dns"], "SOCKET_URL_FORM"),
        (["HTTP_PORT": "0"], "HTTP_PORT"), (["MIN_SOCKET_REPLICAS": "x"], "MIN_SOCKET_REPLICAS"),
        (["MIN_SOCKET_REPLICAS": "9", "MAX_SOCKET_REPLICAS": "3"], "MIN_SOCKET_REPLICAS"),
        (["REDIS_URL": "http://x"], "REDIS_URL"), (["BIND_ADDRESS": "::"], "BIND_ADDRESS"),
        (["POD_NAMESPACE": "Bad_NS"], "POD_NAMESPACE"), (["TARGET_CPU_PER_POD": "-1"], "TARGET_CPU_PER_POD"),
        (["RECONCILE_INTERVAL_SEC": "0"], "RECONCILE_INTERVAL_SEC"), (["RING_SECRET": ""], "RING_SECRET"),
    ])
    func badValuesNameTheSetting(_ environment: [String: String], _ name: String) {
        switch BalancerConfiguration.parse(
            arguments: [], environment: ConfigurationTests.base.merging(environment) { $1 })
        {
        case .success: Issue.record("accepted \(environment)")
        case .failure(let error): #expect(error.message.hasPrefix(name), "\(error.message)")
        }
    }

    @Test func unknownFlagsAreRefused() {
        guard
            case .failure(let error) = BalancerConfiguration.parse(
                arguments: ["--nope"], environment: ConfigurationTests.base)
        else {
            Issue.record("accepted --nope")
            return
        }
        #expect(error.message.contains("--nope"))
    }

    @Test func helpListsEverySettingWithItsDefault() {
        let help = BalancerConfiguration.helpText
        for name in [
            "REDIS_URL", "KAFKA_BOOTSTRAP", "SCALE_MODE", "SOCKET_DEPLOYMENT", "SOCKET_POD_SELECTOR", "LEASE_NAME",
            "MIN_SOCKET_REPLICAS", "MAX_SOCKET_REPLICAS", "RING_SECRET", "POD_NAMESPACE", "POD_NAME", "HTTP_PORT",
            "BIND_ADDRESS", "SOCKET_URL_FORM", "RECONCILE_INTERVAL_SEC", "KUBE_API_URL",
        ] {
            #expect(help.contains(name), "\(name) missing from --help")
        }
        #expect(help.contains("(default 8081)"))
        #expect(help.contains("(default keda)"))
    }
}

@Suite struct LeadershipTests {
    @Test func alwaysLeaderLeadsFromStartToStop() {
        let leader = AlwaysLeader()
        var changes: [Bool] = []
        leader.onChange = { changes.append($0) }
        #expect(!leader.isLeader)
        leader.start()
        leader.start()
        #expect(leader.isLeader)
        leader.stop()
        #expect(changes == [true, false])
    }

    @Test func noClusterRecordsCallsBounded() {
        let cluster = NoCluster(limit: 2)
        cluster.setReplicas(3) { #expect((try? $0.get()) != nil) }
        cluster.setDeletionCosts(["a": 1]) { _ in }
        cluster.setReplicas(4) { _ in }
        #expect(cluster.calls == [.setDeletionCosts(["a": 1]), .setReplicas(4)])
    }
}
