// One event loop per thread: selector wait, registration slots, timers, deferred retries and cross-thread tasks.
import Synchronization
import Sys

/// Something registered with a loop: told about readiness, and told to close when the loop stops.
public protocol EventHandler: AnyObject {
    /// Readiness for this registration (edge-triggered; also delivered synthetically by `retryLater`).
    func ready(_ events: ReadyEvents)
    /// The loop is stopping: release the descriptor and tell your owner.
    func loopStopping()
    /// A completion of this registration's multishot receive (io_uring loops, after `switchToCompletionIO`).
    func completed(_ receipt: Receipt)
    /// A completion of this registration's send (io_uring loops, after `switchToCompletionIO`).
    func sent(_ receipt: Receipt)
    /// The loop is about to wait: submit what was queued with `sendBeforeWait`.
    func beforeWait()
}

extension EventHandler {
    public func completed(_ receipt: Receipt) {}
    public func sent(_ receipt: Receipt) {}
    public func beforeWait() {}
}

/// A single-threaded event loop.
///
/// Thread rules: `execute`, `stop` and `isInLoop` may be called from any thread; everything else only on the loop's
/// thread (inside callbacks, tasks, or before `run()` starts).
public final class EventLoop: @unchecked Sendable {
    /// The readiness backend: an enum, not an existential, so the wait and the per-event reads are direct calls.
    let selector: LoopSelector
    /// The io_uring selector again (nil on epoll), unretained: binding it out of `selector` retained and released it
    /// around every call (twice per relayed message on io_uring). `selector` keeps it alive as long as the loop.
    private let uring: Unmanaged<URingSelector>?
    /// Which backend this loop runs on.
    public var backend: EventsBackend.Kind {
        switch selector {
        case .epoll: .epoll
        case .ioURing: .ioURing
        }
    }
    var handlers = SlotTable<any EventHandler>()
    /// The same handlers by slot index, for dispatch without reference counting (see `EventCallee`).
    private var callees: [EventCallee] = []
    /// Handlers deregistered or replaced, and connections' handlers let go, during this turn: released when the next
    /// turn begins, so that none is freed under one of its own callbacks (dispatch does not retain them).
    private var retired = RetiredObjects()
    var timers = TimerQueue()
    /// Monotonic nanoseconds, refreshed once per iteration (after each wait).
    public private(set) var now: UInt64
    /// The loop's read buffer, shared by all its connections: contents are valid only during one callback.
    public let readBuffer: UnsafeMutableRawBufferPointer
    /// A connection reports `writabilityChanged(false)` when its unsent bytes exceed this.
    public var highWaterMark = 256 * 1024
    /// Unsent bytes one connection may hold (every connection, whatever its handler does): past it the peer is
    /// not reading and the connection is closed with `Errno.noBufferSpace`. Back-pressure keeps a well-behaved
    /// relay near `highWaterMark`; this bound is the backstop against one that never stops writing.
    public var maxPendingBytes = 4 * 1024 * 1024
    /// Reads per readiness event before yielding to other connections.
    public var readsPerEvent = 16

    private let tasks = Mutex<[@Sendable () -> Void]>([])
    private var runningTasks: [@Sendable () -> Void] = []
    private let sleeping = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let loopThread = Atomic<UInt>(0)
    private var deferred: [UInt64] = []
    /// Registrations whose output goes out with the next wait (completion I/O): everything they were given during
    /// this turn leaves in one send.
    private var sendsBeforeWait: [UInt64] = []
    private var deferredRunning: [UInt64] = []
    private let wake: FileDescriptor
    private var wakeToken: UInt64 = 0

