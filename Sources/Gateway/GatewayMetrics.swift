// The gateway's metric families (SYSTEM §2.2), registered once per process; loops write with their shard index.
import Metrics
import Resolver
import Synchronization
import Sys

/// Handles of every gateway metric. Counters and histograms are sharded: loop `i` writes shard `i`.
public final class GatewayMetrics: Sendable {
    public let registry: Registry
    let accepted: Counter
    let active: Gauge
    let byState: GaugeFamily
    let idle: Gauge
    let reading: Gauge
    let waiting: Gauge
    let relaying: Gauge
    let tunnel: Gauge
    let requests: CounterFamily
    let requestDuration: Histogram
    let connectDuration: Histogram
    let tunnelsActive: Gauge
    let tunnelsByUpstream: GaugeFamily
    let bytesDownstream: Counter
    let bytesUpstream: Counter
    let upstreamErrors: CounterFamily
    let refused: CounterFamily
    /// Attempts on another address (or a fresh connection) before any byte reached the client.
    let retries: Counter
    /// Addresses put out of use by passive health (`max_fails` within `fail_timeout`).
    let addressesDown: Counter
    /// Connections the gateway closed because of their own behaviour, by reason (`unsent_limit`: a peer that
    /// stopped reading let its unsent bytes reach the bound).
    let cut: CounterFamily
    let reloads: CounterFamily
    let configHash: GaugeFamily
    /// DNS queries, cache hits and failures of every loop's resolver.
    let resolver: ResolverMetrics
    private let podTunnels = Mutex<[String: UpstreamTunnels]>([:])
    private let currentHash = Mutex<String>("")

    /// Registers every family in `registry` (whose shard count covers every loop).
    public init(registry: Registry) throws(RegistrationError) {
        self.registry = registry
        accepted = try registry.counter(
            "rtc_gateway_connections_accepted_total", help: "Downstream connections accepted.")
        active = try registry.gauge("rtc_gateway_connections_active", help: "Open downstream connections.")
        byState = try registry.gauge(
            "rtc_gateway_connections_by_state", help: "Open downstream connections by state.", labelNames: ["state"])
        idle = byState.labels("idle")
        reading = byState.labels("reading")
        waiting = byState.labels("waiting")
        relaying = byState.labels("writing")
        tunnel = byState.labels("tunnel")
        requests = try registry.counter(
            "rtc_gateway_requests_total", help: "Requests answered, by route and status class.",
            labelNames: ["route", "status"])
        requestDuration = try registry.histogram(
            "rtc_gateway_request_duration_seconds", help: "Time from a complete request head to the response's end.",
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        connectDuration = try registry.histogram(
            "rtc_gateway_upstream_connect_duration_seconds", help: "Time to open a new upstream connection.",
            buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
        tunnelsActive = try registry.gauge("rtc_gateway_tunnels_active", help: "Open WebSocket tunnels.")
        tunnelsByUpstream = try registry.gauge(
            "rtc_gateway_tunnels_by_upstream", help: "Open WebSocket tunnels per upstream host (evicted at zero).",
            labelNames: ["upstream"])
        let bytes = try registry.counter(
            "rtc_gateway_bytes_relayed_total", help: "Bytes relayed, by direction.", labelNames: ["direction"])
        bytesDownstream = bytes.labels("downstream")
        bytesUpstream = bytes.labels("upstream")
        upstreamErrors = try registry.counter(
            "rtc_gateway_upstream_errors_total", help: "Upstream failures, by kind.", labelNames: ["kind"])
        refused = try registry.counter(
            "rtc_gateway_connections_refused_total", help: "Downstream connections refused, by limit.",
            labelNames: ["reason"])
        retries = try registry.counter(
            "rtc_gateway_upstream_retries_total", help: "Requests tried again on another upstream address.")
        addressesDown = try registry.counter(
            "rtc_gateway_upstream_addresses_down_total",
            help: "Upstream addresses skipped for fail_timeout after max_fails failures.")
        cut = try registry.counter(
            "rtc_gateway_connections_cut_total", help: "Connections closed by the gateway, by reason.",
            labelNames: ["reason"])
        _ = cut.labels("unsent_limit")
        reloads = try registry.counter(
            "rtc_gateway_config_reloads_total", help: "Configuration reloads, by result.", labelNames: ["result"])
        configHash = try registry.gauge(
            "rtc_gateway_config_hash", help: "The loaded configuration's hash (label; the value is always 1).",
            labelNames: ["hash"])
        resolver = try ResolverMetrics(registry: registry)
        for kind in UpstreamErrorKind.allCases { _ = upstreamErrors.labels(kind.rawValue) }
        for result in ["success", "failure"] { _ = reloads.labels(result) }
    }

    /// Counts a configuration reload.
    public func recordReload(success: Bool) {
        reloads.labels(success ? "success" : "failure").increment()
    }

    /// Marks `hash` as the loaded configuration's hash.
    func setConfigHash(_ hash: UInt64) {
        let text = hexadecimal(hash)
        currentHash.withLock { current in
            if !current.isEmpty && current != text { _ = configHash.remove(current) }
            current = text
            configHash.labels(text).set(1)
        }
    }

    /// A tunnel to `upstream` opened: returns the host's entry, which the tunnel hands back when it closes (so a
    /// close looks nothing up).
    func tunnelOpened(upstream: String) -> UpstreamTunnels {
        podTunnels.withLock { table in
            let entry: UpstreamTunnels
            if let existing = table[upstream] {
                entry = existing
            } else {
                entry = UpstreamTunnels(label: upstream, gauge: tunnelsByUpstream.labels(upstream))
                table[upstream] = entry
            }
            entry.count += 1
            entry.gauge.add(1)
            return entry
        }
    }

    /// A tunnel to `entry`'s host closed; the label leaves the output when no tunnel to it remains.
    func tunnelClosed(_ entry: UpstreamTunnels) {
        podTunnels.withLock { table in
            entry.count -= 1
            entry.gauge.sub(1)
            guard entry.count <= 0 else { return }
            table[entry.label] = nil
            _ = tunnelsByUpstream.remove(entry.label)
        }
    }
}

/// The open tunnels to one upstream host over all workers, for `rtc_gateway_tunnels_by_upstream`. `count` is only
/// read and written under `GatewayMetrics.podTunnels`' lock.
final class UpstreamTunnels: @unchecked Sendable {
    let label: String
    let gauge: Gauge
    var count = 0

    init(label: String, gauge: Gauge) {
        self.label = label
        self.gauge = gauge
    }
}

/// Why an upstream exchange failed (`rtc_gateway_upstream_errors_total{kind}`).
enum UpstreamErrorKind: String, CaseIterable {
    case dns
    case connectRefused = "connect_refused"
    case connectTimeout = "connect_timeout"
    case responseTimeout = "response_timeout"
    case reset
    case badResponse = "bad_response"
}

func hexadecimal(_ value: UInt64) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: 16 - text.count) + text
}
