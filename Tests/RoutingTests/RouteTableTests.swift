// Route table tests: precedence, captures, decisions, and hostile pod ids that must never reach DNS.
import Routing
import Testing

private func pattern(_ source: String) -> Pattern { try! Pattern(compiling: source) }

private let podRegex = "^/ws/(?<podid>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/connect$"

private func precedenceTable() -> RouteTable {
    RouteTable(routes: [
        Route(matching: .regex(pattern("^/api/(?<rest>.*)$")), action: .respond(status: 201, body: [])),
        Route(matching: .prefix(Array("/api/".utf8)), action: .respond(status: 202, body: [])),
        Route(matching: .prefix(Array("/api/v1/".utf8)), action: .respond(status: 203, body: [])),
        Route(matching: .exact(Array("/api/v1/users".utf8)), action: .respond(status: 204, body: [])),
        Route(matching: .regex(pattern("^/files/")), action: .respond(status: 205, body: [])),
        Route(matching: .regex(pattern("^/f")), action: .respond(status: 206, body: [])),
        Route(matching: .default, action: .respond(status: 404, body: [])),
        Route(matching: .exact(Array("/exact".utf8)), action: .respond(status: 207, body: [])),
    ])
}

@Test(arguments: [
    ("/api/v1/users", 3),  // exact beats every prefix and regex, though it comes later in the file
    ("/api/v1/users/7", 2),  // longest prefix wins over a shorter one listed first
    ("/api/v2", 1),  // prefix beats a regex listed first
    ("/files/a", 4),  // regexes in file order: the first matching one wins
    ("/foo", 5),
    ("/exact", 7),
    ("/exact/", 6),  // exact means exact
    ("/nothing", 6),
    ("", 6),
])
func precedence(path: String, expected: Int) {
    let matcher = Matcher(captureCapacity: 0)
    #expect(precedenceTable().match(path: Array(path.utf8), matcher: matcher) == expected)
}

@Test func noDefaultMeansNotFound() {
    let table = RouteTable(routes: [Route(matching: .exact(Array("/a".utf8)), action: .respond(status: 200, body: []))])
    let matcher = Matcher(for: table)
    #expect(table.match(path: Array("/b".utf8), matcher: matcher) == nil)
    #expect(table.decide(path: Array("/b".utf8), isWebSocketUpgrade: false, matcher: matcher) == .notFound)
    #expect(table.decide(path: Array("/a".utf8), isWebSocketUpgrade: false, matcher: matcher) == .respond(route: 0))
}

@Test func manyExactRoutesAllFound() {
    let routes = (0..<100).map {
        Route(matching: .exact(Array("/p\($0)".utf8)), action: .respond(status: 200, body: []))
    }
    let table = RouteTable(routes: routes)
    let matcher = Matcher(for: table)
    for index in 0..<100 { #expect(table.match(path: Array("/p\(index)".utf8), matcher: matcher) == index) }
    #expect(table.match(path: Array("/p100".utf8), matcher: matcher) == nil)
}

@Test func namedCapturesAndSpans() throws {
    let regex = pattern("^/u/(?<user>[a-z]+)/(\\d+)(?<opt>x)?$")
    #expect(regex.captureCount == 3)
    #expect(regex.isJITCompiled)
    #expect(regex.captureNames == ["user": 1, "opt": 3])
    let matcher = Matcher(captureCapacity: 0)  // grows on first use
    let path = Array("/u/alice/42".utf8)
    let matched = path.withUnsafeBytes { matcher.match(regex, $0) }
    #expect(matched)
    #expect(matcher.span(0) == 0..<11)
    #expect(matcher.span(1) == 3..<8)
    #expect(matcher.span(2) == 9..<11)
    #expect(matcher.span(3) == nil)  // optional group that did not take part
    #expect(matcher.span(4) == nil)
    let missed = Array("/u/Alice/42".utf8).withUnsafeBytes { matcher.match(regex, $0) }
    #expect(!missed)
    #expect(matcher.span(0) == nil)
}

@Test func compileErrorCarriesPCRE2MessageAndOffset() {
    #expect(throws: PatternError(message: "missing closing parenthesis", offset: 5)) {
        try Pattern(compiling: "^/a/(")
    }
}

private func podTable(regex: String) -> RouteTable {
    let compiled = pattern(regex)
    let host = try! Template(parsing: "$podid.socket.rtc.svc.cluster.local", pattern: compiled)
    return RouteTable(routes: [
        Route(matching: .exact(Array("/ws/connect".utf8)), action: .proxy(.named("balancer"))),
        Route(
            matching: .regex(compiled), websocket: true, action: .proxy(.dynamic(host: host, port: 8080)),
            rewrite: try! Template(parsing: "/ws/connect", pattern: compiled)),
    ])
}

@Test func podRouteDecisions() {
    let table = podTable(regex: podRegex)
    let matcher = Matcher(for: table)
    let path = Array("/ws/socket-7d9f-abc12/connect".utf8)
    #expect(table.decide(path: path, isWebSocketUpgrade: true, matcher: matcher) == .proxy(route: 1))
    var host: [UInt8] = []
    guard case .proxy(.dynamic(let template, let port)) = table.routes[1].action else {
        Issue.record("not a dynamic upstream")
        return
    }
    path.withUnsafeBytes { template.render(captures: matcher, path: $0, into: &host) }
    #expect(String(decoding: host, as: UTF8.self) == "socket-7d9f-abc12.socket.rtc.svc.cluster.local")
    #expect(port == 8080)
    // A plain GET to the WebSocket route is 426, not a proxied request.
    #expect(table.decide(path: path, isWebSocketUpgrade: false, matcher: matcher) == .upgradeRequired(route: 1))
    // An upgrade on a websocket-off route is forwarded as plain HTTP (the upgrade is ignored).
    #expect(
        table.decide(path: Array("/ws/connect".utf8), isWebSocketUpgrade: true, matcher: matcher) == .proxy(route: 0))
}

private let hostilePodIDs: [String] = [
    "Socket-1", "-a", "a-", String(repeating: "a", count: 64), "a.b", "%2e", "..", "", "sö", "a_b", "a b", "a%00",
    "a\u{0}b", "\u{0130}", ".", "a..b", "x.socket.evil.com#",
]

@Test(arguments: hostilePodIDs)
func hostilePodIDNeverProxied(id: String) {
    // Both the production regex and a deliberately loose one: the automatic label check guards the second.
    for regex in [podRegex, "^/ws/(?<podid>[^/]*)/connect$"] {
        let table = podTable(regex: regex)
        let matcher = Matcher(for: table)
        let path = Array("/ws/\(id)/connect".utf8)
        #expect(table.decide(path: path, isWebSocketUpgrade: true, matcher: matcher) == .notFound, "\(regex)")
    }
}

@Test func looseRegexStillProxiesAGoodLabel() {
    let table = podTable(regex: "^/ws/(?<podid>[^/]*)/connect$")
    let matcher = Matcher(for: table)
    let id = String(repeating: "a", count: 63)
    #expect(
        table.decide(path: Array("/ws/\(id)/connect".utf8), isWebSocketUpgrade: true, matcher: matcher)
            == .proxy(route: 1))
}

@Test(arguments: [
    ("a", true), ("0", true), ("a-b", true), ("a--b", true), (String(repeating: "z", count: 63), true),
    ("", false), ("-a", false), ("a-", false), ("A", false), ("a.b", false), ("a_b", false),
    (String(repeating: "z", count: 64), false), ("é", false),
])
func hostLabelRule(text: String, expected: Bool) {
    #expect(Array(text.utf8).withUnsafeBytes { isHostLabel($0) } == expected)
}
