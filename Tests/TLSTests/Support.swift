// Test certificates made with the openssl CLI, and TLS peers of ours on a loop: a client probe and a server.
import EventLoop
import Foundation
import Synchronization
import Sys
import TestSupport

@testable import TLS

/// A CA, a server certificate it signed for `localhost` and 127.0.0.1, and a second CA that signed nothing of it.
struct TestCertificates: Sendable {
    let directory: String
    var caFile: String { directory + "/ca.pem" }
    var otherCAFile: String { directory + "/other-ca.pem" }
    var certificateFile: String { directory + "/server.pem" }
    var keyFile: String { directory + "/server.key" }

    /// Made once per test process (EC keys: fast).
    static let shared: TestCertificates = {
        do {
            return try TestCertificates()
        } catch {
            fatalError("cannot make test certificates: \(error)")
        }
    }()

    init() throws {
        directory = try makeTemporaryDirectory("tls-certs")
        let d = directory
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: d + "/ext.cnf", atomically: true, encoding: .utf8)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try Self.openssl(
            ["req", "-x509"] + ec + [
                "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "2",
                "-subj", "/CN=rtc test CA",
            ])
        try Self.openssl(
            ["req", "-x509"] + ec + [
                "-keyout", d + "/other-ca.key", "-out", d + "/other-ca.pem",
                "-days", "2", "-subj", "/CN=rtc other CA",
            ])
        try Self.openssl(
            ["req"] + ec + [
                "-keyout", d + "/server.key", "-out", d + "/server.csr", "-subj",
                "/CN=localhost",
            ])
        try Self.openssl([
            "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
            "-CAcreateserial", "-out", d + "/server.pem", "-days", "2", "-extfile", d + "/ext.cnf",
        ])
    }

    static func openssl(_ arguments: [String]) throws {
        let process = try ChildProcess("/usr/bin/openssl", arguments)
        guard process.waitForExit(timeout: .seconds(30)) == 0 else {
            throw TLSTestError("openssl \(arguments.joined(separator: " ")) failed")
        }
    }
}

struct TLSTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The bytes `index` of a test stream holds: a pattern that a lost, doubled or reordered byte breaks.
func patternByte(_ index: Int, seed: Int) -> UInt8 { UInt8(truncatingIfNeeded: (index &* 31 &+ seed) % 251) }

func pattern(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { patternByte($0, seed: seed) } }

/// What one end of a TLS stream saw; written on the loop thread, read from the test thread.
final class PeerRecord: @unchecked Sendable {
    private let lock = Mutex<State>(State())
    /// Described by counts: a failed expectation must not print a mebibyte.
    struct State: CustomStringConvertible {
        var description: String {
            "handshake \(handshake), received \(received.count) bytes, eof \(eof) at \(receivedAtEOF), closed \(closed), "
                + "error \(error.map { "\($0)" } ?? "none")"
        }
        var handshake = false
        var applicationProtocol: String?
        var version: String?
        var received: [UInt8] = []
        var eof = false
        /// Bytes received when the end was told.
        var receivedAtEOF = -1
        var closed = false
        var error: TLSError?
    }

    var state: State { lock.withLock { $0 } }
    func update(_ body: (inout State) -> Void) { lock.withLock { body(&$0) } }
}

/// A TLS peer of ours: records what it receives; sends `toSend` once the handshake is done; closes when it has
/// received `closeAfter` bytes (if set).
final class Peer: TLSStreamDelegate, ConnectHandler {
    let record = PeerRecord()
    var toSend: [UInt8] = []
    var reply: (([UInt8]) -> [UInt8]?)?
    /// Pause reading after every delivery and resume 1 ms later (a slow consumer).
    var pauseAfterEachDelivery = false
    /// Leave the stream open when the peer ends its side (a peer that never answers a close).
    var ignoreEOF = false
    /// Close once the handshake is done and `toSend` is written.
    var closeAfterSending = false
    var stream: TLSStream?
    let context: TLSContext
    let serverName: String?

    init(context: TLSContext, serverName: String? = nil) {
        self.context = context
        self.serverName = serverName
    }

    /// Client side: connect to `port` on the loop.
    func connect(loop: EventLoop, port: UInt16) throws {
        try Connector.connect(loop: loop, to: .loopback(port: port), timeout: .seconds(5), handler: self)
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {}

    func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector) {
        guard case .connected = result else {
            record.update {
                $0.closed = true; $0.error = .connection(nil)
            }
            return
        }
        do {
            let stream = try TLSStream(context: context, serverName: serverName, delegate: self)
            self.stream = stream
            guard let connection = connector.connection(handler: stream) else { return }
            stream.start(on: connection)
        } catch {
            record.update {
                $0.closed = true; $0.error = error
            }
        }
    }

    /// Server side: take an accepted socket.
    func accept(_ fd: FileDescriptor, loop: EventLoop) throws {
        let stream = try TLSStream(context: context, delegate: self)
        self.stream = stream
        let connection = try Connection(loop: loop, fd: fd, handler: stream)
        stream.start(on: connection)
    }

    func handshakeCompleted(_ stream: TLSStream) {
        record.update {
            $0.handshake = true
            $0.applicationProtocol = stream.applicationProtocol
            $0.version = stream.protocolVersion
        }
        if !toSend.isEmpty { stream.write(toSend) }
        if closeAfterSending { stream.close() }
    }

    func received(_ stream: TLSStream, _ bytes: UnsafeRawBufferPointer) {
        var all: [UInt8] = []
        record.update {
            $0.received.append(contentsOf: bytes)
            all = $0.received
        }
        if let reply, let answer = reply(all) {
            stream.write(answer)
            stream.close()
        }
        if pauseAfterEachDelivery {
            stream.pauseReading()
            stream.connection?.loop.schedule(after: .milliseconds(1)) { stream.resumeReading() }
        }
    }

    func readEOF(_ stream: TLSStream) {
        record.update {
            $0.eof = true
            $0.receivedAtEOF = $0.received.count
        }
        if !ignoreEOF { stream.close() }
    }

    func closed(_ stream: TLSStream, error: TLSError?) {
        record.update {
            $0.closed = true
            $0.error = error
        }
    }
}

/// A TLS server of ours on a loop: every accepted connection gets a `Peer` made by `makePeer`.
final class Server: AcceptHandler {
    let context: TLSContext
    let makePeer: (TLSContext) -> Peer
    var peers: [Peer] = []
    var listener: Listener!

    init(loop: EventLoop, context: TLSContext, makePeer: @escaping (TLSContext) -> Peer) throws {
        self.context = context
        self.makePeer = makePeer
        listener = try Listener(loop: loop, address: .loopback(port: 0), reusePort: false, handler: self)
    }

    var port: UInt16 { listener.address.port }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        let peer = makePeer(context)
        peers.append(peer)
        try? peer.accept(fd, loop: listener.loop)
    }
}
