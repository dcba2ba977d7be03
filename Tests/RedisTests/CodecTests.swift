// Pure tests: command encoding, the reply reader over any split of the bytes, SHA-1, back-off and the in-flight queue.
import Testing

@testable import Redis

@Suite struct CodecTests {
    @Test func commandsAreEncodedAsBulkStrings() {
        #expect(CommandEncoder.encode([Array("PING".utf8)]) == Array("*1\r\n$4\r\nPING\r\n".utf8))
        #expect(
            CommandEncoder.encode([Array("SET".utf8), Array("k".utf8), [0x00, 0x0D, 0x0A, 0xFF]])
                == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n".utf8) + [0x00, 0x0D, 0x0A, 0xFF] + Array("\r\n".utf8))
        #expect(
            CommandEncoder.encode([Array("SET".utf8), [], []]) == Array("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n".utf8))
    }

    /// Every reply type, nested arrays, binary bulk strings and nulls.
    static let stream =
        Array(
            ("+OK\r\n-WRONGTYPE Operation against a key\r\n:-42\r\n$-1\r\n*-1\r\n$0\r\n\r\n*0\r\n"
                + "*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n:7\r\n$4\r\n").utf8) + [0x00, 0x0D, 0x0A, 0xFF]
        + Array("\r\n".utf8)

    static let expected: [RedisReply] = [
        .status("OK"), .error("WRONGTYPE Operation against a key"), .integer(-42), .null, .null, .string([]),
        .array([]),
        .array([.array([.string(Array("1-0".utf8)), .array([.string([0x66]), .string([0x76])])]), .integer(7)]),
        .string([0x00, 0x0D, 0x0A, 0xFF]),
    ]

    @Test(arguments: [1, 2, 3, 7, 64, 10_000]) func readerReassemblesAnySplit(chunk: Int) throws {
        let reader = ReplyReader()
        var replies: [RedisReply] = []
        var offset = 0
        while offset < Self.stream.count {
            let end = min(offset + chunk, Self.stream.count)
            try Self.stream[offset..<end].withUnsafeBytes { try reader.feed($0) }
            while let reply = try reader.next() { replies.append(reply) }
            offset = end
        }
        #expect(replies == Self.expected)
        #expect(reader.isIdle)
    }

    @Test func readerHoldsAPartialReplyUntilItIsWhole() throws {
        let reader = ReplyReader()
        try Array("$5\r\nhel".utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(try reader.next() == nil)
        #expect(!reader.isIdle)
        try Array("lo\r\n".utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(try reader.next() == .string(Array("hello".utf8)))
        #expect(try reader.next() == nil)
    }

    // Unknown type bytes, bad numbers, and nesting deeper than hiredis's limit of 7 levels.
    @Test(arguments: [
        "!oops\r\n", ":12x\r\n", "$abc\r\n", "*1\r\n?\r\n", String(repeating: "*1\r\n", count: 9) + ":1\r\n",
    ])
    func hostileBytesAreProtocolErrors(_ text: String) throws {
        let reader = ReplyReader()
        try Array(text.utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(throws: RedisError.self) {
            while try reader.next() != nil {}
        }
    }

    @Test func aLargeReplyIsReassembledAndItsBufferGivenBack() throws {
        let reader = ReplyReader()
        let value = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let bytes = Array("$\(value.count)\r\n".utf8) + value + Array("\r\n".utf8)
        var replies: [RedisReply] = []
        for start in stride(from: 0, to: bytes.count, by: 65536) {
            try bytes[start..<min(start + 65536, bytes.count)].withUnsafeBytes { try reader.feed($0) }
            while let reply = try reader.next() { replies.append(reply) }
            reader.releaseLargeBuffer()
        }
        #expect(replies == [.string(value)])
        #expect(reader.renewals == 1)
        // Small replies afterwards do not renew it again.
        try Array(":1\r\n".utf8).withUnsafeBytes { try reader.feed($0) }
        #expect(try reader.next() == .integer(1))
        reader.releaseLargeBuffer()
        #expect(reader.renewals == 1)
    }

    @Test func replyConveniences() {
        #expect(RedisReply.string(Array("12".utf8)).integerValue == 12)
        #expect(RedisReply.string(Array("x".utf8)).integerValue == nil)
        #expect(RedisReply.integer(5).integerValue == 5)
        #expect(RedisReply.status("OK").stringValue == "OK")
        #expect(RedisReply.string(Array("hé".utf8)).stringValue == "hé")
        #expect(RedisReply.integer(5).stringValue == nil)
        #expect(RedisReply.error("ERR x").errorMessage == "ERR x")
        #expect(RedisReply.array([.null]).arrayValue == [.null])
    }

    // FIPS 180-2 appendix A vectors, and the empty message.
    @Test(arguments: [
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
    ])
    func sha1Vectors(_ message: String, _ digest: String) {
        #expect(SHA1.hex(of: Array(message.utf8)) == digest)
    }

    @Test func sha1OfAMillionA() {
        #expect(
            SHA1.hex(of: [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }

    @Test func backoffDoublesUpToTheMaximumWithJitter() {
        let ms: UInt64 = 1_000_000
        let top = UInt64(UInt32.max)
        #expect(backoffDelay(failedAttempts: 0, minimum: 100 * ms, maximum: 5000 * ms, random: top) == 100 * ms)
        #expect(backoffDelay(failedAttempts: 0, minimum: 100 * ms, maximum: 5000 * ms, random: 0) == 50 * ms)
        #expect(backoffDelay(failedAttempts: 3, minimum: 100 * ms, maximum: 5000 * ms, random: top) == 800 * ms)
        #expect(backoffDelay(failedAttempts: 6, minimum: 100 * ms, maximum: 5000 * ms, random: top) == 5000 * ms)
        #expect(backoffDelay(failedAttempts: 1000, minimum: 100 * ms, maximum: 5000 * ms, random: 0) == 2500 * ms)
        let middle = backoffDelay(failedAttempts: 2, minimum: 100 * ms, maximum: 5000 * ms, random: top / 2)
        #expect(middle > 200 * ms && middle < 400 * ms)
    }

    @Test func inFlightQueueKeepsOrderAndGivesItsArrayBack() {
        var queue = PendingQueue()
        for index in 0..<5000 { queue.append(PendingCommand(kind: .handshake(.auth), deadline: UInt64(index))) }
        var seen: [UInt64] = []
        for index in 0..<2500 {
            seen.append(queue.popFirst()!.deadline)
            if index % 2 == 0 {
                queue.append(PendingCommand(kind: .handshake(.select), deadline: UInt64(5000 + index)))
            }
        }
        #expect(queue.count == 3750)
        #expect(queue.first?.deadline == 2500)
        while let command = queue.popFirst() { seen.append(command.deadline) }
        let appended: [UInt64] = stride(from: 0, to: 2500, by: 2).map { UInt64(5000 + $0) }
        let expected: [UInt64] = (0..<5000).map(UInt64.init) + appended
        #expect(seen == expected)
        #expect(queue.isEmpty)
        #expect(queue.capacity == 0)
    }
}
