// The fake Kubernetes API as a child process, a client on a loop of its own, and test certificates.
import EventLoop
import Foundation
import JSON
import Synchronization
import Sys
import TestSupport

@testable import Kube

/// `Fixtures/fake_kube.py` running on fresh ports of 127.0.0.1.
final class FakeKube: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/fake_kube.py"
    let process: ChildProcess
    let ports: [UInt16]
    let secure: Bool
    let log: String

    var port: UInt16 { ports[0] }
    var url: String { "\(secure ? "https://localhost" : "http://127.0.0.1"):\(port)" }
    func url(port: UInt16) -> String { "http://127.0.0.1:\(port)" }

    init(portCount: Int = 1, arguments: [String] = [], secure: Bool = false) throws {
        var ports: [UInt16] = []
        while ports.count < portCount {
            let port = freeTCPPort()
            if !ports.contains(port) { ports.append(port) }
        }
        self.ports = ports
        self.secure = secure
        log = try makeTemporaryDirectory("fake-kube") + "/log"
        process = try ChildProcess(
            "/usr/bin/python3", [Self.script] + ports.flatMap { ["--port", String($0)] } + arguments, logPath: log)
        guard
            waitUntil(
                timeout: .seconds(10),
                {
                    (try? String(contentsOfFile: log, encoding: .utf8))?
                        .contains("listening") ?? false
                })
        else {
            throw KubeTestError(
                "the fake API did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
    }

    deinit { process.stop() }

    /// A debug call with curl (no token needed): the answer's JSON.
    @discardableResult
    func debug(_ method: String, _ path: String, _ body: String? = nil) throws -> JSONValue {
        let directory = try makeTemporaryDirectory("curl")
        var arguments = ["-sS", "-X", method, "-o", directory + "/body"]
        if secure { arguments += ["-k"] }
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        // The last port: tests cut the first ones off.
        arguments.append("\(secure ? "https://localhost" : "http://127.0.0.1"):\(ports.last!)\(path)")
        let curl = try ChildProcess("/usr/bin/curl", arguments, logPath: directory + "/err")
        guard curl.waitForExit(timeout: .seconds(10)) == 0 else { throw KubeTestError("curl \(path) failed") }
        return try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/body"))))
    }

    func state() throws -> JSONValue { try debug("GET", "/__state") }

    func seed(_ json: String) throws { try debug("POST", "/__seed", json) }

    func partition(port: UInt16, blocked: Bool) throws {
        try debug("POST", "/__partition", "{\"port\": \(port), \"blocked\": \(blocked)}")
    }
}

struct KubeTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A value handed from the loop thread to the test thread.
final class Box<Value>: @unchecked Sendable {
    private let lock = Mutex<Unchecked<Value>?>(nil)
    func set(_ value: Value) { lock.withLock { $0 = Unchecked(value) } }
    var value: Value? { lock.withLock { $0?.value } }
}

/// A `KubeClient` on a loop of its own; the test thread drives it through `call`.
final class ClientHarness: @unchecked Sendable {
    let running: RunningLoop
    var client: KubeClient!

    init(
        _ endpoint: KubeEndpoint, environment: [String: String] = [:], requestTimeout: Duration = .seconds(3)
    )
        throws
    {
        running = try RunningLoop()
        try running.sync {
            self.client = try KubeClient(
                loop: self.running.loop, endpoint: endpoint, resolver: nil, environment: environment,
                requestTimeout: requestTimeout)
        }
    }

    /// Starts `body` on the loop and waits for the result it delivers.
    func call<T>(
        timeout: Duration = .seconds(10), _ body: @escaping (KubeClient, @escaping (T) -> Void) -> Void
    ) throws -> T {
        let box = Box<T>()
        try running.sync { body(self.client) { box.set($0) } }
        guard waitUntil(timeout: timeout, { box.value != nil }) else { throw KubeTestError("no answer in time") }
        return box.value!
    }

    func stop() {
        try? running.sync { self.client.close() }
        running.stop()
    }
}

/// A CA and a server certificate for localhost and 127.0.0.1, made once with the openssl CLI.
struct TestCertificates: Sendable {
    let directory: String
    var caFile: String { directory + "/ca.pem" }
    var certificateFile: String { directory + "/server.pem" }
    var keyFile: String { directory + "/server.key" }

    static let shared: TestCertificates = {
        do {
            return try TestCertificates()
        } catch {
            fatalError("cannot make test certificates: \(error)")
        }
    }()

    init() throws {
        directory = try makeTemporaryDirectory("kube-certs")
        let d = directory
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            .write(toFile: d + "/ext.cnf", atomically: true, encoding: .utf8)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for arguments in [
            ["req", "-x509"] + ec + ["-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "2", "-subj", "/CN=ca"],
            ["req"] + ec + ["-keyout", d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=localhost"],
            [
                "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
                "-CAcreateserial", "-out", d + "/server.pem", "-days", "2", "-extfile", d + "/ext.cnf",
            ],
        ] {
            let process = try ChildProcess("/usr/bin/openssl", arguments)
            guard process.waitForExit(timeout: .seconds(30)) == 0 else { throw KubeTestError("openssl failed") }
        }
    }
}

/// Writes `text` to `path` atomically (rename), as the kubelet replaces a projected token.
func writeFile(_ path: String, _ text: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}
