// The convenient request value handed to dynamic handlers: method, path, decoded query, headers, body, peer.
import HTTP1
import Sys

/// Request method, re-exported so handlers can name `.get` without importing HTTP1.
public typealias Method = HTTP1.Method

/// One request as a value. Built only for dynamic routes (it allocates); fixed routes never build one.
public struct Request: Sendable {
    /// The method; `.other` for methods without a case (read `methodName`).
    public let method: Method
    /// The method token as received.
    public let methodName: String
    /// The request-target up to `?`, not percent-decoded; for an absolute-form target only its path.
    public let path: String
    /// The raw query string after `?`, empty when there is none.
    public let rawQuery: String
    /// The query parameters, percent-decoded.
    public let query: Query
    /// The header fields in received order.
    public let headers: Headers
    /// The request body (Content-Length or de-chunked); empty when there was none.
    public let body: [UInt8]
    /// The peer's address.
    public let remoteAddress: SocketAddress?
    /// HTTP/1.0 or HTTP/1.1.
    public let version: Version

    /// A request for tests and other callers that build one by hand.
    public init(
        method: Method, methodName: String, path: String, rawQuery: String = "", headers: Headers = Headers([]),
        body: [UInt8] = [], remoteAddress: SocketAddress? = nil, version: Version = .http1_1
    ) {
        self.method = method
        self.methodName = methodName
        self.path = path
        self.rawQuery = rawQuery
        self.query = Query(parsing: Array(rawQuery.utf8))
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        self.version = version
    }

    init(parser: HeadParser, body: [UInt8], remoteAddress: SocketAddress?) {
        method = parser.method
        methodName = String(decoding: parser.methodBytes, as: UTF8.self)
        path = parser.path.withUnsafeBytes { String(decoding: Router.originPath($0), as: UTF8.self) }
        let queryBytes = parser.query ?? []
        rawQuery = String(decoding: queryBytes, as: UTF8.self)
        query = Query(parsing: queryBytes)
        var fields: [Headers.Field] = []
        fields.reserveCapacity(parser.fieldCount)
        for index in 0..<parser.fieldCount {
            fields.append(
                Headers.Field(
                    name: String(decoding: parser.name(at: index), as: UTF8.self),
                    value: String(decoding: parser.value(at: index), as: UTF8.self)))
        }
        headers = Headers(fields)
        self.body = body
        self.remoteAddress = remoteAddress
        version = parser.version
    }
}

/// Header fields of a request, looked up case-insensitively (RFC 9110 §5.1).
public struct Headers: Sendable, Sequence {
    /// One field line: name as received, value without surrounding whitespace.
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public let fields: [Field]

    public init(_ fields: [Field]) { self.fields = fields }

    /// The first value of `name` (any case), or nil.
    public subscript(_ name: String) -> String? {
        fields.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// Every value of `name` (any case), in received order.
    public func values(for name: String) -> [String] {
        fields.filter { asciiCaseInsensitiveEquals($0.name, name) }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }
}

/// Query parameters of `application/x-www-form-urlencoded` shape (`a=1&b=x%20y`), percent-decoded, `+` as space.
public struct Query: Sendable, Equatable {
    /// Parameters in order; a parameter without `=` has an empty value.
    public let items: [(name: String, value: String)]

    public static func == (a: Query, b: Query) -> Bool {
        a.items.count == b.items.count
            && zip(a.items, b.items).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// Parses the bytes after `?`. Malformed escapes (`%zz`, a trailing `%`) are kept literally; invalid UTF-8
    /// becomes U+FFFD.
    public init(parsing bytes: some Collection<UInt8>) {
        var items: [(name: String, value: String)] = []
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if let equals = pair.firstIndex(of: UInt8(ascii: "=")) {
                items.append(
                    (
                        Query.decode(pair[pair.startIndex..<equals]),
                        Query.decode(pair[pair.index(after: equals)...])
                    ))
            } else {
                items.append((Query.decode(pair), ""))
            }
        }
        self.items = items
    }

    /// The first value of `name`, or nil.
    public subscript(_ name: String) -> String? {
        items.first { $0.name == name }?.value
    }

    /// Every value of `name`, in order.
    public func values(for name: String) -> [String] {
        items.filter { $0.name == name }.map(\.value)
    }

    /// Percent-decoding (RFC 3986 §2.1) plus `+` → space (HTML form encoding).
    public static func decode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let first = bytes.index(after: index)
                if first != bytes.endIndex {
                    let second = bytes.index(after: first)
                    if second != bytes.endIndex, let high = hexValue(bytes[first]), let low = hexValue(bytes[second]) {
                        out.append(high << 4 | low)
                        index = bytes.index(after: second)
                        continue
                    }
                }
                out.append(byte)
            } else if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else {
                out.append(byte)
            }
            index = bytes.index(after: index)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}

/// ASCII case-insensitive equality, for field names.
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    var left = a.utf8.makeIterator()
    var right = b.utf8.makeIterator()
    while true {
        switch (left.next(), right.next()) {
        case (nil, nil): return true
        case (let x?, let y?):
            let lx = x >= 0x41 && x <= 0x5A ? x | 0x20 : x
            let ly = y >= 0x41 && y <= 0x5A ? y | 0x20 : y
            if lx != ly { return false }
        default: return false
        }
    }
}
