// The parsed head: field semantics checked once the head ends (framing, Host, Connection) and read accessors.

extension HeadParser {
    /// Walk the fields once the head is complete: framing (RFC 9112 §6), Host (§3.2), Connection and Upgrade.
    mutating func interpretFields() -> HeadError? {
        let head = storage  // a second reference, so `self` can be mutated while the bytes are read
        return head.withUnsafeBufferPointer { buf -> HeadError? in
            // `.get` when the request line was read in one go and began with `GET SP`.
            if kind == .request && parsedMethod == .other { parsedMethod = Method(buf, startLineStart, methodEnd) }
            var hosts = 0
            var codings = 0
            var chunkedCount = 0
            var otherCoding = false
            for index in 0..<fieldCount {
                let field = fields[index]
                let (start, end) = (field.valueStart, field.valueEnd)
                switch field.known {
                case .host:
                    hosts += 1
                case .upgrade:
                    if upgradeField < 0 { upgradeField = index }
                    forEachListElement(buf, start, end) { s, e in
                        // protocol-name ["/" protocol-version] (RFC 9110 §7.8)
                        var nameEnd = s
                        while nameEnd < e && buf[nameEnd] != 0x2F { nameEnd += 1 }
                        if equalsKnownName(buf, s, nameEnd, "websocket") { websocketToken = true }
                        return true
                    }
                case .connection:
                    // The usual single token first; any other value as the list it is (RFC 9110 §7.6.1).
                    if equalsKnownName(buf, start, end, "keep-alive") {
                        connectionKeepAlive = true
                        continue
                    }
                    if equalsKnownName(buf, start, end, "close") {
                        connectionClose = true
                        continue
                    }
                    forEachListElement(buf, start, end) { s, e in
                        if equalsKnownName(buf, s, e, "close") {
                            connectionClose = true
                        } else if equalsKnownName(buf, s, e, "keep-alive") {
                            connectionKeepAlive = true
                        } else if equalsKnownName(buf, s, e, "upgrade") {
                            connectionUpgrade = true
                        } else if s < e {
                            connectionListsOtherFields = true
                        }
                        return true
                    }
                case .contentLength:
                    // The usual single number first (all digits: a list of one).
                    if let value = parseDecimal(buf, start, end) {
                        if let previous = contentLength, previous != value { return .conflictingContentLength }
                        contentLength = value
                        continue
                    }
                    var failure: HeadError?
                    // Content-Length = 1*DIGIT; a list of identical values is one value (RFC 9110 §8.6).
                    forEachListElement(buf, start, end) { s, e in
                        guard let value = parseDecimal(buf, s, e) else {
                            failure = .invalidContentLength
                            return false
                        }
                        if let previous = contentLength, previous != value {
                            failure = .conflictingContentLength
                            return false
                        }
                        contentLength = value
                        return true
                    }
                    if let failure { return failure }
                case .transferEncoding:
                    transferEncodingPresent = true
                    var invalid = false
                    forEachListElement(buf, start, end) { s, e in
                        // Empty list elements are ignored (RFC 9110 §5.6.1).
                        guard s < e else { return true }
                        var tokenEnd = s
                        while tokenEnd < e && ByteClass.isTchar(buf[tokenEnd]) { tokenEnd += 1 }
                        var rest = tokenEnd
                        while rest < e && ByteClass.isWhitespace(buf[rest]) { rest += 1 }
                        let hasParameters = rest < e
                        guard tokenEnd > s, !hasParameters || buf[rest] == ByteClass.semicolon else {
                            invalid = true
                            return false
                        }
                        codings += 1
                        if equalsKnownName(buf, s, tokenEnd, "chunked") {
                            guard !hasParameters else {
                                invalid = true
                                return false
                            }
                            chunkedCount += 1
                            chunkedFinal = true
                        } else {
                            otherCoding = true
                            chunkedFinal = false
                        }
                        return true
                    }
                    if invalid { return .invalidTransferEncoding }
                default:
                    break
                }
            }
            if kind == .request {
                if hosts > 1 { return .multipleHost }
                if hosts == 0 && parsedVersion == .http1_1 { return .missingHost }
            }
            if transferEncodingPresent {
                if codings == 0 { return .invalidTransferEncoding }
                if parsedVersion == .http1_0 { return .transferEncodingInHTTP10 }
                // A gateway rejects CL + TE in both directions rather than forwarding an ambiguous message.
                if contentLength != nil { return .contentLengthWithTransferEncoding }
                if chunkedCount > 1 { return .chunkedAppliedTwice }
                if kind == .request {
                    if !chunkedFinal { return .chunkedNotFinal }
                    if otherCoding { return .unsupportedTransferCoding }
                }
            }
            return nil
        }
    }

