// Strict, incremental UTF-8 validation (RFC 3629 §4) for text messages and close reasons (RFC 6455 §8.1).

/// Checks that a byte stream, fed in pieces split anywhere, is well-formed UTF-8: no overlong forms, no surrogates
/// (U+D800–U+DFFF), nothing above U+10FFFF, no stray continuation bytes. An invalid byte is reported as soon as it
/// is fed; a sequence left unfinished shows as `isAtBoundary` being false.
///
/// Runs of ASCII are skipped eight bytes at a time.
public struct UTF8Validator: Sendable {
    /// Continuation bytes the current sequence still needs (0 at a character boundary).
    private var needed: UInt8 = 0
    /// The range the next continuation byte must fall in: narrower than 0x80–0xBF only for the byte after
    /// E0 (no overlong), ED (no surrogate), F0 (no overlong) and F4 (not above U+10FFFF).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF
    /// An invalid byte was seen: every later feed fails too.
    private var failed = false

    public init() {}

    /// True when the bytes so far end between two characters (and none was invalid).
    public var isAtBoundary: Bool { needed == 0 && !failed }

    /// Follows `bytes`; false at the first byte that cannot continue well-formed UTF-8 (and from then on).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !failed else { return false }
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var index = 0
        var needed = self.needed
        var lower = self.lower
        var upper = self.upper
        defer {
            self.needed = needed
            self.lower = lower
            self.upper = upper
        }
        // Reads stay below `count`: every load is at `index` (or `index ..< index + 8`) after a bounds check.
        while index < count {
            if needed == 0 {
                while index + 8 <= count
                    && base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                {
                    index += 8
                }
                guard index < count else { break }
                let byte = base.load(fromByteOffset: index, as: UInt8.self)
                index += 1
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: needed = 1
                case 0xE0:
                    needed = 2
                    lower = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: needed = 2
                case 0xED:
                    needed = 2
                    upper = 0x9F
                case 0xF0:
                    needed = 3
                    lower = 0x90
                case 0xF1...0xF3: needed = 3
                case 0xF4:
                    needed = 3
                    upper = 0x8F
                default:
                    // 0x80–0xBF without a lead byte, C0/C1 (overlong two-byte forms), F5–FF (above U+10FFFF).
                    failed = true
                    return false
                }
            } else {
                let byte = base.load(fromByteOffset: index, as: UInt8.self)
                index += 1
                guard byte >= lower && byte <= upper else {
                    failed = true
                    return false
                }
                lower = 0x80
                upper = 0xBF
                needed -= 1
            }
        }
        return true
    }
}
