// ws-upgrades: new WebSocket connections per second, each with its full life: connect, upgrade, one echo, Close.
import COpenSSL
import EventLoop
import HTTP1
import Synchronization
import Sys
import WebSocket

/// What every upgrade connection does.
struct UpgradeSettings {
    var address: SocketAddress
    /// The request line's target and the Host field's value.
    var path: [UInt8]
    var hostField: [UInt8]
    /// Source addresses bound before connect, taken in turn (empty: the kernel picks 127.0.0.1 and a port).
    var sources: [SocketAddress]
}

/// Figures a loop's connections report to the controller on the main thread.
final class UpgradeCounters: Sendable {
    let succeeded = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    /// Monotonic nanoseconds at which the loop's last connection ended (0 until then).
    let finishedAt = Atomic<UInt64>(0)
    /// Set when the run is over (done or timed out): no new connection is opened after this.
    let stopping = Atomic<Bool>(false)
}

/// The byte strings every connection of a loop sends and expects, built once: the upgrade request (with room
/// for the key), the Close (1000) it sends masked and the Close it must get back unmasked.
private enum Wire {
    static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    /// Payload bytes of the one data message.
    static let messageSize = 16
    /// The echo as the client must read it: FIN + binary, unmasked length, payload.
    static let echoSize = 2 + messageSize
    /// Close 1000 as the echo answers it (the status code echoed back, RFC 6455 §5.5.1).
    static let closeReply: [UInt8] = [0x88, 0x02, 0x03, 0xE8]

    /// Standard base64 (RFC 4648 §4) of `count` bytes into `destination`; returns the characters written.
    static func base64(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutableRawPointer) -> Int {
        let table = alphabet.utf8Start
        var index = 0
        var out = 0
        while index < count {
            let left = count - index
            let b0 = UInt32(source.load(fromByteOffset: index, as: UInt8.self))
            let b1 = left > 1 ? UInt32(source.load(fromByteOffset: index + 1, as: UInt8.self)) : 0
            let b2 = left > 2 ? UInt32(source.load(fromByteOffset: index + 2, as: UInt8.self)) : 0
            let word = b0 << 16 | b1 << 8 | b2
            destination.storeBytes(of: table[Int(word >> 18 & 63)], toByteOffset: out, as: UInt8.self)
            destination.storeBytes(of: table[Int(word >> 12 & 63)], toByteOffset: out + 1, as: UInt8.self)
            let third = left > 1 ? table[Int(word >> 6 & 63)] : UInt8(ascii: "=")
            let fourth = left > 2 ? table[Int(word & 63)] : UInt8(ascii: "=")
            destination.storeBytes(of: third, toByteOffset: out + 2, as: UInt8.self)
            destination.storeBytes(of: fourth, toByteOffset: out + 3, as: UInt8.self)
            index += 3
            out += 4
        }
        return out
    }
}

/// One loop's share of the run: `total` connections, at most `concurrency` at once, one reusable slot each.
/// Everything a connection needs (request bytes, key arithmetic, expected replies, head parser) lives in the
/// worker or its slots, allocated once: per connection only the socket and the event loop's `Connection`.
final class UpgradeWorker {
    unowned(unsafe) let loop: EventLoop
    let settings: UpgradeSettings
    let counters: UpgradeCounters
    private let total: Int
    private var started = 0
    private var ended = 0
    private let firstID: Int
    private let idStride: Int
    private var slots: [UpgradeSlot] = []
    /// The upgrade request with a 24-character hole for the key at `keyOffset`.
    let request: UnsafeMutableRawBufferPointer
    let keyOffset: Int
    /// The key followed by the RFC 6455 GUID: what SHA-1 hashes for the accept value.
    let digestInput: UnsafeMutableRawBufferPointer
    let digest: UnsafeMutableRawBufferPointer
    /// Frames built here are written at once (`Connection.write` copies what the socket does not take).
    let frame: UnsafeMutableRawBufferPointer
    let closeReply: UnsafeMutableRawBufferPointer
    /// SplitMix64 state for keys and masks: a bench needs unpredictable-enough nonces, not getrandom per socket.
    private var random: UInt64 = 0

