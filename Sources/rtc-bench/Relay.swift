// rtc-bench relay: a 1:1 TCP relay that parses nothing, the floor any read/write proxy can reach; the argument
// parsing, the preallocated pair table and the edge-triggered epoll backend (the io_uring ones: RelayURing.swift).
import Sys

/// How the relay waits for and moves bytes.
enum RelayBackend: String, CaseIterable {
    /// Edge-triggered epoll, read/send.
    case epoll
    /// io_uring (single issuer, deferred task running): one recv per side in flight, a send on each completion.
    case uring
    /// io_uring with multishot accept and multishot recv into a provided-buffer ring.
    case uringMultishot = "uring-multishot"
}

struct RelayOptions {
    var listen: SocketAddress
    var upstream: SocketAddress
    var backend: RelayBackend
    /// Bytes per direction buffer (epoll, uring) or per provided buffer (uring-multishot).
    var bufferSize: Int
    /// Client connections held at once; beyond it epoll leaves clients in the listen queue, io_uring refuses them.
    var maxConnections: Int
    /// uring-multishot: provided buffers in the ring (a power of two).
    var bufferCount: Int
}

/// One direction of a relayed pair: bytes read from its source wait in `start..<end` of its buffer until the
/// destination takes them.
struct RelayDirection {
    var start = 0
    var end = 0
    /// The source's read returned 0 (or its recv completed with 0).
    var sourceEnded = false
    /// shutdown(SHUT_WR) of the destination is done: this direction is over.
    var finished = false
    /// The destination's send buffer is full: wait until it is writable (epoll), or a send is in flight (uring).
    var blocked = false
    /// epoll: the source reported EPOLLRDHUP or EPOLLHUP, so a short read does not mean "drained for now".
    var sourceHangup = false
    /// uring: a recv on the source is in flight (multishot: armed and not ended).
    var receiving = false
    /// uring-multishot: provided buffers received and not yet sent, a queue linked through the buffer table.
    var queueHead: Int32 = -1
    var queueTail: Int32 = -1
    var queued = 0
    /// uring-multishot: the recv was cancelled because the queue grew; re-armed once it drains.
    var paused = false
    /// uring-multishot: the recv ended for want of buffers; re-armed when buffers come back.
    var starved = false

    mutating func reset() { self = RelayDirection() }
}

/// One client connection and its upstream connection.
struct RelayPair {
    var client = FileDescriptor(-1)
    var upstream = FileDescriptor(-1)
    /// Bumped when the slot is freed, so events or completions for its previous pair are recognised and dropped.
    var generation: UInt32 = 0
    var inUse = false
    /// The nonblocking connect to the upstream has not finished.
    var connecting = false
    var toUpstream = RelayDirection()
    var toClient = RelayDirection()
    /// uring: operations in flight; the slot is reused only when this is 0 after both fds are closed.
    var inFlight = 0
    /// uring: the pair is being torn down (fds shut down, waiting for its operations to complete).
    var closing = false
    /// uring-multishot: the next pair on the starved list, or -1.
    var nextStarved: Int32 = -1
}

/// Every pair slot and its two buffers, allocated once at start.
///
/// Invariant: `pairs` holds `capacity` initialized values and `buffers` `capacity * 2 * bufferSize` bytes for the
/// table's whole life; only the relay's one thread touches them. Slot `i`'s client→upstream buffer is at
/// `(2 i) * bufferSize`, its upstream→client buffer at `(2 i + 1) * bufferSize`. `free` is a stack of slot numbers.
final class RelayTable {
    let capacity: Int
    let bufferSize: Int
    let pairs: UnsafeMutablePointer<RelayPair>
    let buffers: UnsafeMutableRawPointer?
    private let free: UnsafeMutablePointer<Int32>
    private var freeCount: Int

    init(capacity: Int, bufferSize: Int, withBuffers: Bool) {
        self.capacity = capacity
        self.bufferSize = bufferSize
        pairs = .allocate(capacity: capacity)
        pairs.initialize(repeating: RelayPair(), count: capacity)
        // Large enough that malloc maps it: pages are touched only when a pair uses them.
        buffers = withBuffers ? .allocate(byteCount: capacity * 2 * bufferSize, alignment: 4096) : nil
        free = .allocate(capacity: capacity)
        for index in 0..<capacity { free[index] = Int32(capacity - 1 - index) }
        freeCount = capacity
    }

