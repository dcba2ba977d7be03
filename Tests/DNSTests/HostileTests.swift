// Hostile and malformed messages: each must give its specific error, and random mutations must never crash.

import DNS
import TestRandom
import Testing

@Suite struct HostileTests {
    /// A message whose answer 1 (type 99) carries `rdata` at offset 31 and whose answer 2's name is `entry`.
    /// Layout: header 0–11, question "a" 12–18, answer 1 name (c00c) 19–20, fixed part 21–30, rdata from 31.
    static func withRawRegion(_ rdata: [UInt8], entry: [UInt8]) -> [UInt8] {
        var bytes = Bytes.header(answers: 2)
        bytes.question("a")
        bytes.raw([0xC0, 12])
        bytes.record(type: 99, rdata: rdata)
        bytes.raw(entry)
        bytes.record(type: 1, rdata: [1, 2, 3, 4])
        return bytes.bytes
    }

    static func nameChainPast255() -> [UInt8] {
        // Four questions, each one 63-byte label plus a pointer to the previous: the fourth name is 257 bytes.
        var bytes = Bytes.header(questions: 4)
        var previous = -1
        for letter in ["a", "b", "c", "d"] {
            let start = bytes.count
            bytes.raw([63] + Array(repeating: UInt8(ascii: letter == "a" ? "a" : "b"), count: 63))
            if previous < 0 { bytes.raw([0]) } else { bytes.raw([0xC0, UInt8(previous)]) }
            bytes.u16(1)
            bytes.u16(1)
            previous = start
        }
        return bytes.bytes
    }

    static func simple(_ build: (inout Bytes) -> Void) -> [UInt8] {
        var bytes = Bytes.header()
        build(&bytes)
        return bytes.bytes
    }

