// One TLS session over one `Connection`: ciphertext through OpenSSL memory BIOs, plaintext to and from a delegate.
import COpenSSL
import EventLoop
import Sys

/// Callbacks of a `TLSStream`, all on its loop's thread.
public protocol TLSStreamDelegate: AnyObject {
    /// The handshake finished: the peer is verified (client side) and `applicationProtocol` is known. Plaintext
    /// written before this was held and is sent right after this call.
    func handshakeCompleted(_ stream: TLSStream)
    /// Plaintext from the peer; `bytes` points into the loop's shared read buffer and is valid only during this call.
    func received(_ stream: TLSStream, _ bytes: UnsafeRawBufferPointer)
    /// The peer ended its side: with a close_notify alert (`receivedCloseNotify`), or by closing the TCP
    /// connection without one (a truncation, RFC 8446 §6.1). Default: `stream.close()`.
    func readEOF(_ stream: TLSStream)
    /// Unsent ciphertext crossed the loop's high-water mark (`false`), or was all sent again (`true`).
    func writabilityChanged(_ stream: TLSStream, writable: Bool)
    /// The stream closed; `error` is nil after a local `close()`, a peer's orderly close, or a loop stop. Called
    /// exactly once.
    func closed(_ stream: TLSStream, error: TLSError?)
}

extension TLSStreamDelegate {
    public func readEOF(_ stream: TLSStream) { stream.close() }
    public func writabilityChanged(_ stream: TLSStream, writable: Bool) {}
}

/// A TLS session (client or server side, as its context says) between a `Connection` and a delegate.
///
/// OpenSSL never touches the socket: bytes the connection reads are written into an input memory BIO, and what
/// OpenSSL produces (handshake messages, records, alerts) is taken from an output memory BIO and handed to the
/// connection's `write`, which keeps only what the socket did not take. Plaintext is decrypted into the loop's
/// shared read buffer, so an idle stream holds no buffer of its own beyond OpenSSL's.
///
/// Use: make the stream, make the `Connection` (or take a connector's) with the stream as its handler, then call
/// `start(on:)` before the loop runs again. The client side sends its hello at once; the server side waits.
public final class TLSStream: ConnectionHandler, TimerHandler {
    public let context: TLSContext
    /// The connection underneath, once started.
    public private(set) var connection: Connection?
    private var delegate: (any TLSStreamDelegate)?
    // Invariant: `ssl` owns both BIOs (SSL_set_bio) and is freed in deinit, never before.
    private let ssl: OpaquePointer
    private let input: OpaquePointer
    private let output: OpaquePointer
    private var state: State = .idle
    /// Plaintext written before the handshake finished; nil once sent.
    private var heldPlaintext: [UInt8]?
    /// What went wrong first; reported by `closed`.
    private var failure: TLSError?
    /// Whether the delegate paused reading.
    private var readingPaused = false
    /// Whether a delivery of already decrypted or buffered records is scheduled (see `resumeReading`).
    private var deliveryScheduled = false
    /// The connection reached its end while records were still waiting for a paused delegate.
    private var eofPending = false
    /// The peer closed its side of the TCP connection.
    private var peerEnded = false
    /// Whether the peer sent close_notify (an orderly end, not a truncation).
    public private(set) var receivedCloseNotify = false
    /// Free for the owner.
    public var tag: UInt32 = 0
    /// How long `close()` waits for the peer to close its side before closing anyway, counted from the call (so
    /// it also bounds sending what is still unsent: raise it for a large last write to a slow reader).
    public var closeTimeout: Duration = .seconds(5)
    private var closeTimer: TimerID?

    enum State {
        case idle
        case handshaking
        case established
        /// close() or a failure: waiting for the connection to flush and close.
        case closing
        case closed
    }

    /// Plaintext is written to OpenSSL in pieces of at most this size, each flushed to the connection before the
    /// next, so the output BIO never holds much more than one piece.
    static let writePiece = 64 * 1024

