// A stream connection on one loop: reads into the loop's shared buffer, keeps memory only for unsent bytes.
import Sys

/// Callbacks of a `Connection`, all on its loop's thread.
public protocol ConnectionHandler: AnyObject {
    /// Bytes read; `bytes` points into the loop's shared read buffer and is valid only during this call.
    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer)
    /// The peer shut down its writing side. Default: `connection.close()`.
    func readEOF(_ connection: Connection)
    /// Unsent bytes crossed the loop's high-water mark (`false`), or were all sent again (`true`). An edge: a
    /// handler attaching to a connection already above the mark checks `isAboveHighWater` itself.
    func writabilityChanged(_ connection: Connection, writable: Bool)
    /// The connection closed; `error` is nil for a local `close()` or loop stop, `Errno.noBufferSpace` when its
    /// unsent bytes passed `loop.maxPendingBytes`. Called exactly once.
    func closed(_ connection: Connection, error: Errno?)
}

extension ConnectionHandler {
    public func readEOF(_ connection: Connection) { connection.close() }
    public func writabilityChanged(_ connection: Connection, writable: Bool) {}
}

/// A connection's handler, called without reference counting: its dynamic type (a metatype, which needs none) and
/// the object's address. A call through a stored existential retains and releases the handler around it (two
/// locked instructions per read). Valid while the handler is alive: the connection holds it (or, for one it is lent
/// to, `lend(to:)`'s caller keeps it alive), and one it lets go is kept by its loop until the next turn begins
/// (`EventLoop.retire`), so a handler that replaces or closes itself from inside one of its callbacks is not freed
/// under that callback.
struct HandlerCallee {
    let type: any ConnectionHandler.Type
    let object: UnsafeMutableRawPointer

    init(_ handler: any ConnectionHandler) {
        type = Swift.type(of: handler)
        object = Unmanaged.passUnretained(handler as AnyObject).toOpaque()
    }

    @inline(__always)
    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        type.calling(object) { $0.received(connection, bytes) }
    }

    @inline(__always)
    func readEOF(_ connection: Connection) { type.calling(object) { $0.readEOF(connection) } }

    @inline(__always)
    func writabilityChanged(_ connection: Connection, writable: Bool) {
        type.calling(object) { $0.writabilityChanged(connection, writable: writable) }
    }

    @inline(__always)
    func closed(_ connection: Connection, error: Errno?) {
        type.calling(object) { $0.closed(connection, error: error) }
    }
}

extension ConnectionHandler {
    /// Calls `body` with the handler at `object` (an instance of `Self`), not retained around the call.
    @inline(__always)
    static func calling(_ object: UnsafeMutableRawPointer, _ body: (Self) -> Void) {
        Unmanaged<Self>.fromOpaque(object)._withUnsafeGuaranteedRef(body)
    }
}

/// A nonblocking stream socket registered once (edge-triggered, both directions) with one loop.
///
/// An idle connection owns no buffer: reads go to `loop.readBuffer`; `write` sends at once and copies only the
/// unsent remainder into a pending buffer that is freed as soon as it drains.
public final class Connection: EventHandler {
    // Strong and `let`: a call through it borrows the reference, where a call through an `unowned(unsafe)` one is
    // retained and released around it (once per queued send, for instance). The cycle with the loop's registrations
    // ends when the connection closes, which the loop's stop also does.
    public let loop: EventLoop
    public let fd: FileDescriptor
    /// Owns the handler; calls go through `callee` (see `HandlerCallee`), which is another object while the
    /// connection is lent (`lend(to:)`).
    private var handler: AnyObject?
    private var callee: HandlerCallee?
    private var token: UInt64 = 0
    // Pending output: bytes [pendingStart, pendingEnd) of a buffer of pendingCapacity bytes; nil when empty.
    // Invariant: pending == nil ⇔ pendingCapacity == 0; pendingStart ≤ pendingEnd ≤ pendingCapacity.
    // Completion I/O: a negative pendingCapacity, -1 - id, means the bytes are where the loop received them, in its
    // provided buffer `id`, lent to this connection's send until it completes (no copy); writing more moves them
    // into a buffer of the connection's own.
    private var pending: UnsafeMutableRawPointer?
    private var pendingStart: Int32 = 0
    private var pendingEnd: Int32 = 0
    private var pendingCapacity: Int32 = 0
    /// Completion I/O: bytes of the send in flight (the first ones of pending), and the buffer it reads from (the
    /// pending buffer, or an earlier one that `append` outgrew, kept alive until the send completes).
    private var sending: Int32 = 0
    private var sendingFrom: UnsafeMutableRawPointer?
    private var sendingFromCapacity: Int32 = 0
    private var failure: Int32 = 0
    private var state: State = []
    /// Free for the owner (e.g. an index into its own table).
    public var tag: UInt32 = 0

