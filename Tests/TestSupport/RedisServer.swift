// A real Redis for tests: redis-server in the foreground on a loopback port, stopped by pid, restartable in place.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `redis-server` on `127.0.0.1:port` with no persistence, its log in a temporary directory. It can be stopped (by
/// signal, to its pid) and started again on the same port.
public final class RedisServer: @unchecked Sendable {
    public let port: UInt16
    public let directory: String
    public let logPath: String
    private let extraArguments: [String]
    private let lock = NSLock()
    private var process: ChildProcess?

    /// Starts a server on `port`, or on a free port when nil (trying others if that one is taken meanwhile), and
    /// waits until it answers. `arguments` are added to the command line (e.g. `["--requirepass", "secret"]`).
    public init(port: UInt16? = nil, arguments: [String] = []) throws {
        directory = try makeTemporaryDirectory("redis")
        logPath = directory + "/redis.log"
        extraArguments = arguments
        var attempt = 0
        while true {
            let candidate = port ?? freeTCPPort()
            let process = try Self.launch(port: candidate, directory: directory, logPath: logPath, arguments: arguments)
            if Self.waitReady(process, port: candidate) {
                self.port = candidate
                self.process = process
                return
            }
            process.send(SIGKILL)
            _ = process.waitForExit()
            attempt += 1
            if port != nil || attempt == 5 { throw RedisServerError.notReady(logPath) }
        }
    }

    private static func launch(
        port: UInt16, directory: String, logPath: String, arguments: [String]
    ) throws
        -> ChildProcess
    {
        try ChildProcess(
            "/usr/bin/redis-server",
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory,
                "--daemonize", "no", "--logfile", "",
            ] + arguments, logPath: logPath)
    }

    /// Waits until something on `port` answers an inline PING (with `+PONG`, or `-NOAUTH` when a password is set).
    private static func waitReady(_ process: ChildProcess, port: UInt16) -> Bool {
        _ = waitUntil(timeout: .seconds(10)) { !process.isRunning || answersPing(port: port) }
        return process.isRunning && answersPing(port: port)
    }

    /// Whether the server runs.
    public var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }

    /// The server's process id, nil while stopped.
    public var pid: pid_t? { lock.withLock { process?.pid } }

    /// Sends `signal` (SIGKILL by default; SIGTERM for an orderly shutdown) to the server's pid and waits until it
    /// has exited.
    public func stop(signal: Int32 = SIGKILL) {
        let process = lock.withLock { () -> ChildProcess? in
            let process = self.process
            self.process = nil
            return process
        }
        guard let process else { return }
        process.send(signal)
        if process.waitForExit() == nil {
            process.send(SIGKILL)
            _ = process.waitForExit()
        }
    }

    /// Starts the server again on the same port (stopping it first if it runs) and waits until it answers. The port
    /// is bound with SO_REUSEADDR, but another process may have taken it meanwhile: then this throws.
    public func restart() throws {
        stop()
        let process = try Self.launch(port: port, directory: directory, logPath: logPath, arguments: extraArguments)
        guard Self.waitReady(process, port: port) else {
            process.send(SIGKILL)
            _ = process.waitForExit()
            throw RedisServerError.notReady(logPath)
        }
        lock.withLock { self.process = process }
    }

    /// The server's log so far.
    public func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

public enum RedisServerError: Error, CustomStringConvertible {
    case notReady(String)

    public var description: String {
        switch self {
        case .notReady(let logPath): "redis-server did not answer; see \(logPath)"
        }
    }
}

/// Connects to `127.0.0.1:port` with a blocking socket (1 s timeouts), sends an inline `PING` and reports whether a
/// Redis reply came back (`+PONG`, or an error such as `-NOAUTH` from a server with a password).
public func answersPing(port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 1, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { return false }
    let ping = Array("PING\r\n".utf8)
    guard ping.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == ping.count else {
        return false
    }
    var reply = [UInt8](repeating: 0, count: 64)
    let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    return count > 0 && (reply[0] == UInt8(ascii: "+") || reply[0] == UInt8(ascii: "-"))
}
