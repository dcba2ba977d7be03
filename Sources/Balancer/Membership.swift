// Membership: which socket nodes are alive, draining or unusable, from the heartbeats read in one round.
import Ring
import Wire

/// How a client's URL names its socket node (SYSTEM §3): by pod name, or by the pod's IPv4 address, dashed.
public enum URLForm: String, Sendable, CaseIterable {
    /// `/ws/<pod>/connect`: needs cluster DNS that publishes pod names (CoreDNS `endpoint_pod_names`).
    case name
    /// `/ws/<a-b-c-d>/connect`: what a stock headless Service publishes.
    case ip
}

/// The members of one heartbeat round, and the heartbeats that were refused.
///
/// A node is alive while its heartbeat key exists: the key's expiry (set by the node) does the forgetting, so a node
/// whose heartbeat expired is simply absent from the next round. A heartbeat is refused (skipped and counted, never
/// trusted) when its value is not a valid heartbeat, when the node id inside differs from the key's, or when the
/// node cannot be reached in the configured URL form (a pod name that is not a DNS-1123 label for `name`, an address
/// that is not IPv4 for `ip`).
public struct Membership: Equatable, Sendable {
    /// Valid heartbeats, one per node, sorted by node id.
    public var members: [Heartbeat]
    /// Refused heartbeats, by key, with why.
    public var skipped: [Skipped]

    public struct Skipped: Equatable, Sendable {
        public var key: String
        public var reason: SkipReason
    }

    public enum SkipReason: String, Sendable, CaseIterable {
        /// Not a heartbeat: bad JSON, a member missing or of the wrong type, negative numbers.
        case malformed
        /// The key is `rtc:hb:<a>` but the heartbeat says it is node `<b>` (or `<a>` is not a node id).
        case mismatch
        /// The node cannot be given out in the configured URL form.
        case unaddressable
    }

    public init(members: [Heartbeat], skipped: [Skipped] = []) {
        self.members = members
        self.skipped = skipped
    }

    /// The round's membership from `(key, value)` pairs as read (`SCAN` then `MGET`); a nil value (the key expired
    /// between the two reads) is no member and no error. A key seen twice counts once.
    public static func read(_ entries: [(key: String, value: [UInt8]?)], form: URLForm) -> Membership {
        var members: [String: Heartbeat] = [:]
        var skipped: [Skipped] = []
        let prefix = Keys.heartbeat("")
        for (key, value) in entries {
            guard let value else { continue }
            let beat: Heartbeat
            do {
                beat = try Heartbeat.decode(value)
            } catch {
                skipped.append(Skipped(key: key, reason: .malformed))
                continue
            }
            guard key == prefix + beat.nodeId else {
                skipped.append(Skipped(key: key, reason: .mismatch))
                continue
            }
            guard isAddressable(beat, form: form) else {
                skipped.append(Skipped(key: key, reason: .unaddressable))
                continue
            }
            members[beat.nodeId] = beat
        }
        let sorted = members.values.sorted { $0.nodeId.utf8.lexicographicallyPrecedes($1.nodeId.utf8) }
        return Membership(members: sorted, skipped: skipped)
    }

    /// Whether a URL can be made for this node in `form`.
    public static func isAddressable(_ beat: Heartbeat, form: URLForm) -> Bool {
        switch form {
        case .name: isDNSLabel(beat.nodeId)
        case .ip: dashedIPv4(beat.podIP) != nil
        }
    }

    /// The member with this id.
    public func member(_ id: String) -> Heartbeat? { members.first { $0.nodeId == id } }

    /// Members that may take new clients: not draining and ready.
    public var eligible: [Heartbeat] { members.filter { !$0.draining && $0.ready } }

    /// Count of members by ring state.
    public var counts: (active: Int, draining: Int, unready: Int) {
        var counts = (active: 0, draining: 0, unready: 0)
        for beat in members {
            if beat.draining {
                counts.draining += 1
            } else if !beat.ready {
                counts.unready += 1
            } else {
                counts.active += 1
            }
        }
        return counts
    }
}

/// Whether `value` is a DNS-1123 label: 1–63 of `[a-z0-9-]`, starting and ending with a letter or digit.
public func isDNSLabel(_ value: String) -> Bool {
    let bytes = value.utf8
    guard (1...63).contains(bytes.count) else { return false }
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"): continue
        default: return false
        }
    }
    return bytes.first != UInt8(ascii: "-") && bytes.last != UInt8(ascii: "-")
}

/// A dotted-quad IPv4 address as the label a headless Service publishes for it (`10.1.2.3` → `10-1-2-3`); nil for
/// anything else (no leading zeros, each part 0–255).
public func dashedIPv4(_ address: String) -> String? {
    let parts = address.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    for part in parts {
        guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let value = Int(part), value <= 255, part.utf8.count == 1 || part.utf8.first != 0x30
        else { return nil }
    }
    return parts.joined(separator: "-")
}
