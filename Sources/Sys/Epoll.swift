// epoll(7) wrappers with a Swift-typed event buffer, so the event loop never sees `epoll_event`.
import CLinux
import Glibc

/// epoll event bits (epoll_ctl(2)).
public struct EpollEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let input = EpollEvents(rawValue: EPOLLIN.rawValue)
    public static let output = EpollEvents(rawValue: EPOLLOUT.rawValue)
    /// The peer shut down its writing side (read will return 0 after the data).
    public static let readHangup = EpollEvents(rawValue: EPOLLRDHUP.rawValue)
    public static let hangup = EpollEvents(rawValue: EPOLLHUP.rawValue)
    public static let error = EpollEvents(rawValue: EPOLLERR.rawValue)
    public static let edgeTriggered = EpollEvents(rawValue: EPOLLET.rawValue)
    public static let oneShot = EpollEvents(rawValue: EPOLLONESHOT.rawValue)
}

/// An epoll instance. Owned by one loop; closes with `close()`.
public struct Epoll: Sendable {
    public let fd: FileDescriptor

    public init() throws(Errno) {
        fd = FileDescriptor(try checked { epoll_create1(Int32(EPOLL_CLOEXEC)) })
    }

    /// EPOLL_CTL_ADD with a 64-bit user token.
    public func add(_ target: FileDescriptor, events: EpollEvents, token: UInt64) throws(Errno) {
        try control(EPOLL_CTL_ADD, target, events, token)
    }

    /// EPOLL_CTL_MOD.
    public func modify(_ target: FileDescriptor, events: EpollEvents, token: UInt64) throws(Errno) {
        try control(EPOLL_CTL_MOD, target, events, token)
    }

    /// EPOLL_CTL_DEL. Closing a descriptor removes it as well (when no duplicate of it is open).
    public func remove(_ target: FileDescriptor) throws(Errno) {
        try control(EPOLL_CTL_DEL, target, [], 0)
    }

    private func control(
        _ operation: Int32, _ target: FileDescriptor, _ events: EpollEvents, _ token: UInt64
    )
        throws(Errno)
    {
        var event = epoll_event()
        event.events = events.rawValue
        event.data.u64 = token
        _ = try checked { epoll_ctl(fd.rawValue, operation, target.rawValue, &event) }
    }

    /// epoll_wait(2): fills `buffer`, returns the count (0 on timeout or when interrupted by a signal).
    /// `timeoutMilliseconds` -1 waits forever.
    public func wait(into buffer: EpollEventBuffer, timeoutMilliseconds: Int32) throws(Errno) -> Int {
        let result = epoll_wait(fd.rawValue, buffer.storage, Int32(buffer.capacity), timeoutMilliseconds)
        if result >= 0 { return Int(result) }
        let code = rtc_errno()
        if code == EINTR { return 0 }
        throw Errno(code)
    }

    public func close() { fd.close() }
}

/// A preallocated array of `epoll_event` (packed, 12 bytes each), reused by every `wait`.
///
/// Invariant: `storage` holds `capacity` initialized events for the buffer's whole life; only the loop thread
/// that owns the buffer touches it.
public final class EpollEventBuffer {
    let storage: UnsafeMutablePointer<epoll_event>
    public let capacity: Int

    public init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
        storage.initialize(repeating: epoll_event(), count: capacity)
    }

    @inline(__always)
    public func events(at index: Int) -> EpollEvents { EpollEvents(rawValue: storage[index].events) }

    @inline(__always)
    public func token(at index: Int) -> UInt64 { storage[index].data.u64 }

    deinit { storage.deallocate() }
}
