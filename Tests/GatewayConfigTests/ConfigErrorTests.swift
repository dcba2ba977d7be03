// Each directive rejects a broken variant of a valid base config with the right `file:line:` and message.
import Foundation
import GatewayConfig
import Routing
import Testing

// Line numbers matter: the expectations below refer to them.
let baseConfig = """
    workers auto;
    worker_rlimit_nofile max;
    listen 0.0.0.0:8080;
    admin 0.0.0.0:9113;
    resolver system valid=30s;
    upstream balancer {
        server rtc-balancer.${POD_NAMESPACE}.svc.cluster.local:8081 weight=2;
        keepalive 64;
        connect_timeout 2s;
    }
    timeouts {
        client_header 10s;
        client_keepalive 75s;
        upstream_connect 2s;
        upstream_response 15s;
        tunnel_idle 1h;
        drain 60s;
    }
    limits {
        header_size 16k;
        uri_length 8k;
        header_count 100;
        body_size 64k;
        max_connections 1000000;
        per_client_ip 2000;
    }
    access_log off;
    route exact /ws/connect {
        proxy http://balancer;
        set_header X-Gateway "rtc";
    }
    route regex "^/ws/(?<podid>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/connect$" {
        websocket on;
        rewrite /ws/connect;
        proxy http://$podid.socket.${POD_NAMESPACE}.svc.cluster.local:8080;
    }
    route prefix /static/ {
        return 404 "no static files";
    }
    route default {
        return 404;
    }

    """

struct Variant: Sendable, CustomStringConvertible {
    let old: String
    let new: String
    let line: Int
    let fragment: String
    var description: String { "\(old) → \(new)" }
}

private func variant(_ old: String, _ new: String, _ line: Int, _ fragment: String) -> Variant {
    Variant(old: old, new: new, line: line, fragment: fragment)
}

