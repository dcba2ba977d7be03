// A connector's registration handed to the Connection made for its fd: echo works, no registration is added.
import EventLoop
import Synchronization
import Sys
import TestSupport
import Testing

/// Adopts the connector's registration on success, sends `message`, collects the echo.
final class AdoptingClient: ConnectHandler, ConnectionHandler, @unchecked Sendable {
    let message = Array("hand over".utf8)
    let echoed = Mutex<[UInt8]>([])
    let adopted = Atomic<Bool>(false)
    let registrationsWhenConnected = Atomic<Int>(-1)
    var connection: Connection?
    unowned(unsafe) var loop: EventLoop?

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        Issue.record("the connector must call the variant that passes itself")
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector) {
        guard case .connected = result, let loop else { return }
        let before = loop.registrationCount
        connection = connector.connection(handler: self)
        adopted.store(connection != nil, ordering: .relaxed)
        // Nothing was deregistered or registered: the connector's slot now belongs to the connection.
        registrationsWhenConnected.store(loop.registrationCount - before, ordering: .relaxed)
        message.withUnsafeBytes { connection?.write($0) }
        // Outside the callback there is nothing left to hand over.
        #expect(connector.connection(handler: self) == nil)
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        echoed.withLock { $0.append(contentsOf: bytes) }
    }

    func closed(_ connection: Connection, error: Errno?) {}
}

struct ConnectorHandoverTests {
    @Test func connectionAdoptsTheConnectorsRegistration() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let server = EchoServer()
        let client = AdoptingClient()
        client.loop = running.loop
        let port = try running.sync {
            let listener = try Listener(loop: running.loop, address: .loopback(port: 0), handler: server)
            _ = try Connector.connect(
                loop: running.loop, to: listener.address, timeout: .seconds(5), handler: client)
            return listener.address.port
        }
        #expect(port > 0)
        #expect(waitUntil(timeout: .seconds(5)) { client.echoed.withLock { $0 } == client.message })
        let adopted = client.adopted.load(ordering: .relaxed)
        let added = client.registrationsWhenConnected.load(ordering: .relaxed)
        #expect(adopted)
        #expect(added == 0)
        try running.sync { client.connection?.close() }
    }

    /// A handler that only implements the plain callback still gets a fd it can register itself.
    @Test func plainHandlerRegistersTheFdItself() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let server = EchoServer()
        let outcome = Outcome()
        let fd = Mutex<FileDescriptor?>(nil)
        try running.sync {
            let listener = try Listener(loop: running.loop, address: .loopback(port: 0), handler: server)
            _ = try Connector.connect(
                loop: running.loop, to: listener.address, timeout: .seconds(5), handler: outcome)
        }
        #expect(waitUntil(timeout: .seconds(5)) { outcome.result.withLock { $0 } != nil })
        if case .connected(let connected) = outcome.result.withLock({ $0 }) { fd.withLock { $0 = connected } }
        let descriptor = try #require(fd.withLock { $0 })
        let collector = AdoptingClient()
        let registered = try running.sync { () -> Bool in
            let connection = try Connection(loop: running.loop, fd: descriptor, handler: collector)
            collector.connection = connection
            collector.message.withUnsafeBytes { connection.write($0) }
            return true
        }
        #expect(registered)
        #expect(waitUntil(timeout: .seconds(5)) { collector.echoed.withLock { $0 } == collector.message })
        try running.sync { collector.connection?.close() }
    }
}
