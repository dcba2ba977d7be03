// Decoding of DNS messages from bytes, with hard guards against hostile input.

/// Decodes a message (RFC 1035 §4.1). Every read is bounds-checked; a malformed message gives a specific
/// `DNSError`, never a crash.
///
/// - Compression pointers (RFC 1035 §4.1.4) must point strictly before the start of the name part that
///   contains them, so targets strictly decrease and loops cannot exist; at most `Decoder.maximumPointers`
///   pointers per name; label types 0x40 and 0x80 are refused; a name longer than 255 bytes is refused.
/// - Counts that promise more entries than the bytes hold are an error, except when TC is set: a truncated
///   message keeps the records that were complete, since the resolver only needs to see TC and retry over TCP.
/// - Bytes after the last record are ignored: they cannot change the meaning of the counted records, and
///   rejecting them would only turn padded answers from middleboxes into failures.
public func decodeResponse(_ bytes: [UInt8]) throws(DNSError) -> Message {
    let result: Result<Message, DNSError> = bytes.withUnsafeBytes { buffer in
        Result { () throws(DNSError) -> Message in try decodeResponse(buffer) }
    }
    return try result.get()
}

/// Decodes a message held in `bytes`; see `decodeResponse(_: [UInt8])`.
public func decodeResponse(_ bytes: UnsafeRawBufferPointer) throws(DNSError) -> Message {
    var reader = MessageReader(bytes)
    return try reader.readMessage()
}

/// Limits of the decoder.
public enum Decoder {
    /// The most compression pointers followed in one name. Targets strictly decrease, so this is not what stops
    /// loops; it bounds the work one name can cause.
    public static let maximumPointers = 63
}

