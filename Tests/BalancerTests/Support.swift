// End-to-end support: real redis-server, the librdkafka mock cluster, rtc-socket processes on their own 127.1.x.y
// addresses, balancers in this process (with a leadership the test flips and a cluster that records), curl.
import EventLoop
import Foundation
import HTTPServer
import Kafka
import Ring
import Synchronization
import Sys
import TestSupport
import Testing
import Wire

@testable import Balancer

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
    static var balancer: String {
        ProcessInfo.processInfo.environment["RTC_BALANCER_BIN"] ?? packageRoot + "/.build/debug/rtc-balancer"
    }
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures"
    ).path
    /// Debian's Python: the one that sees `python3-websockets` (PLATFORM.md).
    static let python = "/usr/bin/python3"
    static let curl = "/usr/bin/curl"
    static let promtool = "/usr/bin/promtool"
    static let redisCLI = "/usr/bin/redis-cli"
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// Each stack gets its own 127.1.N.0/24 (the socket-node tests use 127.0.N.0/24).
private let nextNetwork = Atomic<Int>(0)

func allocateNetwork() -> String {
    let index = nextNetwork.add(1, ordering: .relaxed).oldValue
    let third = 10 + (Int(getpid()) &* 7 &+ index) % 200
    return "127.1.\(third)."
}

/// `curl -s` with a 10 s limit: (status, body).
func curl(_ url: String, method: String = "GET") throws -> (status: Int, body: String) {
    let text = try output(of: Paths.curl, ["--max-time", "10", "-s", "-X", method, "-w", "\n%{http_code}", url])
    guard let newline = text.lastIndex(of: "\n") else { return (0, "") }
    return (Int(text[text.index(after: newline)...]) ?? 0, String(text[..<newline]))
}

