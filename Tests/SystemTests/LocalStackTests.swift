// The whole system end to end, as `make run` starts it: clients (curl, Python `websockets`) reach it only through
// rtc-gateway; operators' actions (drain, kill, a new node, a reload, a Redis restart) go to the components.
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct LocalStackTests {
    @Test func clientsTalkAcrossNodesResumeAndAReloadLeavesTunnelsAlone() throws {
        let stack = try LocalStack()
        defer { stack.stop() }

        // The assignment, through the gateway's /ws/connect route to the balancer.
        let first = try stack.assignment("alice")
        #expect(["socket-1", "socket-2"].contains(first.node))
        #expect(first.url == "/ws/\(first.node)/connect")
        #expect(first.ringVersion >= 1)
        let missing = try stack.assignmentAnswer("")
        #expect(missing.status == 400)
        #expect(missing.body.contains(#""error""#))

        // The README's "Try it" snippet is the one the stack prints, and it works as written (on this stack's address).
        let readme = try #require(pythonSnippet(in: readText(Paths.packageRoot + "/README.md")))
        let printed = try #require(pythonSnippet(in: readText(stack.directory + "/stack.out")))
        #expect(printed.replacingOccurrences(of: stack.gateway, with: "127.0.0.1:8080") == readme)
        let lines = try runPython(printed).split(separator: "\n")
        #expect(lines.count == 4, "\(lines)")
        #expect(lines.first?.hasPrefix(#"alice: {"type":"welcome""#) == true)
        #expect(lines.dropFirst().first?.hasPrefix(#"bob:   {"type":"welcome""#) == true)
        #expect(lines.dropFirst(2).first?.hasPrefix(#"alice: {"type":"accepted","msgId":"m1""#) == true)
        #expect(lines.last?.contains(#""from":"alice","toClientId":"bob","type":"message""#) == true)

        // A WebSocket to the assigned node, through the gateway's pod route; messages both ways across nodes.
        let a = try stack.clients(on: "socket-1", count: 1, prefix: "a")[0]
        let b = try stack.clients(on: "socket-2", count: 1, prefix: "b")[0]
        let clients = try Clients()
        let welcomeA = try clients.connect("a", stack.webSocketURL(stack.assignment(a), client: a))
        #expect((welcomeA["welcome"] as? [String: Any])?["nodeId"] as? String == "socket-1")
        let welcomeB = try clients.connect("b", stack.webSocketURL(stack.assignment(b), client: b))
        #expect((welcomeB["welcome"] as? [String: Any])?["nodeId"] as? String == "socket-2")
        try clients.message("a", to: b, id: "hello", payload: #"{"text":"hi"}"#)
        let hello = try clients.wait("b", "message", count: 1)
        #expect(messageIDs(hello) == ["hello"])
        #expect(hello.first?["from"] as? String == a)
        #expect(hello.first?["payloadJson"] as? String == #"{"text":"hi"}"#)
        #expect(try clients.wait("a", "accepted", count: 1).count == 1)
        try clients.message("b", to: a, id: "reply")
        #expect(messageIDs(try clients.wait("a", "message", count: 1)) == ["reply"])

        // Offline, then resume from the last offset seen: exactly what was sent meanwhile.
        let seen = try #require(offsets(hello).last)
        try clients.call(["op": "close", "name": "b"])
        for index in 1...3 { try clients.message("a", to: b, id: "later\(index)") }
        #expect(try clients.wait("a", "accepted", count: 3).count == 3)
        _ = try clients.connect("b2", stack.webSocketURL(stack.assignment(b), client: b, resumeOffset: seen))
        let resumed = try clients.wait("b2", "message", count: 3)
        #expect(messageIDs(resumed) == ["later1", "later2", "later3"])
        #expect(offsets(resumed) == [seen + 1, seen + 2, seen + 3])

        // Prometheus scrapes every program: its live connection count per node is each node's own figure.
        var byNode: [String: Double] = [:]
        let counted = waitUntil(timeout: .seconds(30)) {
            byNode = (try? stack.prometheusQuery("sum by (node) (rtc_socket_connections)")) ?? [:]
            return byNode["socket-1"] == 1 && byNode["socket-2"] == 1
        }
        #expect(counted, "Prometheus says \(byNode)")
        #expect(try stack.metric(node: 1, "rtc_socket_connections") == 1)
        #expect(try stack.metric(node: 2, "rtc_socket_connections") == 1)
        var up: [String: Double] = [:]
        let scraped = waitUntil(timeout: .seconds(30)) {
            up = (try? stack.prometheusQuery("up")) ?? [:]
            return up.count == 4 && up.values.allSatisfy { $0 == 1 }
        }
        #expect(scraped, "up: \(up)")

        // SIGHUP: the edited file is in force for new requests; the tunnels in flight carry on.
        let configPath = stack.directory + "/gateway.conf"
        let config = readText(configPath)
        #expect(try stack.status("http://\(stack.gateway)/reloaded") == 404)
        let edited = config.replacingOccurrences(
            of: "route default {", with: "route exact /reloaded {\n    return 200 \"new config\";\n}\n\nroute default {"
        )
        #expect(edited != config)
        try edited.write(toFile: configPath, atomically: true, encoding: .utf8)
        try stack.signal("gateway", SIGHUP)
        let reloaded = waitUntil(timeout: .seconds(20)) {
            (try? stack.get("http://\(stack.gateway)/reloaded")) == "new config"
        }
        #expect(reloaded, "gateway log:\n\(stack.log("gateway").suffix(2000))")
        #expect(
            try stack.metric(
                at: "http://\(stack.network).1:9113/metrics", #"rtc_gateway_config_reloads_total{result="success"}"#)
                == 1)
        try clients.message("a", to: b, id: "after-reload")
        #expect(messageIDs(try clients.wait("b2", "message", count: 1)) == ["after-reload"])
        try clients.message("b2", to: a, id: "back")
        #expect(messageIDs(try clients.wait("a", "message", count: 1)) == ["back"])
    }

    @Test func aDrainedNodesClientsMoveToTheOtherNodeAndLoseNothing() throws {
        let stack = try LocalStack(environment: ["DRAIN_SECONDS": "3"])
        defer { stack.stop() }
        let movers = try stack.clients(on: "socket-1", count: 3, prefix: "d")
        let sender = try stack.clients(on: "socket-2", count: 1, prefix: "s")[0]
        let clients = try Clients()
        _ = try clients.connect("s", stack.webSocketURL(stack.assignment(sender), client: sender))
        var received: [String: [[String: Any]]] = [:]
        for (index, mover) in movers.enumerated() {
            _ = try clients.connect("m\(index)", stack.webSocketURL(stack.assignment(mover), client: mover))
            try clients.message("s", to: mover, id: "before-\(index)")
            received[mover] = try clients.wait("m\(index)", "message", count: 1)
        }

        #expect(try stack.status("http://\(stack.nodeAddress(1))/drain", method: "POST") == 200)
        for (index, mover) in movers.enumerated() { try clients.message("s", to: mover, id: "during-\(index)") }
        #expect(try clients.wait("s", "accepted", count: 3 + movers.count).count == 3 + movers.count)

        for (index, mover) in movers.enumerated() {
            let closed = try clients.closed("m\(index)")
            #expect(closed["code"] as? Int == 1001)
            let frames = closed["frames"] as? [[String: Any]] ?? []
            #expect(frames.contains { $0["type"] as? String == "reconnect" })
            received[mover, default: []] += frames.filter { $0["type"] as? String == "message" }
            // The client asks again; the drained node no longer gets anyone.
            let next = try stack.assignment(mover) { $0.node == "socket-2" }
            let last = offsets(received[mover] ?? []).max() ?? 0
            let welcome = try clients.connect(
                "n\(index)", stack.webSocketURL(next, client: mover, resumeOffset: last))
            #expect((welcome["welcome"] as? [String: Any])?["nodeId"] as? String == "socket-2")
            if !messageIDs(received[mover] ?? []).contains("during-\(index)") {
                received[mover, default: []] += try clients.wait("n\(index)", "message", count: 1)
            }
            try clients.message("s", to: mover, id: "after-\(index)")
            received[mover, default: []] += try clients.wait("n\(index)", "message", count: 1)
            #expect(
                messageIDs(received[mover] ?? []) == ["before-\(index)", "during-\(index)", "after-\(index)"],
                "\(mover): \(messageIDs(received[mover] ?? []))")
        }
    }

    @Test func aKilledNodesClientsResumeWhatWasSentInTheGap() throws {
        let stack = try LocalStack()
        defer { stack.stop() }
        // Up means in step: each node has the balancer's ring and its delivery partitions, so the message below is
        // relayed and pushed at once (a node still joining its group, or on an older ring, would hold or buffer it).
        let version = try #require((try stack.ring()["version"] as? NSNumber)?.doubleValue)
        for node in 1...2 {
            #expect(try stack.metric(node: node, "rtc_socket_ring_version") == version)
            #expect(try stack.metric(node: node, "rtc_socket_delivery_partitions") ?? 0 > 0)
        }
        let recipient = try stack.clients(on: "socket-1", count: 1, prefix: "r")[0]
        let sender = try stack.clients(on: "socket-2", count: 1, prefix: "s")[0]
        let clients = try Clients()
        _ = try clients.connect("s", stack.webSocketURL(stack.assignment(sender), client: sender))
        _ = try clients.connect("r", stack.webSocketURL(stack.assignment(recipient), client: recipient))
        try clients.message("s", to: recipient, id: "before")
        let before = try clients.wait("r", "message", count: 1)
        let seen = try #require(offsets(before).last)

        try stack.signal("socket-1", SIGKILL)
        _ = try clients.closed("r")
        for index in 1...3 { try clients.message("s", to: recipient, id: "gap\(index)") }
        #expect(try clients.wait("s", "accepted", count: 4).count == 4)

        // Its heartbeat expires, the ring loses it, and the client's next assignment names the other node.
        let next = try stack.assignment(recipient) { $0.node == "socket-2" }
        _ = try clients.connect("r2", stack.webSocketURL(next, client: recipient, resumeOffset: seen))
        let gap = try clients.wait("r2", "message", count: 3)
        #expect(messageIDs(gap) == ["gap1", "gap2", "gap3"])
        #expect(offsets(gap) == [seen + 1, seen + 2, seen + 3])
        try clients.message("s", to: recipient, id: "after")
        let after = try clients.wait("r2", "message", count: 1)
        #expect(messageIDs(after) == ["after"])
        #expect(offsets(after) == [seen + 4])
    }

    @Test func aThirdNodeTakesOnlyTheClientsItNowOwns() throws {
        let stack = try LocalStack()
        defer { stack.stop() }
        let ids = (0..<24).map { "g\($0)" }
        var before: [String: Assignment] = [:]
        for id in ids { before[id] = try stack.assignment(id) }
        let clients = try Clients()
        for (index, id) in ids.enumerated() {
            _ = try clients.connect("c\(index)", stack.webSocketURL(before[id]!, client: id))
        }
        let version = before[ids[0]]!.ringVersion

        try stack.startNode(3)
        _ = try stack.assignment(ids[0]) { $0.ringVersion > version }
        let ringHasThree = waitUntil(timeout: .seconds(30)) { (try? stack.ringNodes().count) == 3 }
        #expect(ringHasThree)
        var after: [String: Assignment] = [:]
        for id in ids { after[id] = try stack.assignment(id) }
        let moved = ids.filter { after[$0]!.node != before[$0]!.node }
        #expect(!moved.isEmpty)
        #expect(moved.allSatisfy { after[$0]!.node == "socket-3" }, "moved: \(moved.map { (after[$0]!.node) })")

        for (index, id) in ids.enumerated() where moved.contains(id) {
            let closed = try clients.closed("c\(index)")
            #expect(closed["code"] as? Int == 1012)
            #expect((closed["frames"] as? [[String: Any]] ?? []).contains { $0["type"] as? String == "reconnect" })
            let welcome = try clients.connect("moved\(index)", stack.webSocketURL(after[id]!, client: id))
            #expect((welcome["welcome"] as? [String: Any])?["nodeId"] as? String == "socket-3")
        }
        // Everyone else kept the session: a message reaches each of them live, on the connection they had.
        let sender = try #require(ids.firstIndex(of: moved[0]))
        for (index, id) in ids.enumerated() where !moved.contains(id) {
            try clients.message("moved\(sender)", to: id, id: "still-\(index)")
            #expect(messageIDs(try clients.wait("c\(index)", "message", count: 1)) == ["still-\(index)"])
        }
    }

    @Test func redisRestartedUnderTrafficLosesNothingAccepted() throws {
        let stack = try LocalStack()
        defer { stack.stop() }
        let sender = try stack.clients(on: "socket-1", count: 1, prefix: "s")[0]
        let recipient = try stack.clients(on: "socket-2", count: 1, prefix: "r")[0]
        let clients = try Clients()
        _ = try clients.connect("s", stack.webSocketURL(stack.assignment(sender), client: sender))
        _ = try clients.connect("r", stack.webSocketURL(stack.assignment(recipient), client: recipient))
        try clients.call(["op": "burst", "name": "s", "to": recipient, "count": 30, "prefix": "p"])
        #expect(try clients.wait("s", "accepted", count: 30).count == 30)

        try stack.signal("redis", SIGTERM)
        try clients.call(["op": "burst", "name": "s", "to": recipient, "count": 30, "prefix": "q"])
        // Each message sent while Redis is away is accepted or refused with an error frame: never silence.
        var answered: [String: String] = [:]
        let done = waitUntil(timeout: .seconds(30)) {
            let frames = (try? clients.call(["op": "take", "name": "s"])["frames"] as? [[String: Any]]) ?? []
            for frame in frames {
                if let id = frame["msgId"] as? String, let type = frame["type"] as? String { answered[id] = type }
            }
            return answered.count == 30
        }
        #expect(done, "answered \(answered.count) of 30")
        try stack.startRedis()

        // Traffic flows again once the nodes have reconnected.
        var probe = 0
        let flowing = waitUntil(timeout: .seconds(30)) {
            probe += 1
            try? clients.message("s", to: recipient, id: "z\(probe)")
            let reply = try? clients.call(["op": "wait", "name": "s", "type": "accepted", "count": 1, "timeout": 1])
            return (reply?["frames"] as? [[String: Any]])?.isEmpty == false
        }
        #expect(flowing)
        let assignment = try stack.assignment(recipient)
        #expect(assignment.node == "socket-2")

        // The recipient gets every accepted message: resuming from 0 returns the whole inbox in order.
        let accepted = Set(answered.filter { $0.value == "accepted" }.keys)
        _ = try clients.connect("r2", stack.webSocketURL(assignment, client: recipient, resumeOffset: 0))
        let all = try clients.wait("r2", "message", count: 30 + accepted.count, timeout: 30)
        let ids = messageIDs(all)
        #expect(Set(ids).isSuperset(of: accepted))
        #expect(Array(ids.prefix(30)) == (0..<30).map { "p\($0)" })
        #expect(offsets(all) == offsets(all).sorted())
    }
}

