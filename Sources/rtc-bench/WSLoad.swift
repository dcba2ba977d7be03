// ws-load: WebSocket connections that keep a fixed number of checked echoes in flight, and the run's control.
import EventLoop
import HTTP1
import Synchronization
import Sys
import WebSocket

/// What every load connection does.
struct LoadSettings {
    var address: SocketAddress
    /// The request line's target and the Host field's value.
    var path: [UInt8]
    var hostField: [UInt8]
    var inFlight: Int
    var size: Int
    /// Check every payload byte (sequence number and pattern), not only the length.
    var checkContent: Bool
    var connectTimeout: Duration = .seconds(10)
    /// Handshakes in progress at once per loop: a burst of thousands would overflow the peer's accept queue.
    var handshakeConcurrency = 128
}

/// Figures a loop's connections report to the controller on the main thread.
final class LoadCounters: Sendable {
    let echoes = Atomic<Int>(0)
    let connected = Atomic<Int>(0)
    let connectFailures = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    /// Set when the measurement is over: closes after this are the tool's own.
    let stopping = Atomic<Bool>(false)
}

/// One loop's share of the connections: opens them (a bounded number of handshakes at once) and owns the buffers
/// their frames are built in.
final class LoadWorker: ConnectHandler {
    unowned(unsafe) let loop: EventLoop
    let settings: LoadSettings
    let counters: LoadCounters
    /// The payload every message carries after its 8-byte sequence number.
    let pattern: UnsafeMutableRawBufferPointer
    /// New frames of one `received` call, written with one send.
    let output: UnsafeMutableRawBufferPointer
    let frameSize: Int
    private let total: Int
    private var started = 0
    private var handshaking = 0
    private let firstID: Int
    private let idStride: Int

    init(loop: EventLoop, settings: LoadSettings, connections: Int, firstID: Int, idStride: Int, counters: LoadCounters)
    {
        self.loop = loop
        self.settings = settings
        self.counters = counters
        self.total = connections
        self.firstID = firstID
        self.idStride = idStride
        pattern = .allocate(byteCount: max(settings.size, 8), alignment: 16)
        for index in 0..<pattern.count { pattern[index] = UInt8(truncatingIfNeeded: index &* 7 &+ 1) }
        frameSize = settings.size + 14
        output = .allocate(byteCount: max(frameSize, 64 * 1024), alignment: 16)
    }

    deinit {
        pattern.deallocate()
        output.deallocate()
    }

    /// Starts the first handshakes; call on the loop's thread or before the loop runs.
    func begin() { startMore() }

    private func startMore() {
        while started < total && handshaking < settings.handshakeConcurrency {
            let id = firstID + started * idStride
            started += 1
            handshaking += 1
            do {
                try Connector.connect(
                    loop: loop, to: settings.address, timeout: settings.connectTimeout, handler: self, tag: UInt64(id))
            } catch {
                // Not through handshakeEnded: that would recurse into this loop once per failing socket.
                handshaking -= 1
                counters.connectFailures.add(1, ordering: .relaxed)
            }
        }
    }

    /// A connection finished its handshake (or failed before finishing it).
    func handshakeEnded(upgraded: Bool) {
        handshaking -= 1
        if upgraded {
            counters.connected.add(1, ordering: .relaxed)
        } else {
            counters.connectFailures.add(1, ordering: .relaxed)
        }
        startMore()
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        guard case .connected(let fd) = result else {
            handshakeEnded(upgraded: false)
            return
        }
        try? fd.set(.noDelay(true))
        let handler = LoadConnection(worker: self, id: tag)
        guard let connection = try? Connection(loop: loop, fd: fd, handler: handler) else {
            handshakeEnded(upgraded: false)
            return
        }
        handler.sendHandshake(connection)
    }
}

/// One WebSocket connection of the load: K messages in flight, a new one sent for each echo received. Message n
/// carries n (little-endian) in its first 8 payload bytes and the worker's pattern after, masked with a key
/// derived from n; each echo must be one unfragmented binary frame of the right length (and, when checked, the
/// right bytes for the next n: a proxy that drops, reorders or alters messages is caught).
final class LoadConnection: ConnectionHandler {
    unowned(unsafe) let worker: LoadWorker
    let id: UInt64
    private var handshake: HeadParser? = HeadParser(kind: .response)
    private var expectedAccept: [UInt8] = []
    private var finished = false
    private var nextSend: UInt64 = 0
    private var nextReceive: UInt64 = 0
    /// Frame headers (possibly split across reads), payload bytes left and the offset reached in the message
    /// being received.
    private var headers = FrameHeaderReader()
    private var remaining = 0
    private var offset = 0
    private var inPayload = false

