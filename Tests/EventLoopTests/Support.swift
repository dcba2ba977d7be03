// Helpers for loop tests: deterministic byte patterns, echo handlers (the running loop is in TestSupport).
import EventLoop
import Synchronization
import Sys
import TestSupport

/// Byte `offset` of stream `stream`: a pattern that exposes reordering, loss and duplication.
@inline(__always)
func patternByte(stream: Int, offset: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: (offset &* 131) ^ (offset >> 9) ^ (stream &* 7919))
}

/// Echo server handler: echoes, pauses reading while the echo cannot be sent.
final class EchoServer: AcceptHandler, ConnectionHandler {
    let accepted = Atomic<Int>(0)
    let closedCount = Atomic<Int>(0)

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        accepted.add(1, ordering: .relaxed)
        _ = try? Connection(loop: listener.loop, fd: fd, handler: self)
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        connection.write(bytes)
    }

    func writabilityChanged(_ connection: Connection, writable: Bool) {
        if writable { connection.resumeReading() } else { connection.pauseReading() }
    }

    func closed(_ connection: Connection, error: Errno?) {
        closedCount.add(1, ordering: .relaxed)
    }
}

extension EchoServer: @unchecked Sendable {}