/// The Python program between `/usr/bin/python3 - <<'PY'` and `PY` in `text`.
func pythonSnippet(in text: String) -> String? {
    guard let start = text.range(of: "/usr/bin/python3 - <<'PY'\n"),
        let end = text.range(of: "\nPY\n", range: start.upperBound..<text.endIndex)
    else { return nil }
    return String(text[start.upperBound..<end.lowerBound])
}

/// Runs a Python program with Debian's Python (the one that sees `python3-websockets`); its standard output.
func runPython(_ program: String) throws -> String {
    let directory = try makeTemporaryDirectory("snippet")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try program.write(toFile: directory + "/snippet.py", atomically: true, encoding: .utf8)
    return try output(of: "/usr/bin/python3", [directory + "/snippet.py"])
}

extension LocalStack {
    /// An instant PromQL query against the stack's Prometheus: value by the `node` label (or the first label).
    func prometheusQuery(_ query: String) throws -> [String: Double] {
        let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query
        let text = try get("http://\(prometheus)/api/v1/query?query=\(encoded)")
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let data = object["data"] as? [String: Any], let results = data["result"] as? [[String: Any]]
        else { throw SetupError("Prometheus answered: \(text)") }
        var values: [String: Double] = [:]
        for result in results {
            let labels = result["metric"] as? [String: String] ?? [:]
            let key = labels["node"] ?? labels["job"] ?? ""
            if let pair = result["value"] as? [Any], pair.count == 2, let value = Double(pair[1] as? String ?? "") {
                values[key] = value
            }
        }
        return values
    }
}

