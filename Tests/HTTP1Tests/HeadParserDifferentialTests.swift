// Generated heads, common and hostile, parsed whole (the parser's whole-line fast paths) and byte by byte (none).

import HTTP1
import TestRandom
import Testing

/// Pieces a head is put together from: mostly well-formed, now and then one that departs from the common shape at
/// a place a fast path has to notice (a limit, a stray byte, a line end that is not CRLF).
enum HeadPieces {
    static let methods = ["GET", "POST", "PURGE", "get", "M-SEARCH", "OPTIONS", "G@T", "", "GET!#$%&'*+.^_`|~"]
    static let targets = [
        "/", "/a?b", "/a?b?c", "?", "*", "/ws/socket-1/connect?clientId=u1", "/x#y", "/\t", "/caf\u{e9}",
        "/0123456789abcdefghij", "",
    ]
    static let versions = ["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/1"]
    static let statusLines = [
        "HTTP/1.1 200 OK", "HTTP/1.1 200", "HTTP/1.1 404 ", "HTTP/1.0 599 x\ty", "HTTP/1.1 099 X", "HTTP/1.1 600 X",
        "HTTP/1.1 200 O\u{1}K", "HTTP/1.1 101 Switching Protocols", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK",
        "HTTP/1.1 503 Service  Unavailable \u{e9}", "HTTP/1.1  200 OK", "HTTP/1.1 200 OK\u{7f}",
    ]
    static let names = [
        "Host", "host", "HOST", "Connection", "connection", "Upgrade", "Content-Length", "content-length",
        "Transfer-Encoding", "TE", "te", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "HTTP2-Settings",
        "X-Forwarded-For", "x-forwarded-proto", "X-Real-IP", "X-Request-ID", "Accept-Encoding", "Server", "Date",
        "Content-Type", "X", "Hostx", "Hos", "Content-Lengtx", "X-Forwarded-Fo", "!#$%&'*+-.^_`|~09azAZ",
        "Sec-WebSocket-Key", "ABCDEFGH", "ABCDEFGHIJKLMNOP",
    ]
    static let badNames = ["X@Y", "Bad Name", "", "X\u{80}"]
    static let separators = [": ", ": ", ":", ":\t ", " :", ":  "]
    static let values = [
        "a", "127.0.0.1:18556", "identity", "keep-alive", "close", "Upgrade", "keep-alive, Upgrade", "websocket",
        "5", "0", "5, 5", "5, 6", "chunked", "gzip, chunked", "Chunked", "", " ", "a b", "a\tb", " \ta b \t",
        "nginx/1.22.1", "Wed, 02 Dec 2026 02:22:08 GMT", "text/plain; charset=utf-8", "caf\u{e9}", "a\u{0}b",
        "dGhlIHNhbXBsZSBub25jZQ==", "0123456789abcdefghijklmnopqrstuvwxyz", "x\t", "\tx", "a,\tb",
    ]
    static let badValues = ["a\u{0}b", "\u{1}", "a\u{7f}", "\u{7f}", "0123456\u{7f}", "01234567\u{1}"]
    static let lineEnds = ["\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n", " \r\n"]

    static func head(_ random: inout SplitMix64, kind: HeadParser.Kind) -> [UInt8] {
        var text = ""
        if kind == .request && random.chance(5) { text += "\r\n" }
        if kind == .request {
            if random.chance(85) {
                text += "GET / HTTP/1.1"
            } else {
                text += random.pick(methods) + " " + random.pick(targets) + " " + random.pick(versions)
            }
        } else {
            text += random.chance(85) ? "HTTP/1.1 200 OK" : random.pick(statusLines)
        }
        text += random.chance(90) ? "\r\n" : random.pick(lineEnds)
        if kind == .request && random.chance(90) { text += "Host: a\r\n" }
        for _ in 0..<random.below(7) {
            if random.chance(2) { text += random.pick([" folded", "\tfolded"]) + "\r\n" }
            text += random.chance(97) ? random.pick(names) : random.pick(badNames)
            text += random.chance(90) ? ": " : random.pick(separators)
            text += random.chance(97) ? random.pick(values) : random.pick(badValues)
            text += random.chance(97) ? "\r\n" : random.pick(lineEnds)
        }
        if random.chance(95) { text += random.pick(["\r\n", "\r\n", "\r\n", "\n", "\rX"]) }
        if random.chance(20) { text += "body or the next request" }
        return Array(text.utf8)
    }
}

@Suite("Head parser whole against byte by byte")
struct HeadParserDifferentialTests {
    @Test("generated heads parse the same whole, split in three and byte by byte", arguments: [0, 1, 2, 3])
    func generated(seed: UInt64) {
        var random = SplitMix64(seed: seed &* 0x1234_5678_9ABC_DEF1)
        var completed = 0
        var failed = 0
        for round in 0..<2500 {
            let kind: HeadParser.Kind = random.chance(50) ? .request : .response
            let bytes = HeadPieces.head(&random, kind: kind)
            // Mostly the defaults; sometimes limits a generated head reaches, so they fall inside a line.
            let limits =
                random.chance(70)
                ? Limits()
                : Limits(
                    maxRequestLine: 8 + random.below(40), maxHeaderBytes: 20 + random.below(200),
                    maxHeaderCount: 1 + random.below(6))
            let whole = feed([bytes[...]], kind: kind, limits: limits)
            let bytewise = feed(bytes.indices.map { bytes[$0...$0] }, kind: kind, limits: limits)
            #expect(whole == bytewise, "seed \(seed) round \(round): \(text(bytes).debugDescription)")
            let a = random.below(bytes.count + 1)
            let b = random.below(bytes.count + 1)
            let pieces = [bytes[..<min(a, b)], bytes[min(a, b)..<max(a, b)], bytes[max(a, b)...]]
            let split = feed(pieces, kind: kind, limits: limits)
            #expect(split == whole, "seed \(seed) round \(round) split at \(a), \(b): \(text(bytes).debugDescription)")
            if whole != bytewise || split != whole { return }
            switch whole {
            case .complete: completed += 1
            case .failure: failed += 1
            case .incomplete: break
            }
        }
        // The generator reaches both outcomes often, or the comparison above says little.
        #expect(completed >= 500 && failed >= 500, "completed \(completed), failed \(failed)")
    }

    @Test("a parser reused after reset parses like a fresh one")
    func reuse() {
        var random = SplitMix64(seed: 99)
        var reused = HeadParser(kind: .request)
        for round in 0..<1000 {
            let bytes = HeadPieces.head(&random, kind: .request)
            reused.reset()
            let step = reused.parse(bytes)
            var fresh = HeadParser(kind: .request)
            #expect(fresh.parse(bytes) == step, "round \(round)")
            if case .complete = step {
                #expect(HeadSummary(reused) == HeadSummary(fresh), "round \(round)")
                #expect(Array(reused.headBytes) == Array(fresh.headBytes), "round \(round)")
            }
        }
    }
}
