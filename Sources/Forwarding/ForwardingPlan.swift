// What the request rewriter needs per route, computed once per configuration (never per request).
import GatewayConfig
import Routing

/// The listener's scheme, sent upstream as `X-Forwarded-Proto`.
public enum Scheme: Sendable, Equatable {
    case http
    case https

    var bytes: StaticString {
        switch self {
        case .http: return "http"
        case .https: return "https"
        }
    }

    /// The `X-Forwarded-Proto` line for this scheme and the name of `X-Request-ID` after it, led by the CRLF the
    /// line before owes when `afterValue`.
    func forwardedProtoThenRequestID(afterValue: Bool) -> StaticString {
        switch (self, afterValue) {
        case (.http, false): return "X-Forwarded-Proto: http\r\nX-Request-ID: "
        case (.http, true): return "\r\nX-Forwarded-Proto: http\r\nX-Request-ID: "
        case (.https, false): return "X-Forwarded-Proto: https\r\nX-Request-ID: "
        case (.https, true): return "\r\nX-Forwarded-Proto: https\r\nX-Request-ID: "
        }
    }
}

/// How the upstream `Host` field of a route is written.
enum HostSource: Sendable {
    /// The client's Host passes unchanged (routes that answer themselves never forward).
    case client
    /// A named upstream: one prebuilt value per `server` line (`host` or `host:port` unless the port is 80).
    case named([[UInt8]])
    /// A host template rendered from the captures, then this `:port` suffix (empty for port 80).
    case dynamic(Template, portSuffix: [UInt8])
}

/// A `set_header` of a route with its name lowercased for comparisons.
struct HeaderPlan: Sendable {
    let name: [UInt8]
    let lowercaseName: [UInt8]
    let value: Template
}

/// Headers the gateway writes itself that a route's `set_header` replaces.
struct Overrides: OptionSet, Sendable {
    let rawValue: UInt8
    static let forwardedFor = Overrides(rawValue: 1)
    static let realIP = Overrides(rawValue: 2)
    static let forwardedProto = Overrides(rawValue: 4)
}

/// One route's forwarding recipe. A class: the rewriter reads it in place for every request (a struct this size was
/// copied out of the array, each of its arrays retained).
final class RoutePlan: Sendable {
    let host: HostSource
    /// `set_header Host ...`: written in the Host position instead of `host`.
    let hostSetting: Template?
    /// Other `set_header` entries, in file order.
    let headers: [HeaderPlan]
    let overrides: Overrides
    let websocket: Bool
    let rewrite: Template?
    /// Most bytes the request rewriter writes for this route beyond the head as received, the client address,
    /// the request id and the captures: its static text, Host value, and the templates' literal text.
    let fixedBound: Int
    /// Capture references in the templates this route renders (each renders at most the whole path).
    let captureReferences: Int

    init(route: Route, upstream: (String) -> Upstream?) {
        switch route.action {
        case .respond:
            host = .client
        case .proxy(.named(let name)):
            if let servers = upstream(name)?.servers, !servers.isEmpty {
                host = .named(servers.map { hostValue(host: Array($0.host.utf8), port: $0.port) })
            } else {
                host = .client
            }
        case .proxy(.dynamic(let template, let port)):
            host = .dynamic(template, portSuffix: hostValue(host: [], port: port))
        }
        var hostSetting: Template?
        var headers: [HeaderPlan] = []
        var overrides: Overrides = []
        for setting in route.headers {
            let lowercase = setting.name.map(lowercased)
            switch String(decoding: lowercase, as: UTF8.self) {
            case "host": hostSetting = setting.value
            // The gateway owns these: framing and hop-by-hop fields would break the message, and the request id
            // must be the one reported to the access log.
            case "connection", "keep-alive", "proxy-connection", "te", "upgrade", "http2-settings",
                "content-length", "transfer-encoding", "x-request-id":
                continue
            case "x-forwarded-for":
                overrides.insert(.forwardedFor)
                headers.append(HeaderPlan(name: setting.name, lowercaseName: lowercase, value: setting.value))
            case "x-real-ip":
                overrides.insert(.realIP)
                headers.append(HeaderPlan(name: setting.name, lowercaseName: lowercase, value: setting.value))
            case "x-forwarded-proto":
                overrides.insert(.forwardedProto)
                headers.append(HeaderPlan(name: setting.name, lowercaseName: lowercase, value: setting.value))
            default:
                headers.append(HeaderPlan(name: setting.name, lowercaseName: lowercase, value: setting.value))
            }
        }
        self.hostSetting = hostSetting
        self.headers = headers
        self.overrides = overrides
        websocket = route.websocket
        rewrite = route.rewrite
        // The static lines (request line version, Connection/Upgrade, X-Forwarded-*, X-Request-ID names, CRLFs)
        // take under 256 bytes; the rest is per route.
        var fixed = 256
        var references = 0
        func count(_ template: Template?) {
            guard let template else { return }
            let literal = template.renderedBound(pathCount: 0)
            fixed += literal + 4
            references += template.renderedBound(pathCount: 1) - literal
        }
        count(route.rewrite)
        count(hostSetting)
        switch host {
        case .client: break
        case .named(let values): fixed += values.map(\.count).max() ?? 0
        case .dynamic(let template, let portSuffix):
            count(template)
            fixed += portSuffix.count
        }
        for header in headers {
            fixed += header.name.count + 4
            count(header.value)
        }
        fixedBound = fixed
        captureReferences = references
    }
}

/// `host` followed by `:port` unless the port is 80, the default of `http` (RFC 9110 §7.2, §4.2.1).
func hostValue(host: [UInt8], port: UInt16) -> [UInt8] {
    guard port != 80 else { return host }
    var value = host
    value.append(0x3A)
    value.append(contentsOf: Array(String(port).utf8))
    return value
}