func json(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

/// One value of a Prometheus text page (nil when absent).
func metric(_ text: String, _ name: String, _ labels: String = "") -> Double? {
    let prefix = labels.isEmpty ? name + " " : name + "{" + labels + "} "
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
    return Double(line.dropFirst(prefix.count))
}

// MARK: Leadership and cluster doubles

/// Leadership the test decides, flipped on the balancer's loop.
final class FlippedLeader: Leadership {
    private(set) var isLeader: Bool
    var onChange: ((Bool) -> Void)?
    private let initially: Bool

    init(leading: Bool) {
        initially = leading
        isLeader = false
    }

    func start() { set(initially) }
    func stop() { set(false) }

    func set(_ leading: Bool) {
        guard leading != isLeader else { return }
        isLeader = leading
        onChange?(leading)
    }
}

// MARK: The stack

/// Redis, the mock Kafka cluster, socket nodes and balancers for one test.
final class Stack {
    let network = allocateNetwork()
    let port = freeTCPPort()
    let redis: RedisServer
    let kafka: KafkaMockCluster
    let directory: String
    let ringSecret = "balancer-test-secret"
    var socketEnvironment: [String: String] = [:]
    private(set) var nodes: [Int: ChildProcess] = [:]
    private(set) var balancers: [BalancerHandle] = []

    init(socketEnvironment: [String: String] = [:]) throws {
        directory = try makeTemporaryDirectory("balancer-stack")
        redis = try RedisServer()
        kafka = try KafkaMockCluster(brokers: 1)
        self.socketEnvironment = socketEnvironment
    }

    deinit { stop() }

    func stop() {
        for balancer in balancers { balancer.stop() }
        balancers = []
        for (_, process) in nodes { process.stop(grace: .seconds(5)) }
        nodes = [:]
        kafka.close()
        redis.stop()
    }

    var redisURL: String { "redis://127.0.0.1:\(redis.port)" }

    /// Node `index` listens on `<network>.<index + 1>:<port>` as `socket-<index>`.
    func host(_ index: Int) -> String { network + String(index + 1) }
    func nodeID(_ index: Int) -> String { "socket-\(index)" }
    func log(_ index: Int) -> String { directory + "/node-\(index).log" }
    func nodeURL(_ index: Int, _ path: String) -> String { "http://\(host(index)):\(port)\(path)" }

    /// Starts node `index` and waits until it is ready.
    @discardableResult
    func startNode(_ index: Int, environment extra: [String: String] = [:]) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["NODE_ID"] = nodeID(index)
        environment["BIND_ADDRESS"] = host(index)
        environment["POD_IP"] = host(index)
        environment["HTTP_PORT"] = String(port)
        environment["REDIS_URL"] = redisURL
        environment["KAFKA_BOOTSTRAP"] = kafka.bootstrap
        environment["RING_SECRET"] = ringSecret
        environment["HEARTBEAT_INTERVAL_SEC"] = "1"
        environment["HEARTBEAT_TTL_SEC"] = "2"
        environment["DRAIN_SECONDS"] = "2"
        environment["MOVE_WINDOW_SEC"] = "1"
        for (key, value) in socketEnvironment { environment[key] = value }
        for (key, value) in extra { environment[key] = value }
        let process = try ChildProcess(Paths.socket, [], environment: environment, logPath: log(index))
        nodes[index] = process
        let ready = waitUntil(timeout: .seconds(20)) {
            !process.isRunning || (try? curl(self.nodeURL(index, "/readyz")).status) == 200
        }
        guard ready, process.isRunning else {
            throw SetupError("node \(index) did not become ready:\n\(readText(log(index)))")
        }
        return process
    }

    func node(_ index: Int) -> ChildProcess? { nodes[index] }
    func forget(_ index: Int) { nodes[index] = nil }

    /// One value of node `index`'s /metrics.
    func nodeMetric(_ index: Int, _ name: String, _ labels: String = "") -> Double? {
        guard let page = try? curl(nodeURL(index, "/metrics")), page.status == 200 else { return nil }
        return metric(page.body, name, labels)
    }

    func redisCLI(_ arguments: [String]) throws -> String {
        try output(of: Paths.redisCLI, ["-p", String(redis.port)] + arguments)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The ring in Redis (nil when none or unreadable).
    func ringInRedis() -> RingUpdate? {
        guard let text = try? redisCLI(["GET", Keys.ring]), !text.isEmpty else { return nil }
        return try? RingUpdate.decode(Array(text.utf8))
    }

    /// The balancer settings for this stack: one-second rounds.
    func balancerConfiguration(_ changes: (inout BalancerConfiguration) -> Void = { _ in }) -> BalancerConfiguration {
        var configuration = BalancerConfiguration()
        configuration.podName = "balancer-\(balancers.count)"
        configuration.bindAddress = "127.0.0.1"
        configuration.httpPort = freeTCPPort()
        configuration.redisURL = redisURL
        configuration.kafkaBootstrap = kafka.bootstrap
        configuration.ringSecret = Array(ringSecret.utf8)
        configuration.reconcileIntervalSeconds = 1
        configuration.rerouteWindowSeconds = 90
        changes(&configuration)
        return configuration
    }

    /// Starts a balancer in this process on a loop of its own.
    @discardableResult
    func startBalancer(
        leading: Bool = true, _ changes: (inout BalancerConfiguration) -> Void = { _ in }
    ) throws -> BalancerHandle {
        let handle = try BalancerHandle(configuration: balancerConfiguration(changes), leading: leading)
        balancers.append(handle)
        return handle
    }
}

/// A balancer on its own loop thread with its HTTP server, its leadership double and its recording cluster.
final class BalancerHandle: @unchecked Sendable {
    let running: RunningLoop
    let configuration: BalancerConfiguration
    private let balancer: Unchecked<Balancer>
    private let leader: Unchecked<FlippedLeader>
    private let cluster: Unchecked<NoCluster>
    private let server: HTTPServer
    private var stopped = false

    init(configuration: BalancerConfiguration, leading: Bool) throws {
        self.configuration = configuration
        let running = try RunningLoop()
        self.running = running
        let leader = FlippedLeader(leading: leading)
        let cluster = NoCluster()
        let balancer = try Balancer(
            configuration: configuration, loop: running.loop, metrics: try BalancerMetrics(), resolver: nil,
            leadership: leader, cluster: cluster)
        var router = Router()
        balancer.install(in: &router)
        AdminEndpoints.install(in: &router, registry: balancer.metrics.registry, readiness: balancer.readiness)
        let server = HTTPServer(router: router)
        self.server = server
        self.balancer = Unchecked(balancer)
        self.leader = Unchecked(leader)
        self.cluster = Unchecked(cluster)
        let address = SocketAddress(host: configuration.bindAddress, port: configuration.httpPort)!
        try running.sync {
            _ = try server.listen(on: running.loop, address: address)
            try balancer.start()
        }
    }

    func stop() {
        guard !stopped else { return }
        stopped = true
        server.stop()
        try? running.sync { self.balancer.value.shutdown {} }
        running.stop()
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(configuration.httpPort)\(path)" }

    func assign(_ clientID: String) throws -> (status: Int, body: [String: Any]) {
        let answer = try curl(url("/ws/connect?clientId=\(clientID)"))
        return (answer.status, json(answer.body))
    }

    func metric(_ name: String, _ labels: String = "") -> Double? {
        guard let page = try? curl(url("/metrics")), page.status == 200 else { return nil }
        return BalancerTests.metric(page.body, name, labels)
    }

    /// The ring this balancer holds.
    var ring: RingUpdate? { try? running.sync { self.balancer.value.current } }

    func setLeader(_ leading: Bool) throws { try running.sync { self.leader.value.set(leading) } }

    var calls: [NoCluster.Call] { (try? running.sync { self.cluster.value.calls }) ?? [] }

    /// Runs `body` with the balancer on its loop.
    func withBalancer<T>(_ body: @escaping (Balancer) -> T) throws -> T {
        try running.sync { body(self.balancer.value) }
    }
}

// MARK: Python clients

/// Holds WebSocket connections open with Python's `websockets` (`Fixtures/hold.py`) until `close()`.
final class HeldConnections {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()

    init(_ urls: [String]) throws {
        process.executableURL = URL(fileURLWithPath: Paths.python)
        process.arguments = [Paths.fixtures + "/hold.py"] + urls
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let line = output.fileHandleForReading.availableLine(timeout: 20)
        guard line == "ready" else { throw SetupError("hold.py: \(line ?? "no answer")") }
    }

    func close() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { close() }
    }
}

extension FileHandle {
    /// One line of output, waiting at most `timeout` seconds.
    func availableLine(timeout: Double) -> String? {
        var buffer: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var poller = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 200)
            guard poller.revents != 0 else { continue }
            var byte: UInt8 = 0
            guard Glibc.read(fileDescriptor, &byte, 1) == 1 else { return nil }
            if byte == 0x0A { return String(decoding: buffer, as: UTF8.self) }
            buffer.append(byte)
        }
        return nil
    }
}
