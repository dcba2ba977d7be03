// socket-idle: opens N sessions with one rtc-socket node, holds them idle (answering the node's Pings), then closes
// them; a script reads the node's memory while they are held.
import EventLoop
import Sys

/// The run on one loop: open every session, say so, hold, close.
final class SocketIdle: NodeClientOwner, TimerHandler {
    enum Phase { case opening, holding, closing }

    let loop: EventLoop
    let hold: Duration
    let timeout: Double
    let scratch: UnsafeMutableRawBufferPointer
    let opener: SessionOpener
    private(set) var clients: [NodeClient] = []
    private(set) var phase = Phase.opening
    /// Sessions that ended while they should have been held.
    private(set) var lost = 0
    private(set) var problems: [String] = []
    private var started: UInt64 = 0
    private var openedAfter = 0.0

    init(loop: EventLoop, hold: Duration, timeout: Double, concurrency: Int, sources: [SocketAddress]) {
        self.loop = loop
        self.hold = hold
        self.timeout = timeout
        scratch = .allocate(byteCount: 64 * 1024, alignment: 16)
        opener = SessionOpener(loop: loop, concurrency: concurrency, sources: sources)
    }

    deinit { scratch.deallocate() }

    func begin(target: NodeTarget, connections: Int, prefix: String) {
        for index in 0..<connections {
            let client = NodeClient(owner: self, index: index, clientID: prefix + String(index))
            clients.append(client)
            opener.add(client, at: target)
        }
        started = monotonicNanoseconds()
        opener.begin()
        loop.schedule(after: .milliseconds(5), handler: self)
    }

    func welcomed(_ client: NodeClient, nodeID: String, ringVersion: UInt64) { opener.settle(welcomed: true) }

    func message(_ client: NodeClient, _ payload: UnsafeRawBufferPointer) {}

    func readEnded(_ client: NodeClient) {}

    func ended(_ client: NodeClient, _ why: NodeClient.End) {
        guard why != .local else { return }
        if !client.wasWelcomed {
            opener.settle(welcomed: false)
        } else if phase != .closing {
            lost += 1
        }
        if problems.count < 5 { problems.append("\(client.clientID): \(why)") }
    }

    func timerFired(tag: UInt64) {
        switch phase {
        case .opening:
            let elapsed = Double(monotonicNanoseconds() - started) / 1e9
            if !opener.settled && elapsed < timeout {
                loop.schedule(after: .milliseconds(5), handler: self)
                return
            }
            openedAfter = elapsed
            phase = .holding
            // The line a script waits for before it reads the node's memory.
            log(
                "open=\(opener.welcomed) failed=\(opener.total - opener.welcomed) seconds=\(fixed(elapsed, 2)) "
                    + "holding=\(hold.components.seconds)", to: FileDescriptor(1))
            loop.schedule(after: hold, handler: self)
        case .holding:
            phase = .closing
            for client in clients { client.close() }
            loop.schedule(after: .milliseconds(200), handler: self)
        case .closing:
            loop.stop()
        }
    }
}

/// Runs `socket-idle` and exits: 0 when every session opened and stayed open for the whole hold, 1 otherwise.
func runSocketIdle(_ arguments: ArraySlice<String>) {
    var targetText: String?
    var connections = 1000
    var holdSeconds = 10.0
    var concurrency = 128
    var sourceCount = 0
    var prefix: String?
    var timeout = 60.0
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--target": targetText = value(of: flag, &rest)
        case "--connections": connections = number(of: flag, &rest, in: 1...1_000_000)
        case "--hold-seconds": holdSeconds = seconds(of: flag, &rest)
        case "--concurrency": concurrency = number(of: flag, &rest, in: 1...10_000)
        case "--sources": sourceCount = number(of: flag, &rest, in: 0...254)
        case "--prefix": prefix = value(of: flag, &rest)
        case "--timeout": timeout = seconds(of: flag, &rest)
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("socket-idle: unknown option \(flag)")
        }
    }
    guard let targetText, let target = NodeTarget(targetText) else {
        fail("socket-idle: --target HOST:PORT is required")
    }
    if sourceCount > 0 && target.address.isIPv6 { fail("socket-idle: --sources needs an IPv4 target") }
    _ = try? raiseOpenFileLimit()
    Signals.ignoreBrokenPipe()
    let sources = (0..<sourceCount).map { SocketAddress.ipv4(127, 0, 1, UInt8($0 + 1), port: 0) }
    do {
        let loop = try EventLoop()
        let idle = SocketIdle(
            loop: loop, hold: .nanoseconds(Int64(holdSeconds * 1e9)), timeout: timeout, concurrency: concurrency,
            sources: sources)
        idle.begin(target: target, connections: connections, prefix: prefix ?? randomRunID() + "i")
        try loop.run()
        let opened = idle.opener.welcomed
        var line = "closed opened=\(opened) failed=\(connections - opened) lost=\(idle.lost)"
        for problem in idle.problems { line += "\n  " + problem }
        log(line, to: FileDescriptor(1))
        exitProcess(opened == connections && idle.lost == 0 ? 0 : 1)
    } catch {
        fail("socket-idle: \(error)")
    }
}