    init(worker: LoadWorker, id: UInt64) {
        self.worker = worker
        self.id = id
    }

    func sendHandshake(_ connection: Connection) {
        var nonce = [UInt8](repeating: 0, count: 16)
        nonce.withUnsafeMutableBytes { fillRandom($0) }
        let key = Handshake.base64(nonce)
        expectedAccept = Handshake.acceptKey(for: key)
        let settings = worker.settings
        let request =
            Array("GET ".utf8) + settings.path + Array(" HTTP/1.1\r\nHost: ".utf8) + settings.hostField
            + Array(
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ".utf8
            )
            + key + Array("\r\n\r\n".utf8)
        request.withUnsafeBytes { connection.write($0) }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard !finished else { return }
        var input = bytes
        if handshake != nil {
            guard let rest = upgrade(connection, bytes) else { return }
            input = rest
        }
        let worker = self.worker
        let size = worker.settings.size
        let checkContent = worker.settings.checkContent
        var used = 0
        var echoes = 0
        var cursor = input.baseAddress
        var left = input.count
        while left > 0 {
            let from = cursor!
            if inPayload {
                let take = min(left, remaining)
                if checkContent && !matches(from, count: take) {
                    fail(connection)
                    return
                }
                offset += take
                remaining -= take
                cursor = from + take
                left -= take
                if remaining == 0 {
                    inPayload = false
                    nextReceive &+= 1
                    echoes += 1
                    used = append(at: used, connection)
                }
                continue
            }
            var position = from
            guard let header = headers.next(&position, &left) else { break }
            cursor = position
            // Server frames are unmasked (RFC 6455 §5.1); each echo is one final binary frame of our size.
            guard header.fin, header.opcode == Opcode.binary, !header.masked, header.reserved == 0,
                header.length == UInt64(size), nextReceive < nextSend
            else {
                fail(connection)
                return
            }
            offset = 0
            remaining = size
            if size == 0 {
                nextReceive &+= 1
                echoes += 1
                used = append(at: used, connection)
            } else {
                inPayload = true
            }
        }
        if used > 0 { connection.write(UnsafeRawBufferPointer(start: worker.output.baseAddress, count: used)) }
        if echoes > 0 { worker.counters.echoes.add(echoes, ordering: .relaxed) }
    }

    /// Whether `count` payload bytes at `bytes`, at `offset` in message `nextReceive`, are what was sent.
    @inline(__always)
    private func matches(_ bytes: UnsafeRawPointer, count: Int) -> Bool {
        var index = 0
        // The sequence number's bytes (the first 8 of the payload).
        while index < count && offset + index < 8 {
            let expected = UInt8(truncatingIfNeeded: nextReceive >> UInt64((offset + index) * 8))
            if bytes.load(fromByteOffset: index, as: UInt8.self) != expected { return false }
            index += 1
        }
        let pattern = worker.pattern.baseAddress! + offset
        while index + 8 <= count {
            if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                != pattern.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            {
                return false
            }
            index += 8
        }
        while index < count {
            if bytes.load(fromByteOffset: index, as: UInt8.self) != pattern.load(fromByteOffset: index, as: UInt8.self)
            {
                return false
            }
            index += 1
        }
        return true
    }

    /// Appends message `nextSend` as a masked binary frame to the worker's output at `used` (writing the output
    /// first when it is full); returns the new fill.
    @inline(__always)
    private func append(at used: Int, _ connection: Connection) -> Int {
        guard !worker.counters.stopping.load(ordering: .relaxed) else { return used }
        let output = worker.output.baseAddress!
        var used = used
        if used + worker.frameSize > worker.output.count {
            connection.write(UnsafeRawBufferPointer(start: output, count: used))
            used = 0
        }
        let size = worker.settings.size
        let sequence = nextSend
        nextSend &+= 1
        let key = UInt32(truncatingIfNeeded: ((sequence &+ id &* 0x1_0000_0001) &* 0x9E37_79B9_7F4A_7C15) >> 32)
        let headerSize = FrameWriter.writeHeader(
            into: output + used, fin: true, opcode: Opcode.binary, length: size, maskKey: key)
        let payload = output + used + headerSize
        payload.copyMemory(from: worker.pattern.baseAddress!, byteCount: size)
        withUnsafeBytes(of: sequence.littleEndian) {
            payload.copyMemory(from: $0.baseAddress!, byteCount: min(size, 8))
        }
        applyMask(key, phase: 0, from: payload, to: payload, count: size)
        return used + headerSize + size
    }

