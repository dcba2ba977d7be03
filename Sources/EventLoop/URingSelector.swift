// The io_uring readiness backend: one multishot poll per registration on a single-issuer ring; registrations,
// removals and the wait go in one io_uring_enter.
import Sys

/// Readiness through io_uring: each registration is a multishot `IORING_OP_POLL_ADD` keyed by its token.
///
/// Compared with epoll: registering, changing and removing cost no system call of their own (they are queued and
/// submitted with the loop's wait). Polls are edge-triggered like the epoll backend.
///
/// The ring is `SINGLE_ISSUER | COOP_TASKRUN`, not `DEFER_TASKRUN`: with deferred completion work this kernel (6.18)
/// runs at most 20 items per `io_uring_enter` (IO_LOCAL_TW_DEFAULT_MAX), and a poll whose wake-up is still queued
/// cannot be removed (EALREADY), so 2,000 polls removed in one turn left 1,960 sockets open (reproduced in C).
/// Cooperative task running gives the same no-interrupt behaviour and runs the queued work on the next system call.
///
/// A poll keeps a reference to its file, so closing a descriptor does not end its poll (as it does with epoll):
/// `deregister` always queues a removal, and the socket is released when that removal is submitted, at the end of
/// the same loop turn. Completions of removed polls (ECANCELED, or any event carrying a stale token) are dropped.
///
/// Completion I/O: a registration switched by `switchToCompletionIO` has no poll any more. It reads with a multishot
/// receive into the loop's ring of provided buffers (one completion per arrival, no read(2)) and writes with sends
/// submitted with the loop's wait (no send(2)). Its completions are reported as `.received` and `.sent` events with
/// a `Receipt`; the buffers delivered in one wait go back to the kernel at the start of the next (handlers use the
/// bytes during their callback only, as with `readBuffer`). A send's memory belongs to its connection until the
/// send completes; a connection closed before that leaves it here (`orphan`), freed when the send's completion
/// comes.
public final class URingSelector: Selector {
    /// The ring starts disabled: the loop's thread enables it on its first wait and becomes its single issuer
    /// (loops are made on one thread and run on another).
    static let setupFlags: IOURing.SetupFlags = [.singleIssuer, .cooperativeTaskRun, .taskRunFlag, .submitAll]
    /// Marks the user data of a removal (whose completion comes only when it fails). Tokens never have it set: their
    /// high half is a slot generation, which would need 2^31 reuses of one slot to reach it.
    static let removalTag: UInt64 = 1 << 63
    /// Marks the user data of a registration's multishot receive.
    static let receiveTag: UInt64 = 1 << 62
    /// Marks the user data of a receive's cancellation (whose completion comes only when it fails).
    static let cancelTag: UInt64 = 1 << 61
    /// Marks a registration's `pollData` once it does its I/O by completion (it has no poll then).
    static let completionTag: UInt64 = 1 << 60
    /// Marks the user data of a registration's send.
    static let sendTag: UInt64 = 1 << 59
    static let tags: UInt64 = removalTag | receiveTag | cancelTag | completionTag | sendTag
    /// The provided-buffer group of completion I/O, and its size: buffers × bytes per buffer, made on first use.
    static let bufferGroup: UInt16 = 0
    let receiveBufferCount: Int
    let receiveBufferSize: Int

    struct Registration {
        var fd: Int32
        var interest: Interest
        var token: UInt64
        /// The user data of its poll: the token; with `completionTag` once it does its I/O by completion (no poll).
        var pollData: UInt64
        /// The wait (`batch`) in which this registration's events were last reported, and where in `ready`: a
        /// second completion for it in the same wait is merged into the first.
        var batch: UInt32 = 0
        var position: Int32 = 0
    }

