// socket-load: sender/receiver pairs against one or two rtc-socket nodes, each sender keeping a window of
// messages in flight; measures delivery rate and send-to-receipt latency and checks exactly-once, in-order delivery.
import EventLoop
import JSON
import Ring
import Sys
import WebSocket
import Wire

/// What a run does (from the command line).
struct SocketLoadSettings {
    var senders: NodeTarget
    var receivers: NodeTarget
    var ringNodes: [String]
    var sendersNode: String
    var receiversNode: String
    var pairs = 10
    var messages = 1000
    var window = 8
    var size = 64
    var timeout = 60.0
    var concurrency = 128
    var cpu: [(label: String, pid: Int32)] = []
}

/// One sender and its receiver: sender `i` sends only to receiver `i`, so each receiver's inbox (fresh ids, fresh
/// run) must show the sender's messages with offsets 1, 2, 3, … in sending order.
final class LoadPair {
    let index: Int
    var sender: NodeClient!
    var receiver: NodeClient!
    /// `{"type":"message","msgId":"<run>.<pair>.` and `","toClientId":…,"payloadJson":…}`: a message's text is
    /// prefix + its sequence number in decimal + suffix.
    var prefix: [UInt8] = []
    var suffix: [UInt8] = []
    /// The msgId's part before the sequence number.
    var idPrefix = ""
    var sent = 0
    var accepted = 0
    var delivered = 0
    var failed = false
    var dirty = false

    init(index: Int) { self.index = index }

    /// Sent and not yet both accepted and delivered.
    var inFlight: Int { sent - min(accepted, delivered) }
}

/// Figures of a run.
struct LoadFigures {
    var errors = 0
    var closes = 0
    var duplicates = 0
    var outOfOrder = 0
    var wrongFields = 0
    var firstProblems: [String] = []

    mutating func note(_ problem: String) {
        if firstProblems.count < 5 { firstProblems.append(problem) }
    }
}

/// The run on one loop: opens every session, then sends, counts and checks, then closes.
final class SocketLoad: NodeClientOwner, TimerHandler {
    enum Phase { case connecting, sending, done }

    let loop: EventLoop
    let settings: SocketLoadSettings
    let runID: String
    let scratch: UnsafeMutableRawBufferPointer
    let output: UnsafeMutableRawBufferPointer
    let opener: SessionOpener
    private(set) var pairs: [LoadPair] = []
    private(set) var phase = Phase.connecting
    private var dirtyPairs: [Int] = []
    /// Send times (monotonic ns) of pair p's message s at `p * window + s % window`: a slot is reused only once its
    /// message is both accepted and delivered.
    private var sendTimes: [UInt64]
    private(set) var latencies: [UInt64] = []
    private(set) var figures = LoadFigures()
    private(set) var donePairs = 0
    private(set) var startNanoseconds: UInt64 = 0
    private(set) var lastReceipt: UInt64 = 0
    private(set) var startCPU: [Double] = []
    private(set) var endCPU: [Double] = []
    private(set) var startOwnCPU = 0.0
    private(set) var endOwnCPU = 0.0
    private(set) var setupFailure: String?
    private var deadline: UInt64 = 0

    init(loop: EventLoop, settings: SocketLoadSettings, runID: String) {
        self.loop = loop
        self.settings = settings
        self.runID = runID
        scratch = .allocate(byteCount: 1 << 20, alignment: 16)
        output = .allocate(byteCount: 256 * 1024, alignment: 16)
        opener = SessionOpener(loop: loop, concurrency: settings.concurrency)
        sendTimes = [UInt64](repeating: 0, count: settings.pairs * settings.window)
        latencies.reserveCapacity(settings.pairs * settings.messages)
    }

    deinit {
        scratch.deallocate()
        output.deallocate()
    }

