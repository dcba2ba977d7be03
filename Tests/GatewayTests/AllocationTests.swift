// Steady state of a proxied keep-alive request allocates nothing: client → gateway → upstream, mallocs counted.
import EventLoop
import Foundation
import Gateway
import GatewayConfig
import Glibc
import HTTPServer
import Metrics
import Sys
import TestSupport
import Testing

/// A blocking keep-alive client that allocates nothing per request: fixed request bytes, one receive buffer.
final class SteadyClient {
    let fd: Int32
    let request = Array("GET /alloc?x=1 HTTP/1.1\r\nHost: gateway\r\nUser-Agent: probe\r\n\r\n".utf8)
    var buffer = [UInt8](repeating: 0, count: 8192)
    var responseLength = 0

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            Glibc.close(fd)
            throw ProbeError.connect(errno)
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    /// One request and its whole response (the first call learns the length); returns the byte count or -1.
    func roundTrip() -> Int {
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return -1 }
        var total = 0
        repeat {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + total, $0.count - total, 0) }
            guard count > 0 else { return -1 }
            total += count
        } while responseLength == 0 ? !endsWithBody(total) : total < responseLength
        return total
    }

    private func endsWithBody(_ total: Int) -> Bool {
        total >= 4 && buffer[total - 2] == UInt8(ascii: "o") && buffer[total - 1] == UInt8(ascii: "k")
    }
}

enum ProbeError: Error {
    case connect(Int32)
    case config(String)
}

@Suite(.serialized) struct AllocationTests {
    static let requests = 2_000

    /// Runs only in the child started by `proxiedKeepAliveRequestAllocatesNothing`.
    @Test func allocationProbe() throws {
        guard let path = getenv(AllocationProbeKey.gateway).map({ String(cString: $0) }) else { return }
        guard MallocCounter.install() else {
            try "-1 -1 -1 -1".write(toFile: path, atomically: false, encoding: .utf8)
            return
        }
        Signals.ignoreBrokenPipe()
        // The upstream: HTTPServer's fixed response (itself 0 mallocs per request) on its own loop.
        let upstreamLoop = try EventLoop()
        var router = Router()
        router.get("/alloc", fixed: FixedResponse(status: 200, contentType: "text/plain", body: "ok"))
        let upstream = HTTPServer(router: router, configuration: ServerConfiguration(sendDate: false))
        let upstreamAddress = try upstream.listen(on: upstreamLoop, address: .loopback(port: 0))
        let upstreamThread = try Sys.Thread { try? upstreamLoop.run() }

        let port = freeTCPPort()
        let text = """
            workers 1;
            listen 127.0.0.1:\(port);
            admin 127.0.0.1:\(freeTCPPort());
            resolver 127.0.0.1:53;
            upstream up { server 127.0.0.1:\(upstreamAddress.port); keepalive 8; }
            route exact /alloc { proxy http://up; }
            route default { return 404; }
            """
        guard case .success(let config) = loadConfig(text: text, file: "alloc.conf", environment: [:], cores: 1) else {
            throw ProbeError.config(text)
        }
        let gateway = try Gateway(
            snapshot: Snapshot(config: config), workers: 1,
            metrics: GatewayMetrics(registry: Registry(shards: 2)))
        _ = try gateway.bind()
        try gateway.start()
        defer {
            gateway.shutdown()
            upstreamLoop.stop()
            upstreamThread.join()
        }

        let client = try SteadyClient(port: port)
        // Warm-up: connections, the pool, parser storage, lazy globals, metric children.
        for _ in 0..<300 { client.responseLength = client.roundTrip() }
        var checksum = 0
        let calibration = MallocCounter.counted {
            for index in 0..<10 { checksum &+= [UInt8](repeating: UInt8(index), count: 100).count }
        }
        var bad = 0
        let gatewayThread = ThreadRecorder()
        let upstreamThreadID = ThreadRecorder()
        gateway.group.loop(at: 0).execute { gatewayThread.record() }
        upstreamLoop.execute { upstreamThreadID.record() }
        guard let worker = gatewayThread.wait(), let server = upstreamThreadID.wait() else {
            throw ProbeError.config("loop threads did not answer")
        }
        // The gateway's loop, the upstream's loop and this (client) thread; not the test runner's own threads.
        let counted = MallocCounter.counted(threads: [worker, server, MallocCounter.currentThread()]) {
            for _ in 0..<AllocationTests.requests where client.roundTrip() != client.responseLength { bad += 1 }
        }
        try "\(calibration) \(counted) \(bad) \(client.responseLength)".write(
            toFile: path, atomically: false, encoding: .utf8)
    }

    @Test func proxiedKeepAliveRequestAllocatesNothing() throws {
        guard getenv(AllocationProbeKey.gateway) == nil else { return }
        try #require(FileManager.default.fileExists(atPath: MallocCounter.debugLibrary), "cannot count allocations")
        let directory = try makeTemporaryDirectory("gateway-alloc")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/counts"
        var environment = ProcessInfo.processInfo.environment
        environment[AllocationProbeKey.gateway] = path
        environment["LD_PRELOAD"] = MallocCounter.debugLibrary
        let child = try ChildProcess(
            CommandLine.arguments[0],
            [
                "--testing-library", "swift-testing", "--no-parallel", "--filter",
                "GatewayTests.AllocationTests/allocationProbe",
            ],
            environment: environment, logPath: directory + "/log")
        let status = child.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\((try? String(contentsOfFile: directory + "/log", encoding: .utf8)) ?? "")")
        let counts = try String(contentsOfFile: path, encoding: .utf8).split(separator: " ").compactMap { Int($0) }
        try #require(counts.count == 4)
        // The counter works: ten arrays are at least ten allocations.
        #expect(counts[0] >= 10)
        // Every response arrived whole (the proxied 200 with its X-Request-ID).
        #expect(counts[2] == 0, "responses of an unexpected length")
        #expect(counts[3] > 100)
        print("gateway keep-alive GET through one upstream: \(counts[1]) mallocs over \(Self.requests) requests")
        #if DEBUG
        // -Onone boxes captured variables and does not specialise: only optimized code is held to zero.
        #expect(counts[1] >= 0)
        #else
        #expect(counts[1] == 0)
        #endif
    }
}
