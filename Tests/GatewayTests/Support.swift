// End-to-end test support: the real rtc-gateway with a Python upstream, WebSocket echo servers and dnsmasq.
import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where the programs and scripts the tests start live.
enum Paths {
    /// The package root, three levels above this file (`Tests/GatewayTests/Support.swift`).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    /// `RTC_GATEWAY_BIN`, else the debug build that `swift build --build-tests` (and `make test`) produces.
    static var gateway: String {
        ProcessInfo.processInfo.environment["RTC_GATEWAY_BIN"] ?? packageRoot + "/.build/debug/rtc-gateway"
    }
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures"
    ).path
    /// Debian's Python: the one that sees `python3-websockets` (PLATFORM.md).
    static let python = "/usr/bin/python3"
    static let curl = "/usr/bin/curl"
    static let wrk = "/usr/bin/wrk"
    static let promtool = "/usr/bin/promtool"
}

/// Thrown when a process or server the test needs did not come up.
struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Hands each stack its own `127.0.N.0/24` so servers of different tests never share an address.
private let nextNetwork = Atomic<Int>(0)

func allocateNetwork() -> String {
    let index = nextNetwork.add(1, ordering: .relaxed).oldValue
    let third = 40 + (Int(getpid()) &+ index) % 200
    return "127.0.\(third)."
}

func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

// MARK: The stack

/// What one test's gateway is configured with.
struct StackSettings {
    var timeouts = ["client_header 2s", "upstream_connect 1s", "upstream_response 1s", "drain 2s"]
    var limits = ["body_size 6m"]
    /// Extra upstream blocks (before the routes).
    var upstreams = ""
    /// Extra routes, placed before the default route.
    var routes = ""
    /// TTL of every DNS answer dnsmasq gives.
    var dnsTTL = 30
    /// The resolver's `valid=` cap.
    var resolverValid = "30s"
    /// Start the WebSocket echo servers (pod-a on .3; with `secondEcho` also one on .4).
    var echo = true
    var secondEcho = false
    /// A second HTTP upstream on .6 (same port), and the balancer name answering with .2 and .6.
    var secondUpstream = false
    /// The balancer name also answers with .9, where nothing listens (a dead address).
    var deadBalancerAddress = false
    /// Extra arguments of the balancer's `server` line (`max_fails=...`).
    var balancerServerExtra = ""
    /// Extra directives inside the balancer's upstream block.
    var balancerExtra = ""

    var workers = 2
    var extraMain = ""

    /// For tests that open a thousand tunnels or more at once: the Python echo upstream answers a burst of
    /// handshakes slowly on a loaded machine, so the wait for its 101 (`upstream_response`) must not be the 1 s
    /// the other tests use to provoke 504s quickly.
    static var manyTunnels: StackSettings {
        var settings = StackSettings()
        settings.timeouts = settings.timeouts.map { $0.hasPrefix("upstream_response") ? "upstream_response 15s" : $0 }
        return settings
    }
}

/// One test's servers: dnsmasq, the Python upstream (balancer stand-in), WebSocket echo servers, the gateway.
///
/// Addresses inside the stack's `127.0.N.0/24`: .1 gateway and admin, .2 upstream, .3 echo (pod-a), .4 second
/// echo, .9 nothing. Everything is stopped by pid in `stop()`, and by the `ChildProcess` deinits if a test throws.
final class Stack: @unchecked Sendable {
    static let balancerName = "rtc-balancer.rtc.svc.cluster.local"
    static let podSuffix = ".socket.rtc.svc.cluster.local"

    let settings: StackSettings
    let net: String
    let directory: String
    let dns: Dnsmasq
    let upstream: ChildProcess
    let echo: ChildProcess?
    let echo2: ChildProcess?
    let upstream2: ChildProcess?
    private(set) var gateway: ChildProcess!
    let gatewayPort = freeTCPPort()
    let adminPort = freeTCPPort()
    let upstreamPort = freeTCPPort()
    let echoPort = freeTCPPort()
    let configPath: String
    let gatewayLog: String
    private let counter = Atomic<Int>(0)

    var host: String { net + "1" }
    var upstreamHost: String { net + "2" }
    var echoHost: String { net + "3" }
    var echo2Host: String { net + "4" }
    var upstream2Host: String { net + "6" }
    var deadHost: String { net + "9" }

