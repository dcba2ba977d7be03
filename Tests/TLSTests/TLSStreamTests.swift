// TLS streams over real loopback sockets: ours against ours, against `openssl s_server`, and `curl` against ours.
import EventLoop
import Foundation
import Sys
import TestSupport
import Testing

@testable import TLS

@Suite(.serialized) struct TLSStreamTests {
    let certificates = TestCertificates.shared

    /// Our client and our server on one loop, 1 MiB each way, ALPN http/1.1, TLS 1.3.
    @Test func ourClientAndServerExchangeOneMebibyteEachWay() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let size = 1 << 20
        let up = pattern(size, seed: 1)
        let down = pattern(size, seed: 7)
        let serverContext = try TLSContext.server(
            certificateFile: certificates.certificateFile, keyFile: certificates.keyFile)
        let clientContext = try TLSContext.client(caFile: certificates.caFile)
        let (server, client) = try running.sync {
            let server = try Server(loop: running.loop, context: serverContext) { context in
                let peer = Peer(context: context)
                peer.toSend = down
                return peer
            }
            let client = Peer(context: clientContext, serverName: "localhost")
            client.toSend = up
            try client.connect(loop: running.loop, port: server.port)
            return (Unchecked(server), Unchecked(client))
        }
        #expect(waitUntil(timeout: .seconds(30)) { client.value.record.state.received.count >= size })
        #expect(
            waitUntil(timeout: .seconds(30)) {
                (try? running.sync { server.value.peers.first?.record.state.received.count ?? 0 }) ?? 0 >= size
            })
        let clientState = client.value.record.state
        #expect(clientState.handshake)
        #expect(clientState.applicationProtocol == "http/1.1")
        #expect(clientState.version == "TLSv1.3")
        #expect(sameBytes(clientState.received, down))
        #expect(clientState.error == nil)
        let serverState = try running.sync { server.value.peers[0].record.state }
        #expect(serverState.applicationProtocol == "http/1.1")
        #expect(sameBytes(serverState.received, up))
        // An orderly close: close_notify one way, then the other, no error on either side.
        try running.sync { client.value.stream?.close() }
        #expect(waitUntil { client.value.record.state.closed })
        #expect(waitUntil { (try? running.sync { server.value.peers[0].record.state.closed }) ?? false })
        #expect(client.value.record.state.error == nil)
        #expect(try running.sync { server.value.peers[0].record.state.eof })
    }

    /// A consumer that pauses after every delivery still gets every byte, in order, and the end only after them.
    @Test func aPausingReaderGetsEverythingThenTheEnd() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let size = 1 << 20
        let up = pattern(size, seed: 3)
        let serverContext = try TLSContext.server(
            certificateFile: certificates.certificateFile, keyFile: certificates.keyFile)
        let clientContext = try TLSContext.client(caFile: certificates.caFile)
        let server = try running.sync {
            let server = try Server(loop: running.loop, context: serverContext) { context in
                let peer = Peer(context: context)
                peer.pauseAfterEachDelivery = true
                return peer
            }
            let client = Peer(context: clientContext, serverName: "localhost")
            client.toSend = up
            client.closeAfterSending = true
            try client.connect(loop: running.loop, port: server.port)
            return Unchecked(server)
        }
        #expect(
            waitUntil(timeout: .seconds(30)) {
                (try? running.sync { server.value.peers.first?.record.state.closed }) ?? false == true
            })
        let state = try running.sync { server.value.peers[0].record.state }
        #expect(sameBytes(state.received, up))
        let (eof, receivedAtEOF, error) = (state.eof, state.receivedAtEOF, state.error)
        #expect(eof)
        #expect(receivedAtEOF == size)
        #expect(error == nil)
    }

    /// `close()` waits for the peer's end, but not for ever: a peer that never closes is closed on after
    /// `closeTimeout`.
    @Test func closeIsBoundedWhenThePeerNeverCloses() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let serverContext = try TLSContext.server(
            certificateFile: certificates.certificateFile, keyFile: certificates.keyFile)
        let clientContext = try TLSContext.client(caFile: certificates.caFile)
        let client = try running.sync {
            let server = try Server(loop: running.loop, context: serverContext) { context in
                let peer = Peer(context: context)
                peer.ignoreEOF = true
                return peer
            }
            let client = Peer(context: clientContext, serverName: "localhost")
            client.toSend = Array("bye".utf8)
            try client.connect(loop: running.loop, port: server.port)
            return Unchecked((client, server))
        }
        #expect(
            waitUntil {
                (try? running.sync { client.value.1.peers.first?.record.state.received.count ?? 0 }) ?? 0 == 3
            })
        let start = ContinuousClock.now
        try running.sync {
            client.value.0.stream?.closeTimeout = .milliseconds(200)
            client.value.0.stream?.close()
        }
        #expect(waitUntil(timeout: .seconds(3)) { client.value.0.record.state.closed })
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(200) && elapsed < .seconds(2))
        #expect(client.value.0.record.state.error == nil)
        // The server saw close_notify and the TCP end, and (ignoring both) is still open: the stream leaves that
        // decision to its delegate.
        #expect(
            waitUntil {
                (try? running.sync { client.value.1.peers[0].stream?.receivedCloseNotify }) ?? false == true
            })
        #expect(try running.sync { client.value.1.peers[0].record.state.closed } == false)
    }

    /// Our client against `openssl s_server -www` (which answers a GET with a status page).
    @Test func ourClientAgainstOpenSSLServer() throws {
        let port = freeTCPPort()
        let log = try makeTemporaryDirectory("s_server") + "/log"
        let server = try ChildProcess(
            "/usr/bin/openssl",
            [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificates.certificateFile, "-key",
                certificates.keyFile, "-alpn", "http/1.1", "-www", "-quiet",
            ], logPath: log)
        defer { server.stop() }
        #expect(waitUntil { canConnect(port: port) })
        let running = try RunningLoop()
        defer { running.stop() }
        let clientContext = try TLSContext.client(caFile: certificates.caFile)
        let client = try running.sync {
            let client = Peer(context: clientContext, serverName: "localhost")
            client.toSend = Array("GET / HTTP/1.0\r\n\r\n".utf8)
            try client.connect(loop: running.loop, port: port)
            return Unchecked(client)
        }
        #expect(waitUntil(timeout: .seconds(10)) { client.value.record.state.closed })
        let state = client.value.record.state
        #expect(state.handshake)
        #expect(state.applicationProtocol == "http/1.1")
        #expect(state.error == nil)
        let text = String(decoding: state.received, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.0 200 ok"))
        #expect(text.contains("Protocol  : TLSv1.3"))
    }

    /// `curl --cacert` against our server, which answers one HTTP/1.1 request and closes.
    @Test func curlAgainstOurServer() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let serverContext = try TLSContext.server(
            certificateFile: certificates.certificateFile, keyFile: certificates.keyFile)
        let server = try running.sync {
            let server = try Server(loop: running.loop, context: serverContext) { context in
                let peer = Peer(context: context)
                peer.reply = { request in
                    guard request.count >= 4, Array(request.suffix(4)) == Array("\r\n\r\n".utf8) else { return nil }
                    return Array(
                        "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nhello over tls".utf8)
                }
                return peer
            }
            return Unchecked(server)
        }
        let port = try running.sync { server.value.port }
        let directory = try makeTemporaryDirectory("curl")
        let curl = try ChildProcess(
            "/usr/bin/curl",
            [
                "-sS", "--cacert", certificates.caFile, "-o", directory + "/body", "-w", "%{http_code} %{http_version}",
                "https://localhost:\(port)/x",
            ], logPath: directory + "/out")
        #expect(curl.waitForExit(timeout: .seconds(20)) == 0)
        #expect(try String(contentsOfFile: directory + "/out", encoding: .utf8) == "200 1.1")
        #expect(try String(contentsOfFile: directory + "/body", encoding: .utf8) == "hello over tls")
        let request = try running.sync { String(decoding: server.value.peers[0].record.state.received, as: UTF8.self) }
        #expect(request.hasPrefix("GET /x HTTP/1.1\r\n"))
        #expect(try running.sync { server.value.peers[0].record.state.applicationProtocol } == "http/1.1")
    }

    /// The certificate names localhost and 127.0.0.1: another name is refused by the client, with the reason.
    @Test func wrongHostNameIsRejected() throws {
        let failure = try clientFailure(caFile: certificates.caFile, serverName: "api.example.org")
        #expect(failure == .certificateRejected("hostname mismatch"))
        // The IP address SAN matches an IP literal.
        #expect(try clientFailure(caFile: certificates.caFile, serverName: "127.0.0.1") == nil)
        #expect(try clientFailure(caFile: certificates.caFile, serverName: "127.0.0.2") != nil)
    }

    /// A CA that did not sign the server's certificate: refused.
    @Test func untrustedCAIsRejected() throws {
        let failure = try clientFailure(caFile: certificates.otherCAFile, serverName: "localhost")
        #expect(failure == .certificateRejected("unable to get local issuer certificate"))
        // The system store does not know our test CA either.
        guard case .certificateRejected = try clientFailure(caFile: nil, serverName: "localhost") else {
            Issue.record("the system store accepted a test certificate")
            return
        }
    }

    /// Bytes that are not TLS fail the server's handshake; a client whose server speaks plain text fails too.
    @Test func nonTLSPeersFailTheHandshake() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let serverContext = try TLSContext.server(
            certificateFile: certificates.certificateFile, keyFile: certificates.keyFile)
        let server = try running.sync {
            Unchecked(try Server(loop: running.loop, context: serverContext) { Peer(context: $0) })
        }
        let port = try running.sync { server.value.port }
        let socket = try plainConnect(port: port)
        defer { socket.close() }
        _ = try Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { try socket.send($0) }
        #expect(waitUntil { (try? running.sync { server.value.peers.first?.record.state.closed }) ?? false == true })
        guard case .handshakeFailed = try running.sync({ server.value.peers[0].record.state.error }) else {
            Issue.record("expected a handshake failure")
            return
        }
    }

    @Test func unusableFilesAreConfigurationErrors() throws {
        #expect(throws: TLSError.self) { try TLSContext.client(caFile: "/nonexistent/ca.pem") }
        #expect(throws: TLSError.self) {
            try TLSContext.server(certificateFile: certificates.certificateFile, keyFile: "/nonexistent/key.pem")
        }
        // A key that is not the certificate's.
        #expect(throws: TLSError.self) {
            try TLSContext.server(
                certificateFile: certificates.certificateFile, keyFile: certificates.directory + "/ca.key")
        }
    }

    // MARK: Helpers

    /// Connects our client (trusting `caFile`, checking `serverName`) to our server; the client's error.
    func clientFailure(caFile: String?, serverName: String) throws -> TLSError? {
        let running = try RunningLoop()
        defer { running.stop() }
        let serverContext = try TLSContext.server(
            certificateFile: certificates.certificateFile, keyFile: certificates.keyFile)
        let clientContext = try TLSContext.client(caFile: caFile)
        let client = try running.sync {
            let server = try Server(loop: running.loop, context: serverContext) { Peer(context: $0) }
            let client = Peer(context: clientContext, serverName: serverName)
            client.toSend = Array("ping".utf8)
            try client.connect(loop: running.loop, port: server.port)
            return Unchecked((client, server))
        }
        let peer = client.value.0
        // A server that got "ping" proves the client accepted it; then close.
        _ = waitUntil(timeout: .seconds(10)) {
            peer.record.state.closed
                || ((try? running.sync { client.value.1.peers.first?.record.state.received.count ?? 0 }) ?? 0) > 0
        }
        if !peer.record.state.closed { return nil }
        return peer.record.state.error
    }
}