    /// A loop on `backend` (`.processDefault`: `RTC_EVENTS` from the environment, else epoll). `.auto` takes
    /// io_uring when this machine allows it and epoll otherwise; an explicit `.ioURing` that cannot run throws.
    /// `receiveBuffers`: the io_uring loop's provided buffers for connections doing completion I/O (made when
    /// the first one switches; count a power of two).
    public init(
        readBufferSize: Int = 64 * 1024, eventCapacity: Int = 1024, backend: EventsBackend = .processDefault,
        receiveBuffers: (count: Int, size: Int) = (64, 64 * 1024)
    )
        throws(Errno)
    {
        switch backend.resolved().kind {
        case .epoll:
            selector = .epoll(try EpollSelector(capacity: eventCapacity))
            uring = nil
        case .ioURing:
            let ring = try URingSelector(
                capacity: eventCapacity, receiveBufferCount: receiveBuffers.count,
                receiveBufferSize: receiveBuffers.size)
            selector = .ioURing(ring)
            uring = Unmanaged.passUnretained(ring)
        }
        wake = try FileDescriptor.eventFD()
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        now = monotonicNanoseconds()
        deferred.reserveCapacity(1024)
        sendsBeforeWait.reserveCapacity(1024)
        deferredRunning.reserveCapacity(1024)
        callees.reserveCapacity(1024)
        tasks.withLock { $0.reserveCapacity(1024) }
        runningTasks.reserveCapacity(1024)
        outputBuffers.reserveCapacity(Self.outputBufferCacheLimit)
        wakeToken = try register(wake, interest: .readable, handler: Waker(wake))
    }

    deinit {
        retired.free()
        for buffer in outputBuffers { buffer.deallocate() }
        readBuffer.deallocate()
        wake.close()
        selector.close()
    }

    /// Whether the caller runs on this loop's thread.
    public var isInLoop: Bool { loopThread.load(ordering: .acquiring) == threadID() }

    // MARK: Registrations

    /// Registers `fd` (edge-triggered) and returns its token. The handler is retained until `deregister`.
    public func register(_ fd: FileDescriptor, interest: Interest, handler: any EventHandler) throws(Errno) -> UInt64 {
        let token = handlers.insert(handler)
        let index = SlotTable<any EventHandler>.index(token)
        if index == callees.count {
            callees.append(EventCallee(handler))
        } else {
            callees[index] = EventCallee(handler)
        }
        do {
            try selector.register(fd, interest: interest, token: token)
        } catch {
            if let removed = handlers.take(token) { retired.keep(removed) }
            throw error
        }
        return token
    }

    /// Changes the interest of a registration.
    public func modify(_ fd: FileDescriptor, token: UInt64, interest: Interest) throws(Errno) {
        try selector.modify(fd, interest: interest, token: token)
    }

    /// Forgets a registration; later events carrying `token` are dropped. Pass `willClose: true` when the caller
    /// closes `fd` right after (closing removes it from epoll, saving the `epoll_ctl` call).
    public func deregister(_ fd: FileDescriptor, token: UInt64, willClose: Bool) {
        deregister(fd, token: token, willClose: willClose, receiveArmed: true, sendInFlight: true)
    }

    /// `deregister`, told which of a completion-I/O registration's receive and send are in flight: on io_uring only
    /// those are cancelled (ignored otherwise).
    func deregister(_ fd: FileDescriptor, token: UInt64, willClose: Bool, receiveArmed: Bool, sendInFlight: Bool) {
        guard let removed = handlers.take(token) else { return }
        retired.keep(removed)
        if case .ioURing(let selector) = selector {
            try? selector.deregister(fd, token: token, receiveArmed: receiveArmed, sendInFlight: sendInFlight)
        } else {
            try? selector.deregister(fd, token: token, willClose: willClose)
        }
    }

    /// Runs `body` on the io_uring selector, not retained around the call (see `uring`); nil on an epoll loop.
    @inline(__always)
    private func withRing<Result>(_ body: (URingSelector) throws(Errno) -> Result) throws(Errno) -> Result? {
        guard let uring else { return nil }
        let outcome: Swift.Result<Result, Errno> = uring._withUnsafeGuaranteedRef { ring in
            do throws(Errno) { return .success(try body(ring)) } catch { return .failure(error) }
        }
        return try outcome.get()
    }

    /// Switches a registration to completion I/O (io_uring loops only; false on epoll or when the loop cannot):
    /// see `Connection.switchToCompletionIO`.
    func switchToCompletionIO(_ fd: FileDescriptor, token: UInt64) -> Bool {
        (try? withRing { ring throws(Errno) in try ring.switchToCompletionIO(fd, token: token) }) != nil
    }

    /// Switches a listening registration to a multishot accept (io_uring loops only; false on epoll or when the
    /// ring cannot): see `Listener`. Armed again with `armAccept`, cancelled with `cancelReceive`.
    func acceptByCompletion(_ fd: FileDescriptor, token: UInt64) -> Bool {
        (try? withRing { ring throws(Errno) in try ring.acceptByCompletion(fd, token: token) }) != nil
    }

