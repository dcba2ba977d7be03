// IPv4 and IPv6 socket addresses: text parsing and formatting without Foundation, and sockaddr conversion.
import CLinux
import Glibc

/// An IPv4 or IPv6 address with a port. Addresses are held in host byte order.
public enum SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 address (host order, `127.0.0.1` is `0x7f00_0001`) and port.
    case v4(address: UInt32, port: UInt16)
    /// IPv6 address as 16 bytes in network order split into two host-order halves, port and scope id.
    case v6(high: UInt64, low: UInt64, port: UInt16, scope: UInt32)

    public static func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) -> SocketAddress {
        .v4(address: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d), port: port)
    }

    public static func loopback(port: UInt16) -> SocketAddress { .v4(address: 0x7f00_0001, port: port) }

    public var port: UInt16 {
        switch self {
        case .v4(_, let port), .v6(_, _, let port, _): port
        }
    }

    public func with(port: UInt16) -> SocketAddress {
        switch self {
        case .v4(let address, _): .v4(address: address, port: port)
        case .v6(let high, let low, _, let scope): .v6(high: high, low: low, port: port, scope: scope)
        }
    }

    public var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// The address without the port: `127.0.0.1` or `::1` (RFC 5952 §4 canonical form).
    public var hostText: String {
        switch self {
        case .v4(let a, _):
            return "\(a >> 24).\((a >> 16) & 0xff).\((a >> 8) & 0xff).\(a & 0xff)"
        case .v6(let high, let low, _, _):
            var groups = [UInt16](repeating: 0, count: 8)
            for index in 0..<4 {
                groups[index] = UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * index))
                groups[index + 4] = UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * index))
            }
            // RFC 5952 §4.2: compress the longest run (length ≥ 2) of zero groups, the first one on ties.
            var bestStart = -1
            var bestLength = 1
            var index = 0
            while index < 8 {
                if groups[index] == 0 {
                    var end = index
                    while end < 8 && groups[end] == 0 { end += 1 }
                    if end - index > bestLength {
                        bestStart = index
                        bestLength = end - index
                    }
                    index = end
                } else {
                    index += 1
                }
            }
            func hex(_ range: Range<Int>) -> String {
                groups[range].map { String($0, radix: 16) }.joined(separator: ":")
            }
            if bestStart < 0 { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        }
    }

    /// `127.0.0.1:8080` or `[::1]:8080`.
    public var description: String {
        isIPv6 ? "[\(hostText)]:\(port)" : "\(hostText):\(port)"
    }

    /// Parses `"127.0.0.1:8080"` or `"[::1]:8080"`; nil when malformed.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close + 1 < bytes.count,
                bytes[close + 1] == UInt8(ascii: ":"),
                let host = SocketAddress.parseIPv6(bytes[1..<close]),
                let port = SocketAddress.parsePort(bytes[(close + 2)...])
            else { return nil }
            self = .v6(high: host.high, low: host.low, port: port, scope: 0)
        } else {
            guard let colon = bytes.lastIndex(of: UInt8(ascii: ":")),
                let host = SocketAddress.parseIPv4(bytes[..<colon]),
                let port = SocketAddress.parsePort(bytes[(colon + 1)...])
            else { return nil }
            self = .v4(address: host, port: port)
        }
    }

    /// Parses a bare host (`"10.0.0.1"` or `"fe80::1"`) with the given port.
    public init?(host: String, port: UInt16) {
        let bytes = Array(host.utf8)
        if let v4 = SocketAddress.parseIPv4(bytes[...]) {
            self = .v4(address: v4, port: port)
        } else if let v6 = SocketAddress.parseIPv6(bytes[...]) {
            self = .v6(high: v6.high, low: v6.low, port: port, scope: 0)
        } else {
            return nil
        }
    }

    static func parsePort(_ bytes: ArraySlice<UInt8>) -> UInt16? {
        guard !bytes.isEmpty, bytes.count <= 5 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= 48 && byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        return value <= 65535 ? UInt16(value) : nil
    }

    /// Dotted quad, four decimal parts 0...255, no leading zeros (they mean octal to inet_aton).
    static func parseIPv4(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        var result: UInt32 = 0
        var parts = 0
        var value = -1
        var digits = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard value >= 0, parts < 3 else { return nil }
                result = result << 8 | UInt32(value)
                parts += 1
                value = -1
                digits = 0
            } else if byte >= 48 && byte <= 57 {
                if value == 0 { return nil }
                value = max(value, 0) * 10 + Int(byte - 48)
                digits += 1
                guard value <= 255, digits <= 3 else { return nil }
            } else {
                return nil
            }
        }
        guard value >= 0, parts == 3 else { return nil }
        return result << 8 | UInt32(value)
    }

    /// RFC 4291 §2.2 text forms: eight groups, `::` compression, and a trailing dotted quad.
    static func parseIPv6(_ bytes: ArraySlice<UInt8>) -> (high: UInt64, low: UInt64)? {
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawDoubleColon = false
        var index = bytes.startIndex
        let end = bytes.endIndex
        if bytes.starts(with: [58, 58]) {
            sawDoubleColon = true
            index += 2
        } else if bytes.first == 58 {
            return nil
        }
        while index < end {
            // A dotted quad may end the address (`::ffff:1.2.3.4`).
            var groupEnd = index
            while groupEnd < end && bytes[groupEnd] != 58 { groupEnd += 1 }
            let part = bytes[index..<groupEnd]
            if part.contains(UInt8(ascii: ".")) {
                guard groupEnd == end, let v4 = parseIPv4(part) else { return nil }
                let pair: [UInt16] = [UInt16(v4 >> 16), UInt16(v4 & 0xffff)]
                if sawDoubleColon { tail += pair } else { head += pair }
                index = end
                break
            }
            guard !part.isEmpty, part.count <= 4 else { return nil }
            var value: UInt16 = 0
            for byte in part {
                guard let digit = hexValue(byte) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            if sawDoubleColon { tail.append(value) } else { head.append(value) }
            index = groupEnd
            if index < end {
                index += 1  // the ':'
                if index < end && bytes[index] == 58 {
                    guard !sawDoubleColon else { return nil }
                    sawDoubleColon = true
                    index += 1
                } else if index == end {
                    return nil
                }
            }
        }
        let count = head.count + tail.count
        if sawDoubleColon {
            guard count <= 7 else { return nil }
        } else {
            guard count == 8 else { return nil }
        }
        let groups = head + [UInt16](repeating: 0, count: 8 - count) + tail
        var high: UInt64 = 0
        var low: UInt64 = 0
        for group in groups[0..<4] { high = high << 16 | UInt64(group) }
        for group in groups[4..<8] { low = low << 16 | UInt64(group) }
        return (high, low)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: byte - 48
        case 97...102: byte - 87
        case 65...70: byte - 55
        default: nil
        }
    }

    /// Calls `body` with this address as a `sockaddr` and its length.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(Errno) -> R) throws(Errno) -> R {
        var storage = sockaddr_storage()
        let length = write(to: &storage)
        return try withUnsafePointer(to: &storage) { (pointer) throws(Errno) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) -> R in
                try body(address, length)
            }
        }
    }

    func write(to storage: inout sockaddr_storage) -> socklen_t {
        switch self {
        case .v4(let address, let port):
            return withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    pointer.pointee.sin_family = sa_family_t(AF_INET)
                    pointer.pointee.sin_port = port.bigEndian
                    pointer.pointee.sin_addr.s_addr = address.bigEndian
                    return socklen_t(MemoryLayout<sockaddr_in>.size)
                }
            }
        case .v6(let high, let low, let port, let scope):
            return withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    pointer.pointee.sin6_family = sa_family_t(AF_INET6)
                    pointer.pointee.sin6_port = port.bigEndian
                    pointer.pointee.sin6_flowinfo = 0
                    pointer.pointee.sin6_scope_id = scope
                    withUnsafeMutableBytes(of: &pointer.pointee.sin6_addr) { raw in
                        raw.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                        raw.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
                    }
                    return socklen_t(MemoryLayout<sockaddr_in6>.size)
                }
            }
        }
    }

    /// Reads an `AF_INET`/`AF_INET6` address from `sockaddr_storage`; nil for other families.
    init?(storage: borrowing sockaddr_storage) {
        var copy = copy storage
        let family = Int32(copy.ss_family)
        if family == AF_INET {
            let value = withUnsafePointer(to: &copy) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
            }
            self = .v4(address: UInt32(bigEndian: value.sin_addr.s_addr), port: UInt16(bigEndian: value.sin_port))
        } else if family == AF_INET6 {
            var value = withUnsafePointer(to: &copy) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
            }
            let (high, low) = withUnsafeBytes(of: &value.sin6_addr) { raw in
                (
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                )
            }
            self = .v6(
                high: high, low: low, port: UInt16(bigEndian: value.sin6_port), scope: value.sin6_scope_id)
        } else {
            return nil
        }
    }
}
