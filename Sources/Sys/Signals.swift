// Signal helpers for programs: block signals, ignore SIGPIPE, and deliver chosen signals to a loop as eventfd events.
import CLinux
import Glibc
import Synchronization

/// Process-wide signal handling. Handlers only set a bit and write to an eventfd (both async-signal-safe).
public enum Signals {
    public static let hangup = SIGHUP
    public static let terminate = SIGTERM
    public static let quit = SIGQUIT
    public static let interrupt = SIGINT

    /// Ignores SIGPIPE, so a write to a closed socket returns EPIPE instead of killing the process.
    public static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Blocks `signals` in the calling thread (`pthread_sigmask`); threads started afterwards inherit the mask.
    public static func block(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for number in signals { sigaddset(&set, number) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Unblocks `signals` in the calling thread.
    public static func unblock(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for number in signals { sigaddset(&set, number) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Installs handlers for `signals` (numbers below 64) that record the signal and wake the returned eventfd.
    /// Register the eventfd with a loop; when it is readable call `takePending()`. Call once per process.
    public static func notify(_ signals: [Int32]) throws(Errno) -> FileDescriptor {
        let fd = try FileDescriptor.eventFD()
        wakeDescriptor.store(fd.rawValue, ordering: .releasing)
        for number in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                pendingSignals.bitwiseOr(1 << UInt64(number), ordering: .acquiringAndReleasing)
                var one: UInt64 = 1
                let saved = rtc_errno()
                _ = Glibc.write(wakeDescriptor.load(ordering: .acquiring), &one, 8)
                rtc_set_errno(saved)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            _ = try checked { sigaction(number, &action, nil) }
        }
        return fd
    }

    /// The signals received since the last call, lowest number first.
    public static func takePending() -> [Int32] {
        let bits = pendingSignals.exchange(0, ordering: .acquiringAndReleasing)
        return (1..<64).filter { bits & (1 << UInt64($0)) != 0 }.map { Int32($0) }
    }
}

// Shared with signal handlers, which may run on any thread: atomics only.
private let pendingSignals = Atomic<UInt64>(0)
private let wakeDescriptor = Atomic<Int32>(-1)
