// The whole local stack for one test, started by the script `make run` uses (bench/stack.sh) on its own 127.0.N.0/24:
// clients reach it only through rtc-gateway, as a user would; components are stopped, killed, restarted and added by
// their pid files, as an operator would.
import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

enum Paths {
    /// The package root, three levels above this file.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let script = packageRoot + "/bench/stack.sh"
    /// `RTC_BIN_DIR` (e.g. a release build), else the debug build.
    static var binaries: String {
        ProcessInfo.processInfo.environment["RTC_BIN_DIR"] ?? packageRoot + "/.build/debug"
    }
    static let curl = "/usr/bin/curl"
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// Stacks of one test run take 127.0.230.0/24 to 127.0.249.0/24, apart from the other suites' networks.
private let nextNetwork = Atomic<Int>(0)

/// An answer of `/ws/connect`.
struct Assignment: Equatable {
    let node: String
    let url: String
    let ringVersion: Int
}

final class LocalStack {
    let network: String
    let directory: String
    private let process: ChildProcess
    private var extra: [ChildProcess] = []

    /// Starts `bench/stack.sh up` with `nodes` socket nodes and waits until it says the stack is up (every node in
    /// the ring, an assignment answered through the gateway).
    init(nodes: Int = 2, environment overrides: [String: String] = [:]) throws {
        let index = nextNetwork.add(1, ordering: .relaxed).oldValue
        network = "127.0.\(230 + (Int(getpid()) &+ index) % 20)"
        directory = try makeTemporaryDirectory("local-stack")
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in overrides { environment[key] = value }
        process = try ChildProcess(
            "/bin/bash",
            [
                Paths.script, "up", "--bin", Paths.binaries, "--dir", directory, "--net", network, "--nodes",
                String(nodes),
            ], environment: environment, logPath: directory + "/stack.out")
        let up = waitUntil(timeout: .seconds(120)) {
            readText(self.directory + "/stack.out").contains("\nstack is up") || !self.process.isRunning
        }
        guard up, process.isRunning else {
            let text = readText(directory + "/stack.out")
            stop()
            throw SetupError("the local stack did not start:\n\(text)")
        }
    }

    deinit { stop() }

    /// Stops the stack (the script stops every component in order) and whatever the test started in it.
    func stop() {
        process.stop(grace: .seconds(60))
        for child in extra { child.stop(grace: .seconds(10)) }
        extra = []
    }

    var gateway: String { network + ".1:8080" }
    var balancer: String { network + ".2:8081" }
    var prometheus: String { network + ".4:9090" }
    func nodeAddress(_ index: Int) -> String { network + ".\(10 + index):8080" }
    func log(_ component: String) -> String { readText(directory + "/logs/\(component).log") }

    /// The pid of a running component (`gateway`, `socket-2`, `redis`, ...) from its pid file.
    func pid(_ component: String) throws -> pid_t {
        guard
            let pid = pid_t(readText(directory + "/pids/" + component).trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw SetupError("no pid file for \(component)") }
        return pid
    }

    /// Sends `signal` to a component and, unless it is SIGHUP, waits until the process is gone.
    func signal(_ component: String, _ signal: Int32) throws {
        let pid = try pid(component)
        kill(pid, signal)
        guard signal != SIGHUP else { return }
        let gone = waitUntil(timeout: .seconds(30)) {
            let state = readText("/proc/\(pid)/stat").split(separator: " ").dropFirst(2).first
            return state == nil || state == "Z"
        }
        if !gone { throw SetupError("\(component) (pid \(pid)) did not exit after signal \(signal)") }
    }

    /// Starts a stack command of the script (`node 3`, `redis`) in this stack, waiting until `ready` holds.
    func run(_ arguments: [String], name: String, ready: () throws -> Bool) throws {
        let child = try ChildProcess(
            "/bin/bash", [Paths.script] + arguments + ["--bin", Paths.binaries, "--dir", directory, "--net", network])
        extra.append(child)
        let up = try waitUntil(timeout: .seconds(30)) { try ready() || !child.isRunning }
        guard up, child.isRunning else { throw SetupError("\(name) did not start:\n\(log(name))") }
    }

