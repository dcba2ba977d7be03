// Typed file descriptors and the read/write/socket system calls on them, each returning a typed result.
import CLinux
import Glibc

/// A file descriptor number. Plain value (it does not close anything): registries and tables hold these.
public struct FileDescriptor: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public var description: String { "fd \(rawValue)" }
}

/// The outcome of a nonblocking read or write that did not fail.
public enum IOResult: Equatable, Sendable {
    /// This many bytes were transferred (always > 0 for reads).
    case count(Int)
    /// `EAGAIN`: nothing now; wait for readiness.
    case wouldBlock
    /// A read returned 0: the peer shut down its side.
    case endOfFile
}

/// The outcome of a nonblocking `connect(2)`.
public enum ConnectStatus: Equatable, Sendable {
    case connected
    /// `EINPROGRESS`: wait for writability, then read `socketError()`.
    case inProgress
}

/// `shutdown(2)` directions.
public enum ShutdownHow: Sendable {
    case read, write, both
}

/// Socket kinds this project opens.
public enum SocketKind: Sendable {
    case tcp, udp
}

/// Socket options set with `setsockopt(2)` (socket(7), tcp(7)).
public enum SocketOption: Sendable {
    case reuseAddress(Bool)
    case reusePort(Bool)
    case noDelay(Bool)
    /// TCP_QUICKACK: false enters delayed-ACK mode, so an ACK waits to ride on the next data sent. Not permanent
    /// (tcp(7)); set before `connect`, it also holds back the handshake's last ACK for the first data.
    case quickAck(Bool)
    case keepAlive(Bool)
    case receiveBuffer(Int32)
    case sendBuffer(Int32)
    /// IPV6_V6ONLY, so an IPv6 listener does not also take IPv4.
    case ipv6Only(Bool)
}

/// Flags for `send`/`recv`.
public struct MessageFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// MSG_NOSIGNAL: EPIPE instead of SIGPIPE.
    public static let noSignal = MessageFlags(rawValue: Int32(MSG_NOSIGNAL))
    public static let peek = MessageFlags(rawValue: Int32(MSG_PEEK))
    public static let dontWait = MessageFlags(rawValue: Int32(MSG_DONTWAIT))
    /// MSG_MORE: more data follows (like TCP_CORK for one call).
    public static let more = MessageFlags(rawValue: Int32(MSG_MORE))
}

@inline(__always)
func ioResult(_ result: Int) throws(Errno) -> IOResult {
    if result > 0 { return .count(result) }
    if result == 0 { return .endOfFile }
    let code = Int32(-result)
    if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
    throw Errno(code)
}

@inline(__always)
func writeResult(_ result: Int) throws(Errno) -> IOResult {
    if result >= 0 { return .count(result) }
    let code = Int32(-result)
    if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
    throw Errno(code)
}

extension FileDescriptor {
    /// read(2).
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> IOResult {
        try ioResult(retryingRawEINTR { rtc_read(rawValue, buffer.baseAddress, buffer.count) })
    }

