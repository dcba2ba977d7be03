// One worker process of `rtc-bench run`: the real client flow for its share of the clients, on one event loop —
// the assignment GET through the gateway, the WebSocket to the URL it names (through the gateway), then messages to
// other clients at a set rate, every one accounted for by its msgId.
import Bench
import EventLoop
import HTTP1
import JSON
import Sys
import WebSocket
import Wire

/// The settings every worker gets (the coordinator passes its own command line on).
struct RunSettings {
    var target: SocketAddress
    var hostField: String
    var clients = 100
    /// New clients per second, over the whole run.
    var ramp = 500.0
    var hold = 10.0
    /// Messages per second per connected client.
    var rate = 1.0
    var size = 64
    var pattern = Pattern.random
    var sources: [SocketAddress] = []
    var processes = 1
    var concurrency = 256
    var lateMilliseconds = 1000.0
    var settleSeconds = 30.0
    /// Global index of this run's first client (a Kubernetes Job's pods split the clients by their index).
    var clientOffset = 0
    /// Clients across every process and pod of the run: random recipients are drawn from `[0, population)`.
    var population = 100
    var runID = ""

    enum Pattern: String { case random, sameNode = "same-node", otherNode = "other-node" }

    /// Global indices `[start, end)` of worker `index`'s clients.
    func share(of index: Int) -> Range<Int> {
        let base = clients / processes
        let extra = clients % processes
        let start = clientOffset + index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    func clientID(_ global: Int) -> String { "b\(runID)-\(global)" }
}

/// An assignment GET on its own connection (`Connection: close`): status and body to the owner.
final class AssignmentRequest: ConnectionHandler {
    unowned(unsafe) let worker: RunWorker
    let client: Int
    private var parser = HeadParser(kind: .response)
    private var head: (status: Int, length: Int)?
    private var body: [UInt8] = []
    private var done = false

    init(worker: RunWorker, client: Int) {
        self.worker = worker
        self.client = client
    }

    func start(loop: EventLoop, settings: RunSettings, source: SocketAddress?) -> Bool {
        guard let fd = try? FileDescriptor.socket(.tcp, for: settings.target) else { return false }
        do {
            if let source { try fd.bind(to: source) }
            _ = try fd.connect(to: settings.target)
        } catch {
            fd.close()
            return false
        }
        guard let connection = try? Connection(loop: loop, fd: fd, handler: self) else { return false }
        let request =
            "GET /ws/connect?clientId=\(settings.clientID(client)) HTTP/1.1\r\nHost: \(settings.hostField)\r\n"
            + "Connection: close\r\n\r\n"
        var bytes = Array(request.utf8)
        bytes.withUnsafeBytes { connection.write($0) }
        return true
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard !done else { return }
        var input = bytes
        if head == nil {
            switch parser.parse(bytes) {
            case .needMore: return
            case .failure:
                finish(connection, status: 0)
                return
            case .complete(let consumed):
                let length = parser.value(ofField: "content-length").flatMap {
                    Int(String(decoding: $0, as: UTF8.self))
                }
                head = (parser.status, length ?? -1)
                input = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
            }
        }
        body.append(contentsOf: input)
        if let head, head.length >= 0, body.count >= head.length { finish(connection, status: head.status) }
    }

    func readEOF(_ connection: Connection) {
        finish(connection, status: head?.length == -1 ? head!.status : 0)
    }

    func closed(_ connection: Connection, error: Errno?) {
        if !done {
            done = true
            worker.assigned(client, status: 0, body: [])
        }
    }

    private func finish(_ connection: Connection, status: Int) {
        guard !done else { return }
        done = true
        worker.assigned(client, status: status, body: body)
        connection.close()
    }
}

/// One worker: its clients' flow, the messages, the account, and a JSON line per progress tick and at the end.
final class RunWorker: NodeClientOwner, TimerHandler {
    let loop: EventLoop
    let settings: RunSettings
    let index: Int
    let range: Range<Int>
    let scratchBuffer: UnsafeMutableRawBufferPointer
    var scratch: UnsafeMutableRawBufferPointer { scratchBuffer }

    enum Phase: String { case connect, hold, settle, done }
    private(set) var phase = Phase.connect

