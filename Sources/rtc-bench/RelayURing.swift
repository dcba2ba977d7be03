// rtc-bench relay's io_uring backends: one recv per side in flight (`uring`), or multishot accept and multishot
// recv into a ring of provided buffers (`uring-multishot`); every submission of a loop turn in one io_uring_enter.
import Sys

/// Why `backend` cannot run here, or nil when it can.
func relayBackendUnavailable(_ backend: RelayBackend) -> String? {
    switch backend {
    case .epoll:
        return nil
    case .uring, .uringMultishot:
        do {
            let ring = try IOURing(entries: 8, flags: URingRelay.setupFlags, completionBatch: 8)
            defer { ring.close() }
            guard ring.supportsSocketRelay else { return "the kernel lacks an io_uring socket operation" }
            if backend == .uringMultishot {
                _ = try ProvidedBufferRing(ring: ring, group: 0, count: 8, bufferSize: 512)
            }
            return nil
        } catch {
            return "io_uring setup failed: \(error)"
        }
    }
}

/// Runs an io_uring backend until SIGTERM or SIGINT.
func runURingRelay(
    options: RelayOptions, listener: FileDescriptor, signals: FileDescriptor, bound: SocketAddress
) throws(Errno) {
    let relay = try URingRelay(options: options, listener: listener, signals: signals)
    log("rtc-bench relay listening on \(bound) backend \(options.backend.rawValue) upstream \(options.upstream)")
    try relay.run()
}

/// What a pair's submission was, in the low 4 bits of its user data.
private enum Operation: UInt64 {
    case receiveFromClient = 1
    case receiveFromUpstream = 2
    case sendToUpstream = 3
    case sendToClient = 4
    case connect = 5
    case shutdown = 6
}

/// The io_uring relay. Every operation on a pair counts in its `inFlight`; a pair that ends (cleanly, or on an
/// error, which shuts both sockets down to wake what is pending) closes its descriptors and frees its slot only
/// when that count is 0, so no queued submission can name a descriptor number that was closed and reused.
///
/// Per direction, `blocked` means a send is in flight: the simple backend does not receive again until it
/// completes (that is its back-pressure); the multishot one queues received buffers behind it and cancels the
/// source's receive once `pauseAt` buffers wait, re-arming it when the queue has drained.
final class URingRelay {
    static let setupFlags: IOURing.SetupFlags = [.singleIssuer, .deferTaskRun]
    private static let acceptTag: UInt64 = 1 << 63 | 1
    private static let signalTag: UInt64 = 1 << 63 | 2
    private static let group: UInt16 = 0
    /// Buffers queued on one direction before its source's receive is cancelled.
    private static let pauseAt = 8

    private let options: RelayOptions
    private let multishot: Bool
    private let table: RelayTable
    private let ring: IOURing
    private let listener: FileDescriptor
    private let signals: FileDescriptor
    private let upstreamAddress: StableSocketAddress
    private let completions: UnsafeMutablePointer<IOURing.Completion>
    private let completionCapacity = 512
    private var running = true
    private var accepting = false

    // uring-multishot only. Invariant: `next` and `length` have one entry per provided buffer; an entry is
    // meaningful only while its buffer is queued on a direction.
    private let buffers: ProvidedBufferRing?
    private let next: UnsafeMutablePointer<Int32>
    private let length: UnsafeMutablePointer<Int32>
    private var recycled = false
    /// Directions whose receive ended for want of buffers: (generation << 32 | slot << 1 | toClient).
    private let starved: UnsafeMutablePointer<UInt64>
    private var starvedCount = 0

