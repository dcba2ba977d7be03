// The resumable HTTP/1.x head parser: a byte-at-a-time state machine over whatever bytes have arrived (RFC 9112).

/// Offsets into `HeadParser.storage` of one field line; value offsets exclude leading and trailing OWS.
@usableFromInline
struct FieldSpan: Sendable {
    @usableFromInline var nameStart: Int
    @usableFromInline var nameEnd: Int
    @usableFromInline var valueStart: Int
    @usableFromInline var valueEnd: Int
    /// The name, when it is one the parser or the rewriters act on.
    @usableFromInline var known: KnownField
}

/// Incremental parser of a request head (RFC 9112 §3) or a response head (RFC 9112 §4) and its header section.
///
/// Feed bytes as they arrive with `parse(_:)`; every byte is validated when it arrives, so limits are reported as
/// soon as they are crossed. Head bytes are copied into storage owned by the parser whose capacity survives
/// `reset()`: a parser reused across the requests of a connection allocates nothing in steady state.
/// `reset()` only sets the counts of used storage bytes and field spans back to zero; what lies past them is stale
/// and is overwritten by the next head, so no accessor reads past the counts.
/// Slices returned by the accessors share that storage; drop them before the next `parse` or `reset` or the
/// storage is copied on write.
public struct HeadParser: Sendable {
    /// Which start line the parser expects.
    public enum Kind: Sendable, Equatable {
        case request
        case response
    }

    @usableFromInline
    enum State: UInt8, Sendable {
        case start
        case leadingLF
        // Start-line states: from `method` to `reason` the request-line / status-line limit applies.
        case method
        case targetStart
        case target
        case requestVersion
        case responseVersion
        case statusCode
        case reason
        case startLineLF
        case lineStart
        case name
        case valueOWS
        case value
        case valueLF
        case endLF
        case complete
        case failed
    }

    /// Empty lines skipped before a request line (RFC 9112 §2.2 asks for at least one).
    static let maxLeadingEmptyLines = 4

    public let kind: Kind
    public var limits: Limits

    /// The head's bytes are `storage[0..<headLength]`; the array only grows (to the largest head seen).
    @usableFromInline var storage: [UInt8] = []
    @usableFromInline var headLength = 0
    /// The head's fields are `fields[0..<fieldCount]`; the array only grows (to the most fields seen).
    @usableFromInline var fields: [FieldSpan] = []
    /// Number of header fields, in the order received.
    public internal(set) var fieldCount = 0
    @usableFromInline var state: State = .start
    var failure: HeadError = .invalidMethod
    var emptyLines = 0

    @usableFromInline var startLineStart = 0
    @usableFromInline var methodEnd = 0
    @usableFromInline var targetStart = 0
    @usableFromInline var targetEnd = 0
    @usableFromInline var queryMark = -1
    var versionStart = 0
    var statusDigits = 0
    @usableFromInline var reasonStart = 0
    @usableFromInline var reasonEnd = 0
    var nameStart = 0
    var nameEnd = 0
    var valueStart = 0
    var valueEnd = 0

    @usableFromInline var parsedMethod: Method = .other
    @usableFromInline var parsedVersion: Version = .http1_1
    @usableFromInline var parsedStatus = 0
    @usableFromInline var contentLength: UInt64?
    @usableFromInline var transferEncodingPresent = false
    @usableFromInline var chunkedFinal = false
    @usableFromInline var connectionClose = false
    @usableFromInline var connectionKeepAlive = false
    @usableFromInline var connectionUpgrade = false
    @usableFromInline var connectionListsOtherFields = false
    @usableFromInline var upgradeField = -1
    @usableFromInline var websocketToken = false

    /// A parser for one kind of head; storage for a typical head is reserved once here unless `reserving` is
    /// false (a placeholder that owns no memory, e.g. for a connection between requests).
    public init(kind: Kind, limits: Limits = Limits(), reserving: Bool = true) {
        self.kind = kind
        self.limits = limits
        guard reserving else { return }
        storage.reserveCapacity(min(1024, limits.maxHeaderBytes))
        fields.reserveCapacity(min(16, limits.maxHeaderCount))
    }

