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

enum ProbeError: Error {
    case config(String)
}

@Suite(.serialized) struct AllocationTests {
    static let requests = 2_000

    /// Runs only in the child started by `proxiedKeepAliveRequestAllocatesNothing`.
    @Test func allocationProbe() throws {
        guard let path = getenv(AllocationProbeKey.gateway).map({ String(cString: $0) }) else { return }
        guard MallocCounter.install() else {
            try "-1 -1 -1 -1 -1".write(toFile: path, atomically: false, encoding: .utf8)
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

        let client = try KeepAliveClient(
            port: port, request: "GET /alloc?x=1 HTTP/1.1\r\nHost: gateway\r\nUser-Agent: probe\r\n\r\n")
        // Warm-up: connections, the pool, parser storage, lazy globals, metric children.
        for _ in 0..<300 { client.responseLength = client.roundTrip() }
        var checksum = 0
        let calibration = MallocCounter.counted {
            for index in 0..<10 { checksum &+= [UInt8](repeating: UInt8(index), count: 100).count }
        }
        var bad = 0
        var firstBad = 0
        let gatewayThread = ThreadRecorder()
        let upstreamThreadID = ThreadRecorder()
        gateway.group.loop(at: 0).execute { gatewayThread.record() }
        upstreamLoop.execute { upstreamThreadID.record() }
        guard let worker = gatewayThread.wait(), let server = upstreamThreadID.wait() else {
            throw ProbeError.config("loop threads did not answer")
        }
        // The gateway's loop, the upstream's loop and this (client) thread; not the test runner's own threads.
        let counted = MallocCounter.counted(threads: [worker, server, MallocCounter.currentThread()]) {
            for _ in 0..<AllocationTests.requests {
                let length = client.roundTrip()
                if length != client.responseLength {
                    if bad == 0 { firstBad = length }
                    bad += 1
                }
            }
        }
        try "\(calibration) \(counted) \(bad) \(client.responseLength) \(firstBad)".write(
            toFile: path, atomically: false, encoding: .utf8)
    }

    @Test func proxiedKeepAliveRequestAllocatesNothing() throws {
        guard getenv(AllocationProbeKey.gateway) == nil else { return }
        try #require(FileManager.default.fileExists(atPath: MallocCounter.debugLibrary), "cannot count allocations")
        let report = try MallocCounter.runProbe(
            key: AllocationProbeKey.gateway, probe: "GatewayTests.AllocationTests/allocationProbe")
        #expect(report.status == 0, "\(report.log)")
        let counts = report.counts
        try #require(counts.count == 5)
        // The counter works: ten arrays are at least ten allocations.
        #expect(counts[0] >= 10)
        // Every response arrived whole (the proxied 200 with its X-Request-ID).
        #expect(counts[2] == 0, "responses of an unexpected length: the first was \(counts[4]), not \(counts[3])")
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