/// Compares without handing two 1 MiB arrays to `#expect` (whose failure report would diff them for minutes):
/// the first difference is recorded instead.
func sameBytes(_ got: [UInt8], _ expected: [UInt8]) -> Bool {
    if got == expected { return true }
    let first = (0..<min(got.count, expected.count)).first { got[$0] != expected[$0] } ?? min(got.count, expected.count)
    Issue.record("got \(got.count) bytes, expected \(expected.count); first difference at byte \(first)")
    return false
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func canConnect(port: UInt16) -> Bool {
    guard let fd = try? plainConnect(port: port) else { return false }
    fd.close()
    return true
}

/// A blocking-style connect for tests (the socket is nonblocking: wait for the connect to finish).
func plainConnect(port: UInt16) throws -> FileDescriptor {
    let fd = try FileDescriptor.socket(.tcp, for: .loopback(port: port))
    if try fd.connect(to: .loopback(port: port)) == .connected { return fd }
    let deadline = ContinuousClock.now + .seconds(2)
    while ContinuousClock.now < deadline {
        Foundation.Thread.sleep(forTimeInterval: 0.01)
        if let error = try fd.socketError() {
            fd.close()
            throw error
        }
        if (try? fd.peerAddress()) != nil { return fd }
    }
    fd.close()
    throw Errno.timedOut
}
