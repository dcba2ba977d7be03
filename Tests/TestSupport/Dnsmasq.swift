// A real DNS server for tests: dnsmasq on a loopback port, answering only the host records a test gives it.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// dnsmasq in the foreground on `127.0.0.1:port`, with no upstream servers, logging every query to a file.
public final class Dnsmasq: @unchecked Sendable {
    public let port: UInt16
    public let directory: String
    public let logPath: String
    private let hostsPath: String
    private var process: ChildProcess

    /// `records` maps a name to its addresses (IPv4 or IPv6 text); `ttl` is the TTL of every answer. Names under
    /// `localDomains` that have no record get NXDOMAIN; any other name gets REFUSED (there is no upstream).
    public init(records: [String: [String]], ttl: Int = 30, localDomains: [String] = ["cluster.local", "test"]) throws {
        directory = try makeTemporaryDirectory("dnsmasq")
        logPath = directory + "/queries.log"
        hostsPath = directory + "/hosts"
        try Self.writeHosts(records, to: hostsPath)
        // dnsmasq binds TCP as well as UDP: a port free for UDP a moment ago can be taken for TCP (or taken again).
        // dnsmasq then exits at once, so start again on another port.
        var attempt = 0
        while true {
            let port = freeUDPPort()
            try? FileManager.default.removeItem(atPath: logPath)
            let process = try Self.start(
                port: port, hostsPath: hostsPath, logPath: logPath, ttl: ttl, localDomains: localDomains)
            if Self.waitReady(process, logPath: logPath) {
                self.port = port
                self.process = process
                return
            }
            process.stop()
            attempt += 1
            if attempt == 5 { throw DnsmasqError.notReady(logPath) }
        }
    }

    private static func writeHosts(_ records: [String: [String]], to path: String) throws {
        var text = ""
        for (name, addresses) in records.sorted(by: { $0.key < $1.key }) {
            for address in addresses { text += "\(address) \(name)\n" }
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    private static func start(
        port: UInt16, hostsPath: String, logPath: String, ttl: Int, localDomains: [String]
    ) throws -> ChildProcess {
        try ChildProcess(
            "/usr/sbin/dnsmasq",
            [
                "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--user=root", "--group=root",
                "--port=\(port)", "--listen-address=127.0.0.1", "--bind-interfaces", "--addn-hosts=\(hostsPath)",
                "--local-ttl=\(ttl)", "--neg-ttl=\(ttl)", "--log-queries", "--log-facility=\(logPath)",
                "--pid-file=", "--conf-file=/dev/null", "--domain-needed",
            ] + localDomains.map { "--local=/\($0)/" })
    }

    private static func waitReady(_ process: ChildProcess, logPath: String) -> Bool {
        func started() -> Bool {
            (try? String(contentsOfFile: logPath, encoding: .utf8))?.contains("started") ?? false
        }
        _ = waitUntil(timeout: .seconds(10)) { started() || !process.isRunning }
        return process.isRunning && started()
    }

    /// Replaces the records and reloads them (SIGHUP re-reads `--addn-hosts`).
    public func update(records: [String: [String]]) throws {
        try Self.writeHosts(records, to: hostsPath)
        let before = queriesLog().components(separatedBy: "read ").count
        process.send(SIGHUP)
        _ = waitUntil(timeout: .seconds(5)) { self.queriesLog().components(separatedBy: "read ").count > before }
    }

    /// The query log so far.
    public func queriesLog() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// How many queries for `name` (any type) dnsmasq has seen.
    public func queryCount(for name: String) -> Int {
        queriesLog().split(separator: "\n").filter { $0.contains("query[") && $0.hasSuffix(" \(name) from 127.0.0.1") }
            .count
    }

    public func stop() {
        process.stop()
    }

    deinit {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

public enum DnsmasqError: Error {
    case notReady(String)
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
public func freeUDPPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}
