// rtc-bench relay, each backend in front of real servers: keep-alive HTTP through it, a 4 MiB echo that needs
// back-pressure, a half-close whose answer comes after the client's end of input, and the signal stop.
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether `rtc-bench relay --probe` says the backend can run on this machine (io_uring may be disabled or blocked).
func relayBackendAvailable(_ backend: String) -> Bool {
    guard FileManager.default.isExecutableFile(atPath: Paths.bench),
        let probe = try? ChildProcess(Paths.bench, ["relay", "--backend", backend, "--probe"])
    else { return false }
    return probe.waitForExit(timeout: .seconds(10)) == 0
}

/// A blocking TCP echo server on a thread per connection: echoes every byte, and once the client has shut down its
/// writing side, sends "END <byte count>\n" and closes. That last line exists only if the end of input arrived.
final class TrailerEchoServer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            close(fd)
            throw SetupError(description: "echo server: bind/listen failed, errno \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        listener = fd
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                Thread.detachNewThread { TrailerEchoServer.serve(client) }
            }
        }
    }

    private static func serve(_ fd: Int32) {
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var total = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 { return }
            if count == 0 { break }
            total += count
            guard sendAll(fd, buffer[0..<count]) else { return }
        }
        _ = sendAll(fd, ArraySlice("END \(total)\n".utf8))
    }

    deinit {
        // shutdown wakes the thread blocked in accept(2); close alone would not.
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

/// Sends every byte of `bytes` on a blocking socket; false on an error.
func sendAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let sent = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }
}

/// A blocking client socket connected to 127.0.0.1:`port`, with a 10 s receive timeout.
func connectedSocket(_ port: UInt16) throws -> Int32 {
    do {
        return try connectedLoopbackSocket(port: port, receiveTimeout: 10)
    } catch KeepAliveClientError.connect(let error) {
        throw SetupError(description: "connect to port \(port) failed, errno \(error)")
    }
}

/// Everything `fd` receives until the peer closes (or the receive timeout).
func receiveAll(_ fd: Int32) -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { return result }
        result += buffer[0..<count]
    }
}

/// `rtc-bench relay` with one backend in front of `rtc-bench http-server` and of a trailer echo server.
final class RelayRig {
    let directory: String
    let httpPort = freeTCPPort()
    let httpRelayPort = freeTCPPort()
    let echoRelayPort = freeTCPPort()
    let http: Started
    let echo: TrailerEchoServer
    let httpRelay: Started
    let echoRelay: Started

    init(backend: String) throws {
        guard FileManager.default.isExecutableFile(atPath: Paths.bench) else {
            throw SetupError(description: "no rtc-bench at \(Paths.bench): run `swift build` or set RTC_BENCH_BIN")
        }
        directory = try makeTemporaryDirectory("relay-tool")
        http = try Started(directory, "http-server", Paths.bench, ["http-server", "--port", "\(httpPort)"])
        echo = try TrailerEchoServer()
        httpRelay = try Started(
            directory, "relay-http", Paths.bench,
            [
                "relay", "--listen", "127.0.0.1:\(httpRelayPort)", "--upstream", "127.0.0.1:\(httpPort)",
                "--backend", backend,
            ])
        // Small buffers, so the 4 MiB echo takes many partial sends and pauses; for uring-multishot only 16 of
        // them, so receives also run out of buffers and must be armed again.
        echoRelay = try Started(
            directory, "relay-echo", Paths.bench,
            [
                "relay", "--listen", "127.0.0.1:\(echoRelayPort)", "--upstream", "127.0.0.1:\(echo.port)",
                "--backend", backend, "--buffer-size", "4096", "--buffer-count", "16",
            ])
        for (started, port) in [(http, httpPort), (httpRelay, httpRelayPort), (echoRelay, echoRelayPort)] {
            guard waitUntil(timeout: .seconds(10), { started.output.contains("listening on 127.0.0.1:\(port)") })
            else { throw SetupError(description: "\(started.log) did not start: \(started.output)") }
        }
        #expect(httpRelay.output.contains("backend \(backend)"), "\(httpRelay.output)")
    }

