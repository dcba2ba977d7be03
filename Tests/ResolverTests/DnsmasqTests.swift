// The resolver against a real DNS server (dnsmasq): answers, negative caching, TTLs, search list, coalescing.
import DNS
import Foundation
import Resolver
import Sys
import TestSupport
import Testing

@Suite struct DnsmasqTests {
    static let records = [
        "web.test": ["10.0.0.1"],
        "multi.test": ["10.0.0.2", "10.0.0.3"],
        "socket-7d9f-abc12.socket.rtc.svc.cluster.local": ["10.0.0.4"],
    ]

    func harness(_ server: Dnsmasq, _ configure: (inout ResolverConfiguration) -> Void = { _ in }) throws -> Harness {
        var configuration = ResolverConfiguration(
            servers: [.loopback(port: server.port)], timeout: .seconds(2), attempts: 1)
        configure(&configuration)
        return try Harness(configuration)
    }

    @Test func addressRecordsResolve() throws {
        let server = try Dnsmasq(records: Self.records)
        let resolver = try harness(server)
        defer { resolver.stop() }
        let web = try resolver.resolve("web.test")
        #expect(!web.immediate)
        #expect(web.outcome == .addresses([IPAddress(parsing: "10.0.0.1")!], ttl: 30))
        #expect(addressSet(try resolver.resolve("multi.test").outcome) == ["10.0.0.2", "10.0.0.3"])
        #expect(
            addressSet(try resolver.resolve("socket-7d9f-abc12.socket.rtc.svc.cluster.local.").outcome) == ["10.0.0.4"])

