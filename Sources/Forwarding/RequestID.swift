// The request id carried in X-Request-ID: a fixed-size value, and the per-loop generator of new ones.

/// An `X-Request-ID` value: 1–128 visible ASCII bytes (0x21–0x7E), held inline so passing it around allocates
/// nothing. Generated ids are 32 lowercase hex digits.
public struct RequestID: Sendable, Equatable, CustomStringConvertible {
    /// Longest id accepted from a client; a longer one is replaced.
    public static let maximumLength = 128

    var storage: InlineArray<128, UInt8>
    /// Number of bytes of the id.
    public private(set) var count: Int

    /// The id `bytes`, or nil when they are not 1–128 visible ASCII characters.
    public init?(_ bytes: some Collection<UInt8>) {
        guard RequestID.isValid(bytes) else { return nil }
        storage = InlineArray(repeating: 0)
        count = 0
        for byte in bytes {
            storage[count] = byte
            count += 1
        }
    }

    init(hex high: UInt64, _ low: UInt64) {
        storage = InlineArray(repeating: 0)
        count = 32
        Swift.withUnsafeMutableBytes(of: &storage) { bytes in
            bytes.storeBytes(
                of: Self.hexDigits(UInt32(truncatingIfNeeded: high >> 32)), toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: Self.hexDigits(UInt32(truncatingIfNeeded: high)), toByteOffset: 8, as: UInt64.self)
            bytes.storeBytes(
                of: Self.hexDigits(UInt32(truncatingIfNeeded: low >> 32)), toByteOffset: 16, as: UInt64.self)
            bytes.storeBytes(of: Self.hexDigits(UInt32(truncatingIfNeeded: low)), toByteOffset: 24, as: UInt64.self)
        }
    }

    /// The eight lowercase hex digits of `value`, most significant first, as the bytes of a word stored in memory
    /// order: the nibbles are spread one per byte, then each becomes `0`–`9` or `a`–`f` by word arithmetic (no
    /// carry crosses a byte: every step stays below 0x67).
    @inline(__always)
    static func hexDigits(_ value: UInt32) -> UInt64 {
        var spread = UInt64(value)
        spread = (spread | (spread << 16)) & 0x0000_FFFF_0000_FFFF
        spread = (spread | (spread << 8)) & 0x00FF_00FF_00FF_00FF
        spread = (spread | (spread << 4)) & 0x0F0F_0F0F_0F0F_0F0F
        // Stored big-endian, the most significant nibble's byte comes first in memory (the rest works per byte).
        let nibbles = spread.bigEndian
        // 1 in each byte whose nibble is 10 or more.
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        return nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
    }

    /// Whether `bytes` is an id this gateway keeps: 1–128 bytes, each visible ASCII (VCHAR without obs-text).
    @inlinable
    public static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        var length = 0
        for byte in bytes {
            guard byte >= 0x21 && byte <= 0x7E else { return false }
            length += 1
            if length > maximumLength { return false }
        }
        return length > 0
    }

    /// Calls `body` with the id's bytes (valid only inside `body`).
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try Swift.withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    /// Appends the id's bytes to `out`.
    public func append(to out: inout [UInt8]) {
        withUnsafeBytes { out.append(contentsOf: $0) }
    }

    /// Whether `id` holds an id, read in place.
    @inline(__always)
    static func isPresent(_ id: inout RequestID?) -> Bool {
        switch id {
        case .none: return false
        case .some: return true
        }
    }

    /// Writes the bytes of `id`, if any, to `out` and returns whether there was one; `id` is read in place (it is
    /// 136 bytes: passed by value, it was copied several times per response).
    @inline(__always)
    static func write(_ id: inout RequestID?, to out: inout HeadOutput) -> Bool {
        switch id {
        case .none: return false
        case .some: break
        }
        let count = id!.count
        Swift.withUnsafeBytes(of: &id!.storage) { out.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        return true
    }

    /// Writes the id's bytes to `out` (at most `maximumLength`).
    @inline(__always)
    func write(to out: inout HeadOutput) {
        withUnsafeBytes { out.write($0) }
    }

    /// The id as an array (allocates: for logs and tests, not the hot path).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    public var description: String { withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }

    public static func == (left: RequestID, right: RequestID) -> Bool {
        left.withUnsafeBytes { l in right.withUnsafeBytes { r in l.elementsEqual(r) } }
    }
}

/// Generates request ids: SplitMix64 (Steele, Lea, Flood 2014) over a random seed, two outputs per id, rendered
/// as 32 lowercase hex digits. One per event loop (not thread-safe; no locks, no allocation). Ids are unique,
/// not secret: a client that sees many can predict the next ones of that loop.
public struct RequestIDGenerator: Sendable {
    var state: UInt64

    /// A generator starting from `seed` (tests use fixed seeds).
    public init(seed: UInt64) { state = seed }

    /// A generator seeded from the system's random source (`SystemRandomNumberGenerator`), once per loop.
    public init() {
        var random = SystemRandomNumberGenerator()
        state = random.next()
    }

    /// The next SplitMix64 output.
    public mutating func nextWord() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A new 32-hex-digit id.
    public mutating func next() -> RequestID {
        let high = nextWord()
        return RequestID(hex: high, nextWord())
    }
}
