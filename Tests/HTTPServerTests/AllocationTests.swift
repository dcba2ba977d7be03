// Steady state of the fixed-response path allocates nothing: keep-alive GET / served by HTTPServer, mallocs counted.
import Foundation
import Glibc
import HTTPServer
import Synchronization
import Sys
import TestSupport
import Testing

/// A keep-alive client that allocates nothing per request: fixed request bytes, one preallocated receive buffer.
final class QuietClient {
    let fd: Int32
    let request = Array("GET / HTTP/1.1\r\nHost: bench\r\n\r\n".utf8)
    var buffer = [UInt8](repeating: 0, count: 4096)
    var responseLength = 0

    init(port: UInt16) throws {
        let raw = try RawClient(port: port)
        fd = dup(raw.fd)
        buffer.withUnsafeMutableBytes { _ = $0 }
    }

    deinit { close(fd) }

    /// One request and its whole response; returns the response's byte count.
    func roundTrip() -> Int {
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return -1 }
        var total = 0
        // The response's length is known after the first round trip (Date keeps its length).
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
        let client = try QuietClient(port: server.port)
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
        let directory = try makeTemporaryDirectory("alloc")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/counts"
        var environment = ProcessInfo.processInfo.environment
        environment[AllocationProbeKey.httpServer] = path
        environment["LD_PRELOAD"] = MallocCounter.debugLibrary
        let child = try ChildProcess(
            CommandLine.arguments[0],
            [
                "--testing-library", "swift-testing", "--no-parallel", "--filter",
                "HTTPServerTests.AllocationTests/allocationProbe",
            ],
            environment: environment, logPath: directory + "/log")
        let status = child.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\((try? String(contentsOfFile: directory + "/log", encoding: .utf8)) ?? "")")
        let counts = try String(contentsOfFile: path, encoding: .utf8).split(separator: " ").compactMap { Int($0) }
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
