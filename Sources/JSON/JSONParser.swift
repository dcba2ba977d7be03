// A strict JSON parser (RFC 8259): one loop over the bytes with an explicit stack, no recursion over input.

/// Why a document was rejected, and the byte offset where that was found.
public struct JSONError: Error, Equatable, Sendable {
    /// Byte offset into the input.
    public var offset: Int
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }
}

/// Parses one JSON text (RFC 8259 §2) and rejects everything the grammar does not allow: trailing commas,
/// leading zeros, `NaN`/`Infinity`, unescaped control characters in strings, lone surrogates in `\u` escapes
/// (a pair must combine, §7), invalid UTF-8 anywhere (§8.1), a byte order mark, anything after the value,
/// and containers nested deeper than `maxDepth` (`maxDepth` containers inside one another are allowed; 0 allows
/// only a scalar). Objects may repeat a key; both members are kept, in order.
public enum JSONParser {
    /// Parses `bytes` as one JSON text.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) throws(JSONError) -> JSONValue {
        var parser = Parser(bytes: bytes, maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    /// Parses the UTF-8 of `text` as one JSON text.
    public static func parse(_ text: String, maxDepth: Int = 64) throws(JSONError) -> JSONValue {
        var copy = text
        let result = copy.withUTF8 { utf8 in
            Result { () throws(JSONError) -> JSONValue in
                try parse(UnsafeRawBufferPointer(utf8), maxDepth: maxDepth)
            }
        }
        return try result.get()
    }

    /// Parses a byte array as one JSON text.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(JSONError) -> JSONValue {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONError) -> JSONValue in try parse(raw, maxDepth: maxDepth) }
        }
        return try result.get()
    }
}

/// An open container on the parser's stack.
private struct Frame {
    var isObject: Bool
    var elements: [JSONValue] = []
    var members: [(String, JSONValue)] = []
    /// The key whose value is being parsed (objects only).
    var key: String = ""
}

