// The shipped configuration files load, and gateway.conf says what SYSTEM.md §2.1 requires.
import DNS
import Foundation
import GatewayConfig
import Routing
import Testing

let testEnvironment = ["POD_NAMESPACE": "rtc"]

// The repository's gateway-config/, found from this file (resolving the symlinks of scratch packages).
private let configDirectory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("gateway-config")

private func load(_ name: String) throws -> GatewayConfig {
    let text = try String(contentsOf: configDirectory.appendingPathComponent(name), encoding: .utf8)
    return try loadConfig(text: text, file: name, environment: testEnvironment, cores: 6).get()
}

@Test func everyShippedFileLoads() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: configDirectory.path)
        .filter { $0.hasSuffix(".conf") }.sorted()
    #expect(names == ["gateway.conf", "local.conf"])
    for name in names {
        let text = try String(contentsOf: configDirectory.appendingPathComponent(name), encoding: .utf8)
        let result = loadConfig(text: text, file: name, environment: testEnvironment, cores: 6)
        if case .failure(let errors) = result { Issue.record("\(errors)") }
    }
}

@Test func productionConfig() throws {
    let config = try load("gateway.conf")
    #expect(config.workers == 6)
    #expect(config.events == .epoll)
    #expect(config.openFileLimit == .hardLimit)
    #expect(config.listeners.map(\.address.description) == ["0.0.0.0:8080"])
    #expect(config.listeners[0].tls == nil)
    #expect(config.admin.description == "0.0.0.0:9113")
    #expect(
        config.resolver == ResolverSettings(servers: .system, valid: .seconds(30), timeout: .seconds(2), attempts: 2))
    #expect(config.upstreams.count == 1)
    let balancer = try #require(config.upstream(named: "balancer"))
    #expect(balancer.keepalive == 64)
    #expect(
        balancer.servers == [
            UpstreamServer(host: "rtc-balancer.rtc.svc.cluster.local", address: nil, port: 8081, weight: 1)
        ])
    #expect(config.timeouts.clientHeader == .seconds(10))
    #expect(config.timeouts.upstreamResponse == .seconds(15))
    #expect(config.timeouts.tunnelIdle == .seconds(3600))
    #expect(config.timeouts.drain == .seconds(60))
    #expect(config.limits.headerSize == 16384)
    #expect(config.limits.uriLength == 8192)
    #expect(config.limits.bodySize == 65536)
    #expect(config.limits.maxConnections == 1_000_000)
    #expect(config.limits.perClientIP == 2000)
    #expect(config.accessLog == .off)

    let routes = config.routes.routes
    #expect(
        routes.map(\.label) == [
            "exact /ws/connect",
            "regex ^/ws/(?<podid>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/connect$",
            "default",
        ])
    #expect(routes[0].action == .proxy(.named("balancer")))
    #expect(!routes[0].websocket)
    #expect(routes[1].websocket)
    #expect(routes[1].rewrite?.source == "/ws/connect")
    guard case .proxy(.dynamic(let host, let port)) = routes[1].action else {
        Issue.record("pod route is not a dynamic upstream")
        return
    }
    #expect(host.source == "$podid.socket.rtc.svc.cluster.local")
    #expect(port == 8080)
    #expect(routes[1].hostCaptureGroups == [1])
    #expect(routes[2].action == .respond(status: 404, body: []))

    // The routes of SYSTEM.md §2.1, through the table.
    let table = config.routes
    let matcher = Matcher(for: table)
    let podPath = Array("/ws/socket-7d9f-abc12/connect".utf8)
    #expect(
        table.decide(path: Array("/ws/connect".utf8), isWebSocketUpgrade: false, matcher: matcher) == .proxy(route: 0))
    #expect(table.decide(path: podPath, isWebSocketUpgrade: true, matcher: matcher) == .proxy(route: 1))
    var rendered: [UInt8] = []
    podPath.withUnsafeBytes { host.render(captures: matcher, path: $0, into: &rendered) }
    #expect(String(decoding: rendered, as: UTF8.self) == "socket-7d9f-abc12.socket.rtc.svc.cluster.local")
    for path in ["/metrics", "/healthz", "/ws/Socket-1/connect", "/ws/a.b/connect", "/"] {
        #expect(table.decide(path: Array(path.utf8), isWebSocketUpgrade: true, matcher: matcher) == .respond(route: 2))
    }
}

@Test func localConfig() throws {
    let config = try load("local.conf")
    #expect(config.workers == 2)
    #expect(config.listeners.map(\.address.description) == ["127.0.0.1:8080"])
    #expect(config.admin.description == "127.0.0.1:9113")
    #expect(config.resolver.servers == .addresses([BindAddress(host: .v4(IPv4Address(127, 0, 0, 1)), port: 5353)]))
    let server = try #require(config.upstream(named: "balancer")?.servers.first)
    // By its Service name, as in a cluster: the local stack's dnsmasq answers it.
    #expect(server.host == "rtc-balancer.rtc.svc.cluster.local")
    #expect(server.address == nil)
    #expect(server.port == 8081)
    guard case .proxy(.dynamic(let host, 8080)) = config.routes.routes[1].action else {
        Issue.record("pod route is not a dynamic upstream on 8080")
        return
    }
    #expect(host.source == "$podid.socket.rtc.svc.cluster.local")
}