    init(_ settings: StackSettings = StackSettings()) throws {
        let gatewayBinary = Paths.gateway
        guard FileManager.default.isExecutableFile(atPath: gatewayBinary) else {
            throw SetupError("no gateway binary at \(gatewayBinary): run `swift build` or set RTC_GATEWAY_BIN")
        }
        self.settings = settings
        net = allocateNetwork()
        let scratch = try makeTemporaryDirectory("gateway-e2e")
        directory = scratch
        // When init throws, deinit may not run: the directory goes here (started processes go with their deinit).
        var started = false
        defer { if !started { try? FileManager.default.removeItem(atPath: scratch) } }
        configPath = directory + "/gateway.conf"
        gatewayLog = directory + "/gateway.log"
        var waits: [(log: String, name: String)] = []
        /// Starts a fixture server on `host` when `wanted`; its log is waited on below.
        func fixture(
            _ script: String, _ host: String, _ port: UInt16, _ name: String, wanted: Bool = true
        ) throws
            -> ChildProcess?
        {
            guard wanted else { return nil }
            let log = scratch + "/" + name.replacingOccurrences(of: " ", with: "-") + ".log"
            waits.append((log, name))
            return try ChildProcess(
                Paths.python, ["-u", Paths.fixtures + "/" + script, host, "\(port)"], logPath: log)
        }
        upstream = try fixture("upstream.py", net + "2", upstreamPort, "upstream")!
        echo = try fixture("wsecho.py", net + "3", echoPort, "echo", wanted: settings.echo)
        echo2 = try fixture("wsecho.py", net + "4", echoPort, "second echo", wanted: settings.secondEcho)
        upstream2 = try fixture(
            "upstream.py", net + "6", upstreamPort, "second upstream", wanted: settings.secondUpstream)
        let balancerAddresses =
            (settings.secondUpstream ? [net + "2", net + "6"] : [net + "2"])
            + (settings.deadBalancerAddress ? [net + "9"] : [])
        dns = try Self.startDnsmasq(
            records: [Self.balancerName: balancerAddresses, "pod-a" + Self.podSuffix: [net + "3"]], ttl: settings.dnsTTL
        )
        for (log, name) in waits {
            guard waitUntil(timeout: .seconds(10), { readText(log).contains("listening") }) else {
                throw SetupError("the \(name) server did not start: \(readText(log))")
            }
        }
        try config().write(toFile: configPath, atomically: true, encoding: .utf8)
        gateway = try Self.startGateway(configPath: configPath, log: gatewayLog)
        started = true
    }

    /// dnsmasq on a free UDP port; tried again when the port was taken between the check and the bind.
    private static func startDnsmasq(records: [String: [String]], ttl: Int) throws -> Dnsmasq {
        var attempt = 0
        while true {
            do {
                return try Dnsmasq(records: records, ttl: ttl)
            } catch {
                attempt += 1
                if attempt == 3 { throw error }
            }
        }
    }

    private static func startGateway(configPath: String, log: String) throws -> ChildProcess {
        let process = try ChildProcess(Paths.gateway, ["--config", configPath], logPath: log)
        let up = waitUntil(timeout: .seconds(10)) {
            readText(log).contains("admin (/metrics") || !process.isRunning
        }
        guard up, process.isRunning else {
            process.stop()
            throw SetupError("the gateway did not start:\n\(readText(log))")
        }
        return process
    }

    /// The configuration file text; `routes` replaces the settings' extra routes (for reload tests).
    func config(routes: String? = nil) -> String {
        """
        workers \(settings.workers);
        worker_rlimit_nofile max;
        listen \(host):\(gatewayPort);
        admin \(host):\(adminPort);
        resolver 127.0.0.1:\(dns.port) valid=\(settings.resolverValid) timeout=1s attempts=2;
        \(settings.extraMain)
        upstream balancer {
            server \(Self.balancerName):\(upstreamPort) \(settings.balancerServerExtra);
            keepalive 16;
            \(settings.balancerExtra)
        }
        \(settings.upstreams)
        timeouts {
        \(settings.timeouts.map { "    \($0);" }.joined(separator: "\n"))
        }
        limits {
        \(settings.limits.map { "    \($0);" }.joined(separator: "\n"))
        }
        route exact /ws/connect {
            proxy http://balancer;
        }
        route regex "^/ws/(?<podid>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/connect$" {
            websocket on;
            rewrite /ws/connect;
            proxy http://$podid\(Self.podSuffix):\(echoPort);
        }
        \(routes ?? settings.routes)
        route default {
            return 404;
        }

        """
    }

