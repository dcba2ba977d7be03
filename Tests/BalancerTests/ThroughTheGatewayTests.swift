// Both SOCKET_URL_FORMs end to end, through the real rtc-gateway only: curl asks the gateway for an assignment, Python
// `websockets` clients follow the URL they got through the gateway's pod route (dnsmasq answering the names a cluster
// would publish for that form) to the socket node it names, and exchange a message there.
import Foundation
import Ring
import TestSupport
import Testing

@testable import Balancer

#if canImport(Glibc)
import Glibc
#endif

/// The real `rtc-gateway` in front of a `Stack`: the routes of `gateway-config/local.conf` (the pod route's port set
/// to the socket nodes' port), dnsmasq as its resolver, and the balancer upstream by its Service name.
final class GatewayFront {
    static let balancerName = "rtc-balancer.rtc.svc.cluster.local"
    static let podSuffix = ".socket.rtc.svc.cluster.local"
    /// `RTC_GATEWAY_BIN`, else the debug build next to the other programs.
    static var binary: String {
        ProcessInfo.processInfo.environment["RTC_GATEWAY_BIN"] ?? Paths.packageRoot + "/.build/debug/rtc-gateway"
    }
    static var shippedConfig: String { Paths.packageRoot + "/gateway-config/local.conf" }

    let dns: Dnsmasq
    let port = freeTCPPort()
    let adminPort = freeTCPPort()
    let directory: String
    let configPath: String
    let logPath: String
    private var process: ChildProcess?

    /// `records`: the socket-node names dnsmasq publishes (the balancer's name is added, as 127.0.0.1).
    init(balancer: BalancerHandle, podPort: UInt16, records: [String: [String]]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw SetupError("no gateway binary at \(Self.binary): run `swift build` or set RTC_GATEWAY_BIN")
        }
        directory = try makeTemporaryDirectory("through-gateway")
        configPath = directory + "/gateway.conf"
        logPath = directory + "/gateway.log"
        var all = records
        all[Self.balancerName] = ["127.0.0.1"]
        dns = try Dnsmasq(records: all, ttl: 30)
        let text = """
            workers 2;
            listen 127.0.0.1:\(port);
            admin 127.0.0.1:\(adminPort);
            resolver 127.0.0.1:\(dns.port) valid=5s timeout=1s attempts=2;
            upstream balancer {
                server \(Self.balancerName):\(balancer.configuration.httpPort);
                keepalive 16;
            }
            timeouts {
                client_header 10s;
                upstream_connect 1s;
                upstream_response 15s;
                tunnel_idle 1h;
                drain 2s;
            }
            limits {
                header_size 16k;
                body_size 64k;
            }
            access_log stdout;

            \(try Self.shippedRoutes(podPort: podPort))
            """
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        let process = try ChildProcess(Self.binary, ["--config", configPath], logPath: logPath)
        self.process = process
        let up = waitUntil(timeout: .seconds(10)) {
            readText(self.logPath).contains("admin (/metrics") || !process.isRunning
        }
        guard up, process.isRunning else {
            throw SetupError("the gateway did not start:\n\(readText(logPath))")
        }
    }

    /// Every route block of the shipped local config, verbatim but for the pod route's port.
    static func shippedRoutes(podPort: UInt16) throws -> String {
        let text = readText(shippedConfig)
        guard let start = text.range(of: "\nroute ") else { throw SetupError("no route in \(shippedConfig)") }
        let routes = String(text[start.lowerBound...])
        let podProxy = "proxy http://$podid\(podSuffix):8080;"
        guard routes.contains(podProxy) else {
            throw SetupError("the pod route of \(shippedConfig) no longer says `\(podProxy)`")
        }
        return routes.replacingOccurrences(of: podProxy, with: "proxy http://$podid\(podSuffix):\(podPort);")
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func stop() {
        process?.stop(grace: .seconds(3))
        process = nil
        dns.stop()
    }

    var log: String { readText(logPath) }

    func wsURL(_ path: String) -> String { "ws://127.0.0.1:\(port)\(path)" }

    /// One request through the gateway with curl: status, Content-Type and body. `upgrade` adds the WebSocket
    /// handshake fields (for answers other than 101, which would leave curl waiting).
    func request(_ path: String, upgrade: Bool = false) throws -> (status: Int, contentType: String, body: String) {
        let handshake =
            upgrade
            ? [
                "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            ] : []
        let text = try output(
            of: Paths.curl,
            ["--max-time", "10", "-s", "--path-as-is", "-w", "\n%{content_type}\n%{http_code}"]
                + handshake.flatMap { ["-H", $0] } + ["http://127.0.0.1:\(port)\(path)"])
        let lines = text.components(separatedBy: "\n")
        guard lines.count >= 3 else { return (0, "", text) }
        return (
            Int(lines[lines.count - 1]) ?? 0, lines[lines.count - 2],
            lines[..<(lines.count - 2)].joined(separator: "\n")
        )
    }

    /// Every name dnsmasq was asked for (any type), lowercased as a resolver compares them.
    func queriedNames() -> Set<String> {
        var names: Set<String> = []
        for line in dns.queriesLog().split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let query = words.firstIndex(where: { $0.hasPrefix("query[") }), query + 1 < words.count else {
                continue
            }
            names.insert(words[query + 1].lowercased())
        }
        return names
    }
}

