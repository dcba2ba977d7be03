// Which readiness backend a loop runs on (`events auto|epoll|io_uring`), and the loop's two-case selector.
import Sys

/// The choice of readiness backend, as configured.
public enum EventsBackend: Equatable, Sendable, CustomStringConvertible {
    /// io_uring when this machine allows it, else epoll.
    case auto
    case epoll
    case ioURing

    /// What a loop actually runs on.
    public enum Kind: String, Sendable {
        case epoll
        case ioURing = "io_uring"
    }

    /// The configuration word: `auto`, `epoll` or `io_uring`.
    public init?(word: String) {
        switch word {
        case "auto": self = .auto
        case "epoll": self = .epoll
        case "io_uring": self = .ioURing
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .auto: "auto"
        case .epoll: "epoll"
        case .ioURing: "io_uring"
        }
    }

    /// The process-wide default: `RTC_EVENTS` (auto, epoll or io_uring) when set, else epoll. The test suite runs
    /// once with `RTC_EVENTS=io_uring`; the programs it starts inherit the variable.
    public static let processDefault: EventsBackend = {
        guard let word = environmentValue("RTC_EVENTS"), !word.isEmpty else { return .epoll }
        guard let backend = EventsBackend(word: word) else {
            let message = Array("rtc: RTC_EVENTS must be auto, epoll or io_uring, got '\(word)'\n".utf8)
            message.withUnsafeBytes { _ = try? FileDescriptor(2).write($0) }
            exitProcess(64)
        }
        return backend
    }()

    /// Why io_uring cannot run here (probed once per process), or nil.
    public static let ioURingUnavailability: Errno? = URingSelector.unavailability()

    /// The backend `self` means where io_uring is unavailable for `reason` (nil: available); `fallback` is why
    /// `.auto` did not get io_uring.
    public func resolved(
        ioURingUnavailability reason: Errno? = Self.ioURingUnavailability
    ) -> (
        kind: Kind, fallback: Errno?
    ) {
        switch self {
        case .epoll: return (.epoll, nil)
        case .ioURing: return (.ioURing, nil)
        case .auto:
            if let reason { return (.epoll, reason) }
            return (.ioURing, nil)
        }
    }

    /// One start-up log line: `events: io_uring`, or `events: epoll (io_uring unavailable: EPERM ...)`.
    public func logLine(ioURingUnavailability reason: Errno? = Self.ioURingUnavailability) -> String {
        let (kind, fallback) = resolved(ioURingUnavailability: reason)
        if let fallback { return "events: \(kind.rawValue) (io_uring unavailable: \(fallback))" }
        return "events: \(kind.rawValue)"
    }
}

/// The loop's selector: one case per backend, so calls through it are direct (no existential).
enum LoopSelector {
    case epoll(EpollSelector)
    case ioURing(URingSelector)

    @inline(__always)
    func register(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno) {
        switch self {
        case .epoll(let selector): try selector.register(fd, interest: interest, token: token)
        case .ioURing(let selector): try selector.register(fd, interest: interest, token: token)
        }
    }

    @inline(__always)
    func modify(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno) {
        switch self {
        case .epoll(let selector): try selector.modify(fd, interest: interest, token: token)
        case .ioURing(let selector): try selector.modify(fd, interest: interest, token: token)
        }
    }

    @inline(__always)
    func deregister(_ fd: FileDescriptor, token: UInt64, willClose: Bool) throws(Errno) {
        switch self {
        case .epoll(let selector): try selector.deregister(fd, token: token, willClose: willClose)
        case .ioURing(let selector): try selector.deregister(fd, token: token, willClose: willClose)
        }
    }

    /// Submits what is still queued (io_uring: removals queued by handlers that closed while the loop stopped).
    func flush() {
        if case .ioURing(let selector) = self { selector.flush() }
    }

    func close() {
        switch self {
        case .epoll(let selector): selector.close()
        case .ioURing(let selector): selector.close()
        }
    }

    /// The backend's own descriptor (the epoll instance or the ring).
    var descriptor: FileDescriptor {
        switch self {
        case .epoll(let selector): selector.epoll.fd
        case .ioURing(let selector): selector.ring.descriptor
        }
    }
}