private let variants: [Variant] = [
    // Main context
    variant("workers auto;", "workers zero;", 1, "'workers' expects 'auto' or a number"),
    variant("workers auto;", "workers auto 2;", 1, "wrong number of arguments for 'workers': expected 1, got 2"),
    variant("workers auto;", "workers auto;\nevents kqueue;", 2, "'events' expects 'auto', 'epoll' or 'io_uring'"),
    variant("workers auto;", "workers auto;\nevents;", 2, "wrong number of arguments for 'events'"),
    variant("workers auto;", "events epoll;\nevents auto;", 2, "duplicate 'events' (first at line 1)"),
    variant(
        "worker_rlimit_nofile max;", "worker_rlimit_nofile max;\nworkers 4;", 3,
        "duplicate 'workers' (first at line 1)"),
    variant("worker_rlimit_nofile max;", "worker_rlimit_nofile lots;", 2, "'worker_rlimit_nofile' expects 'max'"),
    variant("listen 0.0.0.0:8080;", "listen 0.0.0.0:99999;", 3, "'listen' expects an IP address and port"),
    variant("listen 0.0.0.0:8080;", "listen 0.0.0.0:8080 tls cert=/c.pem;", 3, "needs both cert=PATH and key=PATH"),
    variant("listen 0.0.0.0:8080;", "listen 0.0.0.0:8080 ssl;", 3, "'listen' expects 'tls' after the address"),
    variant("listen 0.0.0.0:8080;", "", 1, "no 'listen' directive"),
    variant("admin 0.0.0.0:9113;", "admin localhost:9113;", 4, "'admin' expects an IP address and port"),
    variant("admin 0.0.0.0:9113;", "admin 0.0.0.0:9113 { }", 4, "'admin' does not take a block"),
    variant("valid=30s", "valid=soon", 5, "'resolver' valid= expects a duration"),
    variant("valid=30s", "attempts=0", 5, "'resolver' attempts= expects a number from 1 to 10"),
    variant("resolver system", "resolver system 10.0.0.1", 5, "either 'system' or server addresses"),
    variant("resolver system", "resolver 10.0.0.256", 5, "'resolver' expects an IP address"),
    variant("access_log off;", "access_log syslog;", 27, "'access_log' expects off, stdout or an absolute path"),
    variant("access_log off;", "gzip on;", 27, "unknown directive 'gzip'"),
    variant("access_log off;", "keepalive 3;", 27, "'keepalive' is not allowed in the main context"),
    // Upstream block
    variant("upstream balancer {", "upstream balancer;\nupstream other {", 6, "'upstream' needs a block { ... }"),
    variant("local:8081 weight=2", "local weight=2", 7, "'server' expects HOST:PORT"),
    variant("local:8081 weight=2", "local:8081 weight=0", 7, "'server' expects weight=N"),
    variant("local:8081 weight=2", "local:8081 max_fails=x", 7, "'server' expects max_fails=N (0 to 1000)"),
    variant("local:8081 weight=2", "local:8081 fail_timeout=soon", 7, "'fail_timeout' expects a duration"),
    variant("local:8081 weight=2", "local:8081 backup", 7, "'server' expects weight=N, max_fails=N or fail_timeout"),
    variant("rtc-balancer.${POD_NAMESPACE}", "rtc_balancer.${POD_NAMESPACE}", 7, "'server' expects HOST:PORT"),
    variant(
        "    server rtc-balancer.${POD_NAMESPACE}.svc.cluster.local:8081 weight=2;\n", "", 6,
        "upstream 'balancer' has no 'server'"),
    variant("keepalive 64;", "keepalive many;", 8, "'keepalive' expects a number of connections"),
    variant("keepalive 64;", "tunnel_idle 1h;", 8, "'tunnel_idle' is not allowed in 'upstream'"),
    variant("connect_timeout 2s;", "connect_timeout 2x;", 9, "'connect_timeout' expects a duration"),
    variant("connect_timeout 2s;", "keepalive_timeout 0s;", 9, "'keepalive_timeout' expects a duration"),
    variant("connect_timeout 2s;", "keepalive_timeout 1s 2s;", 9, "wrong number of arguments for 'keepalive_timeout'"),
    variant("connect_timeout 2s;", "connect_timeout 2s", 9, "missing ';' after 'connect_timeout'"),
    // Timeouts block
    variant("client_header 10s;", "client_header 10 s;", 12, "wrong number of arguments for 'client_header'"),
    variant("client_keepalive 75s;", "client_keepalive 0s;", 13, "'client_keepalive' expects a duration"),
    variant("upstream_connect 2s;", "upstream_connect fast;", 14, "'upstream_connect' expects a duration"),
    variant("upstream_response 15s;", "upstream_response 15w;", 15, "'upstream_response' expects a duration"),
    variant(
        "tunnel_idle 1h;", "tunnel_idle 1h;\n    tunnel_idle 2h;", 17, "duplicate 'tunnel_idle' (first at line 16)"),
    variant("drain 60s;", "drain -1;", 17, "'drain' expects a duration"),
    // Limits block
    variant("header_size 16k;", "header_size 16q;", 20, "'header_size' expects a size"),
    variant("uri_length 8k;", "uri_length big;", 21, "'uri_length' expects a size"),
    variant("header_count 100;", "header_count 1k;", 22, "'header_count' expects a positive number"),
    variant("body_size 64k;", "body_size -1;", 23, "'body_size' expects a size"),
    variant("max_connections 1000000;", "max_connections 0;", 24, "'max_connections' expects a positive number"),
    variant("per_client_ip 2000;", "per_client_ip x;", 25, "'per_client_ip' expects a positive number"),
    variant("per_client_ip 2000;", "drain 1s;", 25, "'drain' is not allowed in 'limits'"),
    // Routes
    variant("route prefix /static/", "route glob /static/", 37, "'route' expects exact, prefix, regex or default"),
    variant("route prefix /static/", "route prefix static/", 37, "pattern must start with '/'"),
    variant(
        "route prefix /static/", "route exact /ws/connect", 37,
        "duplicate route 'exact /ws/connect' (first at line 28)"),
    variant("route default {", "route default /x {", 40, "'route default' takes no pattern"),
    variant("proxy http://balancer;", "proxy http://balancers;", 29, "proxy to undefined upstream 'balancers'"),
    variant("proxy http://balancer;", "proxy https://balancer;", 29, "'proxy' expects a URL starting with http://"),
    variant("proxy http://balancer;", "proxy http://balancer/x;", 29, "must not carry a path or query"),
    variant(
        "proxy http://balancer;", "proxy http://$podid.socket:8080;", 29,
        "uses a capture on a route of kind 'exact'; only regex routes have captures"),
    variant("svc.cluster.local:8080;", "svc.cluster.local:80x;", 35, "'proxy' host template has a bad port"),
    variant("proxy http://$podid.socket", "proxy http://$podid..socket", 35, "does not form a DNS name"),
    variant(
        "    set_header X-Gateway \"rtc\";\n", "    return 200;\n", 30,
        "one 'proxy' or 'return', not both (first at line 29)"),
    variant("    return 404 \"no static files\";\n", "", 37, "route 'prefix' has neither 'proxy' nor 'return'"),
    variant("return 404;", "return 4040;", 41, "'return' expects a status from 200 to 599"),
    variant(
        "proxy http://balancer;", "proxy http://balancer;\n    request_buffering maybe;", 30,
        "'request_buffering' expects on or off, got 'maybe'"),
    variant(
        "    return 404 \"no static files\";\n", "    return 404;\n    request_buffering off;\n", 39,
        "'request_buffering off' needs 'proxy', not 'return'"),
    variant("return 404;", "return;", 41, "wrong number of arguments for 'return': expected 1 to 2, got 0"),
    variant("(?<podid>", "((?<podid>", 32, "regex does not compile: missing closing parenthesis at offset"),
    variant(
        "rewrite /ws/connect;", "rewrite /ws/$pod/connect;", 34,
        "capture '$pod' is not a named group of the route's regex"),
    variant("rewrite /ws/connect;", "rewrite ws;", 34, "'rewrite' must produce a path starting with '/'"),
    variant("websocket on;", "websocket yes;", 33, "'websocket' expects on or off"),
    variant(
        "route default {\n    return 404;", "route default {\n    websocket on;\n    return 404;", 41,
        "'websocket on' needs 'proxy'"),
    variant("set_header X-Gateway \"rtc\";", "set_header \"X Gateway\" rtc;", 30, "is not a valid header field name"),
    variant(
        "set_header X-Gateway \"rtc\";", "set_header Transfer-Encoding chunked;", 30,
        "'set_header' cannot set 'Transfer-Encoding'"),
    variant(
        "set_header X-Gateway \"rtc\";", "set_header connection close;", 30, "'set_header' cannot set 'connection'"),
    variant(
        "set_header X-Gateway \"rtc\";", "set_header X-Gateway;", 30,
        "wrong number of arguments for 'set_header': expected 2, got 1"),
    variant(
        "set_header X-Gateway \"rtc\";", "set_header X-Gateway \"a $ b\";", 30, "'$' must be followed by a capture"),
    variant(
        "set_header X-Gateway \"rtc\";", "set_header X-Gateway $podid;", 30,
        "capture '$podid' used on a route without a regex"),
    // Syntax
    variant("access_log off;", "access_log off", 27, "missing ';' after 'access_log'"),
    variant(
        "route default {\n    return 404;\n}", "route default {\n    return 404;\n", 40,
        "the '{' of 'route' opened here is never closed"),
    variant(
        "route default {\n    return 404;\n}", "route default {\n    return 404;\n}\n}", 43,
        "unexpected '}': no block is open"),
    variant("access_log off;", "access_log off;;", 27, "unexpected ';' without a directive"),
    variant("\"no static files\"", "\"no static files", 38, "unterminated string"),
    // Environment
    variant(
        "rtc-balancer.${POD_NAMESPACE}", "rtc-balancer.${NAMESPACE}", 7, "environment variable 'NAMESPACE' is not set"),
    variant("socket.${POD_NAMESPACE}.svc", "socket.${POD_NAMESPACE.svc", 35, "unterminated '${'"),
    variant("rtc-balancer.${POD_NAMESPACE}", "rtc-balancer.${}", 7, "invalid environment variable name '${}'"),
]