    /// write(2); `.count` may be short.
    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) throws(Errno) -> IOResult {
        try writeResult(retryingRawEINTR { rtc_write(rawValue, bytes.baseAddress, bytes.count) })
    }

    /// writev(2) of two buffers (a head and a body slice), without copying them together.
    @inline(__always)
    public func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) throws(Errno) -> IOResult {
        var vectors = (
            iovec(iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress), iov_len: first.count),
            iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress), iov_len: second.count)
        )
        return try withUnsafeBytes(of: &vectors) { (raw) throws(Errno) -> IOResult in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: iovec.self)
            return try writeResult(retryingRawEINTR { rtc_writev(rawValue, pointer, 2) })
        }
    }

    /// writev(2) of any number of buffers. `vectors` is caller-owned so the hot path allocates nothing.
    public func write(vectors: UnsafeBufferPointer<IOVector>) throws(Errno) -> IOResult {
        try vectors.withMemoryRebound(to: iovec.self) { (raw) throws(Errno) -> IOResult in
            try writeResult(retryingRawEINTR { rtc_writev(rawValue, raw.baseAddress, Int32(raw.count)) })
        }
    }

    /// recv(2).
    @inline(__always)
    public func receive(
        into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []
    ) throws(Errno)
        -> IOResult
    {
        try ioResult(retryingRawEINTR { rtc_recv(rawValue, buffer.baseAddress, buffer.count, flags.rawValue) })
    }

    /// send(2); add `.noSignal` on sockets (the loop's `Connection` does).
    @inline(__always)
    public func send(_ bytes: UnsafeRawBufferPointer, flags: MessageFlags = .noSignal) throws(Errno) -> IOResult {
        try writeResult(retryingRawEINTR { rtc_send(rawValue, bytes.baseAddress, bytes.count, flags.rawValue) })
    }

    /// sendto(2) for UDP.
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress) throws(Errno) -> IOResult {
        try address.withSockAddr { (pointer, length) throws(Errno) -> IOResult in
            try writeResult(
                retryingEINTR {
                    Glibc.sendto(rawValue, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), pointer, length)
                })
        }
    }

    /// recvfrom(2) for UDP: the byte count (0 is an empty datagram) and the sender; nil when it would block.
    public func receiveFrom(
        into buffer: UnsafeMutableRawBufferPointer
    ) throws(Errno) -> (
        count: Int, from: SocketAddress?
    )? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                retryingEINTR { Glibc.recvfrom(rawValue, buffer.baseAddress, buffer.count, 0, address, &length) }
            }
        }
        if result < 0 {
            if Int32(-result) == EAGAIN { return nil }
            throw Errno(Int32(-result))
        }
        return (result, SocketAddress(storage: storage))
    }

    /// close(2). Not retried on EINTR: on Linux the descriptor is released even then.
    public func close() {
        _ = Glibc.close(rawValue)
    }

    /// dup2(2) then FD_CLOEXEC: makes `target` (closing whatever it was) refer to this descriptor's file.
    public func duplicate(onto target: FileDescriptor) throws(Errno) {
        _ = try checked { dup2(rawValue, target.rawValue) }
        _ = try checked { fcntl(target.rawValue, F_SETFD, FD_CLOEXEC) }
    }

    /// shutdown(2).
    public func shutdown(_ how: ShutdownHow) throws(Errno) {
        let value: Int32 =
            switch how {
            case .read: Int32(SHUT_RD)
            case .write: Int32(SHUT_WR)
            case .both: Int32(SHUT_RDWR)
            }
        _ = try checked { Glibc.shutdown(rawValue, value) }
    }

    /// Sets O_NONBLOCK.
    public func setNonBlocking() throws(Errno) {
        let flags = try checked { fcntl(rawValue, F_GETFL) }
        _ = try checked { fcntl(rawValue, F_SETFL, flags | O_NONBLOCK) }
    }

    /// setsockopt(2).
    public func set(_ option: SocketOption) throws(Errno) {
        func apply(_ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
            var value = value
            _ = try checked { setsockopt(rawValue, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
        }
        switch option {
        case .reuseAddress(let on): try apply(SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0)
        case .reusePort(let on): try apply(SOL_SOCKET, SO_REUSEPORT, on ? 1 : 0)
        case .noDelay(let on): try apply(Int32(IPPROTO_TCP), TCP_NODELAY, on ? 1 : 0)
        case .quickAck(let on): try apply(Int32(IPPROTO_TCP), TCP_QUICKACK, on ? 1 : 0)
        case .keepAlive(let on): try apply(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0)
        case .receiveBuffer(let size): try apply(SOL_SOCKET, SO_RCVBUF, size)
        case .sendBuffer(let size): try apply(SOL_SOCKET, SO_SNDBUF, size)
        case .ipv6Only(let on): try apply(Int32(IPPROTO_IPV6), IPV6_V6ONLY, on ? 1 : 0)
        }
    }

    /// getsockopt(TCP_NODELAY).
    public func noDelay() throws(Errno) -> Bool { try tcpFlag(TCP_NODELAY) }

    /// getsockopt(TCP_QUICKACK): false while the socket is in delayed-ACK ("pingpong") mode.
    public func quickAck() throws(Errno) -> Bool { try tcpFlag(TCP_QUICKACK) }

    /// An on/off option at the IPPROTO_TCP level.
    private func tcpFlag(_ name: Int32) throws(Errno) -> Bool {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try checked { getsockopt(rawValue, Int32(IPPROTO_TCP), name, &value, &length) }
        return value != 0
    }

    /// getsockopt(SO_ERROR): the pending error of a socket (nil when none), which ends a nonblocking connect.
    public func socketError() throws(Errno) -> Errno? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try checked { getsockopt(rawValue, SOL_SOCKET, SO_ERROR, &value, &length) }
        return value == 0 ? nil : Errno(value)
    }

    /// getsockname(2).
    public func localAddress() throws(Errno) -> SocketAddress {
        try address { getsockname(rawValue, $0, $1) }
    }

    /// getpeername(2).
    public func peerAddress() throws(Errno) -> SocketAddress {
        try address { getpeername(rawValue, $0, $1) }
    }

    private func address(
        _ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    )
        throws(Errno) -> SocketAddress
    {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, &length) }
        }
        if result != 0 { throw Errno.current }
        guard let address = SocketAddress(storage: storage) else { throw Errno.invalidArgument }
        return address
    }

    /// bind(2).
    public func bind(to address: SocketAddress) throws(Errno) {
        _ = try address.withSockAddr { (pointer, length) throws(Errno) in
            try checked { Glibc.bind(rawValue, pointer, length) }
        }
    }

    /// listen(2).
    public func listen(backlog: Int32) throws(Errno) {
        _ = try checked { Glibc.listen(rawValue, backlog) }
    }

    /// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC: the new socket and its peer; nil when the queue is empty.
    @inline(__always)
    public func accept() throws(Errno) -> (FileDescriptor, SocketAddress?)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                retryingEINTR { Int(accept4(rawValue, address, &length, flags)) }
            }
        }
        if result < 0 {
            let code = Int32(-result)
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw Errno(code)
        }
        return (FileDescriptor(Int32(result)), SocketAddress(storage: storage))
    }

    /// Nonblocking connect(2): `.connected` (loopback can finish at once) or `.inProgress`.
    public func connect(to address: SocketAddress) throws(Errno) -> ConnectStatus {
        try address.withSockAddr { (pointer, length) throws(Errno) -> ConnectStatus in
            // Not retried on EINTR: a second connect would report EALREADY; the connect continues in the kernel.
            if Glibc.connect(rawValue, pointer, length) == 0 { return .connected }
            let code = rtc_errno()
            if code == EINPROGRESS || code == EINTR { return .inProgress }
            throw Errno(code)
        }
    }

    /// Opens a nonblocking, close-on-exec socket for `address`'s family.
    public static func socket(_ kind: SocketKind, for address: SocketAddress) throws(Errno) -> FileDescriptor {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let type =
            (kind == .tcp ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue))
            | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        return FileDescriptor(try checked { Glibc.socket(family, type, 0) })
    }

    /// pipe2(2) with O_NONBLOCK | O_CLOEXEC: (read end, write end).
    public static func pipe() throws(Errno) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) in
            try checked { pipe2(raw.baseAddress!.assumingMemoryBound(to: Int32.self), O_NONBLOCK | O_CLOEXEC) }
        }
        return (FileDescriptor(fds.0), FileDescriptor(fds.1))
    }

    /// splice(2) up to `count` bytes from `self` to `destination` (one of them must be a pipe), nonblocking.
    public func splice(to destination: FileDescriptor, count: Int, more: Bool = false) throws(Errno) -> IOResult {
        let flags = UInt32(SPLICE_F_MOVE | SPLICE_F_NONBLOCK) | (more ? UInt32(SPLICE_F_MORE) : 0)
        return try ioResult(
            retryingEINTR { CLinux.splice(rawValue, nil, destination.rawValue, nil, count, flags) })
    }

    /// eventfd(2), nonblocking and close-on-exec, counter starting at 0.
    public static func eventFD() throws(Errno) -> FileDescriptor {
        FileDescriptor(try checked { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) })
    }

    /// Adds `value` to an eventfd counter (wakes its reader).
    public func signalEvent(_ value: UInt64 = 1) {
        var value = value
        _ = retryingEINTR { Glibc.write(rawValue, &value, 8) }
    }

    /// Reads and resets an eventfd counter; 0 when it was already 0.
    public func drainEvent() -> UInt64 {
        var value: UInt64 = 0
        let result = retryingEINTR { Glibc.read(rawValue, &value, 8) }
        return result == 8 ? value : 0
    }
}

