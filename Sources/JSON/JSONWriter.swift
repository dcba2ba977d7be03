// A compact JSON writer into a byte array: messages are built without String concatenation.

/// Writes compact JSON (no whitespace) into `bytes`, placing commas itself.
///
/// Calls must form one JSON value: inside an object every value is preceded by `key(_:)`. Strings are escaped
/// as RFC 8259 §7 requires (`"`, `\` and U+0000–U+001F); everything else is written as UTF-8. Number text in
/// a hand-built `JSONValue.number` and `raw(_:)` input are copied unchecked: they must already be valid JSON.
public struct JSONWriter: Sendable {
    public var bytes: [UInt8]
    /// Whether the next value or key needs a comma before it.
    private var needsComma = false

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// A member name and its colon; the next call writes the member's value.
    public mutating func key(_ name: String) {
        separate()
        writeQuoted(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func string(_ value: String) {
        separate()
        writeQuoted(value)
        needsComma = true
    }

    /// A string from UTF-8 bytes; ill-formed sequences are written as U+FFFD so the output stays valid JSON.
    public mutating func string(bytes value: UnsafeRawBufferPointer) {
        separate()
        if UTF8Check.isValid(value) {
            writeQuoted(utf8: value)
        } else {
            writeQuoted(String(decoding: value, as: UTF8.self))
        }
        needsComma = true
    }

    public mutating func int(_ value: Int64) {
        separate()
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            writeDigits(value.magnitude)
        } else {
            writeDigits(UInt64(value))
        }
        needsComma = true
    }

    public mutating func int(_ value: Int) { int(Int64(value)) }

    public mutating func uint(_ value: UInt64) {
        separate()
        writeDigits(value)
        needsComma = true
    }

    /// The shortest decimal that reads back as the same Double (Swift's `description`); `null` for NaN and
    /// infinities, which JSON cannot express (RFC 8259 §6).
    public mutating func double(_ value: Double) {
        separate()
        if value.isFinite {
            bytes.append(contentsOf: value.description.utf8)
        } else {
            bytes.append(contentsOf: "null".utf8)
        }
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
        needsComma = true
    }

    public mutating func null() {
        separate()
        bytes.append(contentsOf: "null".utf8)
        needsComma = true
    }

    /// An already-valid JSON value, copied as is.
    public mutating func raw(_ jsonText: [UInt8]) {
        separate()
        bytes.append(contentsOf: jsonText)
        needsComma = true
    }

    /// A whole JSON value.
    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .number(let text):
            separate()
            bytes.append(contentsOf: text.utf8)
            needsComma = true
        case .string(let text): string(text)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let members):
            beginObject()
            for (name, member) in members {
                key(name)
                self.value(member)
            }
            endObject()
        }
    }

    // MARK: Members: a key and its value in one call

    public mutating func field(_ name: String, _ value: String) {
        key(name)
        string(value)
    }

    public mutating func field(_ name: String, _ value: Int64) {
        key(name)
        int(value)
    }

    public mutating func field(_ name: String, _ value: Int) {
        key(name)
        int(Int64(value))
    }

    public mutating func field(_ name: String, _ value: UInt64) {
        key(name)
        uint(value)
    }

    public mutating func field(_ name: String, _ value: Double) {
        key(name)
        double(value)
    }

    public mutating func field(_ name: String, _ value: Bool) {
        key(name)
        bool(value)
    }

    public mutating func field(_ name: String, _ value: JSONValue) {
        key(name)
        self.value(value)
    }

    /// A member whose value is `null`.
    public mutating func nullField(_ name: String) {
        key(name)
        null()
    }

    /// A member whose value is already-valid JSON text.
    public mutating func rawField(_ name: String, _ jsonText: [UInt8]) {
        key(name)
        raw(jsonText)
    }

    // MARK: Output helpers

    private mutating func writeDigits(_ value: UInt64) {
        let start = bytes.count
        var rest = value
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        bytes[start...].reverse()
    }

    private mutating func writeQuoted(_ text: String) {
        var copy = text
        copy.withUTF8 { writeQuoted(utf8: UnsafeRawBufferPointer($0)) }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Writes well-formed UTF-8 as a quoted string, escaping what RFC 8259 §7 requires.
    private mutating func writeQuoted(utf8: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "\""))
        var runStart = 0
        for index in 0..<utf8.count {
            let byte = utf8[index]
            guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: utf8[runStart..<index]))
            runStart = index + 1
            bytes.append(UInt8(ascii: "\\"))
            switch byte {
            case 0x22: bytes.append(0x22)
            case 0x5C: bytes.append(0x5C)
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            case 0x0A: bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "t"))
            default:
                bytes.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30])
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            }
        }
        bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: utf8[runStart..<utf8.count]))
        bytes.append(UInt8(ascii: "\""))
    }
}
