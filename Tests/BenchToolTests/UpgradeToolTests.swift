// rtc-bench ws-upgrades against ws-echo (every connection's whole exchange succeeds) and against a closed port.
import Foundation
import TestSupport
import Testing

/// The fields of ws-upgrades' summary line (`name=value` words).
func upgradeSummary(_ output: String) -> [String: String] {
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("upgrades=") }) else { return [:] }
    var fields: [String: String] = [:]
    for word in line.split(separator: " ") {
        let parts = word.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
    }
    return fields
}

@Suite(.serialized) struct UpgradeToolTests {
    @Test func upgradesAgainstEchoAllSucceed() throws {
        let echo = try EchoServer()
        let run = try Started(
            echo.directory, "upgrades", Paths.bench,
            [
                "ws-upgrades", "--url", echo.url, "--total", "200", "--concurrency", "16", "--cpu-pids",
                "\(echo.server.process.pid)",
            ])
        let (status, output) = run.finish()
        let fields = upgradeSummary(output)
        #expect(status == 0, "\(output)")
        #expect(fields["upgrades"] == "200", "\(output)")
        #expect(fields["failures"] == "0", "\(output)")
        #expect((Int(fields["rate"] ?? "") ?? 0) > 0, "\(output)")
        #expect(fields["cpu_ticks"] != nil, "\(output)")
        #expect(echo.server.process.isRunning)
    }

    @Test func upgradesWithTwoLoopsAndSourceAddressesAllSucceed() throws {
        let echo = try EchoServer()
        let run = try Started(
            echo.directory, "upgrades", Paths.bench,
            [
                "ws-upgrades", "--url", echo.url, "--total", "101", "--concurrency", "7", "--workers", "2",
                "--sources", "3",
            ])
        let (status, output) = run.finish()
        #expect(status == 0, "\(output)")
        #expect(upgradeSummary(output)["upgrades"] == "101", "\(output)")
    }

    @Test func upgradesAgainstAClosedPortFail() throws {
        let directory = try makeTemporaryDirectory("bench-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = freeTCPPort()
        let run = try Started(
            directory, "upgrades", Paths.bench,
            ["ws-upgrades", "--url", "ws://127.0.0.1:\(port)/", "--total", "200", "--concurrency", "16"])
        let (status, output) = run.finish()
        #expect(status == 1, "\(output)")
        #expect(upgradeSummary(output)["upgrades"] == "0", "\(output)")
        #expect(upgradeSummary(output)["failures"] == "200", "\(output)")
    }

    /// ws_tools.py's echo-raw answers every frame with "x" bytes: the byte-for-byte echo check must reject it.
    @Test func upgradesCatchAWrongEcho() throws {
        let directory = try makeTemporaryDirectory("bench-tool")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = freeTCPPort()
        // WS_SIZE=16: echo-raw answers each 22-byte client frame (16-byte payload, masked) with an 18-byte frame
        // of 16 "x" bytes, the length ws-upgrades expects, so only the content check can catch it.
        let log = directory + "/echo-raw.log"
        let upstream = try ChildProcess(
            Paths.python, ["-u", Paths.wsTools, "echo-raw", "\(port)"],
            environment: ProcessInfo.processInfo.environment.merging(["WS_SIZE": "16"]) { $1 }, logPath: log)
        defer { upstream.stop(grace: .seconds(2)) }
        let listening = waitUntil(timeout: .seconds(5)) {
            let probe = try? Started(
                directory, "probe", Paths.bench,
                [
                    "ws-load", "--url", "ws://127.0.0.1:\(port)/", "--size", "16", "--check", "length", "--duration",
                    "0",
                ])
            return probe?.finish().status == 0
        }
        #expect(listening, "echo-raw did not come up: \(readText(log))")
        let last = try Started(
            directory, "upgrades", Paths.bench,
            [
                "ws-upgrades", "--url", "ws://127.0.0.1:\(port)/", "--total", "3", "--concurrency", "1", "--timeout",
                "3",
            ]
        ).finish()
        #expect(!last.output.contains("timed_out"), "\(last.output)")
        #expect(last.status == 1, "\(last.output)")
        #expect(upgradeSummary(last.output)["failures"] == "3", "\(last.output)")
    }
}
