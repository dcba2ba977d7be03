// Where a relayed body ends: Content-Length, chunked (fed whole, split at every byte, and byte by byte), until close.
import Forwarding
import HTTP1
import Testing

/// Feeds `input` in pieces of `step` bytes; returns how many bytes belonged to the body and whether it ended.
private func run(_ framing: BodyFraming, _ input: [UInt8], step: Int) -> (count: Int, ended: Bool, invalid: Bool) {
    var cursor = BodyCursor()
    cursor.start(framing)
    var taken = 0
    var offset = 0
    while offset < input.count {
        let end = min(input.count, offset + step)
        let result = input[offset..<end].withUnsafeBytes { cursor.take($0) }
        switch result {
        case .invalid:
            return (taken, false, true)
        case .body(let count, let ended):
            taken += count
            if ended { return (taken, true, false) }
            if count < end - offset { return (taken, false, false) }
        }
        offset = end
    }
    return (taken, cursor.isDone, false)
}

struct BodyCursorTests {
    static let chunked = Array("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n".utf8)

    @Test(arguments: [1, 2, 3, 7, 64, 1000])
    func chunkedBodyEndsAfterTheTrailerWhateverTheSplit(step: Int) {
        let next = Array("GET /next HTTP/1.1\r\n\r\n".utf8)
        let result = run(.chunked, Self.chunked + next, step: step)
        #expect(result == (Self.chunked.count, true, false))
    }

    @Test func chunkedPayloadIsCountedWithoutFraming() {
        var cursor = BodyCursor()
        cursor.start(.chunked)
        _ = Self.chunked.withUnsafeBytes { cursor.take($0) }
        #expect(cursor.total == 11)
        #expect(cursor.isDone)
    }

    @Test(arguments: [
        "zz\r\n", "5\r\nhelloXX", "5\nhello\r\n", "ffffffffffffffffff\r\n",
    ])
    func badChunkedFramingIsInvalid(text: String) {
        #expect(run(.chunked, Array(text.utf8), step: 1000).invalid)
    }

    @Test(arguments: [1, 5, 1000])
    func contentLengthStopsAtItsLength(step: Int) {
        let input = Array("0123456789GET / HTTP/1.1\r\n".utf8)
        #expect(run(.contentLength(10), input, step: step) == (10, true, false))
    }

    @Test func emptyBodiesAreDoneAtOnce() {
        var cursor = BodyCursor()
        cursor.start(.contentLength(0))
        #expect(cursor.isDone)
        cursor.start(.none)
        #expect(cursor.isDone)
    }

    @Test func untilCloseTakesEverythingUntilTheClose() {
        var cursor = BodyCursor()
        cursor.start(.untilClose)
        let result = Array("abc".utf8).withUnsafeBytes { cursor.take($0) }
        guard case .body(let count, let ended) = result else {
            Issue.record("unexpected \(result)")
            return
        }
        #expect(count == 3 && !ended && !cursor.isDone)
        cursor.finishAtClose()
        #expect(cursor.isDone)
    }
}
