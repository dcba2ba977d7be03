// Steady state of the fixed-response path allocates nothing: keep-alive GET / served by HTTPServer, mallocs counted.
import Foundation
import Glibc
import HTTPServer
import Synchronization
import Sys
import TestSupport
import Testing

@Suite(.serialized) struct AllocationTests {
    static let requests = 2_000

    /// Runs only in the child started by `keepAliveFixedResponseAllocatesNothing`.
    @Test func allocationProbe() throws {
        guard let path = getenv(AllocationProbeKey.httpServer).map({ String(cString: $0) }) else { return }
        guard MallocCounter.install() else {
            try "-1 -1 -1".write(toFile: path, atomically: false, encoding: .utf8)
            return
        }
        var router = Router()
        router.get("/", fixed: FixedResponse(status: 200, contentType: "text/plain", body: "ok"))
        let server = try TestServer(router: router)
        defer { server.stop() }
        let client = try KeepAliveClient(port: server.port, request: "GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        // Warm-up: connection set-up, parser pool, lazy globals, the Date line.
        for _ in 0..<200 { client.responseLength = client.roundTrip() }
        var checksum = 0
        let calibration = MallocCounter.counted {
            for index in 0..<10 { checksum &+= [UInt8](repeating: UInt8(index), count: 100).count }
        }
        var bad = 0
        let loopThread = ThreadRecorder()
        server.loop.execute { loopThread.record() }
        guard let serverThread = loopThread.wait() else {
            try "-1 -1 -1".write(toFile: path, atomically: false, encoding: .utf8)
            return
        }
        // The server's loop and this (client) thread: the test runner's own threads are not counted.
        let counted = MallocCounter.counted(threads: [serverThread, MallocCounter.currentThread()]) {
            for _ in 0..<AllocationTests.requests where client.roundTrip() != client.responseLength { bad += 1 }
        }
        try "\(calibration) \(counted) \(bad)".write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test func keepAliveFixedResponseAllocatesNothing() throws {
        guard getenv(AllocationProbeKey.httpServer) == nil else { return }
        try #require(FileManager.default.fileExists(atPath: MallocCounter.debugLibrary), "cannot count allocations")
        let report = try MallocCounter.runProbe(
            key: AllocationProbeKey.httpServer, probe: "HTTPServerTests.AllocationTests/allocationProbe")
        #expect(report.status == 0, "\(report.log)")
        let counts = report.counts
        try #require(counts.count == 3)
        // The counter works: ten arrays are at least ten allocations.
        #expect(counts[0] >= 10)
        #expect(counts[2] == 0, "responses of an unexpected length")
        print("HTTPServer keep-alive GET /: \(counts[1]) mallocs over \(AllocationTests.requests) requests")
        #if DEBUG
        // -Onone boxes captured variables and does not specialise: only optimized code is held to zero.
        #expect(counts[1] >= 0)
        #else
        #expect(counts[1] == 0)
        #endif
    }
}
