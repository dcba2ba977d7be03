// Why a TLS context could not be built or a TLS stream failed, with OpenSSL's own words for it.
import COpenSSL
import Sys

/// A TLS failure, typed by the phase it happened in.
public enum TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A context could not be built: an unreadable or invalid certificate, key or CA file, or a bad setting.
    case configuration(String)
    /// The peer's certificate was rejected (client side): the chain does not lead to a trusted CA, the host name
    /// does not match, it expired… The text is OpenSSL's verify reason, e.g. `hostname mismatch`.
    case certificateRejected(String)
    /// The handshake failed for another reason: an alert from the peer, no common protocol version or cipher,
    /// bytes that are not TLS.
    case handshakeFailed(String)
    /// A TLS record was invalid after the handshake, or the peer sent a fatal alert.
    case protocolError(String)
    /// The connection underneath failed (reset, refused…), or closed before the handshake was done.
    case connection(Errno?)

    public var description: String {
        switch self {
        case .configuration(let text): "TLS configuration: \(text)"
        case .certificateRejected(let text): "TLS peer certificate rejected: \(text)"
        case .handshakeFailed(let text): "TLS handshake failed: \(text)"
        case .protocolError(let text): "TLS protocol error: \(text)"
        case .connection(let errno): "TLS connection lost: \(errno.map { "\($0)" } ?? "closed by the peer")"
        }
    }
}

/// The oldest error on this thread's OpenSSL error queue, as text (the queue is emptied); `fallback` when empty.
func openSSLErrorText(_ fallback: String) -> String {
    var text: String?
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        if text == nil {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
    return text ?? fallback
}
