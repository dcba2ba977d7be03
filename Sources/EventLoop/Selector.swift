// The readiness-selector protocol the loop runs on, and its epoll implementation (edge-triggered).
import Sys

extension ReadyEvents {
    /// From poll(2) bits, which epoll (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR) and io_uring's poll
    /// operations report with the same values.
    @inline(__always)
    init(pollBits bits: UInt32) {
        let epoll = EpollEvents(rawValue: bits)
        var events: ReadyEvents = []
        if epoll.contains(.input) { events.insert(.readable) }
        if epoll.contains(.output) { events.insert(.writable) }
        if epoll.contains(.readHangup) { events.insert(.readHangup) }
        if epoll.contains(.hangup) { events.insert(.hangup) }
        if epoll.contains(.error) { events.insert(.error) }
        self = events
    }
}

/// What a registration wants to hear about.
public struct Interest: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = Interest(rawValue: 1)
    public static let writable = Interest(rawValue: 2)
}

/// Readiness reported for one registration.
public struct ReadyEvents: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = ReadyEvents(rawValue: 1)
    public static let writable = ReadyEvents(rawValue: 2)
    /// The peer closed its writing side: read until EOF (EPOLLRDHUP).
    public static let readHangup = ReadyEvents(rawValue: 4)
    public static let hangup = ReadyEvents(rawValue: 8)
    public static let error = ReadyEvents(rawValue: 16)
    /// Not readiness: a completed receive of a connection doing completion I/O (io_uring only); its result
    /// and bytes are the selector's `receipt(at:)`, delivered as `EventHandler.completed`.
    public static let received = ReadyEvents(rawValue: 32)
    /// Not readiness: a completed send of a connection doing completion I/O; its result is in `receipt(at:)`.
    public static let sent = ReadyEvents(rawValue: 64)
}

/// One completion of a multishot receive into the loop's provided buffers, or of a send.
public struct Receipt {
    /// Receive: bytes received (> 0), 0 at end of file, or a negated errno (ENOBUFS: the loop had no free buffer;
    /// ECANCELED: the receive was cancelled). Send: bytes sent, or a negated errno.
    public var result: Int32
    /// The received bytes, in a buffer the loop takes back after this callback.
    public var bytes: UnsafeRawBufferPointer
    /// The receive stays armed; when false it ended and must be armed again to read on.
    public var more: Bool
    /// Received bytes that the peer's FIN follows: the end of file is the next receipt of the same wait.
    public var endFollows: Bool

    public init(result: Int32, bytes: UnsafeRawBufferPointer, more: Bool, endFollows: Bool = false) {
        self.result = result
        self.bytes = bytes
        self.more = more
        self.endFollows = endFollows
    }
}

/// A readiness source for one loop: epoll (`EpollSelector`) or io_uring multishot polls (`URingSelector`).
///
/// Registrations are edge-triggered: a handler must read or write until `EAGAIN`, or remember that it stopped
/// early and come back (the loop's `retryLater`).
public protocol Selector: AnyObject {
    func register(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno)
    func modify(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno)
    /// Forgets `fd`'s registration. `willClose`: the caller closes `fd` right after (epoll then needs no call).
    func deregister(_ fd: FileDescriptor, token: UInt64, willClose: Bool) throws(Errno)
    /// Waits up to `timeoutMilliseconds` (-1: forever) and returns how many events `event(at:)` can read.
    func wait(timeoutMilliseconds: Int32) throws(Errno) -> Int
    func event(at index: Int) -> (token: UInt64, events: ReadyEvents)
    /// The receive behind an event carrying `.received` (only the io_uring selector reports those).
    func receipt(at index: Int) -> Receipt
    func close()
}

/// epoll, edge-triggered with EPOLLRDHUP.
///
/// Edge-triggered because a connection registers once for both directions and never calls `epoll_ctl` again to
/// toggle write interest (level-triggered would report writability on every wait): fewer syscalls per event.
public final class EpollSelector: Selector {
    let epoll: Epoll
    let buffer: EpollEventBuffer

    public init(capacity: Int = 1024) throws(Errno) {
        epoll = try Epoll()
        buffer = EpollEventBuffer(capacity: capacity)
    }

    @inline(__always)
    static func bits(_ interest: Interest) -> EpollEvents {
        var events: EpollEvents = [.edgeTriggered]
        if interest.contains(.readable) { events.formUnion([.input, .readHangup]) }
        if interest.contains(.writable) { events.insert(.output) }
        return events
    }

    public func register(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno) {
        try epoll.add(fd, events: Self.bits(interest), token: token)
    }

    public func modify(_ fd: FileDescriptor, interest: Interest, token: UInt64) throws(Errno) {
        try epoll.modify(fd, events: Self.bits(interest), token: token)
    }

    public func deregister(_ fd: FileDescriptor, token: UInt64, willClose: Bool) throws(Errno) {
        // Closing a descriptor removes it from epoll (when no duplicate of it is open): no epoll_ctl needed.
        if !willClose { try epoll.remove(fd) }
    }

    public func wait(timeoutMilliseconds: Int32) throws(Errno) -> Int {
        try epoll.wait(into: buffer, timeoutMilliseconds: timeoutMilliseconds)
    }

    @inline(__always)
    public func event(at index: Int) -> (token: UInt64, events: ReadyEvents) {
        (buffer.token(at: index), ReadyEvents(pollBits: buffer.events(at: index).rawValue))
    }

    /// epoll reports readiness only: never called.
    public func receipt(at index: Int) -> Receipt {
        Receipt(result: 0, bytes: UnsafeRawBufferPointer(start: nil, count: 0), more: false)
    }

    public func close() { epoll.close() }
}
