// xxHash64: the 64-bit non-cryptographic hash of the xxHash family, written from its specification.

/// The standard xxHash64 (XXH64) of a byte string: its output equals the reference implementation's
/// `XXH64(input, length, seed)` for every input and seed.
public enum XXH64 {
    static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// The hash of `bytes` under `seed`.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let length = bytes.count
        var offset = 0
        var acc: UInt64
        if length >= 32 {
            var v1 = seed &+ prime1 &+ prime2
            var v2 = seed &+ prime2
            var v3 = seed
            var v4 = seed &- prime1
            // Stripes of 32 bytes: four lanes of 8, each read little-endian within the buffer's bounds.
            while offset + 32 <= length {
                v1 = round(v1, lane: read64(bytes, offset))
                v2 = round(v2, lane: read64(bytes, offset + 8))
                v3 = round(v3, lane: read64(bytes, offset + 16))
                v4 = round(v4, lane: read64(bytes, offset + 24))
                offset += 32
            }
            acc = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            acc = merge(acc, v1)
            acc = merge(acc, v2)
            acc = merge(acc, v3)
            acc = merge(acc, v4)
        } else {
            acc = seed &+ prime5
        }
        acc = acc &+ UInt64(length)
        while offset + 8 <= length {
            acc ^= round(0, lane: read64(bytes, offset))
            acc = rotl(acc, 27) &* prime1 &+ prime4
            offset += 8
        }
        if offset + 4 <= length {
            let word = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            acc ^= UInt64(word) &* prime1
            acc = rotl(acc, 23) &* prime2 &+ prime3
            offset += 4
        }
        while offset < length {
            acc ^= UInt64(bytes[offset]) &* prime5
            acc = rotl(acc, 11) &* prime1
            offset += 1
        }
        acc ^= acc >> 33
        acc = acc &* prime2
        acc ^= acc >> 29
        acc = acc &* prime3
        acc ^= acc >> 32
        return acc
    }

    /// The hash of the UTF-8 of `string` under `seed`.
    public static func hash(_ string: String, seed: UInt64 = 0) -> UInt64 {
        var copy = string
        return copy.withUTF8 { hash(UnsafeRawBufferPointer($0), seed: seed) }
    }

    private static func read64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    private static func rotl(_ value: UInt64, _ count: UInt64) -> UInt64 {
        value << count | value >> (64 - count)
    }

    private static func round(_ acc: UInt64, lane: UInt64) -> UInt64 {
        rotl(acc &+ lane &* prime2, 31) &* prime1
    }

    private static func merge(_ acc: UInt64, _ lane: UInt64) -> UInt64 {
        (acc ^ round(0, lane: lane)) &* prime1 &+ prime4
    }
}
