// Resumable decoder of the chunked transfer coding (RFC 9112 §7.1): finds data spans in the input, copies nothing.

/// Why a chunked body was rejected; every case is a framing error (a 400 on requests, a 502 on responses).
public enum ChunkedError: Error, Sendable, Equatable {
    /// chunk-size missing or not HEXDIG, or whitespace not followed by an extension (RFC 9112 §7.1).
    case invalidChunkSize
    /// chunk-size with more than 16 hex digits or above 2^63 (RFC 9112 §7.1: anticipate overflow).
    case chunkSizeOverflow
    /// Chunk extensions longer than `ChunkedDecoder.maxExtensionBytes` on one chunk line (RFC 9112 §7.1.1).
    case extensionTooLong
    /// A CTL in a chunk extension (RFC 9112 §7.1.1).
    case invalidExtension
    /// Chunk data not followed by CRLF (RFC 9112 §7.1).
    case missingCRLFAfterData
    /// LF without a preceding CR.
    case bareLF
    /// CR not followed by LF.
    case bareCR
    /// A trailer line that is not a valid field line: bad name, space before colon, obs-fold, CTL in value
    /// (RFC 9112 §7.1.2, §5).
    case invalidTrailer
    /// Trailer section larger than `ChunkedDecoder.maxTrailerBytes`.
    case trailersTooLarge
}

/// One step of `ChunkedDecoder.next(_:)`. Offsets are relative to the input given to that call.
public enum ChunkedStep: Sendable, Equatable {
    /// Body data is at `input[range]`; everything before `range.upperBound` is consumed.
    case data(Range<Int>)
    /// All input consumed; the body continues.
    case needMore
    /// The last chunk and the trailer section ended after `consumed` bytes; later bytes are not consumed.
    case end(consumed: Int)
    /// The chunked framing is invalid; the connection must be closed.
    case failure(ChunkedError)
}

/// Decoder of a chunked body (RFC 9112 §7.1), resumable at any byte. Trailer fields are validated like header
/// fields and dropped (RFC 9112 §7.1.2 allows discarding them).
public struct ChunkedDecoder: Sendable {
    enum State: UInt8, Sendable {
        case sizeStart
        case size
        case sizeWhitespace
        case extensions
        case sizeLF
        case data
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerName
        case trailerValue
        case trailerLF
        case finalLF
        case done
        case failed
    }

    /// Most bytes of chunk extensions (everything between chunk-size and CR) on one chunk line.
    public let maxExtensionBytes: Int
    /// Most bytes of the trailer section, final CRLF included.
    public let maxTrailerBytes: Int

    var state: State = .sizeStart
    var failure: ChunkedError = .invalidChunkSize
    var size: UInt64 = 0
    var sizeDigits = 0
    var remaining: UInt64 = 0
    var extensionBytes = 0
    var trailerBytes = 0

