// Tests of the lookup state machine and the server order.

import DNS
import Testing

private let second: UInt64 = 1_000_000_000

@Suite struct ResolutionTests {
    let conf = ResolvConf(
        nameservers: [v4("10.0.0.1"), v4("10.0.0.2")], search: [name("ns.svc"), name("svc")], ndots: 5, timeout: 2,
        attempts: 2)

    @Test func serverOrder() {
        let plan = QueryPlan(conf: conf)
        #expect((0..<5).map { plan.server(forTry: $0) } == [0, 1, 0, 1, nil])
        var rotating = conf
        rotating.rotate = true
        #expect((0..<4).map { QueryPlan(conf: rotating, queryNumber: 3).server(forTry: $0) } == [1, 0, 1, 0])
        #expect(QueryPlan(conf: conf).timeout == 2 * second)
    }

    @Test func explicitPlanAllowsSubSecondTimeouts() {
        let plan = QueryPlan(serverCount: 3, attempts: 2, timeout: 250_000_000, firstServer: 4)
        #expect(plan.timeout == 250_000_000)
        #expect((0..<7).map { plan.server(forTry: $0) } == [1, 2, 0, 1, 2, 0, nil])
        let clamped = QueryPlan(serverCount: 0, attempts: 0, timeout: 0)
        #expect(clamped.tryCount == 1 && clamped.timeout == 1 && clamped.server(forTry: 0) == 0)
    }

    @Test func searchListThenAddresses() {
        var resolution = Resolution(
            candidates: candidateNames(for: "balancer", conf: conf), plan: QueryPlan(conf: conf))
        #expect(
            resolution.start(now: 0)
                == .send(name: name("balancer.ns.svc"), server: 0, overTCP: false, deadline: 2 * second))
        #expect(
            resolution.received(.nxdomain(negativeTTL: 5), now: 1)
                == .send(name: name("balancer.svc"), server: 0, overTCP: false, deadline: 1 + 2 * second))
        #expect(
            resolution.received(.truncated, now: 2)
                == .send(name: name("balancer.svc"), server: 0, overTCP: true, deadline: 2 + 2 * second))
        #expect(
            resolution.received(.addresses([v4("10.1.0.1")], ttl: 30), now: 3)
                == .finished(.addresses(name: name("balancer.svc"), [v4("10.1.0.1")], ttl: 30)))
    }

    @Test func failuresMoveThroughServersThenGiveUp() {
        var resolution = Resolution(candidates: [name("a.test")], plan: QueryPlan(conf: conf))
        _ = resolution.start(now: 0)
        #expect(
            resolution.timedOut(now: 10)
                == .send(name: name("a.test"), server: 1, overTCP: false, deadline: 10 + 2 * second))
        #expect(
            resolution.received(.serverFailure(.refused), now: 11)
                == .send(name: name("a.test"), server: 0, overTCP: false, deadline: 11 + 2 * second))
        _ = resolution.received(.truncated, now: 12)
        // Truncated again over TCP: next server, back on UDP.
        #expect(
            resolution.received(.truncated, now: 13)
                == .send(name: name("a.test"), server: 1, overTCP: false, deadline: 13 + 2 * second))
        #expect(resolution.received(.serverFailure(.serverFailure), now: 14) == .finished(.failed(.serverFailure)))
    }

    @Test func negativeAfterLastCandidate() {
        var resolution = Resolution(candidates: [name("a.test"), name("a")], plan: QueryPlan(conf: conf))
        _ = resolution.start(now: 0)
        _ = resolution.received(.nxdomain(negativeTTL: 5), now: 0)
        #expect(resolution.received(.nodata(negativeTTL: 7), now: 0) == .finished(.nodata(negativeTTL: 7)))
        var empty = Resolution(candidates: [], plan: QueryPlan(conf: conf))
        #expect(empty.start(now: 0) == .finished(.invalidName))
        #expect(empty.isFinished && resolution.isFinished)
    }
}
