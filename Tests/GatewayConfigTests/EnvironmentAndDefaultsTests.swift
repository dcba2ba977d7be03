// `${VAR}` expansion, `$` handling, defaults, and the config hash.
import DNS
import GatewayConfig
import Routing
import Testing

private let minimal = "listen 127.0.0.1:8080;\n"

private func load(
    _ text: String, environment: [String: String] = [:], cores: Int = 4
) -> Result<GatewayConfig, ConfigErrors> {
    loadConfig(text: text, file: "t.conf", environment: environment, cores: cores)
}

@Test(arguments: [("auto", Events.auto), ("epoll", .epoll), ("io_uring", .ioURing)])
func eventsChoice(word: String, expected: Events) throws {
    #expect(try load("events \(word);\n" + minimal).get().events == expected)
}

@Test func defaults() throws {
    let config = try load(minimal, cores: 8).get()
    #expect(config.workers == 8)
    #expect(config.events == nil)
    #expect(config.openFileLimit == .unchanged)
    #expect(config.admin == BindAddress(host: .v4(IPv4Address(0, 0, 0, 0)), port: 9113))
    #expect(config.resolver == .defaults)
    #expect(config.timeouts == Timeouts())
    #expect(config.timeouts.tunnelIdle == .seconds(3600))
    #expect(config.limits.headerSize == 32768)
    #expect(config.limits.uriLength == 8192)
    #expect(config.limits.headerCount == 100)
    #expect(config.limits.bodySize == 1_048_576)
    #expect(config.limits.perClientIP == nil)
    #expect(config.accessLog == .off)
    #expect(config.routes.routes.isEmpty)
}

@Test func valueSyntax() throws {
    let text = """
        listen [::1]:8443 tls cert=/etc/tls/c.pem key=/etc/tls/k.pem;
        listen 0.0.0.0:80;
        workers 3;
        worker_rlimit_nofile 65536;
        resolver 10.0.0.10 [fd00::a]:5353 valid=250ms timeout=1m attempts=3;
        access_log /var/log/gw.jsonl;
        timeouts { drain 0; client_header 2m; upstream_response 1d; }
        limits { body_size 1g; header_size 512; }
        """
    let config = try load(text).get()
    #expect(config.listeners[0].address.description == "[::1]:8443")
    #expect(config.listeners[0].tls == TLSFiles(certificate: "/etc/tls/c.pem", key: "/etc/tls/k.pem"))
    #expect(config.listeners[1].tls == nil)
    #expect(config.workers == 3)
    #expect(config.openFileLimit == .count(65536))
    #expect(
        config.resolver.servers
            == .addresses([
                BindAddress(host: .v4(IPv4Address(10, 0, 0, 10)), port: 53),
                BindAddress(host: IPAddress(parsing: "fd00::a")!, port: 5353),
            ]))
    #expect(config.resolver.valid == .milliseconds(250))
    #expect(config.resolver.timeout == .seconds(60))
    #expect(config.resolver.attempts == 3)
    #expect(config.accessLog == .file("/var/log/gw.jsonl"))
    #expect(config.timeouts.drain == .zero)
    #expect(config.timeouts.clientHeader == .seconds(120))
    #expect(config.timeouts.upstreamResponse == .seconds(86400))
    #expect(config.limits.bodySize == 1 << 30)
    #expect(config.limits.headerSize == 512)
}

@Test func environmentExpandsInWordsAndStrings() throws {
    let text =
        minimal + """
            upstream u { server ${HOST}:${PORT}; }
            route exact "/${PREFIX}/x" { proxy http://u; set_header X-Env "${HOST}-$$HOST"; }
            """
    let config = try load(text, environment: ["HOST": "b.example", "PORT": "81", "PREFIX": "p"]).get()
    #expect(config.upstreams[0].servers[0].host == "b.example")
    #expect(config.upstreams[0].servers[0].port == 81)
    #expect(config.routes.routes[0].label == "exact /p/x")
    // `$$` survives expansion and is the template's literal `$`; `$HOST` was never an env reference.
    #expect(config.routes.routes[0].headers[0].value.literalBytes == Array("b.example-$HOST".utf8))
}

@Test func dollarWithoutBracesIsACaptureNotAnEnvironmentVariable() {
    let text = minimal + "route exact /a {\n    proxy http://$HOST:80;\n}\n"
    let result = load(text, environment: ["HOST": "evil.example"])
    guard case .failure(let errors) = result else {
        Issue.record("accepted")
        return
    }
    #expect(
        errors.description.hasPrefix("t.conf:3: the host template '$HOST:80' uses a capture on a route of kind 'exact'")
    )
}

@Test(arguments: [
    ("listen ${ADDR}:8080;", "t.conf:1: environment variable 'ADDR' is not set"),
    ("listen 127.0.0.1:8080;\nworkers ${N", "t.conf:2: unterminated '${': expected '}' after the variable name"),
    ("listen 127.0.0.1:8080;\nworkers \"${N\";", "t.conf:2: unterminated '${': expected '}' after the variable name"),
    ("listen 127.0.0.1:8080;\nworkers ${1N};", "t.conf:2: invalid environment variable name '${1N}'"),
    (
        "listen 127.0.0.1:8080;\n\nworkers \"${EMPTY}\";",
        "t.conf:3: 'workers' expects 'auto' or a number from 1 to 4096, got ''"
    ),
])
func environmentErrors(text: String, expected: String) {
    let result = load(text, environment: ["EMPTY": ""])
    guard case .failure(let errors) = result else {
        Issue.record("accepted")
        return
    }
    #expect(errors.description == expected)
}

@Test func configHashIgnoresCommentsButNotValues() throws {
    let a = try load("listen 127.0.0.1:8080;\nworkers ${N};", environment: ["N": "2"]).get().configHash
    let b = try load("# comment\nlisten   127.0.0.1:8080; # here\n\nworkers ${N};", environment: ["N": "2"]).get()
        .configHash
    let c = try load("listen 127.0.0.1:8080;\nworkers ${N};", environment: ["N": "3"]).get().configHash
    let d = try load("listen 127.0.0.1:8080;\nworkers 2;").get().configHash
    #expect(a == b)
    #expect(a != c)
    #expect(a == d)
}

@Test func stringEscapes() throws {
    let text = minimal + #"route exact /q { return 200 "a \"quoted\" back\\slash \d"; }"#
    let config = try load(text).get()
    #expect(config.routes.routes[0].action == .respond(status: 200, body: Array(#"a "quoted" back\slash \d"#.utf8)))
}

/// Passive health on `server` lines (nginx's `max_fails` / `fail_timeout`, same defaults) and
/// `request_buffering` per route (on by default).
@Test func passiveHealthAndRequestBuffering() throws {
    let text = """
        listen 127.0.0.1:8080;
        upstream up {
            server a.example:80 max_fails=3 fail_timeout=30s weight=2;
            server b.example:80;
            server c.example:80 max_fails=0;
        }
        route exact /stream { proxy http://up; request_buffering off; }
        route exact /buffered { proxy http://up; request_buffering on; }
        route default { proxy http://up; }
        """
    let config = try load(text).get()
    let servers = config.upstreams[0].servers
    #expect(servers[0].maxFails == 3 && servers[0].failTimeout == .seconds(30) && servers[0].weight == 2)
    #expect(servers[1].maxFails == 1 && servers[1].failTimeout == .seconds(10))
    #expect(servers[2].maxFails == 0)
    #expect(config.requestBuffering == [false, true, true])
}