    private func upgrade(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        switch handshake!.parse(bytes) {
        case .needMore:
            return nil
        case .failure:
            handshakeFailed(connection)
            return nil
        case .complete(let consumed):
            let head = handshake!
            handshake = nil
            guard head.status == 101, let accept = head.value(ofField: "sec-websocket-accept"),
                accept.elementsEqual(expectedAccept)
            else {
                handshakeFailed(connection)
                return nil
            }
            expectedAccept = []
            worker.handshakeEnded(upgraded: true)
            var used = 0
            for _ in 0..<worker.settings.inFlight { used = append(at: used, connection) }
            if used > 0 { connection.write(UnsafeRawBufferPointer(start: worker.output.baseAddress, count: used)) }
            return UnsafeRawBufferPointer(rebasing: bytes[consumed...])
        }
    }

    private func handshakeFailed(_ connection: Connection) {
        finished = true
        handshake = nil
        worker.handshakeEnded(upgraded: false)
        connection.close()
    }

    /// A wrong echo or frame: counted, and the connection is closed (its stream can no longer be trusted).
    private func fail(_ connection: Connection) {
        finished = true
        worker.counters.errors.add(1, ordering: .relaxed)
        connection.close()
    }

    func readEOF(_ connection: Connection) { lost(connection, error: nil) }

    func closed(_ connection: Connection, error: Errno?) {
        if error != nil { lost(connection, error: error) }
    }

    /// The peer closed or reset the connection: a failure unless the run is over.
    private func lost(_ connection: Connection, error: Errno?) {
        guard !finished else { return }
        finished = true
        if handshake != nil {
            handshake = nil
            worker.handshakeEnded(upgraded: false)
        } else if !worker.counters.stopping.load(ordering: .relaxed) {
            worker.counters.errors.add(1, ordering: .relaxed)
        }
        connection.close()
    }
}

/// The measurement on the main thread's loop: waits until every connection is upgraded or failed, lets the load
/// warm up, then samples the echo counters (and the CPU of the given processes) D seconds apart.
final class LoadController: TimerHandler {
    enum Phase { case connecting, warmingUp, measuring, done }

    let loop: EventLoop
    let counters: [LoadCounters]
    let connections: Int
    let warmup: Duration
    let duration: Duration
    let cpuPIDs: [Int32]
    private(set) var phase = Phase.connecting
    private(set) var startEchoes = 0
    private(set) var endEchoes = 0
    private(set) var startNanoseconds: UInt64 = 0
    private(set) var endNanoseconds: UInt64 = 0
    private(set) var startTicks = 0
    private(set) var endTicks = 0
    private(set) var startOwnCPU = 0.0
    private(set) var endOwnCPU = 0.0

    init(
        loop: EventLoop, counters: [LoadCounters], connections: Int, warmup: Duration, duration: Duration,
        cpuPIDs: [Int32]
    ) {
        self.loop = loop
        self.counters = counters
        self.connections = connections
        self.warmup = warmup
        self.duration = duration
        self.cpuPIDs = cpuPIDs
    }

    var connected: Int { counters.reduce(0) { $0 + $1.connected.load(ordering: .relaxed) } }
    var connectFailures: Int { counters.reduce(0) { $0 + $1.connectFailures.load(ordering: .relaxed) } }
    var errors: Int { counters.reduce(0) { $0 + $1.errors.load(ordering: .relaxed) } }
    var echoes: Int { counters.reduce(0) { $0 + $1.echoes.load(ordering: .relaxed) } }

    func timerFired(tag: UInt64) {
        switch phase {
        case .connecting:
            if connected + connectFailures < connections {
                loop.schedule(after: .milliseconds(2), handler: self)
            } else if connected == 0 {
                finish()
            } else {
                phase = .warmingUp
                loop.schedule(after: warmup, handler: self)
            }
        case .warmingUp:
            phase = .measuring
            startTicks = cpuTicks()
            startOwnCPU = ProcessFigures.current().cpuSeconds
            startEchoes = echoes
            startNanoseconds = monotonicNanoseconds()
            loop.schedule(after: duration, handler: self)
        case .measuring:
            endNanoseconds = monotonicNanoseconds()
            endEchoes = echoes
            endTicks = cpuTicks()
            endOwnCPU = ProcessFigures.current().cpuSeconds
            finish()
        case .done:
            break
        }
    }

    private func finish() {
        phase = .done
        for counter in counters { counter.stopping.store(true, ordering: .relaxed) }
        loop.stop()
    }

    private func cpuTicks() -> Int { processCPUTicks(cpuPIDs) }
}

/// utime + stime of the processes (/proc/PID/stat fields 14 and 15, all threads), in clock ticks.
func processCPUTicks(_ pids: [Int32]) -> Int {
    var total = 0
    for pid in pids {
        guard let stat = readSmallFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")"))
        else { continue }
        let fields = stat[(close + 2)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 12 else { continue }
        for field in fields[11...12] {
            total += Int(String(decoding: field, as: UTF8.self)) ?? 0
        }
    }
    return total
}

