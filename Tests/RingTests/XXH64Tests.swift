// xxHash64 against reference vectors computed with the Python `xxhash` package (the reference C library).
import Testing

@testable import Ring

/// The test input of length n: byte i is (i * 31 + 7) mod 256.
func patternBytes(_ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
}

struct XXH64Tests {
    /// (length of `patternBytes`, seed, XXH64) from `xxhash.xxh64_intdigest(bytes, seed)`; the lengths cross
    /// every tail path (8-, 4- and 1-byte steps) and the 32-byte stripe.
    static let vectors: [(Int, UInt64, UInt64)] = [
        (0, 0x0, 0xEF46DB3751D8E999),
        (0, 0x1, 0xD5AFBA1336A3BE4B),
        (0, 0x9E3779B185EBCA87, 0x6EC6D05F61C7E7A7),
        (0, 0xFFFFFFFFFFFFFFFF, 0x298F4C84B24F5380),
        (1, 0x0, 0xA96C7F0CE858BBB7),
        (1, 0x1, 0x0766883A0A47A96A),
        (1, 0x9E3779B185EBCA87, 0x0C810166B30122A5),
        (1, 0xFFFFFFFFFFFFFFFF, 0xD7F46261BA7C5B95),
        (3, 0x0, 0x56E6957632A487F9),
        (3, 0x1, 0x598AFE4FBB09D9F6),
        (3, 0x9E3779B185EBCA87, 0x45163CDC31E15BE1),
        (3, 0xFFFFFFFFFFFFFFFF, 0xC3F45502AFCA0370),
        (4, 0x0, 0xC60D15B1E3FF8F04),
        (4, 0x1, 0x5E9F99AA13DE2D02),
        (4, 0x9E3779B185EBCA87, 0xB000BCF3F8BCAEFE),
        (4, 0xFFFFFFFFFFFFFFFF, 0xF52503FE9D55F874),
        (5, 0x0, 0x808815858624DD4E),
        (5, 0x1, 0xB15C817D13965ACF),
        (5, 0x9E3779B185EBCA87, 0xCA04F3B2B8C1646D),
        (5, 0xFFFFFFFFFFFFFFFF, 0x46AA1666C18F56F6),
        (7, 0x0, 0xAFBEFC3D6C6F9A8E),
        (7, 0x1, 0xBD99F1FA0DE7B9A4),
        (7, 0x9E3779B185EBCA87, 0xE10F33AF8C4758A3),
        (7, 0xFFFFFFFFFFFFFFFF, 0x80C7FBFEBD75B559),
        (8, 0x0, 0x3DA5C7AA269683E0),
        (8, 0x1, 0x1B4E043A4021AA18),
        (8, 0x9E3779B185EBCA87, 0xCB4A80ECC7A094C6),
        (8, 0xFFFFFFFFFFFFFFFF, 0x33AEE9656E99F801),
        (9, 0x0, 0x4B17A9BA9E215C09),
        (9, 0x1, 0x2A77C6E783FB18B1),
        (9, 0x9E3779B185EBCA87, 0xD98EEA92DAACE6DB),
        (9, 0xFFFFFFFFFFFFFFFF, 0x3FE427B68CA14C9D),
        (15, 0x0, 0xAE2A37EB9357CAA7),
        (15, 0x1, 0xC88BD84841AF8AC9),
        (15, 0x9E3779B185EBCA87, 0x3EB4D31A7B8359CA),
        (15, 0xFFFFFFFFFFFFFFFF, 0x9BB8C61FE82D1156),
        (16, 0x0, 0xA19AD429B02BC413),
        (16, 0x1, 0x78B588AFC3E5E956),
        (16, 0x9E3779B185EBCA87, 0x0E3F56E88F759A50),
        (16, 0xFFFFFFFFFFFFFFFF, 0x727897B822AAF2EE),
        (17, 0x0, 0xFE9F0FEB7EEEDC09),
        (17, 0x1, 0x9C4D638A8D88A249),
        (17, 0x9E3779B185EBCA87, 0x5006E8F2EEC7EFEA),
        (17, 0xFFFFFFFFFFFFFFFF, 0x063954EAC44AB6BE),
        (31, 0x0, 0x4A74F3A1A39AD4A1),
        (31, 0x1, 0xD7AC4F4BEA4E460A),
        (31, 0x9E3779B185EBCA87, 0x659EC2B1252D56F5),
        (31, 0xFFFFFFFFFFFFFFFF, 0xABAC8592ADC08188),
        (32, 0x0, 0x8D57D6A4671CC43D),
        (32, 0x1, 0x8F666909CFD00CC8),
        (32, 0x9E3779B185EBCA87, 0xF113D2457128CF6D),
        (32, 0xFFFFFFFFFFFFFFFF, 0xA428E1465B2E4331),
        (33, 0x0, 0x62C9FD21ED857664),
        (33, 0x1, 0xB1575979B72C805A),
        (33, 0x9E3779B185EBCA87, 0x84575B860242FE41),
        (33, 0xFFFFFFFFFFFFFFFF, 0x51441ED0F594F61C),
        (40, 0x0, 0x49B45332E280F187),
        (40, 0x1, 0x4EA2E43CF7F9BDA8),
        (40, 0x9E3779B185EBCA87, 0xAFB4F23E8EB64418),
        (40, 0xFFFFFFFFFFFFFFFF, 0xF1054CBB3940F322),
        (63, 0x0, 0x5C320A0D2707057F),
        (63, 0x1, 0x61B9CB220DA77A86),
        (63, 0x9E3779B185EBCA87, 0x355CC1872A486C6E),
        (63, 0xFFFFFFFFFFFFFFFF, 0xF6470CCC2B8C65CA),
        (64, 0x0, 0x7BBABBC45729D17E),
        (64, 0x1, 0xEE10EEE981202CE9),
        (64, 0x9E3779B185EBCA87, 0xEA2D5E8A98BEC153),
        (64, 0xFFFFFFFFFFFFFFFF, 0x04573CA9335266C2),
        (65, 0x0, 0xF3980C34BAE65DC1),
        (65, 0x1, 0xB99A8864D5005B72),
        (65, 0x9E3779B185EBCA87, 0xE6F9EB9A843FA660),
        (65, 0xFFFFFFFFFFFFFFFF, 0xAA55F7CDEC465A22),
        (96, 0x0, 0x1A4B207385051B55),
        (96, 0x1, 0xE7FB462E2AE72FFD),
        (96, 0x9E3779B185EBCA87, 0x5E91DA085BBA6AE6),
        (96, 0xFFFFFFFFFFFFFFFF, 0x56CCA61E7703A4AD),
        (100, 0x0, 0xEFA0AD2D3E70C151),
        (100, 0x1, 0xCD8103AECD2ED5CF),
        (100, 0x9E3779B185EBCA87, 0xE10CFEF3A9A0A5C5),
        (100, 0xFFFFFFFFFFFFFFFF, 0xBD4FCAABF7CAD1A6),
    ]

