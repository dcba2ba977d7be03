// HMAC-SHA256 against RFC 4231, hex coding, and constant-time comparison.
import Testing

@testable import Ring

private func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex)! }

struct CryptoTests {
    /// RFC 4231 §4.2–§4.8 (test case 5, a truncated MAC, left out): key, data, HMAC-SHA256, all hex.
    static let rfc4231: [(String, String, String)] = [
        (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        ),
        (
            "4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", String(repeating: "dd", count: 50),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        ),
        (
            "0102030405060708090a0b0c0d0e0f10111213141516171819", String(repeating: "cd", count: 50),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
        ),
        (
            String(repeating: "aa", count: 131),
            Hex.encode(Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        ),
        (
            String(repeating: "aa", count: 131),
            Hex.encode(
                Array(
                    ("This is a test using a larger than block-size key and a larger than block-size data. The key "
                        + "needs to be hashed before being used by the HMAC algorithm.").utf8)),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        ),
        // Empty key and empty message (Python's hmac module).
        ("", "", "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"),
    ]

    @Test(arguments: rfc4231)
    func hmacMatchesRFC4231(key: String, data: String, mac: String) {
        #expect(Hex.encode(HMACSHA256.mac(key: bytes(key), message: bytes(data))) == mac)
        let viaPointer = bytes(data).withUnsafeBytes { HMACSHA256.mac(key: bytes(key), message: $0) }
        #expect(Hex.encode(viaPointer) == mac)
    }

    @Test func hexRoundTripsAndRejectsNonHex() {
        let all = (0...255).map { UInt8($0) }
        #expect(Hex.decode(Hex.encode(all)) == all)
        #expect(Hex.encode([0x00, 0xAB, 0xFF]) == "00abff")
        #expect(Hex.decode("00ABff") == [0x00, 0xAB, 0xFF])
        #expect(Hex.decode("") == [])
        for bad in ["0", "abc", "zz", "0g", " 0", "é0", "0x00"] { #expect(Hex.decode(bad) == nil, "\(bad)") }
        #expect(Hex.isLowercase("00ff", count: 4))
        #expect(!Hex.isLowercase("00FF", count: 4))
        #expect(!Hex.isLowercase("00ff", count: 6))
    }

    @Test func constantTimeEqualCompares() {
        #expect(constantTimeEqual([], []))
        #expect(constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEqual([0, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEqual([1, 2, 3], [1, 2]))
        #expect(!constantTimeEqual([1, 2], [1, 2, 3]))
    }
}
