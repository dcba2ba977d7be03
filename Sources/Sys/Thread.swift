// A minimal pthread wrapper: start a thread running a closure, join it.
import CLinux
import Glibc

/// An OS thread started with `pthread_create`. Join it exactly once.
public final class Thread: @unchecked Sendable {
    // Written once by `init` before any other thread can see the object; read by `join`.
    private var handle: pthread_t

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts a thread running `body`.
    public init(_ body: @escaping @Sendable () -> Void) throws(Errno) {
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { context in
                let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
                box.body()
                return nil
            }, context)
        if result != 0 {
            Unmanaged<Box>.fromOpaque(context).release()
            throw Errno(result)
        }
        handle = thread
    }

    /// Waits for the thread to finish.
    public func join() {
        pthread_join(handle, nil)
    }
}

/// A one-shot wake-up between threads on a blocking eventfd: `wait()` returns once `signal()` was called.
public final class Latch: @unchecked Sendable {
    // The descriptor is fixed at init and only read afterwards; eventfd reads and writes are thread-safe.
    private let fd: FileDescriptor

    public init() throws(Errno) {
        fd = FileDescriptor(try checked { eventfd(0, Int32(EFD_CLOEXEC)) })
    }

    public func signal() { fd.signalEvent() }

    public func wait() { _ = fd.drainEvent() }

    deinit { fd.close() }
}