    init(options: RelayOptions, listener: FileDescriptor, signals: FileDescriptor) throws(Errno) {
        self.options = options
        self.listener = listener
        self.signals = signals
        multishot = options.backend == .uringMultishot
        ring = try IOURing(entries: 1024, flags: Self.setupFlags, completionBatch: 512)
        table = RelayTable(capacity: options.maxConnections, bufferSize: options.bufferSize, withBuffers: !multishot)
        upstreamAddress = StableSocketAddress(options.upstream)
        completions = .allocate(capacity: completionCapacity)
        completions.initialize(
            repeating: IOURing.Completion(userData: 0, result: 0, flags: 0), count: completionCapacity)
        let count = multishot ? options.bufferCount : 1
        buffers =
            multishot
            ? try ProvidedBufferRing(ring: ring, group: Self.group, count: count, bufferSize: options.bufferSize)
            : nil
        next = .allocate(capacity: count)
        next.initialize(repeating: -1, count: count)
        length = .allocate(capacity: count)
        length.initialize(repeating: 0, count: count)
        starved = .allocate(capacity: 2 * options.maxConnections)
        starved.initialize(repeating: 0, count: 2 * options.maxConnections)
    }

    deinit {
        completions.deallocate()
        next.deallocate()
        length.deallocate()
        starved.deallocate()
    }

    func run() throws(Errno) {
        try ring.acceptMultishot(listener, userData: Self.acceptTag)
        accepting = true
        try ring.pollMultishot(signals, events: .input, userData: Self.signalTag)
        while running {
            if recycled, let buffers {
                buffers.commit()
                recycled = false
                rearmStarved()
            }
            try ring.submitAndWait(timeoutNanoseconds: nil)
            while true {
                let count = ring.completions(into: completions, capacity: completionCapacity)
                for index in 0..<count { dispatch(completions[index]) }
                if count < completionCapacity { break }
            }
        }
        for slot in 0..<table.capacity where table.pairs[slot].inUse {
            table.pairs[slot].client.close()
            table.pairs[slot].upstream.close()
        }
        ring.close()
    }

    @inline(__always)
    private func tag(_ slot: Int, _ operation: Operation) -> UInt64 {
        UInt64(table.pairs[slot].generation & 0x7fff_ffff) << 32 | UInt64(slot) << 4 | operation.rawValue
    }

    /// The direction of `slot`. Invariant: the pointer is into `table.pairs`, which never moves.
    @inline(__always)
    private func direction(_ slot: Int, toUpstream: Bool) -> UnsafeMutablePointer<RelayDirection> {
        let offset =
            toUpstream
            ? MemoryLayout<RelayPair>.offset(of: \RelayPair.toUpstream)!
            : MemoryLayout<RelayPair>.offset(of: \RelayPair.toClient)!
        return (UnsafeMutableRawPointer(table.pairs + slot) + offset).assumingMemoryBound(to: RelayDirection.self)
    }

    private func dispatch(_ completion: IOURing.Completion) {
        let data = completion.userData
        if data == Self.acceptTag {
            accepted(completion)
            return
        }
        if data == Self.signalTag {
            _ = signals.drainEvent()
            running = false
            return
        }
        let slot = Int((data >> 4) & 0x0fff_ffff)
        guard slot < table.capacity, let operation = Operation(rawValue: data & 0xf) else { return }
        let pair = table.pairs + slot
        guard pair.pointee.inUse, UInt64(pair.pointee.generation & 0x7fff_ffff) == data >> 32 else { return }
        do {
            switch operation {
            case .receiveFromClient: try received(slot, toUpstream: true, completion)
            case .receiveFromUpstream: try received(slot, toUpstream: false, completion)
            case .sendToUpstream: try sent(slot, toUpstream: true, completion.result)
            case .sendToClient: try sent(slot, toUpstream: false, completion.result)
            case .connect: try connected(slot, completion.result)
            case .shutdown:
                pair.pointee.inFlight -= 1
                settle(slot)
            }
        } catch {
            fail(slot)
        }
    }

    // MARK: accept and connect

