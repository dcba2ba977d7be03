// A blocking keep-alive HTTP client that allocates nothing per request, for the allocation probes.
import Glibc

public enum KeepAliveClientError: Error {
    case connect(Int32)
}

/// A blocking TCP socket connected to 127.0.0.1:`port`, with a receive timeout in seconds; throws
/// `KeepAliveClientError.connect(errno)` when the connect fails.
public func connectedLoopbackSocket(port: UInt16, receiveTimeout: Double) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard rc == 0 else {
        let error = errno
        Glibc.close(fd)
        throw KeepAliveClientError.connect(error)
    }
    var timeout = timeval(
        tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout.truncatingRemainder(dividingBy: 1)) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// A blocking keep-alive client that allocates nothing per request: fixed request bytes, one receive buffer.
public final class KeepAliveClient {
    let fd: Int32
    let request: [UInt8]
    var buffer = [UInt8](repeating: 0, count: 8192)
    /// The length of the whole response, learned from the first round trip.
    public var responseLength = 0

    /// Connects to 127.0.0.1:`port`; `request` is sent as is by each round trip (its response must end in `ok`).
    public init(port: UInt16, request: String) throws {
        self.request = Array(request.utf8)
        fd = try connectedLoopbackSocket(port: port, receiveTimeout: 5)
    }

    deinit { Glibc.close(fd) }

    /// One request and its whole response (the first call learns the length); returns the byte count or -1.
    public func roundTrip() -> Int {
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return -1 }
        var total = 0
        repeat {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + total, $0.count - total, 0) }
            // A signal handler that ran during the wait makes recv(2) on a socket with SO_RCVTIMEO fail with EINTR
            // (never restarted, socket(7)): returning then would leave this request's response unread, and every
            // later round trip one response behind.
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return -1 }
            total += count
        } while responseLength == 0 ? !endsWithBody(total) : total < responseLength
        return total
    }

    private func endsWithBody(_ total: Int) -> Bool {
        total >= 4 && buffer[total - 2] == UInt8(ascii: "o") && buffer[total - 1] == UInt8(ascii: "k")
    }
}