    /// Starts socket node `index` (on `<network>.<10 + index>`) and waits until it is ready.
    func startNode(_ index: Int) throws {
        try run(["node", String(index)], name: "socket-\(index)") {
            (try? status("http://\(nodeAddress(index))/readyz")) == 200
        }
    }

    /// Starts the stack's Redis again (same address, same data directory).
    func startRedis() throws {
        try run(["redis"], name: "redis") {
            (try? output(of: "/usr/bin/redis-cli", ["-h", network + ".3", "ping"]))?.contains("PONG") == true
        }
    }

    // MARK: HTTP

    /// Status of `GET url` (0 when unreachable).
    func status(_ url: String, method: String = "GET") throws -> Int {
        Int(
            try output(
                of: Paths.curl, ["--max-time", "10", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, url]))
            ?? 0
    }

    func get(_ url: String) throws -> String {
        try output(of: Paths.curl, ["--max-time", "10", "-s", url])
    }

    /// `GET /ws/connect?clientId=` through the gateway: status and body.
    func assignmentAnswer(_ client: String) throws -> (status: Int, body: String) {
        let text = try output(
            of: Paths.curl,
            ["--max-time", "10", "-s", "-w", "\n%{http_code}", "http://\(gateway)/ws/connect?clientId=\(client)"])
        guard let newline = text.lastIndex(of: "\n") else { return (0, text) }
        return (Int(text[text.index(after: newline)...]) ?? 0, String(text[..<newline]))
    }

    /// The assignment of `client` through the gateway.
    func assignment(_ client: String) throws -> Assignment {
        let answer = try assignmentAnswer(client)
        guard answer.status == 200,
            let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
            let node = object["socketNodeId"] as? String, let url = object["url"] as? String,
            let version = (object["ringVersion"] as? NSNumber)?.intValue
        else { throw SetupError("assignment of \(client): \(answer.status) \(answer.body)") }
        return Assignment(node: node, url: url, ringVersion: version)
    }

    /// Waits until the assignment of `client` satisfies `condition`; returns it.
    func assignment(_ client: String, until condition: (Assignment) -> Bool) throws -> Assignment {
        var last: Assignment?
        let ok = waitUntil(timeout: .seconds(30)) {
            last = try? assignment(client)
            return last.map(condition) ?? false
        }
        guard ok, let last else {
            throw SetupError("assignment of \(client) never satisfied the condition: \(String(describing: last))")
        }
        return last
    }

    /// The WebSocket URL through the gateway for an assignment, as a client builds it.
    func webSocketURL(_ assignment: Assignment, client: String, resumeOffset: UInt64? = nil) -> String {
        "ws://\(gateway)\(assignment.url)?clientId=\(client)" + (resumeOffset.map { "&resumeOffset=\($0)" } ?? "")
    }

    /// Client ids (from `prefix0`, `prefix1`, ...) whose assignment names `node`.
    func clients(on node: String, count: Int, prefix: String) throws -> [String] {
        var found: [String] = []
        var index = 0
        while found.count < count && index < 500 {
            let id = "\(prefix)\(index)"
            if try assignment(id).node == node { found.append(id) }
            index += 1
        }
        guard found.count == count else { throw SetupError("only \(found.count) clients on \(node)") }
        return found
    }

    /// One value of a node's /metrics (nil when absent).
    func metric(node index: Int, _ name: String) throws -> Double? {
        try metric(at: "http://\(nodeAddress(index))/metrics", name)
    }

    func metric(at url: String, _ name: String) throws -> Double? {
        let text = try get(url)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + " ") }) else { return nil }
        return Double(line.dropFirst(name.count + 1))
    }

    /// The ring the balancer serves: node ids.
    func ringNodes() throws -> [String] {
        (try ring()["nodes"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    /// The ring the balancer serves, as its JSON object.
    func ring() throws -> [String: Any] {
        let text = try get("http://\(balancer)/api/v1/ring")
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }
}

func messageIDs(_ frames: [[String: Any]]) -> [String] { frames.compactMap { $0["msgId"] as? String } }
func offsets(_ frames: [[String: Any]]) -> [UInt64] {
    frames.compactMap { ($0["offset"] as? NSNumber)?.uint64Value }
}