@Test func baseConfigLoads() throws {
    let config = try loadConfig(text: baseConfig, file: "base.conf", environment: testEnvironment, cores: 3).get()
    #expect(config.routes.routes.count == 4)
    #expect(config.upstreams[0].servers[0].weight == 2)
    #expect(config.upstreams[0].connectTimeout == .seconds(2))
    // Not set in the file: nginx's upstream keepalive_timeout default.
    #expect(config.upstreams[0].keepaliveTimeout == .seconds(60))
    let custom = baseConfig.replacingOccurrences(of: "connect_timeout 2s;", with: "keepalive_timeout 1500ms;")
    let set = try loadConfig(text: custom, file: "base.conf", environment: testEnvironment, cores: 3).get()
    #expect(set.upstreams[0].keepaliveTimeout == .milliseconds(1500))
    #expect(
        config.routes.routes[0].headers == [
            HeaderSetting(name: Array("X-Gateway".utf8), value: try Template(parsing: "rtc", pattern: nil))
        ])
    #expect(config.routes.routes[2].action == .respond(status: 404, body: Array("no static files".utf8)))
}

@Test(arguments: variants)
func rejectsBrokenVariant(_ variant: Variant) throws {
    let text = try #require(
        baseConfig.range(of: variant.old).map { baseConfig.replacingCharacters(in: $0, with: variant.new) })
    let result = loadConfig(text: text, file: "gateway.conf", environment: testEnvironment, cores: 3)
    guard case .failure(let errors) = result else {
        Issue.record("accepted: \(variant)")
        return
    }
    let first = try #require(errors.errors.first)
    #expect(first.description.hasPrefix("gateway.conf:\(variant.line): "), "\(errors)")
    #expect(first.message.contains(variant.fragment), "\(errors)")
}

@Test func everyErrorIsReportedOnItsOwnLine() {
    let text = "workers 0;\nlisten 1.2.3.4:80;\nfoo;\nlimits {\n    body_size x;\n}\n"
    let result = loadConfig(text: text, file: "a.conf", environment: [:], cores: 1)
    guard case .failure(let errors) = result else {
        Issue.record("accepted")
        return
    }
    #expect(
        errors.description == """
            a.conf:1: 'workers' expects 'auto' or a number from 1 to 4096, got '0'
            a.conf:3: unknown directive 'foo'
            a.conf:5: 'body_size' expects a size like 16k, 1m or a byte count, got 'x'
            """)
}