    /// Stops every process by pid: the gateway first, then the servers behind it. Safe to call twice.
    func stop() {
        gateway?.stop(grace: .seconds(3))
        echo?.stop(grace: .seconds(2))
        echo2?.stop(grace: .seconds(2))
        upstream.stop(grace: .seconds(2))
        upstream2?.stop(grace: .seconds(2))
        dns.stop()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func scratchPath(_ name: String) -> String {
        "\(directory)/\(counter.add(1, ordering: .relaxed).oldValue)-\(name)"
    }

    // MARK: Clients

    func url(_ path: String) -> String { "http://\(host):\(gatewayPort)\(path)" }

    func wsURL(pod: String = "pod-a", query: String = "clientId=u1") -> String {
        "ws://\(host):\(gatewayPort)/ws/\(pod)/connect?\(query)"
    }

    /// curl against the gateway (or any `url`).
    func curl(_ arguments: [String], url: String, timeout: Duration = .seconds(30)) throws -> HTTPResult {
        let body = scratchPath("body")
        let head = scratchPath("head")
        let (status, output) = try runProgram(
            Paths.curl,
            ["-s", "-S", "--path-as-is", "--max-time", "20", "-o", body, "-D", head, "-w", "\n__STATUS__%{http_code}"]
                + arguments + [url], timeout: timeout, scratch: scratchPath("curl"))
        guard status == 0, let marker = output.range(of: "__STATUS__") else {
            throw SetupError("curl \(arguments) \(url) failed (\(status.map(String.init) ?? "timeout")): \(output)")
        }
        let code = Int(output[marker.upperBound...].prefix { $0.isNumber }) ?? 0
        // -D holds every head curl saw (100 Continue first); the last one is the final response.
        let heads = readText(head).components(separatedBy: "\r\n\r\n").filter { $0.hasPrefix("HTTP/") }
        let bodyBytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: body))) ?? Data())
        return HTTPResult(status: code, headers: parseHeaderLines(heads.last ?? ""), body: bodyBytes)
    }

    func get(_ path: String, headers: [String] = []) throws -> HTTPResult {
        try curl(headers.flatMap { ["-H", $0] }, url: url(path))
    }

    /// A GET with WebSocket upgrade fields, for answers that are not 101 (a 101 would leave curl waiting).
    func upgrade(_ path: String) throws -> HTTPResult {
        try get(
            path,
            headers: [
                "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            ])
    }

    /// One GET over a fresh raw connection to the admin listener.
    func admin(_ path: String) throws -> HTTPResult {
        let connection = try RawConnection(host: host, port: adminPort)
        try connection.send("GET \(path) HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        return try connection.readResponse()
    }

    func metrics() throws -> MetricsText {
        let response = try admin("/metrics")
        guard response.status == 200 else { throw SetupError("/metrics answered \(response.status)") }
        return MetricsText(response.text)
    }

    /// Requests the upstream completed (asked directly, not through the gateway).
    func upstreamCount() throws -> Int {
        let connection = try RawConnection(host: upstreamHost, port: upstreamPort)
        try connection.send("GET /__count HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n")
        return Int(try connection.readResponse().text) ?? -1
    }

    /// Every path the upstream saw a request head for, oldest first.
    func upstreamPaths() throws -> [String] {
        let connection = try RawConnection(host: upstreamHost, port: upstreamPort)
        try connection.send("GET /__paths HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n")
        return try connection.readResponse().text.split(separator: "\n").map(String.init)
    }

    /// Runs the Python WebSocket client to completion and returns its JSON result line.
    func wsclient(_ arguments: [String], timeout: Duration = .seconds(30)) throws -> [String: Any] {
        let (status, output) = try runProgram(
            Paths.python, [Paths.fixtures + "/wsclient.py"] + arguments, timeout: timeout,
            scratch: scratchPath("wsclient"))
        return try parseClientResult(status: status, output: output)
    }

    /// Starts the Python WebSocket client without waiting; read its result with `clientResult`.
    func startClient(_ arguments: [String]) throws -> (ChildProcess, String) {
        let log = scratchPath("wsclient")
        let process = try ChildProcess(Paths.python, [Paths.fixtures + "/wsclient.py"] + arguments, logPath: log)
        return (process, log)
    }

    func clientResult(_ client: (ChildProcess, String), timeout: Duration = .seconds(30)) throws -> [String: Any] {
        let status = client.0.waitForExit(timeout: timeout)
        if status == nil { client.0.stop(grace: .seconds(1)) }
        return try parseClientResult(status: status, output: readText(client.1))
    }

    private func parseClientResult(status: Int32?, output: String) throws -> [String: Any] {
        guard status == 0, let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            throw SetupError("wsclient failed (\(status.map(String.init) ?? "timeout")): \(output)")
        }
        return object
    }

    // MARK: Gateway control

    func signalGateway(_ signal: Int32) { gateway.send(signal) }

    var gatewayOutput: String { readText(gatewayLog) }

    /// Rewrites the configuration file and sends SIGHUP; waits for the gateway's log line about it.
    func reload(with text: String) throws -> Bool {
        let before = gatewayOutput.components(separatedBy: "reload").count
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        gateway.send(SIGHUP)
        return waitUntil(timeout: .seconds(5)) { self.gatewayOutput.components(separatedBy: "reload").count > before }
    }
}

/// Runs `executable` to completion (killed after `timeout`); returns its exit status and combined output.
func runProgram(
    _ executable: String, _ arguments: [String], timeout: Duration = .seconds(30), scratch: String
) throws -> (Int32?, String) {
    let process = try ChildProcess(executable, arguments, logPath: scratch)
    var status = process.waitForExit(timeout: timeout)
    if status == nil {
        process.stop(grace: .seconds(1))
        status = nil
    }
    return (status, readText(scratch))
}

/// Writes `bytes` to a fresh file and returns its path.
func writeFile(_ bytes: [UInt8], to path: String) throws -> String {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        var word = generator.next() as UInt64
        for _ in 0..<8 where index < count {
            bytes[index] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            index += 1
        }
    }
    return bytes
}

