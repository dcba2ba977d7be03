// The serving mode: workers, the admin listener, the access log, and signals (SIGHUP reload, SIGUSR1 reopen the
// access log, SIGTERM/SIGQUIT/SIGINT drain).
import EventLoop
import Foundation
import Gateway
import GatewayConfig
import HTTPServer
import Metrics
import Sys

/// Starts the gateway with `config` and serves until a drain completes; never returns.
func run(config: GatewayConfig, path: String, workersOverride: Int?) -> Never {
    Signals.ignoreBrokenPipe()
    switch config.openFileLimit {
    case .unchanged: break
    case .hardLimit: _ = try? raiseOpenFileLimit()
    case .count(let count): try? setOpenFileSoftLimit(UInt64(count))
    }
    if let tls = config.listeners.first(where: { $0.tls != nil }) {
        // Serving plain HTTP where the file asks for TLS would expose traffic the operator meant to encrypt.
        fail("listen \(tls.address) asks for TLS, which this build does not terminate yet", status: 1)
    }
    let workers = workersOverride ?? config.workers
    let registry = Registry(shards: workers + 1)
    let metrics: GatewayMetrics
    do {
        metrics = try GatewayMetrics(registry: registry)
        try ProcessMetrics.register(in: registry)
    } catch {
        fail("cannot register metrics: \(error)")
    }
    let accessLog: AccessLogWriter?
    do {
        switch config.accessLog {
        case .off: accessLog = nil
        case .stdout: accessLog = try AccessLogWriter(sink: StandardOutputSink())
        case .file(let path): accessLog = try AccessLogWriter(sink: try AccessLogFile(path: path))
        }
    } catch {
        fail("cannot open the access log: \(error)", status: 1)
    }
    let events: EventsBackend
    switch config.events {
    case nil: events = .processDefault
    case .auto: events = .auto
    case .epoll: events = .epoll
    case .ioURing: events = .ioURing
    }
    let gateway: Gateway
    let bound: [SocketAddress]
    do {
        gateway = try Gateway(
            snapshot: Snapshot(config: config), workers: workers, metrics: metrics, accessLog: accessLog,
            events: events)
        bound = try gateway.bind()
    } catch {
        fail("\(error)", status: 1)
    }
    say(
        "rtc-gateway \(version): configuration \(path) loaded (\(config.routes.routes.count) routes, "
            + "\(config.upstreams.count) upstreams, hash \(String(config.configHash, radix: 16)))")
    say("rtc-gateway: \(events.logLine())")
    say("rtc-gateway: \(workers) worker(s); listening on \(bound.map(\.description).joined(separator: ", "))")

    let control: EventLoop
    let adminAddress: SocketAddress
    let admin = HTTPServer(router: AdminEndpoints.router(registry: registry, readiness: gateway.readiness))
    do {
        control = try EventLoop()
        adminAddress = try admin.listen(
            on: control, address: SocketAddress(host: config.admin.host.description, port: config.admin.port)!)
    } catch {
        fail("cannot listen on the admin address \(config.admin): \(error)", status: 1)
    }
    say("rtc-gateway: admin (/metrics, /healthz, /readyz) on \(adminAddress)")

    let controller = Controller(
        gateway: gateway, control: control, path: path, config: config, admin: admin, accessLog: accessLog)
    do {
        let signals = try Signals.notify([
            Signals.hangup, Signals.terminate, Signals.quit, Signals.interrupt, SIGUSR1,
        ])
        _ = try control.register(signals, interest: .readable, handler: SignalWatcher(fd: signals, controller))
        try gateway.start()
    } catch {
        fail("cannot start: \(error)", status: 1)
    }
    try? control.run()
    gateway.shutdown()
    accessLog?.stop()
    say("rtc-gateway: stopped")
    exit(0)
}

/// Reacts to signals on the control loop.
final class Controller {
    let gateway: Gateway
    let control: EventLoop
    let path: String
    var config: GatewayConfig
    let admin: HTTPServer
    let accessLog: AccessLogWriter?
    var draining = false

