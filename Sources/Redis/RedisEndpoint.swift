// Where a Redis server is and how to log in: the endpoint value and its `redis://` URL form.

/// A Redis server, the database to select and the credentials to send first (AUTH, SELECT).
public struct RedisEndpoint: Equatable, Sendable, CustomStringConvertible {
    /// A host name, an IPv4 literal or an IPv6 literal (without brackets).
    public var host: String
    public var port: UInt16
    /// The logical database (SELECT), 0 by default.
    public var database: Int
    /// The password for AUTH; nil sends no AUTH.
    public var password: String?
    /// The ACL user for `AUTH username password` (Redis 6+); nil means the default user.
    public var username: String?

    public init(host: String, port: UInt16 = 6379, database: Int = 0, password: String? = nil, username: String? = nil)
    {
        self.host = host
        self.port = port
        self.database = database
        self.password = password
        self.username = username
    }

    /// `redis://host:port/db`, with the password shown as `***` so the text can be logged.
    public var description: String {
        var text = "redis://"
        if password != nil { text += "\(username ?? ""):***@" }
        text += host.contains(":") ? "[\(host)]" : host
        text += ":\(port)"
        if database != 0 { text += "/\(database)" }
        return text
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]` (the scheme of the IANA `redis` URI registration).
    ///
    /// User and password may be percent-encoded (RFC 3986 §2.1); an IPv6 host is written in brackets
    /// (RFC 3986 §3.2.2). Anything else (another scheme such as `rediss://`, a query, a bad port or database) throws
    /// an error that says what is wrong without repeating the password.
    public static func parse(url: String) throws(RedisConfigError) -> RedisEndpoint {
        let bytes = Array(url.utf8)
        let scheme = Array("redis://".utf8)
        guard bytes.count >= scheme.count, bytes[0..<scheme.count].map(lowercased).elementsEqual(scheme) else {
            if let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0 {
                throw .unsupportedScheme(String(decoding: bytes[..<colon], as: UTF8.self).lowercased())
            }
            throw .notARedisURL
        }
        var rest = bytes[scheme.count...]
        if rest.contains(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            throw .queryNotSupported
        }
        let slash = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
        var authority = rest[..<slash]
        rest = rest[slash...]

        var endpoint = RedisEndpoint(host: "")
        if let at = authority.lastIndex(of: UInt8(ascii: "@")) {
            let userInfo = authority[..<at]
            authority = authority[(at + 1)...]
            guard let colon = userInfo.firstIndex(of: UInt8(ascii: ":")) else { throw .credentialsWithoutColon }
            let user = try percentDecoded(userInfo[..<colon])
            let password = try percentDecoded(userInfo[(colon + 1)...])
            guard !password.isEmpty else { throw .emptyPassword }
            endpoint.username = user.isEmpty ? nil : user
            endpoint.password = password
        }

        var portText: ArraySlice<UInt8>?
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { throw .invalidHost }
            let literal = authority[(authority.startIndex + 1)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") }) else {
                throw .invalidHost
            }
            endpoint.host = String(decoding: literal, as: UTF8.self)
            let after = authority[(close + 1)...]
            if !after.isEmpty {
                guard after.first == UInt8(ascii: ":") else { throw .invalidHost }
                portText = after.dropFirst()
            }
        } else {
            var hostPart = authority
            if let colon = authority.firstIndex(of: UInt8(ascii: ":")) {
                hostPart = authority[..<colon]
                portText = authority[(colon + 1)...]
            }
            guard !hostPart.isEmpty else { throw .missingHost }
            guard hostPart.allSatisfy(isHostByte) else { throw .invalidHost }
            endpoint.host = String(decoding: hostPart, as: UTF8.self)
        }
        if let portText {
            guard let port = decimal(portText, limit: 65535), port > 0 else {
                throw .invalidPort(String(decoding: portText, as: UTF8.self))
            }
            endpoint.port = UInt16(port)
        }

        let path = rest.dropFirst()
        if !path.isEmpty {
            guard let database = decimal(path, limit: Int(Int32.max)) else {
                throw .invalidDatabase(String(decoding: path, as: UTF8.self))
            }
            endpoint.database = database
        }
        return endpoint
    }
}

/// Why a Redis URL was refused. The text never contains the password.
public enum RedisConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The URL has no scheme.
    case notARedisURL
    /// A scheme other than `redis` (`rediss` would need TLS, which this client does not speak).
    case unsupportedScheme(String)
    case missingHost
    case invalidHost
    case invalidPort(String)
    case invalidDatabase(String)
    /// `user@host`: the form is `user:password@host` or `:password@host`.
    case credentialsWithoutColon
    case emptyPassword
    /// A `%` not followed by two hex digits in the user or password.
    case invalidPercentEncoding
    case queryNotSupported

    public var description: String {
        switch self {
        case .notARedisURL: "not a Redis URL: expected redis://[[user]:password@]host[:port][/db]"
        case .unsupportedScheme("rediss"): "rediss:// (TLS) is not supported: use redis://"
        case .unsupportedScheme(let scheme): "unsupported scheme '\(scheme)://': use redis://"
        case .missingHost: "the Redis URL names no host"
        case .invalidHost: "the Redis URL's host is not a host name or an IP address (IPv6 goes in brackets)"
        case .invalidPort(let text): "invalid port '\(text)' in the Redis URL: expected 1...65535"
        case .invalidDatabase(let text): "invalid database '\(text)' in the Redis URL: expected a number after '/'"
        case .credentialsWithoutColon: "credentials in a Redis URL are written user:password@ or :password@"
        case .emptyPassword: "the Redis URL has an empty password"
        case .invalidPercentEncoding: "bad percent-encoding in the Redis URL's user or password"
        case .queryNotSupported: "query parameters and fragments are not supported in a Redis URL"
        }
    }
}

private func lowercased(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
}

private func isHexDigit(_ byte: UInt8) -> Bool { hexValue(byte) != nil }

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Letters, digits, `-`, `.` and `_` (underscores appear in Kubernetes and Compose service names).
private func isHostByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
        true
    default: false
    }
}

/// A decimal number of at most `limit`, digits only (no sign, no spaces).
private func decimal(_ bytes: ArraySlice<UInt8>, limit: Int) -> Int? {
    guard !bytes.isEmpty, bytes.count <= 10 else { return nil }
    var value = 0
    for byte in bytes {
        guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
        value = value * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return value <= limit ? value : nil
}

private func percentDecoded(_ bytes: ArraySlice<UInt8>) throws(RedisConfigError) -> String {
    var decoded: [UInt8] = []
    decoded.reserveCapacity(bytes.count)
    var index = bytes.startIndex
    while index < bytes.endIndex {
        if bytes[index] == UInt8(ascii: "%") {
            guard index + 3 <= bytes.endIndex,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            else { throw .invalidPercentEncoding }
            decoded.append(high << 4 | low)
            index += 3
        } else {
            decoded.append(bytes[index])
            index += 1
        }
    }
    return String(decoding: decoded, as: UTF8.self)
}