    private var sessions: [NodeClient?]
    private var nodeOf: [String?]
    private var assignStarted: [UInt64]
    private var upgradeStarted: [UInt64]
    private var sequence: [UInt32]
    /// The highest inbox offset each client has received (resumed from after a reconnect).
    private var lastOffset: [UInt64]
    /// The client is connecting again after its session ended (a move, a drain, a lost connection).
    private var reconnecting: [Bool]
    private var open: [Int] = []
    private var openPosition: [Int]
    private var started = 0
    private var inFlight = 0
    private var settled = 0
    private var report = RunReport()
    private var seen: Set<UInt64> = []
    private var second = Histogram()
    private var secondDelivered: UInt64 = 0
    private var secondErrors: UInt64 = 0
    private let runStart: UInt64
    private var holdStart: UInt64 = 0
    private var lastTick: UInt64 = 0
    private var messageCredit = 0.0
    private var nextSender = 0
    private var random: UInt64
    private var lastTimelineSecond = -1
    private let padding: String

    init(loop: EventLoop, settings: RunSettings, index: Int) {
        self.loop = loop
        self.settings = settings
        self.index = index
        range = settings.share(of: index)
        scratchBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 24, alignment: 16)
        sessions = Array(repeating: nil, count: range.count)
        nodeOf = Array(repeating: nil, count: range.count)
        assignStarted = Array(repeating: 0, count: range.count)
        upgradeStarted = Array(repeating: 0, count: range.count)
        sequence = Array(repeating: 0, count: range.count)
        lastOffset = Array(repeating: 0, count: range.count)
        reconnecting = Array(repeating: false, count: range.count)
        openPosition = Array(repeating: -1, count: range.count)
        runStart = monotonicNanoseconds()
        random = UInt64(truncatingIfNeeded: index + 1) &* 0x9E37_79B9_7F4A_7C15 ^ randomUInt64()
        padding = String(repeating: "x", count: max(0, settings.size - 40))
        report.counters.clients = UInt64(range.count)
    }

    func begin() {
        lastTick = runStart
        _ = loop.schedule(after: .milliseconds(10), handler: self)
    }

    // MARK: Ticks: ramp, messages, timeline, progress

    func timerFired(tag: UInt64) {
        let now = monotonicNanoseconds()
        let elapsed = Double(now - runStart) / 1e9
        switch phase {
        case .connect:
            startDue(elapsed: elapsed)
            if settled == range.count {
                phase = .hold
                holdStart = now
                emitProgress(now)
            }
        case .hold:
            sendDue(now: now)
            if Double(now - holdStart) / 1e9 >= settings.hold {
                phase = .settle
                report.counters.held = UInt64(open.count)
                report.seconds = Double(now - runStart) / 1e9
                emitProgress(now)
            }
        case .settle, .done:
            break
        }
        let currentSecond = Int(elapsed)
        if currentSecond != lastTimelineSecond {
            if lastTimelineSecond >= 0 { closeSecond(lastTimelineSecond) }
            lastTimelineSecond = currentSecond
            emitProgress(now)
        }
        lastTick = now
        if phase != .done { _ = loop.schedule(after: .milliseconds(10), handler: self) }
    }

    private func closeSecond(_ second: Int) {
        report.timeline.append(
            TimelinePoint(
                second: second, connections: UInt64(open.count), delivered: secondDelivered, errors: secondErrors,
                p99Micros: self.second.percentile(99)))
        self.second = Histogram()
        secondDelivered = 0
        secondErrors = 0
    }

    private func startDue(elapsed: Double) {
        let due = min(range.count, Int(elapsed * settings.ramp / Double(settings.processes)) + 1)
        while started < due && inFlight < settings.concurrency {
            let local = started
            started += 1
            inFlight += 1
            let request = AssignmentRequest(worker: self, client: range.lowerBound + local)
            assignStarted[local] = monotonicNanoseconds()
            if !request.start(loop: loop, settings: settings, source: source(for: local * 2)) {
                error("connect_failed")
                settle(local, ok: false)
            }
        }
    }

    private func source(for index: Int) -> SocketAddress? {
        settings.sources.isEmpty
            ? nil : settings.sources[(index * settings.processes + self.index) % settings.sources.count]
    }

    private func settle(_ local: Int, ok: Bool) {
        if reconnecting[local] {
            // A reconnect: not part of the first connect's count.
            reconnecting[local] = false
            if ok { report.counters.reconnected += 1 } else { report.counters.dropped += 1 }
            return
        }
        inFlight -= 1
        settled += 1
    }

