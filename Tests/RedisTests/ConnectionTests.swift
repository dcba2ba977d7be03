// The client's connection life against real servers: DNS names, refusals, a killed server, silence, AUTH, close.
import Foundation
import Sys
import TestSupport
import Testing

@testable import Redis

@Suite(.serialized) struct ConnectionTests {
    @Test func resolvesTheHostNameThroughTheResolver() throws {
        let server = try RedisServer()
        let dns = try Dnsmasq(records: ["redis.test": ["127.0.0.1"]])
        let test = try ClientHarness(
            RedisEndpoint(host: "redis.test", port: server.port), dnsServer: .loopback(port: dns.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        #expect(dns.queryCount(for: "redis.test") >= 1)
        #expect(try test.call("SET", "via", "dns") == .success(.status("OK")))
        #expect(try test.call("GET", "via") == .success(bulk("dns")))

        let missing = try ClientHarness(
            RedisEndpoint(host: "missing.test", port: server.port), dnsServer: .loopback(port: dns.port))
        defer { missing.stop() }
        #expect(waitUntil { !missing.connectErrors.values.isEmpty })
        #expect(missing.connectErrors.values.first == .resolveFailed(host: "missing.test", reason: "no such name"))
        #expect(!missing.isConnected)

        let noResolver = try ClientHarness(RedisEndpoint(host: "redis.test", port: server.port))
        defer { noResolver.stop() }
        #expect(waitUntil { !noResolver.connectErrors.values.isEmpty })
        guard case .resolveFailed("redis.test", _) = noResolver.connectErrors.values.first else {
            Issue.record("expected a resolve failure, got \(noResolver.connectErrors.values)")
            return
        }
    }

    @Test func refusedThenConnectsOnceTheServerStarts() throws {
        let port = freeTCPPort()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: port))
        defer { test.stop() }
        #expect(waitUntil { test.connectErrors.values.count >= 2 })
        #expect(test.connectErrors.values.first == .connectFailed(.connectionRefused))
        #expect(try test.onLoop { $0.lastConnectError } == .connectFailed(.connectionRefused))

        // Not connected: `send` fails at once, inside the call.
        let immediate = try test.onLoop { client -> Reply? in
            var result: Reply?
            client.send(["PING"]) { result = $0 }
            return result
        }
        #expect(immediate == .failure(.disconnected))

        let server = try RedisServer(port: port)
        #expect(test.waitConnected())
        #expect(server.port == port)
        #expect(try test.call("PING") == .success(.status("PONG")))
        #expect(test.changes.values == [true])
        #expect(try test.onLoop { $0.lastConnectError } == nil)
    }

    @Test func aKilledServerFailsWhatIsInFlightAndTheClientComesBack() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        #expect(try test.call("SET", "before", "1") == .success(.status("OK")))

        // BLPOP blocks the connection inside the server, so every command behind it stays in flight.
        let results = Log<Reply>()
        try test.onLoop { client in
            client.send(["BLPOP", "never", "0"]) { results.append($0) }
            for _ in 0..<5 { client.send(["INCR", "n"]) { results.append($0) } }
        }
        #expect(try test.onLoop { $0.inFlightCount } == 6)
        server.stop(signal: SIGKILL)

        #expect(waitUntil { results.values.count == 6 })
        #expect(results.values == Array(repeating: .failure(.disconnected), count: 6))
        #expect(waitUntil { test.changes.values == [true, false] })
        #expect(!test.isConnected)
        #expect(try test.call("PING", timeout: .seconds(1)) == .failure(.disconnected))

