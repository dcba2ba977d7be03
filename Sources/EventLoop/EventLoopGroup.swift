// A fixed group of loops, one thread each; connections stay on the loop that accepted or opened them.
import Synchronization
import Sys

/// N event loops on N threads.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let threads = Mutex<[Thread]>([])
    private let counter = Atomic<Int>(0)

    /// Creates `count` loops on `backend`. They do not run until `start()`, so listeners can be set up on them first.
    public init(loops count: Int, backend: EventsBackend = .processDefault) throws(Errno) {
        var loops: [EventLoop] = []
        for _ in 0..<count { loops.append(try EventLoop(backend: backend)) }
        self.loops = loops
    }

    /// Starts one thread per loop. A loop whose `run()` fails (`epoll_wait` returning an error other than EINTR:
    /// the process is broken, e.g. EBADF or EFAULT) calls `onFailure` with its index and the error; the default
    /// writes the error to standard error and ends the process with status 70 (EX_SOFTWARE), so a supervisor
    /// restarts it instead of the process going on with a worker silently gone. Restarting the loop in place was
    /// not chosen: its connections and timers would be in an unknown state.
    public func start(
        onFailure: @escaping @Sendable (_ loop: Int, _ error: Errno) -> Void = EventLoopGroup.exitOnFailure
    ) throws(Errno) {
        var started: [Thread] = []
        for (index, loop) in loops.enumerated() {
            started.append(
                try Thread {
                    do throws(Errno) {
                        try loop.run()
                    } catch {
                        onFailure(index, error)
                    }
                })
        }
        threads.withLock { $0 = started }
    }

    /// The default for `start(onFailure:)`: reports on standard error and exits with status 70.
    public static let exitOnFailure: @Sendable (Int, Errno) -> Void = { index, error in
        let message = Array("rtc: event loop \(index) failed: \(error); exiting\n".utf8)
        message.withUnsafeBytes { _ = try? FileDescriptor(2).write($0) }
        exitProcess(70)
    }

    public func loop(at index: Int) -> EventLoop { loops[index] }

    /// Round-robin.
    public func next() -> EventLoop {
        loops[counter.add(1, ordering: .relaxed).newValue % loops.count]
    }

    /// Stops every loop (see `EventLoop.run()` for what stopping does) and joins their threads.
    public func shutdown() {
        for loop in loops { loop.stop() }
        join()
    }

    /// Waits for the loop threads to end.
    public func join() {
        let joined = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        for thread in joined { thread.join() }
    }
}
