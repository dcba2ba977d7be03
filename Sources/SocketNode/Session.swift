// One client's WebSocket session on the node: frames in, frames out, keep-alive, closing.
import EventLoop
import Sys
import WebSocket

/// A WebSocket connection after the handshake (RFC 6455 §5–§7), owned by its node's loop.
///
/// Between messages it holds no buffer: frames are read from the loop's buffer and unmasked into the node's scratch
/// buffer; only a message that spans reads is gathered by the reader, and only unsent bytes stay with the
/// connection. One timer per session carries whichever deadline comes first (Ping, idle close, close handshake).
final class Session: ConnectionHandler, TimerHandler, Slotted {
    enum State: UInt8 {
        case open
        /// Our Close went out: waiting for the peer's Close (or the deadline) before the socket closes.
        case closing
        case closed
    }

    // Invariant: the node outlives its sessions (they close when its loop stops), so no reference counting.
    unowned(unsafe) let node: Node
    let clientID: String
    private(set) var connection: Connection?
    private var reader: MessageReader
    var cursor: InboxCursor
    private(set) var state = State.open
    /// Monotonic ns of the last byte read from / written to the client.
    private var lastRead: UInt64
    private var lastWrite: UInt64
    /// A Ping went out since the client last sent anything (a quiet reader is pinged once per silence, so that a
    /// client that only receives still has something to answer before the idle close).
    private var pingedSinceRead = false
    private var closeDeadline: UInt64 = 0
    private var timer: TimerID?
    private var timerDeadline: UInt64 = 0
    /// Messages of this client still waiting for the store's answer; reading pauses past a bound.
    var appendsInFlight = 0
    /// A store read for this session is in flight or scheduled.
    var fetchScheduled = false
    /// The replay of the inbox at connect has completed.
    var replayed = false
    /// Index in the node's session list (swap-remove).
    var slot = -1

    init(node: Node, clientID: String, connection: Connection, resumeOffset: UInt64) {
        self.node = node
        self.clientID = clientID
        self.connection = connection
        reader = MessageReader(role: .server, maxMessageBytes: node.configuration.maxMessageBytes)
        cursor = InboxCursor(after: resumeOffset)
        lastRead = node.loop.now
        lastWrite = node.loop.now
    }

    var isOpen: Bool { state == .open }

    // MARK: Reading

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard state != .closed else { return }
        lastRead = node.loop.now
        pingedSinceRead = false
        let failure = reader.feed(bytes, scratch: node.scratch) { event in
            self.handle(event)
        }
        if let failure { close(code: failure, reason: "protocol violation") }
    }

    private func handle(_ event: FrameEvent) {
        switch event {
        case .text(let payload):
            guard state == .open else { return }
            node.clientFrame(self, payload)
        case .binary:
            guard state == .open else { return }
            close(code: .unsupportedData, reason: "text frames only")
        case .ping(let payload):
            guard state == .open else { return }
            sendFrame(opcode: Opcode.pong, payload)
        case .pong:
            break
        case .close(let code, _):
            if state == .open {
                // Echo the code (RFC 6455 §5.5.1); a Close without a code is answered with 1000.
                let payload = FrameWriter.closePayload(code: code ?? .normal, reason: "")
                payload.withUnsafeBytes { sendFrame(opcode: Opcode.close, $0) }
            }
            state = .closing
            connection?.closeWhenFlushed()
        }
    }

    func readEOF(_ connection: Connection) {
        connection.close()
    }

    func writabilityChanged(_ connection: Connection, writable: Bool) {}

    func closed(_ connection: Connection, error: Errno?) {
        state = .closed
        if let timer { node.loop.cancel(timer) }
        timer = nil
        self.connection = nil
        node.removed(self)
    }

    // MARK: Writing

    /// Sends one text frame (a JSON message) in one write: header and payload through writev.
    func sendText(_ payload: [UInt8]) {
        payload.withUnsafeBytes { sendFrame(opcode: Opcode.text, $0) }
    }

    func sendFrame(opcode: UInt8, _ payload: UnsafeRawBufferPointer) {
        guard let connection, state != .closed else { return }
        withUnsafeTemporaryAllocation(byteCount: 16, alignment: 8) { header in
            let size = FrameWriter.writeHeader(
                into: header.baseAddress!, fin: true, opcode: opcode, length: payload.count, maskKey: nil)
            connection.write(UnsafeRawBufferPointer(rebasing: header[0..<size]), payload)
        }
        lastWrite = node.loop.now
        if connection.pendingByteCount > node.configuration.maxPendingBytes {
            // A client that does not read: its messages stay in the store for a resume.
            node.metrics.drops(.slowConsumer)
            connection.close()
        }
    }

    /// Starts the closing handshake: a Close frame, then the socket closes once the peer answers, or after a
    /// deadline. `frame` (a reconnect notice) goes out just before the Close.
    func close(code: CloseCode, reason: String, after frame: [UInt8]? = nil) {
        guard state == .open, connection != nil else { return }
        if let frame { sendText(frame) }
        let payload = FrameWriter.closePayload(code: code, reason: reason)
        payload.withUnsafeBytes { sendFrame(opcode: Opcode.close, $0) }
        state = .closing
        closeDeadline = node.loop.now &+ Node.closeHandshakeTimeout
        armTimer()
    }

    // MARK: Timer

    /// Starts the keep-alive clock.
    func start() { armTimer() }

    private var nextDeadline: UInt64 {
        switch state {
        case .open:
            let ping = pingedSinceRead ? lastWrite &+ node.pingInterval : min(lastWrite, lastRead) &+ node.pingInterval
            return min(ping, lastRead &+ node.idleTimeout)
        case .closing:
            return closeDeadline
        case .closed:
            return .max
        }
    }

    private func armTimer() {
        let deadline = nextDeadline
        if let timer {
            guard timerDeadline > deadline else { return }
            node.loop.cancel(timer)
        }
        timerDeadline = deadline
        timer = node.loop.schedule(deadline: deadline, handler: self)
    }

    func timerFired(tag: UInt64) {
        timer = nil
        guard let connection, state != .closed else { return }
        let now = node.loop.now
        switch state {
        case .open:
            if now >= lastRead &+ node.idleTimeout {
                node.metrics.drops(.idleTimeout)
                close(code: .goingAway, reason: "idle")
                return
            }
            // After `pingInterval` without writes (keeps the connection warm), and once after `pingInterval`
            // without reads (a client that only receives has nothing to send otherwise, and would be closed as
            // idle while it is healthy).
            let quietWriter = now >= lastWrite &+ node.pingInterval
            let quietReader = !pingedSinceRead && now >= lastRead &+ node.pingInterval
            if quietWriter || quietReader {
                sendFrame(opcode: Opcode.ping, UnsafeRawBufferPointer(start: nil, count: 0))
                pingedSinceRead = true
            }
        case .closing:
            if now >= closeDeadline {
                connection.close()
                return
            }
        case .closed:
            return
        }
        armTimer()
    }

    /// Pauses or resumes reading this client (too many of its messages wait for the store).
    func setReading(_ reading: Bool) {
        guard let connection else { return }
        if reading { connection.resumeReading() } else { connection.pauseReading() }
    }
}
