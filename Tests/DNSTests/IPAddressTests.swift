// Tests of IPv4/IPv6 parsing and RFC 5952 formatting.

import DNS
import Testing

@Suite struct IPAddressTests {
    // (input, canonical RFC 5952 text); the first rows are the examples of RFC 5952 §4.
    static let v6: [(String, String)] = [
        ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),  // §4.2.1: shorten as much as possible
        ("2001:0db8::0001", "2001:db8::1"),  // §4.1: leading zeros removed
        ("2001:db8::0:1", "2001:db8::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // §4.2.2: one zero group is not compressed
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  // §4.2.3: the longest run
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // §4.2.3: the first of equal runs
        ("2001:DB8::AAAA", "2001:db8::aaaa"),  // §4.3: lowercase
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fe80::1:2", "fe80::1:2"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),  // RFC 5952 §5
        ("::ffff:c000:0201", "::ffff:192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("0:0:1::", "0:0:1::"),
        ("1:0:0:0:1:0:0:0", "1::1:0:0:0"),
    ]

    @Test(arguments: v6)
    func formatsIPv6(input: String, canonical: String) throws {
        let address = try #require(IPv6Address(parsing: input))
        #expect(address.description == canonical)
        #expect(IPv6Address(parsing: canonical) == address)
    }

    static let badV6 = [
        "", ":", ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::", "1:", ":1",
        "1:2:3:4:5:6:7::8", "::1.2.3", "1.2.3.4", "fe80::1%eth0", "::1.2.3.4:5",
    ]

    @Test(arguments: badV6)
    func rejectsBadIPv6(input: String) {
        #expect(IPv6Address(parsing: input) == nil)
    }

    @Test func ipv6Bytes() throws {
        let address = try #require(IPv6Address(parsing: "2001:db8::1"))
        #expect(address.bytes == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(IPv6Address(bytes: address.bytes) == address)
        #expect(address.group(1) == 0x0db8)
    }

    static let v4: [(String, UInt32?)] = [
        ("10.0.0.1", 0x0A00_0001), ("0.0.0.0", 0), ("255.255.255.255", 0xFFFF_FFFF), ("192.0.2.10", 0xC000_020A),
        ("256.0.0.1", nil), ("1.2.3", nil), ("1.2.3.4.5", nil), ("01.2.3.4", nil), ("1..2.3", nil), ("1.2.3.", nil),
        ("", nil), ("a.b.c.d", nil), (" 1.2.3.4", nil),
    ]

    @Test(arguments: v4)
    func parsesIPv4(input: String, value: UInt32?) {
        #expect(IPv4Address(parsing: input)?.value == value)
        if let value { #expect(IPv4Address(value: value).description == input) }
    }

    @Test func eitherFamily() {
        #expect(IPAddress(parsing: "10.0.0.1") == .v4(IPv4Address(10, 0, 0, 1)))
        #expect(IPAddress(parsing: "::1") == .v6(IPv6Address(high: 0, low: 1)))
        #expect(IPAddress(parsing: "10.0.0.1")?.description == "10.0.0.1")
        #expect(IPv4Address(10, 0, 0, 1).octets == [10, 0, 0, 1])
    }
}
