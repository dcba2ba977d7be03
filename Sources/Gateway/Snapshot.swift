// One loaded configuration with everything the engine precomputes from it; swapped whole on reload.
import DNS
import Forwarding
import GatewayConfig
import Routing

/// An immutable configuration as the engine uses it. Exchanges keep the snapshot they started with, so a reload
/// never changes a request in flight; tunnels hold no snapshot at all.
public final class Snapshot: Sendable {
    public let config: GatewayConfig
    let rewriter: RequestRewriter
    /// Per route: the upstream group index for `.named` routes (into `groups`), else nil.
    let routeGroups: [Int?]
    /// Per route: its label for `rtc_gateway_requests_total{route=...}`.
    let routeLabels: [String]
    /// Named upstream blocks, in file order.
    let groups: [GroupPlan]
    /// Largest capture count of any route (sizes each loop's matcher).
    let captureCapacity: Int

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
                    connectTimeout: upstream.connectTimeout ?? config.timeouts.upstreamConnect))
        }
        self.groups = groups
        routeGroups = config.routes.routes.map { route in
            if case .proxy(.named(let name)) = route.action { return indexByName[name] }
            return nil
        }
        routeLabels = config.routes.routes.map(\.label)
        captureCapacity = max(9, config.routes.maximumCaptureCount + 1)
    }
}

/// A named upstream block as the engine uses it.
struct GroupPlan: Sendable {
    let name: String
    let servers: [UpstreamServer]
    let keepalive: Int
    let connectTimeout: Duration
}
