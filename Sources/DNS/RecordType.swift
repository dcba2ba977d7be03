// Record types, classes and response codes as open sets of numbers with names for the ones used here.

/// A resource record TYPE (RFC 1035 §3.2.2); unknown types keep their number.
public struct RecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// IPv4 host address (RFC 1035 §3.4.1).
    public static let a = RecordType(rawValue: 1)
    /// Authoritative name server (RFC 1035 §3.3.11).
    public static let ns = RecordType(rawValue: 2)
    /// Canonical name for an alias (RFC 1035 §3.3.1).
    public static let cname = RecordType(rawValue: 5)
    /// Start of a zone of authority (RFC 1035 §3.3.13), carries the negative-caching TTL (RFC 2308 §4).
    public static let soa = RecordType(rawValue: 6)
    /// IPv6 host address (RFC 3596 §2.1).
    public static let aaaa = RecordType(rawValue: 28)
    /// EDNS0 pseudo-record (RFC 6891 §6.1.1).
    public static let opt = RecordType(rawValue: 41)

    public var description: String {
        switch self {
        case .a: return "A"
        case .ns: return "NS"
        case .cname: return "CNAME"
        case .soa: return "SOA"
        case .aaaa: return "AAAA"
        case .opt: return "OPT"
        default: return "TYPE\(rawValue)"
        }
    }
}

/// A resource record CLASS (RFC 1035 §3.2.4).
public struct RecordClass: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The Internet.
    public static let internet = RecordClass(rawValue: 1)
}

/// A response code (RFC 1035 §4.1.1, extended to 12 bits by EDNS0, RFC 6891 §6.1.3).
public struct ResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let noError = ResponseCode(rawValue: 0)
    public static let formatError = ResponseCode(rawValue: 1)
    public static let serverFailure = ResponseCode(rawValue: 2)
    /// NXDOMAIN: the name does not exist (RFC 2308 §2.1).
    public static let nameError = ResponseCode(rawValue: 3)
    public static let notImplemented = ResponseCode(rawValue: 4)
    public static let refused = ResponseCode(rawValue: 5)

    public var description: String {
        switch self {
        case .noError: return "NOERROR"
        case .formatError: return "FORMERR"
        case .serverFailure: return "SERVFAIL"
        case .nameError: return "NXDOMAIN"
        case .notImplemented: return "NOTIMP"
        case .refused: return "REFUSED"
        default: return "RCODE\(rawValue)"
        }
    }
}