    init(
        gateway: Gateway, control: EventLoop, path: String, config: GatewayConfig, admin: HTTPServer,
        accessLog: AccessLogWriter?
    ) {
        self.accessLog = accessLog
        self.gateway = gateway
        self.control = control
        self.path = path
        self.config = config
        self.admin = admin
    }

    func handle(_ signal: Int32) {
        switch signal {
        case Signals.hangup: reload()
        case SIGUSR1:
            // Log rotation: the file was moved away; the next lines go to a new file at the configured path.
            accessLog?.reopen()
            say("rtc-gateway: SIGUSR1: access log reopened")
        default: drain(signal: signal)
        }
    }

    /// SIGHUP: load the file again; a bad file is rejected and the old configuration keeps serving.
    func reload() {
        switch load(path: path) {
        case .failure(let errors):
            gateway.metrics.recordReload(success: false)
            say("rtc-gateway: reload rejected, the previous configuration keeps serving:\n\(errors.description)")
        case .success(let fresh):
            var notes: [String] = []
            if fresh.listeners != config.listeners { notes.append("listen changes need a restart") }
            if fresh.admin != config.admin { notes.append("admin changes need a restart") }
            if fresh.workers != config.workers { notes.append("workers changes need a restart") }
            if fresh.events != config.events { notes.append("events changes need a restart") }
            if fresh.resolver != config.resolver { notes.append("resolver changes need a restart") }
            if fresh.accessLog != config.accessLog { notes.append("access_log changes need a restart") }
            config = fresh
            gateway.install(Snapshot(config: fresh))
            gateway.metrics.recordReload(success: true)
            say(
                "rtc-gateway: configuration \(path) reloaded (hash \(String(fresh.configHash, radix: 16)))"
                    + (notes.isEmpty ? "" : "; \(notes.joined(separator: "; "))"))
        }
    }

    /// SIGTERM/SIGQUIT/SIGINT: readiness false, stop accepting, finish requests, close tunnels over the window.
    func drain(signal: Int32) {
        if draining {
            say("rtc-gateway: second signal \(signal) during drain: stopping now")
            control.stop()
            return
        }
        draining = true
        let window = config.timeouts.drain
        say(
            "rtc-gateway: signal \(signal): draining \(gateway.connectionCount) connection(s) over \(window)")
        let control = self.control
        gateway.drain(window: window) {
            control.execute {
                say("rtc-gateway: drained")
                control.stop()
            }
        }
        // A connection that never finishes cannot hold the exit back past the window and a grace period.
        control.schedule(after: window + .seconds(5)) {
            say("rtc-gateway: drain window passed with \(self.gateway.connectionCount) connection(s) left: stopping")
            control.stop()
        }
    }
}

/// The signal eventfd on the control loop.
final class SignalWatcher: EventHandler {
    let fd: FileDescriptor
    let controller: Controller

    init(fd: FileDescriptor, _ controller: Controller) {
        self.fd = fd
        self.controller = controller
    }

    func ready(_ events: ReadyEvents) {
        _ = fd.drainEvent()
        for signal in Signals.takePending() { controller.handle(signal) }
    }

    func loopStopping() {}
}

/// `access_log PATH`: appends to the file, opened again at the same path on `reopen` (log rotation).
final class AccessLogFile: AccessLogSink, @unchecked Sendable {
    // Used only by the access log's writer thread (AccessLogSink's contract), after init.
    private let path: String
    private var handle: FileHandle

    init(path: String) throws {
        self.path = path
        handle = try Self.open(path)
    }

    private static func open(_ path: String) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        return handle
    }

    func write(_ bytes: UnsafeRawBufferPointer) {
        let fd = FileDescriptor(handle.fileDescriptor)
        var offset = 0
        while offset < bytes.count {
            guard case .count(let count) = try? fd.write(UnsafeRawBufferPointer(rebasing: bytes[offset...])), count > 0
            else { return }
            offset += count
        }
    }

    func reopen() {
        guard let fresh = try? Self.open(path) else {
            say("rtc-gateway: cannot reopen the access log \(path); still writing to the old file")
            return
        }
        try? handle.close()
        handle = fresh
    }
}
