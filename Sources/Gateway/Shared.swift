// State every worker shares: metrics, connection limits across loops, and drain completion.
import GatewayConfig
import Synchronization
import Sys

/// Cross-loop state. Only accept and close touch it (never a byte of a request), so a lock is acceptable for the
/// per-client-IP table; the connection count is one atomic.
final class Shared: Sendable {
    let metrics: GatewayMetrics
    private let connections = Atomic<Int>(0)
    private let perClient = Mutex<[UInt64: Int]>([:])
    private let drainedWorkers = Atomic<Int>(0)
    private let drainedHandler = Mutex<(@Sendable (Int) -> Void)?>(nil)

    init(metrics: GatewayMetrics) {
        self.metrics = metrics
    }

    /// Called with the number of drained workers each time one more is drained.
    func setDrainedHandler(_ handler: @escaping @Sendable (Int) -> Void) {
        drainedHandler.withLock { $0 = handler }
        let count = drainedWorkers.load(ordering: .relaxed)
        if count > 0 { handler(count) }
    }

    var connectionCount: Int { connections.load(ordering: .relaxed) }

    /// Admits a new downstream connection from `peer`, or says which limit refuses it.
    func admit(peer: SocketAddress, limits: Limits) -> String? {
        let count = connections.add(1, ordering: .relaxed).newValue
        if count > limits.maxConnections {
            connections.subtract(1, ordering: .relaxed)
            return "max_connections"
        }
        if let perIP = limits.perClientIP {
            let key = Self.key(peer)
            let admitted = perClient.withLock { table -> Bool in
                let current = table[key, default: 0]
                guard current < perIP else { return false }
                table[key] = current + 1
                return true
            }
            if !admitted {
                connections.subtract(1, ordering: .relaxed)
                return "per_client_ip"
            }
        }
        return nil
    }

    /// A connection admitted by `admit` closed.
    func release(peer: SocketAddress, limits: Limits) {
        connections.subtract(1, ordering: .relaxed)
        guard limits.perClientIP != nil else { return }
        let key = Self.key(peer)
        perClient.withLock { table in
            if let current = table[key] { table[key] = current > 1 ? current - 1 : nil }
        }
    }

    private static func key(_ peer: SocketAddress) -> UInt64 {
        switch peer {
        case .v4(let address, _): return UInt64(address)
        case .v6(let high, let low, _, _): return high ^ (low &* 0x9E37_79B9_7F4A_7C15) | 1 << 63
        }
    }

    /// A worker has no exchange and no tunnel left after a drain began.
    func workerDrained() {
        let count = drainedWorkers.add(1, ordering: .relaxed).newValue
        drainedHandler.withLock { $0 }?(count)
    }
}
