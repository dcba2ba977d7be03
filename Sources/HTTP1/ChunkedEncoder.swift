// Writers of the chunked transfer coding's framing (RFC 9112 §7.1): chunk header, data CRLF, last chunk.

/// Appends chunked framing around data the caller writes itself, so data is never copied through here.
public enum ChunkedEncoder {
    /// `chunk-size CRLF` in lowercase hex, e.g. `1a\r\n` for 26 (RFC 9112 §7.1). `count` must be above zero:
    /// a zero-size chunk is the last chunk, written by `appendLastChunk`.
    public static func appendChunkHeader(count: Int, into out: inout [UInt8]) {
        precondition(count > 0, "a zero-size chunk ends the body; use appendLastChunk")
        var shift = (Int.bitWidth - count.leadingZeroBitCount - 1) / 4 * 4
        while shift >= 0 {
            let digit = UInt8((count >> shift) & 0xF)
            out.append(digit < 10 ? 0x30 + digit : 0x57 + digit)
            shift -= 4
        }
        out.append(ByteClass.cr)
        out.append(ByteClass.lf)
    }

    /// The CRLF that follows the data of each chunk.
    public static func appendChunkEnd(into out: inout [UInt8]) {
        out.append(ByteClass.cr)
        out.append(ByteClass.lf)
    }

    /// The last chunk and an empty trailer section: `0\r\n\r\n`.
    public static func appendLastChunk(into out: inout [UInt8]) {
        out.append(0x30)
        appendChunkEnd(into: &out)
        appendChunkEnd(into: &out)
    }

    /// A whole chunk: header, `data`, CRLF. Empty data appends nothing (it would read as the last chunk).
    public static func appendChunk(_ data: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        guard data.count > 0 else { return }
        appendChunkHeader(count: data.count, into: &out)
        out.append(contentsOf: data)
        appendChunkEnd(into: &out)
    }
}