    // MARK: Start line

    /// The request method (RFC 9110 §9); `.other` for methods without a case, read those from `methodBytes`.
    @inlinable public var method: Method { parsedMethod }

    /// The method token as received.
    public var methodBytes: ArraySlice<UInt8> { storage[startLineStart..<methodEnd] }

    /// The request-target as received (RFC 9112 §3.2).
    public var target: ArraySlice<UInt8> { storage[targetStart..<targetEnd] }

    /// The target up to its first `?` (the whole target when there is none).
    @inlinable public var path: ArraySlice<UInt8> { storage[targetStart..<(queryMark < 0 ? targetEnd : queryMark)] }

    /// The bytes after the first `?` of the target, without it; nil when the target has no `?`.
    public var query: ArraySlice<UInt8>? { queryMark < 0 ? nil : storage[(queryMark + 1)..<targetEnd] }

    /// HTTP version of the message (RFC 9112 §2.3).
    @inlinable public var version: Version { parsedVersion }

    /// Status code of a response (RFC 9112 §4).
    @inlinable public var status: Int { parsedStatus }

    /// reason-phrase of a response, possibly empty.
    public var reason: ArraySlice<UInt8> { storage[reasonStart..<reasonEnd] }

    /// The whole head as received, start line to final CRLF (leading empty lines included).
    @inlinable public var headBytes: ArraySlice<UInt8> { storage[0..<headLength] }