    deinit {
        pairs.deinitialize(count: capacity)
        pairs.deallocate()
        buffers?.deallocate()
        free.deallocate()
    }

    var isFull: Bool { freeCount == 0 }
    var active: Int { capacity - freeCount }

    /// Takes a free slot and marks it in use; nil when every slot is taken.
    @inline(__always)
    func take() -> Int? {
        guard freeCount > 0 else { return nil }
        freeCount -= 1
        let slot = Int(free[freeCount])
        let generation = pairs[slot].generation
        pairs[slot] = RelayPair()
        pairs[slot].generation = generation
        pairs[slot].inUse = true
        return slot
    }

    /// Returns a slot whose fds are closed; its generation moves on.
    @inline(__always)
    func release(_ slot: Int) {
        pairs[slot].inUse = false
        pairs[slot].generation &+= 1
        free[freeCount] = Int32(slot)
        freeCount += 1
    }

    /// The buffer of one direction of `slot`.
    @inline(__always)
    func buffer(_ slot: Int, toUpstream: Bool) -> UnsafeMutableRawPointer {
        buffers! + (2 * slot + (toUpstream ? 0 : 1)) * bufferSize
    }
}

// MARK: - epoll backend

/// The edge-triggered epoll relay: every pair's two sockets are registered once for input, output and read
/// hang-up; an event moves bytes until the source would block or the destination is full.
final class EpollRelay {
    private let options: RelayOptions
    private let table: RelayTable
    private let epoll: Epoll
    private let events: EpollEventBuffer
    private let listener: FileDescriptor
    private let signals: FileDescriptor
    /// The listen queue may hold clients that were not accepted because every slot was taken.
    private var acceptPending = false
    private var running = true

    private static let listenerToken = UInt64.max
    private static let signalToken = UInt64.max - 1

    init(options: RelayOptions, listener: FileDescriptor, signals: FileDescriptor) throws(Errno) {
        self.options = options
        self.listener = listener
        self.signals = signals
        table = RelayTable(capacity: options.maxConnections, bufferSize: options.bufferSize, withBuffers: true)
        epoll = try Epoll()
        events = EpollEventBuffer(capacity: 512)
        try epoll.add(listener, events: [.input, .edgeTriggered], token: Self.listenerToken)
        try epoll.add(signals, events: [.input], token: Self.signalToken)
    }

    /// Runs until SIGTERM or SIGINT; then closes every pair.
    func run() throws(Errno) {
        while running {
            let count = try epoll.wait(into: events, timeoutMilliseconds: -1)
            for index in 0..<count {
                let token = events.token(at: index)
                let bits = events.events(at: index)
                if token == Self.listenerToken {
                    acceptAll()
                } else if token == Self.signalToken {
                    _ = signals.drainEvent()
                    running = false
                } else {
                    handle(token, bits)
                }
            }
        }
        for slot in 0..<table.capacity where table.pairs[slot].inUse { close(slot) }
        epoll.close()
    }

    @inline(__always)
    private func token(_ slot: Int, upstream: Bool) -> UInt64 {
        UInt64(table.pairs[slot].generation) << 32 | UInt64(slot) << 1 | (upstream ? 1 : 0)
    }

    private func acceptAll() {
        while true {
            if table.isFull {
                acceptPending = true
                return
            }
            let accepted: FileDescriptor
            do {
                guard let (fd, _) = try listener.accept() else {
                    acceptPending = false
                    return
                }
                accepted = fd
            } catch {
                // EMFILE and the like: leave the rest in the queue until a pair closes.
                acceptPending = true
                return
            }
            open(client: accepted)
        }
    }

    /// Starts a pair for a new client: its upstream socket, the nonblocking connect and both registrations.
    private func open(client: FileDescriptor) {
        guard let slot = table.take() else {
            client.close()
            return
        }
        let pair = table.pairs + slot
        pair.pointee.client = client
        do {
            let upstream = try relayUpstreamSocket(client: client, upstream: options.upstream)
            pair.pointee.upstream = upstream
            let status = try upstream.connect(to: options.upstream)
            pair.pointee.connecting = status == .inProgress
            // Until the connect finishes, client bytes wait in the kernel: the direction counts as blocked.
            pair.pointee.toUpstream.blocked = pair.pointee.connecting
            let bits: EpollEvents = [.input, .output, .readHangup, .edgeTriggered]
            try epoll.add(client, events: bits, token: token(slot, upstream: false))
            try epoll.add(upstream, events: bits, token: token(slot, upstream: true))
        } catch {
            close(slot)
            return
        }
        if !pair.pointee.connecting {
            guard pump(slot, toUpstream: true) else { return }
        }
    }