/// The parser's state: the input and the read position. The input buffer is only read within its bounds:
/// every read goes through `peek()` or checks `position < bytes.count` first.
private struct Parser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var position = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func fail(_ message: String, at offset: Int? = nil) -> JSONError {
        JSONError(offset: offset ?? position, message: message)
    }

    func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(JSONError) {
        guard peek() == byte else {
            throw fail(peek() == nil ? "unexpected end, expected \(what)" : "expected \(what)")
        }
        position += 1
    }

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        var stack: [Frame] = []
        while true {
            // A value is expected here.
            skipWhitespace()
            guard let byte = peek() else { throw fail("unexpected end, expected a value") }
            var value: JSONValue
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard stack.count < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
                position += 1
                skipWhitespace()
                if byte == UInt8(ascii: "{") {
                    if peek() == UInt8(ascii: "}") {
                        position += 1
                        value = .object([])
                    } else {
                        var frame = Frame(isObject: true)
                        frame.key = try parseKey()
                        stack.append(frame)
                        continue
                    }
                } else {
                    if peek() == UInt8(ascii: "]") {
                        position += 1
                        value = .array([])
                    } else {
                        stack.append(Frame(isObject: false))
                        continue
                    }
                }
            case UInt8(ascii: "\""): value = .string(try parseString())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): value = .number(try parseNumber())
            case UInt8(ascii: "t"): value = try parseLiteral("true", .bool(true))
            case UInt8(ascii: "f"): value = try parseLiteral("false", .bool(false))
            case UInt8(ascii: "n"): value = try parseLiteral("null", .null)
            default: throw fail("unexpected byte 0x\(String(byte, radix: 16)), expected a value")
            }
            // A value is complete: hand it to the enclosing containers, closing those that end here.
            while true {
                guard !stack.isEmpty else {
                    skipWhitespace()
                    guard position == bytes.count else { throw fail("trailing bytes after the value") }
                    return value
                }
                let top = stack.count - 1
                if stack[top].isObject {
                    stack[top].members.append((stack[top].key, value))
                } else {
                    stack[top].elements.append(value)
                }
                skipWhitespace()
                let close = stack[top].isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                guard let next = peek() else { throw fail("unexpected end inside a container") }
                if next == UInt8(ascii: ",") {
                    position += 1
                    if stack[top].isObject {
                        skipWhitespace()
                        stack[top].key = try parseKey()
                    }
                    break
                }
                guard next == close else { throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'") }
                position += 1
                let frame = stack.removeLast()
                value = frame.isObject ? .object(frame.members) : .array(frame.elements)
            }
        }
    }

    /// A member name and its colon; the position is at the opening quote (after whitespace).
    mutating func parseKey() throws(JSONError) -> String {
        guard peek() == UInt8(ascii: "\"") else {
            throw fail(peek() == UInt8(ascii: "}") ? "trailing comma in an object" : "expected a member name")
        }
        let key = try parseString()
        skipWhitespace()
        try expect(UInt8(ascii: ":"), "':'")
        return key
    }

    mutating func parseLiteral(_ word: StaticString, _ value: JSONValue) throws(JSONError) -> JSONValue {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail("invalid literal") }
        let start = word.utf8Start
        for index in 0..<count where bytes[position + index] != start[index] { throw fail("invalid literal") }
        position += count
        return value
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as text.
    mutating func parseNumber() throws(JSONError) -> String {
        let start = position
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek(), isDigit(first) else { throw fail("expected a digit") }
        position += 1
        if first == UInt8(ascii: "0") {
            if let next = peek(), isDigit(next) { throw fail("leading zero in a number") }
        } else {
            skipDigits()
        }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard let next = peek(), isDigit(next) else { throw fail("expected a digit after '.'") }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard let next = peek(), isDigit(next) else { throw fail("expected a digit in the exponent") }
            skipDigits()
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    mutating func skipDigits() {
        while let byte = peek(), isDigit(byte) { position += 1 }
    }

    /// A string (RFC 8259 §7); the position is at the opening quote. Raw bytes are checked as UTF-8.
    mutating func parseString() throws(JSONError) -> String {
        position += 1
        let start = position
        // Fast path: no escapes, so the text is a slice of the input.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            try consumeRaw(byte)
        }
        var out: [UInt8] = []
        out.reserveCapacity(position - start + 16)
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        // After an escape: runs of plain characters are checked, then appended in one copy each.
        var run = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                if run < position { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<position])) }
                if byte == UInt8(ascii: "\"") {
                    position += 1
                    return String(decoding: out, as: UTF8.self)
                }
                try parseEscape(into: &out)
                run = position
            } else {
                try consumeRaw(byte)
            }
        }
        throw fail("unterminated string")
    }

    /// Checks one raw character in a string (a control character is an error; multi-byte sequences must be
    /// well-formed UTF-8, RFC 3629 §4) and moves past it.
    mutating func consumeRaw(_ byte: UInt8) throws(JSONError) {
        if byte < 0x20 { throw fail("unescaped control character in a string") }
        if byte < 0x80 {
            position += 1
            return
        }
        let length = UTF8Check.sequenceLength(bytes, at: position)
        guard length > 0 else { throw fail("invalid UTF-8") }
        position += length
    }

    /// A backslash escape; the position is at the backslash.
    mutating func parseEscape(into out: inout [UInt8]) throws(JSONError) {
        let start = position
        position += 1
        guard let kind = peek() else { throw fail("unterminated escape") }
        position += 1
        switch kind {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if scalar >= 0xDC00 && scalar <= 0xDFFF { throw fail("lone low surrogate", at: start) }
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                else { throw fail("lone high surrogate", at: start) }
                position += 2
                let low = try parseHex4()
                guard low >= 0xDC00 && low <= 0xDFFF else { throw fail("lone high surrogate", at: start) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            UTF8Check.append(scalar: scalar, to: &out)
        default: throw fail("invalid escape", at: start)
        }
    }

    mutating func parseHex4() throws(JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }
}

/// UTF-8 well-formedness (RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF).
enum UTF8Check {
    /// The length of the well-formed sequence starting at `index` (whose first byte is ≥ 0x80), or 0 when
    /// the bytes there are not well-formed UTF-8. Reads only inside `bytes`.
    static func sequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int {
        let lead = bytes[index]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0:
            length = 4
            low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            high = 0x8F
        default: return 0
        }
        guard index + length <= bytes.count else { return 0 }
        let second = bytes[index + 1]
        guard second >= low && second <= high else { return 0 }
        for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return 0 }
        return length
    }

    /// Whether all of `bytes` is well-formed UTF-8.
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index < bytes.count {
            if bytes[index] < 0x80 {
                index += 1
                continue
            }
            let length = sequenceLength(bytes, at: index)
            if length == 0 { return false }
            index += length
        }
        return true
    }

    /// Appends the UTF-8 of a Unicode scalar value (not a surrogate, at most U+10FFFF).
    static func append(scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80: out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | (scalar >> 12) & 0x3F))
            out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