/// A cursor over one message.
///
/// Invariant: `bytes` stays valid for the reader's whole life (the reader never escapes the `withUnsafeBytes`
/// scope that made it), and every access to `bytes[i]` is preceded by an explicit check that `i < bytes.count`,
/// because the subscript of `UnsafeRawBufferPointer` is not bounds-checked in release builds.
struct MessageReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func readMessage() throws(DNSError) -> Message {
        guard bytes.count >= 12 else { throw .messageTooShort(length: bytes.count) }
        let header = Header(
            id: u16(at: 0), flags: u16(at: 2), questionCount: u16(at: 4), answerCount: u16(at: 6),
            authorityCount: u16(at: 8), additionalCount: u16(at: 10))
        position = 12
        var message = Message(header: header)
        message.questions.reserveCapacity(reservation(for: header.questionCount, minimumSize: 5))
        for index in 0..<Int(header.questionCount) {
            guard position < bytes.count else { throw .sectionPastEnd(section: .question, index: index) }
            let name = try readName()
            guard position + 4 <= bytes.count else { throw .sectionPastEnd(section: .question, index: index) }
            let type = RecordType(rawValue: u16(at: position))
            let recordClass = RecordClass(rawValue: u16(at: position + 2))
            position += 4
            message.questions.append(Question(name: name, type: type, recordClass: recordClass))
        }
        do {
            try readRecords(count: header.answerCount, section: .answer, into: &message.answers)
            try readRecords(count: header.authorityCount, section: .authority, into: &message.authority)
            try readRecords(count: header.additionalCount, section: .additional, into: &message.additional)
        } catch {
            // A truncated answer is only good for its TC bit; keep the records that were complete.
            guard header.truncated else { throw error }
        }
        return message
    }

    private mutating func readRecords(
        count: UInt16, section: DNSError.Section, into records: inout [Record]
    ) throws(DNSError) {
        records.reserveCapacity(reservation(for: count, minimumSize: 11))
        for index in 0..<Int(count) {
            records.append(try readRecord(section: section, index: index))
        }
    }

    // Never reserve more entries than the remaining bytes could hold, so a hostile count cannot make a large
    // allocation.
    private func reservation(for count: UInt16, minimumSize: Int) -> Int {
        min(Int(count), (bytes.count - position) / minimumSize)
    }

    private mutating func readRecord(section: DNSError.Section, index: Int) throws(DNSError) -> Record {
        guard position < bytes.count else { throw .sectionPastEnd(section: section, index: index) }
        let name = try readName()
        guard position + 10 <= bytes.count else { throw .sectionPastEnd(section: section, index: index) }
        let type = RecordType(rawValue: u16(at: position))
        let recordClass = RecordClass(rawValue: u16(at: position + 2))
        var ttl = UInt32(u16(at: position + 4)) << 16 | UInt32(u16(at: position + 6))
        if ttl > 0x7FFF_FFFF { ttl = 0 }
        let length = Int(u16(at: position + 8))
        let start = position + 10
        let end = start + length
        guard end <= bytes.count else { throw .rdataPastEnd(offset: start) }
        position = start
        let data: RData
        switch (type, recordClass) {
        case (.a, .internet):
            guard length == 4 else { throw .badRDataLength(type: type, length: length) }
            data = .a(IPv4Address(value: UInt32(u16(at: start)) << 16 | UInt32(u16(at: start + 2))))
        case (.aaaa, .internet):
            guard length == 16 else { throw .badRDataLength(type: type, length: length) }
            data = .aaaa(IPv6Address(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))!)
        case (.cname, _):
            let target = try readName()
            guard position == end else { throw .rdataNameMismatch(offset: start) }
            data = .cname(target)
        case (.soa, _):
            let primary = try readName()
            let mailbox = try readName()
            guard position + 20 == end else { throw .rdataNameMismatch(offset: start) }
            data = .soa(
                SOA(
                    primaryServer: primary, responsibleMailbox: mailbox, serial: u32(at: position),
                    refresh: u32(at: position + 4), retry: u32(at: position + 8), expire: u32(at: position + 12),
                    minimum: u32(at: position + 16)))
        default:
            data = .other(Array(UnsafeRawBufferPointer(rebasing: bytes[start..<end])))
        }
        position = end
        return Record(name: name, type: type, recordClass: recordClass, ttl: ttl, data: data)
    }

    /// Reads a possibly compressed name at `position` and moves `position` past it (past the first pointer when
    /// there is one).
    mutating func readName() throws(DNSError) -> Name {
        var wire: [UInt8] = []
        wire.reserveCapacity(32)
        var offset = position
        // Pointer targets must be below the start of the part being read: strictly decreasing, so no loops.
        var limit = position
        var resume: Int? = nil
        var pointers = 0
        while true {
            guard offset < bytes.count else { throw .labelPastEnd(offset: offset) }
            let byte = bytes[offset]
            switch byte & 0xC0 {
            case 0x00:
                if byte == 0 {
                    wire.append(0)
                    position = resume ?? offset + 1
                    return Name(uncheckedWire: wire)
                }
                let length = Int(byte)
                guard offset + 1 + length <= bytes.count else { throw .labelPastEnd(offset: offset) }
                // +1 for the root label still to come.
                guard wire.count + 1 + length + 1 <= Name.maximumWireLength else { throw .nameTooLong }
                wire.append(byte)
                for index in offset + 1...offset + length { wire.append(asciiLowercased(bytes[index])) }
                offset += 1 + length
            case 0xC0:
                guard offset + 1 < bytes.count else { throw .pointerPastEnd(offset: offset) }
                let target = Int(byte & 0x3F) << 8 | Int(bytes[offset + 1])
                guard target < bytes.count else { throw .pointerPastEnd(offset: offset) }
                guard target < limit else { throw .pointerNotBackward(offset: offset, target: target) }
                pointers += 1
                guard pointers <= Decoder.maximumPointers else { throw .tooManyPointers(offset: offset) }
                if resume == nil { resume = offset + 2 }
                offset = target
                limit = target
            default:
                throw .reservedLabelType(offset: offset, byte: byte)
            }
        }
    }

    // Callers have checked `offset + 2 <= bytes.count`.
    private func u16(at offset: Int) -> UInt16 {
        UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    // Callers have checked `offset + 4 <= bytes.count`.
    private func u32(at offset: Int) -> UInt32 {
        UInt32(u16(at: offset)) << 16 | UInt32(u16(at: offset + 2))
    }
}
