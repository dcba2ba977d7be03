// Writing frames (RFC 6455 §5.2) and close payloads (§5.5.1).

/// Builds outgoing frames: a server's unmasked, a client's masked (RFC 6455 §5.1, §5.3).
public enum FrameWriter {
    /// Appends one frame with `opcode` and `payload` (FIN as given; masked with `maskKey` when non-nil, as a
    /// client must) to `out`.
    ///
    /// `maskKey` is the key as its in-memory (little-endian) bytes: the wire carries those four bytes in order.
    @inlinable
    public static func append(
        opcode: UInt8, payload: UnsafeRawBufferPointer, fin: Bool = true, maskKey: UInt32? = nil,
        to out: inout [UInt8]
    ) {
        withUnsafeTemporaryAllocation(byteCount: FrameHeader.maximumSize, alignment: 8) { header in
            let size = writeHeader(
                into: header.baseAddress!, fin: fin, opcode: opcode, length: payload.count, maskKey: maskKey)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: header[..<size]))
        }
        let start = out.count
        out.append(contentsOf: payload)
        if let maskKey, !payload.isEmpty {
            out.withUnsafeMutableBytes { bytes in
                let tail = bytes.baseAddress! + start
                applyMask(maskKey, phase: 0, from: tail, to: tail, count: payload.count)
            }
        }
    }

    /// Writes just the header into `destination` (at most `FrameHeader.maximumSize`, 14 bytes, must be writable
    /// there) and returns its size: the shortest length form (RFC 6455 §5.2).
    @inlinable @inline(__always)
    public static func writeHeader(
        into destination: UnsafeMutableRawPointer, fin: Bool, opcode: UInt8, length: Int, maskKey: UInt32?
    ) -> Int {
        FrameHeader.encode(into: destination, fin: fin, opcode: opcode, length: length, maskKey: maskKey)
    }

    /// The most reason bytes a close payload holds: a control payload is at most 125 bytes (RFC 6455 §5.5), two of
    /// them the code.
    public static let maximumCloseReason = 123

    /// A Close frame's payload (RFC 6455 §5.5.1): the code in network order, then `reason` truncated to at most
    /// 123 bytes without cutting a UTF-8 sequence.
    public static func closePayload(code: CloseCode, reason: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
        let utf8 = reason.utf8
        var end = min(utf8.count, maximumCloseReason)
        if end < utf8.count {
            // Back off continuation bytes (10xxxxxx) so the cut falls before the lead byte of a sequence.
            let bytes = Array(utf8)
            while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
            out += bytes[..<end]
        } else {
            out += utf8
        }
        return out
    }
}
