// Responses: the convenient `Response` value, and `FixedResponse`, bytes serialised once and copied out as they are.
import HTTP1

/// A response from a dynamic handler. The server adds `Content-Length` (except for 1xx, 204 and 304, which
/// carry no body: a body set for them is not sent), `Date` (when configured) and
/// `Connection`; fields of those names (and `Transfer-Encoding`) set here are ignored, so framing stays the
/// server's. Fields whose name is not a token or whose value holds CR, LF or NUL are dropped (no response
/// splitting).
public struct Response: Sendable {
    public var status: Int
    public var headers: [Headers.Field]
    public var body: [UInt8]

    public init(status: Int = 200, headers: [Headers.Field] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `text/plain; charset=utf-8`.
    public static func text(_ text: String, status: Int = 200) -> Response {
        Response(
            status: status, headers: [.init(name: "Content-Type", value: "text/plain; charset=utf-8")],
            body: Array(text.utf8))
    }

    /// `application/json` from already-encoded JSON text.
    public static func json(_ json: String, status: Int = 200) -> Response {
        Response(
            status: status, headers: [.init(name: "Content-Type", value: "application/json")], body: Array(json.utf8))
    }

    /// `application/json` from already-encoded JSON bytes.
    public static func json(bytes: [UInt8], status: Int = 200) -> Response {
        Response(status: status, headers: [.init(name: "Content-Type", value: "application/json")], body: bytes)
    }

    /// Raw bytes with a content type.
    public static func bytes(_ bytes: [UInt8], contentType: String, status: Int = 200) -> Response {
        Response(status: status, headers: [.init(name: "Content-Type", value: contentType)], body: bytes)
    }

    /// A status with an empty body.
    public static func status(_ status: Int) -> Response { Response(status: status) }

    /// The same response with one more header field.
    public func adding(header name: String, value: String) -> Response {
        var copy = self
        copy.headers.append(.init(name: name, value: value))
        return copy
    }

    /// Appends the status line, the header fields and Content-Length; not Date, Connection or the final CRLF.
    func appendLeadingHead(into out: inout [UInt8]) {
        HeadSerializer.appendStatusLine(status: status, into: &out)
        for field in headers where Response.isAllowed(field) {
            HeadSerializer.appendField(name: field.name.utf8, value: field.value.utf8, into: &out)
        }
        // RFC 9110 §8.6: no Content-Length in a 1xx or 204 response (which has no body either).
        if hasBody {
            HeadSerializer.appendField(name: "Content-Length".utf8, decimal: UInt64(body.count), into: &out)
        }
    }

    /// Whether the status allows a body (RFC 9110 §15: 1xx and 204 have none; 304 keeps its fields only).
    var hasBody: Bool { status >= 200 && status != 204 && status != 304 }

    /// The body as sent: empty for statuses without one.
    var sentBody: [UInt8] { hasBody ? body : [] }

    static func isAllowed(_ field: Headers.Field) -> Bool {
        guard !field.name.isEmpty, field.name.utf8.allSatisfy(isTokenByte) else { return false }
        guard !field.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else { return false }
        for reserved in ["content-length", "transfer-encoding", "connection", "date"]
        where asciiCaseInsensitiveEquals(field.name, reserved) {
            return false
        }
        return true
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// A response serialised once, at route set-up, and copied out per request as it is: a route answering it
/// allocates nothing per request. Immutable; shared by every loop.
///
/// Layout of `storage`: status line and fields up to `headEnd`, then the final CRLF and the body. The server
/// inserts `Date` and `Connection` lines at `headEnd` when needed.
public final class FixedResponse: Sendable {
    /// The status code.
    public let status: Int
    // Allocated once in init, never written after, freed in deinit: safe to read from every loop thread.
    nonisolated(unsafe) let storage: UnsafeMutableRawBufferPointer
    let headEnd: Int

    /// A fixed response from a `Response` value (its headers, with Content-Length added).
    public init(_ response: Response) {
        var bytes: [UInt8] = []
        response.appendLeadingHead(into: &bytes)
        headEnd = bytes.count
        HeadSerializer.appendEndOfHead(into: &bytes)
        bytes.append(contentsOf: response.sentBody)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        bytes.withUnsafeBytes { storage.copyMemory(from: $0) }
        self.storage = storage
        status = response.status
    }

    /// A canned error answer (`HTTP1.CannedError`: JSON body) with `headers` added (e.g. `Allow` for 405).
    public init(_ error: CannedError, headers: [Headers.Field] = []) {
        var bytes = error.head
        for field in headers where Response.isAllowed(field) {
            HeadSerializer.appendField(name: field.name.utf8, value: field.value.utf8, into: &bytes)
        }
        headEnd = bytes.count
        HeadSerializer.appendEndOfHead(into: &bytes)
        bytes.append(contentsOf: error.bodyBytes)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        bytes.withUnsafeBytes { storage.copyMemory(from: $0) }
        self.storage = storage
        status = error.status
    }

    /// `status` with a body of `contentType`.
    public convenience init(status: Int = 200, contentType: String, body: String, headers: [Headers.Field] = []) {
        self.init(
            Response(
                status: status, headers: [.init(name: "Content-Type", value: contentType)] + headers,
                body: Array(body.utf8)))
    }

    deinit { storage.deallocate() }

    /// Status line and fields, without the final CRLF.
    var head: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<headEnd]) }
    /// Final CRLF and body.
    var tail: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[headEnd...]) }
    /// Final CRLF only (HEAD).
    var endOfHead: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[headEnd..<(headEnd + 2)]) }

    /// The whole response as sent to a keep-alive HTTP/1.1 request without Date (tests).
    public var bytes: [UInt8] { Array(storage) }
}
