// Connect tokens: an expiry and an HMAC-SHA256 bound to one client id (SYSTEM §4).
import Ring

/// The verdict on a connect token.
public enum AuthResult: Equatable, Sendable {
    case valid
    /// Not `<digits>.<64 lowercase hex digits>`.
    case malformed
    /// Well formed, but the MAC is not the one for this client id and expiry under the secret.
    case badSignature
    /// Correctly signed, and `now` is past the expiry.
    case expired
}

/// Tokens `"<expiresAt>.<mac>"`: `expiresAt` is Unix seconds written in decimal without sign or leading zeros,
/// `mac` the lowercase hex HMAC-SHA256 under the secret of the UTF-8 of `clientId + "." + expiresAt`. A token is
/// valid until and including the second `expiresAt`.
public enum AuthToken {
    public static func make(clientId: String, expiresAt: Int64, secret: [UInt8]) -> String {
        String(expiresAt) + "." + Hex.encode(mac(clientId: clientId, expiry: String(expiresAt), secret: secret))
    }

    /// Checks the form, then the MAC (in constant time), then the expiry.
    public static func verify(_ token: String, clientId: String, now: Int64, secret: [UInt8]) -> AuthResult {
        let utf8 = Array(token.utf8)
        guard let dot = utf8.firstIndex(of: UInt8(ascii: ".")) else { return .malformed }
        let expiryDigits = utf8[..<dot]
        let macText = String(decoding: utf8[(dot + 1)...], as: UTF8.self)
        guard !expiryDigits.isEmpty, expiryDigits.count <= 19,
            expiryDigits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            expiryDigits.first != UInt8(ascii: "0") || expiryDigits.count == 1
        else { return .malformed }
        let expiryText = String(decoding: expiryDigits, as: UTF8.self)
        guard let expiresAt = Int64(expiryText), Hex.isLowercase(macText, count: 64), let given = Hex.decode(macText)
        else { return .malformed }
        guard constantTimeEqual(given, mac(clientId: clientId, expiry: expiryText, secret: secret)) else {
            return .badSignature
        }
        return now > expiresAt ? .expired : .valid
    }

    private static func mac(clientId: String, expiry: String, secret: [UInt8]) -> [UInt8] {
        var message: [UInt8] = Array(clientId.utf8)
        message.append(UInt8(ascii: "."))
        message.append(contentsOf: expiry.utf8)
        return HMACSHA256.mac(key: secret, message: message)
    }
}
