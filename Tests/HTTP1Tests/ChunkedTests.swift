// Chunked decoder vectors fed at every split point, the encoder's bytes, and encode → decode round trips.

import HTTP1
import Testing

struct ChunkedVector: CustomTestStringConvertible, Sendable {
    let name: String
    let section: String
    let input: String
    /// Expected data and consumed count, or the error.
    let expect: Result<Expected, ChunkedError>
    var decoder = ChunkedDecoder()
    var testDescription: String { "\(name) [\(section)]" }

    struct Expected: Sendable {
        let data: String
        let consumed: Int?
    }

    static func ok(
        _ name: String, _ section: String, _ input: String, _ data: String, consumed: Int? = nil
    )
        -> ChunkedVector
    {
        ChunkedVector(
            name: name, section: section, input: input, expect: .success(Expected(data: data, consumed: consumed)))
    }

    static func bad(
        _ name: String, _ section: String, _ input: String, _ error: ChunkedError,
        decoder: ChunkedDecoder = ChunkedDecoder()
    ) -> ChunkedVector {
        ChunkedVector(name: name, section: section, input: input, expect: .failure(error), decoder: decoder)
    }
}

let chunkedVectors: [ChunkedVector] = [
    .ok("one chunk", "RFC 9112 §7.1", "5\r\nhello\r\n0\r\n\r\n", "hello"),
    .ok("several chunks", "RFC 9112 §7.1", "3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n", "abcdef"),
    .ok("empty body", "RFC 9112 §7.1", "0\r\n\r\n", ""),
    .ok("uppercase hex", "RFC 9112 §7.1", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789"),
    .ok("lowercase hex", "RFC 9112 §7.1", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789"),
    .ok("leading zeros", "RFC 9112 §7.1", "0005\r\nhello\r\n000\r\n\r\n", "hello"),
    .ok("data holding CRLF", "RFC 9112 §7.1", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"),
    .ok("extension", "RFC 9112 §7.1.1", "5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello"),
    .ok("quoted extension", "RFC 9112 §7.1.1", "5;a=\"b c\";d\r\nhello\r\n0\r\n\r\n", "hello"),
    .ok("BWS before an extension", "RFC 9112 §7.1.1", "5 \t;a=1\r\nhello\r\n0\r\n\r\n", "hello"),
    .ok("trailers skipped", "RFC 9112 §7.1.2", "2\r\nhi\r\n0\r\nExpires: never\r\nX-T:\r\n\r\n", "hi"),
    .ok("bytes after the body not consumed", "RFC 9112 §7.1", "2\r\nhi\r\n0\r\n\r\nGET /", "hi", consumed: 12),
    .bad("17 hex digits", "RFC 9112 §7.1", "10000000000000000\r\n", .chunkSizeOverflow),
    .bad("size above 2^63", "RFC 9112 §7.1", "8000000000000001\r\n", .chunkSizeOverflow),
    .bad("missing CRLF after data", "RFC 9112 §7.1", "5\r\nhelloX\r\n0\r\n\r\n", .missingCRLFAfterData),
    .bad("CR without LF after data", "RFC 9112 §7.1", "5\r\nhello\rX0\r\n\r\n", .missingCRLFAfterData),
    .bad("bad hex digit", "RFC 9112 §7.1", "g\r\nx\r\n", .invalidChunkSize),
    .bad("hex prefix", "RFC 9112 §7.1", "0x5\r\nhello\r\n", .invalidChunkSize),
    .bad("negative size", "RFC 9112 §7.1", "-5\r\nhello\r\n", .invalidChunkSize),
    .bad("empty size", "RFC 9112 §7.1", "\r\nhello\r\n", .invalidChunkSize),
    .bad("space after size without extension", "RFC 9112 §7.1.1", "5 \r\nhello\r\n", .invalidChunkSize),
    .bad(
        "oversized extension", "RFC 9112 §7.1.1", "5;" + String(repeating: "x", count: 1100) + "\r\nhello\r\n",
        .extensionTooLong),
    .bad("CTL in an extension", "RFC 9112 §7.1.1", "5;a\u{1}\r\nhello\r\n", .invalidExtension),
    .bad("bare LF after size", "RFC 9112 §7.1", "5\nhello\r\n0\r\n\r\n", .bareLF),
    .bad("bare LF after data", "RFC 9112 §7.1", "5\r\nhello\n0\r\n\r\n", .bareLF),
    .bad("bare CR after size", "RFC 9112 §7.1", "5\rhello\r\n", .bareCR),
    .bad("bare LF ending the body", "RFC 9112 §7.1", "0\r\n\n", .bareLF),
    .bad("bare CR ending the body", "RFC 9112 §7.1", "0\r\n\rX", .bareCR),
    .bad("obs-fold in a trailer", "RFC 9112 §5.2, §7.1.2", "0\r\nA: b\r\n c\r\n\r\n", .invalidTrailer),
    .bad("space before colon in a trailer", "RFC 9112 §5.1, §7.1.2", "0\r\nA : b\r\n\r\n", .invalidTrailer),
    .bad("NUL in a trailer value", "RFC 9110 §5.5, RFC 9112 §7.1.2", "0\r\nA: \u{0}\r\n\r\n", .invalidTrailer),
    .bad("bare LF in trailers", "RFC 9112 §7.1.2", "0\r\nA: b\n\r\n", .bareLF),
    .bad(
        "trailers too large", "RFC 9112 §7.1.2", "0\r\nA: " + String(repeating: "v", count: 90) + "\r\n\r\n",
        .trailersTooLarge, decoder: ChunkedDecoder(maxTrailerBytes: 64)),
]

@Suite("Chunked coding")
struct ChunkedTests {
    @Test("decoder vector whole, at every split point and byte by byte", arguments: chunkedVectors)
    func vector(_ vector: ChunkedVector) {
        let bytes = [UInt8](ascii: vector.input)
        let whole = decodeChunked([bytes[...]], decoder: vector.decoder)
        switch vector.expect {
        case .success(let expected):
            #expect(whole == .end(data: [UInt8](ascii: expected.data), consumed: expected.consumed ?? bytes.count))
        case .failure(let error):
            #expect(whole == .failure(error))
        }
        for (cut, pieces) in everyCut(bytes).dropFirst() {
            let outcome = decodeChunked(pieces, decoder: vector.decoder)
            #expect(outcome == whole, "\(cut)")
            if outcome != whole { break }
        }
    }

    @Test("next(_:) reports data spans inside the input without copying")
    func dataSpans() {
        var decoder = ChunkedDecoder()
        let input = [UInt8](ascii: "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        input.withUnsafeBytes { raw in
            #expect(decoder.next(raw) == .data(3..<6))
            let rest = UnsafeRawBufferPointer(rebasing: raw[6...])
            #expect(decoder.next(rest) == .data(5..<7))
            let tail = UnsafeRawBufferPointer(rebasing: rest[7...])
            #expect(decoder.next(tail) == .end(consumed: 7))
            #expect(decoder.isFinished)
            #expect(decoder.next(tail) == .end(consumed: 0))
        }
        decoder.reset()
        #expect(!decoder.isFinished)
    }

    @Test("a failed decoder keeps failing")
    func stickyFailure() {
        var decoder = ChunkedDecoder()
        let bad = [UInt8](ascii: "z\r\n")
        let good = [UInt8](ascii: "0\r\n\r\n")
        #expect(bad.withUnsafeBytes { decoder.next($0) } == .failure(.invalidChunkSize))
        #expect(good.withUnsafeBytes { decoder.next($0) } == .failure(.invalidChunkSize))
    }

    @Test(
        "chunk header in lowercase hex",
        arguments: [
            (1, "1\r\n"), (9, "9\r\n"), (10, "a\r\n"), (26, "1a\r\n"), (255, "ff\r\n"), (4096, "1000\r\n"),
            (0xFFFF_FFFF, "ffffffff\r\n"),
        ])
    func chunkHeader(count: Int, expected: String) {
        var out: [UInt8] = []
        ChunkedEncoder.appendChunkHeader(count: count, into: &out)
        #expect(text(out) == expected)
    }

    @Test("chunk end and last chunk")
    func framing() {
        var out: [UInt8] = []
        [UInt8](ascii: "hey").withUnsafeBytes { ChunkedEncoder.appendChunk($0, into: &out) }
        ChunkedEncoder.appendLastChunk(into: &out)
        #expect(text(out) == "3\r\nhey\r\n0\r\n\r\n")
        var empty: [UInt8] = []
        [UInt8]().withUnsafeBytes { ChunkedEncoder.appendChunk($0, into: &empty) }
        #expect(empty.isEmpty)
    }

    @Test(
        "encode then decode gives the same bytes", arguments: [[0], [1], [26], [3, 0, 16], [15, 16, 17], [4096, 1]])
    func roundTrip(sizes: [Int]) {
        var payload: [UInt8] = []
        var encoded: [UInt8] = []
        for (index, size) in sizes.enumerated() {
            let piece = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            payload += piece
            piece.withUnsafeBytes { ChunkedEncoder.appendChunk($0, into: &encoded) }
        }
        ChunkedEncoder.appendLastChunk(into: &encoded)
        let cuts = everyCut(encoded).enumerated().filter { encoded.count < 200 || $0.offset % 101 == 0 }
        for (_, (cut, pieces)) in cuts {
            #expect(decodeChunked(pieces) == .end(data: payload, consumed: encoded.count), "\(cut)")
        }
    }
}
