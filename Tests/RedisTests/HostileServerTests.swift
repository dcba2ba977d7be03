// The client against servers that misbehave: bytes that are not RESP, replies nobody asked for, silence at AUTH.
import EventLoop
import Sys
import TestSupport
import Testing

@testable import Redis

/// A TCP server on its own loop that answers every read with fixed bytes (and may greet first).
final class ScriptedServer: AcceptHandler, ConnectionHandler, @unchecked Sendable {
    let running: RunningLoop
    private(set) var port: UInt16 = 0
    private var listener: Listener?
    private let greeting: [UInt8]
    private let answer: [UInt8]
    private var connections: [Connection] = []

    init(greeting: [UInt8] = [], answer: [UInt8]) throws {
        running = try RunningLoop()
        self.greeting = greeting
        self.answer = answer
        let made = try running.sync { [self] in
            try Listener(loop: running.loop, address: .loopback(port: 0), reusePort: false, handler: self)
        }
        listener = made
        port = made.address.port
    }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        guard let connection = try? Connection(loop: running.loop, fd: fd, handler: self) else { return }
        connections.append(connection)
        if !greeting.isEmpty { greeting.withUnsafeBytes { connection.write($0) } }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        answer.withUnsafeBytes { connection.write($0) }
    }

    func closed(_ connection: Connection, error: Errno?) {
        connections.removeAll { $0 === connection }
    }

    func stop() {
        _ = try? running.sync { [self] in
            listener?.close()
            listener = nil
            for connection in connections { connection.close() }
        }
        running.stop()
    }
}

@Suite(.serialized) struct HostileServerTests {
    @Test func bytesThatAreNotRESPDropTheConnection() throws {
        let server = try ScriptedServer(answer: Array("!garbage\r\n".utf8))
        defer { server.stop() }
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        #expect(try test.call("PING") == .failure(.disconnected))
        #expect(waitUntil { test.changes.values.starts(with: [true, false]) })
        guard case .protocolError(let text) = test.connectErrors.values.first else {
            Issue.record("expected a protocol error, got \(test.connectErrors.values)")
            return
        }
        #expect(text.contains("Protocol error"))
        // And it comes back (to be dropped again at the next command).
        #expect(waitUntil { test.changes.values.count >= 3 })
    }

    @Test func aReplyToNoCommandDropsTheConnection() throws {
        let server = try ScriptedServer(greeting: Array("+HELLO\r\n".utf8), answer: [])
        defer { server.stop() }
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(waitUntil { test.connectErrors.values.contains(.protocolError("a reply to no command")) })
    }

    @Test func silenceAtAuthIsATimeoutNotAConnection() throws {
        let listener = try Socket.listener(at: .loopback(port: 0)).release()
        defer { listener.close() }
        let test = try ClientHarness(
            RedisEndpoint(host: "127.0.0.1", port: try listener.localAddress().port, password: "pw"),
            commandTimeout: .milliseconds(200))
        defer { test.stop() }
        #expect(waitUntil { test.connectErrors.values.count >= 2 })
        #expect(test.connectErrors.values.allSatisfy { $0 == .commandTimedOut })
        #expect(test.changes.values.isEmpty)
    }

    @Test func aConnectThatHangsTimesOut() throws {
        // Backlog 0 holds one connection nobody accepts; SYNs beyond it are dropped, so a second connect hangs.
        let listener = try Socket.listener(at: .loopback(port: 0), backlog: 0).release()
        defer { listener.close() }
        let endpoint = RedisEndpoint(host: "127.0.0.1", port: try listener.localAddress().port)
        let filler = try ClientHarness(endpoint)
        defer { filler.stop() }
        #expect(filler.waitConnected())
        let test = try ClientHarness(endpoint, connectTimeout: .milliseconds(200))
        defer { test.stop() }
        #expect(waitUntil { test.connectErrors.values.count >= 2 })
        #expect(test.connectErrors.values.prefix(2) == [.connectTimedOut, .connectTimedOut])
        #expect(!test.isConnected)
    }

    @Test func aCompletionMayCloseTheClientMidBatch() throws {
        let server = try RedisServer()
        let test = try ClientHarness(RedisEndpoint(host: "127.0.0.1", port: server.port))
        defer { test.stop() }
        #expect(test.waitConnected())
        let results = Log<Reply>()
        let chained = Slot<Reply>()
        try test.onLoop { client in
            // The first reply chains another command; the second closes the client while replies are being read.
            client.send(["PING"]) { result in
                results.append(result)
                client.send(["ECHO", "chained"]) { chained.set($0) }
            }
            client.send(["PING"]) { result in
                results.append(result)
                client.close()
            }
            client.send(["PING"]) { results.append($0) }
        }
        #expect(waitUntil { results.values.count == 3 && chained.value != nil })
        #expect(
            results.values == [.success(.status("PONG")), .success(.status("PONG")), .failure(.disconnected)])
        // The chained command was sent behind the third PING, so it too was in flight at the close.
        #expect(chained.value == .failure(.disconnected))
        #expect(test.changes.values == [true, false])
    }
}
