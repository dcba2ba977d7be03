// rtc-bench ws-echo against the `websockets` library and raw sockets; rtc-bench ws-load against ws-echo and others.
import Foundation
import TestSupport
import Testing

/// Where the programs the tests start live.
enum Paths {
    /// The package root, three levels above this file (`Tests/BenchToolTests/WebSocketToolTests.swift`).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    /// `RTC_BENCH_BIN`, else the debug build that `swift build --build-tests` (and `make test`) produces.
    static var bench: String {
        ProcessInfo.processInfo.environment["RTC_BENCH_BIN"] ?? packageRoot + "/.build/debug/rtc-bench"
    }
    static let checker = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/ws_check.py"
    ).path
    static let wsTools = packageRoot + "/bench/ws_tools.py"
    /// Debian's Python: the one that sees `python3-websockets` (PLATFORM.md).
    static let python = "/usr/bin/python3"
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
}

func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// A process started for one test, with its output in a log file of its own.
final class Started {
    let process: ChildProcess
    let log: String

    init(_ directory: String, _ name: String, _ executable: String, _ arguments: [String]) throws {
        log = directory + "/" + name + ".log"
        process = try ChildProcess(executable, arguments, logPath: log)
    }

    var output: String { readText(log) }

    /// Waits for the process to exit (it must within `timeout`) and returns its exit status and output.
    func finish(timeout: Duration = .seconds(8)) -> (status: Int32?, output: String) {
        let status = process.waitForExit(timeout: timeout)
        if status == nil { process.stop(grace: .milliseconds(100)) }
        return (status, output)
    }
}

/// `rtc-bench ws-echo` on a free port, until `stop()` or deinit.
final class EchoServer {
    let directory: String
    let port = freeTCPPort()
    let server: Started

    init(workers: Int = 1) throws {
        guard FileManager.default.isExecutableFile(atPath: Paths.bench) else {
            throw SetupError(description: "no rtc-bench at \(Paths.bench): run `swift build` or set RTC_BENCH_BIN")
        }
        directory = try makeTemporaryDirectory("bench-tool")
        server = try Started(
            directory, "ws-echo", Paths.bench, ["ws-echo", "--port", "\(port)", "--workers", "\(workers)"])
        guard waitUntil(timeout: .seconds(5), { server.output.contains("listening on 127.0.0.1:\(port)") }) else {
            throw SetupError(description: "ws-echo did not start: \(server.output)")
        }
    }

    var url: String { "ws://127.0.0.1:\(port)/echo" }

    deinit {
        server.process.stop(grace: .seconds(2))
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The fields of ws-load's summary line (`name=value` words).
func summary(_ output: String) -> [String: String] {
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("msgs=") }) else { return [:] }
    var fields: [String: String] = [:]
    for word in line.split(separator: " ") {
        let parts = word.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
    }
    return fields
}

@Suite(.serialized) struct WebSocketToolTests {
    @Test func echoServesTheWebsocketsLibraryByteExact() throws {
        let echo = try EchoServer()
        let client = try Started(echo.directory, "library", Paths.python, ["-u", Paths.checker, "library", echo.url])
        let (status, output) = client.finish(timeout: .seconds(15))
        #expect(status == 0, "\(output)")
        #expect(output.contains("ok binary and text 1048576"), "\(output)")
        #expect(output.contains("ok close 1000"), "\(output)")
        #expect(echo.server.process.isRunning)
    }

    @Test func echoHandlesSplitAndBatchedFramesAndProtocolErrors() throws {
        let echo = try EchoServer()
        let client = try Started(
            echo.directory, "raw", Paths.python, ["-u", Paths.checker, "raw", "127.0.0.1", "\(echo.port)"])
        let (status, output) = client.finish()
        #expect(status == 0, "\(output)")
        #expect(output.contains("ok unmasked frame -> close 1002"), "\(output)")
    }

    @Test func loadAgainstEchoCountsCheckedEchoes() throws {
        let echo = try EchoServer(workers: 2)
        let load = try Started(
            echo.directory, "load", Paths.bench,
            [
                "ws-load", "--url", echo.url, "--connections", "10", "--in-flight", "4", "--size", "300",
                "--duration", "1", "--workers", "2",
            ])
        let (status, output) = load.finish()
        let fields = summary(output)
        #expect(status == 0, "\(output)")
        #expect(fields["errors"] == "0", "\(output)")
        #expect(fields["connect_failures"] == "0", "\(output)")
        #expect((Int(fields["msgs"] ?? "") ?? 0) > 0, "\(output)")
        #expect(echo.server.process.isRunning)
    }

    @Test func loadReportsRefusedConnectionsAndFails() throws {
        let directory = try makeTemporaryDirectory("bench-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = freeTCPPort()
        let load = try Started(
            directory, "load", Paths.bench,
            ["ws-load", "--url", "ws://127.0.0.1:\(port)/", "--connections", "5", "--duration", "1"])
        let (status, output) = load.finish()
        #expect(status == 1, "\(output)")
        #expect(summary(output)["connect_failures"] == "5", "\(output)")
    }

    /// ws_tools.py's echo-raw answers with 64 bytes of "x" whatever it got: right lengths, wrong content.
    @Test func loadCatchesAlteredEchoesUnlessOnlyLengthsAreChecked() throws {
        let directory = try makeTemporaryDirectory("bench-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = freeTCPPort()
        let upstream = try Started(directory, "echo-raw", Paths.python, ["-u", Paths.wsTools, "echo-raw", "\(port)"])
        defer { upstream.process.stop(grace: .seconds(2)) }
        let listening = waitUntil(timeout: .seconds(5)) {
            let probe = try? Started(
                directory, "probe", Paths.bench,
                ["ws-load", "--url", "ws://127.0.0.1:\(port)/", "--check", "length", "--duration", "0"])
            return probe?.finish().status == 0
        }
        #expect(listening, "echo-raw did not come up: \(upstream.output)")
        let arguments = ["ws-load", "--url", "ws://127.0.0.1:\(port)/", "--connections", "3", "--duration", "0.3"]
        let content = try Started(directory, "content", Paths.bench, arguments).finish()
        #expect(content.status == 1, "\(content.output)")
        #expect(summary(content.output)["errors"] == "3", "\(content.output)")
        let length = try Started(directory, "length", Paths.bench, arguments + ["--check", "length"]).finish()
        #expect(length.status == 0, "\(length.output)")
        #expect(summary(length.output)["errors"] == "0", "\(length.output)")
    }
}