    init(
        loop: EventLoop, settings: UpgradeSettings, total: Int, concurrency: Int, firstID: Int, idStride: Int,
        counters: UpgradeCounters
    ) {
        self.loop = loop
        self.settings = settings
        self.total = total
        self.firstID = firstID
        self.idStride = idStride
        self.counters = counters
        let head =
            Array("GET ".utf8) + settings.path + Array(" HTTP/1.1\r\nHost: ".utf8) + settings.hostField
            + Array(
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ".utf8
            )
        let tail = Array("\r\n\r\n".utf8)
        keyOffset = head.count
        request = .allocate(byteCount: head.count + 24 + tail.count, alignment: 8)
        request.copyBytes(from: head + [UInt8](repeating: UInt8(ascii: "A"), count: 24) + tail)
        digestInput = .allocate(byteCount: 24 + Handshake.guid.count, alignment: 8)
        digestInput.copyBytes(from: [UInt8](repeating: 0, count: 24) + Handshake.guid)
        digest = .allocate(byteCount: 20, alignment: 8)
        frame = .allocate(byteCount: 64, alignment: 8)
        closeReply = .allocate(byteCount: Wire.closeReply.count, alignment: 8)
        closeReply.copyBytes(from: Wire.closeReply)
        withUnsafeMutableBytes(of: &random) { fillRandom($0) }
        for _ in 0..<concurrency { slots.append(UpgradeSlot(worker: self)) }
    }

    deinit {
        request.deallocate()
        digestInput.deallocate()
        digest.deallocate()
        frame.deallocate()
        closeReply.deallocate()
    }

    @inline(__always)
    func nextRandom() -> UInt64 {
        random &+= 0x9E37_79B9_7F4A_7C15
        var z = random
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Starts every slot's first connection; call before the loop runs (or on its thread).
    func begin() {
        if total == 0 { finishedNow() }
        for slot in slots { openNext(on: slot) }
    }

    /// Opens the next connection on `slot`, going on to the one after when opening fails at once (no recursion:
    /// failures reported by the loop come back through `slotEnded`, on a later callback).
    private func openNext(on slot: UpgradeSlot) {
        while started < total && !counters.stopping.load(ordering: .relaxed) {
            let id = firstID + started * idStride
            started += 1
            let source = settings.sources.isEmpty ? nil : settings.sources[id % settings.sources.count]
            if slot.open(id: UInt64(id), source: source) { return }
            count(success: false)
        }
    }

    /// A slot's connection closed (`success`: its whole exchange was right); the slot takes the next one.
    func slotEnded(_ slot: UpgradeSlot, success: Bool) {
        count(success: success)
        openNext(on: slot)
    }

    private func count(success: Bool) {
        if success {
            counters.succeeded.add(1, ordering: .relaxed)
        } else {
            counters.failed.add(1, ordering: .relaxed)
        }
        ended += 1
        if ended == total { finishedNow() }
    }

    private func finishedNow() { counters.finishedAt.store(monotonicNanoseconds(), ordering: .releasing) }
}

/// One concurrency slot: runs one connection at a time through handshake, echo and close, then the next.
/// The client closes its socket only after the server's Close and FIN (RFC 6455 §7.1.1: the server closes the
/// TCP connection first), so TIME_WAIT lands on the server's side, keyed by its listening port, and the
/// client's ephemeral ports are free again at once: 10,000 connections a second from one source address do not
/// run out of ports.
final class UpgradeSlot: ConnectionHandler {
    enum Stage { case handshake, echo, close, eof, done, failed }

    unowned(unsafe) let worker: UpgradeWorker
    private var parser = HeadParser(kind: .response)
    /// The expected Sec-WebSocket-Accept (28 bytes) at 0, the expected echo frame at 32.
    private let expected: UnsafeMutableRawBufferPointer
    private var stage = Stage.done
    /// Bytes of the expected reply (echo or Close) matched so far.
    private var matched = 0
    private var id: UInt64 = 0

    init(worker: UpgradeWorker) {
        self.worker = worker
        expected = .allocate(byteCount: 32 + Wire.echoSize, alignment: 8)
    }

    deinit { expected.deallocate() }

    /// Connects (nonblocking) and sends the upgrade request at once: on loopback the connection is usually
    /// established when connect returns; if not, `Connection` keeps the request until the socket is writable,
    /// and a refused connect surfaces as an error on the first send or event. False when no socket could be
    /// opened (counted by the worker).
    func open(id: UInt64, source: SocketAddress?) -> Bool {
        let loop = worker.loop
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.socket(.tcp, for: worker.settings.address)
        } catch {
            return false
        }
        do {
            if let source { try fd.bind(to: source) }
            _ = try fd.connect(to: worker.settings.address)
        } catch {
            fd.close()
            return false
        }
        self.id = id
        stage = .handshake
        matched = 0
        parser.reset()
        prepareKey()
        // Registration failure closes fd.
        guard let connection = try? Connection(loop: loop, fd: fd, handler: self) else { return false }
        connection.write(UnsafeRawBufferPointer(worker.request))
        return true
    }

