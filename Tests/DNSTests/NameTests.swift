// Tests of Name parsing, formatting and the DNS-1123 label check.

import DNS
import Testing

@Suite struct NameTests {
    static let valid: [(String, [UInt8], String)] = [
        (
            "www.example.com", [3, 119, 119, 119, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0],
            "www.example.com."
        ),
        (
            "WWW.Example.COM.", [3, 119, 119, 119, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0],
            "www.example.com."
        ),
        ("a", [1, 97, 0], "a."),
        ("a.", [1, 97, 0], "a."),
        (".", [0], "."),
        ("_dns._udp.x", [4, 95, 100, 110, 115, 4, 95, 117, 100, 112, 1, 120, 0], "_dns._udp.x."),
    ]

    @Test(arguments: valid)
    func parsesValidNames(text: String, wire: [UInt8], description: String) throws {
        let name = try Name(parsing: text)
        #expect(name.wire == wire)
        #expect(name.description == description)
    }

    static let invalid: [(String, DNSError)] = [
        ("", .emptyName),
        ("..", .emptyLabel),
        (".a", .emptyLabel),
        ("a..b", .emptyLabel),
        ("a b", .invalidCharacter(0x20)),
        ("a\\b", .invalidCharacter(0x5C)),
        (String(repeating: "x", count: 64), .labelTooLong),
        // 4 labels of 63 bytes: 4 * 64 + 1 = 257 wire bytes.
        (Array(repeating: String(repeating: "x", count: 63), count: 4).joined(separator: "."), .nameTooLong),
    ]

    @Test(arguments: invalid)
    func rejectsInvalidNames(text: String, error: DNSError) {
        #expect(throws: error) { try Name(parsing: text) }
    }

    @Test func longestNameIsAccepted() throws {
        // 3 labels of 63 + one of 61: 3 * 64 + 62 + 1 = 255 wire bytes.
        let labels = Array(repeating: String(repeating: "x", count: 63), count: 3) + [String(repeating: "y", count: 61)]
        let name = try Name(parsing: labels.joined(separator: "."))
        #expect(name.wire.count == 255)
        #expect(name.labelCount == 4)
        #expect(throws: DNSError.nameTooLong) { try name.appending(Name(parsing: "z")) }
    }

    @Test func fqdnAndAppending() throws {
        #expect(Name.isFQDN("a.b."))
        #expect(!Name.isFQDN("a.b"))
        #expect(try Name(parsing: "Pod").appending(Name(parsing: "svc.cluster.local")) == name("pod.svc.cluster.local"))
        #expect(name("a.b.c").labels == [[97], [98], [99]])
        #expect(Name.root.isRoot && Name.root.labelCount == 0)
    }

    static let labels: [(String, Bool)] = [
        ("socket-7d9f-abc12", true), ("a", true), ("0", true), ("a-b", true), (String(repeating: "a", count: 63), true),
        ("", false), ("-a", false), ("a-", false), ("A", false), ("a.b", false), ("a_b", false), ("a b", false),
        (String(repeating: "a", count: 64), false), ("é", false), ("a%2e", false),
    ]

    @Test(arguments: labels)
    func dns1123Labels(text: String, valid: Bool) {
        #expect(isDNS1123Label(Array(text.utf8)) == valid)
    }
}
