// Counting malloc calls of a whole process (every thread), for the steady-state allocation tests.
import Glibc
import Synchronization

/// Environment variables that tell a child test run to act as an allocation probe.
public enum AllocationProbeKey {
    public static let httpServer = "HTTPSERVER_ALLOCATION_PROBE"
    public static let gateway = "GATEWAY_ALLOCATION_PROBE"
}

/// Counts `malloc` calls through glibc's `__malloc_hook`, honoured by the preloaded libc_malloc_debug.so, in a child
/// run of a test binary that runs only its allocation probe (see Tests/ForwardingTests/AllocationTests.swift for
/// why this way). Counts every thread's allocations.
public enum MallocCounter {
    public static let debugLibrary = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"

    typealias MallocHook = @convention(c) (Int, UnsafeRawPointer?) -> UnsafeMutableRawPointer?
    // Written by the hook on whichever thread allocates; both the loop thread and the client thread may run
    // it, so the count is atomic and the hook is never unhooked (it calls the real malloc through __libc_malloc).
    nonisolated(unsafe) static var hook: UnsafeMutablePointer<MallocHook?>?
    nonisolated(unsafe) static var realMalloc: (@convention(c) (Int) -> UnsafeMutableRawPointer?)?
    static let count = Atomic<Int>(0)

    static let counting: MallocHook = { size, _ in
        MallocCounter.count.add(1, ordering: .relaxed)
        return MallocCounter.realMalloc!(size)
    }

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

    public static func counted(_ body: () -> Void) -> Int {
        count.store(0, ordering: .relaxed)
        hook!.pointee = counting
        body()
        hook!.pointee = nil
        return count.load(ordering: .relaxed)
    }
}