    /// A fresh Sec-WebSocket-Key into the worker's request and its accept value into `expected`.
    private func prepareKey() {
        let worker = self.worker
        var nonce = (worker.nextRandom(), worker.nextRandom())
        let key = worker.request.baseAddress! + worker.keyOffset
        _ = withUnsafeBytes(of: &nonce) { Wire.base64($0.baseAddress!, count: 16, into: key) }
        worker.digestInput.baseAddress!.copyMemory(from: key, byteCount: 24)
        _ = SHA1(
            worker.digestInput.baseAddress!.assumingMemoryBound(to: UInt8.self), worker.digestInput.count,
            worker.digest.baseAddress!.assumingMemoryBound(to: UInt8.self))
        _ = Wire.base64(worker.digest.baseAddress!, count: 20, into: expected.baseAddress!)
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        switch stage {
        case .handshake:
            switch parser.parse(bytes) {
            case .needMore:
                return
            case .failure:
                fail(connection)
            case .complete(let consumed):
                // The server sends nothing after its 101 until our message: extra bytes are a protocol error.
                guard consumed == bytes.count, parser.status == 101,
                    let accept = parser.value(ofField: "sec-websocket-accept"),
                    accept.elementsEqual(UnsafeRawBufferPointer(rebasing: expected[0..<28]))
                else {
                    fail(connection)
                    return
                }
                sendMessage(connection)
            }
        case .echo:
            let echo = UnsafeRawBufferPointer(rebasing: expected[32..<(32 + Wire.echoSize)])
            guard match(bytes, echo) else {
                fail(connection)
                return
            }
            if matched == echo.count { sendClose(connection) }
        case .close:
            guard match(bytes, UnsafeRawBufferPointer(worker.closeReply)) else {
                fail(connection)
                return
            }
            if matched == worker.closeReply.count { stage = .eof }
        case .eof:
            // Nothing may follow the Close (RFC 6455 §5.5.1).
            fail(connection)
        case .done, .failed:
            return
        }
    }

    /// Whether `bytes` continue the expected reply at `matched` without going past its end; advances `matched`.
    @inline(__always)
    private func match(_ bytes: UnsafeRawBufferPointer, _ reply: UnsafeRawBufferPointer) -> Bool {
        guard matched + bytes.count <= reply.count,
            bytes.elementsEqual(UnsafeRawBufferPointer(rebasing: reply[matched..<(matched + bytes.count)]))
        else { return false }
        matched += bytes.count
        return true
    }

    /// One masked binary message: the connection's id (8 bytes, little-endian), then 8 fixed bytes.
    private func sendMessage(_ connection: Connection) {
        let frame = worker.frame.baseAddress!
        let key = UInt32(truncatingIfNeeded: worker.nextRandom())
        let header = FrameWriter.writeHeader(
            into: frame, fin: true, opcode: Opcode.binary, length: Wire.messageSize, maskKey: key)
        let payload = frame + header
        payload.storeBytes(of: id.littleEndian, as: UInt64.self)
        payload.storeBytes(of: UInt64(0x0123_4567_89AB_CDEF).littleEndian, toByteOffset: 8, as: UInt64.self)
        // The echo: the same payload unmasked, under an unmasked header.
        let echo = expected.baseAddress! + 32
        _ = FrameWriter.writeHeader(
            into: echo, fin: true, opcode: Opcode.binary, length: Wire.messageSize, maskKey: nil)
        (echo + 2).copyMemory(from: payload, byteCount: Wire.messageSize)
        applyMask(key, phase: 0, from: payload, to: payload, count: Wire.messageSize)
        stage = .echo
        matched = 0
        connection.write(UnsafeRawBufferPointer(start: frame, count: header + Wire.messageSize))
    }

    /// Close with status 1000 (RFC 6455 §7.4.1), masked.
    private func sendClose(_ connection: Connection) {
        let frame = worker.frame.baseAddress!
        let key = UInt32(truncatingIfNeeded: worker.nextRandom())
        let header = FrameWriter.writeHeader(into: frame, fin: true, opcode: Opcode.close, length: 2, maskKey: key)
        (frame + header).storeBytes(of: UInt16(1000).bigEndian, as: UInt16.self)
        applyMask(key, phase: 0, from: frame + header, to: frame + header, count: 2)
        stage = .close
        matched = 0
        connection.write(UnsafeRawBufferPointer(start: frame, count: header + 2))
    }

    private func fail(_ connection: Connection) {
        stage = .failed
        // `closed` runs inside and may open the next connection on this slot: nothing may follow this call.
        connection.close()
    }

    func readEOF(_ connection: Connection) {
        if stage == .eof {
            stage = .done
            connection.close()
        } else {
            fail(connection)
        }
    }

    func closed(_ connection: Connection, error: Errno?) {
        let success = stage == .done && error == nil
        stage = .done
        worker.slotEnded(self, success: success)
    }
}

/// Waits on the main thread's loop until every connection ended or the deadline passed.
final class UpgradeController: TimerHandler {
    let loop: EventLoop
    let counters: [UpgradeCounters]
    let total: Int
    let deadline: UInt64
    private(set) var timedOut = false

