// A TLS configuration built once (OpenSSL SSL_CTX): the client side with its trust store, or the server side
// with its certificate and key; TLS 1.2 at least, ALPN.
import COpenSSL
import Sys

/// An OpenSSL `SSL_CTX` for one side: built once, then shared by every stream made from it.
///
/// `@unchecked Sendable`: after `init` returns the context is never changed again, and OpenSSL allows `SSL_new`
/// on one `SSL_CTX` from several threads at once (the context's shared state, such as the session cache and the
/// reference count, is locked inside OpenSSL 3).
public final class TLSContext: @unchecked Sendable {
    /// Which end of a handshake streams made from this context play.
    public enum Role: Sendable, Equatable {
        case client
        case server
    }

    let context: OpaquePointer
    public let role: Role
    /// ALPN protocols offered (client) or accepted (server), in preference order (RFC 7301).
    public let applicationProtocols: [String]
    /// `applicationProtocols` in the wire form (each name preceded by its length byte) and a final zero byte,
    /// allocated for the context's lifetime: the server's selection callback reads it from any thread.
    private let protocolList: UnsafeMutableBufferPointer<UInt8>
    /// The wire-form length, without the final zero.
    private var protocolListLength: Int { protocolList.count - 1 }

    /// A client context: peers are verified against `caFile` (PEM, one or more CA certificates) or, when nil,
    /// the system's trust store (OpenSSL's default paths); TLS 1.2 or newer; ALPN offers `applicationProtocols`.
    public static func client(
        caFile: String? = nil, applicationProtocols: [String] = ["http/1.1"]
    ) throws(TLSError)
        -> TLSContext
    {
        let context = try TLSContext(role: .client, applicationProtocols: applicationProtocols)
        SSL_CTX_set_verify(context.context, SSL_VERIFY_PEER, nil)
        if let caFile {
            guard SSL_CTX_load_verify_locations(context.context, caFile, nil) == 1 else {
                throw .configuration("cannot load CA file \(caFile): \(openSSLErrorText("unreadable or not PEM"))")
            }
        } else if SSL_CTX_set_default_verify_paths(context.context) != 1 {
            throw .configuration("cannot load the system trust store: \(openSSLErrorText("unknown error"))")
        }
        if context.protocolListLength > 0 {
            // Returns 0 on success (unlike most of OpenSSL).
            guard
                SSL_CTX_set_alpn_protos(
                    context.context, context.protocolList.baseAddress, UInt32(context.protocolListLength)) == 0
            else { throw .configuration("cannot set ALPN protocols: \(openSSLErrorText("unknown error"))") }
        }
        return context
    }

    /// A server context presenting `certificateFile` (PEM: the certificate, then any intermediates) with the key
    /// in `keyFile` (PEM); TLS 1.2 or newer; ALPN picks the first of the client's protocols found in
    /// `applicationProtocols` and proceeds without ALPN when none is (RFC 7301 §3.2 allows either).
    public static func server(
        certificateFile: String, keyFile: String, applicationProtocols: [String] = ["http/1.1"]
    ) throws(TLSError) -> TLSContext {
        let context = try TLSContext(role: .server, applicationProtocols: applicationProtocols)
        guard SSL_CTX_use_certificate_chain_file(context.context, certificateFile) == 1 else {
            throw .configuration("cannot load certificate \(certificateFile): \(openSSLErrorText("not PEM"))")
        }
        guard SSL_CTX_use_PrivateKey_file(context.context, keyFile, SSL_FILETYPE_PEM) == 1 else {
            throw .configuration("cannot load key \(keyFile): \(openSSLErrorText("not PEM"))")
        }
        guard SSL_CTX_check_private_key(context.context) == 1 else {
            throw .configuration("key \(keyFile) does not match certificate \(certificateFile)")
        }
        if context.protocolListLength > 0 {
            SSL_CTX_set_alpn_select_cb(context.context, selectApplicationProtocol, context.protocolList.baseAddress)
        }
        return context
    }

    private init(role: Role, applicationProtocols: [String]) throws(TLSError) {
        var wire: [UInt8] = []
        for name in applicationProtocols {
            let bytes = Array(name.utf8)
            guard !bytes.isEmpty, bytes.count < 256 else {
                throw .configuration("ALPN protocol name must be 1 to 255 bytes: \"\(name)\"")
            }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        wire.append(0)
        ERR_clear_error()
        guard let context = SSL_CTX_new(role == .client ? TLS_client_method() : TLS_server_method()) else {
            throw .configuration("SSL_CTX_new: \(openSSLErrorText("out of memory"))")
        }
        self.context = context
        self.role = role
        self.applicationProtocols = applicationProtocols
        protocolList = .allocate(capacity: wire.count)
        _ = protocolList.initialize(from: wire)
        guard rtc_SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1 else {
            throw .configuration("cannot require TLS 1.2: \(openSSLErrorText("unknown error"))")
        }
        // RELEASE_BUFFERS: an idle session gives its record buffers back (many idle TLS connections stay small).
        // ACCEPT_MOVING_WRITE_BUFFER: a retried SSL_write may pass the bytes from another address.
        _ = rtc_SSL_CTX_set_mode(context, Int(SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
    }

    deinit {
        SSL_CTX_free(context)
        protocolList.deallocate()
    }
}

/// The server's ALPN choice (SSL_CTX_set_alpn_select_cb(3)): `argument` is the context's wire-form list, which lives
/// as long as the context and is never written after it was built.
private func selectApplicationProtocol(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let out, let outLength, let offered, let argument else { return SSL_TLSEXT_ERR_NOACK }
    let ours = argument.assumingMemoryBound(to: UInt8.self)
    // Names are never empty, so the zero byte after the list ends it.
    var length = 0
    while ours[length] != 0 { length += 1 + Int(ours[length]) }
    var selected: UnsafeMutablePointer<UInt8>?
    var selectedLength: UInt8 = 0
    let result = SSL_select_next_proto(
        &selected, &selectedLength, ours, UInt32(length), offered, offeredLength)
    guard result == OPENSSL_NPN_NEGOTIATED, let selected else { return SSL_TLSEXT_ERR_NOACK }
    out.pointee = UnsafePointer(selected)
    outLength.pointee = selectedLength
    return SSL_TLSEXT_ERR_OK
}
