// io_uring operations the relay floor of rtc-bench needs beyond IOURing.swift: connect(2) as a submission, with its
// address at a stable heap address, and a probe of the socket opcodes.
import CLinux
import Glibc

/// A socket address in a `sockaddr_storage` at a stable heap address, for submissions that read it later (an
/// io_uring connect reads the address when it runs, not when it is queued).
///
/// Invariant: `storage` is initialized for the object's whole life and never written after `init`.
public final class StableSocketAddress {
    let storage: UnsafeMutablePointer<sockaddr_storage>
    let length: socklen_t
    public let address: SocketAddress

    public init(_ address: SocketAddress) {
        self.address = address
        storage = .allocate(capacity: 1)
        storage.initialize(to: sockaddr_storage())
        length = address.write(to: &storage.pointee)
    }

    deinit {
        storage.deinitialize(count: 1)
        storage.deallocate()
    }
}

extension IOURing {
    /// connect(2) of `fd` to `address` (which must outlive the operation); completes with 0 or a negated errno.
    public func connect(_ fd: FileDescriptor, to address: StableSocketAddress, userData: UInt64) throws(Errno) {
        let sqe = try nextSQE()
        let pointer = UnsafeMutableRawPointer(address.storage).assumingMemoryBound(to: sockaddr.self)
        io_uring_prep_connect(sqe, fd.rawValue, pointer, address.length)
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// Whether the kernel has every opcode a socket relay uses: accept, connect, recv, send, shutdown, cancel and
    /// provided buffers.
    public var supportsSocketRelay: Bool {
        supports(IORING_OP_ACCEPT) && supports(IORING_OP_CONNECT) && supports(IORING_OP_RECV)
            && supports(IORING_OP_SEND) && supports(IORING_OP_SHUTDOWN) && supports(IORING_OP_ASYNC_CANCEL)
            && supports(IORING_OP_PROVIDE_BUFFERS)
    }
}