    /// Chooses the ids, builds each pair's message template and starts opening sessions.
    func begin() {
        let ring = benchRing(version: 1, ids: settings.ringNodes)
        let senderIDs = clientIDs(
            ownedBy: settings.sendersNode, in: ring, count: settings.pairs, prefix: runID + "s")
        let receiverIDs = clientIDs(
            ownedBy: settings.receiversNode, in: ring, count: settings.pairs, prefix: runID + "r")
        // payloadJson: {"p":"xxx…"} of exactly `size` bytes (at least the 8 of the frame around the x's).
        let payload = "{\"p\":\"" + String(repeating: "x", count: max(0, settings.size - 8)) + "\"}"
        let marker = "@@SEQ@@"
        for index in 0..<settings.pairs {
            let pair = LoadPair(index: index)
            pair.sender = NodeClient(owner: self, index: index, clientID: senderIDs[index])
            pair.receiver = NodeClient(owner: self, index: index, clientID: receiverIDs[index])
            pair.idPrefix = runID + "." + String(index) + "."
            let template = ClientFrame.message(
                msgId: pair.idPrefix + marker, toClientId: receiverIDs[index], payloadJson: payload
            ).encoded()
            let cut = template.firstRange(of: Array(marker.utf8))!
            pair.prefix = Array(template[..<cut.lowerBound])
            pair.suffix = Array(template[cut.upperBound...])
            pairs.append(pair)
            // Receivers first: each is there before its sender speaks.
            opener.add(pair.receiver, at: settings.receivers)
        }
        for pair in pairs { opener.add(pair.sender, at: settings.senders) }
        deadline = loop.now &+ UInt64(settings.timeout * 1e9)
        opener.begin()
        loop.schedule(after: .milliseconds(2), handler: self)
    }

    // MARK: Sessions

    func welcomed(_ client: NodeClient, nodeID: String, ringVersion: UInt64) {
        let isSender = pairs[client.index].sender === client
        let expected = isSender ? settings.sendersNode : settings.receiversNode
        if nodeID != expected {
            setupFailure = "\(client.clientID) was chosen for \(expected) but the node says it is \(nodeID)"
        } else if ringVersion == 0 {
            setupFailure = "node \(nodeID) has no ring yet (publish one first: rtc-bench ring-update)"
        }
        opener.settle(welcomed: true)
    }

    func ended(_ client: NodeClient, _ why: NodeClient.End) {
        guard why != .local else { return }
        guard client.wasWelcomed else {
            figures.note("\(client.clientID): \(why) before the welcome")
            opener.settle(welcomed: false)
            return
        }
        switch phase {
        case .connecting:
            if setupFailure == nil { setupFailure = "\(client.clientID): session ended before the start: \(why)" }
        case .sending:
            figures.closes += 1
            figures.note("\(client.clientID): session ended during the run: \(why)")
            let pair = pairs[client.index]
            if !pair.failed {
                pair.failed = true
                pairEnded()
            }
        case .done:
            break
        }
    }

    func message(_ client: NodeClient, _ payload: UnsafeRawBufferPointer) {
        guard phase == .sending else { return }
        let now = monotonicNanoseconds()
        let pair = pairs[client.index]
        let decoded: ServerMessage
        do {
            decoded = try ServerMessage.decode(payload)
        } catch {
            figures.errors += 1
            figures.note("\(client.clientID): undecodable frame: \(error)")
            return
        }
        if client === pair.receiver {
            guard case .envelope(let envelope) = decoded else {
                figures.errors += 1
                figures.note("receiver \(client.clientID): unexpected \(decoded)")
                return
            }
            delivered(envelope, to: pair, at: now)
        } else {
            switch decoded {
            case .accepted(let msgId, let offset, let duplicate):
                acceptedAnswer(msgId: msgId, offset: offset, duplicate: duplicate, pair: pair)
            case .error(let code, let text, let msgId):
                figures.errors += 1
                figures.note("sender \(client.clientID): error \(code) for \(msgId ?? "-"): \(text)")
                if !pair.failed {
                    pair.failed = true
                    pairEnded()
                }
            case .pong:
                break
            default:
                figures.errors += 1
                figures.note("sender \(client.clientID): unexpected \(decoded)")
            }
        }
    }

    /// The sequence number in `msgId` when it is one of `pair`'s.
    private func sequence(_ msgId: String, _ pair: LoadPair) -> Int? {
        guard msgId.hasPrefix(pair.idPrefix) else { return nil }
        return Int(msgId.dropFirst(pair.idPrefix.count))
    }

    private func delivered(_ envelope: Envelope, to pair: LoadPair, at now: UInt64) {
        guard let seq = sequence(envelope.msgId, pair), seq < pair.sent else {
            figures.errors += 1
            figures.note("receiver \(pair.receiver.clientID): a message it was not sent: \(envelope.msgId)")
            return
        }
        if seq < pair.delivered {
            figures.duplicates += 1
            figures.note("receiver \(pair.receiver.clientID): \(envelope.msgId) again")
            return
        }
        if seq > pair.delivered {
            figures.outOfOrder += 1
            figures.note("receiver \(pair.receiver.clientID): \(envelope.msgId) while expecting #\(pair.delivered)")
        }
        if envelope.from != pair.sender.clientID || envelope.toClientId != pair.receiver.clientID
            || envelope.offset != UInt64(seq + 1)
        {
            figures.wrongFields += 1
            figures.note(
                "receiver \(pair.receiver.clientID): \(envelope.msgId) from \(envelope.from) to \(envelope.toClientId) "
                    + "offset \(envelope.offset.map { String($0) } ?? "none") (expected \(seq + 1))")
        }
        latencies.append(now &- sendTimes[pair.index * settings.window + seq % settings.window])
        lastReceipt = now
        pair.delivered = seq + 1
        progressed(pair)
    }

