// Counting malloc calls of a whole process (every thread), for the steady-state allocation tests.
import Glibc
import Synchronization

/// Environment variables that tell a child test run to act as an allocation probe.
public enum AllocationProbeKey {
    public static let httpServer = "HTTPSERVER_ALLOCATION_PROBE"
    public static let gateway = "GATEWAY_ALLOCATION_PROBE"
    public static let forwarding = "FORWARDING_ALLOCATION_PROBE"
}

/// Counts `malloc` calls through glibc's `__malloc_hook`, honoured by the preloaded libc_malloc_debug.so, in a child
/// run of a test binary that runs only its allocation probe (see Tests/ForwardingTests/AllocationTests.swift for
/// why this way). Counts the allocations of the threads named to `counted` (the test runner's own threads may
/// allocate at any time, e.g. to report progress, and would make a zero count flaky).
public enum MallocCounter {
    public static let debugLibrary = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"

    typealias MallocHook = @convention(c) (Int, UnsafeRawPointer?) -> UnsafeMutableRawPointer?
    // Written by the hook on whichever thread allocates; both the loop thread and the client thread may run
    // it, so the count is atomic and the hook is never unhooked (it calls the real malloc through __libc_malloc).
    nonisolated(unsafe) static var hook: UnsafeMutablePointer<MallocHook?>?
    nonisolated(unsafe) static var realMalloc: (@convention(c) (Int) -> UnsafeMutableRawPointer?)?
    static let count = Atomic<Int>(0)
    /// The pthread ids whose allocations count: set before the hook is installed, read by the hook.
    nonisolated(unsafe) static var watched: (UInt, UInt, UInt, UInt) = (0, 0, 0, 0)

    static let counting: MallocHook = { size, _ in
        let me = UInt(pthread_self())
        let threads = MallocCounter.watched
        if me == threads.0 || me == threads.1 || me == threads.2 || me == threads.3 {
            MallocCounter.count.add(1, ordering: .relaxed)
        }
        return MallocCounter.realMalloc!(size)
    }

    /// The calling thread's id, as `counted(threads:)` takes it.
    public static func currentThread() -> UInt { UInt(pthread_self()) }

    /// Installs the hook; false without the preloaded debug library.
    public static func install() -> Bool {
        typealias VersionedLookup =
            @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>, UnsafePointer<CChar>) ->
            UnsafeMutableRawPointer?
        guard let library = dlopen(debugLibrary, RTLD_NOW | RTLD_NOLOAD), let lookup = dlsym(nil, "dlvsym"),
            let address = unsafeBitCast(lookup, to: VersionedLookup.self)(library, "__malloc_hook", "GLIBC_2.2.5"),
            let real = dlsym(nil, "__libc_malloc")
        else { return false }
        realMalloc = unsafeBitCast(real, to: (@convention(c) (Int) -> UnsafeMutableRawPointer?).self)
        hook = address.assumingMemoryBound(to: MallocHook?.self)
        return true
    }

    /// Counts the `malloc` calls that `threads` (up to four; the calling thread when empty) make while `body` runs.
    public static func counted(threads: [UInt] = [], _ body: () -> Void) -> Int {
        let ids = threads.isEmpty ? [currentThread()] : threads
        precondition(ids.count <= 4, "at most four threads")
        let padded = ids + Array(repeating: ids[0], count: 4 - ids.count)
        watched = (padded[0], padded[1], padded[2], padded[3])
        count.store(0, ordering: .relaxed)
        hook!.pointee = counting
        body()
        hook!.pointee = nil
        return count.load(ordering: .relaxed)
    }
}

/// Records the id of the thread that calls `record()`, e.g. from a task run on an event loop's thread.
public final class ThreadRecorder: Sendable {
    private let id = Mutex<UInt>(0)

    public init() {}

    public func record() { id.withLock { $0 = MallocCounter.currentThread() } }

    /// The recorded id, waiting up to 5 s for it.
    public func wait() -> UInt? {
        var value: UInt = 0
        _ = waitUntil(timeout: .seconds(5)) {
            value = id.withLock { $0 }
            return value != 0
        }
        return value == 0 ? nil : value
    }
}
