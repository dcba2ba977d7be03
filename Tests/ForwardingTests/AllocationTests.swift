// Steady state allocates nothing: 10,000 requests through decide, both rewriters, an error answer and decisions.
import Forwarding
import Foundation
import GatewayConfig
import Glibc
import HTTP1
import Routing
import TestSupport
import Testing

// The child run that counts lives in `allocationProbe`; `MallocCounter` (TestSupport) explains the method.
// Tried first and dropped: `mallinfo2()` (misses allocations freed within the loop, sees other tests' ones),
// `mtrace` (its compat symbol is not what `dlsym` finds), and the Swift runtime's `_swift_allocObject`
// instrumentation hook (enabling it on Linux routes retains through an adapter that crashes).

/// The steady-state workload: per request, decide, upstream head, keep-alive decision, downstream head, a 502.
final class Workload {
    let routes: RouteTable
    let rewriter: RequestRewriter
    let matcher: Matcher
    var ids = RequestIDGenerator(seed: 7)
    let requests: [HeadParser]
    let response: HeadParser
    let client: [UInt8] = Array("203.0.113.9".utf8)
    var out: [UInt8] = []
    var checksum = 0

    init() {
        routes = testConfig.routes
        rewriter = RequestRewriter(config: testConfig)
        matcher = Matcher(for: routes)
        requests = [
            parsed(
                "GET /ws/socket-7d9f-abc12/connect?clientId=u1 HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n"
                    + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    + "Sec-WebSocket-Version: 13\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"),
            parsed(
                "GET /ws/connect?clientId=u1 HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, X-Drop\r\n"
                    + "X-Drop: 1\r\nX-Request-ID: keep-me\r\nUser-Agent: bench\r\n\r\n"),
            parsed("POST /api/orders?x=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nX-Api: a\r\n\r\n"),
            parsed("GET /opt HTTP/1.1\r\nHost: gw\r\n\r\n"),
        ]
        response = parsed(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nServer: up\r\n\r\n", kind: .response)
        out.reserveCapacity(4096)
    }

    /// One pass over the four requests; returns the number of proxied ones.
    func round() -> Int {
        var proxied = 0
        client.withUnsafeBytes { address in
            for request in requests {
                let decision = request.headBytes.withUnsafeBytes { head in
                    routes.decide(
                        path: UnsafeRawBufferPointer(rebasing: head[request.path.indices]),
                        isWebSocketUpgrade: request.isWebSocketUpgrade, matcher: matcher)
                }
                guard case .proxy(let route) = decision else { continue }
                proxied += 1
                out.removeAll(keepingCapacity: true)
                let id = rewriter.writeUpstreamHead(
                    request: request, route: route, matcher: matcher, clientAddress: address, scheme: .http,
                    requestIDs: &ids, into: &out)
                checksum &+= out.count
                out.removeAll(keepingCapacity: true)
                let after = ForwardingDecision.downstream(request: request, forwardedUpgrade: false, response: response)
                ResponseRewriter.writeDownstreamHead(
                    response: response, keepAlive: after == .keepAlive, requestID: id, into: &out)
                checksum &+= out.count
                out.removeAll(keepingCapacity: true)
                ErrorResponse.badGateway.write(keepAlive: true, requestID: id, into: &out)
                checksum &+= out.count
            }
        }
        return proxied
    }
}

@Suite struct AllocationTests {
    /// Runs only in the child started by `steadyStateAllocatesNothing`: traces a calibration and the workload.
    /// Runs only in the child started by `steadyStateAllocatesNothing`: counts a calibration and the workload
    /// and writes both counts to the file the parent named.
    @Test func allocationProbe() throws {
        guard let path = getenv(AllocationProbeKey.forwarding).map({ String(cString: $0) }) else { return }
        guard MallocCounter.install() else {
            try "-1 -1 -1".write(toFile: path, atomically: false, encoding: .utf8)
            return
        }
        var sink: [[UInt8]] = []
        sink.reserveCapacity(10)
        let calibration = MallocCounter.counted {
            for index in 0..<10 { sink.append([UInt8](repeating: UInt8(index), count: 100)) }
        }
        let workload = Workload()
        for _ in 0..<100 { _ = workload.round() }  // warm-up: lazy globals, buffer growth
        var proxied = 0
        let counted = MallocCounter.counted {
            for _ in 0..<2_500 { proxied += workload.round() }
        }
        try "\(calibration) \(counted) \(proxied)".write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test func steadyStateAllocatesNothing() throws {
        guard getenv(AllocationProbeKey.forwarding) == nil else { return }
        guard FileManager.default.fileExists(atPath: MallocCounter.debugLibrary) else {
            Issue.record("\(MallocCounter.debugLibrary) is missing: cannot count allocations")
            return
        }
        let report = try MallocCounter.runProbe(
            key: AllocationProbeKey.forwarding, probe: "ForwardingTests.AllocationTests/allocationProbe")
        #expect(report.status == 0, "\(report.log)")
        let counts = report.counts
        try #require(counts.count == 3)
        // The counter works: ten arrays are at least ten allocations.
        #expect(counts[0] >= 10)
        #expect(counts[2] == 10_000)
        #if DEBUG
        // At -Onone variables captured by closures are boxed on the heap (in Routing's decide too), so zero holds
        // only for optimized code: `swift test -c release` asserts it.
        #expect(counts[1] > 0)
        #else
        // 10,000 requests through decide, both rewriters, a canned answer and the decisions: no allocation.
        #expect(counts[1] == 0)
        #endif
    }
}
