// Test helpers: a server on its own loop thread, a blocking raw-socket HTTP client, and curl as a child process.
import EventLoop
import Foundation
import Glibc
import HTTP1
import HTTPServer
import Sys
import TestSupport

/// A server on one loop running on its own thread, listening on 127.0.0.1 with a kernel-chosen port.
final class TestServer: @unchecked Sendable {
    let loop: EventLoop
    let thread: Sys.Thread
    let server: HTTPServer
    let port: UInt16

    init(router: Router, configuration: ServerConfiguration = ServerConfiguration()) throws {
        let loop = try EventLoop()
        self.loop = loop
        server = HTTPServer(router: router, configuration: configuration)
        // Before the loop runs: allowed by the thread rules.
        port = try server.listen(on: loop, address: .loopback(port: 0)).port
        thread = try Sys.Thread { try? loop.run() }
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func stop() {
        loop.stop()
        thread.join()
    }
}

/// A parsed response read by `RawClient`.
struct RawResponse {
    var status: Int
    var head: String
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        for line in head.split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == name.lowercased() {
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}

enum RawClientError: Error {
    case connectFailed(Int32)
    case closedBeforeResponse([UInt8])
    case badResponse(String)
}

/// A blocking TCP client with a receive timeout, for writing exact bytes and reading exact answers.
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16, receiveTimeout: Double = 5) throws {
        do {
            fd = try connectedLoopbackSocket(port: port, receiveTimeout: receiveTimeout)
        } catch KeepAliveClientError.connect(let error) {
            throw RawClientError.connectFailed(error)
        }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// Reads more bytes into the buffer; false on EOF, error or timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<count])
        return true
    }

    /// Reads one response; `headOnly` for answers to HEAD (no body whatever Content-Length says).
    func readResponse(headOnly: Bool = false) throws -> RawResponse {
        var parser = HeadParser(kind: .response)
        var consumed = 0
        while true {
            if !buffer.isEmpty {
                switch parser.parse(buffer) {
                case .complete(let count):
                    consumed = count
                case .needMore:
                    break
                case .failure(let error):
                    throw RawClientError.badResponse("\(error): \(String(decoding: buffer, as: UTF8.self))")
                }
                if parser.isComplete { break }
                buffer.removeAll()
            }
            guard fill() else { throw RawClientError.closedBeforeResponse(buffer) }
        }
        let head = String(decoding: parser.headBytes, as: UTF8.self)
        buffer.removeFirst(consumed)
        var length = 0
        if !headOnly, case .contentLength(let value) = parser.bodyFraming { length = Int(value) }
        while buffer.count < length {
            guard fill() else { throw RawClientError.closedBeforeResponse(buffer) }
        }
        let body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return RawResponse(status: parser.status, head: head, body: body)
    }

    /// Everything until the server closes (or the timeout); `closed` tells whether EOF was seen.
    func readToEnd() -> (bytes: [UInt8], closed: Bool) {
        while true {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                continue
            }
            let bytes = buffer
            buffer.removeAll()
            // 0: orderly EOF; ECONNRESET also means the server is gone; EAGAIN is the timeout.
            return (bytes, count == 0 || errno == ECONNRESET)
        }
    }
}

/// Runs curl with `arguments`; returns its exit status and what it printed (stdout and stderr together).
func curl(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let directory = try makeTemporaryDirectory("curl")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let log = directory + "/out"
    let child = try ChildProcess("/usr/bin/curl", ["-sS", "--max-time", "10"] + arguments, logPath: log)
    let status = child.waitForExit(timeout: .seconds(15)) ?? -1
    let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    return (status, output)
}
