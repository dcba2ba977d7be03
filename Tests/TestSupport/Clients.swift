// The Python WebSocket client driver shared by the end-to-end tests: one `websockets` client per name, driven by one
// JSON command per line (Fixtures/clients.py).
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The Python client driver (`Fixtures/clients.py`): one JSON command in, one JSON reply out. Its clients use the
/// `websockets` library, a client nobody in this project wrote.
public final class Clients {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer: [UInt8] = []

    /// Debian's Python runs it: the one that sees `python3-websockets`.
    static let driver = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/clients.py"
    ).path

    public init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Clients.driver]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    deinit {
        try? input.fileHandleForWriting.write(contentsOf: Data("{\"op\":\"quit\"}\n".utf8))
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// Sends one command and waits (at most `timeout`) for its reply.
    @discardableResult
    public func call(_ command: [String: Any], timeout: Double = 30) throws -> [String: Any] {
        var line = try JSONSerialization.data(withJSONObject: command)
        line.append(0x0A)
        try input.fileHandleForWriting.write(contentsOf: line)
        let fd = output.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let reply = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                guard let object = try JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any] else {
                    throw ClientsError("bad reply: \(String(decoding: reply, as: UTF8.self))")
                }
                return object
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw ClientsError("no reply to \(command) within \(timeout) s") }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, Int32(min(left, 1) * 1000))
            guard poller.revents != 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { throw ClientsError("the client driver exited") }
            buffer += chunk[0..<count]
        }
    }

    public func connect(_ name: String, _ url: String) throws -> [String: Any] {
        try call(["op": "connect", "name": name, "url": url])
    }

    public func message(_ name: String, to: String, id: String, payload: String = "{}") throws {
        try call(["op": "message", "name": name, "to": to, "msgId": id, "payload": payload])
    }

    /// Waits for `count` unread frames of `type` and takes them.
    public func wait(_ name: String, _ type: String, count: Int, timeout: Double = 20) throws -> [[String: Any]] {
        let reply = try call(
            ["op": "wait", "name": name, "type": type, "count": count, "timeout": timeout], timeout: timeout + 10)
        let frames = reply["frames"] as? [[String: Any]] ?? []
        if frames.count < count {
            Issue.record("\(name): \(frames.count) of \(count) '\(type)' frames; others: \(reply["others"] ?? "")")
        }
        return frames
    }

    public func closed(_ name: String, timeout: Double = 20) throws -> [String: Any] {
        try call(["op": "closed", "name": name, "timeout": timeout], timeout: timeout + 10)
    }
}

/// The driver failed or did not answer.
public struct ClientsError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
