// The JSON parser: accepted documents, rejected documents (hostile tables), typed accessors, depth limits.
import Testing

@testable import JSON

struct JSONParserTests {
    /// Documents and the values they parse to.
    static let accepted: [(String, JSONValue)] = [
        ("null", .null), ("true", .bool(true)), ("false", .bool(false)), ("0", .number("0")),
        ("-0", .number("-0")), ("12", .number("12")), ("-3.25e+10", .number("-3.25e+10")), ("1E-2", .number("1E-2")),
        ("0.5", .number("0.5")), ("\"\"", .string("")), ("\"a\\\"b\"", .string("a\"b")),
        ("\"\\\\\\/\\b\\f\\n\\r\\t\"", .string("\\/\u{08}\u{0C}\n\r\t")), ("\"\\u00e9\"", .string("é")),
        ("\"\\u00E9t\\u00e9\"", .string("été")), ("\"\\ud83d\\ude00\"", .string("😀")), ("\"😀 ü\"", .string("😀 ü")),
        ("\"\\u0000\"", .string("\u{0}")), ("[]", .array([])), ("{}", .object([])),
        (" \t\r\n[ 1 , \"x\" , [ ] , { } ] \n", .array([.number("1"), .string("x"), .array([]), .object([])])),
        (
            "{\"a\":1,\"b\":[true,null],\"c\":{\"d\":\"e\"}}",
            .object([("a", .number("1")), ("b", .array([.bool(true), .null])), ("c", .object([("d", .string("e"))]))])
        ),
        ("{\"k\":1,\"k\":2}", .object([("k", .number("1")), ("k", .number("2"))])),
        ("123456789012345678901234567890", .number("123456789012345678901234567890")),
    ]

    @Test(arguments: accepted)
    func parsesValidDocuments(text: String, expected: JSONValue) throws {
        #expect(try JSONParser.parse(text) == expected)
    }

    /// Texts the grammar does not allow, with the byte offset the parser must report.
    static let rejected: [(String, Int)] = [
        ("", 0), ("   ", 3), ("[1,]", 3), ("{\"a\":1,}", 7), ("[,1]", 1), ("{,}", 1), ("01", 1), ("-01", 2),
        ("00", 1), ("1.", 2), (".5", 0), ("+1", 0), ("1e", 2), ("1e+", 3), ("-", 1), ("- 1", 1), ("NaN", 0),
        ("Infinity", 0), ("-Infinity", 1), ("[NaN]", 1), ("nul", 0), ("tru", 0), ("True", 0), ("nulll", 4),
        ("[1] x", 4), ("{} {}", 3), ("1 2", 2), ("[1 2]", 3), ("{\"a\" 1}", 5), ("{\"a\"}", 4), ("{1:2}", 1),
        ("{\"a\":}", 5), ("'a'", 0), ("\"abc", 4), ("\"\\x\"", 1), ("\"\\u12\"", 3), ("\"\\u12G4\"", 5),
        ("\"\\ud800\"", 1), ("\"\\udc00\"", 1), ("\"\\ud800\\u0041\"", 1), ("\"\\ud800x\"", 1),
        ("\"\\udbff\\udbff\"", 1), ("\"a\tb\"", 2), ("\"a\nb\"", 2), ("\"\u{1}\"", 1), ("\"\u{1F}\"", 1),
        ("[", 1), ("{", 1), ("[1", 2), ("{\"a\":1", 6), ("\u{FEFF}1", 0), ("/*c*/1", 0), ("[1,]]", 3),
        ("{\"a\":1}}", 7),
    ]

    @Test(arguments: rejected)
    func rejectsInvalidDocuments(text: String, offset: Int) {
        #expect(throws: JSONError.self) { try JSONParser.parse(text) }
        do {
            _ = try JSONParser.parse(text)
        } catch {
            #expect(error.offset == offset, "\(error.message)")
        }
    }

