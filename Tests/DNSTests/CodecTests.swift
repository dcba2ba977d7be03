// Tests of query encoding, TCP framing, and decoding of responses captured from dnsmasq 2.90.

import DNS
import Testing

/// Responses captured from dnsmasq 2.90 on loopback (authoritative mode for example.test, SOA minimum 60;
/// then resolver mode for the CNAME chain and the truncated answer), queried with EDNS0 payload 1232.
enum Captured {
    /// A www.example.test: two A records, owner names compressed to the question (c00c), NS in authority.
    static let a = hex(
        "12348500000100020001000103777777076578616d706c6504746573740000010001c00c000100010000003c0004c000"
            + "020ac00c000100010000003c0004c000020b076578616d706c65047465737400000200010000003c0012036e73310765"
            + "78616d706c6504746573740000002904d0000000000000")
    /// AAAA v6.example.test: 2001:db8::1.
    static let aaaa = hex(
        "234585000001000100010001027636076578616d706c65047465737400001c0001c00c001c00010000003c001020010d"
            + "b8000000000000000000000001076578616d706c65047465737400000200010000003c0012036e7331076578616d706c"
            + "6504746573740000002904d0000000000000")
    /// A alias.example.test: alias -> mid -> www -> 192.0.2.10, TTL 30, CNAME targets compressed (c030, c04e).
    static let cnameChain = hex(
        "34568580000100030000000105616c696173076578616d706c6504746573740000010001c00c000500010000001e0012"
            + "036d6964076578616d706c65047465737400c030000500010000001e001203777777076578616d706c65047465737400"
            + "c04e000100010000001e0004c000020a00002904d0000000000000")
    /// A alias.example.test from the authoritative server: only the first CNAME, no address.
    static let cnameOnly = hex(
        "34568500000100010001000105616c696173076578616d706c6504746573740000010001c00c000500010000003c0012"
            + "036d6964076578616d706c65047465737400076578616d706c65047465737400000200010000003c0012036e73310765"
            + "78616d706c6504746573740000002904d0000000000000")
    /// A nope.example.test: NXDOMAIN with the zone's SOA (TTL 60, minimum 60).
    static let nxdomain = hex(
        "456785030001000000010001046e6f7065076578616d706c6504746573740000010001076578616d706c650474657374"
            + "00000600010000003c003f036e7331076578616d706c650474657374000a686f73746d6173746572076578616d706c65"
            + "04746573740078a3f175000004b00000007800093a800000003c00002904d0000000000000")
    /// A v6.example.test: NODATA (NOERROR, no answer) with the SOA.
    static let nodata = hex(
        "567885000001000000010001027636076578616d706c6504746573740000010001076578616d706c6504746573740000"
            + "0600010000003c003f036e7331076578616d706c650474657374000a686f73746d6173746572076578616d706c650474"
            + "6573740078a3f175000004b00000007800093a800000003c00002904d0000000000000")
    /// A big.example.test without EDNS0: 40 addresses do not fit 512 bytes, TC set, 29 records kept.
    static let truncated = hex(
        "678987800001001d0000000003626967076578616d706c6504746573740000010001c00c000100010000001e0004c633"
            + "6403c00c000100010000001e0004c6336415c00c000100010000001e0004c633640bc00c000100010000001e0004c633"
            + "6416c00c000100010000001e0004c6336406c00c000100010000001e0004c6336417c00c000100010000001e0004c633"
            + "640cc00c000100010000001e0004c6336418c00c000100010000001e0004c6336402c00c000100010000001e0004c633"
            + "6419c00c000100010000001e0004c633640dc00c000100010000001e0004c633641ac00c000100010000001e0004c633"
            + "6407c00c000100010000001e0004c633641bc00c000100010000001e0004c633640ec00c000100010000001e0004c633"
            + "641cc00c000100010000001e0004c6336404c00c000100010000001e0004c633641dc00c000100010000001e0004c633"
            + "640fc00c000100010000001e0004c633641ec00c000100010000001e0004c6336408c00c000100010000001e0004c633"
            + "641fc00c000100010000001e0004c6336410c00c000100010000001e0004c6336420c00c000100010000001e0004c633"
            + "6401c00c000100010000001e0004c6336421c00c000100010000001e0004c6336411c00c000100010000001e0004c633"
            + "6422c00c000100010000001e0004c6336409")

