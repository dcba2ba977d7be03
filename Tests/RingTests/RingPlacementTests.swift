// Weighted rendezvous placement: published owner vectors, shares, minimal movement, order independence.
import TestRandom
import Testing

@testable import Ring

private func nodes(_ count: Int, weight: Double = 1) -> [RingNode] {
    (0..<count).map { RingNode(id: "socket-\($0)", weight: weight, draining: false) }
}

private func owners(_ ring: Ring, keys: Int) -> [String?] {
    (0..<keys).map { ring.owner(of: "client-\($0)") }
}

struct RingPlacementTests {
    /// The fixed ring of the published vectors.
    static let fiveNodes = Ring(
        version: 1,
        nodes: [
            RingNode(id: "socket-a", weight: 1, draining: false), RingNode(id: "socket-b", weight: 1, draining: false),
            RingNode(id: "socket-c", weight: 2, draining: false),
            RingNode(id: "socket-d", weight: 0.5, draining: false),
            RingNode(id: "socket-e", weight: 1.5, draining: false),
        ])

    /// Owners in `fiveNodes`, computed independently (Python: `xxhash.xxh64_intdigest` and `math.log`) with
    /// score = weight / -ln(((h >> 11) + 0.5) / 2^53), h = XXH64(key, seed: XXH64(id)). The closest race among
    /// these keys is won by 2 %, so a float-rounding difference cannot flip them.
    static let ownerVectors: [(String, String)] = [
        ("client-0", "socket-c"),
        ("client-1", "socket-c"),
        ("client-2", "socket-c"),
        ("client-3", "socket-a"),
        ("client-4", "socket-d"),
        ("client-5", "socket-b"),
        ("client-6", "socket-d"),
        ("client-7", "socket-e"),
        ("client-8", "socket-a"),
        ("client-9", "socket-c"),
        ("client-10", "socket-e"),
        ("client-11", "socket-e"),
        ("client-12", "socket-b"),
        ("client-13", "socket-b"),
        ("client-14", "socket-d"),
        ("client-15", "socket-a"),
        ("client-16", "socket-c"),
        ("client-17", "socket-d"),
        ("client-18", "socket-b"),
        ("client-19", "socket-c"),
        ("client-20", "socket-c"),
        ("client-21", "socket-e"),
        ("client-22", "socket-a"),
        ("client-23", "socket-d"),
        ("client-24", "socket-e"),
        ("client-25", "socket-e"),
        ("client-26", "socket-a"),
        ("client-27", "socket-c"),
        ("client-28", "socket-a"),
        ("client-29", "socket-e"),
        ("client-30", "socket-b"),
        ("client-31", "socket-e"),
        ("client-32", "socket-e"),
        ("client-33", "socket-a"),
        ("client-34", "socket-a"),
        ("client-35", "socket-e"),
        ("client-36", "socket-e"),
        ("client-37", "socket-c"),
        ("client-38", "socket-c"),
        ("client-39", "socket-c"),
    ]

    @Test(arguments: ownerVectors)
    func publishedOwners(key: String, owner: String) {
        #expect(Self.fiveNodes.owner(of: key) == owner)
    }

    static let weightSets: [[Double]] = [[1, 1, 1, 1, 1], [1, 2, 3, 4], [0.5, 1, 1.5, 2, 5], [10, 1]]

    @Test(arguments: weightSets)
    func sharesFollowWeights(weights: [Double]) {
        let ring = Ring(
            version: 1, nodes: weights.enumerated().map { RingNode(id: "n\($0)", weight: $1, draining: false) })
        let keys = 100_000
        var counts: [String: Int] = [:]
        for key in 0..<keys { counts[ring.owner(of: "client-\(key)")!, default: 0] += 1 }
        let total = weights.reduce(0, +)
        for (index, weight) in weights.enumerated() {
            let share = Double(counts["n\(index)", default: 0]) / Double(keys)
            let expected = weight / total
            #expect(abs(share - expected) <= 0.02, "n\(index): share \(share), weight share \(expected)")
        }
    }

    @Test(arguments: [3, 5, 10])
    func addingANodeMovesFewKeysAndOnlyToIt(count: Int) {
        let before = Ring(version: 1, nodes: nodes(count))
        let after = Ring(version: 2, nodes: nodes(count + 1))
        let keys = 20_000
        var moved = 0
        for key in 0..<keys {
            let old = before.owner(of: "client-\(key)")
            let new = after.owner(of: "client-\(key)")
            if old != new {
                moved += 1
                #expect(new == "socket-\(count)", "client-\(key) moved from \(old!) to \(new!)")
            }
        }
        let fraction = Double(moved) / Double(keys)
        #expect(fraction <= 1.2 / Double(count + 1), "moved \(fraction)")
        #expect(fraction >= 0.8 / Double(count + 1), "moved \(fraction)")
    }

    @Test(arguments: [3, 5, 10])
    func removingANodeMovesOnlyItsKeys(count: Int) {
        let before = Ring(version: 1, nodes: nodes(count))
        let removed = "socket-1"
        let after = Ring(version: 2, nodes: nodes(count).filter { $0.id != removed })
        for key in 0..<10_000 {
            let old = before.owner(of: "client-\(key)")
            let new = after.owner(of: "client-\(key)")
            if old == removed {
                #expect(new != removed)
            } else {
                #expect(new == old)
            }
        }
    }

    @Test func inputOrderNeverChangesTheAnswer() {
        let base = Self.fiveNodes.nodes + nodes(6, weight: 0.75)
        let reference = Ring(version: 3, nodes: base)
        let expected = owners(reference, keys: 2000)
        var generator = SplitMix64(seed: 42)
        for _ in 0..<10 {
            let shuffled = Ring(version: 3, nodes: base.shuffled(using: &generator))
            #expect(shuffled == reference)
            #expect(shuffled.nodes.map(\.id) == reference.nodes.map(\.id))
            #expect(owners(shuffled, keys: 2000) == expected)
        }
    }