    func armAccept(_ fd: FileDescriptor, token: UInt64) -> Bool {
        (try? withRing { ring throws(Errno) in try ring.armAccept(fd, token: token) }) != nil
    }

    /// Arms the multishot receive of a registration doing completion I/O.
    func armReceive(_ fd: FileDescriptor, token: UInt64) throws(Errno) {
        _ = try withRing { ring throws(Errno) in try ring.armReceive(fd, token: token) }
    }

    /// Cancels it (the receive ends with a receipt of ECANCELED, or of what it was completing).
    func cancelReceive(_ token: UInt64) {
        _ = try? withRing { ring throws(Errno) in try ring.cancelReceive(token) }
    }

    /// Calls the registration's `beforeWait` just before the loop's next wait (once per call).
    func sendBeforeWait(_ token: UInt64) {
        sendsBeforeWait.append(token)
    }

    /// Submits a send for a registration doing completion I/O (io_uring only).
    func submitSend(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, token: UInt64, more: Bool) throws(Errno) {
        guard try withRing({ ring throws(Errno) in try ring.send(fd, bytes, token: token, more: more) }) != nil else {
            throw Errno.notSupported
        }
    }

    /// Closes a deregistered descriptor of a connection doing completion I/O: with the next submission on io_uring
    /// (no close(2) of its own), at once on epoll.
    func closeByCompletion(_ fd: FileDescriptor) {
        if (try? withRing { ring in ring.close(fd) }) == nil { fd.close() }
    }

    /// Shuts down the writing side with the next submission (io_uring); false when it must be done at once.
    func shutdownWriteByCompletion(_ fd: FileDescriptor) -> Bool {
        (try? withRing { ring in ring.shutdownWrite(fd) }) ?? false
    }

    /// Lends the provided buffer that `bytes` (received by completion) lie in to a send of them: its id, or -1 when
    /// they are elsewhere, the loop is on epoll, or too many buffers are lent. Ended by `giveBackReceiveBuffer`.
    func lendReceiveBuffer(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        (try? withRing { ring in ring.lend(bytes) }) ?? -1
    }

    func giveBackReceiveBuffer(_ id: Int32) {
        _ = try? withRing { ring in ring.giveBack(id) }
    }

    /// Hands over the memory of a send still in flight whose connection closed (freed when the send completes).
    func orphanSend(_ memory: UnsafeMutableRawPointer, token: UInt64) {
        _ = try? withRing { ring in ring.orphan(memory, token: token) }
    }

    // MARK: Output buffers

    /// Size of the cached output buffers: a connection's first pending buffer comes from the cache.
    static let outputBufferSize = 4096
    /// Free output buffers of `outputBufferSize` bytes, kept for the next connection that needs one (at most
    /// `outputBufferCacheLimit`): a relay that sends by completion takes one per message burst.
    private var outputBuffers: [UnsafeMutableRawPointer] = []
    static let outputBufferCacheLimit = 256

    func takeOutputBuffer() -> UnsafeMutableRawPointer {
        outputBuffers.popLast() ?? .allocate(byteCount: Self.outputBufferSize, alignment: 8)
    }

    func giveBackOutputBuffer(_ buffer: UnsafeMutableRawPointer) {
        if outputBuffers.count < Self.outputBufferCacheLimit {
            outputBuffers.append(buffer)
        } else {
            buffer.deallocate()
        }
    }

    /// Gives a live registration to another handler (same fd, interest and token): no `epoll_ctl` needed.
    func replaceHandler(_ token: UInt64, with handler: any EventHandler) -> Bool {
        guard let old = handlers.replace(token, with: handler) else { return false }
        callees[SlotTable<any EventHandler>.index(token)] = EventCallee(handler)
        retired.keep(old)
        return true
    }

    /// Keeps `object` alive until the next turn begins: a reference let go while the object may be running.
    func retire(_ object: consuming AnyObject) {
        retired.keep(object)
    }

    /// The live registration of `token`, to call without reference counting.
    @inline(__always)
    private func callee(_ token: UInt64) -> EventCallee? {
        handlers.contains(token) ? callees[SlotTable<any EventHandler>.index(token)] : nil
    }

