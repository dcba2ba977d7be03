import TestSupport
import Testing

// The client against a real redis-server: round trips, pipelining, large values, arrays, errors and scripts.
@testable import Redis

@Suite(.serialized) struct ClientTests {
    @Test func binarySafeRoundTrips() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        #expect(test.changes.values == [true])

        let key = Array("key\r\n\u{0}bin".utf8)
        let value = (0...255).map { UInt8($0) } + Array("\r\n$3\r\n*1\r\n".utf8) + [0x00, 0x0D, 0x0A]
        #expect(try test.call([Array("SET".utf8), key, value]) == .success(.status("OK")))
        #expect(try test.call([Array("GET".utf8), key]) == .success(.string(value)))
        #expect(try test.call([Array("STRLEN".utf8), key]) == .success(.integer(Int64(value.count))))
        #expect(try test.call("GET", "missing") == .success(.null))
        #expect(try test.call("SET", "empty", "") == .success(.status("OK")))
        #expect(try test.call("GET", "empty") == .success(.string([])))
        #expect(try test.call("INCR", "counter") == .success(.integer(1)))
        #expect(try test.call("INCRBY", "counter", "41") == .success(.integer(42)))
        #expect(try test.call("GET", "counter")?.get().integerValue == 42)
        #expect(try test.call("PING")?.get().stringValue == "PONG")
    }

    @Test func tenThousandPipelinedCommandsAnswerInOrder() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        let values = Log<Int64>()
        let failures = Log<RedisError>()
        let inFlight = try test.onLoop { client in
            for _ in 0..<10_000 {
                client.send(["INCR", "n"]) { result in
                    switch result {
                    case .success(let reply): values.append(reply.integerValue ?? -1)
                    case .failure(let error): failures.append(error)
                    }
                }
            }
            return client.inFlightCount
        }
        // All were written before any reply could be read: the loop thread was busy sending them.
        #expect(inFlight == 10_000)
        #expect(waitUntil(timeout: .seconds(30)) { values.values.count + failures.values.count == 10_000 })
        #expect(failures.values.isEmpty)
        #expect(values.values == (1...10_000).map(Int64.init))
        // Idle again: no queue array, no unsent bytes.
        #expect(try test.onLoop { $0.inFlightCount } == 0)
        #expect(try test.onLoop { $0.inFlightCapacity } == 0)
        #expect(try test.onLoop { $0.holdsWriteBuffer } == false)
    }

    @Test func aOneMebibyteValue() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        var generator = SystemRandomNumberGenerator()
        let value = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        #expect(try test.call([Array("SET".utf8), Array("big".utf8), value]) == .success(.status("OK")))
        #expect(try test.call([Array("GET".utf8), Array("big".utf8)]) == .success(.string(value)))
        // Idle again: the reader gave back the buffer the reply needed, and no write buffer is held.
        #expect(try test.onLoop { $0.readerRenewals } >= 1)
        #expect(try test.onLoop { $0.holdsWriteBuffer } == false)
        #expect(try test.call("STRLEN", "big") == .success(.integer(1 << 20)))
    }

    @Test func arraysAndNestedArrays() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        #expect(try test.call("RPUSH", "list", "a", "", "c") == .success(.integer(3)))
        #expect(try test.call("LRANGE", "list", "0", "-1") == .success(.array([bulk("a"), bulk(""), bulk("c")])))
        #expect(try test.call("LRANGE", "nothing", "0", "-1") == .success(.array([])))
        #expect(try test.call("XADD", "stream", "1-1", "field", "value", "n", "1") == .success(bulk("1-1")))
        #expect(try test.call("XADD", "stream", "2-1", "field", "other") == .success(bulk("2-1")))
        let entries = RedisReply.array([
            .array([bulk("1-1"), .array([bulk("field"), bulk("value"), bulk("n"), bulk("1")])]),
            .array([bulk("2-1"), .array([bulk("field"), bulk("other")])]),
        ])
        #expect(try test.call("XRANGE", "stream", "-", "+") == .success(entries))
        // Three levels: streams, then entries, then fields.
        #expect(
            try test.call("XREAD", "COUNT", "1", "STREAMS", "stream", "0")
                == .success(.array([.array([bulk("stream"), .array([entries.arrayValue![0]])])])))
        #expect(try test.call("MGET", "list", "missing") == .success(.array([.null, .null])))
    }

    @Test func errorRepliesAreValues() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        #expect(try test.call("SET", "text", "v") == .success(.status("OK")))
        let wrongType = try test.call("LPUSH", "text", "x")
        #expect(try wrongType?.get().errorMessage?.hasPrefix("WRONGTYPE") == true)
        let unknown = try test.call("NOSUCHCOMMAND", "x")
        #expect(try unknown?.get().errorMessage?.hasPrefix("ERR unknown command") == true)
        // The connection is fine afterwards, and an empty command is refused without being sent.
        #expect(try test.call("GET", "text") == .success(bulk("v")))
        #expect(try test.call([]) == .failure(.protocolError("a command needs at least its name")))
        #expect(test.changes.values == [true])
    }

    @Test func evalFallsBackToEvalOnNoscript() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        let script = RedisScript("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
        // Redis names the script by the same SHA-1.
        #expect(try test.call("SCRIPT", "LOAD", script.source) == .success(bulk(script.sha1)))
        #expect(try test.call("SCRIPT", "FLUSH") == .success(.status("OK")))
        #expect(try test.call("SCRIPT", "EXISTS", script.sha1) == .success(.array([.integer(0)])))

        // Not cached: EVALSHA gets NOSCRIPT, EVAL runs it (and caches it).
        let first = try test.eval(script, keys: ["k"], arguments: ["a"])
        #expect(first == .success(.array([bulk("k"), bulk("a"), .integer(1)])))
        #expect(try commandCalls("eval", test) == 1)
        // Cached now: EVALSHA alone.
        let second = try test.eval(script, keys: ["k"], arguments: ["b"])
        #expect(second == .success(.array([bulk("k"), bulk("b"), .integer(2)])))
        #expect(try commandCalls("eval", test) == 1)
        #expect(try commandCalls("evalsha", test) == 2)

        // Flushed again: falls back again.
        #expect(try test.call("SCRIPT", "FLUSH") == .success(.status("OK")))
        #expect(
            try test.eval(script, keys: ["k"], arguments: ["c"])
                == .success(.array([bulk("k"), bulk("c"), .integer(3)])))
        #expect(try commandCalls("eval", test) == 2)
        // A script error is an error reply, not a fallback.
        let broken = try test.eval(RedisScript("return redis.call('NOSUCH')"), keys: [], arguments: [])
        #expect(try broken?.get().errorMessage?.contains("NOSCRIPT") == false)
        #expect(try broken?.get().errorMessage != nil)
    }

    /// `calls=` of `cmdstat_<name>` in INFO commandstats.
    private func commandCalls(_ name: String, _ test: ClientHarness) throws -> Int? {
        guard let info = try test.call("INFO", "commandstats")?.get().stringValue else { return nil }
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_\(name):") {
            let calls = line.split(separator: ",").first { $0.contains("calls=") && !$0.contains("_calls") }
            return calls.flatMap { Int($0.split(separator: "=").last ?? "") }
        }
        return 0
    }

    @Test func selectsTheDatabase() throws {
        let server = try RedisServer()
        let three = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port, database: 3))
        defer { three.stop() }
        let zero = try ClientHarness(RedisEndpoint(host: "localhost", port: server.port))
        defer { zero.stop() }
        #expect(three.waitConnected())
        #expect(zero.waitConnected())
        #expect(try three.call("SET", "where", "three") == .success(.status("OK")))
        #expect(try zero.call("GET", "where") == .success(.null))
        #expect(try zero.call("SELECT", "3") == .success(.status("OK")))
        #expect(try zero.call("GET", "where") == .success(bulk("three")))

        let outOfRange = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port, database: 999))
        defer { outOfRange.stop() }
        #expect(waitUntil { !outOfRange.connectErrors.values.isEmpty })
        #expect(!outOfRange.isConnected)
        guard case .rejected("SELECT", let message) = outOfRange.connectErrors.values.first else {
            Issue.record("expected SELECT to be refused, got \(outOfRange.connectErrors.values)")
            return
        }
        #expect(message.contains("out of range"))
    }
}