    private func acceptedAnswer(msgId: String, offset: UInt64, duplicate: Bool, pair: LoadPair) {
        guard let seq = sequence(msgId, pair), seq == pair.accepted, seq < pair.sent else {
            figures.outOfOrder += 1
            figures.note("sender \(pair.sender.clientID): accepted \(msgId) while expecting #\(pair.accepted)")
            return
        }
        if duplicate {
            figures.duplicates += 1
            figures.note("sender \(pair.sender.clientID): \(msgId) accepted as a duplicate")
        }
        if offset != UInt64(seq + 1) {
            figures.wrongFields += 1
            figures.note("sender \(pair.sender.clientID): \(msgId) accepted at offset \(offset), expected \(seq + 1)")
        }
        pair.accepted = seq + 1
        progressed(pair)
    }

    private func progressed(_ pair: LoadPair) {
        if pair.accepted == settings.messages && pair.delivered == settings.messages && !pair.failed {
            pair.failed = true  // finished: nothing more to send or expect
            pairEnded()
            return
        }
        if !pair.dirty && pair.sent < settings.messages {
            pair.dirty = true
            dirtyPairs.append(pair.index)
        }
    }

    func readEnded(_ client: NodeClient) {
        guard phase == .sending, !dirtyPairs.isEmpty else { return }
        for index in dirtyPairs {
            let pair = pairs[index]
            pair.dirty = false
            fill(pair)
        }
        dirtyPairs.removeAll(keepingCapacity: true)
    }