    /// Forget the current head and keep the storage capacity, for the next message on a keep-alive connection.
    public mutating func reset() {
        // Nothing was parsed since the last reset (the gateway resets a response parser both when a request ends
        // and before the next response): every field still holds its reset value.
        if state == .start && headLength == 0 && fieldCount == 0 && emptyLines == 0 { return }
        headLength = 0
        fieldCount = 0
        state = .start
        emptyLines = 0
        queryMark = -1
        statusDigits = 0
        parsedStatus = 0
        parsedMethod = .other
        parsedVersion = .http1_1
        contentLength = nil
        transferEncodingPresent = false
        chunkedFinal = false
        connectionClose = false
        connectionKeepAlive = false
        connectionUpgrade = false
        connectionListsOtherFields = false
        upgradeField = -1
        websocketToken = false
    }

    /// True once `parse` returned `.complete`; the accessors describe the head only then.
    @inlinable public var isComplete: Bool { state == .complete }

    /// Convenience for tests and cold paths: parse the bytes of an array.
    public mutating func parse(_ bytes: [UInt8]) -> ParseStep {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// Feed the next bytes of the head. After `.complete` further calls return `.complete(consumed: 0)` until
    /// `reset()`; after `.failure` they return the same failure.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> ParseStep {
        switch state {
        case .complete: return .complete(consumed: 0)
        case .failed: return .failure(failure)
        default: break
        }
        let base = headLength
        let count = bytes.count
        var i = 0
        while i < count {
            let byte = bytes[i]
            let offset = base + i
            if state.rawValue >= State.method.rawValue && state.rawValue <= State.reason.rawValue
                && byte != ByteClass.cr && offset - startLineStart >= limits.maxRequestLine
            {
                return fail(.requestLineTooLong)
            }
            if offset >= limits.maxHeaderBytes { return fail(.headerBlockTooLarge) }
            if byte == ByteClass.lf {
                switch state {
                case .leadingLF, .startLineLF, .valueLF, .endLF: break
                default: return fail(.bareLF)
                }
            }

            switch state {
            case .start:
                if kind == .request && byte == ByteClass.cr {
                    if emptyLines == HeadParser.maxLeadingEmptyLines { return fail(.tooManyLeadingEmptyLines) }
                    state = .leadingLF
                } else {
                    // The common request line or status line whole in this input, within both limits: in one go.
                    if let next = kind == .request
                        ? scanRequestLine(bytes, at: i, base: base) : scanStatusLine(bytes, at: i, base: base)
                    {
                        i = next
                        // Straight on to the field lines when a name begins the next line and the loop's checks of
                        // that byte hold; straight to the end when they run to the final LF.
                        if i < count && base &+ i < limits.maxHeaderBytes && fieldCount < limits.maxHeaderCount
                            && ByteClass.isTchar(bytes[i])
                        {
                            i = scanFieldLines(bytes, at: i, base: base)
                            if endsAt(bytes, i, base: base) { return finish(bytes, through: i) }
                        }
                        continue
                    }
                    startLineStart = offset
                    versionStart = offset
                    state = kind == .request ? .method : .responseVersion
                    continue  // the same byte is the first of the start line
                }
            case .leadingLF:
                guard byte == ByteClass.lf else { return fail(.bareCR) }
                emptyLines += 1
                state = .start

            case .method:
                if byte == ByteClass.sp {
                    // method = 1*tchar (RFC 9110 §9.1): a start line beginning with SP names no method.
                    if offset == startLineStart { return fail(.invalidMethod) }
                    methodEnd = offset
                    state = .targetStart
                } else if ByteClass.isTchar(byte) {
                    // Fast scan over the rest of the method (tchars) within the request-line and head limits; the
                    // byte it stops at is handled by the loop like any other.
                    let end = min(count, limits.maxHeaderBytes - base, startLineStart + limits.maxRequestLine - base)
                    i = max(Self.tokenEnd(bytes, from: i + 1, to: end), i + 1)
                    continue
                } else {
                    return fail(.invalidMethod)
                }
            case .targetStart:
                guard byte != ByteClass.sp else { return fail(.invalidTarget) }
                targetStart = offset
                state = .target
                continue  // validated as a target byte below
            case .target:
                if byte > 0x20 && byte < 0x7F && byte != 0x23 && byte != ByteClass.question {
                    // Fast scan over plain target bytes within the request-line and head limits.
                    let end = min(count, limits.maxHeaderBytes - base, startLineStart + limits.maxRequestLine - base)
                    var j = i + 1
                    while j < end {
                        let next = bytes[j]
                        guard next > 0x20 && next < 0x7F && next != 0x23 && next != ByteClass.question else { break }
                        j += 1
                    }
                    i = j
                    continue
                }
                if byte == ByteClass.sp {
                    targetEnd = offset
                    versionStart = offset + 1
                    state = .requestVersion
                } else if byte > 0x20 && byte < 0x7F && byte != 0x23 {
                    if byte == ByteClass.question && queryMark < 0 { queryMark = offset }
                } else {
                    return fail(.invalidTarget)
                }
            case .requestVersion:
                // `HTTP/1.1 CRLF` whole in this input, within both limits: the start line ends here.
                if offset == versionStart && i &+ 10 <= min(count, limits.maxHeaderBytes - base)
                    && offset &+ 8 &- startLineStart <= limits.maxRequestLine
                    && Self.isHTTP11(bytes, at: i, then: ByteClass.cr) && bytes[i &+ 9] == ByteClass.lf
                {
                    parsedVersion = .http1_1
                    state = .lineStart
                    i &+= 10
                    continue
                }
                if byte == ByteClass.cr {
                    if let error = finishVersion(end: offset, base: base, bytes: bytes) { return fail(error) }
                    state = .startLineLF
                } else if !HeadParser.isVersionByte(byte, at: offset - versionStart) {
                    return fail(.invalidVersion)
                }
            case .responseVersion:
                // `HTTP/1.1 SP` whole in this input, within both limits: the status code comes next.
                if offset == versionStart && i &+ 9 <= min(count, limits.maxHeaderBytes - base)
                    && offset &+ 9 &- startLineStart <= limits.maxRequestLine
                    && Self.isHTTP11(bytes, at: i, then: ByteClass.sp)
                {
                    parsedVersion = .http1_1
                    state = .statusCode
                    i &+= 9
                    continue
                }
                if byte == ByteClass.sp {
                    if let error = finishVersion(end: offset, base: base, bytes: bytes) { return fail(error) }
                    state = .statusCode
                } else if !HeadParser.isVersionByte(byte, at: offset - versionStart) {
                    return fail(.invalidVersion)
                }
            case .statusCode:
                // `NNN SP` whole in this input, within both limits, with no digit read yet: the code at once.
                if statusDigits == 0 && i &+ 4 <= min(count, limits.maxHeaderBytes - base)
                    && offset &+ 3 &- startLineStart < limits.maxRequestLine
                    && ByteClass.isDigit(byte) && ByteClass.isDigit(bytes[i &+ 1])
                    && ByteClass.isDigit(bytes[i &+ 2]) && bytes[i &+ 3] == ByteClass.sp
                {
                    let code =
                        Int(byte &- 0x30) &* 100 &+ Int(bytes[i &+ 1] &- 0x30) &* 10 &+ Int(bytes[i &+ 2] &- 0x30)
                    guard code >= 100, code <= 599 else { return fail(.invalidStatusCode) }
                    parsedStatus = code
                    statusDigits = 3
                    reasonStart = offset &+ 4
                    reasonEnd = reasonStart
                    state = .reason
                    i &+= 4
                    continue
                }
                if ByteClass.isDigit(byte) {
                    guard statusDigits < 3 else { return fail(.invalidStatusCode) }
                    parsedStatus = parsedStatus * 10 + Int(byte &- 0x30)
                    statusDigits += 1
                } else if byte == ByteClass.sp || byte == ByteClass.cr {
                    guard statusDigits == 3, parsedStatus >= 100, parsedStatus <= 599 else {
                        return fail(.invalidStatusCode)
                    }
                    // A missing SP before an empty reason is accepted: RFC 9112 §4 lets clients ignore the reason.
                    reasonStart = byte == ByteClass.sp ? offset + 1 : offset
                    reasonEnd = reasonStart
                    state = byte == ByteClass.sp ? .reason : .startLineLF
                } else {
                    return fail(.invalidStatusCode)
                }
            case .reason:
                if ByteClass.isFieldVchar(byte) || ByteClass.isWhitespace(byte) {
                    // Fast scan over the reason's bytes within the status-line and head limits.
                    let end = min(count, limits.maxHeaderBytes - base, startLineStart + limits.maxRequestLine - base)
                    i = max(Self.valueRunEnd(bytes, from: i, to: end), i + 1)
                    continue
                }
                if byte == ByteClass.cr {
                    reasonEnd = offset
                    state = .startLineLF
                } else if !(ByteClass.isFieldVchar(byte) || ByteClass.isWhitespace(byte)) {
                    return fail(.invalidReason)
                }
            case .startLineLF:
                guard byte == ByteClass.lf else { return fail(.bareCR) }
                state = .lineStart

            case .lineStart:
                if byte == ByteClass.cr {
                    state = .endLF
                } else if ByteClass.isTchar(byte) {
                    guard fieldCount < limits.maxHeaderCount else { return fail(.tooManyHeaders) }
                    // Common `name: value CRLF` lines in one go, within this input and the head limit; where they
                    // depart from that shape, the loop goes on from that byte in the state reached.
                    i = scanFieldLines(bytes, at: i, base: base)
                    if endsAt(bytes, i, base: base) { return finish(bytes, through: i) }
                    continue
                } else if ByteClass.isWhitespace(byte) {
                    return fail(fieldCount == 0 ? .whitespaceBeforeFirstField : .obsFold)
                } else {
                    return fail(.invalidFieldName)
                }
            case .name:
                // Fast scan over the rest of the name (tchars), within the head limit; the byte it stops at is
                // handled below like any other.
                if ByteClass.isTchar(byte) {
                    let end = min(count, limits.maxHeaderBytes - base)
                    i = Self.tokenEnd(bytes, from: i + 1, to: end)
                    continue
                }
                if byte == ByteClass.colon {
                    nameEnd = offset
                    state = .valueOWS
                } else if ByteClass.isWhitespace(byte) {
                    return fail(.whitespaceBeforeColon)
                } else if !ByteClass.isTchar(byte) {
                    return fail(.invalidFieldName)
                }
            case .valueOWS:
                if ByteClass.isFieldVchar(byte) {
                    valueStart = offset
                    valueEnd = offset + 1
                    state = .value
                } else if byte == ByteClass.cr {
                    valueStart = offset
                    valueEnd = offset
                    state = .valueLF
                } else if !ByteClass.isWhitespace(byte) {
                    return fail(.invalidFieldValue)
                }
            case .value:
                if ByteClass.isFieldVchar(byte) || ByteClass.isWhitespace(byte) {
                    // Fast scan over the run of value bytes within the head limit; `valueEnd` follows the last
                    // non-whitespace byte (trailing OWS is not part of the value, RFC 9110 §5.5).
                    let end = min(count, limits.maxHeaderBytes - base)
                    let j = Self.valueRunEnd(bytes, from: i, to: end)
                    var last = j
                    while last > i && ByteClass.isWhitespace(bytes[last &- 1]) { last &-= 1 }
                    if last > i { valueEnd = base + last }
                    i = j
                    continue
                } else if byte == ByteClass.cr {
                    state = .valueLF
                } else if !ByteClass.isWhitespace(byte) {
                    return fail(.invalidFieldValue)
                }
            case .valueLF:
                guard byte == ByteClass.lf else { return fail(.bareCR) }
                appendField(
                    FieldSpan(
                        nameStart: nameStart, nameEnd: nameEnd, valueStart: valueStart, valueEnd: valueEnd,
                        known: knownField(from: nameStart, to: nameEnd, bytes: bytes, base: base)))
                state = .lineStart
            case .endLF:
                guard byte == ByteClass.lf else { return fail(.bareCR) }
                return finish(bytes, through: i)
            case .complete, .failed:
                preconditionFailure("parse loop entered in a final state")
            }
            i += 1
        }
        appendToStorage(bytes)
        return .needMore
    }

