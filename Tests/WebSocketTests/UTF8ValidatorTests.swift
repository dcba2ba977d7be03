// UTF8Validator against a Markus Kuhn-style table (RFC 3629): boundary characters, overlongs, surrogates, code
// points above U+10FFFF, stray and truncated sequences; fed whole, at every split point and byte by byte.
import Testing
import WebSocket

/// One byte sequence and what a strict validator must say of it.
struct UTF8Vector: Sendable, CustomTestStringConvertible {
    enum Verdict: Sendable { case valid, invalid, truncated }
    var name: String
    var bytes: [UInt8]
    var verdict: Verdict

    var testDescription: String { name }
}

/// Feeds `bytes` in the reads `feeding` makes; returns whether every feed succeeded and whether it ended at a
/// character boundary.
private func validate(_ bytes: [UInt8], _ feeding: Feeding) -> (accepted: Bool, atBoundary: Bool) {
    var validator = UTF8Validator()
    var accepted = true
    bytes.withUnsafeBytes { all in
        for range in feeding.chunks(bytes.count) where accepted {
            accepted = validator.feed(UnsafeRawBufferPointer(rebasing: all[range]))
        }
    }
    return (accepted, validator.isAtBoundary)
}

struct UTF8ValidatorTests {
    static let table: [UTF8Vector] = {
        func valid(_ name: String, _ bytes: [UInt8]) -> UTF8Vector {
            UTF8Vector(name: name, bytes: bytes, verdict: .valid)
        }
        func invalid(_ name: String, _ bytes: [UInt8]) -> UTF8Vector {
            UTF8Vector(name: name, bytes: bytes, verdict: .invalid)
        }
        func truncated(_ name: String, _ bytes: [UInt8]) -> UTF8Vector {
            UTF8Vector(name: name, bytes: bytes, verdict: .truncated)
        }
        return [
            valid("empty", []),
            valid("ASCII", Array("Hello, world".utf8)),
            valid("NUL and DEL", [0x00, 0x7F]),
            valid("Greek kosme", [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5]),
            valid("U+0080, first 2-byte", [0xC2, 0x80]),
            valid("U+07FF, last 2-byte", [0xDF, 0xBF]),
            valid("U+0800, first 3-byte", [0xE0, 0xA0, 0x80]),
            valid("U+D7FF, below the surrogates", [0xED, 0x9F, 0xBF]),
            valid("U+E000, above the surrogates", [0xEE, 0x80, 0x80]),
            valid("U+FFFD", [0xEF, 0xBF, 0xBD]),
            valid("U+FFFF, last 3-byte (a noncharacter, still valid)", [0xEF, 0xBF, 0xBF]),
            valid("U+10000, first 4-byte", [0xF0, 0x90, 0x80, 0x80]),
            valid("U+1F600", [0xF0, 0x9F, 0x98, 0x80]),
            valid("U+10FFFF, last code point", [0xF4, 0x8F, 0xBF, 0xBF]),
            valid("ASCII run then 4-byte", Array("abcdefghijklmnopq".utf8) + [0xF3, 0xA0, 0x80, 0x80]),
            invalid("lone continuation 0x80", [0x80]),
            invalid("lone continuation 0xBF", [0xBF]),
            invalid("continuation after ASCII run", Array("abcdefghijklmnop".utf8) + [0x80]),
            invalid("overlong '/' in 2 bytes", [0xC0, 0xAF]),
            invalid("overlong '/' in 3 bytes", [0xE0, 0x80, 0xAF]),
            invalid("overlong '/' in 4 bytes", [0xF0, 0x80, 0x80, 0xAF]),
            invalid("overlong NUL in 2 bytes", [0xC0, 0x80]),
            invalid("largest overlong 2-byte", [0xC1, 0xBF]),
            invalid("largest overlong 3-byte", [0xE0, 0x9F, 0xBF]),
            invalid("largest overlong 4-byte", [0xF0, 0x8F, 0xBF, 0xBF]),
            invalid("surrogate U+D800", [0xED, 0xA0, 0x80]),
            invalid("surrogate U+DBFF", [0xED, 0xAF, 0xBF]),
            invalid("surrogate U+DC00", [0xED, 0xB0, 0x80]),
            invalid("surrogate U+DFFF", [0xED, 0xBF, 0xBF]),
            invalid("surrogate pair U+D800 U+DC00", [0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80]),
            invalid("U+110000", [0xF4, 0x90, 0x80, 0x80]),
            invalid("F5 lead", [0xF5, 0x80, 0x80, 0x80]),
            invalid("5-byte form", [0xF8, 0x88, 0x80, 0x80, 0x80]),
            invalid("6-byte form", [0xFC, 0x84, 0x80, 0x80, 0x80, 0x80]),
            invalid("FE", [0xFE]),
            invalid("FF", [0xFF]),
            invalid("2-byte lead then ASCII", [0xC2, 0x41]),
            invalid("3-byte lead, one continuation, then ASCII", [0xE0, 0xA0, 0x41]),
            invalid("4-byte lead, two continuations, then a lead", [0xF0, 0x90, 0x80, 0xC2, 0x80]),
            invalid("too many continuations", [0xC2, 0x80, 0x80]),
            truncated("2-byte lead alone", [0xC2]),
            truncated("3-byte sequence missing its last byte", [0xE0, 0xA0]),
            truncated("4-byte sequence missing its last byte", [0xF0, 0x90, 0x80]),
            truncated("valid text then a 4-byte lead", Array("abc".utf8) + [0xF4]),
        ]
    }()

    @Test(arguments: table)
    func vector(_ vector: UTF8Vector) {
        for feeding in Feeding.all(vector.bytes.count) {
            let (accepted, atBoundary) = validate(vector.bytes, feeding)
            switch vector.verdict {
            case .valid: #expect(accepted && atBoundary, "\(feeding)")
            case .invalid: #expect(!accepted && !atBoundary, "\(feeding)")
            case .truncated: #expect(accepted && !atBoundary, "\(feeding)")
            }
        }
    }

    /// The first invalid byte is reported by the feed that contains it, wherever it sits relative to the 8-byte
    /// ASCII steps; every later feed fails too.
    @Test func invalidByteFoundAtEveryOffset() {
        for offset in 0..<40 {
            var text = Array(repeating: UInt8(ascii: "a"), count: 64)
            text[offset] = 0xFF
            var validator = UTF8Validator()
            text.withUnsafeBytes { all in
                let before = validator.feed(UnsafeRawBufferPointer(rebasing: all[..<offset]))
                let at = validator.feed(UnsafeRawBufferPointer(rebasing: all[offset...]))
                let after = validator.feed(UnsafeRawBufferPointer(rebasing: all[..<1]))
                #expect(before && !at, "offset \(offset)")
                #expect(!after, "offset \(offset): stays failed")
            }
            #expect(!validator.isAtBoundary)
        }
    }

    /// Every code point from U+0000 to U+10FFFF but the surrogates, as Swift encodes it, passes.
    @Test func everyScalarIsValid() {
        var text: [UInt8] = []
        text.reserveCapacity(4 << 20)
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            UTF8.encode(scalar) { text.append($0) }
        }
        var validator = UTF8Validator()
        let accepted = text.withUnsafeBytes { validator.feed($0) }
        #expect(accepted)
        #expect(validator.isAtBoundary)
    }
}