    public init(maxExtensionBytes: Int = 1024, maxTrailerBytes: Int = 8192) {
        self.maxExtensionBytes = maxExtensionBytes
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// Ready for the next body.
    public mutating func reset() {
        state = .sizeStart
        size = 0
        sizeDigits = 0
        remaining = 0
        extensionBytes = 0
        trailerBytes = 0
    }

    /// True once the last chunk and its trailer section were read.
    public var isFinished: Bool { state == .done }

    /// Process `input` up to the next data span, the end of the body, or the end of the input.
    public mutating func next(_ input: UnsafeRawBufferPointer) -> ChunkedStep {
        switch state {
        case .done: return .end(consumed: 0)
        case .failed: return .failure(failure)
        default: break
        }
        let count = input.count
        var i = 0
        while i < count {
            if state == .data {
                let available = UInt64(count - i)
                let take = Int(min(available, remaining))
                remaining -= UInt64(take)
                if remaining == 0 { state = .dataCR }
                return .data(i..<(i + take))
            }
            let byte = input[i]
            if byte == ByteClass.lf {
                switch state {
                case .sizeLF, .dataLF, .trailerLF, .finalLF: break
                default: return fail(.bareLF)
                }
            }
            if state.rawValue >= State.trailerLineStart.rawValue {
                trailerBytes += 1
                if trailerBytes > maxTrailerBytes { return fail(.trailersTooLarge) }
            }
            switch state {
            case .sizeStart, .size:
                if let digit = ByteClass.hexValue(byte) {
                    guard sizeDigits < 16 else { return fail(.chunkSizeOverflow) }
                    size = size << 4 | digit
                    sizeDigits += 1
                    if size > 1 << 63 { return fail(.chunkSizeOverflow) }
                    state = .size
                } else if state == .sizeStart {
                    return fail(.invalidChunkSize)
                } else if byte == ByteClass.cr {
                    state = .sizeLF
                } else if byte == ByteClass.semicolon || ByteClass.isWhitespace(byte) {
                    extensionBytes = 1
                    state = byte == ByteClass.semicolon ? .extensions : .sizeWhitespace
                } else {
                    return fail(.invalidChunkSize)
                }
            case .sizeWhitespace:
                // BWS is allowed only before the ";" of an extension (RFC 9112 §7.1.1).
                extensionBytes += 1
                if extensionBytes > maxExtensionBytes { return fail(.extensionTooLong) }
                if byte == ByteClass.semicolon {
                    state = .extensions
                } else if !ByteClass.isWhitespace(byte) {
                    return fail(.invalidChunkSize)
                }
            case .extensions:
                if byte == ByteClass.cr {
                    state = .sizeLF
                } else {
                    extensionBytes += 1
                    if extensionBytes > maxExtensionBytes { return fail(.extensionTooLong) }
                    guard ByteClass.isFieldVchar(byte) || ByteClass.isWhitespace(byte) else {
                        return fail(.invalidExtension)
                    }
                }
            case .sizeLF:
                guard byte == ByteClass.lf else { return fail(.bareCR) }
                if size == 0 {
                    state = .trailerLineStart
                } else {
                    remaining = size
                    state = .data
                }
                size = 0
                sizeDigits = 0
                extensionBytes = 0
            case .dataCR:
                guard byte == ByteClass.cr else { return fail(.missingCRLFAfterData) }
                state = .dataLF
            case .dataLF:
                guard byte == ByteClass.lf else { return fail(.missingCRLFAfterData) }
                state = .sizeStart
            case .trailerLineStart:
                if byte == ByteClass.cr {
                    state = .finalLF
                } else if ByteClass.isTchar(byte) {
                    state = .trailerName
                } else {
                    return fail(.invalidTrailer)
                }
            case .trailerName:
                if byte == ByteClass.colon {
                    state = .trailerValue
                } else if !ByteClass.isTchar(byte) {
                    return fail(.invalidTrailer)
                }
            case .trailerValue:
                if byte == ByteClass.cr {
                    state = .trailerLF
                } else if !(ByteClass.isFieldVchar(byte) || ByteClass.isWhitespace(byte)) {
                    return fail(.invalidTrailer)
                }
            case .trailerLF:
                guard byte == ByteClass.lf else { return fail(.bareCR) }
                state = .trailerLineStart
            case .finalLF:
                guard byte == ByteClass.lf else { return fail(.bareCR) }
                state = .done
                return .end(consumed: i + 1)
            case .data, .done, .failed:
                preconditionFailure("chunked decoder loop entered in state \(state)")
            }
            i += 1
        }
        return .needMore
    }

    /// Process all of `input`, calling `onData` with each data span (a view into `input`, valid only during the
    /// call). Returns `.needMore`, `.end(consumed:)` (offset relative to `input`) or `.failure`, never `.data`.
    public mutating func decode(
        _ input: UnsafeRawBufferPointer, onData: (UnsafeRawBufferPointer) -> Void
    ) -> ChunkedStep {
        var offset = 0
        while true {
            let rest = UnsafeRawBufferPointer(rebasing: input[offset...])
            switch next(rest) {
            case .data(let range):
                onData(UnsafeRawBufferPointer(rebasing: rest[range]))
                offset += range.upperBound
            case .needMore:
                return .needMore
            case .end(let consumed):
                return .end(consumed: offset + consumed)
            case .failure(let error):
                return .failure(error)
            }
        }
    }

    mutating func fail(_ error: ChunkedError) -> ChunkedStep {
        failure = error
        state = .failed
        return .failure(error)
    }
}