    /// From the first byte of a request line: `method SP target SP HTTP/1.1 CRLF` whole in this input, every byte
    /// within the head limit and all but the CR within the request-line limit. Sets what the byte-at-a-time loop
    /// would have set by the end of that line and returns the index after its LF; nil (nothing set) for any other
    /// line, which the loop then reads byte by byte.
    @inline(__always)
    mutating func scanRequestLine(_ bytes: UnsafeRawBufferPointer, at first: Int, base: Int) -> Int? {
        let headEnd = min(bytes.count, limits.maxHeaderBytes &- base)
        // Bytes before `lineEnd` are within both limits (the CR is exempt from the request-line limit).
        let lineEnd = min(headEnd, first &+ min(limits.maxRequestLine, headEnd))
        var j: Int
        var method = Method.other
        // `GET SP`, the usual start, as one word; any other method as a token (and its case found at the end).
        if first &+ 4 <= lineEnd, let raw = bytes.baseAddress,
            raw.loadUnaligned(fromByteOffset: first, as: UInt32.self) == 0x2054_4547
        {
            j = first &+ 3
            method = .get
        } else {
            guard ByteClass.isTchar(bytes[first]) else { return nil }
            j = Self.tokenEnd(bytes, from: first &+ 1, to: lineEnd)
        }
        guard j &+ 1 < lineEnd && bytes[j] == ByteClass.sp else { return nil }
        let methodEnd = j
        j &+= 1
        let targetStart = j
        var query = -1
        while j < lineEnd {
            let byte = bytes[j]
            guard byte > 0x20 && byte < 0x7F && byte != 0x23 else { break }
            if byte == ByteClass.question && query < 0 { query = j }
            j &+= 1
        }
        let version = j &+ 1
        guard
            j > targetStart && j < lineEnd && bytes[j] == ByteClass.sp && version &+ 10 <= headEnd
                && version &+ 8 &- first <= limits.maxRequestLine
                && Self.isHTTP11(bytes, at: version, then: ByteClass.cr)
                && bytes[version &+ 9] == ByteClass.lf
        else { return nil }
        startLineStart = base &+ first
        parsedMethod = method
        self.methodEnd = base &+ methodEnd
        self.targetStart = base &+ targetStart
        targetEnd = base &+ j
        queryMark = query < 0 ? -1 : base &+ query
        versionStart = base &+ version
        parsedVersion = .http1_1
        state = .lineStart
        return version &+ 10
    }

