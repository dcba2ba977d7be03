// Encoding of queries, and the 2-byte length framing of DNS over TCP.

/// Appends a standard query for `name`/`type`, class IN, to `buffer` (RFC 1035 §4.1): one question, RD set when
/// `recursionDesired`. With `udpPayloadSize` (default 1232, the DNS Flag Day 2020 figure) an EDNS0 OPT record
/// advertising that payload size is added to the additional section (RFC 6891 §6.1.2); pass `nil` for a plain
/// RFC 1035 query.
public func encodeQuery(
    id: UInt16, name: Name, type: RecordType, recursionDesired: Bool = true, udpPayloadSize: UInt16? = 1232,
    into buffer: inout [UInt8]
) {
    buffer.reserveCapacity(buffer.count + 12 + name.wire.count + 4 + 11)
    appendU16(id, to: &buffer)
    appendU16(recursionDesired ? 0x0100 : 0, to: &buffer)
    appendU16(1, to: &buffer)  // QDCOUNT
    appendU16(0, to: &buffer)  // ANCOUNT
    appendU16(0, to: &buffer)  // NSCOUNT
    appendU16(udpPayloadSize == nil ? 0 : 1, to: &buffer)  // ARCOUNT
    name.encode(into: &buffer)
    appendU16(type.rawValue, to: &buffer)
    appendU16(RecordClass.internet.rawValue, to: &buffer)
    if let udpPayloadSize {
        // OPT: root owner, TYPE 41, CLASS = payload size, TTL = extended RCODE 0 / version 0 / flags 0, no options.
        buffer.append(0)
        appendU16(RecordType.opt.rawValue, to: &buffer)
        appendU16(udpPayloadSize, to: &buffer)
        buffer.append(contentsOf: [0, 0, 0, 0, 0, 0])
    }
}

/// Appends a query framed for TCP: the 2-byte big-endian message length, then the message
/// (RFC 1035 §4.2.2, RFC 7766 §8).
public func encodeTCPQuery(
    id: UInt16, name: Name, type: RecordType, recursionDesired: Bool = true, udpPayloadSize: UInt16? = 1232,
    into buffer: inout [UInt8]
) {
    let prefixAt = buffer.count
    buffer.append(0)
    buffer.append(0)
    encodeQuery(
        id: id, name: name, type: type, recursionDesired: recursionDesired, udpPayloadSize: udpPayloadSize,
        into: &buffer)
    // A query is at most 12 + 255 + 4 + 11 bytes, far below 65535.
    let length = buffer.count - prefixAt - 2
    buffer[prefixAt] = UInt8(truncatingIfNeeded: length >> 8)
    buffer[prefixAt + 1] = UInt8(truncatingIfNeeded: length)
}

/// Splits a TCP byte stream into DNS messages, each preceded by its 2-byte length (RFC 1035 §4.2.2). Feed it
/// whatever a read returned; take complete messages out with `nextMessage()`. A connection carries at most one
/// 65535-byte message plus one partial one, so the buffer is bounded.
public struct TCPFramer: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    /// The number of bytes held that do not yet form a complete message.
    public var bufferedCount: Int { buffer.count - start }

    /// Appends bytes read from the stream.
    public mutating func append(_ bytes: some Collection<UInt8>) {
        // Drop consumed bytes before growing, so the buffer holds at most one partial message plus the new bytes.
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message without its length prefix, or `nil` when more bytes are needed.
    public mutating func nextMessage() -> [UInt8]? {
        guard buffer.count - start >= 2 else { return nil }
        let length = Int(buffer[start]) << 8 | Int(buffer[start + 1])
        guard buffer.count - start - 2 >= length else { return nil }
        let message = Array(buffer[start + 2..<start + 2 + length])
        start += 2 + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return message
    }
}

@inline(__always)
func appendU16(_ value: UInt16, to buffer: inout [UInt8]) {
    buffer.append(UInt8(truncatingIfNeeded: value >> 8))
    buffer.append(UInt8(truncatingIfNeeded: value))
}
