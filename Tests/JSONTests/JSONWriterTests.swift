// The JSON writer: commas, escaping, numbers, and round trips through the parser.
import Testing

@testable import JSON

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

struct JSONWriterTests {
    @Test func placesCommasAndColons() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("a", "x")
        writer.field("b", Int64(-5))
        writer.key("c")
        writer.beginArray()
        writer.int(1)
        writer.beginObject()
        writer.endObject()
        writer.beginArray()
        writer.endArray()
        writer.null()
        writer.bool(false)
        writer.endArray()
        writer.field("d", UInt64.max)
        writer.field("e", 2.5)
        writer.field("f", true)
        writer.key("g")
        writer.raw(Array("{\"z\":[]}".utf8))
        writer.nullField("h")
        writer.field("i", 7)
        writer.endObject()
        #expect(
            text(writer.bytes)
                == "{\"a\":\"x\",\"b\":-5,\"c\":[1,{},[],null,false],\"d\":18446744073709551615,\"e\":2.5,\"f\":true,"
                + "\"g\":{\"z\":[]},\"h\":null,\"i\":7}")
    }

    static let escapes: [(String, String)] = [
        ("plain", "\"plain\""), ("q\"uote", "\"q\\\"uote\""), ("back\\slash", "\"back\\\\slash\""),
        ("\n\r\t\u{08}\u{0C}", "\"\\n\\r\\t\\b\\f\""), ("\u{0}\u{1}\u{1F}", "\"\\u0000\\u0001\\u001f\""),
        ("/ é 😀 \u{7F}", "\"/ é 😀 \u{7F}\""), ("", "\"\""),
    ]

    @Test(arguments: escapes)
    func escapesWhatRFC8259Requires(value: String, expected: String) throws {
        var writer = JSONWriter()
        writer.string(value)
        #expect(text(writer.bytes) == expected)
        #expect(try JSONParser.parse(writer.bytes) == .string(value))
    }

    @Test func everyASCIICharacterRoundTrips() throws {
        let all = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        var writer = JSONWriter()
        writer.string(all)
        #expect(try JSONParser.parse(writer.bytes) == .string(all))
    }

    @Test func illFormedBytesBecomeReplacementCharacters() throws {
        var writer = JSONWriter()
        let bytes: [UInt8] = [0x61, 0xFF, 0x62, 0x22]
        bytes.withUnsafeBytes { writer.string(bytes: $0) }
        #expect(try JSONParser.parse(writer.bytes) == .string("a\u{FFFD}b\""))
        var valid = JSONWriter()
        Array("é\n".utf8).withUnsafeBytes { valid.string(bytes: $0) }
        #expect(text(valid.bytes) == "\"é\\n\"")
    }

    static let integers: [Int64] = [0, 1, -1, 9, 10, 99, 100, 12345, -98765, Int64.max, Int64.min]

    @Test(arguments: integers)
    func writesIntegers(value: Int64) throws {
        var writer = JSONWriter()
        writer.int(value)
        #expect(text(writer.bytes) == String(value))
        #expect(try JSONParser.parse(writer.bytes).int64Value == value)
    }

    static let doubles: [Double] = [
        0, -0.0, 1, -1, 0.1, 0.30000000000000004, 1e-5, 123456.789, 1e16, 1e300, .leastNonzeroMagnitude,
        Double.greatestFiniteMagnitude,
        .pi,
    ]

    @Test(arguments: doubles)
    func doublesRoundTripExactly(value: Double) throws {
        var writer = JSONWriter()
        writer.double(value)
        let parsed = try JSONParser.parse(writer.bytes)
        #expect(parsed.doubleValue?.bitPattern == value.bitPattern)
    }

    @Test func nonFiniteDoublesAreWrittenAsNull() {
        for value in [Double.nan, .infinity, -.infinity] {
            var writer = JSONWriter()
            writer.double(value)
            #expect(text(writer.bytes) == "null")
        }
    }

    @Test func serializedValuesParseBack() throws {
        let documents = [
            "{\"a\":[1,-2.5e3,\"x\\u0001\",true,false,null,{}],\"b\":{\"c\":[]},\"a\":\"dup\"}", "[]", "\"s\"", "-0",
        ]
        for document in documents {
            let value = try JSONParser.parse(document)
            #expect(text(value.serialized()) == document)
            #expect(try JSONParser.parse(value.serialized()) == value)
        }
    }
}