    /// From the first byte of a status line: `HTTP/1.1 SP NNN SP reason CRLF` whole in this input, every byte within
    /// the head limit and all but the CR within the status-line limit, with a code of 100...599. Sets what the
    /// byte-at-a-time loop would have set by the end of that line and returns the index after its LF; nil (nothing
    /// set) for any other line, which the loop then reads byte by byte.
    @inline(__always)
    mutating func scanStatusLine(_ bytes: UnsafeRawBufferPointer, at first: Int, base: Int) -> Int? {
        let headEnd = min(bytes.count, limits.maxHeaderBytes &- base)
        let lineEnd = min(headEnd, first &+ min(limits.maxRequestLine, headEnd))
        let reasonStart = first &+ 13
        guard reasonStart <= lineEnd && Self.isHTTP11(bytes, at: first, then: ByteClass.sp) else { return nil }
        let d0 = bytes[first &+ 9] &- 0x30
        let d1 = bytes[first &+ 10] &- 0x30
        let d2 = bytes[first &+ 11] &- 0x30
        guard d0 <= 9 && d1 <= 9 && d2 <= 9 && bytes[first &+ 12] == ByteClass.sp else { return nil }
        let code = Int(d0) &* 100 &+ Int(d1) &* 10 &+ Int(d2)
        guard code >= 100 && code <= 599 else { return nil }
        let reasonEnd = Self.valueRunEnd(bytes, from: reasonStart, to: lineEnd)
        guard reasonEnd &+ 1 < headEnd && bytes[reasonEnd] == ByteClass.cr && bytes[reasonEnd &+ 1] == ByteClass.lf
        else { return nil }
        startLineStart = base &+ first
        versionStart = base &+ first
        parsedVersion = .http1_1
        parsedStatus = code
        statusDigits = 3
        self.reasonStart = base &+ reasonStart
        self.reasonEnd = base &+ reasonEnd
        state = .lineStart
        return reasonEnd &+ 2
    }

