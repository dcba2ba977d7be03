// The typed errors of the DNS codec: each says what was wrong and at which byte offset.

/// Why a name, a message or an answer was rejected. Offsets are byte offsets into the message.
public enum DNSError: Error, Equatable, Hashable, Sendable {
    // Names given as text.
    /// The text was empty; the root is written `"."`.
    case emptyName
    /// Two dots in a row, or a leading dot (RFC 1035 §2.3.1: labels are 1–63 bytes).
    case emptyLabel
    /// A label longer than 63 bytes (RFC 1035 §2.3.4).
    case labelTooLong
    /// The name's wire form would exceed 255 bytes (RFC 1035 §2.3.4), from text or from a message.
    case nameTooLong
    /// A byte that may not appear in a name given as text (control bytes, space, backslash).
    case invalidCharacter(UInt8)

    // Messages.
    /// Fewer than the 12 bytes of a header (RFC 1035 §4.1.1).
    case messageTooShort(length: Int)
    /// A label's length byte promises more bytes than the message holds.
    case labelPastEnd(offset: Int)
    /// A compression pointer's second byte, or its target, lies past the end of the message.
    case pointerPastEnd(offset: Int)
    /// A compression pointer that does not point strictly before the name part that led to it (RFC 1035 §4.1.4
    /// only allows pointers to a *prior* occurrence); this is what makes self-pointers and cycles impossible.
    case pointerNotBackward(offset: Int, target: Int)
    /// More compression pointers in one name than `Decoder.maximumPointers`.
    case tooManyPointers(offset: Int)
    /// A label type other than 0b00 (length) or 0b11 (pointer): 0x40 (extended, RFC 6891 §5) and 0x80 are refused.
    case reservedLabelType(offset: Int, byte: UInt8)
    /// The header promises more questions or records than the message holds.
    case sectionPastEnd(section: Section, index: Int)
    /// A record's RDLENGTH reaches past the end of the message.
    case rdataPastEnd(offset: Int)
    /// An RDATA whose length does not fit its type (an A record is exactly 4 bytes, AAAA 16).
    case badRDataLength(type: RecordType, length: Int)
    /// A name inside RDATA (CNAME, SOA) does not end exactly where RDLENGTH says the RDATA ends.
    case rdataNameMismatch(offset: Int)

    // Answers.
    /// The response's question is not the one asked (RFC 5452 §9.1 asks resolvers to check it).
    case questionMismatch
    /// A CNAME chain in the answer comes back to a name already visited.
    case cnameLoop
    /// A CNAME chain longer than the hop limit.
    case cnameChainTooLong

    /// The section of a message, for errors that name one.
    public enum Section: Sendable, Hashable {
        case question, answer, authority, additional
    }
}
