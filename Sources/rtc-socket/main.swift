// rtc-socket: reads the settings, starts the node on one event loop, serves until a drain ends or a second signal.
import EventLoop
import Foundation
import HTTPServer
import Metrics
import Resolver
import SocketNode
import Sys

let version = "0.1.0"

let usage = """
    usage: rtc-socket [options]
           rtc-socket --help | --version

    The WebSocket node of Reactive RTC: holds client sessions and delivers their messages, locally or through Kafka,
    with a Redis inbox per client for offline delivery and exact resume.

    Every option can also be given by its environment variable (the option wins):
    \(NodeConfiguration.helpText)

    endpoints (on the HTTP port):
      GET  /ws/connect?clientId=ID[&resumeOffset=N][&token=T]   WebSocket
      GET|POST /drain, GET /drain/status, GET /healthz, GET /readyz, GET /metrics

    RTC_EVENTS=auto|epoll|io_uring picks the event loops' readiness backend (default epoll).

    signals: SIGTERM and SIGINT drain (sessions closed over DRAIN_SECONDS, then exit); a second one stops at once.

    """

func fail(_ message: String, status: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("rtc-socket: \(message)\n".utf8))
    exit(status)
}

func say(_ message: String) {
    FileHandle.standardOutput.write(Data("\(message)\n".utf8))
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("--help") || arguments.contains("-h") {
    say(usage)
    exit(0)
}
if arguments.contains("--version") {
    say("rtc-socket \(version)")
    exit(0)
}
let configuration: NodeConfiguration
switch NodeConfiguration.parse(arguments: arguments, environment: ProcessInfo.processInfo.environment) {
case .success(let value): configuration = value
case .failure(let error): fail("\(error)")
}

Signals.ignoreBrokenPipe()
_ = try? raiseOpenFileLimit()
let registry = Registry(shards: 1)
let loop: EventLoop
let node: Node
do {
    loop = try EventLoop()
    let metrics = try NodeMetrics(registry: registry)
    try ProcessMetrics.register(in: registry)
    let resolver = try Resolver(loop: loop, configuration: ResolverConfiguration.system())
    node = try Node(configuration: configuration, loop: loop, metrics: metrics, resolver: resolver)
} catch {
    fail("cannot start: \(error)", status: 1)
}

var router = Router()
router.upgrade("/ws/connect") { request in node.upgrade(request) }
router.get("/drain") { request in node.drainRequest(request) }
router.post("/drain") { request in node.drainRequest(request) }
router.get("/drain/status") { request in node.drainStatus(request) }
AdminEndpoints.install(in: &router, registry: registry, readiness: node.readiness)
let server = HTTPServer(router: router)
let bound: SocketAddress
do {
    guard let address = SocketAddress(host: configuration.bindAddress, port: configuration.httpPort) else {
        fail("BIND_ADDRESS \(configuration.bindAddress) is not an address")
    }
    bound = try server.listen(on: loop, address: address)
} catch {
    fail("cannot listen on \(configuration.bindAddress):\(configuration.httpPort): \(error)", status: 1)
}
say(
    "rtc-socket \(version): node \(configuration.nodeID) in \(configuration.namespace), listening on \(bound) "
        + "(/ws/connect, /drain, /drain/status, /healthz, /readyz, /metrics)")
say(
    "rtc-socket: redis \(configuration.redisURL), kafka \(configuration.kafkaBootstrap), drain \(configuration.drainSeconds) s, "
        + "resume ttl \(configuration.resumeTTLSeconds) s, buffer \(configuration.bufferMax), auth "
        + (configuration.authSecret.isEmpty ? "off" : "on"))
say("rtc-socket: \(EventsBackend.processDefault.logLine()) (RTC_EVENTS)")

/// SIGTERM/SIGINT on the loop: the first drains, a second stops now.
final class SignalWatcher: EventHandler {
    let fd: FileDescriptor
    var signalled = false
    init(fd: FileDescriptor) { self.fd = fd }

    func ready(_ events: ReadyEvents) {
        _ = fd.drainEvent()
        for signal in Signals.takePending() {
            if signalled {
                say("rtc-socket: second signal \(signal): stopping now")
                node.shutdown { loop.stop() }
                return
            }
            signalled = true
            say("rtc-socket: signal \(signal): draining")
            node.onDrained = { node.shutdown { loop.stop() } }
            node.startDrain(exitWhenDone: true)
        }
    }

    func loopStopping() {}
}

do {
    let signals = try Signals.notify([Signals.terminate, Signals.interrupt])
    _ = try loop.register(signals, interest: .readable, handler: SignalWatcher(fd: signals))
    try node.start()
} catch {
    fail("cannot start: \(error)", status: 1)
}
do {
    try loop.run()
} catch {
    fail("event loop failed: \(error)", status: 1)
}
say("rtc-socket: stopped")
exit(0)
