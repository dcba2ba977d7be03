// libFuzzer harness for DNS.decodeResponse: no read outside the message, and a decoded message re-encodes to itself.
import DNS

/// The whole input is one message, read in place from libFuzzer's buffer: a read past its end is an
/// AddressSanitizer report even in an optimized build, where the buffer subscripts are not checked.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let message: Message
    do {
        message = try decodeResponse(bytes)
    } catch {
        if size < 12 { require(error == .messageTooShort(length: size), "short message gave \(error)") }
        return 0
    }
    let header = message.header
    let complete =
        message.questions.count == Int(header.questionCount) && message.answers.count == Int(header.answerCount)
        && message.authority.count == Int(header.authorityCount)
        && message.additional.count == Int(header.additionalCount)
    // Only a truncated (TC) message may hold fewer entries than its counts promise.
    require(complete || header.truncated, "fewer entries than counted without TC")
    require(message.questions.count <= Int(header.questionCount), "more questions than counted")
    require(message.answers.count <= Int(header.answerCount), "more answers than counted")
    require(message.authority.count <= Int(header.authorityCount), "more authority records than counted")
    require(message.additional.count <= Int(header.additionalCount), "more additional records than counted")

    for question in message.questions { checkName(question.name) }
    for record in message.answers + message.authority + message.additional {
        checkName(record.name)
        require(record.ttl <= 0x7FFF_FFFF, "TTL with the top bit set")
        switch record.data {
        case .cname(let target): checkName(target)
        case .soa(let soa):
            checkName(soa.primaryServer)
            checkName(soa.responsibleMailbox)
        case .a, .aaaa, .other: break
        }
    }

    // The same bytes from an array decode the same.
    let array = Array(bytes)
    require((try? decodeResponse(array)) == message, "the [UInt8] entry point disagrees")

    // Bytes after the last record are ignored.
    if complete {
        require((try? decodeResponse(array + [0xC0, 0x0C, 0x00])) == message, "trailing bytes changed the message")
    }

    // Encoded again without compression, the message decodes to itself (with counts that match its entries).
    var expected = message
    expected.header.questionCount = UInt16(message.questions.count)
    expected.header.answerCount = UInt16(message.answers.count)
    expected.header.authorityCount = UInt16(message.authority.count)
    expected.header.additionalCount = UInt16(message.additional.count)
    let encoded = encode(expected)
    let decoded: Message
    do {
        decoded = try decodeResponse(encoded)
    } catch {
        fatalError("invariant broken: the re-encoded message does not decode: \(error)")
    }
    require(decoded == expected, "re-encoded message decodes to \(decoded), expected \(expected)")

    // A query for the first question, made by the module's encoder, decodes to that question.
    if let question = message.questions.first {
        let payload: UInt16? = header.id & 1 == 0 ? nil : 1232
        var query: [UInt8] = []
        encodeQuery(
            id: header.id, name: question.name, type: question.type, recursionDesired: header.recursionDesired,
            udpPayloadSize: payload, into: &query)
        guard let parsed = try? decodeResponse(query) else { fatalError("invariant broken: a query did not decode") }
        require(parsed.header.id == header.id, "query id")
        require(parsed.header.recursionDesired == header.recursionDesired, "query RD")
        require(!parsed.header.isResponse, "query has QR set")
        require(parsed.questions == [Question(name: question.name, type: question.type)], "query question")
        require(parsed.additional.count == (payload == nil ? 0 : 1), "query OPT record")
        require(!parsed.matches(queryID: header.id, name: question.name, type: question.type), "a query matched")
    }
    return 0
}

/// A decoded name is a valid, lowercased wire form: labels of 1–63 bytes, at most 255 bytes in all.
func checkName(_ name: Name) {
    let wire = name.wire
    require(wire.count >= 1 && wire.count <= Name.maximumWireLength, "name of \(wire.count) bytes")
    var offset = 0
    while wire[offset] != 0 {
        let length = Int(wire[offset])
        require(length <= Name.maximumLabelLength, "label of \(length) bytes")
        require(offset + 1 + length < wire.count, "label runs past the name")
        require(!wire[(offset + 1)...(offset + length)].contains { $0 >= 0x41 && $0 <= 0x5A }, "uppercase label")
        offset += 1 + length
    }
    require(offset == wire.count - 1, "bytes after the root label")
    require(name.labels.count == name.labelCount, "labels and labelCount disagree")
}

/// A plain RFC 1035 §4.1 encoder (no compression), written here so the decoder is checked against an
/// independent writer.
func encode(_ message: Message) -> [UInt8] {
    var out: [UInt8] = []
    let h = message.header
    var flags: UInt16 = h.responseCode.rawValue & 0xF
    if h.isResponse { flags |= 0x8000 }
    flags |= UInt16(h.opcode & 0xF) << 11
    if h.authoritative { flags |= 0x0400 }
    if h.truncated { flags |= 0x0200 }
    if h.recursionDesired { flags |= 0x0100 }
    if h.recursionAvailable { flags |= 0x0080 }
    for value in [h.id, flags, h.questionCount, h.answerCount, h.authorityCount, h.additionalCount] {
        put16(value, &out)
    }
    for question in message.questions {
        out += question.name.wire
        put16(question.type.rawValue, &out)
        put16(question.recordClass.rawValue, &out)
    }
    for record in message.answers + message.authority + message.additional {
        out += record.name.wire
        put16(record.type.rawValue, &out)
        put16(record.recordClass.rawValue, &out)
        put32(record.ttl, &out)
        var rdata: [UInt8] = []
        switch record.data {
        case .a(let address): rdata = address.octets
        case .aaaa(let address): rdata = address.bytes
        case .cname(let target): rdata = target.wire
        case .soa(let soa):
            rdata = soa.primaryServer.wire + soa.responsibleMailbox.wire
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] { put32(value, &rdata) }
        case .other(let raw): rdata = raw
        }
        put16(UInt16(rdata.count), &out)
        out += rdata
    }
    return out
}

func put16(_ value: UInt16, _ out: inout [UInt8]) {
    out.append(UInt8(value >> 8))
    out.append(UInt8(value & 0xFF))
}

func put32(_ value: UInt32, _ out: inout [UInt8]) {
    put16(UInt16(value >> 16), &out)
    put16(UInt16(value & 0xFFFF), &out)
}

/// Stops the run with the message; libFuzzer reports the abort as a crash and saves the input.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant broken: \(message())") }
}