    /// Starts the flow again for a client whose session ended: a new assignment, then the WebSocket with
    /// `resumeOffset` (the inbox returns what came after the last message the client saw).
    private func reconnect(_ local: Int) {
        reconnecting[local] = true
        sessions[local] = nil
        let request = AssignmentRequest(worker: self, client: range.lowerBound + local)
        assignStarted[local] = monotonicNanoseconds()
        if !request.start(loop: loop, settings: settings, source: source(for: local * 2)) {
            error("connect_failed")
            settle(local, ok: false)
        }
    }

    private func error(_ kind: String) {
        report.counters.errors[kind, default: 0] += 1
        secondErrors += 1
    }

    // MARK: The flow

    /// The assignment answered (status 0: no answer).
    func assigned(_ global: Int, status: Int, body: [UInt8]) {
        let local = global - range.lowerBound
        guard phase != .done else { return }
        guard status == 200 else {
            error(status == 0 ? "assign_failed" : "assign_status_\(status)")
            settle(local, ok: false)
            return
        }
        report.assignLatency.record((monotonicNanoseconds() - assignStarted[local]) / 1000)
        guard let answer = try? JSONParser.parse(body), let url = answer["url"]?.stringValue,
            let node = answer["socketNodeId"]?.stringValue, url.hasPrefix("/")
        else {
            error("assign_malformed")
            settle(local, ok: false)
            return
        }
        nodeOf[local] = node
        let session = NodeClient(owner: self, index: local, clientID: settings.clientID(global))
        sessions[local] = session
        upgradeStarted[local] = monotonicNanoseconds()
        var path = url + "?clientId=" + settings.clientID(global)
        if reconnecting[local] { path += "&resumeOffset=\(lastOffset[local])" }
        if !session.open(
            loop: loop, address: settings.target, hostField: settings.hostField, source: source(for: local * 2 + 1),
            path: path)
        {
            error("connect_failed")
            sessions[local] = nil
            settle(local, ok: false)
        }
    }

    func welcomed(_ client: NodeClient, nodeID: String, ringVersion: UInt64) {
        let local = client.index
        guard phase != .done else {
            client.close()
            return
        }
        if !reconnecting[local] {
            report.upgradeLatency.record((monotonicNanoseconds() - upgradeStarted[local]) / 1000)
            report.counters.connected += 1
        }
        if nodeID != nodeOf[local] { error("welcome_other_node") }
        openPosition[local] = open.count
        open.append(local)
        settle(local, ok: true)
    }

    func message(_ client: NodeClient, _ payload: UnsafeRawBufferPointer) {
        guard let decoded = try? ServerMessage.decode(payload) else {
            error("malformed_frame")
            return
        }
        switch decoded {
        case .accepted(_, _, let duplicate):
            if !duplicate { report.counters.accepted += 1 }
        case .error:
            report.counters.refused += 1
        case .envelope(let envelope):
            if let offset = envelope.offset, offset > lastOffset[client.index] { lastOffset[client.index] = offset }
            received(envelope)
        case .reconnect, .pong, .welcome:
            break
        }
    }

    private func received(_ envelope: Envelope) {
        // msgId "<sender global index>-<sequence>"; payloadJson {"t":<wall-clock ns at send>,…}.
        let parts = envelope.msgId.split(separator: "-")
        guard parts.count == 2, let sender = UInt64(parts[0]), let sequence = UInt64(parts[1]) else {
            error("foreign_message")
            return
        }
        let key = sender << 32 | sequence
        guard seen.insert(key).inserted else {
            report.counters.duplicates += 1
            return
        }
        report.counters.delivered += 1
        secondDelivered += 1
        if let sent = (try? JSONParser.parse(envelope.payloadJson))?["t"]?.uint64Value {
            let now = wallClockNanoseconds()
            let micros = now > sent ? (now - sent) / 1000 : 0
            report.messageLatency.record(micros)
            second.record(micros)
            if Double(micros) > settings.lateMilliseconds * 1000 { report.counters.late += 1 }
        }
    }

    func readEnded(_ client: NodeClient) {}

    func ended(_ client: NodeClient, _ why: NodeClient.End) {
        let local = client.index
        if openPosition[local] >= 0 {
            let position = openPosition[local]
            let last = open.removeLast()
            if position < open.count {
                open[position] = last
                openPosition[last] = position
            }
            openPosition[local] = -1
            // An open session ended before the run did: a real client connects again and resumes.
            if case .local = why {
            } else if phase != .done {
                report.counters.sessionsEnded += 1
                reconnect(local)
            }
            return
        }
        guard phase != .done, sessions[local] === client, !client.wasWelcomed else { return }
        switch why {
        case .handshakeRefused(let status): error("upgrade_status_\(status)")
        case .connectFailed: error("upgrade_connect_failed")
        default: error("upgrade_failed")
        }
        settle(local, ok: false)
    }

