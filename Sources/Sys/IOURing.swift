// io_uring(7) through liburing: one ring at a stable heap address, typed submissions, batched completions, and a
// provided-buffer ring. The event loop's io_uring backend and the relay floor of rtc-bench are built on it.
import CLinux
import Glibc

/// An io_uring instance (liburing's `struct io_uring`, kept at a stable heap address as liburing requires).
///
/// Submissions only fill the submission queue; nothing reaches the kernel before `submit()` or
/// `submitAndWait(...)`, so every operation of one loop turn goes in one `io_uring_enter(2)`.
/// Thread rule: with `.singleIssuer` only the thread that enabled the ring may submit (see `enable()`).
public final class IOURing {
    /// Flags of io_uring_setup(2).
    public struct SetupFlags: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Start disabled: submissions queue up until `enable()`, whose thread becomes the single issuer.
        public static let disabled = SetupFlags(rawValue: UInt32(IORING_SETUP_R_DISABLED))
        public static let submitAll = SetupFlags(rawValue: UInt32(IORING_SETUP_SUBMIT_ALL))
        public static let cooperativeTaskRun = SetupFlags(rawValue: UInt32(IORING_SETUP_COOP_TASKRUN))
        /// Only one thread submits: the kernel skips the locking multi-issuer rings need.
        public static let singleIssuer = SetupFlags(rawValue: UInt32(IORING_SETUP_SINGLE_ISSUER))
        /// Completion work runs when the issuer asks for events, not at interrupt time (needs `.singleIssuer`).
        public static let deferTaskRun = SetupFlags(rawValue: UInt32(IORING_SETUP_DEFER_TASKRUN))
        /// Completion work runs when the thread next enters the kernel, without interrupting it.
        public static let taskRunFlag = SetupFlags(rawValue: UInt32(IORING_SETUP_TASKRUN_FLAG))
    }

    /// poll(2) bits as io_uring's poll operations report them.
    public struct PollEvents: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let input = PollEvents(rawValue: UInt32(POLLIN))
        public static let output = PollEvents(rawValue: UInt32(POLLOUT))
        public static let error = PollEvents(rawValue: UInt32(POLLERR))
        public static let hangup = PollEvents(rawValue: UInt32(POLLHUP))
        /// POLLRDHUP (a GNU extension, so not in the Glibc module): the peer shut down its writing side.
        public static let readHangup = PollEvents(rawValue: 0x2000)
    }

    /// One completion, copied out of the completion queue.
    public struct Completion: Sendable {
        public var userData: UInt64
        /// The operation's result: a count or value (≥ 0) or a negated errno.
        public var result: Int32
        public var flags: UInt32
        public init(userData: UInt64, result: Int32, flags: UInt32) {
            self.userData = userData
            self.result = result
            self.flags = flags
        }
        /// A multishot operation stays armed and will complete again (IORING_CQE_F_MORE).
        @inline(__always) public var more: Bool { flags & UInt32(IORING_CQE_F_MORE) != 0 }
        /// An incrementally consumed provided buffer (`ProvidedBufferRing.incremental`) stays in the kernel's use
        /// after this completion (IORING_CQE_F_BUF_MORE, 1 << 4; not in liburing 2.3's header).
        @inline(__always) public var bufferMore: Bool { flags & (1 << 4) != 0 }
        /// The provided buffer the kernel picked, for receives with buffer selection.
        @inline(__always) public var bufferID: UInt16? {
            flags & UInt32(IORING_CQE_F_BUFFER) != 0 ? UInt16(truncatingIfNeeded: flags >> 16) : nil
        }
        /// The error of a failed operation.
        @inline(__always) public var errno: Errno? { result < 0 ? Errno(-result) : nil }
    }

    @usableFromInline let ring: UnsafeMutablePointer<io_uring>
    public let flags: SetupFlags
    public private(set) var enabled: Bool
    private let cqes: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    private let cqeCapacity: Int
    private var closed = false

    /// io_uring_queue_init_params(3) with `entries` submission slots (the completion queue gets twice as many).
    public init(entries: UInt32, flags: SetupFlags, completionBatch: Int = 1024) throws(Errno) {
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        var params = io_uring_params()
        params.flags = flags.rawValue
        let result = io_uring_queue_init_params(entries, ring, &params)
        if result < 0 {
            ring.deallocate()
            throw Errno(-result)
        }
        self.flags = flags
        enabled = !flags.contains(.disabled)
        cqeCapacity = completionBatch
        cqes = .allocate(capacity: completionBatch)
        cqes.initialize(repeating: nil, count: completionBatch)
    }

    deinit {
        close()
        cqes.deallocate()
        ring.deallocate()
    }

    /// The ring's own descriptor.
    public var descriptor: FileDescriptor { FileDescriptor(ring.pointee.ring_fd) }

    /// Releases the ring: every request still armed on it is dropped (and its file references with it).
    public func close() {
        guard !closed else { return }
        closed = true
        io_uring_queue_exit(ring)
    }

    /// Why io_uring cannot be used here with `flags` (ENOSYS on old kernels, EPERM under seccomp or
    /// `kernel.io_uring_disabled`, EINVAL for flags the kernel does not know), or nil when it can.
    public static func unavailability(flags: SetupFlags) -> Errno? {
        do {
            let probe = try IOURing(entries: 4, flags: flags, completionBatch: 1)
            probe.close()
            return nil
        } catch {
            return error
        }
    }

    /// io_uring_enable_rings(3) for a ring set up `.disabled`: the calling thread becomes its single issuer.
    public func enable() throws(Errno) {
        guard !enabled else { return }
        let result = rtc_io_uring_enable_rings(ring)
        if result < 0 { throw Errno(-result) }
        enabled = true
    }

    // MARK: Submissions

    /// A free submission slot; when the queue is full, what is queued is submitted first (if the ring is enabled).
    @inline(__always)
    func nextSQE() throws(Errno) -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(ring) { return sqe }
        guard enabled else { throw Errno.noBufferSpace }
        _ = try submit()
        guard let sqe = io_uring_get_sqe(ring) else { throw Errno.noBufferSpace }
        return sqe
    }

    /// A multishot poll (IORING_POLL_ADD_MULTI): one completion per wake-up, edge-triggered, until removed.
    public func pollMultishot(_ fd: FileDescriptor, events: PollEvents, userData: UInt64) throws(Errno) {
        let sqe = try nextSQE()
        io_uring_prep_poll_multishot(sqe, fd.rawValue, events.rawValue)
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// Removes the poll armed with `target`; it completes with ECANCELED. The removal posts a completion (with
    /// `userData`) only when it fails: ENOENT (no such poll) or EALREADY (the poll is completing: try again).
    public func pollRemove(_ target: UInt64, userData: UInt64 = 0) throws(Errno) {
        let sqe = try nextSQE()
        io_uring_prep_poll_remove(sqe, target)
        io_uring_sqe_set_data64(sqe, userData)
        io_uring_sqe_set_flags(sqe, rtc_IOSQE_CQE_SKIP_SUCCESS())
    }

    /// Cancels every request armed with `target` (IORING_OP_ASYNC_CANCEL). The cancel posts a completion (with
    /// `userData`) only when it fails: ENOENT (nothing armed with `target`) or EALREADY (completing: try again).
    public func cancel(_ target: UInt64, userData: UInt64 = 0) throws(Errno) {
        let sqe = try nextSQE()
        io_uring_prep_cancel64(sqe, target, Int32(IORING_ASYNC_CANCEL_ALL))
        io_uring_sqe_set_data64(sqe, userData)
        io_uring_sqe_set_flags(sqe, rtc_IOSQE_CQE_SKIP_SUCCESS())
    }

    /// A multishot accept: one completion per accepted connection (the result is the new descriptor, made
    /// non-blocking and close-on-exec).
    public func acceptMultishot(_ fd: FileDescriptor, userData: UInt64) throws(Errno) {
        let sqe = try nextSQE()
        io_uring_prep_multishot_accept(
            sqe, fd.rawValue, nil, nil, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// One receive into `buffer` (which must stay valid until it completes).
    public func receive(
        _ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, userData: UInt64
    ) throws(Errno) {
        let sqe = try nextSQE()
        io_uring_prep_recv(sqe, fd.rawValue, buffer.baseAddress, buffer.count, 0)
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// A multishot receive that takes its buffers from provided-buffer group `group` (IORING_RECV_MULTISHOT with
    /// IOSQE_BUFFER_SELECT): one completion per arrival, carrying the buffer id, until it ends (no `more`).
    public func receiveMultishot(_ fd: FileDescriptor, group: UInt16, userData: UInt64) throws(Errno) {
        let sqe = try nextSQE()
        io_uring_prep_recv_multishot(sqe, fd.rawValue, nil, 0, 0)
        sqe.pointee.buf_group = group
        io_uring_sqe_set_flags(sqe, rtc_IOSQE_BUFFER_SELECT())
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// One send of `bytes` (which must stay valid until it completes), without SIGPIPE.
    public func send(
        _ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, userData: UInt64, more: Bool = false
    )
        throws(Errno)
    {
        let sqe = try nextSQE()
        let flags = Int32(MSG_NOSIGNAL) | (more ? Int32(MSG_MORE) : 0)
        io_uring_prep_send(sqe, fd.rawValue, bytes.baseAddress, bytes.count, flags)
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// shutdown(2) of the writing side. `quiet`: a completion is posted only when it fails.
    public func shutdownWrite(_ fd: FileDescriptor, userData: UInt64, quiet: Bool = false) throws(Errno) {
        let sqe = try nextSQE()
        io_uring_prep_shutdown(sqe, fd.rawValue, Int32(SHUT_WR))
        io_uring_sqe_set_data64(sqe, userData)
        if quiet { io_uring_sqe_set_flags(sqe, rtc_IOSQE_CQE_SKIP_SUCCESS()) }
    }

    /// close(2) of `fd`, done when submitted; a completion (with `userData`) is posted only when it fails. The
    /// caller must not use `fd` after this call.
    public func close(_ fd: FileDescriptor, userData: UInt64) throws(Errno) {
        let sqe = try nextSQE()
        io_uring_prep_close(sqe, fd.rawValue)
        io_uring_sqe_set_data64(sqe, userData)
        io_uring_sqe_set_flags(sqe, rtc_IOSQE_CQE_SKIP_SUCCESS())
    }

    /// Submits what is queued without waiting. Returns how many were submitted.
    @discardableResult
    public func submit() throws(Errno) -> Int {
        while true {
            let result = io_uring_submit(ring)
            if result >= 0 { return Int(result) }
            if result == -EINTR { continue }
            if result == -EBUSY || result == -EAGAIN { return 0 }  // completions must be reaped first
            throw Errno(-result)
        }
    }

    /// Submits what is queued and waits until at least one completion is ready or `timeoutNanoseconds` passed
    /// (nil: no limit; 0: do not wait, but run deferred completion work). A signal or the timeout returns early;
    /// completions are then read with `completions(into:)`.
    public func submitAndWait(timeoutNanoseconds: UInt64?) throws(Errno) {
        let result: Int32
        if let timeout = timeoutNanoseconds {
            if timeout == 0 {
                result = io_uring_submit_and_get_events(ring)
            } else {
                var ts = __kernel_timespec(
                    tv_sec: Int64(timeout / 1_000_000_000), tv_nsec: Int64(timeout % 1_000_000_000))
                var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
                result = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
            }
        } else {
            result = io_uring_submit_and_wait(ring, 1)
        }
        if result >= 0 || result == -ETIME || result == -EINTR || result == -EBUSY || result == -EAGAIN { return }
        throw Errno(-result)
    }

    /// Copies up to `capacity` ready completions into `buffer` and releases their queue slots.
    public func completions(into buffer: UnsafeMutablePointer<Completion>, capacity: Int) -> Int {
        let count = Int(rtc_io_uring_peek_batch(ring, cqes, UInt32(min(capacity, cqeCapacity))))
        for index in 0..<count {
            let cqe = cqes[index].unsafelyUnwrapped.pointee
            buffer[index] = Completion(userData: cqe.user_data, result: cqe.res, flags: cqe.flags)
        }
        if count > 0 { io_uring_cq_advance(ring, UInt32(count)) }
        return count
    }

    /// Submissions queued and not yet given to the kernel.
    public var queued: Int { Int(io_uring_sq_ready(ring)) }

    /// Completions waiting in the completion queue (no system call).
    public var ready: Int { Int(io_uring_cq_ready(ring)) }

    /// Whether the kernel supports `opcode` (io_uring_get_probe_ring(3)).
    public func supports(_ opcode: io_uring_op) -> Bool {
        guard let probe = io_uring_get_probe_ring(ring) else { return false }
        defer { io_uring_free_probe(probe) }
        return io_uring_opcode_supported(probe, Int32(opcode.rawValue)) != 0
    }
}

/// A ring of provided buffers registered with one `IOURing` under a group id: the kernel picks a buffer for
/// each receive with buffer selection, and the owner hands it back with `recycle` once the bytes are used.
///
/// Incremental (IOU_PBUF_RING_INC, Linux 6.12+, asked for with `incremental: true`): a receive takes only the bytes
/// it needs from the buffer at the ring's head, so one large buffer holds many small arrivals, one after the other;
/// a completion with `bufferMore` means the kernel goes on filling that buffer. `take` returns where each
/// completion's bytes are; a buffer is recycled once a completion without `bufferMore` released it.
///
/// liburing 2.3 has no `io_uring_setup_buf_ring`: the ring memory is mmapped here and registered by hand.
public final class ProvidedBufferRing {
    public let group: UInt16
    public let bufferSize: Int
    public let count: Int
    /// Whether the kernel consumes buffers incrementally (it may refuse: older kernels).
    public let incremental: Bool
    /// Incremental: bytes of each buffer already handed out by `take`.
    private let consumed: UnsafeMutablePointer<Int32>
    private let owner: IOURing
    private let ringMemory: UnsafeMutableRawPointer
    private let ringBytes: Int
    private let buffers: UnsafeMutableRawPointer
    private let mask: Int32
    private var pending: Int32 = 0
    /// Sends reading from each buffer (`lend`), and whether the kernel was done with it meanwhile (then it is
    /// recycled when the last of those sends completes).
    private let lends: UnsafeMutablePointer<Int32>
    private let heldBack: UnsafeMutablePointer<Bool>
    /// Buffers with a lend out: at most half the ring, so that sends stuck on peers that do not read cannot take
    /// every buffer from the receives.
    public private(set) var lentBuffers = 0
    /// Lends made, and the most buffers lent at once (for tests and diagnostics).
    public private(set) var lendCount = 0
    public private(set) var mostLentBuffers = 0

    /// `count` must be a power of two ≤ 32768. `incremental`: ask for incremental consumption, and fall back to
    /// whole buffers where the kernel does not have it.
    public init(ring: IOURing, group: UInt16, count: Int, bufferSize: Int, incremental: Bool = false) throws(Errno) {
        precondition(count > 0 && count & (count - 1) == 0 && count <= 32768, "count must be a power of two")
        self.group = group
        self.count = count
        self.bufferSize = bufferSize
        owner = ring
        ringBytes = count * MemoryLayout<io_uring_buf>.stride
        guard
            let memory = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            memory != MAP_FAILED
        else { throw Errno(rtc_errno()) }
        ringMemory = memory
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: memory))
        registration.ring_entries = UInt32(count)
        registration.bgid = group
        // IOU_PBUF_RING_INC in the field newer headers call `flags` (liburing 2.3: `pad`).
        registration.pad = incremental ? 2 : 0
        var result = io_uring_register_buf_ring(ring.ring, &registration, 0)
        if result == -EINVAL && incremental {
            registration.pad = 0
            result = io_uring_register_buf_ring(ring.ring, &registration, 0)
        }
        if result < 0 {
            munmap(memory, ringBytes)
            throw Errno(-result)
        }
        self.incremental = registration.pad != 0
        consumed = .allocate(capacity: count)
        consumed.initialize(repeating: 0, count: count)
        lends = .allocate(capacity: count)
        lends.initialize(repeating: 0, count: count)
        heldBack = .allocate(capacity: count)
        heldBack.initialize(repeating: false, count: count)
        buffers = .allocate(byteCount: count * bufferSize, alignment: 64)
        mask = Int32(count - 1)
        let bufRing = memory.assumingMemoryBound(to: io_uring_buf_ring.self)
        io_uring_buf_ring_init(bufRing)
        for id in 0..<count {
            io_uring_buf_ring_add(bufRing, buffers + id * bufferSize, UInt32(bufferSize), UInt16(id), mask, Int32(id))
        }
        io_uring_buf_ring_advance(bufRing, Int32(count))
    }

    deinit {
        _ = io_uring_unregister_buf_ring(owner.ring, Int32(group))
        munmap(ringMemory, ringBytes)
        buffers.deallocate()
        consumed.deallocate()
        lends.deallocate()
        heldBack.deallocate()
    }

    /// The buffer `pointer` points into, if it is one of this ring's.
    @inline(__always)
    public func id(containing pointer: UnsafeRawPointer) -> UInt16? {
        let offset = pointer - UnsafeRawPointer(buffers)
        guard offset >= 0 && offset < count * bufferSize else { return nil }
        return UInt16(truncatingIfNeeded: offset / bufferSize)
    }

    /// Keeps buffer `id` from being recycled until `giveBack(id)`: a send reads received bytes where they are.
    /// False (nothing changes) when half the ring is lent already.
    @inline(__always)
    public func lend(_ id: UInt16) -> Bool {
        let index = Int(id)
        if lends[index] == 0 {
            guard lentBuffers < count / 2 else { return false }
            lentBuffers += 1
            mostLentBuffers = max(mostLentBuffers, lentBuffers)
        }
        lends[index] += 1
        lendCount &+= 1
        return true
    }

    /// Ends a `lend`: the last one recycles the buffer if the kernel is done with it (`release`).
    @inline(__always)
    public func giveBack(_ id: UInt16) {
        let index = Int(id)
        lends[index] -= 1
        guard lends[index] == 0 else { return }
        lentBuffers -= 1
        if heldBack[index] {
            heldBack[index] = false
            recycle(id)
        }
    }

    /// The kernel is done with buffer `id` (`take` said `released`) and so are its bytes' readers: recycled now, or
    /// when its last lend comes back.
    @inline(__always)
    public func release(_ id: UInt16) {
        if lends[Int(id)] > 0 {
            heldBack[Int(id)] = true
        } else {
            recycle(id)
        }
    }

    /// The bytes a completion with buffer `id` received.
    @inline(__always)
    public func bytes(_ id: UInt16, count received: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: buffers + Int(id) * bufferSize, count: received)
    }

    /// The bytes of one completion with buffer `id` and result `received`, and whether the buffer is released
    /// (to be recycled once those bytes are used): always for whole buffers; incremental ones when the completion
    /// has no `bufferMore`.
    @inline(__always)
    public func take(
        _ id: UInt16, count received: Int, bufferMore: Bool
    ) -> (
        bytes: UnsafeMutableRawBufferPointer, released: Bool
    ) {
        guard incremental else { return (bytes(id, count: received), true) }
        let offset = Int(consumed[Int(id)])
        let bytes = UnsafeMutableRawBufferPointer(start: buffers + Int(id) * bufferSize + offset, count: received)
        consumed[Int(id)] = bufferMore ? Int32(offset + received) : 0
        return (bytes, !bufferMore)
    }

    /// Gives buffer `id` back to the kernel (visible after `commit()`).
    @inline(__always)
    public func recycle(_ id: UInt16) {
        let bufRing = ringMemory.assumingMemoryBound(to: io_uring_buf_ring.self)
        io_uring_buf_ring_add(bufRing, buffers + Int(id) * bufferSize, UInt32(bufferSize), id, mask, pending)
        pending += 1
    }

    /// Publishes the buffers recycled since the last commit.
    @inline(__always)
    public func commit() {
        guard pending > 0 else { return }
        io_uring_buf_ring_advance(ringMemory.assumingMemoryBound(to: io_uring_buf_ring.self), pending)
        pending = 0
    }
}