    let ring: IOURing
    private let completions: UnsafeMutablePointer<IOURing.Completion>
    private let ready: UnsafeMutablePointer<(token: UInt64, events: ReadyEvents)>
    private let receipts: UnsafeMutablePointer<Receipt>
    /// Provided buffers delivered by the last wait, recycled at the start of the next.
    private let delivered: UnsafeMutablePointer<UInt16>
    private var deliveredCount = 0
    private var buffers: ProvidedBufferRing?
    /// The same ring, unretained, for the calls made per relayed message (`lend`, `giveBack`): binding `buffers`
    /// retained and released it around each. `buffers` holds it from its creation to the selector's end.
    private var buffersRef: Unmanaged<ProvidedBufferRing>?
    /// Memory of sends still in flight whose connection closed: (the send's user data, the memory), freed when the
    /// send completes.
    private var orphans: [(UInt64, UnsafeMutableRawPointer)] = []
    private let capacity: Int
    /// Indexed by the token's slot index (the low 32 bits): what to re-arm when a multishot poll ends by itself.
    private var registrations: [Registration] = []
    private var batch: UInt32 = 0

    /// Why the io_uring backend cannot run here, or nil when it can.
    public static func unavailability() -> Errno? { IOURing.unavailability(flags: setupFlags) }

    public init(
        capacity: Int = 1024, entries: UInt32 = 4096, receiveBufferCount: Int = 64, receiveBufferSize: Int = 64 * 1024
    ) throws(Errno) {
        ring = try IOURing(entries: entries, flags: Self.setupFlags.union(.disabled), completionBatch: capacity)
        self.capacity = capacity
        self.receiveBufferCount = receiveBufferCount
        self.receiveBufferSize = receiveBufferSize
        completions = .allocate(capacity: capacity)
        ready = .allocate(capacity: capacity)
        receipts = .allocate(capacity: capacity)
        delivered = .allocate(capacity: capacity)
        registrations.reserveCapacity(1024)
        orphans.reserveCapacity(64)
    }

    deinit {
        completions.deallocate()
        ready.deallocate()
        receipts.deallocate()
        delivered.deallocate()
        // Closed with the ring: nothing reads them any more.
        for (_, memory) in orphans where buffers?.id(containing: memory) == nil { memory.deallocate() }
    }

    @inline(__always)
    static func bits(_ interest: Interest) -> IOURing.PollEvents {
        var events: IOURing.PollEvents = []
        if interest.contains(.readable) { events.formUnion([.input, .readHangup]) }
        if interest.contains(.writable) { events.insert(.output) }
        return events
    }

