// The opening handshake (RFC 6455 §4): the accept key, checks of a client's request and a server's response,
// the request and response heads, and the base64 they use (RFC 4648 §4).
import COpenSSL

/// Why an opening handshake was refused, with the HTTP status a server answers it with (RFC 6455 §4.2.1–§4.2.2:
/// 400 for a malformed request, 426 with `Sec-WebSocket-Version: 13` for a version this server does not speak).
/// On the client side `status` is the status the server answered.
public struct HandshakeError: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: Int
    public var reason: String

    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status) \(reason)" }
}

/// The opening handshake's arithmetic and checks (RFC 6455 §1.3, §4.1, §4.2).
public enum Handshake {
    /// The GUID every accept key is derived with (RFC 6455 §1.3).
    public static let guid = Array("258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8)
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2 step 5.4).
    public static func acceptKey<Key: Collection<UInt8>>(for key: Key) -> [UInt8] {
        let input = Array(key) + guid
        var digest = [UInt8](repeating: 0, count: 20)
        _ = input.withUnsafeBufferPointer { SHA1($0.baseAddress, $0.count, &digest) }
        return base64(digest)
    }

    /// Standard base64 with padding (RFC 4648 §4).
    public static func base64(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let word = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out.append(alphabet[Int(word >> 18 & 63)])
            out.append(alphabet[Int(word >> 12 & 63)])
            out.append(alphabet[Int(word >> 6 & 63)])
            out.append(alphabet[Int(word & 63)])
            index += 3
        }
        let left = bytes.count - index
        if left > 0 {
            let word = UInt32(bytes[index]) << 16 | (left == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out.append(alphabet[Int(word >> 18 & 63)])
            out.append(alphabet[Int(word >> 12 & 63)])
            out.append(left == 2 ? alphabet[Int(word >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return out
    }

    /// Decodes standard padded base64 (RFC 4648 §4); nil for a length that is not a multiple of 4, a byte outside
    /// the alphabet, or padding anywhere but at the end.
    public static func base64Decode<Text: Collection<UInt8>>(_ text: Text) -> [UInt8]? {
        let bytes = Array(text)
        guard bytes.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 4 * 3)
        var index = 0
        while index < bytes.count {
            // Padding: "xxx=" or "xx==" in the last group only; a "=" anywhere else fails `sextet`.
            var padding = 0
            if index + 4 == bytes.count && bytes[index + 3] == UInt8(ascii: "=") {
                padding = bytes[index + 2] == UInt8(ascii: "=") ? 2 : 1
            }
            var word: UInt32 = 0
            for offset in 0..<(4 - padding) {
                guard let value = sextet(bytes[index + offset]) else { return nil }
                word = word << 6 | UInt32(value)
            }
            word <<= UInt32(6 * padding)
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            if padding < 2 { out.append(UInt8(truncatingIfNeeded: word >> 8)) }
            if padding < 1 { out.append(UInt8(truncatingIfNeeded: word)) }
            index += 4
        }
        return out
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }

    /// Checks a client's opening handshake (RFC 6455 §4.2.1): method GET, HTTP/1.1 (or later), `Upgrade` listing
    /// the token "websocket" and `Connection` listing "upgrade" (comma-separated, case-insensitive),
    /// `Sec-WebSocket-Version` exactly "13", and a `Sec-WebSocket-Key` that is base64 of 16 bytes. Header values
    /// are taken with surrounding spaces and tabs ignored.
    ///
    /// Returns the `Sec-WebSocket-Accept` value for the key, or the refusal: 426 (answer it with
    /// `Sec-WebSocket-Version: 13`, see `errorResponse`) for a version other than 13, 400 for anything else,
    /// a missing version included.
    public static func validateRequest(
        method: String, isHTTP11: Bool, upgrade: String?, connection: String?, key: String?, version: String?
    ) -> Result<[UInt8], HandshakeError> {
        guard method == "GET" else { return .failure(HandshakeError(status: 400, reason: "method must be GET")) }
        guard isHTTP11 else { return .failure(HandshakeError(status: 400, reason: "HTTP/1.1 required")) }
        guard let upgrade, listsToken(upgrade, "websocket") else {
            return .failure(HandshakeError(status: 400, reason: "Upgrade: websocket required"))
        }
        guard let connection, listsToken(connection, "upgrade") else {
            return .failure(HandshakeError(status: 400, reason: "Connection: Upgrade required"))
        }
        guard let version else {
            return .failure(HandshakeError(status: 400, reason: "Sec-WebSocket-Version required"))
        }
        guard trimmed(version).elementsEqual("13".utf8) else {
            return .failure(HandshakeError(status: 426, reason: "Sec-WebSocket-Version 13 required"))
        }
        guard let key else { return .failure(HandshakeError(status: 400, reason: "Sec-WebSocket-Key required")) }
        let keyBytes = trimmed(key)
        guard let nonce = base64Decode(keyBytes), nonce.count == 16 else {
            return .failure(HandshakeError(status: 400, reason: "Sec-WebSocket-Key must be base64 of 16 bytes"))
        }
        return .success(acceptKey(for: keyBytes))
    }

    /// Checks a server's answer to `clientRequest` (RFC 6455 §4.1, the client's steps 1–4): status 101, `Upgrade`
    /// listing "websocket", `Connection` listing "upgrade", and `Sec-WebSocket-Accept` equal to the accept key of
    /// the `key` that was sent.
    public static func validateResponse(
        status: Int, upgrade: String?, connection: String?, accept: String?, key: String
    ) -> Result<Void, HandshakeError> {
        guard status == 101 else { return .failure(HandshakeError(status: status, reason: "status is not 101")) }
        guard let upgrade, listsToken(upgrade, "websocket") else {
            return .failure(HandshakeError(status: status, reason: "Upgrade: websocket missing"))
        }
        guard let connection, listsToken(connection, "upgrade") else {
            return .failure(HandshakeError(status: status, reason: "Connection: Upgrade missing"))
        }
        guard let accept, trimmed(accept).elementsEqual(acceptKey(for: key.utf8)) else {
            return .failure(HandshakeError(status: status, reason: "Sec-WebSocket-Accept does not match the key"))
        }
        return .success(())
    }

    /// A client's opening handshake (RFC 6455 §4.1): `GET path HTTP/1.1` with `Host`, `Upgrade: websocket`,
    /// `Connection: Upgrade`, `Sec-WebSocket-Key: key` (base64 of 16 random bytes), `Sec-WebSocket-Version: 13`,
    /// then `extraHeaders` in order, then the blank line.
    public static func clientRequest(
        host: String, path: String, key: String, extraHeaders: [(String, String)] = []
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + host.utf8.count + path.utf8.count)
        out += "GET ".utf8
        out += path.utf8
        out += " HTTP/1.1\r\nHost: ".utf8
        out += host.utf8
        out += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ".utf8
        out += key.utf8
        out += "\r\nSec-WebSocket-Version: 13\r\n".utf8
        appendHeaders(extraHeaders, to: &out)
        out += "\r\n".utf8
        return out
    }

    /// A server's acceptance (RFC 6455 §4.2.2 step 5): `101 Switching Protocols` with `Upgrade`, `Connection`
    /// and `Sec-WebSocket-Accept: accept` (from `validateRequest`), then `extraHeaders` in order.
    public static func acceptResponse(accept: [UInt8], extraHeaders: [(String, String)] = []) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(130)
        out += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n".utf8
        out += "Sec-WebSocket-Accept: ".utf8
        out += accept
        out += "\r\n".utf8
        appendHeaders(extraHeaders, to: &out)
        out += "\r\n".utf8
        return out
    }

    /// A server's refusal of `error` (RFC 6455 §4.2.2): its status with an empty body and `Connection: close`,
    /// plus `Sec-WebSocket-Version: 13` for a 426.
    public static func errorResponse(_ error: HandshakeError) -> [UInt8] {
        var out: [UInt8] = []
        out += "HTTP/1.1 ".utf8
        out += String(error.status).utf8
        switch error.status {
        case 400: out += " Bad Request\r\n".utf8
        case 426: out += " Upgrade Required\r\nSec-WebSocket-Version: 13\r\n".utf8
        default: out += " Error\r\n".utf8
        }
        out += "Content-Length: 0\r\nConnection: close\r\n\r\n".utf8
        return out
    }

    private static func appendHeaders(_ headers: [(String, String)], to out: inout [UInt8]) {
        for (name, value) in headers {
            out += name.utf8
            out += ": ".utf8
            out += value.utf8
            out += "\r\n".utf8
        }
    }

    /// Whether a comma-separated header value lists `token` (compared without regard to ASCII case).
    static func listsToken(_ value: String, _ token: StaticString) -> Bool {
        let expected = UnsafeRawBufferPointer(start: token.utf8Start, count: token.utf8CodeUnitCount)
        var found = false
        let bytes = Array(value.utf8)
        var start = 0
        while start <= bytes.count && !found {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: ",") { end += 1 }
            let element = trimmed(bytes[start..<end])
            found = element.count == expected.count && zip(element, expected).allSatisfy { lowercased($0) == $1 }
            start = end + 1
        }
        return found
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    private static func trimmed(_ value: String) -> ArraySlice<UInt8> { trimmed(Array(value.utf8)[...]) }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, isSpace(first) { slice = slice.dropFirst() }
        while let last = slice.last, isSpace(last) { slice = slice.dropLast() }
        return slice
    }
}