    /// Where `scanFieldLines` stopped: the index the byte-at-a-time loop goes on from, the state it is in there and
    /// the offsets (into this input) of the field line begun, as far as that state has them.
    struct FieldRunExit {
        var index: Int
        var state: State
        var nameStart = 0
        var nameEnd = 0
        var valueStart = 0
        var valueEnd = 0
    }

    /// From the first byte of a field name (a tchar, with room for one more field): whole `name: value CRLF` lines
    /// one after another, as long as they have the common shape within this input and the head limit, then the CR
    /// of the final CRLF. Sets the state and offsets the byte-at-a-time loop would have reached and returns the
    /// index of the first byte it has to look at.
    @inline(__always)
    mutating func scanFieldLines(_ bytes: UnsafeRawBufferPointer, at first: Int, base: Int) -> Int {
        if fieldCount == fields.count { addFieldSlots() }
        let end = min(bytes.count, limits.maxHeaderBytes &- base)
        let maxCount = limits.maxHeaderCount
        var count = fieldCount
        // Spans go straight into the slots past `fieldCount`: one uniqueness check for the run, not one per line.
        // `count < slots.count` holds at every write (checked before each further line).
        let exit = fields.withUnsafeMutableBufferPointer { slots -> FieldRunExit in
            var line = first
            while true {
                // The name: runs of letters and `-` a word at a time, any other tchar stepped over, up to the colon.
                var j = line &+ 1
                while true {
                    j = Self.commonTokenRunEnd(bytes, from: j, to: end)
                    guard j < end else { return FieldRunExit(index: j, state: .name, nameStart: line) }
                    let byte = bytes[j]
                    if byte == ByteClass.colon { break }
                    guard ByteClass.isTchar(byte) else { return FieldRunExit(index: j, state: .name, nameStart: line) }
                    j &+= 1
                }
                let nameEnd = j
                j &+= 1
                // Mostly one SP before the value.
                if j < end && bytes[j] == ByteClass.sp { j &+= 1 }
                if j < end && ByteClass.isWhitespace(bytes[j]) {
                    while j < end && ByteClass.isWhitespace(bytes[j]) { j &+= 1 }
                }
                guard j < end && ByteClass.isFieldVchar(bytes[j]) else {
                    return FieldRunExit(index: j, state: .valueOWS, nameStart: line, nameEnd: nameEnd)
                }
                let valueStart = j
                let runEnd = Self.valueRunEnd(bytes, from: j, to: end)
                var last = runEnd
                while last > j && ByteClass.isWhitespace(bytes[last &- 1]) { last &-= 1 }
                guard runEnd &+ 1 < end && bytes[runEnd] == ByteClass.cr && bytes[runEnd &+ 1] == ByteClass.lf else {
                    return FieldRunExit(
                        index: runEnd, state: .value, nameStart: line, nameEnd: nameEnd, valueStart: valueStart,
                        valueEnd: last)
                }
                // The whole name is in this input.
                let known = KnownField(bytes.assumingMemoryBound(to: UInt8.self), line, nameEnd)
                slots[count] = FieldSpan(
                    nameStart: base &+ line, nameEnd: base &+ nameEnd, valueStart: base &+ valueStart,
                    valueEnd: base &+ last, known: known)
                count &+= 1
                line = runEnd &+ 2
                guard line &+ 1 < end else { return FieldRunExit(index: line, state: .lineStart) }
                let next = bytes[line]
                // A CR at the start of a line is the final CRLF's (`.lineStart` takes it so, whatever follows).
                if next == ByteClass.cr { return FieldRunExit(index: line &+ 1, state: .endLF) }
                // Letters first: most names begin with one.
                guard (next | 0x20) &- 0x61 < 26 || ByteClass.isTchar(next), count < maxCount && count < slots.count
                else {
                    return FieldRunExit(index: line, state: .lineStart)
                }
            }
        }
        fieldCount = count
        state = exit.state
        nameStart = base &+ exit.nameStart
        nameEnd = base &+ exit.nameEnd
        valueStart = base &+ exit.valueStart
        valueEnd = base &+ exit.valueEnd
        return exit.index
    }