        try server.restart()
        #expect(test.waitConnected())
        #expect(test.changes.values == [true, false, true])
        // A fresh server without persistence: the counter starts again.
        #expect(try test.call("INCR", "n") == .success(.integer(1)))
        #expect(try test.call("GET", "before") == .success(.null))
    }

    @Test func aServerStoppedInOrderIsReconnectedTo() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        server.stop(signal: SIGTERM)
        #expect(waitUntil { test.changes.values == [true, false] })
        try server.restart()
        #expect(test.waitConnected())
        #expect(try test.call("PING") == .success(.status("PONG")))
    }

    @Test func aServerThatNeverAnswersTimesOut() throws {
        // A listening socket nobody accepts on: the kernel completes the handshake, nothing ever replies.
        let listener = try Socket.listener(at: .loopback(port: 0)).release()
        defer { listener.close() }
        let port = try listener.localAddress().port
        let test = try ClientHarness(
            RedisEndpoint(host: "127.0.0.1", port: port), commandTimeout: .milliseconds(300))
        defer { test.stop() }
        #expect(test.waitConnected())
        let started = ContinuousClock.now
        let slot = Slot<Reply>()
        let follower = Slot<Reply>()
        try test.onLoop { client in
            client.send(["PING"]) { slot.set($0) }
            client.send(["PING"]) { follower.set($0) }
        }
        #expect(waitUntil(timeout: .seconds(5)) { slot.value != nil && follower.value != nil })
        #expect(slot.value == .failure(.timedOut))
        #expect(follower.value == .failure(.disconnected))
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        #expect(test.connectErrors.values.first == .commandTimedOut)
        #expect(waitUntil { test.changes.values.starts(with: [true, false]) })
        // It reconnects (the backlog takes the new connection too).
        #expect(waitUntil { test.changes.values.count >= 3 })
    }

    @Test func authenticatesWithThePassword() throws {
        let server = try RedisServer(arguments: ["--requirepass", "s3cret"])
        let good = try ClientHarness(
            RedisEndpoint(host: "127.0.0.1", port: server.port, database: 1, password: "s3cret"))
        defer { good.stop() }
        #expect(good.waitConnected())
        #expect(try good.call("PING") == .success(.status("PONG")))

        let named = try ClientHarness(
            RedisEndpoint.parse(url: "redis://default:s3cret@127.0.0.1:\(server.port)/2"))
        defer { named.stop() }
        #expect(named.waitConnected())
        #expect(try named.call("PING") == .success(.status("PONG")))

        let wrong = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port, password: "wrong"))
        defer { wrong.stop() }
        #expect(waitUntil { wrong.connectErrors.values.count >= 2 })
        #expect(!wrong.isConnected)
        #expect(wrong.changes.values.isEmpty)
        guard case .rejected("AUTH", let message) = wrong.connectErrors.values.first else {
            Issue.record("expected AUTH to be refused, got \(wrong.connectErrors.values)")
            return
        }
        #expect(message.hasPrefix("WRONGPASS"))
        #expect(wrong.connectErrors.values.first!.description.hasPrefix("Redis refused AUTH: WRONGPASS"))

        // Without a password the connection is made, and commands get NOAUTH.
        let none = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { none.stop() }
        #expect(none.waitConnected())
        #expect(try none.call("GET", "x")?.get().errorMessage?.hasPrefix("NOAUTH") == true)
    }

    @Test func closeFailsWhatIsInFlightAndStaysClosed() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        let results = Log<Reply>()
        try test.onLoop { client in
            client.send(["BLPOP", "never", "0"]) { results.append($0) }
            client.close()
            client.send(["PING"]) { results.append($0) }
        }
        #expect(results.values == [.failure(.disconnected), .failure(.disconnected)])
        #expect(test.changes.values == [true, false])
        // No reconnect follows, even after more than the largest back-off.
        #expect(!waitUntil(timeout: .milliseconds(500)) { test.isConnected })
        #expect(try test.onLoop { $0.inFlightCount } == 0)
    }

    @Test func aClientNobodyHoldsIsReleasedAndItsConnectionClosed() throws {
        let server = try RedisServer()
        let running = try RunningLoop()
        defer { running.stop() }
        let registrations = try running.sync { running.loop.registrationCount }
        let released = try running.sync { () -> Bool in
            let client = RedisClient(
                loop: running.loop, endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), resolver: nil)
            client.start()
            return true
        }
        #expect(released)
        // The connect attempt and the reconnect timer belong to no one now: nothing stays registered.
        #expect(waitUntil { (try? running.sync { running.loop.registrationCount }) == registrations })
    }
}