    init(loop: EventLoop, counters: [UpgradeCounters], total: Int, deadline: UInt64) {
        self.loop = loop
        self.counters = counters
        self.total = total
        self.deadline = deadline
    }

    var succeeded: Int { counters.reduce(0) { $0 + $1.succeeded.load(ordering: .relaxed) } }
    var ended: Int {
        counters.reduce(0) { $0 + $1.succeeded.load(ordering: .relaxed) + $1.failed.load(ordering: .relaxed) }
    }

    func timerFired(tag: UInt64) {
        if ended < total && monotonicNanoseconds() < deadline {
            loop.schedule(after: .milliseconds(1), handler: self)
            return
        }
        timedOut = ended < total
        for counter in counters { counter.stopping.store(true, ordering: .relaxed) }
        loop.stop()
    }
}

/// Runs `ws-upgrades` and exits: 0 when all connections went through their whole exchange, 1 otherwise.
func runWSUpgrades(_ arguments: ArraySlice<String>) {
    var url: String?
    var total = 10_000
    var concurrency = 64
    var workers = 1
    var sourceCount = 0
    var timeout = 60.0
    var cpuPIDs: [Int32] = []
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--url": url = value(of: flag, &rest)
        case "--total": total = number(of: flag, &rest, in: 1...100_000_000)
        case "--concurrency": concurrency = number(of: flag, &rest, in: 1...100_000)
        case "--workers": workers = number(of: flag, &rest, in: 1...256)
        case "--sources": sourceCount = number(of: flag, &rest, in: 0...254)
        case "--timeout": timeout = seconds(of: flag, &rest)
        case "--cpu-pids": cpuPIDs = pids(of: flag, &rest)
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("ws-upgrades: unknown option \(flag)")
        }
    }
    guard let url else { fail("ws-upgrades: --url is required") }
    guard let target = WebSocketURL(url) else { fail("ws-upgrades: --url must look like ws://HOST:PORT/PATH") }
    if sourceCount > 0 && target.address.isIPv6 { fail("ws-upgrades: --sources needs an IPv4 target") }
    workers = min(workers, concurrency)
    _ = try? raiseOpenFileLimit()
    Signals.ignoreBrokenPipe()
    let sources = (0..<sourceCount).map { SocketAddress.ipv4(127, 0, 1, UInt8($0 + 1), port: 0) }
    let settings = UpgradeSettings(
        address: target.address, path: target.path, hostField: target.hostField, sources: sources)
    do {
        let group = try EventLoopGroup(loops: workers)
        var counters: [UpgradeCounters] = []
        var upgradeWorkers: [UpgradeWorker] = []
        for (index, loop) in group.loops.enumerated() {
            let counter = UpgradeCounters()
            upgradeWorkers.append(
                UpgradeWorker(
                    loop: loop, settings: settings, total: total / workers + (index < total % workers ? 1 : 0),
                    concurrency: concurrency / workers + (index < concurrency % workers ? 1 : 0), firstID: index,
                    idStride: workers, counters: counter))
            counters.append(counter)
        }
        let control = try EventLoop(readBufferSize: 1024, eventCapacity: 16)
        let startTicks = processCPUTicks(cpuPIDs)
        let startOwnCPU = ProcessFigures.current().cpuSeconds
        let start = monotonicNanoseconds()
        // Before the loops run, this thread may still set them up.
        for worker in upgradeWorkers { worker.begin() }
        let controller = UpgradeController(
            loop: control, counters: counters, total: total, deadline: start + UInt64(timeout * 1e9))
        control.schedule(after: .milliseconds(1), handler: controller)
        try group.start()
        try control.run()
        let endTicks = processCPUTicks(cpuPIDs)
        let endOwnCPU = ProcessFigures.current().cpuSeconds
        let end =
            controller.timedOut
            ? monotonicNanoseconds() : counters.reduce(start) { max($0, $1.finishedAt.load(ordering: .acquiring)) }
        group.shutdown()
        withExtendedLifetime(upgradeWorkers) {}

        let upgrades = controller.succeeded
        let failures = total - upgrades
        let seconds = Double(end - start) / 1e9
        let rate = seconds > 0 ? Int((Double(upgrades) / seconds).rounded()) : 0
        var line = "upgrades=\(upgrades) seconds=\(fixed(seconds, 3)) rate=\(rate) failures=\(failures)"
        line += " client_cpu_s=\(fixed(endOwnCPU - startOwnCPU, 2))"
        if !cpuPIDs.isEmpty { line += " cpu_ticks=\(endTicks - startTicks)" }
        if controller.timedOut { line += " timed_out=1" }
        log(line, to: FileDescriptor(1))
        exitProcess(failures == 0 ? 0 : 1)
    } catch {
        fail("ws-upgrades: \(error)")
    }
}
