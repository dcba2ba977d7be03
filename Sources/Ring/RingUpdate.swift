// Ring updates as published by the balancer's leader: canonical JSON, HMAC-SHA256 signature, version order.
import JSON

/// Why a ring update could not be decoded.
public struct RingError: Error, Equatable, Sendable {
    public var message: String

    public init(_ message: String) { self.message = message }
}

/// The verdict on a received ring update.
public enum RingValidation: Equatable, Sendable {
    case accepted
    /// The signature is missing, malformed or does not match the canonical bytes under the secret.
    case badSignature
    /// Correctly signed, but not newer than the version already held.
    case stale(current: UInt64)
}

/// A signed, versioned ring (SYSTEM §3): `{"version","nodes":[{"id","weight","draining"}],"reason","ts","sig"}`.
///
/// The signature is the lowercase hex HMAC-SHA256 of `canonicalBytes()`: the same JSON without `sig`, keys in
/// that fixed order, nodes normalized as `Ring` does (one per id, sorted by id), no whitespace. A weight is
/// written as the shortest decimal that reads back as the same Double (Swift's `Double.description`, e.g.
/// `1.0`, `0.30000000000000004`, `1e-05`), so decoding and re-encoding gives the same bytes and the signature
/// still verifies. Decoding requires every weight to be finite and ≥ 0 and every id to be 1–253 bytes of
/// `[A-Za-z0-9._:@-]`, rejects duplicate ids, and ignores unknown members.
public struct RingUpdate: Equatable, Sendable {
    public var version: UInt64
    public var nodes: [RingNode]
    public var reason: String
    /// Unix time in milliseconds.
    public var ts: Int64
    /// Lowercase hex HMAC-SHA256 of `canonicalBytes()`.
    public var sig: String

    public init(version: UInt64, nodes: [RingNode], reason: String, ts: Int64, sig: String = "") {
        self.version = version
        self.nodes = nodes
        self.reason = reason
        self.ts = ts
        self.sig = sig
    }

    /// The ring this update describes.
    public var ring: Ring { Ring(version: version, nodes: nodes) }

    /// The signed bytes: `{"version":…,"nodes":[{"id":…,"weight":…,"draining":…}],"reason":…,"ts":…}`.
    public func canonicalBytes() -> [UInt8] {
        var writer = JSONWriter(capacity: 64 + nodes.count * 48 + reason.utf8.count)
        writeCanonicalMembers(&writer)
        writer.endObject()
        return writer.bytes
    }

    /// This update with `sig` set for `secret`.
    public func signed(secret: [UInt8]) -> RingUpdate {
        var copy = self
        copy.sig = Hex.encode(HMACSHA256.mac(key: secret, message: canonicalBytes()))
        return copy
    }

    /// The wire form: the canonical members followed by `"sig"`.
    public func encoded() -> [UInt8] {
        var writer = JSONWriter(capacity: 140 + nodes.count * 48 + reason.utf8.count)
        writeCanonicalMembers(&writer)
        writer.field("sig", sig)
        writer.endObject()
        return writer.bytes
    }

    private func writeCanonicalMembers(_ writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("version", version)
        writer.key("nodes")
        writer.beginArray()
        for node in Ring.normalized(nodes) {
            writer.beginObject()
            writer.field("id", node.id)
            writer.field("weight", node.weight)
            writer.field("draining", node.draining)
            writer.endObject()
        }
        writer.endArray()
        writer.field("reason", reason)
        writer.field("ts", ts)
    }

    /// Parses the wire form; throws on anything but an object with every member present and well typed.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(RingError) -> RingUpdate {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, maxDepth: 8)
        } catch {
            throw RingError("bad JSON at byte \(error.offset): \(error.message)")
        }
        guard case .object = value else { throw RingError("a ring update is a JSON object") }
        guard let version = value["version"]?.uint64Value else {
            throw RingError("version: missing or not an unsigned 64-bit integer")
        }
        guard let nodeValues = value["nodes"]?.arrayValue else { throw RingError("nodes: missing or not an array") }
        var nodes: [RingNode] = []
        nodes.reserveCapacity(nodeValues.count)
        var seen: Set<String> = []
        for (index, nodeValue) in nodeValues.enumerated() {
            guard case .object = nodeValue else { throw RingError("nodes[\(index)]: not an object") }
            guard let id = nodeValue["id"]?.stringValue, NodeID.isValid(id) else {
                throw RingError("nodes[\(index)].id: missing or not 1-253 bytes of [A-Za-z0-9._:@-]")
            }
            guard let weight = nodeValue["weight"]?.doubleValue, weight >= 0 else {
                throw RingError("nodes[\(index)].weight: missing or not a finite number >= 0")
            }
            guard let draining = nodeValue["draining"]?.boolValue else {
                throw RingError("nodes[\(index)].draining: missing or not a boolean")
            }
            guard seen.insert(id).inserted else { throw RingError("nodes[\(index)].id: duplicate id \(id)") }
            nodes.append(RingNode(id: id, weight: weight, draining: draining))
        }
        guard let reason = value["reason"]?.stringValue else { throw RingError("reason: missing or not a string") }
        guard let ts = value["ts"]?.int64Value else { throw RingError("ts: missing or not a 64-bit integer") }
        guard let sig = value["sig"]?.stringValue else { throw RingError("sig: missing or not a string") }
        return RingUpdate(version: version, nodes: nodes, reason: reason, ts: ts, sig: sig)
    }

    /// Parses the wire form from a byte array.
    public static func decode(_ bytes: [UInt8]) throws(RingError) -> RingUpdate {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(RingError) -> RingUpdate in try decode(raw) }
        }
        return try result.get()
    }

    /// Checks the signature over `canonicalBytes()` (compared in constant time), then that `version` is strictly
    /// newer than `currentVersion` (nil: no ring held yet, any version is newer).
    public func validate(secret: [UInt8], currentVersion: UInt64?) -> RingValidation {
        guard Hex.isLowercase(sig, count: 64), let given = Hex.decode(sig) else { return .badSignature }
        let expected = HMACSHA256.mac(key: secret, message: canonicalBytes())
        guard constantTimeEqual(given, expected) else { return .badSignature }
        if let currentVersion, version <= currentVersion { return .stale(current: currentVersion) }
        return .accepted
    }
}