    struct State: OptionSet {
        let rawValue: UInt16
        static let closed = State(rawValue: 1)
        static let readingPaused = State(rawValue: 2)
        static let sawEOF = State(rawValue: 4)
        static let shutdownRequested = State(rawValue: 8)
        static let writeShut = State(rawValue: 16)
        static let aboveHighWater = State(rawValue: 32)
        static let closeWhenFlushed = State(rawValue: 64)
        /// Reading was paused inside `received` after a read that emptied the socket.
        static let drainedBeforePause = State(rawValue: 128)
        /// A readiness event arrived while reading was paused.
        static let edgeWhilePaused = State(rawValue: 256)
        /// Completion I/O: reads are a multishot receive into the loop's provided buffers, writes are sends submitted
        /// with the loop's wait; no readiness, read(2) or send(2).
        static let completionIO = State(rawValue: 512)
        /// A multishot receive is armed (until a receipt without `more`).
        static let receiveArmed = State(rawValue: 1024)
        /// Its cancel was asked for (bytes arrived while reading was paused).
        static let receiveCancelling = State(rawValue: 2048)
        /// Its pending bytes are sent just before the loop's next wait.
        static let sendQueued = State(rawValue: 4096)
        /// The bytes being delivered to `received` are the last before the peer's FIN (see `endOfInputFollows`).
        static let endFollows = State(rawValue: 8192)
        /// Completion I/O: the pending bytes were written by `writeBeforeEnd` last; their send carries MSG_MORE.
        static let sendMore = State(rawValue: 16384)
    }

    /// Inside `received` only: true when the peer's FIN follows these bytes (a hang-up came with the readiness and
    /// the read emptied the socket; by completion, the end of file is the next receipt of the same wait), so
    /// `readEOF` comes next, in the same turn.
    public var endOfInputFollows: Bool { state.contains(.endFollows) }

    /// Takes ownership of `fd` (nonblocking) and registers it with `loop`. On failure the fd is closed.
    public init(loop: EventLoop, fd: FileDescriptor, handler: any ConnectionHandler) throws(Errno) {
        self.loop = loop
        self.fd = fd
        self.handler = handler
        callee = HandlerCallee(handler)
        do {
            token = try loop.register(fd, interest: [.readable, .writable], handler: self)
        } catch {
            fd.close()
            self.handler = nil
            callee = nil
            throw error
        }
    }

    /// Takes over a registration already made for `fd` with interest `[.readable, .writable]` (a connector's).
    init(loop: EventLoop, fd: FileDescriptor, adopting token: UInt64, handler: any ConnectionHandler) {
        self.loop = loop
        self.fd = fd
        self.handler = handler
        callee = HandlerCallee(handler)
        self.token = token
        _ = loop.replaceHandler(token, with: self)
    }

    public var isClosed: Bool { state.contains(.closed) }

    /// Hands the connection to another handler (e.g. an upstream connection going back to a keep-alive pool).
    /// Giving it back to the handler that holds it (one that lent it with `lend(to:)`) costs no reference count.
    public func setHandler(_ handler: any ConnectionHandler) {
        guard !state.contains(.closed) else { return }
        if handler === self.handler {
            callee = HandlerCallee(handler)
            return
        }
        // The one replaced may be running (this is called from its own callbacks): kept until the next turn.
        if let old = self.handler.take() { loop.retire(old) }
        self.handler = handler
        callee = HandlerCallee(handler)
    }

    /// Delivers the events to `borrower` from now on, not retained: the current handler stays the connection's
    /// owner (held strongly), and gets it back with `setHandler(owner)`, which then costs no reference count (a
    /// keep-alive pool lending a connection to one request after another). The caller guarantees that `borrower`
    /// outlives its use: before it goes, it gives the connection back, hands it to another handler or closes it
    /// (the loop keeps a connection's owner until the next turn when the connection closes).
    public func lend(to borrower: any ConnectionHandler) {
        guard !state.contains(.closed) else { return }
        callee = HandlerCallee(borrower)
    }

