// Weighted rendezvous (highest-random-weight) hashing over a versioned list of socket nodes.

/// One socket node in the ring.
public struct RingNode: Equatable, Sendable {
    /// The node's id (its pod name).
    public var id: String
    /// Relative share of new clients; a node owns nothing unless `weight > 0`.
    public var weight: Double
    /// A draining node owns nothing (it keeps its sessions but gets no new clients).
    public var draining: Bool

    public init(id: String, weight: Double, draining: Bool) {
        self.id = id
        self.weight = weight
        self.draining = draining
    }
}

/// Node ids as they appear in ring updates and heartbeats: 1–253 bytes of `[A-Za-z0-9._:@-]` (pod names fit).
public enum NodeID {
    public static func isValid(_ id: String) -> Bool { isIdentifier(id, maxBytes: 253) }
}

/// Whether `id` is 1 to `maxBytes` bytes of `[A-Za-z0-9._:@-]`: the alphabet of node ids and client ids, safe in a
/// Redis key, a Kafka topic name, a URL query and a log line as it is.
public func isIdentifier(_ id: String, maxBytes: Int) -> Bool {
    let utf8 = id.utf8
    guard !utf8.isEmpty, utf8.count <= maxBytes else { return false }
    for byte in utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
            UInt8(ascii: "@"), UInt8(ascii: "-"):
            continue
        default: return false
        }
    }
    return true
}

/// A versioned set of nodes and the placement of keys on them.
///
/// Placement is weighted rendezvous hashing (Thaler and Ravishankar's highest random weight, with the
/// logarithmic weighting of Schindelhauer and Schomaker): for each eligible node,
/// `h = XXH64(key, seed: XXH64(node.id))`, `u = ((h >> 11) + 0.5) / 2^53` (in (0, 1)), and
/// `score = weight / -ln(u)`; the highest score owns the key. A node's expected share is its weight over the
/// sum of weights, adding a node only takes keys (to itself), removing one only moves its own keys, and the
/// answer never depends on the order nodes were given in.
public struct Ring: Equatable, Sendable {
    public let version: UInt64
    /// Sorted by the UTF-8 bytes of `id`, one entry per id (for duplicate ids given to `init`, the last wins).
    public let nodes: [RingNode]
    /// `XXH64(node.id)` for each node, in `nodes` order.
    private let seeds: [UInt64]
    /// Positions in `nodes` of the nodes that may own keys (weight > 0, not draining), and their seeds.
    private let eligible: [Int]
    private let eligibleSeeds: [UInt64]
    /// Every eligible node has the same weight (the usual case: hysteresis keeps a balanced ring equal).
    private let uniformWeight: Bool

    public init(version: UInt64, nodes: [RingNode]) {
        let sorted = Ring.normalized(nodes)
        let seeds = sorted.map { XXH64.hash($0.id) }
        let eligible = sorted.indices.filter { sorted[$0].weight > 0 && !sorted[$0].draining }
        self.version = version
        self.nodes = sorted
        self.seeds = seeds
        self.eligible = eligible
        self.eligibleSeeds = eligible.map { seeds[$0] }
        self.uniformWeight = eligible.allSatisfy { sorted[$0].weight == sorted[eligible[0]].weight }
    }

    /// Version 0 with no nodes.
    public static let empty = Ring(version: 0, nodes: [])