    private func accepted(_ completion: IOURing.Completion) {
        if !completion.more { accepting = false }
        if completion.result >= 0 {
            let client = FileDescriptor(completion.result)
            // Every slot taken: refuse (the bench never comes near the default 4096 pairs).
            if let slot = table.take() {
                open(slot, client: client)
            } else {
                client.close()
            }
        }
        if !accepting && running {
            accepting = (try? ring.acceptMultishot(listener, userData: Self.acceptTag)) != nil
        }
    }

    /// A new pair: its upstream socket, the connect and the client's receive, queued for this turn's submission.
    private func open(_ slot: Int, client: FileDescriptor) {
        let pair = table.pairs + slot
        pair.pointee.client = client
        do {
            let upstream = try relayUpstreamSocket(client: client, upstream: options.upstream)
            pair.pointee.upstream = upstream
            pair.pointee.connecting = true
            try ring.connect(upstream, to: upstreamAddress, userData: tag(slot, .connect))
            pair.pointee.inFlight += 1
            try receive(slot, toUpstream: true)
        } catch {
            fail(slot)
        }
    }

    private func connected(_ slot: Int, _ result: Int32) throws(Errno) {
        let pair = table.pairs + slot
        pair.pointee.inFlight -= 1
        if pair.pointee.closing { return settle(slot) }
        if result < 0 { return fail(slot) }
        pair.pointee.connecting = false
        try receive(slot, toUpstream: false)
        // Client bytes that arrived meanwhile, or the client's end of input.
        let toUpstream = direction(slot, toUpstream: true)
        if hasPending(toUpstream) {
            try send(slot, toUpstream: true)
        } else if toUpstream.pointee.sourceEnded {
            try end(slot, toUpstream: true)
        }
    }

    // MARK: receive and send

    private func receive(_ slot: Int, toUpstream: Bool) throws(Errno) {
        let pair = table.pairs + slot
        let source = toUpstream ? pair.pointee.client : pair.pointee.upstream
        let userData = tag(slot, toUpstream ? .receiveFromClient : .receiveFromUpstream)
        if multishot {
            try ring.receiveMultishot(source, group: Self.group, userData: userData)
        } else {
            let buffer = UnsafeMutableRawBufferPointer(
                start: table.buffer(slot, toUpstream: toUpstream), count: table.bufferSize)
            try ring.receive(source, into: buffer, userData: userData)
        }
        direction(slot, toUpstream: toUpstream).pointee.receiving = true
        pair.pointee.inFlight += 1
    }

    @inline(__always)
    private func hasPending(_ direction: UnsafeMutablePointer<RelayDirection>) -> Bool {
        multishot ? direction.pointee.queued > 0 : direction.pointee.end > direction.pointee.start
    }

    private func received(_ slot: Int, toUpstream: Bool, _ completion: IOURing.Completion) throws(Errno) {
        let pair = table.pairs + slot
        let direction = direction(slot, toUpstream: toUpstream)
        let result = completion.result
        if !multishot || !completion.more {
            pair.pointee.inFlight -= 1
            direction.pointee.receiving = false
        }
        if pair.pointee.closing {
            if let id = completion.bufferID { recycle(id) }
            return settle(slot)
        }
        if result > 0 {
            if multishot {
                guard let id = completion.bufferID else { return fail(slot) }
                enqueue(direction, id, count: Int(result))
                if !direction.pointee.blocked { try send(slot, toUpstream: toUpstream) }
                if direction.pointee.receiving && !direction.pointee.paused
                    && direction.pointee.queued >= Self.pauseAt
                {
                    direction.pointee.paused = true
                    try ring.cancel(tag(slot, toUpstream ? .receiveFromClient : .receiveFromUpstream))
                }
                // A multishot receive may also end after data; arm it again unless it was paused.
                if !direction.pointee.receiving && !direction.pointee.paused {
                    try receive(slot, toUpstream: toUpstream)
                }
            } else {
                direction.pointee.start = 0
                direction.pointee.end = Int(result)
                try send(slot, toUpstream: toUpstream)
            }
            return
        }
        if result == 0 {
            direction.pointee.sourceEnded = true
            if !direction.pointee.blocked && !hasPending(direction) { try end(slot, toUpstream: toUpstream) }
            return
        }
        if multishot && result == -Errno.noBufferSpace.code {
            // No buffer left: armed again once buffers come back (end of a turn that recycled some).
            if !direction.pointee.starved {
                direction.pointee.starved = true
                markStarved(slot, toUpstream: toUpstream)
            }
            return
        }
        if multishot && result == -Errno.cancelled.code && direction.pointee.paused {
            if !direction.pointee.blocked && direction.pointee.queued == 0 {
                direction.pointee.paused = false
                try receive(slot, toUpstream: toUpstream)
            }
            return
        }
        fail(slot)
    }

