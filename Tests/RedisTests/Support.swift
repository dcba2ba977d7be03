// Helpers for the client tests: a client on its own loop thread, driven and observed from the test thread.
import EventLoop
import Resolver
import Synchronization
import Sys
import TestSupport

@testable import Redis

/// A value set once from the loop thread and read from the test thread.
final class Slot<Value: Sendable>: Sendable {
    private let storage = Mutex<Value?>(nil)
    func set(_ value: Value) { storage.withLock { $0 = value } }
    var value: Value? { storage.withLock { $0 } }
}

/// A list appended to from the loop thread and read from the test thread.
final class Log<Value: Sendable>: Sendable {
    private let storage = Mutex<[Value]>([])
    func append(_ value: Value) { storage.withLock { $0.append(value) } }
    var values: [Value] { storage.withLock { $0 } }
}

typealias Reply = Result<RedisReply, RedisError>

/// A `RedisClient` on a loop of its own. The client is touched only on the loop thread (through `onLoop`).
final class ClientHarness: @unchecked Sendable {
    let running: RunningLoop
    private var client: RedisClient!
    private var resolver: Resolver?
    /// Every `onConnectionChange` value, in order.
    let changes = Log<Bool>()
    let connectErrors = Log<RedisConnectError>()

    init(
        _ endpoint: RedisEndpoint, dnsServer: SocketAddress? = nil, connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(5),
        backoff: (min: Duration, max: Duration) = (.milliseconds(20), .milliseconds(200)), start: Bool = true
    ) throws {
        running = try RunningLoop()
        let changes = self.changes
        let connectErrors = self.connectErrors
        try running.sync {
            if let dnsServer {
                self.resolver = try Resolver(
                    loop: self.running.loop,
                    configuration: ResolverConfiguration(servers: [dnsServer], timeout: .seconds(1), attempts: 2))
            }
            let client = RedisClient(
                loop: self.running.loop, endpoint: endpoint, resolver: self.resolver, connectTimeout: connectTimeout,
                commandTimeout: commandTimeout, backoff: backoff)
            client.onConnectionChange = { changes.append($0) }
            client.onConnectError = { connectErrors.append($0) }
            if start { client.start() }
            self.client = client
        }
    }

    /// Runs `body` with the client on the loop thread.
    func onLoop<T>(_ body: @escaping (RedisClient) throws -> T) throws -> T {
        try running.sync { try body(self.client) }
    }

    var isConnected: Bool { (try? onLoop { $0.isConnected }) ?? false }

    /// Waits until connected (AUTH and SELECT done).
    @discardableResult
    func waitConnected(timeout: Duration = .seconds(10)) -> Bool {
        waitUntil(timeout: timeout) { self.isConnected }
    }

    /// Sends one command and waits for its result (nil if none came within `timeout`).
    func call(_ arguments: [[UInt8]], timeout: Duration = .seconds(10)) throws -> Reply? {
        let slot = Slot<Reply>()
        try onLoop { $0.send(arguments) { slot.set($0) } }
        _ = waitUntil(timeout: timeout) { slot.value != nil }
        return slot.value
    }

    func call(_ arguments: String..., timeout: Duration = .seconds(10)) throws -> Reply? {
        try call(arguments.map { Array($0.utf8) }, timeout: timeout)
    }

    func eval(_ script: RedisScript, keys: [String], arguments: [String]) throws -> Reply? {
        let slot = Slot<Reply>()
        try onLoop { $0.eval(script, keys: keys, arguments: arguments.map { Array($0.utf8) }) { slot.set($0) } }
        _ = waitUntil(timeout: .seconds(10)) { slot.value != nil }
        return slot.value
    }

    func stop() {
        _ = try? running.sync {
            self.client.close()
            self.resolver?.close()
            self.client = nil
        }
        running.stop()
    }
}

/// Bytes as a bulk-string reply.
func bulk(_ text: String) -> RedisReply { .string(Array(text.utf8)) }
