// Tracks where a relayed message body ends (Content-Length, chunked, until close) without decoding it away.
import HTTP1

/// Follows one body as its bytes are relayed unchanged (chunked stays chunked): says how many leading bytes of
/// each input belong to the body and when the body ended (RFC 9112 §6.3).
public struct BodyCursor: Sendable {
    public enum Kind: UInt8, Sendable {
        case none
        case length
        case chunked
        case untilClose
    }

    public enum Step: Sendable, Equatable {
        /// The first `count` bytes belong to the body; `ended` when the body is complete after them.
        case body(count: Int, ended: Bool)
        /// Bad chunked framing.
        case invalid
    }

    public private(set) var kind: Kind = .none
    private var remaining: UInt64 = 0
    /// Body bytes seen so far (chunked: payload bytes, without the framing).
    public private(set) var total: UInt64 = 0
    private var decoder = ChunkedDecoder()
    public private(set) var isDone = true

    public init() {}

    /// Starts following a body framed as `framing`.
    public mutating func start(_ framing: BodyFraming) {
        total = 0
        switch framing {
        case .none:
            kind = .none
            isDone = true
        case .contentLength(let length):
            kind = .length
            remaining = length
            isDone = length == 0
        case .chunked:
            kind = .chunked
            decoder.reset()
            isDone = false
        case .untilClose, .tunnel:
            kind = .untilClose
            isDone = false
        }
    }

    /// Marks an until-close body complete (the peer closed).
    public mutating func finishAtClose() {
        if kind == .untilClose { isDone = true }
    }

    /// How many leading bytes of `bytes` belong to the body, and whether the body ended after them.
    public mutating func take(_ bytes: UnsafeRawBufferPointer) -> Step {
        if isDone { return .body(count: 0, ended: true) }
        switch kind {
        case .none:
            return .body(count: 0, ended: true)
        case .length:
            let count = Int(min(remaining, UInt64(bytes.count)))
            remaining -= UInt64(count)
            total += UInt64(count)
            if remaining == 0 { isDone = true }
            return .body(count: count, ended: isDone)
        case .untilClose:
            total += UInt64(bytes.count)
            return .body(count: bytes.count, ended: false)
        case .chunked:
            var offset = 0
            while offset < bytes.count {
                switch decoder.next(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
                case .data(let range):
                    total += UInt64(range.count)
                    offset += range.upperBound
                case .needMore:
                    return .body(count: bytes.count, ended: false)
                case .end(let consumed):
                    isDone = true
                    return .body(count: offset + consumed, ended: true)
                case .failure:
                    return .invalid
                }
            }
            return .body(count: bytes.count, ended: false)
        }
    }
}