/// The smoke load scenario, as `bench/scenario.sh smoke` runs it: the stack with the scenario's process counts, then
/// `rtc-bench run` (two worker processes) through the gateway; every message sent must be accounted for.
@Suite struct SmokeScenarioTests {
    @Test func everyMessageOfTheSmokeRunIsAccountedFor() throws {
        let directory = try makeTemporaryDirectory("smoke-scenario")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let out = directory + "/out"
        let process = try ChildProcess(
            "/bin/bash",
            [
                Paths.packageRoot + "/bench/scenario.sh", "smoke", "--bin", Paths.binaries, "--net", "127.0.229",
                "--dir", directory + "/stack", "--out", out,
            ], logPath: directory + "/scenario.log")
        let status = process.waitForExit(timeout: .seconds(240))
        if status == nil { process.stop(grace: .seconds(30)) }
        let log = readText(directory + "/scenario.log")
        #expect(status == 0, "scenario.sh smoke:\n\(log.suffix(4000))")

        let scenario = readText(Paths.packageRoot + "/bench/scenarios/smoke.env")
        let clients = try #require(scenarioValue(scenario, "CLIENTS"))
        let text = readText(out + "/result.json")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
        let counters = try #require(result["counters"] as? [String: Any])
        func count(_ name: String) -> Int { (counters[name] as? NSNumber)?.intValue ?? -1 }
        #expect(count("clients") == clients)
        #expect(count("connected") == clients)
        #expect(count("held") == clients)
        #expect(count("sent") > clients)
        // Every message sent was accepted, and every accepted one delivered exactly once.
        #expect(count("accepted") == count("sent"))
        #expect(count("delivered") == count("accepted"))
        #expect(count("lost") == 0)
        #expect(count("duplicates") == 0)
        #expect(count("refused") == 0)
        #expect((counters["errors"] as? [String: Any])?.isEmpty == true, "\(counters)")
        let latency = try #require(result["message_latency_us"] as? [String: Any])
        #expect((latency["count"] as? NSNumber)?.intValue == count("delivered"))
        let assign = try #require(result["assign_latency_us"] as? [String: Any])
        #expect((assign["count"] as? NSNumber)?.intValue == clients)
        // The person's outputs: the summary's table and a chart with both series.
        #expect(readText(out + "/summary.md").contains("| message, send to receipt | \(count("delivered")) |"))
        #expect(readText(out + "/chart.svg").components(separatedBy: "<polyline").count == 3)
        // The run watched every program of the stack: from /proc, and the gateway from its /metrics too.
        let entries = result["watched"] as? [[String: Any]] ?? []
        let watched = entries.compactMap { $0["name"] as? String }
        #expect(
            Set(watched).isSuperset(of: ["gateway", "balancer", "socket-1", "socket-2", "redis", "gateway-metrics"]),
            "\(watched)")
        let remote = entries.first { $0["name"] as? String == "gateway-metrics" }
        #expect(((remote?["rss_after"] as? NSNumber)?.intValue ?? 0) > 1_000_000, "\(String(describing: remote))")
    }
}

/// `NAME=value` of a scenario file, as an integer.
func scenarioValue(_ text: String, _ name: String) -> Int? {
    for line in text.split(separator: "\n") where line.hasPrefix(name + "=") {
        return Int(line.dropFirst(name.count + 1))
    }
    return nil
}
