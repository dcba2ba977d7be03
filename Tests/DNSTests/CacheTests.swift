// Tests of the answer cache, the in-flight table and query ids.

import DNS
import Testing

private let second: UInt64 = 1_000_000_000

@Suite struct CacheTests {
    let www = name("www.example.test")
    let addresses = [v4("10.0.0.1"), v4("10.0.0.2"), v4("10.0.0.3")]

    @Test func ttlIsCappedAndFloored() {
        var cache = Cache(configuration: .init(maximumTTL: 300, minimumTTL: 1, negativeMaximumTTL: 10))
        let now = 1_000 * second
        #expect(
            cache.store(.addresses(addresses, ttl: 3600), name: www, type: .a, now: now)?.expiresAt == now + 300
                * second)
        #expect(cache.store(.addresses(addresses, ttl: 0), name: www, type: .a, now: now)?.expiresAt == now + second)
        #expect(
            cache.store(.addresses(addresses, ttl: 30), name: www, type: .a, now: now)?.expiresAt == now + 30 * second)
        #expect(cache.store(.nxdomain(negativeTTL: 60), name: www, type: .a, now: now)?.expiresAt == now + 10 * second)
        #expect(cache.store(.nodata(negativeTTL: 3), name: www, type: .aaaa, now: now)?.expiresAt == now + 3 * second)
        #expect(cache.store(.serverFailure(.refused), name: www, type: .a, now: now) == nil)
        #expect(cache.store(.truncated, name: www, type: .a, now: now) == nil)
        #expect(cache.count == 2)
        // Near the end of the monotonic clock, expiry saturates instead of wrapping.
        #expect(cache.store(.addresses(addresses, ttl: 30), name: www, type: .a, now: .max - 1)?.expiresAt == .max)
    }

    @Test func freshThenStaleThenGone() {
        var cache = Cache(configuration: .init(staleWindow: 60))
        cache.store(.addresses([v4("10.0.0.1")], ttl: 30), name: www, type: .a, now: 0)
        let entry = CacheEntry(result: .addresses([v4("10.0.0.1")]), expiresAt: 30 * second)
        #expect(cache.lookup(name: www, type: .a, now: 30 * second - 1) == .fresh(entry))
        #expect(cache.lookup(name: www, type: .aaaa, now: 0) == .miss)
        #expect(cache.lookup(name: name("other.test"), type: .a, now: 0) == .miss)
        var stale = entry
        stale.turn = 1
        #expect(cache.lookup(name: www, type: .a, now: 30 * second) == .stale(stale))
        stale.turn = 2
        #expect(cache.lookup(name: www, type: .a, now: 90 * second - 1) == .stale(stale))
        #expect(cache.lookup(name: www, type: .a, now: 90 * second) == .miss)
        #expect(cache.count == 0)
        // Names compare case-insensitively.
        cache.store(.addresses([v4("10.0.0.1")], ttl: 30), name: name("WWW.Example.Test"), type: .a, now: 0)
        #expect(cache.lookup(name: www, type: .a, now: 0) == .fresh(entry))
    }

    @Test func negativeEntries() {
        var cache = Cache(configuration: .init(negativeMaximumTTL: 5, staleWindow: 0))
        cache.store(.nxdomain(negativeTTL: 60), name: www, type: .a, now: 0)
        cache.store(.nodata(negativeTTL: 2), name: www, type: .aaaa, now: 0)
        #expect(
            cache.lookup(name: www, type: .a, now: 4 * second)
                == .fresh(CacheEntry(result: .nxdomain, expiresAt: 5 * second)))
        #expect(
            cache.lookup(name: www, type: .aaaa, now: second)
                == .fresh(CacheEntry(result: .nodata, expiresAt: 2 * second)))
        #expect(cache.lookup(name: www, type: .aaaa, now: 2 * second) == .miss)
        #expect(cache.lookup(name: www, type: .a, now: 5 * second) == .miss)
        #expect(CacheEntry(result: .nxdomain, expiresAt: 0).nextAddress() == nil)
        // A refresh replaces a negative entry with addresses.
        cache.store(.addresses(addresses, ttl: 10), name: www, type: .a, now: 6 * second)
        guard case .fresh(let entry) = cache.lookup(name: www, type: .a, now: 6 * second) else {
            Issue.record("expected a fresh entry")
            return
        }
        #expect(entry.result == .addresses(addresses))
    }

    @Test func roundRobin() {
        var cache = Cache()
        cache.store(.addresses(addresses, ttl: 30), name: www, type: .a, now: 0)
        var picked: [IPAddress] = []
        var rotations: [[IPAddress]] = []
        for _ in 0..<4 {
            guard case .fresh(let entry) = cache.lookup(name: www, type: .a, now: 0) else { return }
            picked.append(entry.nextAddress()!)
            rotations.append(entry.rotatedAddresses())
        }
        #expect(picked == [addresses[0], addresses[1], addresses[2], addresses[0]])
        #expect(rotations[1] == [addresses[1], addresses[2], addresses[0]])
        // A refresh keeps the turn going instead of sending everyone back to the first address.
        cache.store(.addresses(addresses, ttl: 30), name: www, type: .a, now: 0)
        guard case .fresh(let entry) = cache.lookup(name: www, type: .a, now: 0) else { return }
        #expect(entry.nextAddress() == addresses[1])
    }

    @Test func evictionKeepsTheBoundAndDropsLeastRecentlyUsed() {
        var cache = Cache(configuration: .init(capacity: 3))
        let names = (0..<6).map { name("n\($0).test") }
        for index in 0..<3 { cache.store(.nodata(negativeTTL: 5), name: names[index], type: .a, now: 0) }
        _ = cache.lookup(name: names[0], type: .a, now: 0)  // n0 is now the most recently used
        cache.store(.nodata(negativeTTL: 5), name: names[3], type: .a, now: 0)  // evicts n1
        #expect(cache.count == 3)
        #expect(cache.lookup(name: names[1], type: .a, now: 0) == .miss)
        #expect(cache.lookup(name: names[0], type: .a, now: 0) != .miss)
        for index in 0..<1000 { cache.store(.nxdomain(negativeTTL: 5), name: name("h\(index).evil"), type: .a, now: 0) }
        #expect(cache.count == 3)
        #expect(cache.lookup(name: name("h999.evil"), type: .a, now: 0) != .miss)
        #expect(cache.lookup(name: names[0], type: .a, now: 0) == .miss)
    }

    @Test func sweepAndRemove() {
        var cache = Cache(configuration: .init(staleWindow: 10))
        cache.store(.nodata(negativeTTL: 1), name: name("a.test"), type: .a, now: 0)
        cache.store(.addresses(addresses, ttl: 100), name: name("b.test"), type: .a, now: 0)
        cache.store(.addresses(addresses, ttl: 100), name: name("c.test"), type: .a, now: 0)
        cache.removeExpired(now: 11 * second)
        #expect(cache.count == 2)
        cache.remove(name: name("b.test"), type: .a)
        #expect(cache.count == 1)
        #expect(cache.lookup(name: name("c.test"), type: .a, now: 0) != .miss)
    }
}