    /// Delivers `ready([.readable, .readHangup])` to the registration on the next iteration, if it is still
    /// registered then. Edge-triggered handlers that stop before `EAGAIN` (fairness, paused reading) use this.
    public func retryLater(_ token: UInt64) {
        deferred.append(token)
    }

    /// Number of live registrations (including the loop's own wake-up eventfd).
    public var registrationCount: Int { handlers.count }

    // MARK: Timers

    /// Calls `handler.timerFired(tag:)` at `deadline` (monotonic nanoseconds). Allocates nothing in steady state.
    @discardableResult
    public func schedule(deadline: UInt64, handler: any TimerHandler, tag: UInt64 = 0) -> TimerID {
        timers.schedule(deadline: deadline, handler: handler, tag: tag, closure: nil)
    }

    @discardableResult
    public func schedule(after delay: Duration, handler: any TimerHandler, tag: UInt64 = 0) -> TimerID {
        timers.schedule(deadline: now &+ nanoseconds(delay), handler: handler, tag: tag, closure: nil)
    }

    /// Closure convenience for control-plane code (allocates the closure).
    @discardableResult
    public func schedule(after delay: Duration, _ body: @escaping () -> Void) -> TimerID {
        timers.schedule(deadline: now &+ nanoseconds(delay), handler: nil, tag: 0, closure: body)
    }

    /// Cancels a timer; returns whether it was still pending.
    @discardableResult
    public func cancel(_ timer: TimerID) -> Bool { timers.cancel(timer) }

    /// Pending timers.
    public var timerCount: Int { timers.count }

    // MARK: Cross-thread tasks

    /// Runs `task` on the loop's thread, from any thread. Returns false (and drops the task) once the loop stopped.
    /// The eventfd is written only when the loop may be sleeping in `epoll_wait`.
    @discardableResult
    public func execute(_ task: @Sendable @escaping () -> Void) -> Bool {
        guard !stopped.load(ordering: .acquiring) else { return false }
        tasks.withLock { $0.append(task) }
        if sleeping.exchange(false, ordering: .acquiringAndReleasing) {
            wake.signalEvent()
        }
        return true
    }

    /// Asks the loop to stop, from any thread. `run()` returns after the current iteration; see `run()`.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake.signalEvent()
    }

    // MARK: Running

    /// Runs the loop on the calling thread until `stop()`.
    ///
    /// On stop: tasks submitted before stop run once more, then every registration gets `loopStopping()` (connections
    /// and listeners close their fds and report `closed`), pending timers are dropped, and later `execute` calls
    /// return false.
    public func run() throws(Errno) {
        loopThread.store(threadID(), ordering: .releasing)
        now = monotonicNanoseconds()
        // The backend is chosen once per run, not per turn: binding the enum's payload retains it.
        switch selector {
        case .epoll(let epoll): try turns(epoll)
        case .ioURing(let ring): try turns(ring)
        }
        stopped.store(true, ordering: .releasing)
        runTasks()
        for handler in handlers.liveValues where !(handler is Waker) {
            handler.loopStopping()
        }
        selector.flush()
        timers = TimerQueue(capacity: 0)
        deferred.removeAll()
        releaseRetired()
    }

    /// Releases what was retired (one by one, outside any access to the list: a deinitializer may retire more).
    @inline(__always)
    private func releaseRetired() {
        while retired.takeLast() != nil {}
    }

    /// Loop turns until `stop()`: tasks, deferred retries, timers, then the wait and its events.
    private func turns<S: Selector>(_ source: S) throws(Errno) {
        while !stopRequested.load(ordering: .acquiring) {
            releaseRetired()
            runTasks()
            runDeferred()
            runTimers()
            if stopRequested.load(ordering: .acquiring) { break }
            if !sendsBeforeWait.isEmpty {
                for token in sendsBeforeWait { callee(token)?.beforeWait() }
                sendsBeforeWait.removeAll(keepingCapacity: true)
            }
            var timeout = timeoutMilliseconds()
            sleeping.store(true, ordering: .sequentiallyConsistent)
            if timeout != 0 && tasks.withLock({ !$0.isEmpty }) { timeout = 0 }
            let count = try source.wait(timeoutMilliseconds: timeout)
            sleeping.store(false, ordering: .releasing)
            now = monotonicNanoseconds()
            for index in 0..<count {
                let (token, events) = source.event(at: index)
                // A token whose generation no longer matches belongs to a closed (maybe reused) fd: dropped.
                guard let handler = callee(token) else { continue }
                if events.contains(.received) {
                    handler.completed(source.receipt(at: index))
                } else if events.contains(.sent) {
                    handler.sent(source.receipt(at: index))
                } else {
                    handler.ready(events)
                }
            }
        }
    }

    private func timeoutMilliseconds() -> Int32 {
        if !deferred.isEmpty { return 0 }
        guard let deadline = timers.nextDeadline else { return -1 }
        if deadline <= now { return 0 }
        // Round up so a timer never fires early.
        let milliseconds = (deadline - now + 999_999) / 1_000_000
        return Int32(min(milliseconds, UInt64(Int32.max)))
    }

    private func runTasks() {
        tasks.withLock { swap(&$0, &runningTasks) }
        guard !runningTasks.isEmpty else { return }
        for task in runningTasks { task() }
        runningTasks.removeAll(keepingCapacity: true)
    }

    private func runDeferred() {
        guard !deferred.isEmpty else { return }
        swap(&deferred, &deferredRunning)
        for token in deferredRunning {
            callee(token)?.ready([.readable, .readHangup])
        }
        deferredRunning.removeAll(keepingCapacity: true)
    }

    private func runTimers() {
        guard timers.count > 0 else { return }
        now = monotonicNanoseconds()
        while let fired = timers.popExpired(now: now) {
            switch fired {
            case .handler(let handler, let tag): handler.timerFired(tag: tag)
            case .closure(let body): body()
            }
        }
    }
}