/// Runs `Fixtures/through_gateway.py` to completion (killed after `timeout`); its JSON line, or a thrown error.
func throughGatewayClient(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> [String: Any] {
    let directory = try makeTemporaryDirectory("through-gateway-client")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let log = directory + "/client.log"
    let process = try ChildProcess(Paths.python, [Paths.fixtures + "/through_gateway.py"] + arguments, logPath: log)
    let status = process.waitForExit(timeout: timeout)
    if status == nil { process.stop(grace: .seconds(1)) }
    let text = readText(log)
    guard status == 0, let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
        throw SetupError("through_gateway.py \(arguments) (\(status.map(String.init) ?? "timeout")): \(text)")
    }
    return json(String(line))
}

@Suite(.serialized) struct ThroughTheGatewayTests {
    @Test func nameFormURLsReachTheirNodesThroughTheGateway() throws {
        try reachNodesThroughTheGateway(form: .name)
    }

    @Test func ipFormURLsReachTheirNodesThroughTheGateway() throws {
        try reachNodesThroughTheGateway(form: .ip)
    }

    /// Two socket nodes and a balancer answering in `form`; dnsmasq publishes the nodes only under that form's names
    /// (a cluster DNS with `endpoint_pod_names` for `name`, a stock headless Service for `ip`); everything a client
    /// does goes through the gateway.
    func reachNodesThroughTheGateway(form: URLForm) throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        let balancer = try stack.startBalancer { $0.urlForm = form }
        let ring = try #require(waitForRing(balancer) { ids($0) == ["socket-1", "socket-2"] })
        // The nodes route by the ring too (a message to the other node's client goes through Kafka).
        for index in [1, 2] {
            #expect(
                waitUntil(timeout: .seconds(15)) {
                    stack.nodeMetric(index, "rtc_socket_ring_version") == Double(ring.version)
                })
        }

        /// The per-pod label of node `index` in either form: its pod name, or its heartbeat address dashed.
        func label(_ index: Int, _ form: URLForm) -> String {
            form == .name ? stack.nodeID(index) : stack.host(index).replacingOccurrences(of: ".", with: "-")
        }
        let other: URLForm = form == .name ? .ip : .name
        var records: [String: [String]] = [:]
        for index in [1, 2] { records[label(index, form) + GatewayFront.podSuffix] = [stack.host(index)] }
        let gateway = try GatewayFront(balancer: balancer, podPort: stack.port, records: records)
        defer { gateway.stop() }

        // One client per node: u1 if socket-1 owns it, else the first u<n> each node owns.
        func client(ownedBy node: String) throws -> String {
            try #require((1..<1000).map { "u\($0)" }.first { ring.ring.owner(of: $0) == node })
        }
        let clients = [(try client(ownedBy: "socket-1"), 1), (try client(ownedBy: "socket-2"), 2)]

        // The assignment, through the gateway's balancer route.
        var urls: [String] = []
        for (client, index) in clients {
            let answer = try gateway.request("/ws/connect?clientId=\(client)")
            #expect(answer.status == 200, "\(answer)\n\(gateway.log)")
            #expect(answer.contentType.hasPrefix("application/json"), "\(answer.contentType)")
            let body = json(answer.body)
            #expect(body["socketNodeId"] as? String == stack.nodeID(index), "\(answer.body)")
            let path = "/ws/\(label(index, form))/connect"
            #expect(body["url"] as? String == path, "\(answer.body)")
            #expect((body["ringVersion"] as? NSNumber)?.uint64Value == ring.version)
            urls.append(gateway.wsURL((body["url"] as? String ?? path) + "?clientId=\(client)"))
        }

        // Real clients follow those URLs through the gateway, each to its node, and talk to each other.
        let (a, b) = (clients[0].0, clients[1].0)
        let result = try throughGatewayClient(["exchange", urls[0], a, urls[1], b])
        let welcomeA = result["welcomeA"] as? [String: Any] ?? [:]
        let welcomeB = result["welcomeB"] as? [String: Any] ?? [:]
        #expect(welcomeA["type"] as? String == "welcome")
        #expect(welcomeA["nodeId"] as? String == "socket-1", "\(welcomeA)")
        #expect(welcomeA["clientId"] as? String == a)
        #expect((welcomeA["ringVersion"] as? NSNumber)?.uint64Value == ring.version)
        #expect(welcomeB["nodeId"] as? String == "socket-2", "\(welcomeB)")
        #expect(welcomeB["clientId"] as? String == b)
        for (key, from, to, text) in [("atB", a, b, "hello \(b)"), ("atA", b, a, "hello \(a)")] {
            let delivered = result[key] as? [String: Any] ?? [:]
            #expect(delivered["from"] as? String == from, "\(key): \(delivered)")
            #expect(delivered["toClientId"] as? String == to, "\(key): \(delivered)")
            #expect(json(delivered["payloadJson"] as? String ?? "")["text"] as? String == text, "\(key): \(delivered)")
            #expect((delivered["offset"] as? NSNumber)?.uint64Value ?? 0 > 0, "\(key): \(delivered)")
        }
        #expect((result["acceptedA"] as? [String: Any])?["msgId"] as? String == "m-1")
        #expect((result["acceptedB"] as? [String: Any])?["msgId"] as? String == "m-2")
        // The gateway looked the nodes up under this form's names.
        for index in [1, 2] {
            #expect(gateway.dns.queryCount(for: label(index, form) + GatewayFront.podSuffix) >= 1)
        }

        // The other form's names are not published here: a label-shaped podid that does not resolve is a 502.
        for index in [1, 2] {
            let answer = try gateway.request("/ws/\(label(index, other))/connect?clientId=\(a)", upgrade: true)
            #expect(answer.status == 502, "\(label(index, other)): \(answer)")
        }
        // Not a DNS-1123 label: 404, and the name never reaches DNS.
        let notLabels = [
            "Socket_1", "SOCKET-1", "socket_1", stack.host(1), "-socket-1", "socket-1-",
            "socket-1.socket.rtc.svc.cluster.local", String(repeating: "a", count: 64),
        ]
        for podID in notLabels {
            let answer = try gateway.request("/ws/\(podID)/connect?clientId=\(a)", upgrade: true)
            #expect(answer.status == 404, "\(podID): \(answer)")
        }
        let refused = try throughGatewayClient(["status", gateway.wsURL("/ws/Socket_1/connect?clientId=\(a)")])
        #expect((refused["status"] as? NSNumber)?.intValue == 404, "\(refused)")
        // A plain GET on the pod route (no upgrade) is 426 and resolves nothing either.
        let plain = try gateway.request("/ws/\(label(1, form))/connect?clientId=\(a)")
        #expect(plain.status == 426, "\(plain)")
        #expect(gateway.dns.queryCount(for: "Socket_1" + GatewayFront.podSuffix) == 0)
        #expect(gateway.dns.queryCount(for: "socket_1" + GatewayFront.podSuffix) == 0)
        // Everything dnsmasq was ever asked: the balancer's name and labels the pod route accepted.
        let asked = gateway.queriedNames()
        let allowed = Set(
            [GatewayFront.balancerName]
                + [1, 2].flatMap { index in [form, other].map { label(index, $0) + GatewayFront.podSuffix } })
        #expect(asked.isSubset(of: allowed), "unexpected queries: \(asked.subtracting(allowed))")
        #expect(asked.contains(GatewayFront.balancerName))
    }
}
