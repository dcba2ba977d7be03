// A fixed group of loops, one thread each; connections stay on the loop that accepted or opened them.
import Synchronization
import Sys

/// N event loops on N threads.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let threads = Mutex<[Thread]>([])
    private let counter = Atomic<Int>(0)

    /// Creates `count` loops. They do not run until `start()`, so listeners can be set up on them first.
    public init(loops count: Int) throws(Errno) {
        var loops: [EventLoop] = []
        for _ in 0..<count { loops.append(try EventLoop()) }
        self.loops = loops
    }

    /// Starts one thread per loop.
    public func start() throws(Errno) {
        var started: [Thread] = []
        for loop in loops {
            started.append(try Thread { try? loop.run() })
        }
        threads.withLock { $0 = started }
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
