// End-to-end support: real redis-server, the librdkafka mock cluster, rtc-socket processes on their own 127.0.0.x
// addresses, and Python `websockets` clients driven command by command.
import Foundation
import Kafka
import Ring
import Synchronization
import TestSupport
import Testing
import Wire

#if canImport(Glibc)
import Glibc
#endif

enum Paths {
    /// The package root, three levels above this file.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static var socket: String {
        ProcessInfo.processInfo.environment["RTC_SOCKET_BIN"] ?? packageRoot + "/.build/debug/rtc-socket"
    }
    /// Debian's Python: the one that sees `python3-websockets` (PLATFORM.md).
    static let python = "/usr/bin/python3"
    static let curl = "/usr/bin/curl"
    static let promtool = "/usr/bin/promtool"
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// Each stack gets its own 127.0.N.0/24, so nodes of different tests never share an address.
private let nextNetwork = Atomic<Int>(0)

func allocateNetwork() -> String {
    let index = nextNetwork.add(1, ordering: .relaxed).oldValue
    let third = 20 + (Int(getpid()) &* 7 &+ index) % 200
    return "127.0.\(third)."
}

// MARK: The stack

/// Redis, the mock Kafka cluster and socket nodes for one test.
final class SocketStack {
    let network = allocateNetwork()
    let port = freeTCPPort()
    let redis: RedisServer
    let kafka: KafkaMockCluster
    let directory: String
    let ringSecret = "test-ring-secret"
    var extraEnvironment: [String: String] = [:]
    private(set) var nodes: [String: ChildProcess] = [:]

    /// `redisArguments` go to redis-server (e.g. persistence for restart tests).
    init(extraEnvironment: [String: String] = [:], redisArguments: [String] = []) throws {
        directory = try makeTemporaryDirectory("socket-stack")
        redis = try RedisServer(arguments: redisArguments)
        kafka = try KafkaMockCluster(brokers: 1)
        self.extraEnvironment = extraEnvironment
    }

    deinit { stop() }

    func stop() {
        for (_, process) in nodes { process.stop(grace: .seconds(5)) }
        nodes = [:]
        kafka.close()
        redis.stop()
    }

    /// Node `index` (1-based) listens on `<network>.<index + 1>:<port>` as `socket-<index>`.
    func host(_ index: Int) -> String { network + String(index + 1) }
    func nodeID(_ index: Int) -> String { "socket-\(index)" }
    func log(_ index: Int) -> String { directory + "/node-\(index).log" }

    func wsURL(_ index: Int, client: String, query: String = "") -> String {
        "ws://\(host(index)):\(port)/ws/connect?clientId=\(client)" + (query.isEmpty ? "" : "&" + query)
    }

    func httpURL(_ index: Int, _ path: String) -> String { "http://\(host(index)):\(port)\(path)" }

    func environment(_ index: Int) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["NODE_ID"] = nodeID(index)
        environment["BIND_ADDRESS"] = host(index)
        environment["HTTP_PORT"] = String(port)
        environment["REDIS_URL"] = "redis://127.0.0.1:\(redis.port)"
        environment["KAFKA_BOOTSTRAP"] = kafka.bootstrap
        environment["RING_SECRET"] = ringSecret
        environment["HEARTBEAT_INTERVAL_SEC"] = "1"
        environment["HEARTBEAT_TTL_SEC"] = "3"
        environment["DRAIN_SECONDS"] = "2"
        environment["MOVE_WINDOW_SEC"] = "1"
        for (key, value) in extraEnvironment { environment[key] = value }
        return environment
    }

    /// Starts node `index` and waits until it is ready (its heartbeat is in Redis and /readyz answers 200).
    @discardableResult
    func startNode(_ index: Int, environment extra: [String: String] = [:]) throws -> ChildProcess {
        var environment = self.environment(index)
        for (key, value) in extra { environment[key] = value }
        let process = try ChildProcess(Paths.socket, [], environment: environment, logPath: log(index))
        nodes[nodeID(index)] = process
        let ready = waitUntil(timeout: .seconds(20)) {
            !process.isRunning || (try? self.status(index, "/readyz")) == 200
        }
        guard ready, process.isRunning else {
            throw SetupError("node \(index) did not become ready:\n\(readText(log(index)))")
        }
        return process
    }

    func node(_ index: Int) -> ChildProcess? { nodes[nodeID(index)] }

    func forget(_ index: Int) { nodes[nodeID(index)] = nil }

    /// HTTP status of `GET path` on node `index` (0 when unreachable).
    func status(_ index: Int, _ path: String, method: String = "GET") throws -> Int {
        Int(try curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, httpURL(index, path)])) ?? 0
    }

    func get(_ index: Int, _ path: String) throws -> String {
        try curl(["-s", httpURL(index, path)])
    }

    /// One value of node `index`'s /metrics (nil when absent).
    func metric(_ index: Int, _ name: String, _ labels: String = "") throws -> Double? {
        let text = try get(index, "/metrics")
        let prefix = labels.isEmpty ? name + " " : name + "{" + labels + "} "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Double(line.dropFirst(prefix.count))
    }

    /// Publishes a ring through Redis (the nodes poll it every heartbeat) and waits until every running node
    /// reports its version.
    func publishRing(version: UInt64, nodes ring: [RingNode], secret: String? = nil, wait: Bool = true) throws {
        let update = RingUpdate(version: version, nodes: ring, reason: "test", ts: 0).signed(
            secret: Array((secret ?? ringSecret).utf8))
        _ = try redisCLI(["SET", Keys.ring, String(decoding: update.encoded(), as: UTF8.self)])
        guard wait else { return }
        for index in nodes.keys.compactMap({ Int($0.dropFirst("socket-".count)) }) {
            let seen = waitUntil(timeout: .seconds(10)) {
                (try? self.metric(index, "rtc_socket_ring_version")) == Double(version)
            }
            if !seen { throw SetupError("node \(index) did not take ring version \(version)") }
        }
    }
}

extension SocketStack {
    /// Runs one command with `redis-cli` against the stack's Redis; returns its output.
    func redisCLI(_ arguments: [String]) throws -> String {
        try output(of: "/usr/bin/redis-cli", ["-p", String(redis.port)] + arguments)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Runs curl and returns its standard output.
func curl(_ arguments: [String]) throws -> String {
    try output(of: Paths.curl, ["--max-time", "10"] + arguments)
}
