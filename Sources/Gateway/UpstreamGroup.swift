// A named upstream's servers on one loop: their resolved addresses (re-resolved by TTL) and round-robin.
import DNS
import GatewayConfig
import Resolver
import Sys

/// Runtime state of one `upstream` block on one loop.
///
/// Servers are taken in weighted round-robin (a schedule with each server `weight` times); a server's addresses
/// come from its IP literal or from the resolver and are used round-robin until their TTL runs out.
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
        return nextAddress(server: index)
    }

    /// The next address of `server` even when stale (used while a refresh fails), or nil when never resolved.
    func staleAddress(server index: Int) -> SocketAddress? {
        servers[index].addresses.isEmpty ? nil : nextAddress(server: index)
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

    private func nextAddress(server index: Int) -> SocketAddress {
        let server = servers[index]
        let address = server.addresses[server.turn % server.addresses.count]
        servers[index].turn &+= 1
        return SocketAddress(address, port: server.port)
    }
}
