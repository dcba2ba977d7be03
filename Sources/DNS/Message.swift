// Decoded DNS messages: header, questions and resource records with the RDATA this resolver reads.

/// The fixed 12-byte header of a message (RFC 1035 §4.1.1).
public struct Header: Hashable, Sendable {
    public var id: UInt16
    /// QR: the message is a response.
    public var isResponse: Bool
    /// OPCODE: 0 for a standard query.
    public var opcode: UInt8
    /// AA: the answer comes from an authoritative server.
    public var authoritative: Bool
    /// TC: the message was truncated; retry over TCP (RFC 7766 §5).
    public var truncated: Bool
    /// RD: recursion desired.
    public var recursionDesired: Bool
    /// RA: recursion available.
    public var recursionAvailable: Bool
    /// The low 4 bits of the response code; `Message.responseCode` adds the EDNS0 extension.
    public var responseCode: ResponseCode
    public var questionCount: UInt16
    public var answerCount: UInt16
    public var authorityCount: UInt16
    public var additionalCount: UInt16

    public init(
        id: UInt16, flags: UInt16, questionCount: UInt16 = 0, answerCount: UInt16 = 0, authorityCount: UInt16 = 0,
        additionalCount: UInt16 = 0
    ) {
        self.id = id
        isResponse = flags & 0x8000 != 0
        opcode = UInt8(truncatingIfNeeded: flags >> 11 & 0xF)
        authoritative = flags & 0x0400 != 0
        truncated = flags & 0x0200 != 0
        recursionDesired = flags & 0x0100 != 0
        recursionAvailable = flags & 0x0080 != 0
        responseCode = ResponseCode(rawValue: flags & 0xF)
        self.questionCount = questionCount
        self.answerCount = answerCount
        self.authorityCount = authorityCount
        self.additionalCount = additionalCount
    }
}

/// An entry of the question section (RFC 1035 §4.1.2).
public struct Question: Hashable, Sendable {
    public var name: Name
    public var type: RecordType
    public var recordClass: RecordClass

    public init(name: Name, type: RecordType, recordClass: RecordClass = .internet) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

/// The RDATA of an SOA record (RFC 1035 §3.3.13); `minimum` is the negative-caching TTL (RFC 2308 §4).
public struct SOA: Hashable, Sendable {
    public var primaryServer: Name
    public var responsibleMailbox: Name
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    public var minimum: UInt32

    public init(
        primaryServer: Name, responsibleMailbox: Name, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32,
        minimum: UInt32
    ) {
        self.primaryServer = primaryServer
        self.responsibleMailbox = responsibleMailbox
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// The data of a record: the types this resolver reads are decoded, others are kept as raw bytes.
public enum RData: Hashable, Sendable {
    /// RFC 1035 §3.4.1, class IN only.
    case a(IPv4Address)
    /// RFC 3596 §2.2, class IN only.
    case aaaa(IPv6Address)
    /// RFC 1035 §3.3.1, with compression resolved.
    case cname(Name)
    /// RFC 1035 §3.3.13, with compression resolved.
    case soa(SOA)
    /// Any other type (or class), uninterpreted; names inside it may still hold compression pointers.
    case other([UInt8])
}

/// A resource record (RFC 1035 §4.1.3).
public struct Record: Hashable, Sendable {
    public var name: Name
    public var type: RecordType
    public var recordClass: RecordClass
    /// Seconds; values with the top bit set are read as 0 (RFC 2181 §8).
    public var ttl: UInt32
    public var data: RData

    public init(name: Name, type: RecordType, recordClass: RecordClass = .internet, ttl: UInt32, data: RData) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }
}

/// A decoded message (RFC 1035 §4.1).
public struct Message: Hashable, Sendable {
    public var header: Header
    public var questions: [Question]
    public var answers: [Record]
    public var authority: [Record]
    public var additional: [Record]

    public init(
        header: Header, questions: [Question] = [], answers: [Record] = [], authority: [Record] = [],
        additional: [Record] = []
    ) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
    }

    /// The full response code: the header's 4 bits extended by the upper 8 bits in an OPT record's TTL
    /// (RFC 6891 §6.1.3).
    public var responseCode: ResponseCode {
        var code = header.responseCode.rawValue
        if let opt = additional.first(where: { $0.type == .opt }) {
            code |= UInt16(truncatingIfNeeded: opt.ttl >> 24) << 4
        }
        return ResponseCode(rawValue: code)
    }

    /// Whether this message answers the query the resolver sent: a response (QR), standard opcode, the same id,
    /// and exactly the one question asked, class IN (RFC 5452 §9.1: id and question must both match before a
    /// response is accepted). Names compare case-insensitively.
    public func matches(queryID: UInt16, name: Name, type: RecordType) -> Bool {
        header.isResponse && header.opcode == 0 && header.id == queryID && questions.count == 1
            && questions[0].name == name && questions[0].type == type && questions[0].recordClass == .internet
    }
}