    static let vectors: [(String, [UInt8], DNSError)] = [
        ("empty message", [], .messageTooShort(length: 0)),
        ("header of 11 bytes", Array(repeating: 0, count: 11), .messageTooShort(length: 11)),
        ("self pointer", simple { $0.raw([0xC0, 12, 0, 1, 0, 1]) }, .pointerNotBackward(offset: 12, target: 12)),
        (
            "forward pointer", simple { $0.raw([0xC0, 20, 0, 1, 0, 1, 0, 0, 1, 0, 0]) },
            .pointerNotBackward(offset: 12, target: 20)
        ),
        (
            "two-pointer cycle", withRawRegion([0xC0, 33, 0xC0, 31], entry: [0xC0, 33]),
            .pointerNotBackward(offset: 31, target: 33)
        ),
        // Every pointer points before itself, yet 35 -> 33 -> label -> 35 loops; targets must also decrease.
        (
            "backward-only cycle", withRawRegion([3, 0x78, 1, 0x79, 0xC0, 33], entry: [0xC0, 31]),
            .pointerNotBackward(offset: 35, target: 33)
        ),
        ("pointer past end", simple { $0.raw([0xC0]) }, .pointerPastEnd(offset: 12)),
        ("pointer target past end", simple { $0.raw([1, 0x61, 0xC0, 0xFF]) }, .pointerPastEnd(offset: 14)),
        ("label length past end", simple { $0.raw([5, 0x61, 0x62]) }, .labelPastEnd(offset: 12)),
        ("name without terminator", simple { $0.raw([1, 0x61]) }, .labelPastEnd(offset: 14)),
        ("name over 255 via pointers", nameChainPast255(), .nameTooLong),
        ("label type 0x40", simple { $0.raw([0x41, 0, 0, 1, 0, 1]) }, .reservedLabelType(offset: 12, byte: 0x41)),
        ("label type 0x80", simple { $0.raw([1, 0x61, 0x80, 0]) }, .reservedLabelType(offset: 14, byte: 0x80)),
        ("question count past end", Bytes.header(questions: 1).bytes, .sectionPastEnd(section: .question, index: 0)),
        (
            "question without type", simple { $0.raw([1, 0x61, 0, 0, 1]) },
            .sectionPastEnd(section: .question, index: 0)
        ),
        (
            "answer count 5, one record",
            {
                var bytes = Bytes.header(answers: 5)
                bytes.question("a")
                bytes.raw([0xC0, 12])
                bytes.record(type: 1, rdata: [10, 0, 0, 1])
                return bytes.bytes
            }(), .sectionPastEnd(section: .answer, index: 1)
        ),
        (
            "authority count past end", Bytes.header(questions: 0, authority: 1).bytes,
            .sectionPastEnd(section: .authority, index: 0)
        ),
        (
            "record fixed part cut", simple { $0.raw([0, 0, 1, 0, 1, 0, 0, 1]) }.withAnswers(1),
            .sectionPastEnd(section: .answer, index: 0)
        ),
        (
            "rdlength past end",
            {
                var bytes = Bytes.header(answers: 1)
                bytes.question("a")
                bytes.raw([0xC0, 12])
                bytes.record(type: 1, rdata: [10, 0], length: 4)
                return bytes.bytes
            }(), .rdataPastEnd(offset: 31)
        ),
        (
            "A with rdlength 3",
            {
                var bytes = Bytes.header(answers: 1)
                bytes.question("a")
                bytes.raw([0xC0, 12])
                bytes.record(type: 1, rdata: [10, 0, 0])
                return bytes.bytes
            }(), .badRDataLength(type: .a, length: 3)
        ),
        (
            "AAAA with rdlength 4",
            {
                var bytes = Bytes.header(answers: 1)
                bytes.question("a", type: 28)
                bytes.raw([0xC0, 12])
                bytes.record(type: 28, rdata: [10, 0, 0, 1])
                return bytes.bytes
            }(), .badRDataLength(type: .aaaa, length: 4)
        ),
        (
            "CNAME name runs past rdlength",
            {
                var bytes = Bytes.header(answers: 1)
                bytes.question("a")
                bytes.raw([0xC0, 12])
                bytes.record(type: 5, rdata: [1, 0x62, 0], length: 2)
                return bytes.bytes
            }(), .rdataNameMismatch(offset: 31)
        ),
        (
            "SOA too short",
            {
                var bytes = Bytes.header(answers: 0, authority: 1)
                bytes.question("a")
                bytes.raw([0xC0, 12])
                bytes.record(type: 6, rdata: [0, 0, 0, 0, 0, 0, 0])
                return bytes.bytes
            }(), .rdataNameMismatch(offset: 31)
        ),
    ]

    @Test(arguments: vectors)
    func hostileMessageGivesSpecificError(label: String, bytes: [UInt8], error: DNSError) {
        #expect(throws: error, "\(label)") { try decodeResponse(bytes) }
    }

    static func chain(_ links: [(String, String)], final: String? = nil) -> [UInt8] {
        var bytes = Bytes.header(answers: UInt16(links.count + (final == nil ? 0 : 1)))
        bytes.question("a.test")
        for (owner, target) in links {
            bytes.name(owner)
            var rdata = Bytes()
            rdata.name(target)
            bytes.record(type: 5, rdata: rdata.bytes)
        }
        if let final {
            bytes.name(final)
            bytes.record(type: 1, rdata: [10, 0, 0, 9])
        }
        return bytes.bytes
    }

    static let answerVectors: [(String, [UInt8], RecordType, DNSError)] = [
        ("cname loop a -> b -> a", chain([("a.test", "b.test"), ("b.test", "a.test")]), .a, .cnameLoop),
        ("cname self loop", chain([("a.test", "a.test")]), .a, .cnameLoop),
        (
            "cname chain of 9 hops",
            chain((0..<9).map { ($0 == 0 ? "a.test" : "c\($0).test", "c\($0 + 1).test") }, final: "c9.test"), .a,
            .cnameChainTooLong
        ),
        ("question type differs", Captured.a, .aaaa, .questionMismatch),
        ("question name differs", chain([], final: "a.test").replacing(at: 13, with: 0x62), .a, .questionMismatch),
    ]