    private func sendDue(now: UInt64) {
        guard !open.isEmpty else { return }
        messageCredit += Double(now - lastTick) / 1e9 * settings.rate * Double(open.count)
        var budget = Int(messageCredit)
        messageCredit -= Double(budget)
        while budget > 0 && !open.isEmpty {
            budget -= 1
            nextSender = (nextSender + 1) % open.count
            let local = open[nextSender]
            guard let recipient = recipient(for: local), let session = sessions[local] else { continue }
            sequence[local] += 1
            let global = range.lowerBound + local
            let frame =
                #"{"type":"message","msgId":"\#(global)-\#(sequence[local])","toClientId":""# + recipient
                + #"","payloadJson":"{\"t\":\#(wallClockNanoseconds()),\"p\":\"\#(padding)\"}"}"#
            var bytes = Array(frame.utf8)
            bytes.withUnsafeBytes { session.send(opcode: Opcode.text, $0) }
            report.counters.sent += 1
        }
    }

    private func nextRandom() -> UInt64 {
        random &+= 0x9E37_79B9_7F4A_7C15
        var z = random
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A recipient for `local`'s next message, by the pattern (nil when the pattern has none to offer).
    private func recipient(for local: Int) -> String? {
        switch settings.pattern {
        case .random:
            guard settings.population > 1 else { return nil }
            var other = Int(nextRandom() % UInt64(settings.population - 1))
            if other >= range.lowerBound + local { other += 1 }
            return settings.clientID(other)
        case .sameNode, .otherNode:
            let same = settings.pattern == .sameNode
            for _ in 0..<8 {
                let candidate = open[Int(nextRandom() % UInt64(open.count))]
                if candidate != local && (nodeOf[candidate] == nodeOf[local]) == same {
                    return settings.clientID(range.lowerBound + candidate)
                }
            }
            return nil
        }
    }

    // MARK: Reporting

    private func emitProgress(_ now: UInt64) {
        let line =
            #"{"type":"progress","worker":\#(index),"phase":"\#(phase.rawValue)","elapsed":\#(Double(now - runStart) / 1e9),"#
            + #""connected":\#(report.counters.connected),"open":\#(open.count),"sent":\#(report.counters.sent),"#
            + #""accepted":\#(report.counters.accepted),"delivered":\#(report.counters.delivered),"#
            + #""errors":\#(report.counters.errorTotal),"p99":\#(report.messageLatency.percentile(99))}"#
        writeLine(line)
    }

    /// The coordinator says the run is over: close every session, print the report, stop.
    func finish() {
        guard phase != .done else { return }
        if report.seconds == 0 {
            report.counters.held = UInt64(open.count)
            report.seconds = Double(monotonicNanoseconds() - runStart) / 1e9
        }
        if lastTimelineSecond >= 0 { closeSecond(lastTimelineSecond) }
        phase = .done
        for local in open {
            openPosition[local] = -1
            sessions[local]?.close()
        }
        open.removeAll()
        let result = JSONValue.object([
            ("type", .string("result")), ("worker", .int(Int64(index))), ("report", report.json()),
        ])
        writeLine(String(decoding: result.serialized(), as: UTF8.self))
        _ = loop.schedule(after: .milliseconds(200)) { [loop] in loop.stop() }
    }

    private func writeLine(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { _ = try? FileDescriptor(1).write($0) }
    }
}

/// Nanoseconds since the Unix epoch (the message timestamps: comparable across machines with synchronised clocks).
func wallClockNanoseconds() -> UInt64 { UInt64(wallClockSeconds() * 1e9) }

/// Stops the worker's loop run when SIGUSR1 (finish) or SIGTERM arrives.
final class FinishOnSignal: EventHandler {
    let fd: FileDescriptor
    unowned(unsafe) let worker: RunWorker

    init(fd: FileDescriptor, worker: RunWorker) {
        self.fd = fd
        self.worker = worker
    }

    func ready(_ events: ReadyEvents) {
        _ = fd.drainEvent()
        if !Signals.takePending().isEmpty { worker.finish() }
    }

    func loopStopping() {}
}
