// Typed errors for the JSON messages, and the field readers every decoder shares.
import JSON

/// Why a message was rejected. `code` is what a client is told in an error frame.
public struct WireError: Error, Equatable, Sendable {
    /// `"bad_json"` (not JSON, or not an object), `"bad_type"` (missing or unknown `type`), `"bad_field"` (a
    /// member missing, of the wrong type or out of range), `"too_large"` (the payload exceeds the limit).
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    static func badField(_ name: String, _ problem: String) -> WireError {
        WireError(code: "bad_field", message: "\(name): \(problem)")
    }
}

/// A parsed message object and typed access to its members, each failing with a `bad_field` error that names
/// the member.
struct Fields {
    let value: JSONValue

    /// Parses `bytes` as a JSON object; messages are flat, so nesting is capped low.
    init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 8) throws(WireError) {
        do {
            value = try JSONParser.parse(bytes, maxDepth: maxDepth)
        } catch {
            throw WireError(code: "bad_json", message: "byte \(error.offset): \(error.message)")
        }
        guard case .object = value else { throw WireError(code: "bad_json", message: "a message is a JSON object") }
    }

    init(object: JSONValue, name: String) throws(WireError) {
        guard case .object = object else { throw WireError.badField(name, "not an object") }
        value = object
    }

    func string(_ name: String) throws(WireError) -> String {
        guard let member = value[name] else { throw WireError.badField(name, "missing") }
        guard let text = member.stringValue else { throw WireError.badField(name, "not a string") }
        return text
    }

    func uint64(_ name: String) throws(WireError) -> UInt64 {
        guard let member = value[name] else { throw WireError.badField(name, "missing") }
        guard let number = member.uint64Value else { throw WireError.badField(name, "not an unsigned 64-bit integer") }
        return number
    }

    /// Absent or `null` gives nil.
    func optionalUInt64(_ name: String) throws(WireError) -> UInt64? {
        guard let member = value[name], !member.isNull else { return nil }
        guard let number = member.uint64Value else { throw WireError.badField(name, "not an unsigned 64-bit integer") }
        return number
    }

    func int64(_ name: String) throws(WireError) -> Int64 {
        guard let member = value[name] else { throw WireError.badField(name, "missing") }
        guard let number = member.int64Value else { throw WireError.badField(name, "not a 64-bit integer") }
        return number
    }

    /// An integer in `range`.
    func int(_ name: String, in range: ClosedRange<Int>) throws(WireError) -> Int {
        let number = try int64(name)
        guard number >= Int64(range.lowerBound), number <= Int64(range.upperBound) else {
            throw WireError.badField(name, "out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(number)
    }

    /// A finite number ≥ 0.
    func nonNegativeDouble(_ name: String) throws(WireError) -> Double {
        guard let member = value[name] else { throw WireError.badField(name, "missing") }
        guard let number = member.doubleValue, number >= 0 else {
            throw WireError.badField(name, "not a finite number >= 0")
        }
        return number
    }

    func bool(_ name: String) throws(WireError) -> Bool {
        guard let member = value[name] else { throw WireError.badField(name, "missing") }
        guard let flag = member.boolValue else { throw WireError.badField(name, "not a boolean") }
        return flag
    }

    func object(_ name: String) throws(WireError) -> Fields {
        guard let member = value[name] else { throw WireError.badField(name, "missing") }
        return try Fields(object: member, name: name)
    }
}

/// Runs a decoder over a byte array's storage.
func withBytes<T>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(WireError) -> T) throws(WireError) -> T {
    let result = bytes.withUnsafeBytes { raw in Result { () throws(WireError) -> T in try body(raw) } }
    return try result.get()
}