/// The loop's `retired` objects: references kept until the next turn begins, in memory of the loop's own (an array's
/// `removeAll(keepingCapacity:)` went through its generic range replacement once per turn).
struct RetiredObjects {
    private var objects = UnsafeMutablePointer<AnyObject>.allocate(capacity: 64)
    private var count = 0
    private var capacity = 64

    mutating func keep(_ object: consuming AnyObject) {
        if count == capacity {
            let larger = UnsafeMutablePointer<AnyObject>.allocate(capacity: capacity * 2)
            larger.moveInitialize(from: objects, count: count)
            objects.deallocate()
            objects = larger
            capacity *= 2
        }
        (objects + count).initialize(to: object)
        count += 1
    }

    /// The object kept last, now the caller's.
    @inline(__always)
    mutating func takeLast() -> AnyObject? {
        guard count > 0 else { return nil }
        count -= 1
        return (objects + count).move()
    }

    func free() {
        objects.deinitialize(count: count)
        objects.deallocate()
    }
}

/// A registration's handler, called without reference counting: its dynamic type (a metatype, which needs none) and
/// the object's address. Valid while the registration is live, and until the next turn begins once it is not (the
/// loop keeps what it let go in `retired`): dispatch retained and released every handler before.
struct EventCallee {
    let type: any EventHandler.Type
    let object: UnsafeMutableRawPointer

    init(_ handler: any EventHandler) {
        type = Swift.type(of: handler)
        object = Unmanaged.passUnretained(handler as AnyObject).toOpaque()
    }

    @inline(__always) func ready(_ events: ReadyEvents) { type.calling(object) { $0.ready(events) } }
    @inline(__always) func completed(_ receipt: Receipt) { type.calling(object) { $0.completed(receipt) } }
    @inline(__always) func sent(_ receipt: Receipt) { type.calling(object) { $0.sent(receipt) } }
    @inline(__always) func beforeWait() { type.calling(object) { $0.beforeWait() } }
}

extension EventHandler {
    /// Calls `body` with the handler at `object` (an instance of `Self`), not retained around the call.
    @inline(__always)
    static func calling(_ object: UnsafeMutableRawPointer, _ body: (Self) -> Void) {
        Unmanaged<Self>.fromOpaque(object)._withUnsafeGuaranteedRef(body)
    }
}

/// Drains the loop's wake-up eventfd; the wake itself is the point.
final class Waker: EventHandler {
    let fd: FileDescriptor
    init(_ fd: FileDescriptor) { self.fd = fd }
    func ready(_ events: ReadyEvents) { _ = fd.drainEvent() }
    func loopStopping() {}
}