    deinit {
        for started in [httpRelay, echoRelay, http] { started.process.stop(grace: .seconds(2)) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// 200 requests on one keep-alive connection; every response must be a 200 with the body "ok".
    func keepAliveRequests() throws {
        let fd = try connectedSocket(httpRelayPort)
        defer { close(fd) }
        let request = Array("GET / HTTP/1.1\r\nHost: relay.test\r\n\r\n".utf8)
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var answered = 0
        for _ in 0..<200 {
            guard sendAll(fd, request[...]) else { break }
            // Read until one whole response (head and Content-Length body) is there.
            var response: (status: String, body: String)?
            while response == nil {
                response = takeResponse(&pending)
                if response != nil { break }
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                pending += buffer[0..<count]
            }
            guard let response, response.status.hasPrefix("HTTP/1.1 200"), response.body == "ok" else {
                Issue.record("request \(answered + 1): \(String(describing: response))")
                break
            }
            answered += 1
        }
        #expect(answered == 200)
        #expect(pending.isEmpty)
    }

    /// One response from the front of `pending` (removed), or nil when it is not complete yet.
    private func takeResponse(_ pending: inout [UInt8]) -> (status: String, body: String)? {
        let separator = Array("\r\n\r\n".utf8)
        guard pending.count >= 4,
            let end = (0...(pending.count - 4)).first(where: { Array(pending[$0..<$0 + 4]) == separator })
        else { return nil }
        let head = String(decoding: pending[0..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n").map(String.init)
        var length = 0
        for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? -1
        }
        guard length >= 0, pending.count >= end + 4 + length else { return nil }
        let body = String(decoding: pending[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        pending.removeFirst(end + 4 + length)
        return (lines.first ?? "", body)
    }

    /// Sends `payload` from a second thread (the echo comes back while it is still being sent), shuts down the
    /// client's writing side and returns everything received until the relay closes the connection.
    func echoed(_ payload: [UInt8]) throws -> [UInt8] {
        let fd = try connectedSocket(echoRelayPort)
        defer { close(fd) }
        let sent = SentFlag()
        let writer = Thread {
            let ok = sendAll(fd, payload[...])
            shutdown(fd, Int32(SHUT_WR))
            sent.set(ok)
        }
        writer.start()
        let received = receiveAll(fd)
        #expect(waitUntil(timeout: .seconds(10)) { sent.value != nil })
        #expect(sent.value == true, "the client could not send everything")
        return received
    }
}

/// Whether a writer thread sent everything; nil while it runs.
final class SentFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Bool?

    var value: Bool? { lock.withLock { stored } }
    func set(_ ok: Bool) { lock.withLock { stored = ok } }
}

/// The three checks for one backend.
func checkRelay(_ backend: String) throws {
    let rig = try RelayRig(backend: backend)
    try rig.keepAliveRequests()

    // 4 MiB through 4 KiB buffers: the echo server and the client both hold back at times.
    var generator = SystemRandomNumberGenerator()
    let payload = (0..<(4 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    let big = try rig.echoed(payload)
    let trailer = Array("END \(payload.count)\n".utf8)
    #expect(big.count == payload.count + trailer.count)
    // A Bool, so a failure does not print 4 MiB of bytes.
    let identical = big.elementsEqual(payload + trailer)
    #expect(identical, "the 4 MiB echo differs from what was sent (\(big.count) bytes received)")

    // The trailer is written only after the echo server read the end of input, which the relay passed on while
    // the other direction stayed open.
    let small = try rig.echoed(Array("half-close".utf8))
    #expect(String(decoding: small, as: UTF8.self) == "half-close" + "END 10\n")

    #expect(rig.httpRelay.process.isRunning && rig.echoRelay.process.isRunning)
    let status = rig.httpRelay.process.stop(grace: .seconds(5))
    #expect(status == 0, "relay exit status after SIGTERM: \(String(describing: status))")
    #expect(rig.httpRelay.output.contains("relay stopped"), "\(rig.httpRelay.output)")
}

@Suite(.serialized) struct RelayToolTests {
    @Test func epollRelaysHTTPBigEchoAndHalfClose() throws {
        try checkRelay("epoll")
    }

    @Test(.enabled(if: relayBackendAvailable("uring"), "io_uring is not available here"))
    func uringRelaysHTTPBigEchoAndHalfClose() throws {
        try checkRelay("uring")
    }

    @Test(.enabled(if: relayBackendAvailable("uring-multishot"), "multishot io_uring is not available here"))
    func uringMultishotRelaysHTTPBigEchoAndHalfClose() throws {
        try checkRelay("uring-multishot")
    }

    @Test func probeAnswersForEpollAndBadOptionsFail() throws {
        #expect(relayBackendAvailable("epoll"))
        let directory = try makeTemporaryDirectory("relay-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bad = try Started(directory, "bad", Paths.bench, ["relay", "--listen", "127.0.0.1:1", "--backend", "kq"])
        let (status, output) = bad.finish()
        #expect(status == 2, "\(output)")
        #expect(output.contains("--backend needs one of epoll, uring, uring-multishot"), "\(output)")
    }
}