    /// One entry per id, the last given winning, sorted by the UTF-8 bytes of the id.
    static func normalized(_ nodes: [RingNode]) -> [RingNode] {
        var lastIndex: [String: Int] = [:]
        for (index, node) in nodes.enumerated() { lastIndex[node.id] = index }
        var unique: [RingNode] = []
        unique.reserveCapacity(lastIndex.count)
        for (index, node) in nodes.enumerated() where lastIndex[node.id] == index { unique.append(node) }
        unique.sort { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
        return unique
    }

    /// The highest-random-weight owner of `key` among nodes with `weight > 0` that are not draining; nil when
    /// there is none. Equal scores go to the node whose id sorts first.
    public func owner(of key: String) -> String? {
        var copy = key
        return copy.withUTF8 { owner(ofKeyBytes: UnsafeRawBufferPointer($0)) }
    }

    /// `owner(of:)` for a key given as its UTF-8 bytes.
    ///
    /// With equal weights the score `w / -ln(u)` increases with `u`, so the owner is the node with the largest
    /// `h >> 11` and no logarithm is needed (ties still go to the id that sorts first). The one difference from
    /// comparing scores: two different `u` whose scores round to the same double (adjacent 53-bit values, a chance
    /// of about 2⁻⁵⁰ per pair) go to the larger `u` instead of the first id.
    public func owner(ofKeyBytes key: UnsafeRawBufferPointer) -> String? {
        guard uniformWeight else { return ownerByScore(ofKeyBytes: key) }
        var best = -1
        var bestUnit: UInt64 = 0
        for position in eligibleSeeds.indices {
            let unit = XXH64.hash(key, seed: eligibleSeeds[position]) >> 11
            if best < 0 || unit > bestUnit {
                best = position
                bestUnit = unit
            }
        }
        return best < 0 ? nil : nodes[eligible[best]].id
    }

    /// The owner by comparing every eligible node's score (any weights).
    func ownerByScore(ofKeyBytes key: UnsafeRawBufferPointer) -> String? {
        var best = -1
        var bestScore = -Double.infinity
        for index in nodes.indices {
            let node = nodes[index]
            guard node.weight > 0, !node.draining else { continue }
            let score = Ring.score(key: key, seed: seeds[index], weight: node.weight)
            if best < 0 || score > bestScore {
                best = index
                bestScore = score
            }
        }
        return best < 0 ? nil : nodes[best].id
    }

    /// The node with this id, if present.
    public func node(_ id: String) -> RingNode? {
        nodes.first { $0.id == id }
    }

    /// The ids of the nodes that may own keys (weight > 0, not draining), in `nodes` order.
    public var eligibleIDs: [String] {
        nodes.filter { $0.weight > 0 && !$0.draining }.map(\.id)
    }

    /// A node's score for a key: `weight / -ln(u)` with `u` from the key's hash under the node's seed.
    static func score(key: UnsafeRawBufferPointer, seed: UInt64, weight: Double) -> Double {
        let hash = XXH64.hash(key, seed: seed)
        let unit = (Double(hash >> 11) + 0.5) * 0x1p-53
        return weight / -naturalLog(unit)
    }
}

/// ln(x) for positive finite x, within about one ulp, in pure Swift: the standard library has no logarithm
/// and this target may not import the C library.
///
/// x = m · 2^e with m in [√½, √2); ln m = 2·atanh(s) with s = (m − 1)/(m + 1), |s| < 0.172, summed as the odd
/// series 2(s + s³/3 + s⁵/5 + …) up to s²³ (the next term is below 2⁻⁶⁰ of the sum); e·ln 2 is added in two
/// parts so that the high part's product is exact.
func naturalLog(_ x: Double) -> Double {
    precondition(x > 0 && x.isFinite, "naturalLog takes a positive finite number")
    var exponent = Int(x.exponent)
    var mantissa = x.significand  // in [1, 2)
    if mantissa > 1.4142135623730951 {
        mantissa *= 0.5
        exponent += 1
    }
    let s = (mantissa - 1) / (mantissa + 1)  // mantissa - 1 is exact (Sterbenz)
    let z = s * s
    var series = 2.0 / 23.0
    series = series * z + 2.0 / 21.0
    series = series * z + 2.0 / 19.0
    series = series * z + 2.0 / 17.0
    series = series * z + 2.0 / 15.0
    series = series * z + 2.0 / 13.0
    series = series * z + 2.0 / 11.0
    series = series * z + 2.0 / 9.0
    series = series * z + 2.0 / 7.0
    series = series * z + 2.0 / 5.0
    series = series * z + 2.0 / 3.0
    // 2s + s·z·(series): the leading term kept apart so its rounding error stays at half an ulp.
    let logMantissa = 2 * s + s * (z * series)
    let e = Double(exponent)
    let ln2High = 6.93147180369123816490e-01  // ln 2 with its low 21 bits cleared: e · ln2High is exact
    let ln2Low = 1.90821492927058770002e-10
    return e * ln2High + (e * ln2Low + logMantissa)
}
