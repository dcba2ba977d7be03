// rtc-bench's socket-node tools: argument handling, kafka-mock's bootstrap line and signal stop, ring-update's
// output, and socket-load / socket-idle against a real stack (redis-server, kafka-mock, one rtc-socket node).
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Paths {
    /// `RTC_SOCKET_BIN`, else the debug build.
    static var socket: String {
        ProcessInfo.processInfo.environment["RTC_SOCKET_BIN"] ?? packageRoot + "/.build/debug/rtc-socket"
    }
}

/// The first line of `output` that starts with `{`, parsed.
func jsonLine(_ output: String) -> [String: Any]? {
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("{") }) else { return nil }
    return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
}

/// redis-server, `rtc-bench kafka-mock` and one rtc-socket node (`socket-1`, ring of itself) on a free port.
final class SocketNodeStack {
    let directory: String
    let redis: RedisServer
    let kafka: Started
    let node: ChildProcess
    let port = freeTCPPort()
    let secret = "bench-test-secret"
    var target: String { "127.0.0.1:\(port)" }

    init() throws {
        directory = try makeTemporaryDirectory("socket-tool")
        redis = try RedisServer()
        let kafka = try Started(directory, "kafka", Paths.bench, ["kafka-mock"])
        self.kafka = kafka
        var bootstrap = ""
        guard
            waitUntil(
                timeout: .seconds(10),
                {
                    bootstrap =
                        kafka.output.split(separator: "\n").first { $0.hasPrefix("bootstrap=") }.map {
                            String($0.dropFirst("bootstrap=".count))
                        } ?? ""
                    return !bootstrap.isEmpty
                })
        else { throw SetupError(description: "kafka-mock printed no bootstrap line: \(kafka.output)") }
        let ring = try Started(
            directory, "ring", Paths.bench, ["ring-update", "--nodes", "socket-1", "--secret", secret])
        let (status, json) = ring.finish()
        guard status == 0 else { throw SetupError(description: "ring-update failed: \(json)") }
        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        cli.arguments = [
            "-p", "\(redis.port)", "SET", "rtc:ring", json.trimmingCharacters(in: .whitespacesAndNewlines),
        ]
        cli.standardOutput = FileHandle.nullDevice
        try cli.run()
        cli.waitUntilExit()
        var environment = ProcessInfo.processInfo.environment
        environment["NODE_ID"] = "socket-1"
        environment["BIND_ADDRESS"] = "127.0.0.1"
        environment["HTTP_PORT"] = "\(port)"
        environment["REDIS_URL"] = "redis://127.0.0.1:\(redis.port)"
        environment["KAFKA_BOOTSTRAP"] = bootstrap
        environment["RING_SECRET"] = secret
        environment["HEARTBEAT_INTERVAL_SEC"] = "1"
        environment["HEARTBEAT_TTL_SEC"] = "3"
        environment["DRAIN_SECONDS"] = "1"
        let log = directory + "/node.log"
        node = try ChildProcess(Paths.socket, [], environment: environment, logPath: log)
        // Ready, with the ring applied (the node reads rtc:ring when Redis connects).
        guard waitUntil(timeout: .seconds(20), { readText(log).contains("ring version 1") }) else {
            throw SetupError(description: "rtc-socket did not take the ring: \(readText(log))")
        }
    }