    static let all = [a, aaaa, cnameChain, cnameOnly, nxdomain, nodata, truncated]
}

@Suite struct CodecTests {
    @Test func encodesQueryWithEDNS() {
        var buffer: [UInt8] = [0xFF]  // appends, never clears
        encodeQuery(id: 0xBEEF, name: name("www.example.com"), type: .a, into: &buffer)
        let expected: [UInt8] = [
            0xFF,
            0xBE, 0xEF, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  // header: RD, QD 1, AR 1
            3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61, 0x6D, 0x70, 0x6C, 0x65, 3, 0x63, 0x6F, 0x6D, 0,
            0x00, 0x01, 0x00, 0x01,  // A, IN
            0x00, 0x00, 0x29, 0x04, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // OPT, payload 1232
        ]
        #expect(buffer == expected)
    }

    @Test func encodesPlainQuery() {
        var buffer: [UInt8] = []
        encodeQuery(
            id: 0x0102, name: name("v6.example.test"), type: .aaaa, recursionDesired: false, udpPayloadSize: nil,
            into: &buffer)
        #expect(buffer == hex("010200000001000000000000027636076578616d706c65047465737400001c0001"))
    }

    @Test func tcpFramingRoundTrip() throws {
        var stream: [UInt8] = []
        encodeTCPQuery(id: 7, name: name("a.b"), type: .a, udpPayloadSize: nil, into: &stream)
        #expect(stream.prefix(2) == [0, 21])
        #expect(stream.count == 23)
        // A response arrives in pieces, followed by the start of another.
        let response = Captured.aaaa
        var framed: [UInt8] = [UInt8(response.count >> 8), UInt8(response.count & 0xFF)] + response
        framed += [0x00, 0x05, 1, 2]
        var framer = TCPFramer()
        framer.append(framed[0..<1])
        #expect(framer.nextMessage() == nil)
        framer.append(framed[1..<50])
        #expect(framer.nextMessage() == nil)
        framer.append(framed[50...])
        #expect(framer.nextMessage() == response)
        #expect(framer.nextMessage() == nil)
        #expect(framer.bufferedCount == 4)
        framer.append([3, 4, 5, 0, 0])
        #expect(framer.nextMessage() == [1, 2, 3, 4, 5])
        #expect(framer.nextMessage() == [])  // a zero-length frame is a (malformed) empty message
        #expect(framer.bufferedCount == 0)
    }