    /// Closes once every pending byte is sent (at once when none is pending); reading stops now. The handler's
    /// `closed` runs when it really closes. Unlike `shutdownWrite` + wait-for-EOF, a peer that never closes its
    /// side cannot keep the connection open.
    public func closeWhenFlushed() {
        guard !state.contains(.closed) else { return }
        if pending == nil {
            close(error: nil)
        } else {
            state.insert([.closeWhenFlushed, .readingPaused])
        }
    }
    /// Bytes accepted by `write` but not yet sent.
    public var pendingByteCount: Int { Int(pendingEnd - pendingStart) }
    /// Whether a pending buffer is currently allocated.
    public var holdsBuffer: Bool { pending != nil }
    /// Unsent bytes are above the loop's high-water mark now (a level, not the crossing `writabilityChanged` reports).
    public var isAboveHighWater: Bool { pendingByteCount > loop.highWaterMark }
    /// Reading is paused (`pauseReading`, or stopped by `closeWhenFlushed`).
    public var isReadingPaused: Bool { state.contains(.readingPaused) }

    // MARK: Reading

    public func pauseReading() {
        if state.contains(.completionIO) {
            // The receive stays armed until bytes arrive while paused (a pause lifted before that costs nothing);
            // then it is cancelled, and bytes it completes before the cancel takes effect are still delivered.
            state.insert(.readingPaused)
            return
        }
        // Outside a read callback nothing is known about unread bytes: `resumeReading` will look.
        if !state.contains(.readingPaused) { state.remove([.drainedBeforePause, .edgeWhilePaused]) }
        state.insert(.readingPaused)
    }

    public func resumeReading() {
        guard state.contains(.readingPaused), !state.contains(.closeWhenFlushed) else { return }
        resumePausedReading()
    }

    /// `resumeReading` past its checks, out of line: most calls find reading not paused, and return before the
    /// register saves this part needs.
    @inline(never)
    private func resumePausedReading() {
        if state.contains(.completionIO) {
            state.remove(.readingPaused)
            // A receive still armed (its cancel not completed yet) is armed again when its ECANCELED comes.
            if state.isDisjoint(with: [.receiveArmed, .sawEOF, .closed]) { armReceive() }
            return
        }
        let mustLook = !state.contains(.drainedBeforePause) || state.contains(.edgeWhilePaused)
        state.remove([.readingPaused, .drainedBeforePause, .edgeWhilePaused])
        // Edge-triggered: bytes that arrived while paused were reported then and ignored, and bytes left unread
        // raise no new edge, so look again next iteration. When the socket was emptied before the pause and no
        // event came since, there is nothing to read and the next arrival raises its own edge: no read is wasted.
        if mustLook { loop.retryLater(token) }
    }

    /// Reads what the socket holds now, without waiting for its readiness event (which may be on its way): for a
    /// decision that must not miss bytes already sent, such as closing idle connections. Does nothing on a closed or
    /// paused connection, or one doing completion I/O.
    public func readNow() { ready([.readable]) }

