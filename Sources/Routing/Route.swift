// One route: how it matches a path, and what the gateway does with a request that matched it.
import DNS

/// How a route matches a request path (the request target up to `?`, as raw bytes, not percent-decoded).
public enum Matching: Sendable {
    /// The path equals these bytes.
    case exact([UInt8])
    /// The path starts with these bytes; the longest matching prefix wins.
    case prefix([UInt8])
    /// The regex matches somewhere in the path (anchor it with `^...$`); regexes are tried in file order.
    case regex(Pattern)
    /// Used when nothing else matched.
    case `default`

    /// `exact`, `prefix`, `regex` or `default`, as written in the configuration.
    public var kind: String {
        switch self {
        case .exact: return "exact"
        case .prefix: return "prefix"
        case .regex: return "regex"
        case .default: return "default"
        }
    }

    /// The regex, for a regex route.
    public var pattern: Pattern? {
        if case .regex(let pattern) = self { return pattern }
        return nil
    }
}

/// Where a proxied request goes.
public enum UpstreamRef: Sendable, Equatable {
    /// A named `upstream` block of the configuration.
    case named(String)
    /// A host built from the route's captures, e.g. `$podid.socket.rtc.svc.cluster.local`, on a fixed port
    /// (scheme http). Every capture used in `host` is checked to be a DNS-1123 label before the request goes on.
    case dynamic(host: Template, port: UInt16)
}

/// What a matched route does.
public enum Action: Sendable, Equatable {
    /// Forward to an upstream.
    case proxy(UpstreamRef)
    /// Answer directly with this status and body (empty: no body).
    case respond(status: Int, body: [UInt8])
}

/// A request header the route sets (replacing any the client sent) before forwarding.
public struct HeaderSetting: Sendable, Equatable {
    /// The header name, as written.
    public let name: [UInt8]
    /// The value; may reference the route's captures.
    public let value: Template

    public init(name: [UInt8], value: Template) {
        self.name = name
        self.value = value
    }
}

/// A route of the route table.
public struct Route: Sendable {
    public let matching: Matching
    /// `websocket on`: the route serves only WebSocket upgrades (RFC 6455 §4.1); a request without
    /// `Upgrade: websocket` gets 426. Off: an `Upgrade` header is ignored (RFC 9110 §7.8) and the request is
    /// forwarded as plain HTTP without it.
    public let websocket: Bool
    public let action: Action
    /// Replaces the path when forwarding; the query string is kept by the proxy.
    public let rewrite: Template?
    public let headers: [HeaderSetting]
    /// The configuration line of the `route` directive (for messages and logs).
    public let line: Int
    /// Capture groups used in a dynamic upstream host: each must be a DNS-1123 label at match time.
    public let hostCaptureGroups: [Int]

    public init(
        matching: Matching, websocket: Bool = false, action: Action, rewrite: Template? = nil,
        headers: [HeaderSetting] = [], line: Int = 0
    ) {
        self.matching = matching
        self.websocket = websocket
        self.action = action
        self.rewrite = rewrite
        self.headers = headers
        self.line = line
        if case .proxy(.dynamic(let host, _)) = action {
            hostCaptureGroups = host.captureGroups
        } else {
            hostCaptureGroups = []
        }
    }

    /// A short label for metrics and logs: `exact /ws/connect`, `regex ^/ws/...`, `default`.
    public var label: String {
        switch matching {
        case .exact(let path), .prefix(let path):
            return "\(matching.kind) \(String(decoding: path, as: UTF8.self))"
        case .regex(let pattern): return "regex \(pattern.source)"
        case .default: return "default"
        }
    }
}

/// Whether `bytes` form a DNS-1123 label, `[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?` (RFC 1123 §2.1, lowercase as
/// Kubernetes requires). The same rule as `DNS.isDNS1123Label`; repeated here because Routing sits below DNS.
public func isHostLabel(_ bytes: UnsafeRawBufferPointer) -> Bool {
    isDNS1123Label(bytes)
}