    @Test(arguments: vectors)
    func matchesReference(length: Int, seed: UInt64, expected: UInt64) {
        let bytes = patternBytes(length)
        #expect(bytes.withUnsafeBytes { XXH64.hash($0, seed: seed) } == expected)
    }

    /// UTF-8 strings, seed 0.
    static let strings: [(String, UInt64)] = [
        ("", 0xEF46DB3751D8E999),
        ("a", 0xD24EC4F1A98C6E5B),
        ("abc", 0x44BC2CF5AD770999),
        ("client-42", 0xA6167D631AC2724E),
        ("socket-0", 0x340D5E09B547E944),
        ("héllo wörld", 0x60041BFEC530413C),
        ("The quick brown fox jumps over the lazy dog", 0x0B242D361FDA71BC),
    ]

    @Test(arguments: strings)
    func hashesUTF8OfStrings(text: String, expected: UInt64) {
        #expect(XXH64.hash(text) == expected)
    }

    @Test func readsOnlyTheGivenSlice() {
        // A slice at an odd address, inside a larger buffer: unaligned loads, nothing read past the end.
        let bytes = patternBytes(200)
        let whole = bytes.withUnsafeBytes { XXH64.hash(UnsafeRawBufferPointer(rebasing: $0[3..<103]), seed: 0) }
        let copy = Array(bytes[3..<103]).withUnsafeBytes { XXH64.hash($0, seed: 0) }
        #expect(whole == copy)
        #expect(whole != bytes.withUnsafeBytes { XXH64.hash(UnsafeRawBufferPointer(rebasing: $0[3..<104]), seed: 0) })
    }
}
