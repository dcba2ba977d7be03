// A named upstream's servers on one loop: their resolved addresses (re-resolved by TTL) and round-robin.
import DNS
import GatewayConfig
import Resolver
import Sys

/// Runtime state of one `upstream` block on one loop.
///
/// Servers are taken in weighted round-robin (a schedule with each server `weight` times); a server's addresses
/// come from its IP literal or from the resolver and are used round-robin until their TTL runs out.
///
/// Passive health, as nginx's: an address that failed `max_fails` times within `fail_timeout` is skipped for
/// `fail_timeout`. When every address of a server is skipped, the next one is used anyway (nginx would answer 502
/// at once; trying costs one connect and finds a server that came back sooner).
final class UpstreamGroup {
    struct Server {
        let host: String
        let port: UInt16
        var addresses: [IPAddress]
        /// Monotonic nanoseconds after which the addresses must be resolved again (never for IP literals).
        var expiresAt: UInt64
        var turn = 0
    }

    let plan: GroupPlan
    private(set) var servers: [Server]
    private let schedule: [Int]
    private var next = 0

    /// Failures of one address: how many since `since`, and until when it is skipped (monotonic ns).
    struct Health {
        var fails = 0
        var since: UInt64 = 0
        var downUntil: UInt64 = 0
    }

    /// Only addresses that failed recently have an entry (empty while all is well: nothing to look up).
    private(set) var health: [SocketAddress: Health] = [:]

    init(plan: GroupPlan) {
        self.plan = plan
        servers = plan.servers.map { server in
            Server(
                host: server.host, port: server.port, addresses: server.address.map { [$0] } ?? [],
                expiresAt: server.address == nil ? 0 : .max)
        }
        var schedule: [Int] = []
        for (index, server) in plan.servers.enumerated() {
            for _ in 0..<max(1, server.weight) { schedule.append(index) }
        }
        self.schedule = schedule
    }

    /// The server the next request goes to.
    func pickServer() -> Int {
        let index = schedule[next % schedule.count]
        next &+= 1
        return index
    }

    /// The next address of `server` when its addresses are still fresh at `now`.
    func address(server index: Int, now: UInt64) -> SocketAddress? {
        guard servers[index].expiresAt > now, !servers[index].addresses.isEmpty else { return nil }
        return nextAddress(server: index, now: now)
    }

    /// The next address of `server` even when stale (used while a refresh fails), or nil when never resolved.
    func staleAddress(server index: Int, now: UInt64) -> SocketAddress? {
        servers[index].addresses.isEmpty ? nil : nextAddress(server: index, now: now)
    }

    /// Stores a fresh resolution of `server`'s host.
    func update(server index: Int, addresses: [IPAddress], ttl: UInt32, now: UInt64) {
        servers[index].addresses = addresses
        servers[index].expiresAt = now &+ UInt64(max(ttl, 1)) &* 1_000_000_000
    }

    /// Stores addresses with their expiry as they are (a reload carrying a group over).
    func update(server index: Int, addresses: [IPAddress], expiresAt: UInt64) {
        servers[index].addresses = addresses
        servers[index].expiresAt = expiresAt
    }

    /// The number of addresses known for every server together (bounds the attempts of one request).
    var addressCount: Int {
        var count = 0
        for server in servers { count += max(server.addresses.count, 1) }
        return count
    }

    /// Whether `address` is being skipped at `now`.
    func isDown(_ address: SocketAddress, now: UInt64) -> Bool {
        guard !health.isEmpty, let entry = health[address] else { return false }
        return entry.downUntil > now
    }

    /// Counts a failed attempt on `address` of `server`; true when this failure puts the address out of use.
    @discardableResult
    func recordFailure(server index: Int, address: SocketAddress, now: UInt64) -> Bool {
        let settings = plan.servers[index]
        guard settings.maxFails > 0 else { return false }
        let window = nanoseconds(settings.failTimeout)
        var entry = health[address] ?? Health()
        if entry.fails == 0 || now &- entry.since > window {
            entry.fails = 0
            entry.since = now
        }
        entry.fails += 1
        let down = entry.fails >= settings.maxFails && entry.downUntil <= now
        if down { entry.downUntil = now &+ window }
        health[address] = entry
        return down
    }

    /// A response came from `address`: its failures are forgotten (nginx does the same).
    func recordSuccess(_ address: SocketAddress) {
        if !health.isEmpty { health[address] = nil }
    }

    private func nextAddress(server index: Int, now: UInt64 = 0) -> SocketAddress {
        // Field by field: a copy of the `Server` retained and released its host and addresses.
        let count = servers[index].addresses.count
        let turn = servers[index].turn
        let port = servers[index].port
        var candidate = SocketAddress(servers[index].addresses[turn % count], port: port)
        servers[index].turn = turn &+ 1
        // Skip addresses in their fail_timeout; when all are, the round-robin one is used anyway.
        if !health.isEmpty {
            for step in 0..<count {
                let address = SocketAddress(servers[index].addresses[(turn &+ step) % count], port: port)
                if !isDown(address, now: now) {
                    candidate = address
                    servers[index].turn = turn &+ step &+ 1
                    break
                }
            }
        }
        return candidate
    }
}
