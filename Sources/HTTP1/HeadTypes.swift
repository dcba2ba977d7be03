// Values a parsed HTTP/1.x head is described with: method, version, body framing, limits and errors.

/// Request method (RFC 9110 §9). The common ones have a case; others are `.other` and are read from the raw bytes.
public enum Method: Sendable, Equatable {
    case get, head, post, put, delete, connect, options, trace, patch
    case other

    /// Method for the exact (case-sensitive, RFC 9110 §9.1) method token bytes.
    init(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) {
        func matches(_ literal: StaticString) -> Bool {
            guard end &- start == literal.utf8CodeUnitCount else { return false }
            for i in 0..<literal.utf8CodeUnitCount where bytes[start &+ i] != literal.utf8Start[i] { return false }
            return true
        }
        switch end &- start {
        case 3: self = matches("GET") ? .get : matches("PUT") ? .put : .other
        case 4: self = matches("POST") ? .post : matches("HEAD") ? .head : .other
        case 5: self = matches("PATCH") ? .patch : matches("TRACE") ? .trace : .other
        case 6: self = matches("DELETE") ? .delete : .other
        case 7: self = matches("OPTIONS") ? .options : matches("CONNECT") ? .connect : .other
        default: self = .other
        }
    }
}

/// HTTP version of a message (RFC 9112 §2.3). Only HTTP/1.0 and HTTP/1.1 are accepted by the parser.
public enum Version: Sendable, Equatable {
    case http1_0
    case http1_1

    /// The exact wire form: `HTTP/1.0` or `HTTP/1.1`.
    public var bytes: StaticString {
        switch self {
        case .http1_0: return "HTTP/1.0"
        case .http1_1: return "HTTP/1.1"
        }
    }
}

/// How the body following a head is delimited (RFC 9112 §6.3).
public enum BodyFraming: Sendable, Equatable {
    /// No body (a request without Content-Length or Transfer-Encoding, HEAD responses, 1xx/204/304).
    case none
    /// Exactly this many bytes follow.
    case contentLength(UInt64)
    /// Chunked transfer coding (RFC 9112 §7.1): decode with `ChunkedDecoder`.
    case chunked
    /// A response body read until the connection closes (RFC 9112 §6.3 rules 4 and 8).
    case untilClose
    /// A 2xx response to CONNECT: the connection becomes a tunnel (RFC 9112 §6.3 rule 2).
    case tunnel
}

/// Size limits enforced while the head arrives, byte by byte.
public struct Limits: Sendable, Equatable {
    /// Longest request line (or status line), without its CRLF; crossing it is a 414 (RFC 9112 §3).
    public var maxRequestLine: Int
    /// Largest whole head, start line and final CRLF included; crossing it is a 431 (RFC 6585 §5).
    public var maxHeaderBytes: Int
    /// Most header fields; one more is a 431.
    public var maxHeaderCount: Int

    public init(maxRequestLine: Int = 8192, maxHeaderBytes: Int = 32768, maxHeaderCount: Int = 100) {
        self.maxRequestLine = maxRequestLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
    }
}

/// Why a head was rejected. `status` is the response a server sends for it.
public enum HeadError: Error, Sendable, Equatable {
    /// The request line (status line for responses) is longer than `Limits.maxRequestLine` (RFC 9112 §3).
    case requestLineTooLong
    /// The head is larger than `Limits.maxHeaderBytes` (RFC 6585 §5).
    case headerBlockTooLarge
    /// More than `Limits.maxHeaderCount` fields (RFC 6585 §5).
    case tooManyHeaders
    /// More empty lines before the request line than the parser skips (RFC 9112 §2.2).
    case tooManyLeadingEmptyLines
    /// A method byte that is not a tchar (RFC 9110 §9.1, §5.6.2).
    case invalidMethod
    /// Empty request-target, a second SP, or a CTL, SP, DEL, `#` or non-ASCII byte in it (RFC 9112 §3.2).
    case invalidTarget
    /// HTTP-version not of the form `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3), lowercase included.
    case invalidVersion
    /// A well-formed version other than 1.0 or 1.1 (RFC 9110 §15.6.6).
    case unsupportedVersion
    /// status-code not three digits in 100...599 (RFC 9112 §4).
    case invalidStatusCode
    /// A CTL in the reason-phrase (RFC 9112 §4).
    case invalidReason
    /// LF without a preceding CR (RFC 9112 §2.2: this parser accepts CRLF only).
    case bareLF
    /// CR not followed by LF (RFC 9112 §2.2).
    case bareCR
    /// Whitespace between the start line and the first field (RFC 9112 §2.2).
    case whitespaceBeforeFirstField
    /// A field line starting with SP or HTAB: obsolete line folding (RFC 9112 §5.2).
    case obsFold
    /// A field name byte that is not a tchar, or a field line without a colon (RFC 9112 §5, RFC 9110 §5.1).
    case invalidFieldName
    /// Whitespace between the field name and the colon (RFC 9112 §5.1).
    case whitespaceBeforeColon
    /// NUL, CTL or DEL in a field value (RFC 9110 §5.5).
    case invalidFieldValue
    /// Content-Length that is not 1*DIGIT, is empty or overflows (RFC 9110 §8.6, RFC 9112 §6.3 rule 5).
    case invalidContentLength
    /// Content-Length fields or list members with differing values (RFC 9110 §8.6, RFC 9112 §6.3 rule 5).
    case conflictingContentLength
    /// Both Content-Length and Transfer-Encoding: a request smuggling sign (RFC 9112 §6.1, §6.3 rule 3, §11.2).
    case contentLengthWithTransferEncoding
    /// Transfer-Encoding in an HTTP/1.0 message: framing is faulty (RFC 9112 §6.1).
    case transferEncodingInHTTP10
    /// Transfer-Encoding on a request whose final coding is not `chunked` (RFC 9112 §6.3 rule 4).
    case chunkedNotFinal
    /// `chunked` listed more than once (RFC 9112 §6.1).
    case chunkedAppliedTwice
    /// A Transfer-Encoding value that is not a list of codings, or `chunked` with parameters (RFC 9112 §6.1).
    case invalidTransferEncoding
    /// A transfer coding other than `chunked` before the final `chunked` (RFC 9112 §6.1: 501).
    case unsupportedTransferCoding
    /// An HTTP/1.1 request without Host (RFC 9112 §3.2).
    case missingHost
    /// A request with more than one Host field (RFC 9112 §3.2).
    case multipleHost

    /// Status code a server answers this error with.
    public var status: Int {
        switch self {
        case .requestLineTooLong: return 414
        case .headerBlockTooLarge, .tooManyHeaders: return 431
        case .unsupportedTransferCoding: return 501
        case .unsupportedVersion: return 505
        default: return 400
        }
    }
}

/// Outcome of feeding bytes to a `HeadParser`.
public enum ParseStep: Sendable, Equatable {
    /// Every byte was consumed and the head is not finished yet.
    case needMore
    /// The head ended after `consumed` bytes of this input; later bytes (body, next request) are not consumed.
    case complete(consumed: Int)
    /// The head is invalid; the connection must not be reused (RFC 9112 §9.6 after an error response).
    case failure(HeadError)
}