        // The second lookup is a cache hit: answered at once, no query.
        let again = try resolver.resolve("web.test")
        #expect(again.immediate)
        #expect(addressSet(again.outcome) == ["10.0.0.1"])
        #expect(server.queryCount(for: "web.test") == 1)
        #expect(resolver.metrics.cacheHits.value == 1)
        #expect(resolver.metrics.queries.value == 3)
    }

    @Test func cacheHitsRotateTheAddresses() throws {
        let server = try Dnsmasq(records: Self.records)
        let resolver = try harness(server)
        defer { resolver.stop() }
        _ = try resolver.resolve("multi.test")
        var firsts: Set<String> = []
        for _ in 0..<4 {
            guard case .addresses(let addresses, _) = try resolver.resolve("multi.test").outcome else {
                Issue.record("no addresses")
                return
            }
            firsts.insert(addresses[0].description)
        }
        #expect(firsts == ["10.0.0.2", "10.0.0.3"])
    }

    @Test func unknownNameIsNotFoundAndNegativelyCached() throws {
        let server = try Dnsmasq(records: Self.records)
        let resolver = try harness(server)
        defer { resolver.stop() }
        let first = try resolver.resolve("nosuch.test")
        #expect(first.outcome == .nameNotFound)
        #expect(!first.immediate)
        let second = try resolver.resolve("nosuch.test")
        #expect(second.outcome == .nameNotFound)
        #expect(second.immediate)
        #expect(server.queryCount(for: "nosuch.test") == 1)
    }

    @Test func expiredAnswerIsAskedAgain() throws {
        let server = try Dnsmasq(records: Self.records, ttl: 1)
        let resolver = try harness(server)
        defer { resolver.stop() }
        #expect(try resolver.resolve("web.test").outcome == .addresses([IPAddress(parsing: "10.0.0.1")!], ttl: 1))
        #expect(try resolver.resolve("web.test").immediate)
        #expect(server.queryCount(for: "web.test") == 1)
        // Once the TTL has passed, a lookup waits for a new query and gets its answer (not the expired one).
        var refreshed: (outcome: ResolveOutcome?, immediate: Bool) = (nil, true)
        #expect(
            try waitUntil(timeout: .seconds(3)) {
                refreshed = try resolver.resolve("web.test")
                return !refreshed.immediate
            })
        #expect(refreshed.outcome == .addresses([IPAddress(parsing: "10.0.0.1")!], ttl: 1))
        #expect(server.queryCount(for: "web.test") == 2)
    }

    @Test func maximumTTLCapsTheZoneTTL() throws {
        let server = try Dnsmasq(records: Self.records, ttl: 300)
        let resolver = try harness(server) { $0.maximumTTL = 1 }
        defer { resolver.stop() }
        #expect(try resolver.resolve("web.test").outcome == .addresses([IPAddress(parsing: "10.0.0.1")!], ttl: 1))
        #expect(try waitUntil(timeout: .seconds(3)) { try !resolver.resolve("web.test").immediate })
        #expect(server.queryCount(for: "web.test") == 2)
    }

    @Test func searchListCompletesShortNames() throws {
        let server = try Dnsmasq(records: Self.records)
        let resolver = try harness(server) {
            $0.search = [try! Name(parsing: "svc.cluster.local"), try! Name(parsing: "test")]
        }
        defer { resolver.stop() }
        // web → web.svc.cluster.local (NXDOMAIN), then web.test.
        #expect(addressSet(try resolver.resolve("web").outcome) == ["10.0.0.1"])
        #expect(server.queryCount(for: "web.svc.cluster.local") == 1)
        #expect(server.queryCount(for: "web.test") == 1)
        // Both candidates are cached now (one negative, one positive): answered at once.
        #expect(try resolver.resolve("web").immediate)
        // An absolute name skips the search list, and `web.test` (one dot, ndots 1) is tried as given first.
        #expect(addressSet(try resolver.resolve("web.test").outcome) == ["10.0.0.1"])
        #expect(server.queryCount(for: "web.test") == 1)
        #expect(server.queryCount(for: "web.test.svc.cluster.local") == 0)
    }

    @Test func concurrentLookupsOfOneNameShareOneQuery() throws {
        let server = try Dnsmasq(records: Self.records)
        let resolver = try harness(server)
        defer { resolver.stop() }
        let recorder = resolver.recorder
        let immediate = try resolver.sync { resolver in
            (0..<100).map { resolver.resolve("multi.test", handler: recorder, tag: 1000 + UInt64($0)) }
        }
        #expect(immediate.allSatisfy { $0 == nil })
        #expect(waitUntil { recorder.all.count == 100 })
        let deliveries = recorder.all
        #expect(Set(deliveries.map(\.tag)) == Set((0..<100).map { 1000 + UInt64($0) }))
        #expect(
            deliveries.allSatisfy { addressSet($0.outcome) == ["10.0.0.2", "10.0.0.3"] && $0.name == "multi.test" })
        #expect(server.queryCount(for: "multi.test") == 1)
    }

    @Test func changedRecordIsSeenAfterTheTTL() throws {
        let server = try Dnsmasq(records: Self.records, ttl: 1)
        let resolver = try harness(server)
        defer { resolver.stop() }
        #expect(addressSet(try resolver.resolve("web.test").outcome) == ["10.0.0.1"])
        var records = Self.records
        records["web.test"] = ["10.0.0.9"]
        try server.update(records: records)
        #expect(
            try waitUntil(timeout: .seconds(4)) { addressSet(try resolver.resolve("web.test").outcome) == ["10.0.0.9"] }
        )
    }

    @Test func systemConfigurationReadsResolvConf() throws {
        let directory = try makeTemporaryDirectory("resolvconf")
        let path = directory + "/resolv.conf"
        let text =
            "nameserver 10.96.0.10\nnameserver fd00::a\nsearch rtc.svc.cluster.local svc.cluster.local\n"
            + "options ndots:5 timeout:3 attempts:4\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = ResolverConfiguration.system(path: path)
        #expect(configuration.servers == [SocketAddress("10.96.0.10:53")!, SocketAddress("[fd00::a]:53")!])
        #expect(configuration.search.map(\.description) == ["rtc.svc.cluster.local.", "svc.cluster.local."])
        #expect(configuration.ndots == 5)
        #expect(configuration.timeout == .seconds(3))
        #expect(configuration.attempts == 4)
        #expect(ResolverConfiguration.system(path: directory + "/missing").servers == [.loopback(port: 53)])
        #expect(ResolverConfiguration.server("127.0.0.1:5353") == .loopback(port: 5353))
        #expect(ResolverConfiguration.server("10.0.0.10") == SocketAddress("10.0.0.10:53"))
        #expect(ResolverConfiguration.server("[::1]:5353") == SocketAddress("[::1]:5353"))
        #expect(ResolverConfiguration.server("dns.example") == nil)
    }
}

extension ResolveOutcome {
    var ttl: UInt32? {
        if case .addresses(_, let ttl) = self { return ttl }
        return nil
    }
}