    @Test(arguments: answerVectors)
    func hostileAnswerGivesSpecificError(label: String, bytes: [UInt8], type: RecordType, error: DNSError) throws {
        let message = try decodeResponse(bytes)
        let question = label.hasPrefix("question type") ? name("www.example.test") : name("a.test")
        #expect(throws: error, "\(label)") { try extractAddresses(message: message, question: question, type: type) }
    }

    @Test func eightHopsAreFollowed() throws {
        let bytes = Self.chain(
            (0..<8).map { ($0 == 0 ? "a.test" : "c\($0).test", "c\($0 + 1).test") }, final: "c8.test")
        let answer = try extractAddresses(message: decodeResponse(bytes), question: name("a.test"), type: .a)
        #expect(answer == .addresses([v4("10.0.0.9")], ttl: 60))
    }

    @Test func hugeCountsDoNotAllocate() {
        // 65535 answers promised in 12 bytes: fails on the first, after reserving nothing.
        #expect(throws: DNSError.sectionPastEnd(section: .answer, index: 0)) {
            try decodeResponse(Bytes.header(questions: 0, answers: 0xFFFF).bytes)
        }
    }

    /// 20,000 seeded random mutations of the captured vectors: decoding either fails with a `DNSError` or gives
    /// names that respect RFC 1035's limits, and extraction never crashes.
    @Test func randomMutationsNeverCrash() {
        var random = SplitMix64(seed: 0x5EED_D15E_A5E5)
        var decoded = 0
        var rejected = 0
        var invalidNames = 0
        for _ in 0..<20_000 {
            var bytes = Captured.all[Int(random.next() % UInt64(Captured.all.count))]
            for _ in 0...(random.next() % 4) {
                let roll = random.next()
                let position = bytes.isEmpty ? 0 : Int(roll >> 8 % UInt64(bytes.count)) % bytes.count
                switch roll % 6 {
                case 0: if !bytes.isEmpty { bytes[position] ^= UInt8(1 << (roll >> 40 % 8)) }
                case 1: if !bytes.isEmpty { bytes[position] = UInt8(truncatingIfNeeded: roll >> 32) }
                case 2: bytes.removeLast(min(bytes.count, Int(roll >> 48 % 64)))
                case 3: bytes.insert(UInt8(truncatingIfNeeded: roll >> 24), at: position)
                case 4: if !bytes.isEmpty { bytes[position] = 0xC0 | UInt8(truncatingIfNeeded: roll >> 32) & 0x3F }
                default:
                    // Count fields are the favourite target.
                    if bytes.count >= 12 { bytes[4 + Int(roll >> 16 % 8)] = UInt8(truncatingIfNeeded: roll >> 32) }
                }
            }
            do {
                let message = try decodeResponse(bytes)
                decoded += 1
                let names =
                    message.questions.map(\.name)
                    + (message.answers + message.authority + message.additional).map(\.name)
                for name in names where !isValidWire(name.wire) { invalidNames += 1 }
                if let question = message.questions.first {
                    _ = try? extractAddresses(message: message, question: question.name, type: question.type)
                }
            } catch {
                rejected += 1
            }
        }
        #expect(decoded + rejected == 20_000)
        #expect(decoded > 1000 && rejected > 1000)
        #expect(invalidNames == 0)
    }

    func isValidWire(_ wire: [UInt8]) -> Bool {
        guard wire.count <= 255, wire.last == 0 else { return false }
        var offset = 0
        while wire[offset] != 0 {
            guard wire[offset] <= 63 else { return false }
            offset += Int(wire[offset]) + 1
            guard offset < wire.count else { return false }
        }
        return offset == wire.count - 1
    }
}

extension [UInt8] {
    func withAnswers(_ count: UInt16) -> [UInt8] {
        var copy = self
        copy[4] = 0
        copy[5] = 0
        copy[6] = UInt8(count >> 8)
        copy[7] = UInt8(count & 0xFF)
        return copy
    }

    func replacing(at index: Int, with byte: UInt8) -> [UInt8] {
        var copy = self
        copy[index] = byte
        return copy
    }
}
