// Running an allocation probe: this test binary again, with only the probe test and the malloc-debug library.
import Foundation

/// What an allocation probe child reported.
public struct ProbeReport {
    /// The child's exit status (nil: killed after the timeout).
    public let status: Int32?
    /// The integers the probe wrote to its file, in order.
    public let counts: [Int]
    /// The child's output, for failure messages.
    public let log: String
}

extension MallocCounter {
    /// Runs the current test binary with only the test `probe` (its full name, e.g.
    /// `GatewayTests.AllocationTests/allocationProbe`), serially, with `LD_PRELOAD` of `debugLibrary` and the
    /// environment variable `key` naming a file; returns the whitespace-separated integers the probe wrote there.
    public static func runProbe(key: String, probe: String) throws -> ProbeReport {
        let directory = try makeTemporaryDirectory("alloc")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/counts"
        var environment = ProcessInfo.processInfo.environment
        environment[key] = path
        environment["LD_PRELOAD"] = debugLibrary
        let child = try ChildProcess(
            CommandLine.arguments[0], ["--testing-library", "swift-testing", "--no-parallel", "--filter", probe],
            environment: environment, logPath: directory + "/log")
        let status = child.waitForExit(timeout: .seconds(60))
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return ProbeReport(
            status: status, counts: text.split(separator: " ").compactMap { Int($0) },
            log: (try? String(contentsOfFile: directory + "/log", encoding: .utf8)) ?? "")
    }
}
