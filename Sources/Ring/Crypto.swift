// HMAC-SHA256 through OpenSSL, hex encoding, and constant-time comparison of MACs.
import COpenSSL

/// HMAC with SHA-256 (RFC 2104, FIPS 180-4), computed by OpenSSL's one-shot `HMAC()`.
public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key`.
    public static func mac(key: [UInt8], message: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        // OpenSSL wants non-null pointers even for empty inputs; the lengths passed stay the real ones.
        let keyBytes = key.isEmpty ? [0] : key
        let placeholder: [UInt8] = [0]
        keyBytes.withUnsafeBytes { keyPointer in
            placeholder.withUnsafeBytes { empty in
                let data = message.count == 0 ? empty : message
                out.withUnsafeMutableBufferPointer { digest in
                    let result = HMAC(
                        EVP_sha256(), keyPointer.baseAddress, Int32(key.count),
                        data.baseAddress!.assumingMemoryBound(to: UInt8.self), message.count, digest.baseAddress,
                        &length)
                    precondition(result != nil && length == 32, "HMAC-SHA256 failed in OpenSSL")
                }
            }
        }
        return out
    }

    /// The 32-byte MAC of `message` under `key`.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { mac(key: key, message: $0) }
    }
}

/// Base16 (RFC 4648 §8): lowercase on output, either case on input.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes, or nil when `text` has an odd length or a character that is not a hex digit.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = value(of: utf8[index]), let low = value(of: utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    /// Whether `text` is exactly `count` lowercase hex digits.
    public static func isLowercase(_ text: String, count: Int) -> Bool {
        var seen = 0
        for byte in text.utf8 {
            guard
                (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
            else { return false }
            seen += 1
        }
        return seen == count
    }

    private static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths (a MAC check must not reveal how
/// many leading bytes matched). Lengths are not secret: different lengths return false at once.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}
