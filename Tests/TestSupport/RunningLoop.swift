// An event loop on its own thread for loop tests, with a way to run code on it and wait for the result.
import EventLoop
import Synchronization
import Sys

/// A loop running on its own thread until `stop()`.
public final class RunningLoop: Sendable {
    public let loop: EventLoop
    public let thread: Sys.Thread

    public convenience init() throws {
        try self.init(loop: try EventLoop())
    }

    /// Runs `loop` (made by the caller with the options a test needs).
    public init(loop: EventLoop) throws {
        self.loop = loop
        thread = try Sys.Thread { try? loop.run() }
    }

    /// Runs `body` on the loop thread and returns its result. The body may touch loop-confined objects: the test
    /// thread waits here while it runs.
    public func sync<T>(_ body: @escaping () throws -> T) throws -> T {
        let latch = try Latch()
        let result = Mutex<Unchecked<Result<T, any Error>>?>(nil)
        let task = Unchecked(body)
        loop.execute {
            let value = Result { try task.value() }
            result.withLock { $0 = Unchecked(value) }
            latch.signal()
        }
        latch.wait()
        return try result.withLock { $0!.value }.get()
    }

    public func stop() {
        loop.stop()
        thread.join()
    }
}

/// Moves a loop-confined value across the test thread and the loop thread; only one of them touches it at a time
/// (the test thread waits in `sync` while the loop runs the body).
public struct Unchecked<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