/// The upstream's JSON description of a request it received.
struct SeenRequest {
    let method: String
    let path: String
    let headers: [(String, String)]
    let server: String

    init(_ result: HTTPResult) throws {
        guard let object = try JSONSerialization.jsonObject(with: Data(result.body)) as? [String: Any],
            let method = object["method"] as? String, let path = object["path"] as? String,
            let headers = object["headers"] as? [[String]], let server = object["server"] as? String
        else { throw SetupError("not an upstream echo: \(result.text)") }
        self.method = method
        self.path = path
        self.headers = headers.map { ($0[0], $0[1]) }
        self.server = server
    }

    /// Every value of `name` (case-insensitive), in order.
    func values(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    func header(_ name: String) -> String? { values(name).first }
}

// MARK: HTTP on raw sockets

/// A parsed HTTP response.
struct HTTPResult {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

func parseHeaderLines(_ head: String) -> [(String, String)] {
    head.components(separatedBy: "\r\n").dropFirst().compactMap { line in
        guard let colon = line.firstIndex(of: ":") else { return nil }
        return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
}

/// A blocking TCP client over a raw socket, for bytes no well-behaved client would send.
final class RawConnection {
    let fd: Int32
    private(set) var buffer: [UInt8] = []
    private(set) var peerClosed = false

    /// Connects to `host:port`, from `source` when given. Throws with the errno on failure (ECONNREFUSED...).
    init(host: String, port: UInt16, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError("socket: \(errno)") }
        if let source {
            var local = Self.address(source, port: 0)
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard rc == 0 else {
                close(fd)
                throw SetupError("bind \(source): errno \(errno)")
            }
        }
        var remote = Self.address(host, port: port)
        let rc = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let code = errno
            close(fd)
            throw ConnectError(errno: code)
        }
    }

    struct ConnectError: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "connect: \(String(cString: strerror(errno)))" }
    }

    private static func address(_ host: String, port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    deinit { close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw SetupError("send: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    /// Waits up to `timeout` for bytes; appends them. False when nothing came (or the peer had closed before).
    @discardableResult
    func fill(timeout: Duration) -> Bool {
        guard !peerClosed else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(
            timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) > 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 {
            peerClosed = true
            return false
        }
        buffer.append(contentsOf: chunk[0..<count])
        return true
    }

    /// Reads one response (Content-Length, chunked, or until close). Throws when none completes in `timeout`.
    func readResponse(timeout: Duration = .seconds(5)) throws -> HTTPResult {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let (response, consumed) = parseResponse(buffer, closed: peerClosed) {
                buffer.removeFirst(consumed)
                return response
            }
            if peerClosed || clock.now >= deadline {
                throw SetupError(
                    "no complete response (closed: \(peerClosed)); got \(buffer.count) bytes: "
                        + String(decoding: buffer.prefix(300), as: UTF8.self))
            }
            fill(timeout: min(.milliseconds(200), deadline - clock.now))
        }
    }

    /// Reads and keeps bytes until the peer closes; true when it closed within `timeout`.
    func waitForClose(timeout: Duration = .seconds(5)) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !peerClosed && clock.now < deadline {
            fill(timeout: min(.milliseconds(200), deadline - clock.now))
        }
        return peerClosed
    }

    /// Bytes received but not consumed by `readResponse`.
    var unread: [UInt8] { buffer }
}

