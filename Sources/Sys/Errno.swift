// Typed errno values and the one place that retries system calls interrupted by a signal (EINTR).
import CLinux
import Glibc

/// An `errno` value from a failed system call (errno(3)).
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    /// The calling thread's current `errno`.
    @inline(__always)
    public static var current: Errno { Errno(rtc_errno()) }

    public static let interrupted = Errno(EINTR)
    public static let wouldBlock = Errno(EAGAIN)
    public static let inProgress = Errno(EINPROGRESS)
    public static let connectionRefused = Errno(ECONNREFUSED)
    public static let connectionReset = Errno(ECONNRESET)
    public static let brokenPipe = Errno(EPIPE)
    public static let tooManyOpenFiles = Errno(EMFILE)
    public static let tooManyOpenFilesInSystem = Errno(ENFILE)
    public static let timedOut = Errno(ETIMEDOUT)
    public static let badFileDescriptor = Errno(EBADF)
    public static let invalidArgument = Errno(EINVAL)
    public static let addressInUse = Errno(EADDRINUSE)
    public static let noBufferSpace = Errno(ENOBUFS)
    public static let noMemory = Errno(ENOMEM)
    public static let notConnected = Errno(ENOTCONN)
    public static let cancelled = Errno(ECANCELED)
    public static let notSupported = Errno(EOPNOTSUPP)
    public static let alreadyInProgress = Errno(EALREADY)

    /// The symbolic name (`"ECONNREFUSED"`), or `"errno N"` for codes not listed here.
    public var name: String {
        switch code {
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case EINTR: "EINTR"
        case EIO: "EIO"
        case EBADF: "EBADF"
        case EAGAIN: "EAGAIN"
        case ENOMEM: "ENOMEM"
        case EACCES: "EACCES"
        case EEXIST: "EEXIST"
        case EINVAL: "EINVAL"
        case ENFILE: "ENFILE"
        case EMFILE: "EMFILE"
        case EPIPE: "EPIPE"
        case EADDRINUSE: "EADDRINUSE"
        case EADDRNOTAVAIL: "EADDRNOTAVAIL"
        case ENETUNREACH: "ENETUNREACH"
        case ECONNABORTED: "ECONNABORTED"
        case ECONNRESET: "ECONNRESET"
        case ENOBUFS: "ENOBUFS"
        case ENOTCONN: "ENOTCONN"
        case ETIMEDOUT: "ETIMEDOUT"
        case ECONNREFUSED: "ECONNREFUSED"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case EALREADY: "EALREADY"
        case EINPROGRESS: "EINPROGRESS"
        case ENOSYS: "ENOSYS"
        case EAFNOSUPPORT: "EAFNOSUPPORT"
        default: "errno \(code)"
        }
    }

    /// `strerror(3)` text.
    public var message: String { String(cString: strerror(code)) }

    public var description: String { "\(name) (\(message))" }
}

/// Runs `call` until it does not fail with `EINTR`; returns its result, or `-errno` when it failed.
///
/// Every system call in `Sys` goes through here, or through `retryingRawEINTR` for the shim's raw calls, so
/// interrupted calls are retried in one of two places and the hot paths branch on an integer instead of unwinding a
/// thrown error for `EAGAIN`.
@inline(__always)
func retryingEINTR(_ call: () -> Int) -> Int {
    while true {
        let result = call()
        if result >= 0 { return result }
        let code = rtc_errno()
        if code != EINTR { return -Int(code) }
    }
}

/// `retryingEINTR` for the shim's raw system calls (`rtc_read`, `rtc_send`, ...), which return `-errno` themselves.
@inline(__always)
func retryingRawEINTR(_ call: () -> Int) -> Int {
    while true {
        let result = call()
        if result != -Int(EINTR) { return result }
    }
}

/// `retryingEINTR` for calls whose only success value is 0 or a descriptor: throws the errno.
@inline(__always)
func checked(_ call: () -> Int32) throws(Errno) -> Int32 {
    let result = retryingEINTR { Int(call()) }
    if result < 0 { throw Errno(Int32(-result)) }
    return Int32(result)
}
