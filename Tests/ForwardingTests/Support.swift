// Shared test fixtures: a configuration with every kind of route, and head parsing/rewriting helpers.
import Forwarding
import GatewayConfig
import HTTP1
import Routing
import Testing

/// Routes in file order: 0 balancer, 1 socket, 2 api (set_header), 3 plain (named upstream on port 80),
/// 4 optional capture, 5 echo (websocket off), 6 default.
let testConfigText = """
    listen 0.0.0.0:8080;
    upstream balancer { server rtc-balancer.${POD_NAMESPACE}.svc.cluster.local:8081; keepalive 64; }
    upstream web { server web.internal:80; server web2.internal:8000; }
    route exact /ws/connect { proxy http://balancer; }
    route regex "^/ws/(?<podid>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/connect$" {
        websocket on;
        rewrite /ws/connect;
        proxy http://$podid.socket.${POD_NAMESPACE}.svc.cluster.local:8080;
    }
    route regex "^/api/(?<name>[a-z]+)$" {
        rewrite /v2/$name/items;
        proxy http://web;
        set_header X-Api "name=$name";
        set_header user-agent "rtc-gateway";
        set_header Host "api.internal";
        set_header X-Forwarded-Proto "https";
    }
    route prefix /plain/ { proxy http://web; }
    route regex "^/opt(?<tail>/x)?$" { proxy http://web; set_header X-Tail "$tail"; }
    route exact /echo { proxy http://balancer; }
    route default { return 404; }
    """

let testConfig: GatewayConfig = {
    switch loadConfig(text: testConfigText, file: "test.conf", environment: ["POD_NAMESPACE": "rtc"], cores: 1) {
    case .success(let config): return config
    case .failure(let errors): fatalError("test config rejected: \(errors)")
    }
}()

/// A parser holding the complete head `text` (CRLF line ends as written); records an issue when it does not parse.
func parsed(_ text: String, kind: HeadParser.Kind = .request) -> HeadParser {
    var parser = HeadParser(kind: kind)
    let bytes = Array(text.utf8)
    let step = parser.parse(bytes)
    #expect(step == .complete(consumed: bytes.count), "\(text)")
    return parser
}

/// The upstream head for `request` through `config`'s routes, the id it carries, and the route index used.
func rewrite(
    _ request: String, config: GatewayConfig = testConfig, server: Int = 0, client: String = "203.0.113.9",
    scheme: Scheme = .http, seed: UInt64 = 0
) -> (head: String, id: RequestID, route: Int)? {
    let head = parsed(request)
    let matcher = Matcher(for: config.routes)
    let decision = config.routes.decide(
        path: Array(head.path), isWebSocketUpgrade: head.isWebSocketUpgrade, matcher: matcher)
    guard case .proxy(let route) = decision else {
        Issue.record("not proxied: \(decision)")
        return nil
    }
    let rewriter = RequestRewriter(config: config)
    var ids = RequestIDGenerator(seed: seed)
    var out: [UInt8] = []
    let id = rewriter.writeUpstreamHead(
        request: head, route: route, server: server, matcher: matcher, clientAddress: Array(client.utf8),
        scheme: scheme, requestIDs: &ids, into: &out)
    return (String(decoding: out, as: UTF8.self), id, route)
}

/// First id of `RequestIDGenerator(seed: 0)`: SplitMix64 outputs 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4.
let firstGeneratedID = "e220a8397b1dcdaf6e789e6aa1b965f4"
