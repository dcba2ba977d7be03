// HTTPServer over real loopback sockets, driven by curl and by raw sockets: routing, framing, limits, timeouts.
import EventLoop
import Foundation
import Glibc
import HTTP1
import HTTPServer
import Metrics
import Synchronization
import Sys
import TestSupport
import Testing

/// The routes most tests use.
func testRouter() -> Router {
    var router = Router()
    router.get("/", fixed: FixedResponse(status: 200, contentType: "text/plain", body: "ok"))
    router.get("/hello") { _ in .text("hello") }
    router.get("/query") { request in
        .text(
            "\(request.query["clientId"] ?? "-")|\(request.query["x"] ?? "-")|\(request.query.values(for: "clientId").count)"
        )
    }
    router.get("/json") { _ in .json(#"{"a":1}"#).adding(header: "X-Extra", value: "yes") }
    router.get("/n") { request in .text(request.query["i"] ?? "?") }
    router.get("/peer") { request in
        .text("\(request.remoteAddress?.hostText ?? "none") \(request.headers["x-CASE"] ?? "-")")
    }
    router.post("/echo") { request in
        .bytes(request.body, contentType: "application/octet-stream")
            .adding(header: "X-Body-Length", value: "\(request.body.count)")
    }
    router.add(.delete, "/hello", .fixed(FixedResponse(status: 204, contentType: "text/plain", body: "")))
    router.addPrefix(.get, "/static/") { request in .text("prefix \(request.path)") }
    return router
}

extension Router {
    mutating func addPrefix(_ method: Method, _ prefix: String, _ handler: @escaping Handler) {
        addPrefix(method, prefix, .dynamic(handler))
    }
}

@Suite(.serialized) struct HTTPServerTests {
    @Test func routingNotFoundAndMethodNotAllowed() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let ok = try curl(["-i", server.url + "/hello"])
        #expect(ok.status == 0)
        #expect(ok.output.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(ok.output.contains("Content-Length: 5\r\n"))
        #expect(ok.output.contains("Content-Type: text/plain; charset=utf-8\r\n"))
        #expect(ok.output.contains("\r\nDate: "))
        #expect(ok.output.hasSuffix("\r\n\r\nhello"))
        let missing = try curl(["-i", server.url + "/nope"])
        #expect(missing.output.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        let wrongMethod = try curl(["-i", "-X", "PUT", server.url + "/hello"])
        #expect(wrongMethod.output.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(wrongMethod.output.contains("Allow: GET, DELETE, HEAD\r\n"))
        let json = try curl(["-i", server.url + "/json"])
        #expect(json.output.contains("Content-Type: application/json\r\n"))
        #expect(json.output.contains("X-Extra: yes\r\n"))
        #expect(json.output.hasSuffix(#"{"a":1}"#))
        let prefix = try curl([server.url + "/static/a/b.css"])
        #expect(prefix.output == "prefix /static/a/b.css")
        let prefixRoot = try curl(["-o", "/dev/null", "-w", "%{http_code}", server.url + "/static"])
        #expect(prefixRoot.output == "404")
        let deleted = try curl(["-i", "-X", "DELETE", server.url + "/hello"])
        #expect(deleted.output.hasPrefix("HTTP/1.1 204 No Content\r\n"))
        #expect(!deleted.output.contains("Content-Length"))
        let peer = try curl(["-H", "X-Case: Yes", server.url + "/peer"])
        #expect(peer.output == "127.0.0.1 Yes")
    }

    @Test func queryIsPercentDecoded() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let result = try curl([server.url + "/query?clientId=u%201%2Fz&x=a+b&clientId=second&empty"])
        #expect(result.output == "u 1/z|a b|2")
        #expect(Query(parsing: Array("a=%zz&b=%4".utf8))["a"] == "%zz")
        #expect(Query(parsing: Array("a=%zz&b=%4".utf8))["b"] == "%4")
        #expect(Query(parsing: Array("k=%E2%82%AC".utf8))["k"] == "€")
        #expect(Query(parsing: Array("&&=v&k".utf8)).items.map(\.name) == ["", "k"])
    }

    @Test func keepAliveReusesTheConnection() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let result = try curl(["-v", server.url + "/hello", server.url + "/"])
        #expect(result.output.contains("Re-using existing connection"))
        #expect(result.output.contains("hello"))
        let client = try RawClient(port: server.port)
        for index in 0..<5 {
            client.send("GET /n?i=\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == "\(index)")
        }
        #expect(server.server.connectionCount == 1)
        // HTTP/1.0 keeps the connection only when asked, and says so.
        let old = try RawClient(port: server.port)
        old.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let kept = try old.readResponse()
        #expect(kept.header("Connection") == "keep-alive")
        old.send("GET /hello HTTP/1.0\r\n\r\n")
        let last = try old.readResponse()
        #expect(last.header("Connection") == "close")
        #expect(old.readToEnd().closed)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let client = try RawClient(port: server.port)
        var batch = ""
        for index in 0..<50 { batch += "GET /n?i=\(index) HTTP/1.1\r\nHost: t\r\n\r\n" }
        batch += "GET / HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\n"
        batch +=
            "GET /n?i=last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /n?i=never HTTP/1.1\r\nHost: t\r\n\r\n"
        // Split at odd places so heads straddle reads.
        let bytes = Array(batch.utf8)
        for start in stride(from: 0, to: bytes.count, by: 997) {
            client.send(Array(bytes[start..<min(start + 997, bytes.count)]))
        }
        for index in 0..<50 {
            let response = try client.readResponse()
            #expect(response.text == "\(index)")
        }
        #expect(try client.readResponse().text == "ok")
        let head = try client.readResponse(headOnly: true)
        #expect(head.header("Content-Length") == "2")
        let last = try client.readResponse()
        #expect(last.text == "last")
        #expect(last.header("Connection") == "close")
        let rest = client.readToEnd()
        #expect(rest.closed)
        #expect(rest.bytes.isEmpty)
    }

    @Test func requestBodiesContentLengthAndChunked() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let directory = try makeTemporaryDirectory("body")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let payload = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(payload).write(to: URL(fileURLWithPath: directory + "/payload"))
        let received = directory + "/received"
        let chunked = try curl([
            "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + directory + "/payload", "-o", received,
            "-w", "%{http_code}", server.url + "/echo",
        ])
        #expect(chunked.output == "200")
        #expect(try Data(contentsOf: URL(fileURLWithPath: received)) == Data(payload))
        let plain = try curl([
            "--data-binary", "@" + directory + "/payload", "-o", received, "-w", "%{http_code}", server.url + "/echo",
        ])
        #expect(plain.output == "200")
        #expect(try Data(contentsOf: URL(fileURLWithPath: received)) == Data(payload))
        // Chunked by hand, with an extension and a trailer, split byte by byte, then a keep-alive request.
        let client = try RawClient(port: server.port)
        let request =
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET /n?i=after HTTP/1.1\r\nHost: t\r\n\r\n"
        for byte in request.utf8 { client.send([byte]) }
        let echoed = try client.readResponse()
        #expect(echoed.text == "hello world")
        #expect(echoed.header("X-Body-Length") == "11")
        #expect(try client.readResponse().text == "after")
        // A body sent to a fixed route is read and dropped; the connection stays usable.
        client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcdGET /n?i=2 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().status == 405)
        #expect(try client.readResponse().text == "2")
    }

    @Test func bodyOverTheLimitIs413() throws {
        let server = try TestServer(router: testRouter(), configuration: ServerConfiguration(maxBodyBytes: 1000))
        defer { server.stop() }
        let declared = try RawClient(port: server.port)
        declared.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n")
        #expect(try declared.readResponse().status == 413)
        #expect(declared.readToEnd().closed)
        let chunked = try RawClient(port: server.port)
        chunked.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in 0..<3 { chunked.send("190\r\n" + String(repeating: "x", count: 400) + "\r\n") }
        let response = try chunked.readResponse()
        #expect(response.status == 413)
        #expect(response.header("Connection") == "close")
        let directory = try makeTemporaryDirectory("big")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(repeating: 0x61, count: 5000).write(to: URL(fileURLWithPath: directory + "/big"))
        let viaCurl = try curl([
            "--data-binary", "@" + directory + "/big", "-o", "/dev/null", "-w", "%{http_code}", server.url + "/echo",
        ])
        #expect(viaCurl.output == "413")
        // At the limit exactly is fine.
        let exact = try RawClient(port: server.port)
        exact.send(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + String(repeating: "y", count: 1000))
        #expect(try exact.readResponse().body.count == 1000)
    }

    @Test func headLimitsAnswer431And414And400() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let huge = try curl([
            "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Big: " + String(repeating: "a", count: 40_000),
            server.url + "/",
        ])
        #expect(huge.output == "431")
        let many = try RawClient(port: server.port)
        many.send("GET / HTTP/1.1\r\nHost: t\r\n" + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n")
        #expect(try many.readResponse().status == 431)
        let long = try curl([
            "-o", "/dev/null", "-w", "%{http_code}", server.url + "/" + String(repeating: "p", count: 9000),
        ])
        #expect(long.output == "414")
        // Request smuggling shapes: both framings, differing lengths, bare LF, obs-fold, no Host.
        let smuggling = [
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
            "GET / HTTP/1.1\nHost: t\n\n",
            "GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ]
        for request in smuggling {
            let client = try RawClient(port: server.port)
            client.send(request)
            let response = try client.readResponse()
            #expect(response.status == 400, "\(request.debugDescription)")
            #expect(response.header("Connection") == "close")
            #expect(client.readToEnd().closed)
        }
        // Absolute-form targets route by their path (RFC 9112 §3.2.2).
        let absolute = try RawClient(port: server.port)
        absolute.send("GET http://example.test:8080/n?i=abs HTTP/1.1\r\nHost: example.test\r\n\r\n")
        #expect(try absolute.readResponse().text == "abs")
        absolute.send("GET http://example.test HTTP/1.1\r\nHost: example.test\r\n\r\n")
        #expect(try absolute.readResponse().text == "ok")
        absolute.send("GET http://example.test/static/x HTTP/1.1\r\nHost: example.test\r\n\r\n")
        #expect(try absolute.readResponse().text == "prefix /static/x")
        let version = try RawClient(port: server.port)
        version.send("GET / HTTP/2.0\r\nHost: t\r\n\r\n")
        #expect(try version.readResponse().status == 505)
    }

    @Test func slowlorisGets408AndIdleConnectionsClose() throws {
        let configuration = ServerConfiguration(
            headerTimeout: .milliseconds(300), idleTimeout: .milliseconds(400), lingerTimeout: .milliseconds(200))
        let server = try TestServer(router: testRouter(), configuration: configuration)
        defer { server.stop() }
        let clock = ContinuousClock()
        let start = clock.now
        let slow = try RawClient(port: server.port)
        // A byte every 100 ms for a second never completes a head; the clock runs from the first byte, so the
        // 408 comes while bytes still trickle in (a deadline pushed by each byte would come after the last).
        slow.send("GET / HT")
        let fd = slow.fd
        let trickle = try Sys.Thread {
            for byte in "TP/1.1\r\nX-A: 1234".utf8.prefix(10) {
                usleep(100_000)
                _ = withUnsafeBytes(of: byte) { Glibc.send(fd, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
            }
        }
        let response = try slow.readResponse()
        let elapsed = clock.now - start
        trickle.join()
        #expect(response.status == 408)
        #expect(response.header("Connection") == "close")
        #expect(elapsed >= .milliseconds(290) && elapsed < .milliseconds(800), "\(elapsed)")
        #expect(slow.readToEnd().closed)
        // A stalled body times out too.
        let stalled = try RawClient(port: server.port)
        stalled.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        #expect(try stalled.readResponse().status == 408)
        // An idle keep-alive connection is closed without an answer.
        let idle = try RawClient(port: server.port)
        idle.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try idle.readResponse().status == 200)
        let idleStart = clock.now
        let rest = idle.readToEnd()
        #expect(rest.closed && rest.bytes.isEmpty)
        #expect(clock.now - idleStart >= .milliseconds(350))
        #expect(waitUntil(timeout: .seconds(3)) { server.server.connectionCount == 0 })
    }

    @Test func headAnswersWithoutBody() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let client = try RawClient(port: server.port)
        client.send(
            "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /n?i=7 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        let dynamic = try client.readResponse(headOnly: true)
        #expect(dynamic.status == 200)
        #expect(dynamic.header("Content-Length") == "5")
        let fixed = try client.readResponse(headOnly: true)
        #expect(fixed.header("Content-Length") == "2")
        // Had a body followed either HEAD answer, this would read "hello" or "ok" as a status line and fail.
        #expect(try client.readResponse().text == "7")
        let viaCurl = try curl(["-I", server.url + "/"])
        #expect(viaCurl.output.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(viaCurl.output.hasSuffix("\r\n\r\n"))
    }

    @Test func maxConnectionsRefusesCleanly() throws {
        let server = try TestServer(
            router: testRouter(),
            configuration: ServerConfiguration(lingerTimeout: .milliseconds(200), maxConnections: 2))
        defer { server.stop() }
        let first = try RawClient(port: server.port)
        let second = try RawClient(port: server.port)
        for client in [first, second] {
            client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().status == 200)
        }
        let third = try RawClient(port: server.port)
        let refused = try third.readResponse()
        #expect(refused.status == 503)
        #expect(third.readToEnd().closed)
        #expect(server.server.rejectedCount == 1)
        #expect(server.server.connectionCount == 2)
        // A slot frees when a connection closes.
        first.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        _ = try first.readResponse()
        #expect(waitUntil { server.server.connectionCount == 1 })
        let fourth = try RawClient(port: server.port)
        fourth.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try fourth.readResponse().status == 200)
    }

    @Test func hostileClientsDoNotDisturbAGoodOne() throws {
        let server = try TestServer(
            router: testRouter(), configuration: ServerConfiguration(maxBodyBytes: 4096, headerTimeout: .seconds(1)))
        defer { server.stop() }
        let good = try RawClient(port: server.port)
        let stop = Atomic<Bool>(false)
        let hostileRounds = Atomic<Int>(0)
        let port = server.port
        // Hostile traffic on another thread: random bytes, truncated heads, lying chunk sizes, abrupt closes.
        let hostile = try Sys.Thread {
            var generator = SystemRandomNumberGenerator()
            let shapes: [[UInt8]] = [
                Array(
                    "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n".utf8),
                Array("GET /\u{0}\r\n\r\n".utf8),
                Array("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n".utf8),
                Array("GET / HTTP/1.1\r\nHost: t\r\nX: \u{7f}\r\n\r\n".utf8),
                Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n".utf8),
                Array("GET /query?%%%%%%=%ff%fe HTTP/1.1\r\nHost: t\r\n\r\n".utf8),
            ]
            var rounds = 0
            while !stop.load(ordering: .relaxed) && rounds < 400 {
                rounds += 1
                hostileRounds.store(rounds, ordering: .relaxed)
                guard let client = try? RawClient(port: port, receiveTimeout: 0.2) else { continue }
                if rounds % 3 == 0 {
                    client.send(
                        (0..<Int.random(in: 1...3000, using: &generator)).map { _ in
                            UInt8.random(in: 0...255, using: &generator)
                        })
                } else {
                    client.send(shapes[rounds % shapes.count])
                }
                if rounds % 2 == 0 { _ = client.readToEnd() }
            }
        }
        let slowloris = try RawClient(port: server.port)
        slowloris.send("GET / HTTP/1.1\r\nHost")
        // The good client keeps going until the hostile thread has done 200 rounds meanwhile.
        let deadline = ContinuousClock.now + .seconds(10)
        var index = 0
        while index < 300 || (hostileRounds.load(ordering: .relaxed) < 200 && ContinuousClock.now < deadline) {
            good.send("GET /n?i=\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try good.readResponse()
            #expect(response.text == "\(index)")
            index += 1
        }
        #expect(hostileRounds.load(ordering: .relaxed) >= 200)
        stop.store(true, ordering: .relaxed)
        hostile.join()
        #expect(try slowloris.readResponse().status == 408)
        good.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try good.readResponse().text == "hello")
        #expect(waitUntil(timeout: .seconds(5)) { server.server.connectionCount == 1 })
    }

    @Test func stopClosesListenersAndCloseIdleDrains() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let idle = try RawClient(port: server.port)
        idle.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try idle.readResponse()
        let busy = try RawClient(port: server.port)
        busy.send("GET / HTTP/1.1\r\nHo")
        #expect(waitUntil { server.server.connectionCount == 2 })
        server.server.closeIdle()
        #expect(idle.readToEnd().closed)
        busy.send("st: t\r\n\r\n")
        let last = try busy.readResponse()
        #expect(last.status == 200)
        #expect(last.header("Connection") == "close")
        server.server.stop()
        #expect(waitUntil { (try? RawClient(port: server.port)) == nil })
    }

    /// A request that reached the socket but not yet the server (its readiness event not handled) when `closeIdle`
    /// runs: the connection is read first and is not idle. The loop is held in a task while the client connects and
    /// sends, so that the accept and `closeIdle` come in consecutive turns, before the read event is ever handled.
    @Test func closeIdleReadsWhatArrivedFirst() throws {
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let holding = Atomic<Bool>(false)
        let release = Atomic<Bool>(false)
        server.loop.execute {
            holding.store(true, ordering: .releasing)
            while !release.load(ordering: .acquiring) { sched_yield() }
        }
        #expect(waitUntil { holding.load(ordering: .acquiring) })
        let busy = try RawClient(port: server.port)
        busy.send("GET / HTTP/1.1\r\nHo")
        server.server.closeIdle()
        release.store(true, ordering: .releasing)
        busy.send("st: t\r\n\r\n")
        let last = try busy.readResponse()
        #expect(last.status == 200)
        #expect(last.header("Connection") == "close")
    }

    @Test func groupServesFromEveryLoop() throws {
        let group = try EventLoopGroup(loops: 2)
        let server = HTTPServer(router: testRouter())
        let address = try server.listen(on: group, address: .loopback(port: 0))
        try group.start()
        defer { group.shutdown() }
        #expect(address.port != 0)
        var clients: [RawClient] = []
        for index in 0..<20 {
            let client = try RawClient(port: address.port)
            client.send("GET /n?i=\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().text == "\(index)")
            clients.append(client)
        }
        #expect(server.connectionCount == 20)
    }

    @Test func adminEndpointsPassPromtool() throws {
        let registry = Registry()
        try ProcessMetrics.register(in: registry)
        let requests = try registry.counter("demo_requests_total", help: "Requests.", labelNames: ["code"])
        requests.labels("200").increment(by: 3)
        let readiness = ReadinessFlag(false)
        let server = try TestServer(router: AdminEndpoints.router(registry: registry, readiness: readiness))
        defer { server.stop() }
        #expect(try curl([server.url + "/healthz"]).output == "ok")
        #expect(try curl(["-o", "/dev/null", "-w", "%{http_code}", server.url + "/readyz"]).output == "503")
        readiness.set(true)
        #expect(try curl(["-o", "/dev/null", "-w", "%{http_code}", server.url + "/readyz"]).output == "200")
        let directory = try makeTemporaryDirectory("metrics")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/metrics.txt"
        let headers = try curl(["-D", "-", "-o", file, server.url + "/metrics"])
        #expect(headers.output.contains("Content-Type: text/plain; version=0.0.4"))
        let text = try String(contentsOfFile: file, encoding: .utf8)
        for name in [
            "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
            "process_start_time_seconds", "demo_requests_total{code=\"200\"} 3",
        ] {
            #expect(text.contains("\n" + name) || text.hasPrefix(name), "\(name) missing")
        }
        let start = text.split(separator: "\n").first { $0.hasPrefix("process_start_time_seconds ") }
        let seconds = start.flatMap { Double($0.split(separator: " ")[1]) } ?? 0
        #expect(abs(seconds - Date().timeIntervalSince1970) < 24 * 3600)
        let promtool = "/usr/bin/promtool"
        try #require(
            FileManager.default.isExecutableFile(atPath: promtool), "promtool missing (apt-get install prometheus)")
        let log = directory + "/promtool.log"
        let check = try ChildProcess("/bin/sh", ["-c", "\(promtool) check metrics < \(file)"], logPath: log)
        let status = check.waitForExit(timeout: .seconds(20))
        #expect(status == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    @Test func datesAreIMFFixdate() throws {
        #expect(HTTPDate.string(epochSeconds: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.string(epochSeconds: 951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(HTTPDate.string(epochSeconds: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.string(epochSeconds: 4_102_444_799) == "Thu, 31 Dec 2099 23:59:59 GMT")
        // The header a server sends is today's date, in that form.
        let server = try TestServer(router: testRouter())
        defer { server.stop() }
        let client = try RawClient(port: server.port)
        client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        let sent = try #require(try client.readResponse().header("Date"))
        let now = Int64(Date().timeIntervalSince1970)
        #expect(sent == HTTPDate.string(epochSeconds: now) || sent == HTTPDate.string(epochSeconds: now - 1))
    }
}