/// Parses one response at the start of `bytes`; nil when incomplete.
func parseResponse(_ bytes: [UInt8], closed: Bool) -> (HTTPResult, Int)? {
    let separator: [UInt8] = [13, 10, 13, 10]
    guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == separator })
    else { return nil }
    let head = String(decoding: bytes[0..<end], as: UTF8.self)
    let statusLine = head.prefix { $0 != "\r" }
    let parts = statusLine.split(separator: " ")
    guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
    let headers = parseHeaderLines(head)
    var result = HTTPResult(status: status, headers: headers, body: [])
    let bodyStart = end + 4
    if (100..<200).contains(status) || status == 204 || status == 304 {
        return (result, bodyStart)
    }
    if let length = result.header("Content-Length").flatMap({ Int($0) }) {
        guard bytes.count >= bodyStart + length else { return nil }
        result.body = Array(bytes[bodyStart..<bodyStart + length])
        return (result, bodyStart + length)
    }
    if result.header("Transfer-Encoding")?.lowercased() == "chunked" {
        var position = bodyStart
        var body: [UInt8] = []
        while true {
            guard
                let lineEnd = (position..<max(position, bytes.count - 1)).first(where: {
                    bytes[$0] == 13 && bytes[$0 + 1] == 10
                })
            else { return nil }
            let sizeText = String(decoding: bytes[position..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
            position = lineEnd + 2
            if size == 0 {
                // No trailers expected: the empty line ends the body.
                guard bytes.count >= position + 2 else { return nil }
                result.body = body
                return (result, position + 2)
            }
            guard bytes.count >= position + size + 2 else { return nil }
            body.append(contentsOf: bytes[position..<position + size])
            position += size + 2
        }
    }
    guard closed else { return nil }
    result.body = Array(bytes[bodyStart...])
    return (result, bytes.count)
}

// MARK: Metrics

/// Prometheus text, with lookups by name and labels.
struct MetricsText {
    let text: String
    let samples: [(name: String, labels: [String: String], value: Double)]

    init(_ text: String) {
        self.text = text
        samples = text.split(separator: "\n").compactMap(Self.parseSample)
    }

    private static func parseSample(_ line: Substring) -> (String, [String: String], Double)? {
        guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "),
            let value = Double(line[line.index(after: space)...])
        else { return nil }
        let series = line[..<space]
        guard let brace = series.firstIndex(of: "{") else { return (String(series), [:], value) }
        var labels: [String: String] = [:]
        var rest = series[series.index(after: brace)...]
        while let equals = rest.firstIndex(of: "=") {
            let name = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
            var index = rest.index(equals, offsetBy: 2)  // past ="
            var value = ""
            while index < rest.endIndex && rest[index] != "\"" {
                if rest[index] == "\\" { index = rest.index(after: index) }
                value.append(rest[index])
                index = rest.index(after: index)
            }
            labels[name] = value
            rest = rest[rest.index(after: index)...]
        }
        return (String(series[..<brace]), labels, value)
    }

    /// The value of the sample `name` whose labels include `labels`; nil when absent.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }?.value
    }

    /// `value`, or 0 when the series is absent.
    func count(_ name: String, _ labels: [String: String] = [:]) -> Double { value(name, labels) ?? 0 }
}

/// The label `rtc_gateway_requests_total{route=...}` carries for each route of `Stack.config`.
enum RouteLabel {
    static let balancer = "exact /ws/connect"
    static let pod = "regex ^/ws/(?<podid>[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/connect$"
    static let fallback = "default"
}

/// Every end-to-end suite nests in this one, so they run one after another even when the test runner runs suites
/// in parallel: they measure timeouts, and the 2,000-tunnel run wants the machine's two cores.
@Suite("Gateway end-to-end", .serialized)
enum EndToEnd {}
