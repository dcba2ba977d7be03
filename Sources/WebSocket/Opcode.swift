// The small values of RFC 6455: frame opcodes, the two endpoint roles, and close status codes.

/// Frame opcodes (RFC 6455 §5.2, §11.8).
public enum Opcode {
    public static let continuation: UInt8 = 0x0
    public static let text: UInt8 = 0x1
    public static let binary: UInt8 = 0x2
    public static let close: UInt8 = 0x8
    public static let ping: UInt8 = 0x9
    public static let pong: UInt8 = 0xA

    /// Whether `opcode` is one of the six defined ones (3–7 and 0xB–0xF are reserved).
    @inlinable
    public static func isKnown(_ opcode: UInt8) -> Bool { opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA) }

    /// Whether `opcode` is a control frame's (the high bit of the 4-bit opcode, RFC 6455 §5.5).
    @inlinable
    public static func isControl(_ opcode: UInt8) -> Bool { opcode >= 0x8 }
}

/// Which end of the connection a reader serves (RFC 6455 §5.1): a server reads frames a client masked; a client
/// reads frames a server must not mask.
public enum Role: Sendable {
    case server
    case client
}

/// A close status code (RFC 6455 §7.4), as carried in the first two bytes of a Close frame's payload.
public struct CloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// 1000: the purpose of the connection was fulfilled.
    public static let normal = CloseCode(rawValue: 1000)
    /// 1001: the endpoint is going away (server shutting down, page navigated away).
    public static let goingAway = CloseCode(rawValue: 1001)
    /// 1002: the peer broke the protocol.
    public static let protocolError = CloseCode(rawValue: 1002)
    /// 1003: a data type the endpoint cannot accept (text to a binary-only endpoint, for example).
    public static let unsupportedData = CloseCode(rawValue: 1003)
    /// 1005: no status code was present (never sent on the wire; reported locally for an empty Close).
    public static let noStatusReceived = CloseCode(rawValue: 1005)
    /// 1006: the connection closed without a Close frame (never sent on the wire).
    public static let abnormal = CloseCode(rawValue: 1006)
    /// 1007: a message's data did not match its type (invalid UTF-8 in a text message).
    public static let invalidPayload = CloseCode(rawValue: 1007)
    /// 1008: a message violated the endpoint's policy.
    public static let policyViolation = CloseCode(rawValue: 1008)
    /// 1009: a message too big to process.
    public static let messageTooBig = CloseCode(rawValue: 1009)
    /// 1010: the client expected an extension the server did not negotiate.
    public static let mandatoryExtension = CloseCode(rawValue: 1010)
    /// 1011: the server met an unexpected condition.
    public static let internalError = CloseCode(rawValue: 1011)
    /// 1012: the server is restarting (IANA registry).
    public static let serviceRestart = CloseCode(rawValue: 1012)
    /// 1013: try again later (IANA registry).
    public static let tryAgainLater = CloseCode(rawValue: 1013)

    /// Whether the code may appear in a Close frame (RFC 6455 §7.4.1–§7.4.2, with 1012–1014 registered by IANA
    /// since): 1000–1003, 1007–1014, and the 3000–4999 ranges for libraries and applications. 0–999, 1004–1006,
    /// 1015–2999 and 5000 and up are never valid on the wire.
    public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    public var description: String { String(rawValue) }
}