    /// Sends what waits in the direction (multishot: the rest of the first queued buffer).
    private func send(_ slot: Int, toUpstream: Bool) throws(Errno) {
        let pair = table.pairs + slot
        if toUpstream && pair.pointee.connecting { return }
        let direction = direction(slot, toUpstream: toUpstream)
        let destination = toUpstream ? pair.pointee.upstream : pair.pointee.client
        let bytes: UnsafeRawBufferPointer
        if let buffers {
            let id = direction.pointee.queueHead
            let whole = buffers.bytes(UInt16(id), count: Int(length[Int(id)]))
            bytes = UnsafeRawBufferPointer(rebasing: whole[direction.pointee.start...])
        } else {
            bytes = UnsafeRawBufferPointer(
                start: table.buffer(slot, toUpstream: toUpstream) + direction.pointee.start,
                count: direction.pointee.end - direction.pointee.start)
        }
        try ring.send(destination, bytes, userData: tag(slot, toUpstream ? .sendToUpstream : .sendToClient))
        direction.pointee.blocked = true
        pair.pointee.inFlight += 1
    }

    private func sent(_ slot: Int, toUpstream: Bool, _ result: Int32) throws(Errno) {
        let pair = table.pairs + slot
        let direction = direction(slot, toUpstream: toUpstream)
        pair.pointee.inFlight -= 1
        direction.pointee.blocked = false
        if pair.pointee.closing { return settle(slot) }
        if result < 0 { return fail(slot) }
        direction.pointee.start += Int(result)
        if multishot {
            let id = Int(direction.pointee.queueHead)
            if direction.pointee.start < Int(length[id]) { return try send(slot, toUpstream: toUpstream) }
            direction.pointee.start = 0
            direction.pointee.queueHead = next[id]
            if next[id] < 0 { direction.pointee.queueTail = -1 }
            direction.pointee.queued -= 1
            recycle(UInt16(id))
            if direction.pointee.queued > 0 { return try send(slot, toUpstream: toUpstream) }
            if direction.pointee.sourceEnded { return try end(slot, toUpstream: toUpstream) }
            if direction.pointee.paused && !direction.pointee.receiving {
                direction.pointee.paused = false
                try receive(slot, toUpstream: toUpstream)
            }
        } else {
            if direction.pointee.start < direction.pointee.end { return try send(slot, toUpstream: toUpstream) }
            direction.pointee.start = 0
            direction.pointee.end = 0
            if direction.pointee.sourceEnded { return try end(slot, toUpstream: toUpstream) }
            try receive(slot, toUpstream: toUpstream)
        }
    }

    /// The direction's source ended and everything is sent: shut down the destination's writing side; once both
    /// directions are over, the pair closes.
    private func end(_ slot: Int, toUpstream: Bool) throws(Errno) {
        let pair = table.pairs + slot
        if toUpstream && pair.pointee.connecting { return }
        let direction = direction(slot, toUpstream: toUpstream)
        guard !direction.pointee.finished else { return }
        direction.pointee.finished = true
        try ring.shutdownWrite(toUpstream ? pair.pointee.upstream : pair.pointee.client, userData: tag(slot, .shutdown))
        pair.pointee.inFlight += 1
        let other = toUpstream ? pair.pointee.toClient : pair.pointee.toUpstream
        if other.finished {
            pair.pointee.closing = true
            settle(slot)
        }
    }