    /// Sends `pair`'s next messages while its window has room, in one write.
    private func fill(_ pair: LoadPair) {
        guard !pair.failed else { return }
        let base = output.baseAddress!
        var used = 0
        let now = monotonicNanoseconds()
        let window = settings.window
        while pair.sent < settings.messages && pair.inFlight < window {
            let seq = pair.sent
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
            let digitCount = withUnsafeMutableBytes(of: &digits) { decimal(seq, into: $0.baseAddress!) }
            let length = pair.prefix.count + digitCount + pair.suffix.count
            if used + length + 14 > output.count {
                pair.sender.write(UnsafeRawBufferPointer(start: base, count: used))
                used = 0
            }
            let header = pair.sender.frameHeader(into: base + used, opcode: Opcode.text, length: length)
            let payload = base + used + header.size
            pair.prefix.withUnsafeBytes { payload.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            withUnsafeBytes(of: &digits) {
                (payload + pair.prefix.count).copyMemory(from: $0.baseAddress!, byteCount: digitCount)
            }
            pair.suffix.withUnsafeBytes {
                (payload + pair.prefix.count + digitCount).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
            }
            applyMask(header.key, phase: 0, from: payload, to: payload, count: length)
            used += header.size + length
            sendTimes[pair.index * window + seq % window] = now
            pair.sent += 1
        }
        if used > 0 { pair.sender.write(UnsafeRawBufferPointer(start: base, count: used)) }
    }

    private func pairEnded() {
        donePairs += 1
        if donePairs == pairs.count { finish() }
    }

    // MARK: Control

    func timerFired(tag: UInt64) {
        switch phase {
        case .connecting:
            if !opener.settled {
                if loop.now >= deadline {
                    setupFailure = "only \(opener.welcomed) of \(opener.total) sessions opened in \(settings.timeout) s"
                    finish()
                } else {
                    loop.schedule(after: .milliseconds(2), handler: self)
                }
                return
            }
            if opener.failed > 0 && setupFailure == nil {
                setupFailure = "\(opener.failed) of \(opener.total) sessions failed to open"
            }
            if setupFailure != nil {
                finish()
                return
            }
            phase = .sending
            startCPU = settings.cpu.map { processCPUSeconds($0.pid) }
            startOwnCPU = ProcessFigures.current().cpuSeconds
            startNanoseconds = monotonicNanoseconds()
            lastReceipt = startNanoseconds
            deadline = loop.now &+ UInt64(settings.timeout * 1e9)
            for pair in pairs { fill(pair) }
            loop.schedule(after: .milliseconds(100), handler: self)
        case .sending:
            if loop.now >= deadline {
                figures.note("timed out after \(settings.timeout) s")
                finish()
            } else {
                loop.schedule(after: .milliseconds(100), handler: self)
            }
        case .done:
            loop.stop()
        }
    }

    private func finish() {
        guard phase != .done else { return }
        let measured = phase == .sending
        phase = .done
        if measured {
            endCPU = settings.cpu.map { processCPUSeconds($0.pid) }
            endOwnCPU = ProcessFigures.current().cpuSeconds
        }
        for pair in pairs {
            pair.sender.close()
            pair.receiver.close()
        }
        // A moment for the Close frames to go out before the loop stops.
        loop.schedule(after: .milliseconds(50), handler: self)
    }

    // MARK: Report

    var totals: (sent: Int, accepted: Int, delivered: Int) {
        pairs.reduce((0, 0, 0)) { ($0.0 + $1.sent, $0.1 + $1.accepted, $0.2 + $1.delivered) }
    }

    /// The JSON line and the human line.
    func report() -> (json: String, human: String, ok: Bool) {
        let (sent, accepted, delivered) = totals
        let expected = settings.pairs * settings.messages
        let seconds = lastReceipt > startNanoseconds ? Double(lastReceipt - startNanoseconds) / 1e9 : 0
        let rate = seconds > 0 ? Double(latencies.count) / seconds : 0
        let sorted = latencies.sorted()
        func percentile(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let rank = Int((q * Double(sorted.count)).rounded(.up))
            return Double(sorted[min(sorted.count - 1, max(0, rank - 1))]) / 1e6
        }
        let quantiles: [(String, Double)] = [
            ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("max", 1.0),
        ]
        let missing = expected - delivered
        let ok =
            setupFailure == nil && missing == 0 && accepted == expected && figures.errors == 0 && figures.closes == 0
            && figures.duplicates == 0 && figures.outOfOrder == 0 && figures.wrongFields == 0
        let ownCPU = endOwnCPU - startOwnCPU
        var writer = JSONWriter(capacity: 512)
        writer.beginObject()
        writer.field("tool", "socket-load")
        writer.field("path", settings.sendersNode == settings.receiversNode ? "local" : "cross-node")
        writer.field("pairs", settings.pairs)
        writer.field("messages_per_sender", settings.messages)
        writer.field("window", settings.window)
        writer.field("size", settings.size)
        writer.field("sent", sent)
        writer.field("accepted", accepted)
        writer.field("received", delivered)
        writer.field("seconds", rounded(seconds, 4))
        writer.field("rate", rounded(rate, 0))
        writer.key("latency_ms")
        writer.beginObject()
        for (name, q) in quantiles { writer.field(name, rounded(percentile(q), 3)) }
        writer.endObject()
        writer.field("errors", figures.errors)
        writer.field("closes", figures.closes)
        writer.field("duplicates", figures.duplicates)
        writer.field("out_of_order", figures.outOfOrder)
        writer.field("wrong_fields", figures.wrongFields)
        writer.field("missing", missing)
        writer.field("client_cpu_s", rounded(ownCPU, 3))
        writer.key("cpu_s")
        writer.beginObject()
        for (index, entry) in settings.cpu.enumerated() where index < endCPU.count {
            writer.field(entry.label, rounded(endCPU[index] - startCPU[index], 3))
        }
        writer.endObject()
        writer.key("cpu_us_per_msg")
        writer.beginObject()
        if delivered > 0 {
            writer.field("client", rounded(ownCPU * 1e6 / Double(delivered), 2))
            for (index, entry) in settings.cpu.enumerated() where index < endCPU.count {
                writer.field(entry.label, rounded((endCPU[index] - startCPU[index]) * 1e6 / Double(delivered), 2))
            }
        }
        writer.endObject()
        if let setupFailure { writer.field("setup_failure", setupFailure) }
        writer.field("ok", ok)
        writer.endObject()
        var human =
            "socket-load: \(settings.pairs) pairs × \(settings.messages) messages (window \(settings.window), "
            + "\(settings.size) B, \(settings.sendersNode == settings.receiversNode ? "local" : "cross-node")): "
            + "\(delivered) of \(expected) received in \(fixed(seconds, 3)) s = \(fixed(rate, 0)) msg/s; latency ms"
        for (name, q) in quantiles { human += " \(name) \(fixed(percentile(q), 2))" }
        human +=
            "; errors \(figures.errors), closes \(figures.closes), duplicates \(figures.duplicates), "
            + "out of order \(figures.outOfOrder), wrong fields \(figures.wrongFields), missing \(missing)"
        if let setupFailure { human += "; setup failed: \(setupFailure)" }
        for problem in figures.firstProblems { human += "\n  " + problem }
        return (String(decoding: writer.bytes, as: UTF8.self), human, ok)
    }
}

/// `value` rounded to `decimals` digits (for the JSON line).
func rounded(_ value: Double, _ decimals: Int) -> Double {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    return (value * scale).rounded() / scale
}

/// Writes `value` (non-negative) in decimal at `destination` (20 bytes must be writable); returns the digit count.
@inline(__always)
func decimal(_ value: Int, into destination: UnsafeMutableRawPointer) -> Int {
    var digits = 1
    var rest = value / 10
    while rest > 0 {
        digits += 1
        rest /= 10
    }
    var number = value
    for position in stride(from: digits - 1, through: 0, by: -1) {
        destination.storeBytes(of: UInt8(48 + number % 10), toByteOffset: position, as: UInt8.self)
        number /= 10
    }
    return digits
}

/// Runs `socket-load` and exits: 0 when every message was accepted and delivered once, in order, 1 otherwise.
func runSocketLoad(_ arguments: ArraySlice<String>) {
    var sendersAt: String?
    var receiversAt: String?
    var ringNodes: [String] = []
    var sendersNode: String?
    var receiversNode: String?
    var pairs = 10
    var messages = 1000
    var window = 8
    var size = 64
    var timeout = 60.0
    var concurrency = 128
    var cpu: [(label: String, pid: Int32)] = []
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--senders-at": sendersAt = value(of: flag, &rest)
        case "--receivers-at": receiversAt = value(of: flag, &rest)
        case "--ring-nodes":
            ringNodes = value(of: flag, &rest).split(separator: ",").map(String.init)
            guard !ringNodes.isEmpty, ringNodes.allSatisfy(NodeID.isValid) else {
                fail("socket-load: --ring-nodes takes a comma list of node ids")
            }
        case "--senders-node": sendersNode = value(of: flag, &rest)
        case "--receivers-node": receiversNode = value(of: flag, &rest)
        case "--pairs": pairs = number(of: flag, &rest, in: 1...9000)
        case "--messages": messages = number(of: flag, &rest, in: 1...100_000_000)
        case "--window": window = number(of: flag, &rest, in: 1...10_000)
        case "--size": size = number(of: flag, &rest, in: 8...60_000)
        case "--timeout": timeout = seconds(of: flag, &rest)
        case "--concurrency": concurrency = number(of: flag, &rest, in: 1...10_000)
        case "--cpu":
            let text = value(of: flag, &rest)
            guard let equals = text.firstIndex(of: "="), let pid = Int32(text[text.index(after: equals)...]), pid > 0,
                equals != text.startIndex
            else { fail("socket-load: --cpu takes LABEL=PID") }
            cpu.append((String(text[..<equals]), pid))
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("socket-load: unknown option \(flag)")
        }
    }
    guard let sendersAt, let senders = NodeTarget(sendersAt) else {
        fail("socket-load: --senders-at HOST:PORT is required")
    }
    let receivers: NodeTarget
    if let receiversAt {
        guard let parsed = NodeTarget(receiversAt) else { fail("socket-load: --receivers-at needs HOST:PORT") }
        receivers = parsed
    } else {
        receivers = senders
    }
    guard !ringNodes.isEmpty else { fail("socket-load: --ring-nodes is required (the ring the nodes were given)") }
    let senderNode = sendersNode ?? ringNodes[0]
    let sameNode = receiversAt == nil || receiversAt == sendersAt
    let receiverNode = receiversNode ?? (sameNode ? senderNode : ringNodes[ringNodes.count - 1])
    guard ringNodes.contains(senderNode), ringNodes.contains(receiverNode) else {
        fail("socket-load: --senders-node and --receivers-node must be in --ring-nodes")
    }
    guard sameNode == (senderNode == receiverNode) else {
        fail("socket-load: two addresses need two nodes (--senders-node, --receivers-node), one address one node")
    }
    _ = try? raiseOpenFileLimit()
    Signals.ignoreBrokenPipe()
    let settings = SocketLoadSettings(
        senders: senders, receivers: receivers, ringNodes: ringNodes, sendersNode: senderNode,
        receiversNode: receiverNode, pairs: pairs, messages: messages, window: window, size: size, timeout: timeout,
        concurrency: concurrency, cpu: cpu)
    do {
        let loop = try EventLoop()
        let load = SocketLoad(loop: loop, settings: settings, runID: randomRunID())
        load.begin()
        try loop.run()
        let (json, human, ok) = load.report()
        log(json + "\n" + human, to: FileDescriptor(1))
        exitProcess(ok ? 0 : 1)
    } catch {
        fail("socket-load: \(error)")
    }
}
