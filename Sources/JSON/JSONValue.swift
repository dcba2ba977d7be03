// A JSON value (RFC 8259) as a tree: numbers keep their literal text, objects keep their member order.

/// A parsed or hand-built JSON value.
///
/// Numbers are kept as their literal text (RFC 8259 §6) so that 64-bit integers and decimal fractions keep
/// their precision until a caller asks for a typed value. Objects keep their members in document order and may
/// hold the same key twice (RFC 8259 §4 leaves that to the implementation); `subscript(key:)` returns the first.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's literal text, e.g. `"-12"`, `"3.5e-7"`.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in document order.
    case object([(String, JSONValue)])

    /// A number value from an integer.
    public static func int(_ value: Int64) -> JSONValue { .number(String(value)) }
    /// A number value from an unsigned integer.
    public static func uint(_ value: UInt64) -> JSONValue { .number(String(value)) }

    /// The value of the first member named `key`, when this is an object; nil otherwise.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for (name, value) in members where name == key { return value }
        return nil
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The integer, when this is a number written as an integer (no fraction, no exponent) that fits in Int64.
    public var int64Value: Int64? {
        guard case .number(let text) = self, Self.isIntegerLiteral(text) else { return nil }
        return Int64(text)
    }

    /// The integer, when this is a number written as a non-negative integer (no sign, fraction or exponent)
    /// that fits in UInt64.
    public var uint64Value: UInt64? {
        guard case .number(let text) = self, Self.isIntegerLiteral(text), text.utf8.first != UInt8(ascii: "-")
        else { return nil }
        return UInt64(text)
    }

    /// The number as the nearest Double; nil when this is not a number or the number is beyond Double's range
    /// (it would be infinite).
    public var doubleValue: Double? {
        guard case .number(let text) = self, let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// The Boolean, when this is `true` or `false`.
    public var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    /// Whether this is `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The members in order, when this is an object.
    public var objectValue: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    private static func isIntegerLiteral(_ text: String) -> Bool {
        for byte in text.utf8 where byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
        {
            return false
        }
        return true
    }

    /// Structural equality: same case, same numbers' text, same members in the same order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for index in a.indices where a[index].0 != b[index].0 || a[index].1 != b[index].1 { return false }
            return true
        default: return false
        }
    }
}

extension JSONValue {
    /// Compact JSON text of this value.
    public func serialized() -> [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }
}