    // MARK: teardown

    /// Ends a pair on an error: both sockets are shut down, which completes whatever is pending on them.
    private func fail(_ slot: Int) {
        let pair = table.pairs + slot
        guard pair.pointee.inUse else { return }
        guard !pair.pointee.closing else { return settle(slot) }
        pair.pointee.closing = true
        try? pair.pointee.client.shutdown(.both)
        if pair.pointee.upstream.rawValue >= 0 { try? pair.pointee.upstream.shutdown(.both) }
        settle(slot)
    }

    /// Closes and frees a closing pair once nothing of it is in flight; queued buffers go back to the ring.
    private func settle(_ slot: Int) {
        let pair = table.pairs + slot
        guard pair.pointee.inUse, pair.pointee.closing, pair.pointee.inFlight == 0 else { return }
        recycleQueue(direction(slot, toUpstream: true))
        recycleQueue(direction(slot, toUpstream: false))
        pair.pointee.client.close()
        if pair.pointee.upstream.rawValue >= 0 { pair.pointee.upstream.close() }
        table.release(slot)
    }

    // MARK: provided buffers

    @inline(__always)
    private func enqueue(_ direction: UnsafeMutablePointer<RelayDirection>, _ id: UInt16, count: Int) {
        let index = Int(id)
        next[index] = -1
        length[index] = Int32(count)
        if direction.pointee.queueTail >= 0 {
            next[Int(direction.pointee.queueTail)] = Int32(index)
        } else {
            direction.pointee.queueHead = Int32(index)
            direction.pointee.start = 0
        }
        direction.pointee.queueTail = Int32(index)
        direction.pointee.queued += 1
    }

    private func recycleQueue(_ direction: UnsafeMutablePointer<RelayDirection>) {
        var id = direction.pointee.queueHead
        while id >= 0 {
            recycle(UInt16(id))
            id = next[Int(id)]
        }
        direction.pointee.queueHead = -1
        direction.pointee.queueTail = -1
        direction.pointee.queued = 0
    }

    @inline(__always)
    private func recycle(_ id: UInt16) {
        buffers?.recycle(id)
        recycled = true
    }

    private func markStarved(_ slot: Int, toUpstream: Bool) {
        let capacity = 2 * table.capacity
        if starvedCount == capacity {
            // Entries of pairs that closed since: drop them to make room.
            var kept = 0
            for index in 0..<starvedCount where isStillStarved(starved[index]) {
                starved[kept] = starved[index]
                kept += 1
            }
            starvedCount = kept
            guard starvedCount < capacity else { return }
        }
        starved[starvedCount] =
            UInt64(table.pairs[slot].generation) << 32 | UInt64(slot) << 1 | (toUpstream ? 0 : 1)
        starvedCount += 1
    }

    private func isStillStarved(_ entry: UInt64) -> Bool {
        let slot = Int((entry & 0xffff_ffff) >> 1)
        let pair = table.pairs + slot
        guard pair.pointee.inUse, !pair.pointee.closing, UInt64(pair.pointee.generation) == entry >> 32 else {
            return false
        }
        return direction(slot, toUpstream: entry & 1 == 0).pointee.starved
    }

    /// Arms again the receives that ran out of buffers, now that some came back.
    private func rearmStarved() {
        let count = starvedCount
        starvedCount = 0
        for index in 0..<count where isStillStarved(starved[index]) {
            let entry = starved[index]
            let slot = Int((entry & 0xffff_ffff) >> 1)
            let toUpstream = entry & 1 == 0
            let direction = direction(slot, toUpstream: toUpstream)
            direction.pointee.starved = false
            if direction.pointee.receiving || direction.pointee.sourceEnded || direction.pointee.paused { continue }
            do { try receive(slot, toUpstream: toUpstream) } catch { fail(slot) }
        }
    }
}
