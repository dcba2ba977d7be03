import DNS
// The keep-alive pool and passive health, on one loop without traffic.
import EventLoop
import GatewayConfig
import Resolver
import Sys
import Testing

@testable import Gateway

final class IgnoringHandler: ConnectionHandler {
    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {}
    func closed(_ connection: Connection, error: Errno?) {}
}

@Suite struct UpstreamStateTests {
    /// An upstream connection paused for a slow client and then pooled must come out of the pool reading: paused,
    /// its next user would never see the response (a 504) and the pool would never see the server close it.
    @Test func aPausedConnectionIsNeverPooledPaused() throws {
        let loop = try EventLoop()
        let address = SocketAddress.loopback(port: 9)
        let connection = try Connection(
            loop: loop, fd: try FileDescriptor.socket(.tcp, for: address), handler: IgnoringHandler())
        defer { connection.close() }
        connection.pauseReading()
        #expect(connection.isReadingPaused)
        let pool = UpstreamPool()
        pool.put(connection, address: address, capacity: 4, deadline: .max)
        let taken = try #require(pool.take(address))
        #expect(taken === connection)
        #expect(!taken.isReadingPaused)
    }

    static func group(maxFails: Int) -> UpstreamGroup {
        UpstreamGroup(
            plan: GroupPlan(
                name: "up",
                servers: [
                    UpstreamServer(
                        host: "up.example", address: nil, port: 80, weight: 1, maxFails: maxFails,
                        failTimeout: .seconds(10))
                ], keepalive: 4, keepaliveTimeout: .seconds(60), connectTimeout: .seconds(1)))
    }

    /// nginx's rule: `max_fails` failures within `fail_timeout` skip the address for `fail_timeout`; a success
    /// forgets the failures; when every address is skipped, round-robin goes on anyway.
    @Test func passiveHealthSkipsAFailingAddressForAWhile() {
        let second: UInt64 = 1_000_000_000
        let group = Self.group(maxFails: 2)
        let a = IPAddress(parsing: "10.0.0.1")!
        let b = IPAddress(parsing: "10.0.0.2")!
        let addressA = SocketAddress(a, port: 80)
        let addressB = SocketAddress(b, port: 80)
        group.update(server: 0, addresses: [a, b], ttl: 3600, now: 0)
        #expect(group.addressCount == 2)
        #expect(!group.recordFailure(server: 0, address: addressA, now: 1 * second))
        #expect(!group.isDown(addressA, now: 1 * second))
        // The second failure within 10 s puts A out of use until 12 s.
        #expect(group.recordFailure(server: 0, address: addressA, now: 2 * second))
        #expect(group.isDown(addressA, now: 3 * second))
        for _ in 0..<4 { #expect(group.address(server: 0, now: 3 * second) == addressB) }
        #expect(!group.isDown(addressA, now: 12 * second + 1))
        // Both down: the rotation goes on rather than answering 502 at once.
        group.recordFailure(server: 0, address: addressB, now: 4 * second)
        group.recordFailure(server: 0, address: addressB, now: 4 * second)
        #expect(group.isDown(addressB, now: 5 * second))
        let both = Set((0..<4).compactMap { _ in group.address(server: 0, now: 5 * second) })
        #expect(both == [addressA, addressB])
        // A success forgets B's failures: one more failure does not skip it again.
        group.recordSuccess(addressB)
        #expect(!group.recordFailure(server: 0, address: addressB, now: 6 * second))
        // Failures further apart than fail_timeout do not add up.
        let spaced = Self.group(maxFails: 2)
        spaced.update(server: 0, addresses: [a], ttl: 3600, now: 0)
        #expect(!spaced.recordFailure(server: 0, address: addressA, now: 1 * second))
        #expect(!spaced.recordFailure(server: 0, address: addressA, now: 20 * second))
    }

    /// `max_fails=0` turns passive health off for the server.
    @Test func maxFailsZeroNeverSkips() {
        let group = Self.group(maxFails: 0)
        let a = IPAddress(parsing: "10.0.0.1")!
        group.update(server: 0, addresses: [a], ttl: 3600, now: 0)
        for _ in 0..<5 { #expect(!group.recordFailure(server: 0, address: SocketAddress(a, port: 80), now: 1)) }
        #expect(group.health.isEmpty)
    }
}