/// One `iovec` entry, laid out exactly like `struct iovec` so buffers of these go straight to `writev`.
public struct IOVector {
    var raw: iovec

    public init(_ bytes: UnsafeRawBufferPointer) {
        raw = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
    }
}

/// A socket that closes itself when it goes out of scope, for code that opens sockets and may fail half-way.
public struct Socket: ~Copyable {
    public let fd: FileDescriptor

    public init(adopting fd: FileDescriptor) { self.fd = fd }

    /// A nonblocking TCP listener bound to `address` (port 0 picks one), with SO_REUSEADDR and optionally
    /// SO_REUSEPORT so every loop can bind its own listener on the same port.
    public static func listener(
        at address: SocketAddress, backlog: Int32 = 1024, reusePort: Bool = false
    )
        throws(Errno) -> Socket
    {
        let socket = Socket(adopting: try FileDescriptor.socket(.tcp, for: address))
        try socket.fd.set(.reuseAddress(true))
        if reusePort { try socket.fd.set(.reusePort(true)) }
        try socket.fd.bind(to: address)
        try socket.fd.listen(backlog: backlog)
        return socket
    }

    /// Gives up ownership: the caller now closes the descriptor.
    public consuming func release() -> FileDescriptor {
        let fd = self.fd
        discard self
        return fd
    }

    deinit { fd.close() }
}
