// Ring updates: canonical bytes, a published signature, tampering, version order, hostile JSON.
import JSON
import Testing

@testable import Ring

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

private func decode(_ json: String) throws(RingError) -> RingUpdate { try RingUpdate.decode(Array(json.utf8)) }

struct RingUpdateTests {
    static let secret = Array("ring-secret".utf8)
    static let update = RingUpdate(
        version: 7,
        nodes: [
            RingNode(id: "socket-b", weight: 0.5, draining: true), RingNode(id: "socket-a", weight: 1, draining: false),
        ],
        reason: "rebalance", ts: 1_767_225_600_000)

    /// The canonical bytes and their HMAC-SHA256 under "ring-secret", computed with Python's hmac module.
    static let canonical =
        "{\"version\":7,\"nodes\":[{\"id\":\"socket-a\",\"weight\":1.0,\"draining\":false},"
        + "{\"id\":\"socket-b\",\"weight\":0.5,\"draining\":true}],\"reason\":\"rebalance\",\"ts\":1767225600000}"
    static let signature = "8edef2e2938caaf603df385f34ab0df5547feb185d0160045afff313a9304880"

    @Test func canonicalBytesAndSignatureMatchThePublishedVector() {
        #expect(text(Self.update.canonicalBytes()) == Self.canonical)
        let signed = Self.update.signed(secret: Self.secret)
        #expect(signed.sig == Self.signature)
        #expect(text(signed.encoded()) == String(Self.canonical.dropLast()) + ",\"sig\":\"\(Self.signature)\"}")
        #expect(signed.validate(secret: Self.secret, currentVersion: nil) == .accepted)
        #expect(signed.validate(secret: Self.secret, currentVersion: 6) == .accepted)
    }

    @Test func roundTripKeepsTheSignatureValid() throws {
        let weights: [Double] = [
            1, 0.1, 0.30000000000000004, 1e-5, 123456.789, 2.0 / 3.0, .leastNonzeroMagnitude, 1e300, 0,
        ]
        let nodes = weights.enumerated().map { RingNode(id: "n-\($0)", weight: $1, draining: $0 % 2 == 0) }
        let original = RingUpdate(
            version: UInt64.max, nodes: nodes, reason: "weights \"quoted\" \\ é\n", ts: -1
        )
        .signed(secret: Self.secret)
        let decoded = try RingUpdate.decode(original.encoded())
        #expect(decoded.canonicalBytes() == original.canonicalBytes())
        #expect(decoded == original)
        #expect(decoded.validate(secret: Self.secret, currentVersion: UInt64.max - 1) == .accepted)
        #expect(decoded.ring == original.ring)
        #expect(decoded.ring.version == UInt64.max)
    }

    @Test func nodeOrderDoesNotChangeTheSignature() {
        var reversed = Self.update
        reversed.nodes.reverse()
        #expect(reversed.canonicalBytes() == Self.update.canonicalBytes())
        #expect(reversed.signed(secret: Self.secret).sig == Self.signature)
    }

    /// Changes an attacker might make to a signed update.
    static let tamperings: [(String, @Sendable (inout RingUpdate) -> Void)] = [
        ("version", { $0.version += 1 }),
        ("node weight", { $0.nodes[0].weight = 9 }),
        ("node draining", { $0.nodes[1].draining.toggle() }),
        ("node id", { $0.nodes[0].id = "socket-x" }),
        ("node added", { $0.nodes.append(RingNode(id: "socket-z", weight: 1, draining: false)) }),
        ("node removed", { $0.nodes.removeLast() }),
        ("reason", { $0.reason = "rebalancE" }),
        ("ts", { $0.ts += 1 }),
        ("sig flipped", { $0.sig = "9" + $0.sig.dropFirst() }),
        ("sig uppercase", { $0.sig = $0.sig.uppercased() }),
        ("sig truncated", { $0.sig = String($0.sig.dropLast(2)) }),
        ("sig empty", { $0.sig = "" }),
        ("sig not hex", { $0.sig = String(repeating: "g", count: 64) }),
    ]

    @Test(arguments: tamperings.indices)
    func tamperedUpdatesHaveBadSignatures(index: Int) {
        var update = Self.update.signed(secret: Self.secret)
        Self.tamperings[index].1(&update)
        #expect(
            update.validate(secret: Self.secret, currentVersion: nil) == .badSignature, "\(Self.tamperings[index].0)")
    }

    @Test func wrongSecretIsABadSignature() {
        let signed = Self.update.signed(secret: Self.secret)
        #expect(signed.validate(secret: Array("ring-secreT".utf8), currentVersion: nil) == .badSignature)
        #expect(signed.validate(secret: [], currentVersion: nil) == .badSignature)
    }

    @Test func versionsMustGrow() {
        let signed = Self.update.signed(secret: Self.secret)
        #expect(signed.validate(secret: Self.secret, currentVersion: 7) == .stale(current: 7))
        #expect(signed.validate(secret: Self.secret, currentVersion: 8) == .stale(current: 8))
        #expect(signed.validate(secret: Self.secret, currentVersion: UInt64.max) == .stale(current: UInt64.max))
        #expect(signed.validate(secret: Self.secret, currentVersion: 0) == .accepted)
        // A forged update is a bad signature whatever its version.
        var forged = signed
        forged.version = 100
        #expect(forged.validate(secret: Self.secret, currentVersion: 7) == .badSignature)
    }

    /// Documents that must not decode.
    static let hostile: [String] = [
        "", "[]", "null", "\"x\"", "{", "{}",
        "{\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[],\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[],\"reason\":\"r\",\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[],\"reason\":\"r\",\"ts\":1}",
        "{\"version\":-1,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1.5,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1e3,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":\"1\",\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":18446744073709551616,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":99999999999999999999999999999,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":null,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":{},\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[1],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"weight\":1,\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"weight\":1}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"\",\"weight\":1,\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"a b\",\"weight\":1,\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":7,\"weight\":1,\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"weight\":-1,\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"weight\":1e999,\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"weight\":\"1\",\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"weight\":1,\"draining\":0}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"weight\":1,\"draining\":false},"
            + "{\"id\":\"a\",\"weight\":2,\"draining\":false}],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[],\"reason\":5,\"ts\":1,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[],\"reason\":\"r\",\"ts\":9223372036854775808,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[],\"reason\":\"r\",\"ts\":1.0,\"sig\":\"\"}",
        "{\"version\":1,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":null}",
        "{\"version\":1,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"} trailing",
        "{\"version\":1,\"nodes\":[],\"reason\":\"r\",\"ts\":1,\"sig\":\"\",}",
        "{\"version\":1,\"nodes\":[[[[[[[[[[]]]]]]]]]],\"reason\":\"r\",\"ts\":1,\"sig\":\"\"}",
    ]

    @Test(arguments: hostile)
    func hostileDocumentsThrow(json: String) {
        #expect(throws: RingError.self) { try decode(json) }
    }

    @Test func minimalDocumentDecodesAndUnknownMembersAreIgnored() throws {
        let update = try decode(
            "{\"version\":0,\"nodes\":[],\"reason\":\"\",\"ts\":-5,\"sig\":\"\",\"extra\":{\"x\":[1]}}")
        #expect(update == RingUpdate(version: 0, nodes: [], reason: "", ts: -5, sig: ""))
        #expect(update.validate(secret: Self.secret, currentVersion: nil) == .badSignature)
    }
}
