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
public final class URingSelector: Selector {
    /// The ring starts disabled: the loop's thread enables it on its first wait and becomes its single issuer
    /// (loops are made on one thread and run on another).
    static let setupFlags: IOURing.SetupFlags = [.singleIssuer, .cooperativeTaskRun, .taskRunFlag, .submitAll]
    /// Marks the user data of a removal (whose completion comes only when it fails). Tokens never have it set: their
    /// high half is a slot generation, which would need 2^31 reuses of one slot to reach it.
    static let removalTag: UInt64 = 1 << 63

    struct Registration {
        var fd: Int32
        var interest: Interest
        var token: UInt64
        /// The wait (`batch`) in which this registration's events were last reported, and where in `ready`: a
        /// second completion for it in the same wait is merged into the first.
        var batch: UInt32 = 0
        var position: Int32 = 0
    }

    let ring: IOURing
    private let completions: UnsafeMutablePointer<IOURing.Completion>
    private let ready: UnsafeMutablePointer<(token: UInt64, events: ReadyEvents)>
    private let capacity: Int
    /// Indexed by the token's slot index (the low 32 bits): what to re-arm when a multishot poll ends by itself.
    private var registrations: [Registration] = []
    private var batch: UInt32 = 0

    /// Why the io_uring backend cannot run here, or nil when it can.
    public static func unavailability() -> Errno? { IOURing.unavailability(flags: setupFlags) }

    public init(capacity: Int = 1024, entries: UInt32 = 4096) throws(Errno) {
        ring = try IOURing(entries: entries, flags: Self.setupFlags.union(.disabled), completionBatch: capacity)
        self.capacity = capacity
        completions = .allocate(capacity: capacity)
        ready = .allocate(capacity: capacity)
        registrations.reserveCapacity(1024)
    }

    deinit {
        completions.deallocate()
        ready.deallocate()
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

    public func register(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno) {
        try ring.pollMultishot(fd, events: Self.bits(interest), userData: token)
        let index = Self.index(token)
        while registrations.count <= index { registrations.append(Registration(fd: -1, interest: [], token: 0)) }
        registrations[index] = Registration(fd: fd.rawValue, interest: interest, token: token)
    }

    public func modify(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno) {
        try ring.pollRemove(token, userData: token | Self.removalTag)
        try register(fd, interest: interest, token: token)
    }

    public func deregister(_ fd: FileDescriptor, token: UInt64, willClose: Bool) throws(Errno) {
        let index = Self.index(token)
        if index < registrations.count && registrations[index].token == token {
            registrations[index] = Registration(fd: -1, interest: [], token: 0)
        }
        try ring.pollRemove(token, userData: token | Self.removalTag)
    }

    /// Submits what is queued and runs the completion work it causes (removals release their files): used when the
    /// loop stops, after its handlers closed their descriptors, since no later wait would submit them.
    public func flush() {
        guard ring.enabled else { return }
        for _ in 0..<4 {
            try? ring.submitAndWait(timeoutNanoseconds: 0)
            _ = ring.completions(into: completions, capacity: capacity)
            if ring.queued == 0 { break }
        }
    }

    public func wait(timeoutMilliseconds: Int32) throws(Errno) -> Int {
        if !ring.enabled { try ring.enable() }
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
            let token = completion.userData
            if token & Self.removalTag != 0 {
                // A removal that failed. EALREADY: the poll's wake-up was being completed; ask again next turn.
                if completion.result == -Errno.alreadyInProgress.code {
                    try? ring.pollRemove(token & ~Self.removalTag, userData: token)
                }
                continue
            }
            if token == 0 { continue }
            let events: ReadyEvents
            if completion.result < 0 {
                // ECANCELED: a removed poll. Any other error ends the poll: let the handler find it out by I/O.
                if completion.result == -Errno.cancelled.code { continue }
                events = [.readable, .writable, .error]
            } else {
                events = ReadyEvents(pollBits: UInt32(bitPattern: completion.result))
                if !completion.more { rearm(token) }
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

    /// A multishot poll the kernel ended by itself (the completion queue overflowed): armed again if still wanted.
    private func rearm(_ token: UInt64) {
        let index = Self.index(token)
        guard index < registrations.count, registrations[index].token == token else { return }
        let registration = registrations[index]
        try? ring.pollMultishot(
            FileDescriptor(registration.fd), events: Self.bits(registration.interest), userData: token)
    }

    @inline(__always)
    public func event(at index: Int) -> (token: UInt64, events: ReadyEvents) { ready[index] }

    public func close() { ring.close() }
}