    private func handle(_ token: UInt64, _ bits: EpollEvents) {
        let slot = Int(truncatingIfNeeded: (token & 0xffff_ffff) >> 1)
        guard slot < table.capacity else { return }
        let pair = table.pairs + slot
        guard pair.pointee.inUse, UInt64(pair.pointee.generation) == token >> 32 else { return }
        let isUpstream = token & 1 == 1
        if isUpstream && pair.pointee.connecting {
            guard !bits.isDisjoint(with: [.output, .error, .hangup]) else { return }
            let failed: Bool
            do { failed = try pair.pointee.upstream.socketError() != nil } catch { failed = true }
            if failed {
                close(slot)
                return
            }
            pair.pointee.connecting = false
            pair.pointee.toUpstream.blocked = false
            guard pump(slot, toUpstream: true) else { return }
        }
        // A client socket feeds client→upstream and drains upstream→client; an upstream socket the reverse.
        let isClient = !isUpstream
        if !bits.isDisjoint(with: [.readHangup, .hangup, .error]) {
            if isClient {
                pair.pointee.toUpstream.sourceHangup = true
            } else {
                pair.pointee.toClient.sourceHangup = true
            }
        }
        if !bits.isDisjoint(with: [.input, .readHangup, .hangup, .error]) {
            let direction = isClient ? pair.pointee.toUpstream : pair.pointee.toClient
            if !direction.blocked && !direction.finished {
                guard pump(slot, toUpstream: isClient) else { return }
            }
        }
        if !bits.isDisjoint(with: [.output, .hangup, .error]) {
            // The direction that writes to this side, if it waited for room.
            let direction = isClient ? pair.pointee.toClient : pair.pointee.toUpstream
            if direction.blocked && !pair.pointee.connecting {
                if isClient { pair.pointee.toClient.blocked = false } else { pair.pointee.toUpstream.blocked = false }
                guard pump(slot, toUpstream: !isClient) else { return }
            }
        }
    }

    /// Moves one direction's bytes until its source would block, its destination is full, or its source ended
    /// (then the destination's write side is shut down). Returns false when the pair failed and was closed.
    @inline(__always)
    private func pump(_ slot: Int, toUpstream: Bool) -> Bool {
        let pair = table.pairs + slot
        let buffer = table.buffer(slot, toUpstream: toUpstream)
        let source = toUpstream ? pair.pointee.client : pair.pointee.upstream
        let destination = toUpstream ? pair.pointee.upstream : pair.pointee.client
        let size = table.bufferSize
        // Invariant: `direction` points into `table.pairs`, which never moves.
        let offset =
            toUpstream
            ? MemoryLayout<RelayPair>.offset(of: \RelayPair.toUpstream)!
            : MemoryLayout<RelayPair>.offset(of: \RelayPair.toClient)!
        let direction = (UnsafeMutableRawPointer(pair) + offset).assumingMemoryBound(to: RelayDirection.self)
        do {
            while true {
                if direction.pointee.end > direction.pointee.start {
                    let pending = UnsafeRawBufferPointer(
                        start: buffer + direction.pointee.start, count: direction.pointee.end - direction.pointee.start)
                    switch try destination.send(pending) {
                    case .count(let sent):
                        direction.pointee.start += sent
                        if direction.pointee.start < direction.pointee.end {
                            direction.pointee.blocked = true
                            return true
                        }
                    case .wouldBlock, .endOfFile:
                        direction.pointee.blocked = true
                        return true
                    }
                    direction.pointee.start = 0
                    direction.pointee.end = 0
                }
                if direction.pointee.sourceEnded {
                    if !direction.pointee.finished {
                        direction.pointee.finished = true
                        try? destination.shutdown(.write)
                        let other = toUpstream ? pair.pointee.toClient : pair.pointee.toUpstream
                        if other.finished {
                            close(slot)
                            return false
                        }
                    }
                    return true
                }
                switch try source.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size)) {
                case .count(let received):
                    direction.pointee.end = received
                    // A short read drained the socket: edge-triggered epoll reports the next bytes as a new event.
                    // After a hang-up no event follows, so then read on until read returns 0.
                    if received < size && !direction.pointee.sourceHangup {
                        let pending = UnsafeRawBufferPointer(start: buffer, count: received)
                        switch try destination.send(pending) {
                        case .count(let sent):
                            if sent < received {
                                direction.pointee.start = sent
                                direction.pointee.blocked = true
                            } else {
                                direction.pointee.end = 0
                            }
                        case .wouldBlock, .endOfFile:
                            direction.pointee.blocked = true
                        }
                        return true
                    }
                case .wouldBlock:
                    return true
                case .endOfFile:
                    direction.pointee.sourceEnded = true
                }
            }
        } catch {
            close(slot)
            return false
        }
    }

    /// Closes both sockets of a pair and frees its slot; a client waiting in the listen queue may now be taken.
    private func close(_ slot: Int) {
        let pair = table.pairs + slot
        if pair.pointee.client.rawValue >= 0 { pair.pointee.client.close() }
        if pair.pointee.upstream.rawValue >= 0 { pair.pointee.upstream.close() }
        table.release(slot)
        if acceptPending && running { acceptAll() }
    }
}