    deinit {
        _ = node.stop(grace: .seconds(3))
        _ = kafka.process.stop(grace: .seconds(3))
        redis.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite(.serialized) struct SocketToolTests {
    /// Each bad command line exits 2 and names what is wrong.
    @Test(arguments: [
        (["socket-load"], "--senders-at"),
        (["socket-load", "--senders-at", "127.0.0.1:1"], "--ring-nodes"),
        (["socket-load", "--senders-at", "nowhere", "--ring-nodes", "a"], "--senders-at"),
        (["socket-load", "--senders-at", "127.0.0.1:1", "--ring-nodes", "a", "--window", "0"], "--window"),
        (["socket-load", "--senders-at", "127.0.0.1:1", "--ring-nodes", "a", "--cpu", "12"], "LABEL=PID"),
        (
            ["socket-load", "--senders-at", "127.0.0.1:1", "--receivers-at", "127.0.0.1:2", "--ring-nodes", "a"],
            "two addresses"
        ),
        (["socket-load", "--senders-at", "127.0.0.1:1", "--ring-nodes", "a", "--senders-node", "b"], "--ring-nodes"),
        (["socket-idle", "--connections", "5"], "--target"),
        (["socket-idle", "--target", "127.0.0.1:1", "--connections", "0"], "--connections"),
        (["ring-update", "--nodes", "a"], "--secret"),
        (["ring-update", "--secret", "s"], "--nodes"),
        (["kafka-mock", "--brokers", "0"], "--brokers"),
        (["kafka-mock", "--topic", "x:0"], "partitions"),
    ])
    func badArgumentsExit2(arguments: [String], mentions: String) throws {
        let directory = try makeTemporaryDirectory("socket-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try Started(directory, "bad", Paths.bench, arguments).finish()
        #expect(status == 2, "\(arguments): \(output)")
        #expect(output.contains(mentions), "\(arguments): \(output)")
    }

    @Test func ringUpdatePrintsASignedRing() throws {
        let directory = try makeTemporaryDirectory("socket-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try Started(
            directory, "ring", Paths.bench,
            ["ring-update", "--nodes", "socket-2,socket-1", "--secret", "s", "--version", "7"]
        ).finish()
        #expect(status == 0, "\(output)")
        let ring = jsonLine(output)
        #expect((ring?["version"] as? NSNumber)?.intValue == 7, "\(output)")
        let ids = (ring?["nodes"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == ["socket-1", "socket-2"], "\(output)")
        #expect((ring?["sig"] as? String)?.count == 64, "\(output)")
    }

    @Test func kafkaMockPrintsItsBootstrapAndStopsOnSIGTERM() throws {
        let directory = try makeTemporaryDirectory("socket-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let mock = try Started(directory, "kafka", Paths.bench, ["kafka-mock", "--brokers", "2"])
        let printed = waitUntil(timeout: .seconds(10)) { mock.output.contains("\n") }
        let line = mock.output.split(separator: "\n").first.map(String.init) ?? ""
        #expect(printed && line.hasPrefix("bootstrap=127.0.0.1:"), "\(mock.output)")
        #expect(line.split(separator: ",").count == 2, "\(line)")
        mock.process.send(SIGTERM)
        #expect(mock.process.waitForExit(timeout: .seconds(10)) == 0, "\(mock.output)")
    }

    /// Local delivery through a real node: every message accepted and received once, in order, and the figures
    /// are in the JSON line; then idle sessions open, are held and closed.
    @Test func socketLoadAndIdleAgainstARealNode() throws {
        guard FileManager.default.isExecutableFile(atPath: Paths.socket) else {
            throw SetupError(description: "no rtc-socket at \(Paths.socket): run `swift build` or set RTC_SOCKET_BIN")
        }
        let stack = try SocketNodeStack()
        let load = try Started(
            stack.directory, "load", Paths.bench,
            [
                "socket-load", "--senders-at", stack.target, "--ring-nodes", "socket-1", "--pairs", "3", "--messages",
                "40", "--window", "4", "--size", "32", "--timeout", "20", "--cpu", "node=\(stack.node.pid)",
            ])
        let (status, output) = load.finish(timeout: .seconds(30))
        #expect(status == 0, "\(output)")
        let figures = jsonLine(output)
        #expect(figures?["path"] as? String == "local", "\(output)")
        #expect((figures?["received"] as? NSNumber)?.intValue == 120, "\(output)")
        #expect((figures?["accepted"] as? NSNumber)?.intValue == 120, "\(output)")
        #expect((figures?["missing"] as? NSNumber)?.intValue == 0, "\(output)")
        #expect(((figures?["rate"] as? NSNumber)?.doubleValue ?? 0) > 0, "\(output)")
        let latency = figures?["latency_ms"] as? [String: Any]
        let p50 = (latency?["p50"] as? NSNumber)?.doubleValue ?? -1
        let p99 = (latency?["p99"] as? NSNumber)?.doubleValue ?? -1
        #expect(p50 > 0 && p50 <= p99, "\(output)")
        #expect((figures?["cpu_s"] as? [String: Any])?["node"] != nil, "\(output)")
        #expect(output.contains("socket-load: 3 pairs"), "\(output)")

        // The ring names socket-1 only: ids for socket-2 cannot be chosen, and a wrong node name is caught.
        let wrong = try Started(
            stack.directory, "wrong", Paths.bench,
            [
                "socket-load", "--senders-at", stack.target, "--ring-nodes", "socket-1,socket-2", "--senders-node",
                "socket-2", "--pairs", "1", "--messages", "1", "--timeout", "10",
            ]
        ).finish(timeout: .seconds(20))
        #expect(wrong.status == 1, "\(wrong.output)")
        #expect(wrong.output.contains("but the node says it is socket-1"), "\(wrong.output)")

        let idle = try Started(
            stack.directory, "idle", Paths.bench,
            ["socket-idle", "--target", stack.target, "--connections", "50", "--hold-seconds", "0.5"])
        let held = idle.finish(timeout: .seconds(20))
        #expect(held.status == 0, "\(held.output)")
        #expect(held.output.contains("open=50 failed=0"), "\(held.output)")
        #expect(held.output.contains("closed opened=50 failed=0 lost=0"), "\(held.output)")
    }

    @Test func socketIdleAgainstAClosedPortFails() throws {
        let directory = try makeTemporaryDirectory("socket-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try Started(
            directory, "idle", Paths.bench,
            ["socket-idle", "--target", "127.0.0.1:\(freeTCPPort())", "--connections", "5", "--hold-seconds", "0"]
        ).finish()
        #expect(status == 1, "\(output)")
        #expect(output.contains("open=0 failed=5"), "\(output)")
    }
}