    /// Calls `body` with the bytes of `headBytes` in place (no slice is made, so nothing is retained).
    @inlinable
    public func withUnsafeHeadBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        storage.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[0..<headLength])) }
    }

    /// Number of bytes of `headBytes`.
    @inlinable public var headByteCount: Int { headLength }

    /// Bytes of storage the parser keeps across `reset()`.
    public var retainedBytes: Int { storage.capacity }

    // MARK: Fields

    /// Name of field `index` as received.
    public func name(at index: Int) -> ArraySlice<UInt8> {
        let field = span(at: index)
        return storage[field.nameStart..<field.nameEnd]
    }

    /// Value of field `index` without leading and trailing whitespace (RFC 9110 §5.5).
    public func value(at index: Int) -> ArraySlice<UInt8> {
        let field = span(at: index)
        return storage[field.valueStart..<field.valueEnd]
    }

    /// Index of the first field named `name`, compared case-insensitively (RFC 9110 §5.1); `name` is lowercase.
    public func firstIndex(ofField name: StaticString) -> Int? {
        storage.withUnsafeBufferPointer { buf in
            for index in 0..<fieldCount where equalsLowercase(buf, fields[index].nameStart, fields[index].nameEnd, name)
            {
                return index
            }
            return nil
        }
    }

    /// Value of the first field named `name` (lowercase), or nil.
    public func value(ofField name: StaticString) -> ArraySlice<UInt8>? {
        firstIndex(ofField: name).map { value(at: $0) }
    }

    // MARK: Offsets (into `headBytes`; no slice is made, so nothing is retained: for hot loops)

    /// Offsets of `methodBytes`.
    @inlinable public var methodRange: Range<Int> { startLineStart..<methodEnd }
    /// Offsets of `target` (path and query as received).
    @inlinable public var targetRange: Range<Int> { targetStart..<targetEnd }
    /// Offsets of the start line without its CRLF: up to the end of the target (a request: the version is not
    /// included) or of the reason (a response, with its version).
    @inlinable public var startLineRange: Range<Int> { startLineStart..<(kind == .request ? targetEnd : reasonEnd) }
    /// Offsets of `path`.
    @inlinable public var pathRange: Range<Int> { targetStart..<(queryMark < 0 ? targetEnd : queryMark) }
    /// Offsets of `query`, or nil.
    @inlinable public var queryRange: Range<Int>? { queryMark < 0 ? nil : (queryMark + 1)..<targetEnd }
    /// Offsets of `reason`.
    @inlinable public var reasonRange: Range<Int> { reasonStart..<reasonEnd }
    /// Offsets of `name(at:)`.
    @inlinable public func nameRange(at index: Int) -> Range<Int> {
        let field = span(at: index)
        return field.nameStart..<field.nameEnd
    }
    /// Which known name field `index` has (any case); `.other` for the rest.
    @inlinable public func knownName(at index: Int) -> KnownField { span(at: index).known }
    /// Offsets of `value(at:)`.
    @inlinable public func valueRange(at index: Int) -> Range<Int> {
        let field = span(at: index)
        return field.valueStart..<field.valueEnd
    }

    /// Field `index` of this head (spans past `fieldCount` are stale: out of range like any other index).
    @inlinable @inline(__always)
    func span(at index: Int) -> FieldSpan {
        precondition(UInt(bitPattern: index) < UInt(bitPattern: fieldCount), "field index out of range")
        return fields.withUnsafeBufferPointer { $0[index] }
    }

    // MARK: Semantics

    /// Whether the connection stays open after this message (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive`. This reads the header only: a response framed `.untilClose`
    /// or a failed body still ends the connection.
    @inlinable public var keepAlive: Bool {
        if connectionClose { return false }
        return parsedVersion == .http1_1 || connectionKeepAlive
    }

    /// A Connection field lists a token other than `close`, `keep-alive` and `upgrade`: the name of another field
    /// that is hop-by-hop for this message (RFC 9110 §7.6.1).
    @inlinable public var connectionNamesOtherFields: Bool { connectionListsOtherFields }

    /// A protocol upgrade is asked for: Connection lists `upgrade` and an Upgrade field is present (RFC 9110 §7.8).
    @inlinable public var upgrade: Bool { connectionUpgrade && upgradeField >= 0 }

    /// The upgrade asks for WebSocket (`Upgrade: websocket`, any case; RFC 6455 §4.1).
    @inlinable public var isWebSocketUpgrade: Bool { upgrade && websocketToken }

    /// Body framing as the message itself states it (RFC 9112 §6.3). For a request: chunked, Content-Length or
    /// none. For a response, without the request in view: none for 1xx/204/304, else chunked (final coding
    /// chunked), Content-Length, or until close. Use `responseFraming(requestMethod:)` for responses.
    // Always inlined: a call passes the parser by address, and a caller whose parser is a class's stored property
    // copied all 225 bytes of it first.
    @inlinable @inline(__always) public var bodyFraming: BodyFraming {
        if kind == .response && (parsedStatus < 200 || parsedStatus == 204 || parsedStatus == 304) { return .none }
        if transferEncodingPresent { return chunkedFinal ? .chunked : .untilClose }
        if let contentLength { return .contentLength(contentLength) }
        return kind == .request ? .none : .untilClose
    }

    /// Framing of a response to a request with `requestMethod` (RFC 9112 §6.3 rules 1 and 2): none after HEAD,
    /// a tunnel for a 2xx to CONNECT, otherwise `bodyFraming`. A 101 is `.none`: what follows is the new protocol.
    @inlinable @inline(__always) public func responseFraming(requestMethod: Method) -> BodyFraming {
        if requestMethod == .head { return .none }
        if requestMethod == .connect && parsedStatus >= 200 && parsedStatus < 300 { return .tunnel }
        return bodyFraming
    }
}

/// Calls `body` with the bounds of each comma-separated element of `start..<end`, OWS trimmed (RFC 9110 §5.6.1).
/// Empty elements are passed too; `body` returns false to stop.
@inline(__always)
func forEachListElement(
    _ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ body: (Int, Int) -> Bool
) {
    var elementStart = start
    while elementStart <= end {
        var elementEnd = elementStart
        while elementEnd < end && buf[elementEnd] != ByteClass.comma { elementEnd += 1 }
        var s = elementStart
        var e = elementEnd
        while s < e && ByteClass.isWhitespace(buf[s]) { s += 1 }
        while e > s && ByteClass.isWhitespace(buf[e - 1]) { e -= 1 }
        if !body(s, e) { return }
        elementStart = elementEnd + 1
    }
}

/// 1*DIGIT as an unsigned integer, nil when empty, not all digits, or above `UInt64.max`.
func parseDecimal(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> UInt64? {
    guard start < end else { return nil }
    var value: UInt64 = 0
    for index in start..<end {
        let byte = buf[index]
        guard ByteClass.isDigit(byte) else { return nil }
        let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte &- 0x30))
        guard !overflow1 && !overflow2 else { return nil }
        value = sum
    }
    return value
}
