// One loaded configuration with everything the engine precomputes from it; swapped whole on reload.
import DNS
import Forwarding
import GatewayConfig
import Routing
import Sys

/// An immutable configuration as the engine uses it. Exchanges keep the snapshot they started with, so a reload
/// never changes a request in flight; tunnels hold no snapshot at all.
public final class Snapshot: Sendable {
    public let config: GatewayConfig
    let rewriter: RequestRewriter
    /// Per route: its label for `rtc_gateway_requests_total{route=...}`.
    let routeLabels: [String]
    /// Named upstream blocks, in file order.
    let groups: [GroupPlan]
    /// Largest capture count of any route (sizes each loop's matcher).
    let captureCapacity: Int
    /// What the engine needs of each route, flattened so a request never copies a `Route` (or the whole
    /// `GatewayConfig`, whose arrays would each be retained and released again).
    let plans: [RoutePlan]
    /// `config.routes`, held directly for the same reason.
    let routes: RouteTable
    /// Per route: request buffering on (read and check the body first) or off (stream it).
    let requestBuffering: [Bool]
    let bodySizeLimit: UInt64
    let connectTimeout: Duration
    /// Per group (same order as `groups`): its keep-alive pool size and connect timeout.
    let groupKeepalive: [Int]
    let groupConnectTimeout: [Duration]
    /// Per group: how long an idle pooled connection is kept, in nanoseconds.
    let groupKeepaliveTimeout: [UInt64]

    public init(config: GatewayConfig) {
        self.config = config
        rewriter = RequestRewriter(config: config)
        var groups: [GroupPlan] = []
        var indexByName: [String: Int] = [:]
        for upstream in config.upstreams {
            indexByName[upstream.name] = groups.count
            groups.append(
                GroupPlan(
                    name: upstream.name, servers: upstream.servers, keepalive: upstream.keepalive,
                    keepaliveTimeout: upstream.keepaliveTimeout,
                    connectTimeout: upstream.connectTimeout ?? config.timeouts.upstreamConnect))
        }
        self.groups = groups
        routeLabels = config.routes.routes.map(\.label)
        captureCapacity = max(9, config.routes.maximumCaptureCount + 1)
        routes = config.routes
        requestBuffering = config.requestBuffering
        bodySizeLimit = UInt64(config.limits.bodySize)
        connectTimeout = config.timeouts.upstreamConnect
        groupKeepalive = groups.map(\.keepalive)
        groupConnectTimeout = groups.map(\.connectTimeout)
        groupKeepaliveTimeout = groups.map { nanoseconds($0.keepaliveTimeout) }
        plans = config.routes.routes.enumerated().map { index, route in
            switch route.action {
            case .respond(let status, let body):
                return RoutePlan(websocket: route.websocket, target: .respond(status: status, body: body))
            case .proxy(.named(let name)):
                return RoutePlan(websocket: route.websocket, target: .group(indexByName[name] ?? -1))
            case .proxy(.dynamic(let host, let port)):
                return RoutePlan(websocket: route.websocket, target: .dynamic(host: host, port: port))
            }
        }
    }
}

/// One route as the engine uses it.
struct RoutePlan: Sendable {
    enum Target: Sendable {
        /// A named upstream: index into `Snapshot.groups` (-1: unknown, which the loader prevents).
        case group(Int)
        /// A host rendered from the captures, on a fixed port.
        case dynamic(host: Template, port: UInt16)
        /// `return STATUS [BODY]`.
        case respond(status: Int, body: [UInt8])
    }

    let websocket: Bool
    let target: Target
}

/// A named upstream block as the engine uses it.
struct GroupPlan: Sendable {
    let name: String
    let servers: [UpstreamServer]
    let keepalive: Int
    let keepaliveTimeout: Duration
    let connectTimeout: Duration
}