    /// A stream for one connection. `serverName` (client side) is sent as SNI when it is a name (RFC 6066 §3
    /// forbids IP literals there) and is what the peer's certificate must match (a DNS name or an IP address
    /// SAN, checked by OpenSSL's `SSL_set1_host`); nil checks the chain only. Ignored on the server side.
    public init(context: TLSContext, serverName: String? = nil, delegate: any TLSStreamDelegate) throws(TLSError) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.context) else {
            throw .configuration("SSL_new: \(openSSLErrorText("out of memory"))")
        }
        guard let input = BIO_new(BIO_s_mem()), let output = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .configuration("BIO_new: out of memory")
        }
        SSL_set_bio(ssl, input, output)
        self.ssl = ssl
        self.input = input
        self.output = output
        self.context = context
        self.delegate = delegate
        switch context.role {
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName {
                if SocketAddress(host: serverName, port: 0) == nil {
                    guard rtc_SSL_set_tlsext_host_name(ssl, serverName) == 1 else {
                        throw .configuration("invalid server name \(serverName)")
                    }
                }
                guard SSL_set1_host(ssl, serverName) == 1 else {
                    throw .configuration("invalid host name to verify: \(serverName)")
                }
            }
        case .server:
            SSL_set_accept_state(ssl)
        }
    }

    deinit { SSL_free(ssl) }

    /// Begins the handshake on `connection`, whose handler must be this stream.
    public func start(on connection: Connection) {
        guard case .idle = state else { return }
        self.connection = connection
        state = .handshaking
        if context.role == .client { handshake() }
    }

    /// Hands the stream to another delegate.
    public func setDelegate(_ delegate: any TLSStreamDelegate) {
        guard state != .closed else { return }
        self.delegate = delegate
    }

    /// Whether the handshake finished and the stream is not closing.
    public var isEstablished: Bool { state == .established }

    /// The protocol ALPN settled on (e.g. `http/1.1`), nil before the handshake or without ALPN.
    public var applicationProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The negotiated protocol version, e.g. `TLSv1.3`.
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// Ciphertext accepted by the connection but not yet sent.
    public var pendingByteCount: Int { connection?.pendingByteCount ?? 0 }

    // MARK: Flow control

    /// Stops delivering plaintext: the connection stops reading, and records already received stay in OpenSSL
    /// until `resumeReading`.
    public func pauseReading() {
        readingPaused = true
        connection?.pauseReading()
    }

    /// Delivers again: records buffered meanwhile are decrypted on the next loop iteration (not inside this call,
    /// whose caller may still hold bytes of the loop's read buffer), and the connection reads again.
    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        guard let connection else { return }
        connection.resumeReading()
        guard state == .established, !deliveryScheduled,
            eofPending || SSL_pending(ssl) > 0 || rtc_BIO_get_mem_pending(input) > 0
        else { return }
        deliveryScheduled = true
        connection.loop.schedule(after: .zero) { [weak self] in
            guard let self else { return }
            self.deliveryScheduled = false
            self.deliverBuffered()
        }
    }

    /// Delivers the records buffered while paused, then the end of the stream if it came meanwhile.
    private func deliverBuffered() {
        guard state == .established, !readingPaused else { return }
        decrypt()
        guard eofPending, state == .established, !readingPaused else { return }
        eofPending = false
        endOfStream()
    }

    // MARK: Writing

    /// Encrypts and sends `bytes`. Before the handshake finished they are held and sent right after it; after
    /// `close()` or a failure they are dropped.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case .idle, .handshaking:
            heldPlaintext = heldPlaintext ?? []
            heldPlaintext!.append(contentsOf: bytes)
        case .established:
            encrypt(bytes)
        case .closing, .closed:
            return
        }
    }

    /// `write` for an array.
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    private func encrypt(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count, state == .established {
            let count = min(Self.writePiece, bytes.count - offset)
            ERR_clear_error()
            let written = SSL_write(ssl, bytes.baseAddress! + offset, Int32(count))
            guard written > 0 else {
                // A memory BIO takes everything, so only a broken session refuses.
                fail(.protocolError(openSSLErrorText("SSL_write failed")))
                return
            }
            offset += Int(written)
            flushOutput()
        }
    }

    /// Hands whatever OpenSSL produced to the connection (which keeps what the socket does not take).
    private func flushOutput() {
        var data: UnsafeMutablePointer<CChar>?
        let count = rtc_BIO_get_mem_data(output, &data)
        guard count > 0, let data else { return }
        connection?.write(UnsafeRawBufferPointer(start: data, count: count))
        _ = rtc_BIO_reset(output)
    }

    // MARK: Closing

    /// Sends close_notify after everything written, then waits (at most `closeTimeout`) for the peer to close its
    /// side before closing the connection; what the peer sends meanwhile is read and dropped. Closing at once with
    /// unread bytes (a TLS 1.3 session ticket, say) would make the kernel reset the connection, and the peer could
    /// lose the last data sent (RFC 9293 §3.6). `closed` follows.
    public func close() {
        switch state {
        case .idle:
            state = .closed
            let delegate = self.delegate
            self.delegate = nil
            delegate?.closed(self, error: nil)
        case .handshaking, .established:
            state = .closing
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
            flushOutput()
            guard let connection else { return }
            if peerEnded {
                // Nothing more can come: close once our close_notify is sent.
                connection.closeWhenFlushed()
                return
            }
            connection.shutdownWrite()
            if readingPaused {
                readingPaused = false
                connection.resumeReading()
            }
            closeTimer = connection.loop.schedule(after: closeTimeout, handler: self)
        case .closing, .closed:
            return
        }
    }

    public func timerFired(tag: UInt64) {
        closeTimer = nil
        connection?.close()
    }

    /// Closes the connection at once, dropping unsent bytes and sending no alert.
    public func abort() {
        guard state != .closed else { return }
        state = .closing
        connection?.close()
    }

    private func fail(_ error: TLSError) {
        if failure == nil { failure = error }
        state = .closing
        // The alert OpenSSL queued (if any) tells the peer why.
        flushOutput()
        connection?.closeWhenFlushed()
    }

    // MARK: Reading

    private func handshake() {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result != 1 {
            let code = SSL_get_error(ssl, result)
            if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE {
                flushOutput()
                return
            }
            fail(handshakeError(code))
            return
        }
        state = .established
        flushOutput()
        delegate?.handshakeCompleted(self)
        guard state == .established else { return }
        if let held = heldPlaintext {
            heldPlaintext = nil
            held.withUnsafeBytes { encrypt($0) }
        }
    }

    private func handshakeError(_ code: Int32) -> TLSError {
        if context.role == .client {
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                ERR_clear_error()
                return .certificateRejected(String(cString: X509_verify_cert_error_string(verify)))
            }
        }
        return .handshakeFailed(openSSLErrorText("SSL_do_handshake error \(code)"))
    }

    /// Decrypts every whole record buffered, into the loop's read buffer, until reading is paused. Called only
    /// where nobody holds bytes of that buffer: from `received`, after the connection's bytes (which were in it)
    /// were copied into the input BIO, and from the delivery `resumeReading` schedules.
    private func decrypt() {
        guard let connection, !receivedCloseNotify else { return }
        let buffer = connection.loop.readBuffer
        while state == .established && !readingPaused {
            ERR_clear_error()
            let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
            if count > 0 {
                delegate?.received(self, UnsafeRawBufferPointer(rebasing: buffer[0..<Int(count)]))
                continue
            }
            let code = SSL_get_error(ssl, count)
            // Post-handshake messages (TLS 1.3 tickets, key updates) may have produced replies.
            flushOutput()
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return
            case SSL_ERROR_ZERO_RETURN:
                receivedCloseNotify = true
                delegate?.readEOF(self)
                return
            default:
                fail(.protocolError(openSSLErrorText("SSL_read error \(code)")))
                return
            }
        }
    }

    // MARK: ConnectionHandler

    public func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        if case .idle = state { start(on: connection) }
        guard state == .handshaking || state == .established else { return }
        var offset = 0
        while offset < bytes.count {
            let written = BIO_write(input, bytes.baseAddress! + offset, Int32(clamping: bytes.count - offset))
            guard written > 0 else {
                fail(.protocolError("cannot buffer received bytes"))
                return
            }
            offset += Int(written)
        }
        if state == .handshaking { handshake() }
        if state == .established { decrypt() }
    }

    public func readEOF(_ connection: Connection) {
        peerEnded = true
        switch state {
        case .idle, .handshaking:
            fail(.connection(nil))
        case .established:
            // Records that came before the end go first (nobody holds the read buffer during this callback).
            decrypt()
            guard state == .established else { return }
            if readingPaused {
                eofPending = true
            } else {
                endOfStream()
            }
        case .closing:
            // Our close_notify (and anything before it) still goes out first.
            connection.closeWhenFlushed()
        case .closed:
            break
        }
    }

    /// The peer's TCP end. After its close_notify the delegate was already told (and decides when to close: it
    /// may still write); a bare TCP end is a truncation, told now.
    private func endOfStream() {
        guard !receivedCloseNotify else { return }
        delegate?.readEOF(self)
    }

    public func writabilityChanged(_ connection: Connection, writable: Bool) {
        delegate?.writabilityChanged(self, writable: writable)
    }

    public func closed(_ connection: Connection, error: Errno?) {
        guard state != .closed else { return }
        state = .closed
        if let closeTimer { connection.loop.cancel(closeTimer) }
        closeTimer = nil
        if failure == nil, let error { failure = .connection(error) }
        let delegate = self.delegate
        self.delegate = nil
        delegate?.closed(self, error: failure)
    }
}
