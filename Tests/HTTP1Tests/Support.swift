// Helpers shared by the HTTP1 tests: comparable snapshots of parser outcomes and feeding input in pieces.

import HTTP1

extension Array where Element == UInt8 {
    init(ascii string: String) { self = Array(string.utf8) }
}

func text(_ bytes: some Sequence<UInt8>) -> String { String(decoding: Array(bytes), as: UTF8.self) }

/// Everything a parsed head exposes, in a form `#expect` can compare and print.
struct HeadSummary: Equatable, CustomStringConvertible {
    var method: Method
    var methodText: String
    var target: String
    var path: String
    var query: String?
    var version: Version
    var status: Int
    var reason: String
    var fields: [String]
    var known: [KnownField]
    var keepAlive: Bool
    var upgrade: Bool
    var webSocket: Bool
    var framing: BodyFraming

    init(_ parser: HeadParser) {
        method = parser.method
        methodText = text(parser.methodBytes)
        target = text(parser.target)
        path = text(parser.path)
        query = parser.query.map { text($0) }
        version = parser.version
        status = parser.status
        reason = text(parser.reason)
        fields = (0..<parser.fieldCount).map { text(parser.name(at: $0)) + ": " + text(parser.value(at: $0)) }
        known = (0..<parser.fieldCount).map { parser.knownName(at: $0) }
        keepAlive = parser.keepAlive
        upgrade = parser.upgrade
        webSocket = parser.isWebSocketUpgrade
        framing = parser.bodyFraming
    }

    var description: String {
        "\(methodText) \(target) \(version) \(status) \(fields) keepAlive=\(keepAlive) framing=\(framing)"
    }
}

/// Outcome of feeding a whole input, comparable across the ways it was cut into pieces.
enum HeadOutcome: Equatable {
    case complete(consumed: Int, HeadSummary)
    case failure(HeadError)
    case incomplete
}

/// Feed `pieces` in order, stopping at the first non-`needMore` step; `consumed` is made relative to the whole.
func feed(_ pieces: [ArraySlice<UInt8>], kind: HeadParser.Kind, limits: Limits) -> HeadOutcome {
    var parser = HeadParser(kind: kind, limits: limits)
    var offset = 0
    for piece in pieces {
        let step = piece.withUnsafeBytes { parser.parse($0) }
        switch step {
        case .needMore:
            offset += piece.count
        case .complete(let consumed):
            return .complete(consumed: offset + consumed, HeadSummary(parser))
        case .failure(let error):
            return .failure(error)
        }
    }
    return .incomplete
}

/// The input whole, then cut at every split point into two pieces, then one byte at a time.
func everyCut(_ bytes: [UInt8]) -> [(String, [ArraySlice<UInt8>])] {
    var cuts: [(String, [ArraySlice<UInt8>])] = [("whole", [bytes[...]])]
    for i in 0...bytes.count {
        cuts.append(("split at \(i)", [bytes[..<i], bytes[i...]]))
    }
    cuts.append(("byte by byte", bytes.indices.map { bytes[$0...$0] }))
    return cuts
}

/// Outcome of decoding a chunked body: the data and the bytes consumed, or the error.
enum ChunkedOutcome: Equatable {
    case end(data: [UInt8], consumed: Int)
    case failure(ChunkedError)
    case incomplete(data: [UInt8])
}

func decodeChunked(
    _ pieces: [ArraySlice<UInt8>], decoder initial: ChunkedDecoder = ChunkedDecoder()
)
    -> ChunkedOutcome
{
    var decoder = initial
    var data: [UInt8] = []
    var offset = 0
    for piece in pieces {
        let step = piece.withUnsafeBytes { raw in
            decoder.decode(raw) { data.append(contentsOf: $0) }
        }
        switch step {
        case .needMore, .data:
            offset += piece.count
        case .end(let consumed):
            return .end(data: data, consumed: offset + consumed)
        case .failure(let error):
            return .failure(error)
        }
    }
    return .incomplete(data: data)
}