// MARK: - the command

/// Runs `relay`: parses the options, binds the listener, prints the start-up line and runs the chosen backend
/// until SIGTERM or SIGINT.
func runRelay(_ arguments: ArraySlice<String>) {
    var listen: SocketAddress?
    var upstream: SocketAddress?
    var backend = RelayBackend.epoll
    var bufferSize = 16384
    var maxConnections = 4096
    var bufferCount = 2048
    var probe = false
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--listen":
            guard let address = SocketAddress(value(of: flag, &rest)) else { fail("--listen needs HOST:PORT") }
            listen = address
        case "--upstream":
            guard let address = SocketAddress(value(of: flag, &rest)) else { fail("--upstream needs HOST:PORT") }
            upstream = address
        case "--backend":
            let name = value(of: flag, &rest)
            guard let parsed = RelayBackend(rawValue: name) else {
                fail("--backend needs one of \(RelayBackend.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            backend = parsed
        case "--buffer-size": bufferSize = number(of: flag, &rest, in: 512...(1 << 20))
        case "--max-connections": maxConnections = number(of: flag, &rest, in: 1...65536)
        case "--buffer-count":
            bufferCount = number(of: flag, &rest, in: 1...32768)
            guard bufferCount & (bufferCount - 1) == 0 else { fail("--buffer-count needs a power of two") }
        case "--probe": probe = true
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("relay: unknown option \(flag)")
        }
    }
    if probe {
        if let reason = relayBackendUnavailable(backend) {
            log("relay: backend \(backend.rawValue) unavailable: \(reason)", to: FileDescriptor(1))
            exitProcess(1)
        }
        log("relay: backend \(backend.rawValue) available", to: FileDescriptor(1))
        exitProcess(0)
    }
    guard let listen else { fail("relay: --listen is required") }
    guard let upstream else { fail("relay: --upstream is required") }
    let options = RelayOptions(
        listen: listen, upstream: upstream, backend: backend, bufferSize: bufferSize, maxConnections: maxConnections,
        bufferCount: bufferCount)
    _ = try? raiseOpenFileLimit()
    Signals.ignoreBrokenPipe()
    do {
        // The handlers only write to the eventfd, which the loop watches.
        let signals = try Signals.notify([Signals.terminate, Signals.interrupt])
        let socket = try Socket.listener(at: listen, backlog: 4096)
        let bound = try socket.fd.localAddress()
        switch backend {
        case .epoll:
            let relay = try EpollRelay(options: options, listener: socket.fd, signals: signals)
            log("rtc-bench relay listening on \(bound) backend \(backend.rawValue) upstream \(upstream)")
            try relay.run()
        case .uring, .uringMultishot:
            try runURingRelay(options: options, listener: socket.fd, signals: signals, bound: bound)
        }
        log("rtc-bench relay stopped")
    } catch {
        fail("relay: \(error)")
    }
}

/// The upstream socket of a new pair, with TCP_NODELAY on both of its sockets: small writes go out at once, as nginx
/// and HAProxy send them. Shared by the epoll and io_uring backends.
func relayUpstreamSocket(client: FileDescriptor, upstream address: SocketAddress) throws(Errno) -> FileDescriptor {
    let upstream = try FileDescriptor.socket(.tcp, for: address)
    try? client.set(.noDelay(true))
    try? upstream.set(.noDelay(true))
    return upstream
}