    @inline(__always)
    static func index(_ token: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: token)) }

    static let vacant = Registration(fd: -1, interest: [], token: 0, pollData: 0)

    public func register(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno) {
        try ring.pollMultishot(fd, events: Self.bits(interest), userData: token)
        let index = Self.index(token)
        while registrations.count <= index { registrations.append(Self.vacant) }
        registrations[index] = Registration(fd: fd.rawValue, interest: interest, token: token, pollData: token)
    }

    @inline(__always)
    private func isLive(_ token: UInt64) -> Bool {
        let index = Self.index(token)
        return index < registrations.count && registrations[index].token == token
    }

    public func modify(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno) {
        guard isLive(token) else { return try register(fd, interest: interest, token: token) }
        let index = Self.index(token)
        let old = registrations[index].pollData
        try ring.pollRemove(old, userData: old | Self.removalTag)
        try ring.pollMultishot(fd, events: Self.bits(interest), userData: old)
        registrations[index].interest = interest
    }

    public func deregister(_ fd: FileDescriptor, token: UInt64, willClose: Bool) throws(Errno) {
        try deregister(fd, token: token, receiveArmed: true, sendInFlight: true)
    }

    /// `deregister`, told which of a completion-I/O registration's receive and send are still in flight: only those
    /// are cancelled (a cancel that finds nothing costs a submission and a completion).
    public func deregister(_ fd: FileDescriptor, token: UInt64, receiveArmed: Bool, sendInFlight: Bool) throws(Errno) {
        var pollData = token
        if isLive(token) {
            let index = Self.index(token)
            pollData = registrations[index].pollData
            registrations[index] = Self.vacant
        }
        if pollData & Self.completionTag != 0 {
            // A receive or a send, like a poll, holds the socket's file until it ends; a send to a peer that does
            // not read would never end.
            if receiveArmed { try cancelReceive(token) }
            if sendInFlight { try ring.cancel(token | Self.sendTag, userData: token | Self.sendTag | Self.cancelTag) }
        } else {
            try ring.pollRemove(pollData, userData: pollData | Self.removalTag)
        }
    }

    // MARK: Completion I/O

    /// Switches a live registration to completion I/O: its poll is removed; it reads with `armReceive` and writes
    /// with `send`. Makes the provided-buffer ring on first use.
    public func switchToCompletionIO(_ fd: FileDescriptor, token: UInt64) throws(Errno) {
        guard isLive(token) else { throw Errno.badFileDescriptor }
        let index = Self.index(token)
        guard registrations[index].pollData & Self.completionTag == 0 else { return }
        if buffers == nil {
            if !ring.enabled { try ring.enable() }
            let made = try ProvidedBufferRing(
                ring: ring, group: Self.bufferGroup, count: receiveBufferCount, bufferSize: receiveBufferSize,
                incremental: true)
            buffers = made
            buffersRef = Unmanaged.passUnretained(made)
        }
        try removePoll(index: index, token: token)
    }

    /// Takes the poll of the live registration at `index` away (queued), marking it as doing completion I/O.
    private func removePoll(index: Int, token: UInt64) throws(Errno) {
        let old = registrations[index].pollData
        try ring.pollRemove(old, userData: old | Self.removalTag)
        registrations[index].pollData = token | Self.completionTag
        registrations[index].interest = []
    }

    /// Switches a live listening registration to a multishot accept: its poll is removed, and each accepted socket
    /// (non-blocking, close-on-exec) comes as a receipt whose result is the new descriptor. No accept4(2) per
    /// connection, nor a wake-up to find the listener readable. Cancelled like a receive (`cancelReceive`).
    public func acceptByCompletion(_ fd: FileDescriptor, token: UInt64) throws(Errno) {
        guard isLive(token) else { throw Errno.badFileDescriptor }
        let index = Self.index(token)
        // Only queued, the ring not enabled here: a listener is often made before its loop's thread runs, and the
        // ring is enabled (its single issuer fixed) by that thread's first wait.
        if registrations[index].pollData & Self.completionTag == 0 { try removePoll(index: index, token: token) }
        try armAccept(fd, token: token)
    }

    /// Arms the multishot accept again (after it ended, or was cancelled for a pause).
    public func armAccept(_ fd: FileDescriptor, token: UInt64) throws(Errno) {
        try ring.acceptMultishot(fd, userData: token | Self.receiveTag)
    }

    /// Sends `bytes` for a registration doing completion I/O (without SIGPIPE); the memory must stay valid until
    /// the `.sent` event, or be handed to `orphan` if the registration goes first.
    /// `more`: MSG_MORE (the caller ends the connection's output next, and the FIN joins these bytes).
    public func send(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, token: UInt64, more: Bool) throws(Errno) {
        try ring.send(fd, bytes, userData: token | Self.sendTag, more: more)
    }

    /// Closes `fd` with the next submission (after the cancels `deregister` queued); falls back to close(2) when the
    /// submission queue cannot take it.
    public func close(_ fd: FileDescriptor) {
        do { try ring.close(fd, userData: 0) } catch { fd.close() }
    }

    /// Shuts down `fd`'s writing side with the next submission; false when the queue cannot take it.
    public func shutdownWrite(_ fd: FileDescriptor) -> Bool {
        (try? ring.shutdownWrite(fd, userData: 0, quiet: true)) != nil
    }

    /// Takes over the memory of `token`'s send in flight, whose connection is closing: freed when the send
    /// completes (it is cancelled by `deregister`).
    public func orphan(_ memory: UnsafeMutableRawPointer, token: UInt64) {
        orphans.append((token | Self.sendTag, memory))
    }

    /// Lends the provided buffer `bytes` lie in to a send that reads them in place (see `ProvidedBufferRing.lend`):
    /// its id, or -1 when they are not in one or half the ring is lent already.
    public func lend(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        guard let buffersRef, let base = bytes.baseAddress else { return -1 }
        return buffersRef._withUnsafeGuaranteedRef { buffers in
            guard let id = buffers.id(containing: base) else { return -1 }
            return buffers.lend(id) ? Int32(id) : -1
        }
    }

    /// Ends a `lend`.
    public func giveBack(_ id: Int32) {
        buffersRef?._withUnsafeGuaranteedRef { $0.giveBack(UInt16(truncatingIfNeeded: id)) }
    }

    /// Provided buffers lent to sends in flight or queued; lends made; the most buffers lent at once.
    var lentBufferCount: Int { buffers?.lentBuffers ?? 0 }
    var lendCount: Int { buffers?.lendCount ?? 0 }
    var mostLentBuffers: Int { buffers?.mostLentBuffers ?? 0 }

    /// Send buffers of closed connections still waiting for their send's completion.
    var orphanCount: Int { orphans.count }

    private func adoptOrphan(_ data: UInt64) {
        guard let position = orphans.firstIndex(where: { $0.0 == data }) else { return }
        let memory = orphans[position].1
        if let buffers, let id = buffers.id(containing: memory) {
            buffers.giveBack(id)
        } else {
            memory.deallocate()
        }
        orphans.swapAt(position, orphans.count - 1)
        orphans.removeLast()
    }

    /// Arms a multishot receive for a registration doing completion I/O.
    public func armReceive(_ fd: FileDescriptor, token: UInt64) throws(Errno) {
        try ring.receiveMultishot(fd, group: Self.bufferGroup, userData: token | Self.receiveTag)
    }

    /// Cancels the registration's receive; it ends with a `Receipt` of ECANCELED (or with whatever it was completing).
    public func cancelReceive(_ token: UInt64) throws(Errno) {
        try ring.cancel(token | Self.receiveTag, userData: token | Self.receiveTag | Self.cancelTag)
    }

    /// Submits what is queued and runs the completion work it causes (removals release their files): used when the
    /// loop stops, after its handlers closed their descriptors, since no later wait would submit them.
    public func flush() {
        guard ring.enabled else { return }
        for _ in 0..<4 {
            try? ring.submitAndWait(timeoutNanoseconds: 0)
            let count = ring.completions(into: completions, capacity: capacity)
            for position in 0..<count
            where completions[position].userData & (Self.sendTag | Self.cancelTag) == Self.sendTag {
                adoptOrphan(completions[position].userData)
            }
            if ring.queued == 0 { break }
        }
    }

    public func wait(timeoutMilliseconds: Int32) throws(Errno) -> Int {
        if !ring.enabled { try ring.enable() }
        if let buffers {
            for position in 0..<deliveredCount { buffers.release(delivered[position]) }
            deliveredCount = 0
            // With what sends gave back since the last wait.
            buffers.commit()
        }
        if ring.ready > 0 {
            // Completion work already ran on one of this turn's system calls (cooperative task running): reap
            // without waiting, and enter the kernel only if there is something to submit.
            if ring.queued > 0 { try ring.submit() }
        } else {
            let timeout: UInt64? = timeoutMilliseconds < 0 ? nil : UInt64(timeoutMilliseconds) * 1_000_000
            try ring.submitAndWait(timeoutNanoseconds: timeout)
        }
        let count = ring.completions(into: completions, capacity: capacity)
        batch &+= 1
        var kept = 0
        for position in 0..<count {
            let completion = completions[position]
            let data = completion.userData
            if data & (Self.removalTag | Self.cancelTag) != 0 {
                // A removal or cancellation that failed. EALREADY: the operation was completing; ask again next turn
                // (ENOENT: it had ended already).
                if completion.result == -Errno.alreadyInProgress.code {
                    if data & Self.removalTag != 0 {
                        try? ring.pollRemove(data & ~Self.removalTag, userData: data)
                    } else {
                        try? ring.cancel(data & ~Self.cancelTag, userData: data)
                    }
                }
                continue
            }
            if data == 0 { continue }
            let token = data & ~Self.tags
            if data & Self.sendTag != 0 {
                guard isLive(token) else {
                    adoptOrphan(data)
                    continue
                }
                ready[kept] = (token, .sent)
                receipts[kept] = Receipt(
                    result: completion.result, bytes: UnsafeRawBufferPointer(start: nil, count: 0), more: false)
                kept += 1
                continue
            }
            if data & Self.receiveTag != 0 {
                var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
                if let id = completion.bufferID, let buffers {
                    let taken = buffers.take(
                        id, count: Int(max(completion.result, 0)), bufferMore: completion.bufferMore)
                    if taken.released {
                        delivered[deliveredCount] = id
                        deliveredCount += 1
                    }
                    bytes = UnsafeRawBufferPointer(taken.bytes)
                }
                guard isLive(token) else {
                    // A receive with bytes always names its buffer: without one, this is a multishot accept's
                    // socket, arrived after its listener went. Nobody takes it.
                    if completion.bufferID == nil && completion.result > 0 { FileDescriptor(completion.result).close() }
                    continue
                }
                // Bytes and then the end of file, one after the other (the receive found the peer's last bytes and
                // its FIN at once): the bytes' receipt says so, for a handler that ends the other side's output with
                // them. Looked for at the end of file only, in the entry before it: nothing per message.
                if completion.result == 0 && kept > 0 && ready[kept - 1].token == token
                    && ready[kept - 1].events == .received && receipts[kept - 1].result > 0
                {
                    receipts[kept - 1].endFollows = true
                }
                ready[kept] = (token, .received)
                receipts[kept] = Receipt(result: completion.result, bytes: bytes, more: completion.more)
                kept += 1
                continue
            }
            let events: ReadyEvents
            if completion.result < 0 {
                // ECANCELED: a removed poll. Any other error ends the poll: let the handler find it out by I/O.
                if completion.result == -Errno.cancelled.code { continue }
                events = [.readable, .writable, .error]
            } else {
                events = ReadyEvents(pollBits: UInt32(bitPattern: completion.result))
                if !completion.more { rearm(data) }
            }
            // One report per registration and wait: a wake-up per arrival (a listener's, during a burst of
            // connections) would otherwise make the handler look again and find nothing.
            let index = Self.index(token)
            if index < registrations.count && registrations[index].token == token {
                if registrations[index].batch == batch {
                    let at = Int(registrations[index].position)
                    ready[at].events.formUnion(events)
                    continue
                }
                registrations[index].batch = batch
                registrations[index].position = Int32(kept)
            }
            ready[kept] = (token, events)
            kept += 1
        }
        return kept
    }

    /// A multishot poll the kernel ended by itself (the completion queue overflowed): armed again if still wanted
    /// (and still the registration's current poll).
    private func rearm(_ pollData: UInt64) {
        let token = pollData & ~Self.tags
        guard isLive(token) else { return }
        let registration = registrations[Self.index(token)]
        guard registration.pollData == pollData else { return }
        try? ring.pollMultishot(
            FileDescriptor(registration.fd), events: Self.bits(registration.interest), userData: pollData)
    }

    @inline(__always)
    public func event(at index: Int) -> (token: UInt64, events: ReadyEvents) { ready[index] }

    @inline(__always)
    public func receipt(at index: Int) -> Receipt { receipts[index] }

    public func close() { ring.close() }
}