    public func ready(_ events: ReadyEvents) {
        if state.contains(.closed) { return }
        if failure != 0 {
            close(error: Errno(failure))
            return
        }
        if events.contains(.error) {
            close(error: (try? fd.socketError()) ?? Errno.connectionReset)
            return
        }
        if events.contains(.writable) && pending != nil {
            flush()
            if state.contains(.closed) { return }
        }
        // Reading by completion: bytes, end of file and read errors come as receipts.
        if state.contains(.completionIO) { return }
        if !state.isDisjoint(with: [.readingPaused, .sawEOF]) {
            if state.contains(.readingPaused) && !events.isDisjoint(with: [.readable, .readHangup, .hangup]) {
                state.insert(.edgeWhilePaused)
            }
            return
        }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup]) {
            readAvailable(drain: !events.isDisjoint(with: [.readHangup, .hangup]))
        }
    }

    private func readAvailable(drain: Bool) {
        let buffer = loop.readBuffer
        for _ in 0..<loop.readsPerEvent {
            let result: IOResult
            do {
                result = try fd.read(into: buffer)
            } catch {
                close(error: error)
                return
            }
            switch result {
            case .count(let count):
                let wasPaused = state.contains(.readingPaused)
                if drain && count < buffer.count { state.insert(.endFollows) }
                callee?.received(self, UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                state.remove(.endFollows)
                if !state.isDisjoint(with: [.closed, .readingPaused]) {
                    // Paused by this callback after a short read (and no pending hang-up): the socket is empty.
                    if !wasPaused && state.contains(.readingPaused) && count < buffer.count && !drain {
                        state.insert(.drainedBeforePause)
                    }
                    return
                }
                // A short read emptied the socket; a later arrival raises a new edge. With a hang-up pending,
                // keep reading to see the EOF now (no further edge would report it).
                if count < buffer.count && !drain { return }
            case .wouldBlock:
                return
            case .endOfFile:
                state.insert(.sawEOF)
                callee?.readEOF(self)
                return
            }
        }
        loop.retryLater(token)
    }

    // MARK: Completion I/O

    /// On an io_uring loop, does its I/O by completion from now on: a multishot receive into the loop's provided
    /// buffers delivers each arrival to `received` (bytes valid during the call, as with the shared read buffer),
    /// and `write` copies into the pending buffer and submits a send with the loop's wait: no readiness event, no
    /// read(2) and no send(2) per message. For long-lived streams (a tunnel). Returns false, changing nothing, on an
    /// epoll loop or when the ring cannot (the connection stays on readiness then).
    @discardableResult
    public func switchToCompletionIO() -> Bool {
        if state.contains(.completionIO) { return true }
        guard !state.contains(.closed), loop.switchToCompletionIO(fd, token: token) else { return false }
        state.insert(.completionIO)
        if state.isDisjoint(with: [.readingPaused, .sawEOF]) { armReceive() }
        // Bytes left from before the switch: no writability event will come for them any more.
        if pending != nil { submitSend() }
        return true
    }

    /// Whether I/O is by completion (`switchToCompletionIO`).
    public var usesCompletionIO: Bool { state.contains(.completionIO) }

    /// The pending bytes leave with the loop's next wait: what is written until then goes in the same send.
    private func queueSend() {
        guard sending == 0, !state.contains(.sendQueued) else { return }
        state.insert(.sendQueued)
        loop.sendBeforeWait(token)
    }

    public func beforeWait() {
        state.remove(.sendQueued)
        if !state.contains(.closed) { submitSend() }
    }

    /// Submits the pending bytes as one send (nothing in flight before).
    private func submitSend() {
        guard let buffer = pending, sending == 0, pendingStart < pendingEnd else { return }
        let count = pendingEnd - pendingStart
        do {
            try loop.submitSend(
                fd, UnsafeRawBufferPointer(start: buffer + Int(pendingStart), count: Int(count)), token: token,
                more: state.contains(.sendMore))
        } catch {
            fail(error)
            return
        }
        sending = count
        sendingFrom = buffer
        sendingFromCapacity = pendingCapacity
    }

    public func sent(_ receipt: Receipt) {
        guard sending > 0 else { return }
        // An outgrown buffer the send read from is free now.
        if let from = sendingFrom, from != pending { releaseBuffer(from, capacity: sendingFromCapacity) }
        sending = 0
        sendingFrom = nil
        if state.contains(.closed) { return }
        if receipt.result < 0 {
            close(error: Errno(-receipt.result))
            return
        }
        pendingStart += receipt.result
        if pendingStart < pendingEnd {
            queueSend()
            return
        }
        drained()
    }

    private func armReceive() {
        do {
            try loop.armReceive(fd, token: token)
            state.insert(.receiveArmed)
        } catch {
            fail(error)
        }
    }

    public func completed(_ receipt: Receipt) {
        if state.contains(.closed) { return }
        if !receipt.more { state.remove([.receiveArmed, .receiveCancelling]) }
        let result = receipt.result
        if result > 0 {
            // Reading stopped for good (`closeWhenFlushed`): what was in flight has nowhere to go.
            if !state.contains(.closeWhenFlushed) {
                if receipt.endFollows { state.insert(.endFollows) }
                callee?.received(self, receipt.bytes)
                state.remove(.endFollows)
            }
            if state.contains([.readingPaused, .receiveArmed]) && !state.contains(.receiveCancelling) {
                state.insert(.receiveCancelling)
                loop.cancelReceive(token)
            }
        } else if result == 0 {
            state.insert(.sawEOF)
            callee?.readEOF(self)
            return
        } else if result != -Errno.noBufferSpace.code && result != -Errno.cancelled.code {
            close(error: Errno(-result))
            return
        }
        // Ended (out of buffers: they come back at the next wait; cancelled by a pause since lifted; or ended by
        // the kernel after data): armed again unless reading is paused.
        if state.isDisjoint(with: [.receiveArmed, .readingPaused, .sawEOF, .closed]) { armReceive() }
    }

    // MARK: Writing

    /// Sends `bytes` now; whatever the socket does not take is copied to the pending buffer and sent on
    /// writability. May call `writabilityChanged(false)` before returning. Errors close the connection on the next
    /// loop iteration (never inside this call).
    public func write(_ bytes: UnsafeRawBufferPointer) { write(bytes, flags: .noSignal) }

    /// `write` of bytes that the caller ends at once with `close`, `closeWhenFlushed` or `shutdownWrite`: sent with
    /// MSG_MORE, so the kernel holds them until the FIN and sends both in one segment (one segment less per
    /// connection end that arrives with its last bytes). Anything written later without it sends them too.
    public func writeBeforeEnd(_ bytes: UnsafeRawBufferPointer) { write(bytes, flags: [.noSignal, .more]) }

    @inline(__always)
    private func write(_ bytes: UnsafeRawBufferPointer, flags: MessageFlags) {
        guard state.isDisjoint(with: [.closed, .writeShut, .shutdownRequested, .closeWhenFlushed]), failure == 0 else {
            return
        }
        if state.contains(.completionIO) {
            if flags.contains(.more) { state.insert(.sendMore) } else { state.remove(.sendMore) }
            if pending == nil && bytes.count > 0 && bytes.count <= loop.highWaterMark {
                let id = loop.lendReceiveBuffer(bytes)
                if id >= 0 {
                    pending = UnsafeMutableRawPointer(mutating: bytes.baseAddress!)
                    pendingStart = 0
                    pendingEnd = Int32(bytes.count)
                    pendingCapacity = -1 - id
                    queueSend()
                    return
                }
            }
            append(bytes)
            queueSend()
            return
        }
        if pending != nil {
            append(bytes)
            return
        }
        var sent = 0
        do {
            if case .count(let count) = try fd.send(bytes, flags: flags) { sent = count }
        } catch {
            fail(error)
            return
        }
        if sent < bytes.count { append(UnsafeRawBufferPointer(rebasing: bytes[sent...])) }
    }

    /// Sends `head` then `body` with one writev, without joining them.
    public func write(_ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer) {
        guard state.isDisjoint(with: [.closed, .writeShut, .shutdownRequested, .closeWhenFlushed]), failure == 0 else {
            return
        }
        if pending != nil || state.contains(.completionIO) {
            append(head)
            append(body)
            if state.contains(.completionIO) {
                state.remove(.sendMore)
                queueSend()
            }
            return
        }
        var sent = 0
        do {
            if case .count(let count) = try fd.write(head, body) { sent = count }
        } catch {
            fail(error)
            return
        }
        if sent < head.count {
            append(UnsafeRawBufferPointer(rebasing: head[sent...]))
            append(body)
        } else if sent - head.count < body.count {
            append(UnsafeRawBufferPointer(rebasing: body[(sent - head.count)...]))
        }
    }

    /// Half-close: shuts down the writing side once pending bytes are sent (FIN after the data).
    public func shutdownWrite() {
        guard state.isDisjoint(with: [.closed, .writeShut]) else { return }
        if pending == nil {
            shutWriteNow()
        } else {
            state.insert(.shutdownRequested)
        }
    }

    private func shutWriteNow() {
        state.insert(.writeShut)
        state.remove(.shutdownRequested)
        // Completion I/O: submitted with the loop's wait, after every send (none is in flight now). A failure there
        // (the peer gone) shows in the receive.
        if state.contains(.completionIO) && loop.shutdownWriteByCompletion(fd) { return }
        do { try fd.shutdown(.write) } catch { fail(error) }
    }

    private func fail(_ error: Errno) {
        failure = error.code
        loop.retryLater(token)
    }

    private func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, failure == 0 else { return }
        let used = Int(pendingEnd - pendingStart)
        let needed = used + bytes.count
        if needed > loop.maxPendingBytes {
            // The peer stopped reading and the handler kept writing: close (on the next loop turn, as every write
            // error) rather than grow without bound.
            fail(.noBufferSpace)
            return
        }
        if pending == nil || Int(pendingCapacity) - Int(pendingEnd) < bytes.count {
            var capacity = max(Int(pendingCapacity), EventLoop.outputBufferSize)
            while capacity < needed { capacity *= 2 }
            let fresh =
                capacity == EventLoop.outputBufferSize
                ? loop.takeOutputBuffer() : UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
            if let old = pending {
                fresh.copyMemory(from: old + Int(pendingStart), byteCount: used)
                // A send in flight reads from the old buffer: it is released when that send completes.
                if old != sendingFrom { releaseBuffer(old, capacity: pendingCapacity) }
            }
            pending = fresh
            pendingCapacity = Int32(capacity)
            pendingStart = 0
            pendingEnd = Int32(used)
        }
        (pending! + Int(pendingEnd)).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        pendingEnd += Int32(bytes.count)
        if needed > loop.highWaterMark && !state.contains(.aboveHighWater) {
            state.insert(.aboveHighWater)
            callee?.writabilityChanged(self, writable: false)
        }
    }

    private func flush() {
        guard let buffer = pending, !state.contains(.completionIO) else { return }
        while pendingStart < pendingEnd {
            let slice = UnsafeRawBufferPointer(start: buffer + Int(pendingStart), count: Int(pendingEnd - pendingStart))
            do {
                switch try fd.send(slice) {
                case .count(let count): pendingStart += Int32(count)
                case .wouldBlock, .endOfFile: return
                }
            } catch {
                close(error: error)
                return
            }
        }
        drained()
    }

    /// Every pending byte is sent: the buffer goes back, and what waited for it happens.
    private func drained() {
        releasePending()
        if state.contains(.closeWhenFlushed) {
            close(error: nil)
            return
        }
        if state.contains(.aboveHighWater) {
            state.remove(.aboveHighWater)
            callee?.writabilityChanged(self, writable: true)
        }
        // The callback above may have written again (and asked for shutdown): FIN only after those bytes too.
        if state.contains(.shutdownRequested) && !state.contains(.closed) && pending == nil { shutWriteNow() }
    }

    private func releaseBuffer(_ buffer: UnsafeMutableRawPointer, capacity: Int32) {
        if capacity < 0 {
            loop.giveBackReceiveBuffer(-1 - capacity)
        } else if Int(capacity) == EventLoop.outputBufferSize {
            loop.giveBackOutputBuffer(buffer)
        } else {
            buffer.deallocate()
        }
    }

    private func releasePending() {
        if let buffer = pending, buffer != sendingFrom { releaseBuffer(buffer, capacity: pendingCapacity) }
        pending = nil
        pendingStart = 0
        pendingEnd = 0
        pendingCapacity = 0
    }

    // MARK: Closing

    /// Closes now; unsent bytes are dropped (use `shutdownWrite()` first and close on `readEOF` to flush).
    public func close() { close(error: nil) }

    private func close(error: Errno?) {
        guard !state.contains(.closed) else { return }
        state.insert(.closed)
        let sendInFlight = sending > 0
        // A send in flight still reads its buffer: the loop frees it when the (cancelled) send completes.
        if let from = sendingFrom {
            loop.orphanSend(from, token: token)
            if from == pending { pending = nil }
            sendingFrom = nil
            sending = 0
        }
        loop.deregister(
            fd, token: token, willClose: true, receiveArmed: state.contains(.receiveArmed), sendInFlight: sendInFlight)
        if state.contains(.completionIO) {
            loop.closeByCompletion(fd)
        } else {
            fd.close()
        }
        releasePending()
        let callee = self.callee
        if let handler = handler.take() { loop.retire(handler) }
        self.callee = nil
        callee?.closed(self, error: error)
    }

    public func loopStopping() { close(error: nil) }

    deinit {
        if let buffer = pending, buffer != sendingFrom, pendingCapacity > 0 { buffer.deallocate() }
    }
}