/// Runs `ws-load` and exits: 0 when every connection upgraded and every echo was right, 1 otherwise.
func runWSLoad(_ arguments: ArraySlice<String>) {
    var url: String?
    var connections = 1
    var inFlight = 1
    var size = 64
    var duration = 5.0
    var warmup = 0.0
    var workers = 1
    var checkContent = true
    var cpuPIDs: [Int32] = []
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--url": url = value(of: flag, &rest)
        case "--connections": connections = number(of: flag, &rest, in: 1...1_000_000)
        case "--in-flight": inFlight = number(of: flag, &rest, in: 1...100_000)
        case "--size": size = number(of: flag, &rest, in: 0...(64 << 20))
        case "--duration": duration = seconds(of: flag, &rest)
        case "--warmup": warmup = seconds(of: flag, &rest)
        case "--workers": workers = number(of: flag, &rest, in: 1...256)
        case "--check":
            switch value(of: flag, &rest) {
            case "content": checkContent = true
            case "length": checkContent = false
            default: fail("ws-load: --check takes content or length")
            }
        case "--cpu-pids": cpuPIDs = pids(of: flag, &rest)
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("ws-load: unknown option \(flag)")
        }
    }
    guard let url else { fail("ws-load: --url is required") }
    guard let target = WebSocketURL(url) else { fail("ws-load: --url must look like ws://HOST:PORT/PATH") }
    _ = try? raiseOpenFileLimit()
    Signals.ignoreBrokenPipe()
    let settings = LoadSettings(
        address: target.address, path: target.path, hostField: target.hostField, inFlight: inFlight, size: size,
        checkContent: checkContent)
    do {
        let group = try EventLoopGroup(loops: workers)
        var counters: [LoadCounters] = []
        var loadWorkers: [LoadWorker] = []
        for (index, loop) in group.loops.enumerated() {
            let share = connections / workers + (index < connections % workers ? 1 : 0)
            let counter = LoadCounters()
            let worker = LoadWorker(
                loop: loop, settings: settings, connections: share, firstID: index, idStride: workers, counters: counter
            )
            // Before the loops run, this thread may still set them up.
            worker.begin()
            counters.append(counter)
            loadWorkers.append(worker)
        }
        let control = try EventLoop(readBufferSize: 1024, eventCapacity: 16)
        let controller = LoadController(
            loop: control, counters: counters, connections: connections, warmup: .nanoseconds(Int64(warmup * 1e9)),
            duration: .nanoseconds(Int64(duration * 1e9)), cpuPIDs: cpuPIDs)
        control.schedule(after: .milliseconds(1), handler: controller)
        try group.start()
        try control.run()
        group.shutdown()
        withExtendedLifetime(loadWorkers) {}

        let measured = controller.endNanoseconds > controller.startNanoseconds
        let seconds = measured ? Double(controller.endNanoseconds - controller.startNanoseconds) / 1e9 : 0
        let messages = controller.endEchoes - controller.startEchoes
        let rate = seconds > 0 ? Int((Double(messages) / seconds).rounded()) : 0
        let errors = controller.errors
        let connectFailures = connections - controller.connected
        var line =
            "msgs=\(messages) seconds=\(fixed(seconds, 2)) rate=\(rate) errors=\(errors) connect_failures=\(connectFailures)"
        line += " client_cpu_s=\(fixed(controller.endOwnCPU - controller.startOwnCPU, 2))"
        if !cpuPIDs.isEmpty { line += " cpu_ticks=\(controller.endTicks - controller.startTicks)" }
        log(line, to: FileDescriptor(1))
        exitProcess(errors == 0 && connectFailures == 0 && measured ? 0 : 1)
    } catch {
        fail("ws-load: \(error)")
    }
}

/// `ws://HOST:PORT/PATH` with a numeric host (IPv4, `[IPv6]`, or `localhost` for 127.0.0.1).
struct WebSocketURL {
    var address: SocketAddress
    var hostField: [UInt8]
    var path: [UInt8]

    init?(_ text: String) {
        guard text.hasPrefix("ws://") else { return nil }
        let rest = text.dropFirst(5)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = Array((slash == rest.endIndex ? "/" : String(rest[slash...])).utf8)
        var host: Substring
        var port: UInt16 = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let parsed = UInt16(after.dropFirst()) else { return nil }
                port = parsed
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let parsed = UInt16(authority[authority.index(after: colon)...]) else { return nil }
            port = parsed
        } else {
            host = authority
        }
        guard let address = SocketAddress(host: host == "localhost" ? "127.0.0.1" : String(host), port: port) else {
            return nil
        }
        self.address = address
        hostField = Array(authority.utf8)
    }
}