    @Test func decodesCompressedAAnswer() throws {
        let message = try decodeResponse(Captured.a)
        #expect(message.header.id == 0x1234)
        #expect(message.header.isResponse && message.header.authoritative && message.header.recursionDesired)
        #expect(!message.header.truncated && !message.header.recursionAvailable)
        #expect(message.responseCode == .noError)
        #expect(message.questions == [Question(name: name("www.example.test"), type: .a)])
        #expect(
            message.answers == [
                Record(name: name("www.example.test"), type: .a, ttl: 60, data: .a(IPv4Address(192, 0, 2, 10))),
                Record(name: name("www.example.test"), type: .a, ttl: 60, data: .a(IPv4Address(192, 0, 2, 11))),
            ])
        #expect(message.authority.count == 1 && message.authority[0].type == .ns)
        #expect(message.additional.count == 1 && message.additional[0].type == .opt)
        #expect(message.matches(queryID: 0x1234, name: name("WWW.example.test"), type: .a))
        #expect(!message.matches(queryID: 0x1235, name: name("www.example.test"), type: .a))
        #expect(!message.matches(queryID: 0x1234, name: name("ww.example.test"), type: .a))
        #expect(!message.matches(queryID: 0x1234, name: name("www.example.test"), type: .aaaa))
        let answer = try extractAddresses(message: message, question: name("www.example.test"), type: .a)
        #expect(answer == .addresses([v4("192.0.2.10"), v4("192.0.2.11")], ttl: 60))
    }

    @Test func decodesUnsafeBufferToo() throws {
        let message = try Captured.aaaa.withUnsafeBytes { buffer throws(DNSError) in try decodeResponse(buffer) }
        let answer = try extractAddresses(message: message, question: name("v6.example.test"), type: .aaaa)
        #expect(answer == .addresses([IPAddress(parsing: "2001:db8::1")!], ttl: 60))
    }

    static let outcomes: [(String, [UInt8], String, RecordType, Answer)] = [
        ("cname chain", Captured.cnameChain, "alias.example.test", .a, .addresses([v4("192.0.2.10")], ttl: 30)),
        ("cname without address", Captured.cnameOnly, "alias.example.test", .a, .nodata(negativeTTL: 5)),
        ("nxdomain", Captured.nxdomain, "nope.example.test", .a, .nxdomain(negativeTTL: 60)),
        ("nodata", Captured.nodata, "v6.example.test", .a, .nodata(negativeTTL: 60)),
        ("truncated", Captured.truncated, "big.example.test", .a, .truncated),
    ]

    @Test(arguments: outcomes)
    func extractsOutcome(label: String, bytes: [UInt8], question: String, type: RecordType, expected: Answer) throws {
        let message = try decodeResponse(bytes)
        #expect(try extractAddresses(message: message, question: name(question), type: type) == expected, "\(label)")
    }

    @Test func cnameChainRecords() throws {
        let message = try decodeResponse(Captured.cnameChain)
        #expect(
            message.answers.map(\.data) == [
                .cname(name("mid.example.test")), .cname(name("www.example.test")), .a(IPv4Address(192, 0, 2, 10)),
            ])
    }

    @Test func soaFields() throws {
        let message = try decodeResponse(Captured.nxdomain)
        #expect(message.responseCode == .nameError)
        let expected = SOA(
            primaryServer: name("ns1.example.test"), responsibleMailbox: name("hostmaster.example.test"),
            serial: 2_024_010_101, refresh: 1200, retry: 120, expire: 604_800, minimum: 60)
        #expect(message.authority == [Record(name: name("example.test"), type: .soa, ttl: 60, data: .soa(expected))])
    }

    @Test func truncatedKeepsRecords() throws {
        let message = try decodeResponse(Captured.truncated)
        #expect(message.header.truncated)
        #expect(message.answers.count == 29)
        // Cut mid-record: with TC set the complete records are kept instead of failing.
        let cut = try decodeResponse(Array(Captured.truncated.prefix(60)))
        #expect(cut.answers.count == 1)
    }

    @Test func failureCodes() throws {
        for (code, flags) in [(ResponseCode.serverFailure, UInt16(0x8182)), (.refused, 0x8185), (.formatError, 0x8181)]
        {
            var bytes = Bytes.header(flags: flags)
            bytes.question("a")
            let message = try decodeResponse(bytes.bytes)
            #expect(try extractAddresses(message: message, question: name("a"), type: .a) == .serverFailure(code))
        }
        // An extended RCODE (BADVERS = 16) from the OPT record's TTL.
        var bytes = Bytes.header(flags: 0x8180, additional: 1)
        bytes.question("a")
        bytes.raw([0])
        bytes.u16(41)
        bytes.u16(1232)
        bytes.u32(0x0100_0000)
        bytes.u16(0)
        let message = try decodeResponse(bytes.bytes)
        #expect(message.responseCode == ResponseCode(rawValue: 16))
        #expect(
            try extractAddresses(message: message, question: name("a"), type: .a)
                == .serverFailure(ResponseCode(rawValue: 16)))
    }

    @Test func ignoresUnrelatedRecordsAndHighBitTTL() throws {
        // An A record for another owner must not be taken; a TTL with the top bit set reads as 0 (RFC 2181 §8).
        var bytes = Bytes.header(answers: 2)
        bytes.question("a.test")
        bytes.name("evil.test")
        bytes.record(type: 1, rdata: [6, 6, 6, 6])
        bytes.raw([0xC0, 12])
        bytes.record(type: 1, ttl: 0x8000_0001, rdata: [10, 0, 0, 1])
        bytes.raw([1, 2, 3])  // trailing bytes are ignored
        let message = try decodeResponse(bytes.bytes)
        #expect(
            try extractAddresses(message: message, question: name("a.test"), type: .a)
                == .addresses([v4("10.0.0.1")], ttl: 0))
    }
}
