// kafka-mock: librdkafka's mock cluster in a process of its own (other processes connect to its brokers), and
// ring-update: a signed ring for `rtc:ring`, as the control plane would publish it.
import EventLoop
import Kafka
import Ring
import Sys
import Wire

/// Stops the loop at SIGTERM or SIGINT.
final class StopOnSignal: EventHandler {
    let fd: FileDescriptor
    unowned(unsafe) let loop: EventLoop

    init(fd: FileDescriptor, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
    }

    func ready(_ events: ReadyEvents) {
        _ = fd.drainEvent()
        if !Signals.takePending().isEmpty { loop.stop() }
    }

    func loopStopping() {}
}

/// Runs `kafka-mock` until SIGTERM or SIGINT; exits 1 when the cluster cannot be made.
func runKafkaMock(_ arguments: ArraySlice<String>) {
    var brokers = 1
    var topics: [(name: String, partitions: Int32)] = [(Keys.ringTopic, 1)]
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--brokers": brokers = number(of: flag, &rest, in: 1...16)
        case "--topic":
            let text = value(of: flag, &rest)
            let parts = text.split(separator: ":", maxSplits: 1)
            guard let name = parts.first, !name.isEmpty else { fail("kafka-mock: --topic takes NAME[:PARTITIONS]") }
            var partitions: Int32 = 1
            if parts.count == 2 {
                guard let parsed = Int32(parts[1]), parsed >= 1, parsed <= 1024 else {
                    fail("kafka-mock: --topic NAME:PARTITIONS needs 1...1024 partitions")
                }
                partitions = parsed
            }
            topics.append((String(name), partitions))
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("kafka-mock: unknown option \(flag)")
        }
    }
    do {
        let loop = try EventLoop(readBufferSize: 1024, eventCapacity: 4)
        // Before the cluster's threads exist: they inherit nothing, the handler wakes this loop.
        let signals = try Signals.notify([Signals.terminate, Signals.interrupt])
        _ = try loop.register(signals, interest: .readable, handler: StopOnSignal(fd: signals, loop: loop))
        let cluster = try KafkaMockCluster(brokers: brokers)
        for topic in topics { try cluster.createTopic(topic.name, partitions: topic.partitions) }
        // fd 1 is written directly (no buffer): the line is there for a script reading it at once.
        log("bootstrap=\(cluster.bootstrap)", to: FileDescriptor(1))
        log("rtc-bench kafka-mock: \(brokers) broker(s), topics \(topics.map { "\($0.name):\($0.partitions)" })")
        try loop.run()
        cluster.close()
        log("rtc-bench kafka-mock: stopped")
        exitProcess(0)
    } catch {
        log("rtc-bench kafka-mock: \(error)")
        exitProcess(1)
    }
}

/// Runs `ring-update`: prints the signed `RingUpdate` JSON of the given nodes (weight 1 each) on one line.
func runRingUpdate(_ arguments: ArraySlice<String>) {
    var version: UInt64 = 1
    var nodes: [String] = []
    var secret: String?
    var reason = "bench"
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--version": version = UInt64(number(of: flag, &rest, in: 1...Int.max))
        case "--nodes":
            nodes = value(of: flag, &rest).split(separator: ",").map(String.init)
            guard !nodes.isEmpty, nodes.allSatisfy(NodeID.isValid) else {
                fail("ring-update: --nodes takes a comma list of node ids")
            }
        case "--secret": secret = value(of: flag, &rest)
        case "--reason": reason = value(of: flag, &rest)
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("ring-update: unknown option \(flag)")
        }
    }
    guard !nodes.isEmpty else { fail("ring-update: --nodes is required") }
    guard let secret, !secret.isEmpty else { fail("ring-update: --secret (the nodes' RING_SECRET) is required") }
    let ring = benchRing(version: version, ids: nodes)
    let update = RingUpdate(version: version, nodes: ring.nodes, reason: reason, ts: Int64(wallClockSeconds() * 1000))
        .signed(secret: Array(secret.utf8))
    log(String(decoding: update.encoded(), as: UTF8.self), to: FileDescriptor(1))
}
