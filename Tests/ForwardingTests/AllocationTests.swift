// Steady state allocates nothing: 10,000 requests through decide, both rewriters, an error answer and decisions.
import Forwarding
import Foundation
import GatewayConfig
import Glibc
import HTTP1
import Routing
import Testing

/// Counts `malloc` calls through glibc's `__malloc_hook`, which libc_malloc_debug.so (preloaded) still honours,
/// in a child run of this test binary that runs only `allocationProbe`, so no other test allocates meanwhile.
/// Tried first and dropped: `mallinfo2()` (misses allocations freed within the loop, sees other tests' ones),
/// `mtrace` (its compat symbol is not what `dlsym` finds), and the Swift runtime's `_swift_allocObject`
/// instrumentation hook (enabling it on Linux routes retains through an adapter that crashes).
enum AllocationProbe {
    static let environmentKey = "FORWARDING_ALLOCATION_PROBE"
    static let debugLibrary = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"

    typealias MallocHook = @convention(c) (Int, UnsafeRawPointer?) -> UnsafeMutableRawPointer?
    nonisolated(unsafe) static var count = 0
    nonisolated(unsafe) static var hook: UnsafeMutablePointer<MallocHook?>?

    // A glibc malloc hook in the classic shape: unhook, allocate, count, rehook. Other threads of the child are
    // idle while the probe runs; a racing allocation would only be counted too, never hidden.
    static let counting: MallocHook = { size, _ in
        AllocationProbe.hook!.pointee = nil
        let pointer = malloc(size)
        AllocationProbe.count += 1
        AllocationProbe.hook!.pointee = AllocationProbe.counting
        return pointer
    }

    /// `malloc` calls made while `body` runs, or nil without the preloaded debug library. `__malloc_hook` was
    /// removed from libc.so.6 in glibc 2.34; libc_malloc_debug.so keeps honouring it (a compat symbol: dlvsym).
    static func count(_ body: () -> Void) -> Int? {
        // dlvsym(3) is not in the Glibc module; look it up like any other function.
        typealias VersionedLookup =
            @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>, UnsafePointer<CChar>) ->
            UnsafeMutableRawPointer?
        guard let library = dlopen(debugLibrary, RTLD_NOW | RTLD_NOLOAD), let lookup = dlsym(nil, "dlvsym"),
            let address = unsafeBitCast(lookup, to: VersionedLookup.self)(library, "__malloc_hook", "GLIBC_2.2.5")
        else { return nil }
        hook = address.assumingMemoryBound(to: MallocHook?.self)
        count = 0
        hook!.pointee = counting
        body()
        hook!.pointee = nil
        return count
    }
}

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
        guard let path = getenv(AllocationProbe.environmentKey).map({ String(cString: $0) }) else { return }
        var sink: [[UInt8]] = []
        sink.reserveCapacity(10)
        let calibration = AllocationProbe.count {
            for index in 0..<10 { sink.append([UInt8](repeating: UInt8(index), count: 100)) }
        }
        let workload = Workload()
        _ = workload.round()  // warm-up: lazy globals, buffer growth
        var proxied = 0
        let counted = AllocationProbe.count {
            for _ in 0..<2_500 { proxied += workload.round() }
        }
        try "\(calibration ?? -1) \(counted ?? -1) \(proxied)".write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test func steadyStateAllocatesNothing() throws {
        guard getenv(AllocationProbe.environmentKey) == nil else { return }
        guard FileManager.default.fileExists(atPath: AllocationProbe.debugLibrary) else {
            Issue.record("\(AllocationProbe.debugLibrary) is missing: cannot count allocations")
            return
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("forwarding-alloc-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["--testing-library", "swift-testing", "--filter", "allocationProbe"]
        var environment = ProcessInfo.processInfo.environment
        environment[AllocationProbe.environmentKey] = path
        environment["LD_PRELOAD"] = AllocationProbe.debugLibrary
        child.environment = environment
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        child.waitUntilExit()
        #expect(child.terminationStatus == 0)
        let counts = try String(contentsOfFile: path, encoding: .utf8).split(separator: " ").compactMap { Int($0) }
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