@Suite struct CoalescerTests {
    @Test func mergesLookupsOfOneKey() {
        var coalescer = Coalescer<UInt32>(maximumInFlight: 2, maximumWaiters: 3)
        let a = name("a.test")
        #expect(coalescer.begin(name: a, type: .a, waiter: 1) == .startQuery)
        #expect(coalescer.begin(name: name("A.TEST"), type: .a, waiter: 2) == .joined)
        #expect(coalescer.begin(name: a, type: .aaaa, waiter: 3) == .startQuery)
        #expect(coalescer.begin(name: name("b.test"), type: .a, waiter: 4) == .overloaded)
        #expect(coalescer.begin(name: a, type: .a, waiter: 5) == .joined)
        #expect(coalescer.begin(name: a, type: .a, waiter: 6) == .overloaded)
        coalescer.cancel(name: a, type: .a, waiter: 2)
        #expect(coalescer.isInFlight(name: a, type: .a))
        #expect(coalescer.finish(name: a, type: .a) == [1, 5])
        #expect(!coalescer.isInFlight(name: a, type: .a))
        #expect(coalescer.finish(name: a, type: .a) == [])
        #expect(coalescer.inFlightCount == 1)
        #expect(coalescer.begin(name: a, type: .a, waiter: 7) == .startQuery)
    }
}

@Suite struct QueryIDGeneratorTests {
    @Test func idsComeFromTheSuppliedBytes() {
        var generator = QueryIDGenerator()
        #expect(generator.next() == nil)
        generator.refill([0x12, 0x34, 0xAB, 0xCD, 0x00, 0x01, 0xFF])
        #expect(generator.remaining == 3)
        #expect(generator.next() == 0x1234)
        #expect(generator.next(skipping: { $0 == 0xABCD }) == 0x0001)
        #expect(generator.next() == nil)  // the odd byte is not half an id
        generator.refill([0, 7])
        #expect(generator.next() == 7)
    }
}
