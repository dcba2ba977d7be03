// The resolver against scripted servers over real loopback sockets: garbage, spoofs, truncation, silence, errors.
import DNS
import EventLoop
import Resolver
import Sys
import TestSupport
import Testing

@Suite struct HostileServerTests {
    @Test func garbageIsCountedAndTheRealAnswerStillAccepted() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        try test.script(0) { question, id in
            var noise = ReplyBuilder.header(for: question, id: id ^ 0x5A5A).bytes
            noise.append(contentsOf: [0xC0, 0x0C, 0xFF])  // a record cut short, under someone else's id
            return [
                .send([]), .send([0x12]), .send(Array(repeating: 0xFF, count: 11)), .send(noise),
                .send(Array((0..<200).map { UInt8(truncatingIfNeeded: $0 &* 37) })),
                .send(answer(question, id: id, ["192.0.2.7"])),
            ]
        }
        let result = try test.harness.resolve("garbage.test")
        #expect(result.outcome == .addresses([IPAddress(parsing: "192.0.2.7")!], ttl: 60))
        #expect(!result.immediate)
        #expect(test.harness.failures("malformed") >= 4)
        #expect(test.servers[0].udpQueries.load(ordering: .relaxed) == 1)
    }

    @Test func wrongIDAndWrongQuestionAreIgnoredUntilTheRightReply() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        try test.script(0) { question, id in
            let other = Question(name: try! Name(parsing: "evil.test"), type: .a)
            return [
                .send(answer(question, id: id &+ 1, ["6.6.6.6"])),
                .send(answer(other, id: id, ["6.6.6.7"])),
                .send(answer(Question(name: question.name, type: .aaaa), id: id, [])),
                .send(answer(question, id: id, ["192.0.2.8"])),
            ]
        }
        let result = try test.harness.resolve("wrong-id.test")
        #expect(addressSet(result.outcome) == ["192.0.2.8"])
        #expect(test.harness.failures("mismatched") == 3)
    }

    @Test func repliesFromAnotherSourcePortAreNotAccepted() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        try test.script(0) { question, id in
            [.sendFromOtherPort(answer(question, id: id, ["6.6.6.6"])), .send(answer(question, id: id, ["192.0.2.9"]))]
        }
        let result = try test.harness.resolve("spoofed.test")
        #expect(addressSet(result.outcome) == ["192.0.2.9"])

        // Only the spoof: the try times out rather than taking it.
        try test.script(0) { question, id in [.sendFromOtherPort(answer(question, id: id, ["6.6.6.6"]))] }
        let spoofedOnly = try test.harness.resolve("spoofed-only.test")
        #expect(spoofedOnly.outcome == .failed(.timeout))
    }

    @Test func eachQueryUsesAFreshSourcePortAndID() throws {
        let test = try HostileHarness(configure: { $0.attempts = 3 })
        defer { test.stop() }
        // Silent: three tries of one lookup, then three more lookups of other names.
        _ = try test.harness.resolve("silent.test")
        for index in 0..<3 {
            try test.script(0) { question, id in [.send(answer(question, id: id, ["192.0.2.1"]))] }
            _ = try test.harness.resolve("name\(index).test")
        }
        let (ports, ids) = try test.onServerLoop { (test.servers[0].sourcePorts, test.servers[0].queryIDs) }
        #expect(ports.count == 6)
        #expect(Set(ports).count == 6)
        #expect(Set(ids).count >= 5)
    }

    @Test func truncatedReplyIsAskedAgainOverTCP() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        let addresses = (1...40).map { "10.1.0.\($0)" }
        try test.script(
            0, udp: { question, id in [.send(emptyReply(question, id: id, code: 0, truncated: true))] },
            tcp: { question, id in answer(question, id: id, addresses, ttl: 120) })
        let result = try test.harness.resolve("big.test")
        #expect(addressSet(result.outcome) == Set(addresses))
        #expect(test.servers[0].udpQueries.load(ordering: .relaxed) == 1)
        #expect(test.servers[0].tcpQueries.load(ordering: .relaxed) == 1)
        #expect(test.harness.metrics.queries.value == 2)
    }

    @Test func truncatedOverTCPTooFailsOverToTheNextServer() throws {
        let test = try HostileHarness(count: 2)
        defer { test.stop() }
        try test.script(
            0, udp: { question, id in [.send(emptyReply(question, id: id, code: 0, truncated: true))] },
            tcp: { question, id in emptyReply(question, id: id, code: 0, truncated: true) })
        try test.script(1) { question, id in [.send(answer(question, id: id, ["192.0.2.10"]))] }
        let result = try test.harness.resolve("tc-twice.test")
        #expect(addressSet(result.outcome) == ["192.0.2.10"])
    }

    @Test func compressionLoopFailsTheTryNotTheProcess() throws {
        let test = try HostileHarness(count: 2)
        defer { test.stop() }
        try test.script(0) { question, id in
            var reply = ReplyBuilder.header(for: question, id: id, answers: 1)
            // The answer's owner name is a pointer to itself.
            let at = UInt16(reply.bytes.count)
            reply.u16(0xC000 | at)
            reply.u16(1)
            reply.u16(1)
            reply.u32(60)
            reply.u16(4)
            reply.bytes.append(contentsOf: [6, 6, 6, 6])
            return [.send(reply.bytes)]
        }
        try test.script(1) { question, id in [.send(answer(question, id: id, ["192.0.2.11"]))] }
        let result = try test.harness.resolve("loop.test")
        #expect(addressSet(result.outcome) == ["192.0.2.11"])
        #expect(test.harness.failures("malformed") == 1)

        // With only the hostile server, the lookup fails as malformed, quickly (no waiting for the timeout).
        try test.script(1) { _, _ in [] }
        let clock = ContinuousClock()
        let start = clock.now
        let alone = try HostileHarness(count: 1)
        defer { alone.stop() }
        try alone.script(0) { question, id in
            var reply = ReplyBuilder.header(for: question, id: id, answers: 1)
            reply.u16(0xC000 | UInt16(reply.bytes.count))
            return [.send(reply.bytes)]
        }
        #expect(try alone.harness.resolve("loop.test").outcome == .failed(.malformed))
        #expect(clock.now - start < .milliseconds(250))
    }

    @Test func silentServerTimesOutThenTheSecondServerAnswers() throws {
        let test = try HostileHarness(count: 2) { $0.timeout = .milliseconds(200) }
        defer { test.stop() }
        try test.script(1) { question, id in [.send(answer(question, id: id, ["192.0.2.12"]))] }
        let clock = ContinuousClock()
        let start = clock.now
        let result = try test.harness.resolve("silent.test")
        #expect(addressSet(result.outcome) == ["192.0.2.12"])
        #expect(clock.now - start >= .milliseconds(200))
        #expect(test.servers[0].udpQueries.load(ordering: .relaxed) == 1)
        #expect(test.harness.failures("timeout") == 1)
    }

    @Test func allServersSilentFailsWithTimeoutAfterEveryAttempt() throws {
        let test = try HostileHarness(count: 2) {
            $0.timeout = .milliseconds(100)
            $0.attempts = 2
        }
        defer { test.stop() }
        let clock = ContinuousClock()
        let start = clock.now
        let result = try test.harness.resolve("nobody.test")
        #expect(result.outcome == .failed(.timeout))
        #expect(clock.now - start >= .milliseconds(400))
        #expect(test.servers[0].udpQueries.load(ordering: .relaxed) == 2)
        #expect(test.servers[1].udpQueries.load(ordering: .relaxed) == 2)
    }

    @Test func serverFailureAndRefusedMoveOnAndAreReported() throws {
        let test = try HostileHarness(count: 2)
        defer { test.stop() }
        try test.script(0) { question, id in [.send(emptyReply(question, id: id, code: 2))] }
        try test.script(1) { question, id in [.send(answer(question, id: id, ["192.0.2.13"]))] }
        #expect(addressSet(try test.harness.resolve("servfail.test").outcome) == ["192.0.2.13"])
        #expect(test.harness.failures("server_failure") == 1)

        try test.script(1) { question, id in [.send(emptyReply(question, id: id, code: 2))] }
        #expect(try test.harness.resolve("servfail2.test").outcome == .failed(.serverFailure))
        try test.script(1) { question, id in [.send(emptyReply(question, id: id, code: 5))] }
        #expect(try test.harness.resolve("refused.test").outcome == .failed(.refused))
        // Failures are not cached: the next lookup asks again.
        try test.script(0) { question, id in [.send(answer(question, id: id, ["192.0.2.14"]))] }
        #expect(addressSet(try test.harness.resolve("refused.test").outcome) == ["192.0.2.14"])
    }

    @Test func staleAnswerIsServedWhileTheServerIsDown() throws {
        let test = try HostileHarness { $0.timeout = .milliseconds(150) }
        defer { test.stop() }
        try test.script(0) { question, id in [.send(answer(question, id: id, ["192.0.2.15"], ttl: 1))] }
        let first = try test.harness.resolve("stale.test")
        #expect(first.outcome == .addresses([IPAddress(parsing: "192.0.2.15")!], ttl: 1))

        try test.script(0) { _, _ in [] }  // down: every query goes unanswered
        // Fresh cache hits until the TTL passes; then the lookup waits for a refresh, which times out, and gets the
        // expired answer.
        let staleOutcome = ResolveOutcome.addresses([IPAddress(parsing: "192.0.2.15")!], ttl: 0)
        var stale: (outcome: ResolveOutcome?, immediate: Bool) = (nil, true)
        #expect(
            try waitUntil(timeout: .seconds(3)) {
                stale = try test.harness.resolve("stale.test")
                return !stale.immediate
            })
        #expect(stale.outcome == staleOutcome)
        #expect(test.servers[0].udpQueries.load(ordering: .relaxed) >= 2)
        #expect(test.harness.failures("timeout") == 1)
        #expect(try test.harness.sync { $0.lookupsInFlight } == 0)

        // While refreshes fail, the expired answer comes at once; each such lookup starts the next refresh, which
        // now succeeds.
        let queriesBefore = test.servers[0].udpQueries.load(ordering: .relaxed)
        try test.script(0) { question, id in [.send(answer(question, id: id, ["192.0.2.16"], ttl: 30))] }
        let again = try test.harness.resolve("stale.test")
        #expect(again.immediate)
        #expect(addressSet(again.outcome) == ["192.0.2.15"])
        #expect(
            waitUntil(timeout: .seconds(2)) {
                test.servers[0].udpQueries.load(ordering: .relaxed) == queriesBefore + 1
            })
        #expect(test.harness.metrics.staleAnswers.value == 2)
        #expect(
            waitUntil(timeout: .seconds(2)) {
                (try? test.harness.resolve("stale.test").outcome)
                    == .addresses(
                        [IPAddress(parsing: "192.0.2.16")!], ttl: 30)
            })
    }

    @Test func closedPortFailsFastAsUnreachable() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        try test.onServerLoop { test.servers[0].close() }
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try test.harness.resolve("closed.test").outcome == .failed(.unreachable))
        #expect(clock.now - start < .milliseconds(250))
    }

    @Test func invalidNamesFailAtOnceWithoutAQuery() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        for name in ["", "a..b", ".leading", "bad name.test", String(repeating: "x", count: 64) + ".test"] {
            let result = try test.harness.resolve(name)
            #expect(result.immediate, "\(name)")
            #expect(result.outcome == .failed(.malformed), "\(name)")
        }
        #expect(test.harness.metrics.queries.value == 0)
        #expect(test.harness.failures("invalid_name") == 5)
    }

    @Test func ipv6RecordsDecodeAndAreNotMistakenForIPv4() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        try test.script(0) { question, id in
            var reply = ReplyBuilder.header(for: question, id: id, answers: 2)
            reply.aaaaRecord(IPv6Address(parsing: "2001:db8::1")!, ttl: 60)
            reply.aRecord(IPv4Address(192, 0, 2, 17), ttl: 60)
            return [.send(reply.bytes)]
        }
        #expect(addressSet(try test.harness.resolve("dual.test").outcome) == ["192.0.2.17"])
    }

    @Test func droppedResolverStopsItsLookupsQuietly() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        let server = test.servers[0].address
        let loop = test.harness.loop
        let recorder = Recorder()
        let before = try test.harness.sync { _ in loop.registrationCount }
        try test.harness.sync { _ in
            let configuration = ResolverConfiguration(servers: [server], timeout: .milliseconds(50), attempts: 1)
            let dropped = try Resolver(loop: loop, configuration: configuration)
            #expect(dropped.resolve("dropped.test", handler: recorder, tag: 1) == nil)
            #expect(loop.registrationCount == before + 1)
        }
        // Its socket is gone, and its deadline timer never fires into freed memory.
        #expect(try test.harness.sync { _ in loop.registrationCount } == before)
        #expect(waitUntil(timeout: .milliseconds(200)) { test.servers[0].udpQueries.load(ordering: .relaxed) == 1 })
        let resolved = try test.harness.resolve("alive.test")
        #expect(resolved.outcome == .failed(.timeout))
        #expect(recorder.all.isEmpty)
    }

    @Test func closeReportsClosedToWaitingCallers() throws {
        let test = try HostileHarness()
        defer { test.stop() }
        let pending = try test.harness.start("never.test")
        #expect(pending.immediate == nil)
        try test.harness.sync { $0.close() }
        #expect(test.harness.recorder.outcome(tag: pending.tag) == .failed(.closed))
        #expect(try test.harness.start("after.test").immediate == .failed(.closed))
    }
}