    /// Blank span slots past `fieldCount` for `scanFieldLines` to write into: the array's spare capacity, or more.
    mutating func addFieldSlots() {
        let spare = fields.capacity &- fields.count
        let more = min(spare > 0 ? spare : max(16, fields.count), limits.maxHeaderCount &- fields.count)
        let blank = FieldSpan(nameStart: 0, nameEnd: 0, valueStart: 0, valueEnd: 0, known: .other)
        fields.append(contentsOf: repeatElement(blank, count: max(more, 1)))
    }

    /// The end of the run of field-value bytes (field-vchar, SP, HTAB) of `bytes[start..<end]`: eight bytes at a
    /// time while none of them is a control byte or DEL, then byte by byte.
    @inline(__always)
    static func valueRunEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        var j = start
        if let base = bytes.baseAddress {
            // A word has a byte below 0x20 when (w - 0x20…) & ~w & 0x80… is not zero, and a DEL byte when the same
            // test for zero holds for w ^ 0x7F…: both are exact as to whether such a byte exists and as to which is
            // the first (a borrow reaches a higher byte only from a lower one that matched). HTAB is the one byte
            // below 0x20 a value holds: the scan steps over it and goes on.
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while j &+ 8 <= end {
                let word = base.loadUnaligned(fromByteOffset: j, as: UInt64.self)
                let del = word ^ (0x7F &* ones)
                let control = (word &- 0x20 &* ones) & ~word & highs
                let isDel = (del &- ones) & ~del & highs
                let stops = control | isDel
                if stops != 0 {
                    // Bytes are in memory order from the low end.
                    j &+= stops.trailingZeroBitCount &>> 3
                    guard base.load(fromByteOffset: j, as: UInt8.self) == ByteClass.htab else { return j }
                    j &+= 1
                    continue
                }
                j &+= 8
            }
        }
        while j < end {
            let byte = bytes[j]
            guard ByteClass.isFieldVchar(byte) || ByteClass.isWhitespace(byte) else { break }
            j &+= 1
        }
        return j
    }

    /// Which known name the field name at offsets `start..<end` of the head is: its bytes are in this input
    /// (`bytes`, from offset `base`) or began in `storage`.
    @inline(__always)
    func knownField(from start: Int, to end: Int, bytes: UnsafeRawBufferPointer, base: Int) -> KnownField {
        let length = end &- start
        guard length >= 2 && length <= KnownField.longest else { return .other }
        if start >= base { return KnownField(bytes.assumingMemoryBound(to: UInt8.self), start &- base, end &- base) }
        // The name began in an earlier input: gathered on the stack (it is short).
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: KnownField.longest) { name in
            for index in 0..<length {
                let offset = start &+ index
                name[index] = offset < base ? storage[offset] : bytes[offset &- base]
            }
            return KnownField(UnsafeBufferPointer(name), 0, length)
        }
    }

    /// The end of the token (tchars) that goes on at `bytes[start]`, or `end`: word runs of letters and `-` with any
    /// other tchar stepped over.
    @inline(__always)
    static func tokenEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        var j = start
        while true {
            j = commonTokenRunEnd(bytes, from: j, to: end)
            guard j < end && ByteClass.isTchar(bytes[j]) else { return j }
            j &+= 1
        }
    }

    /// The end of the run of letters and `-` (the usual field-name and method bytes, all tchars) of
    /// `bytes[start..<end]`, eight bytes at a time, or where fewer than eight bytes are left: the caller goes on
    /// from there with the full tchar test, so a rarer tchar only ends a fast part.
    @inline(__always)
    static func commonTokenRunEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        var j = start
        guard let base = bytes.baseAddress else { return j }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while j &+ 8 <= end {
            let word = base.loadUnaligned(fromByteOffset: j, as: UInt64.self)
            // For bytes below 0x80, x + (0x80 - lo) has its high bit set exactly when x >= lo and x + (0x7F - hi)
            // exactly when x > hi, and neither sum carries into the next byte. A byte of 0x80 or more is no match
            // (its high bit is cleared from the result); a carry out of it reaches only bytes after it.
            let lower = word | (0x20 &* ones)
            let letter = (lower &+ (0x80 - 0x61) &* ones) & ~(lower &+ (0x7F - 0x7A) &* ones)
            let dash = (word &+ (0x80 - 0x2D) &* ones) & ~(word &+ (0x7F - 0x2D) &* ones)
            let matches = (letter | dash) & ~word & highs
            if matches != highs {
                // Bytes are in memory order from the low end: the matching ones before the first other byte.
                return j &+ (~matches & highs).trailingZeroBitCount >> 3
            }
            j &+= 8
        }
        return j
    }

    /// Whether `scanFieldLines` stopped on the final LF, with the loop's checks of that byte holding.
    @inline(__always)
    func endsAt(_ bytes: UnsafeRawBufferPointer, _ index: Int, base: Int) -> Bool {
        state == .endLF && index < bytes.count && base &+ index < limits.maxHeaderBytes && bytes[index] == ByteClass.lf
    }

    /// The head ends with the LF at `index`: its bytes are kept and its fields interpreted.
    @inline(__always)
    mutating func finish(_ bytes: UnsafeRawBufferPointer, through index: Int) -> ParseStep {
        appendToStorage(UnsafeRawBufferPointer(rebasing: bytes[0..<(index &+ 1)]))
        if let error = interpretFields() { return fail(error) }
        state = .complete
        return .complete(consumed: index &+ 1)
    }

    /// Copies `bytes` after the head's bytes so far: over stale bytes of an earlier head first, then by appending.
    @inline(__always)
    mutating func appendToStorage(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        let at = headLength
        let reused = storage.withUnsafeMutableBytes { stored -> Int in
            let reused = min(bytes.count, stored.count &- at)
            if reused > 0 { stored.baseAddress!.advanced(by: at).copyMemory(from: source, byteCount: reused) }
            return reused
        }
        if reused < bytes.count {
            storage.append(contentsOf: UnsafeRawBufferPointer(start: source + reused, count: bytes.count &- reused))
        }
        headLength &+= bytes.count
    }

    /// Records the next field: over a stale span of an earlier head first, then by appending.
    @inline(__always)
    mutating func appendField(_ span: FieldSpan) {
        if fieldCount < fields.count {
            fields[fieldCount] = span
        } else {
            fields.append(span)
        }
        fieldCount &+= 1
    }

    mutating func fail(_ error: HeadError) -> ParseStep {
        failure = error
        state = .failed
        return .failure(error)
    }

    /// Whether `bytes[index..<index + 9]` (all present) is `HTTP/1.1` followed by `last`.
    @inline(__always)
    static func isHTTP11(_ bytes: UnsafeRawBufferPointer, at index: Int, then last: UInt8) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        // "HTTP/1.1" as a little-endian word.
        let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        return word == 0x312E_312F_5054_5448 && bytes[index &+ 8] == last
    }

    /// Byte `position` of `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3); the name is case-sensitive.
    static func isVersionByte(_ byte: UInt8, at position: Int) -> Bool {
        switch position {
        case 0: return byte == 0x48  // H
        case 1, 2: return byte == 0x54  // T
        case 3: return byte == 0x50  // P
        case 4: return byte == 0x2F  // /
        case 5, 7: return ByteClass.isDigit(byte)
        case 6: return byte == 0x2E  // .
        default: return false
        }
    }

    /// Check the version ending at `end` (its bytes were each checked by `isVersionByte` on arrival).
    mutating func finishVersion(end: Int, base: Int, bytes: UnsafeRawBufferPointer) -> HeadError? {
        guard end - versionStart == 8 else { return .invalidVersion }
        // The digits are at offsets versionStart+5 and +7, either already in storage or in this input.
        func byte(at offset: Int) -> UInt8 { offset < base ? storage[offset] : bytes[offset - base] }
        let major = byte(at: versionStart + 5)
        let minor = byte(at: versionStart + 7)
        switch (major, minor) {
        case (0x31, 0x31): parsedVersion = .http1_1
        case (0x31, 0x30): parsedVersion = .http1_0
        default: return .unsupportedVersion
        }
        return nil
    }
}