    /// Ill-formed UTF-8 (RFC 3629 §4) inside strings and outside them.
    static let badUTF8: [[UInt8]] = [
        [0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xC1, 0xBF, 0x22], [0x22, 0xE0, 0x80, 0xAF, 0x22],
        [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22], [0x22, 0x80, 0x22], [0x22, 0xC3, 0x22],
        [0x22, 0xC3], [0x22, 0x61, 0x5C, 0x6E, 0xFE, 0x22], [0x80], [0x5B, 0xC3, 0xA9, 0x5D],
    ]

    @Test(arguments: badUTF8)
    func rejectsIllFormedUTF8(bytes: [UInt8]) {
        #expect(throws: JSONError.self) { try JSONParser.parse(bytes) }
    }

    @Test func acceptsEveryWellFormedUTF8Length() throws {
        let bytes: [UInt8] = [
            0x22, 0x24, 0xC2, 0xA2, 0xE2, 0x82, 0xAC, 0xF0, 0x90, 0x8D, 0x88, 0xF4, 0x8F, 0xBF, 0xBF, 0x22,
        ]
        #expect(try JSONParser.parse(bytes) == .string("$¢€𐍈\u{10FFFF}"))
    }

    @Test func nestingIsLimitedByMaxDepth() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        _ = try JSONParser.parse(ok)
        #expect(throws: JSONError.self) { try JSONParser.parse(deep) }
        #expect(throws: JSONError.self) { try JSONParser.parse("{\"a\":{\"b\":[1]}}", maxDepth: 2) }
        #expect(try JSONParser.parse("{\"a\":{\"b\":1}}", maxDepth: 2)["a"]?["b"] == .number("1"))
        #expect(try JSONParser.parse("7", maxDepth: 0) == .number("7"))
        // Far past any limit: rejected at the limit, without recursion.
        let hostile = [UInt8](repeating: UInt8(ascii: "["), count: 1_000_000)
        #expect(throws: JSONError.self) { try JSONParser.parse(hostile) }
    }

    @Test func typedAccessors() throws {
        let value = try JSONParser.parse(
            """
            {"max":9223372036854775807,"over":9223372036854775808,"min":-9223372036854775808,
             "umax":18446744073709551615,"uover":18446744073709551616,"neg":-1,"frac":1.5,"exp":1e3,
             "huge":1e400,"s":"x","t":true,"n":null}
            """)
        #expect(value["max"]?.int64Value == Int64.max)
        #expect(value["over"]?.int64Value == nil)
        #expect(value["over"]?.uint64Value == 9_223_372_036_854_775_808)
        #expect(value["min"]?.int64Value == Int64.min)
        #expect(value["umax"]?.uint64Value == UInt64.max)
        #expect(value["uover"]?.uint64Value == nil)
        #expect(value["neg"]?.uint64Value == nil)
        #expect(value["neg"]?.int64Value == -1)
        #expect(value["frac"]?.int64Value == nil)
        #expect(value["frac"]?.doubleValue == 1.5)
        #expect(value["exp"]?.int64Value == nil)
        #expect(value["exp"]?.doubleValue == 1000)
        #expect(value["huge"]?.doubleValue == nil)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["s"]?.int64Value == nil)
        #expect(value["t"]?.boolValue == true)
        #expect(value["n"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(JSONValue.string("x")["s"] == nil)
    }

    @Test func duplicateKeysGiveTheFirstMember() throws {
        #expect(try JSONParser.parse("{\"k\":1,\"k\":2}")["k"] == .number("1"))
    }

    @Test func objectEqualityRespectsOrder() {
        let ab = JSONValue.object([("a", .null), ("b", .bool(true))])
        let ba = JSONValue.object([("b", .bool(true)), ("a", .null)])
        #expect(ab != ba)
        #expect(ab == .object([("a", .null), ("b", .bool(true))]))
        #expect(ab != .object([("a", .null)]))
        #expect(JSONValue.number("1") != .number("1.0"))
        #expect(JSONValue.array([.null]) != .array([.null, .null]))
    }

    @Test func parsesFromRawBuffer() throws {
        let bytes = Array("{\"x\":[1,2]} ".utf8)
        let value = try bytes.withUnsafeBytes { try JSONParser.parse($0) }
        #expect(value["x"] == .array([.number("1"), .number("2")]))
    }
}
