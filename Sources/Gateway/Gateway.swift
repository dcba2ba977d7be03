// The gateway's lifecycle: workers on N loops, configuration swaps, drain, and stop.
import DNS
import EventLoop
import GatewayConfig
import HTTPServer
import Metrics
import Resolver
import Synchronization
import Sys

/// The reverse proxy: one worker per event loop, each with its own SO_REUSEPORT listeners, resolver and pools.
///
/// Thread rules: create and `start()` on one thread; `install`, `drain` and `shutdown` may be called from any
/// thread (they hand work to the loops).
public final class Gateway: Sendable {
    public let metrics: GatewayMetrics
    public let group: EventLoopGroup
    private let shared: Shared
    private let workers: Mutex<[Worker]>
    private let current: Mutex<Snapshot>
    private let drainDone = Mutex<(@Sendable () -> Void)?>(nil)
    private let workerCount: Int
    /// False once a drain started (the `/readyz` answer).
    public let readiness = ReadinessFlag(true)

    /// Builds the loops and workers and binds every listener of `snapshot` on every loop (nothing runs yet).
    /// `accessLog`: the writer of the access log (nil: `access_log off`); its buffers are handed over by each worker.
    /// `events`: the loops' readiness backend (default: the process default, `RTC_EVENTS` or epoll).
    public init(
        snapshot: Snapshot, workers count: Int, metrics: GatewayMetrics, accessLog: AccessLogWriter? = nil,
        events: EventsBackend = .processDefault
    ) throws(GatewayError) {
        self.metrics = metrics
        workerCount = count
        current = Mutex(snapshot)
        let shared = Shared(metrics: metrics)
        self.shared = shared
        do {
            group = try EventLoopGroup(loops: count, backend: events)
        } catch {
            throw GatewayError("cannot create \(count) event loops on \(events): \(error)")
        }
        var built: [Worker] = []
        let resolverConfiguration = Self.resolverConfiguration(snapshot.config.resolver)
        for index in 0..<count {
            let loop = group.loop(at: index)
            let resolver: Resolver
            do {
                resolver = try Resolver(
                    loop: loop, configuration: resolverConfiguration, metrics: metrics.resolver.forShard(index))
            } catch {
                throw GatewayError("cannot start the resolver: \(error)")
            }
            built.append(
                Worker(
                    index: index, loop: loop, snapshot: snapshot, shared: shared, resolver: resolver,
                    accessLog: accessLog))
        }
        workers = Mutex(built)
        metrics.setConfigHash(snapshot.config.configHash)
    }

    /// Binds the listeners of the configuration on every loop; returns the bound addresses (real ports).
    public func bind() throws(GatewayError) -> [SocketAddress] {
        let addresses = current.withLock { $0 }.config.listeners.map {
            SocketAddress($0.address.host, port: $0.address.port)
        }
        var bound: [SocketAddress] = []
        var ports: [SocketAddress] = addresses
        do {
            try workers.withLock { workers throws(Errno) in
                for worker in workers {
                    // Port 0: the first loop picks a port, the others bind the same one.
                    bound = try worker.listen(on: ports)
                    ports = bound
                }
            }
        } catch {
            throw GatewayError("cannot listen on \(addresses.map(\.description).joined(separator: ", ")): \(error)")
        }
        return bound
    }

    /// Starts the loop threads.
    public func start() throws(GatewayError) {
        do {
            try group.start()
        } catch {
            throw GatewayError("cannot start the event loop threads: \(error)")
        }
    }

    /// The configuration new requests use.
    public var snapshot: Snapshot { current.withLock { $0 } }

    /// Swaps in a new configuration: new requests use it; requests in flight and tunnels are untouched.
    public func install(_ snapshot: Snapshot) {
        current.withLock { $0 = snapshot }
        metrics.setConfigHash(snapshot.config.configHash)
        for worker in workers.withLock({ $0 }) {
            let box = UncheckedBox(worker)
            worker.loop.execute { box.value.install(snapshot) }
        }
    }

    /// Stops accepting, finishes requests in flight, closes tunnels spread over `window`, then calls `done`
    /// (on a loop thread) once every worker is empty.
    public func drain(window: Duration, done: @escaping @Sendable () -> Void) {
        readiness.set(false)
        drainDone.withLock { $0 = done }
        shared.setDrainedHandler { [self] drained in
            guard drained == self.workerCount else { return }
            let callback = self.drainDone.withLock { callback in
                defer { callback = nil }
                return callback
            }
            callback?()
        }
        for worker in workers.withLock({ $0 }) {
            let box = UncheckedBox(worker)
            worker.loop.execute { box.value.drain(window: window) }
        }
    }

    /// Open downstream connections (exchanges and tunnels) across loops.
    public var connectionCount: Int { shared.connectionCount }

    /// Stops every loop and joins the threads.
    public func shutdown() {
        for worker in workers.withLock({ $0 }) {
            let box = UncheckedBox(worker)
            worker.loop.execute { box.value.stop() }
        }
        group.shutdown()
    }

    static func resolverConfiguration(_ settings: ResolverSettings) -> ResolverConfiguration {
        var configuration: ResolverConfiguration
        switch settings.servers {
        case .system:
            configuration = .system()
        case .addresses(let addresses):
            configuration = ResolverConfiguration()
            configuration.servers = addresses.map { SocketAddress($0.host, port: $0.port) }
            configuration.search = []
        }
        configuration.timeout = settings.timeout
        configuration.attempts = settings.attempts
        if let valid = settings.valid {
            configuration.maximumTTL = UInt32(clamping: valid.components.seconds)
        }
        return configuration
    }
}

/// Why the gateway could not start.
public struct GatewayError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Carries a loop-confined object into a task that runs on that same loop.
struct UncheckedBox<Value: AnyObject>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