    @Test func nodesAreSortedAndDuplicateIdsKeepTheLast() {
        let ring = Ring(
            version: 1,
            nodes: [
                RingNode(id: "b", weight: 1, draining: false), RingNode(id: "a", weight: 1, draining: false),
                RingNode(id: "b", weight: 3, draining: true),
            ])
        #expect(ring.nodes.map(\.id) == ["a", "b"])
        #expect(ring.node("b") == RingNode(id: "b", weight: 3, draining: true))
        #expect(ring.node("c") == nil)
        #expect(ring.eligibleIDs == ["a"])
    }

    @Test func drainingAndZeroWeightNodesOwnNothing() {
        var members = nodes(4)
        members[1].draining = true
        members[2].weight = 0
        members.append(RingNode(id: "socket-neg", weight: -1, draining: false))
        members.append(RingNode(id: "socket-nan", weight: .nan, draining: false))
        let ring = Ring(version: 1, nodes: members)
        var owned: Set<String> = []
        for key in 0..<5000 { owned.insert(ring.owner(of: "client-\(key)")!) }
        #expect(owned == ["socket-0", "socket-3"])
    }

    @Test func noEligibleNodeMeansNoOwner() {
        #expect(Ring.empty.owner(of: "x") == nil)
        #expect(Ring.empty.version == 0)
        let ring = Ring(
            version: 1,
            nodes: [RingNode(id: "a", weight: 0, draining: false), RingNode(id: "b", weight: 1, draining: true)])
        #expect(ring.owner(of: "x") == nil)
    }

    @Test func ownerOfBytesMatchesOwnerOfString() {
        for key in ["", "client-1", "ünïcode-id", String(repeating: "k", count: 300)] {
            let bytes = Array(key.utf8)
            #expect(bytes.withUnsafeBytes { Self.fiveNodes.owner(ofKeyBytes: $0) } == Self.fiveNodes.owner(of: key))
        }
    }

    @Test(arguments: [1.0, 0.37, 250.0])
    func equalWeightsTakeTheLargestUnitAndAgreeWithTheScores(weight: Double) {
        // 50 equal nodes (one draining, one at weight 0, which must stay out), 20,000 keys: the log-free path
        // gives the owner the score comparison gives.
        var nodes = (0..<50).map { RingNode(id: "socket-\($0)", weight: weight, draining: false) }
        nodes[7].draining = true
        nodes[31].weight = 0
        let ring = Ring(version: 1, nodes: nodes)
        var counts: [String: Int] = [:]
        for index in 0..<20_000 {
            let bytes = Array("client-\(index)".utf8)
            let fast = bytes.withUnsafeBytes { ring.owner(ofKeyBytes: $0) }
            let scored = bytes.withUnsafeBytes { ring.ownerByScore(ofKeyBytes: $0) }
            #expect(fast == scored, "client-\(index)")
            counts[fast ?? "none", default: 0] += 1
        }
        #expect(counts["socket-7"] == nil && counts["socket-31"] == nil && counts["none"] == nil)
        #expect(counts.count == 48)
        // Unequal weights still go through the scores.
        nodes[3].weight = weight * 2
        let weighted = Ring(version: 2, nodes: nodes)
        for index in 0..<2_000 {
            let bytes = Array("client-\(index)".utf8)
            #expect(
                bytes.withUnsafeBytes { weighted.owner(ofKeyBytes: $0) }
                    == bytes.withUnsafeBytes { weighted.ownerByScore(ofKeyBytes: $0) })
        }
    }

    /// (x, ln x) from Python's `math.log` (correctly rounded in practice).
    static let logarithms: [(Double, Double)] = [
        (1e-16, -36.841361487904734),
        (5.551115123125783e-17, -37.42994775023705),
        (0.001, -6.907755278982137),
        (0.1, -2.3025850929940455),
        (0.3, -1.2039728043259361),
        (0.5, -0.6931471805599453),
        (0.7071067811865476, -0.3465735902799726),
        (0.70710678, -0.3465735919580042),
        (0.75, -0.2876820724517809),
        (0.9, -0.10536051565782628),
        (0.99, -0.01005033585350145),
        (0.999999, -1.000000500029089e-06),
        (0.9999999999999999, -1.1102230246251565e-16),
        (0.9999999999990905, -9.094947017733418e-13),
        (0.123456789, -2.091864070778393),
        (2.0, 0.6931471805599453),
        (10.0, 2.302585092994046),
        (1e+300, 690.7755278982137),
    ]

    @Test(arguments: logarithms)
    func naturalLogIsWithinOneUlp(x: Double, expected: Double) {
        let value = naturalLog(x)
        #expect(abs(value - expected) <= expected.ulp, "ln(\(x)) = \(value), expected \(expected)")
    }

    @Test func naturalLogIsAccurateAcrossTheUnitInterval() {
        // Inverse check without a reference: ln(a·b) = ln a + ln b, and ln(2^k) = k·ln 2.
        var generator = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let u = (Double(generator.next() >> 11) + 0.5) * 0x1p-53
            let doubled = naturalLog(u * 2)
            #expect(abs(doubled - (naturalLog(u) + 0.6931471805599453)) <= 4 * max(doubled.ulp, 0x1p-52))
        }
        #expect(naturalLog(1) == 0)
        #expect(abs(naturalLog(0x1p-40) - -27.725887222397812) <= 27.725887222397812.ulp)
    }
}
