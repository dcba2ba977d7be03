// Reading a WebSocket byte stream into messages and control frames (RFC 6455 §5, §7.4, §8.1), checked as strictly
// as the RFC requires.

/// What a `MessageReader` delivers. The buffers are valid only during the callback that receives them.
public enum FrameEvent {
    /// A complete text message (all its fragments joined), well-formed UTF-8.
    case text(UnsafeRawBufferPointer)
    /// A complete binary message (all its fragments joined).
    case binary(UnsafeRawBufferPointer)
    case ping(UnsafeRawBufferPointer)
    case pong(UnsafeRawBufferPointer)
    /// A Close frame (RFC 6455 §5.5.1): `code` is nil for an empty payload; the reason is well-formed UTF-8.
    case close(code: CloseCode?, reason: UnsafeRawBufferPointer)
}

/// Turns the bytes one side of a connection receives into messages and control frames, whatever the read
/// boundaries, and fails the connection (RFC 6455 §7.1.7) with the close code the RFC names for each violation.
///
/// Memory: a message that arrives complete inside one `feed` is unmasked into the caller's scratch buffer (or, when
/// unmasked on the wire, delivered straight from the input), so the common case allocates nothing. A message or
/// control frame that spans reads is gathered in storage of the reader's own, released as soon as it is delivered:
/// an idle reader holds no heap memory.
///
/// A Close ends what the peer may send (§5.5.1); frames after it are still parsed if fed, and it is the caller
/// that stops feeding. Extensions are not supported: any RSV bit fails the connection.
public struct MessageReader: Sendable {
    /// The side this reader serves: a server reads masked frames, a client unmasked ones (§5.1).
    public let role: Role
    /// The largest message (all fragments together) accepted; a larger one fails with 1009 (§7.4.1).
    public let maxMessageBytes: Int

    /// The close code the connection failed with; set once, then every call returns it.
    private var failure: CloseCode?
    /// Bytes of a header split across reads.
    private var headers = FrameHeaderReader()

    // The frame whose payload is being read (`inFrame`), from its header.
    private var inFrame = false
    private var frameOpcode: UInt8 = 0
    private var frameFin = false
    private var frameMasked = false
    private var frameKey: UInt32 = 0
    /// Payload bytes still to come, and already read (the masking phase).
    private var frameRemaining = 0
    private var frameRead = 0

    // The data message being assembled: its opcode (0 when there is none), its bytes so far and where they are.
    private var messageOpcode: UInt8 = 0
    private var messageLength = 0
    /// The message's bytes so far are at the start of this call's scratch buffer (only ever true inside `feed`),
    /// else in `message`.
    private var messageInScratch = false
    private var message: [UInt8] = []
    /// A control frame's payload gathered across reads, still masked as on the wire.
    private var control: [UInt8] = []
    /// The text message's UTF-8 so far (its fragments are one sequence: a character may span them).
    private var utf8 = UTF8Validator()

    public init(role: Role, maxMessageBytes: Int = 1 << 20) {
        self.role = role
        self.maxMessageBytes = max(0, maxMessageBytes)
    }

    /// True when no partial frame or message is held; an idle reader owns no heap memory.
    public var isIdle: Bool {
        !inFrame && headers.isEmpty && messageOpcode == 0 && message.capacity == 0 && control.capacity == 0
    }

    /// Feeds bytes as they arrive (any split, even byte by byte) and calls `handle` for each complete event, in
    /// order.
    ///
    /// `scratch` is a caller-owned (loop-owned) buffer: a message complete inside `bytes` that fits is unmasked
    /// there and delivered from there, so the common case allocates nothing. Its contents are not needed after
    /// the call returns. A message spanning reads is gathered in the reader's own storage, released once the
    /// message is delivered.
    ///
    /// Returns nil, or the close code the connection must be failed with:
    /// - 1002 (protocol error, §5.2–§5.5, §7.4): an RSV bit set, an unknown opcode, a control frame longer than
    ///   125 bytes or fragmented, a continuation without a message to continue, a new data frame inside a
    ///   fragmented message, masking wrong for the role, a 64-bit length with its top bit set, a Close payload of
    ///   one byte, a close code not valid on the wire;
    /// - 1007 (§8.1): invalid UTF-8 in a text message, reported at the first byte that cannot be valid (even
    ///   before the message ends, across fragments), or in a close reason;
    /// - 1009: a message over `maxMessageBytes`, known from the frame header before any of its payload is held.
    ///
    /// Events before the violation are delivered. After a failure every call returns the same code and calls
    /// nothing.
    public mutating func feed(
        _ bytes: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer, _ handle: (FrameEvent) -> Void
    ) -> CloseCode? {
        if let failure { return failure }
        guard var cursor = bytes.baseAddress else { return nil }
        var left = bytes.count
        // Invariant: `left` bytes are readable at `cursor` (the rest of `bytes`).
        while true {
            if !inFrame {
                guard left > 0, let header = headers.next(&cursor, &left) else { break }
                if let code = begin(header) { return fail(code) }
            }
            // Here a frame is open; an empty payload completes it at once.
            guard left > 0 || frameRemaining == 0 else { break }
            let take = min(left, frameRemaining)
            let chunk = UnsafeRawBufferPointer(start: cursor, count: take)
            cursor += take
            left -= take
            let code =
                Opcode.isControl(frameOpcode) ? controlPayload(chunk, handle) : dataPayload(chunk, scratch, handle)
            if let code { return fail(code) }
        }
        // A message still open keeps its bytes in the reader's storage: scratch belongs to this call only.
        if messageInScratch { spill(scratch) }
        return nil
    }

    /// Checks a header against the role and the message in progress, and opens its frame.
    private mutating func begin(_ header: FrameHeader) -> CloseCode? {
        let opcode = header.opcode
        guard header.reserved == 0, Opcode.isKnown(opcode), header.masked == (role == .server),
            header.length >> 63 == 0
        else { return .protocolError }
        if Opcode.isControl(opcode) {
            guard header.fin, header.length <= 125 else { return .protocolError }
        } else {
            // Continuations continue a message; text and binary start one (§5.4).
            guard (opcode == Opcode.continuation) == (messageOpcode != 0) else { return .protocolError }
            guard header.length <= UInt64(maxMessageBytes - messageLength) else { return .messageTooBig }
            if opcode != Opcode.continuation {
                messageOpcode = opcode
                messageLength = 0
                messageInScratch = true
                utf8 = UTF8Validator()
            }
        }
        inFrame = true
        frameOpcode = opcode
        frameFin = header.fin
        frameMasked = header.masked
        frameKey = header.maskKey
        frameRemaining = Int(header.length)
        frameRead = 0
        return nil
    }

    /// Takes payload bytes of a control frame; delivers the frame once they are all there.
    private mutating func controlPayload(
        _ chunk: UnsafeRawBufferPointer, _ handle: (FrameEvent) -> Void
    )
        -> CloseCode?
    {
        frameRemaining -= chunk.count
        if frameRead == 0 && frameRemaining == 0 {
            inFrame = false
            return deliverControl(chunk, handle)
        }
        control.append(contentsOf: chunk)
        frameRead += chunk.count
        guard frameRemaining == 0 else { return nil }
        inFrame = false
        let payload = control
        control = []
        return payload.withUnsafeBytes { deliverControl($0, handle) }
    }

    /// Unmasks a control frame's whole payload (at most 125 bytes) on the stack and delivers it.
    private mutating func deliverControl(
        _ payload: UnsafeRawBufferPointer, _ handle: (FrameEvent) -> Void
    )
        -> CloseCode?
    {
        guard frameMasked, let source = payload.baseAddress else { return deliverControlPlain(payload, handle) }
        return withUnsafeTemporaryAllocation(byteCount: 125, alignment: 8) { buffer in
            // `payload.count` <= 125 (checked in `begin`), so the unmasked copy fits the buffer.
            applyMask(frameKey, phase: 0, from: source, to: buffer.baseAddress!, count: payload.count)
            return deliverControlPlain(UnsafeRawBufferPointer(rebasing: buffer[..<payload.count]), handle)
        }
    }

    private func deliverControlPlain(
        _ payload: UnsafeRawBufferPointer, _ handle: (FrameEvent) -> Void
    )
        -> CloseCode?
    {
        switch frameOpcode {
        case Opcode.ping: handle(.ping(payload))
        case Opcode.pong: handle(.pong(payload))
        default:
            // Close (§5.5.1): empty, or a 2-byte code then a UTF-8 reason.
            if payload.isEmpty {
                handle(.close(code: nil, reason: payload))
                return nil
            }
            guard payload.count >= 2 else { return .protocolError }
            let code = CloseCode(rawValue: UInt16(payload[0]) << 8 | UInt16(payload[1]))
            guard code.isValidOnWire else { return .protocolError }
            let reason = UnsafeRawBufferPointer(rebasing: payload[2...])
            var validator = UTF8Validator()
            guard validator.feed(reason), validator.isAtBoundary else { return .invalidPayload }
            handle(.close(code: code, reason: reason))
        }
        return nil
    }

    /// Takes payload bytes of a data frame into the message; delivers the message once its last frame ends.
    private mutating func dataPayload(
        _ chunk: UnsafeRawBufferPointer, _ scratch: UnsafeMutableRawBufferPointer, _ handle: (FrameEvent) -> Void
    ) -> CloseCode? {
        frameRemaining -= chunk.count
        let frameDone = frameRemaining == 0
        // A whole unmasked one-frame message inside the input: delivered from the input itself.
        if frameDone && frameFin && !frameMasked && frameRead == 0 && frameOpcode != Opcode.continuation {
            inFrame = false
            messageInScratch = false
            guard messageOpcode != Opcode.text || utf8.feed(chunk) else { return .invalidPayload }
            return finish(chunk, handle)
        }
        if !chunk.isEmpty {
            let valid = append(chunk, scratch)
            frameRead += chunk.count
            guard valid else { return .invalidPayload }
        }
        guard frameDone else { return nil }
        inFrame = false
        guard frameFin else { return nil }
        if messageInScratch {
            messageInScratch = false
            return finish(UnsafeRawBufferPointer(start: scratch.baseAddress, count: messageLength), handle)
        }
        let stored = message
        message = []
        return stored.withUnsafeBytes { finish($0, handle) }
    }

    /// Appends unmasked payload bytes to the message (in scratch while they fit there, else in `message`) and
    /// checks them as UTF-8 for a text message; false at invalid UTF-8.
    private mutating func append(_ chunk: UnsafeRawBufferPointer, _ scratch: UnsafeMutableRawBufferPointer) -> Bool {
        let count = chunk.count
        let source = chunk.baseAddress!
        let isText = messageOpcode == Opcode.text
        let masked = frameMasked
        let key = frameKey
        let phase = frameRead
        var validator = utf8
        defer {
            utf8 = validator
            messageLength += count
        }
        if messageInScratch && messageLength + count <= scratch.count {
            // Invariant: `messageLength + count` bytes fit in scratch (checked just above).
            let destination = scratch.baseAddress! + messageLength
            if masked {
                applyMask(key, phase: phase, from: source, to: destination, count: count)
            } else {
                destination.copyMemory(from: source, byteCount: count)
            }
            return !isText || validator.feed(UnsafeRawBufferPointer(start: destination, count: count))
        }
        if messageInScratch { spill(scratch) }
        let start = message.count
        message.append(contentsOf: chunk)
        return message.withUnsafeMutableBytes { stored in
            // Invariant: the last `count` bytes of `stored` are the chunk just appended.
            let tail = stored.baseAddress! + start
            if masked { applyMask(key, phase: phase, from: tail, to: tail, count: count) }
            return !isText || validator.feed(UnsafeRawBufferPointer(start: tail, count: count))
        }
    }

    /// Moves the message's bytes so far from scratch into the reader's storage.
    private mutating func spill(_ scratch: UnsafeMutableRawBufferPointer) {
        messageInScratch = false
        guard messageLength > 0 else { return }
        message.append(contentsOf: UnsafeRawBufferPointer(start: scratch.baseAddress, count: messageLength))
    }

    /// Delivers a complete message (its UTF-8 already fed to `utf8`) and clears the message state.
    private mutating func finish(_ payload: UnsafeRawBufferPointer, _ handle: (FrameEvent) -> Void) -> CloseCode? {
        let opcode = messageOpcode
        let complete = utf8.isAtBoundary
        messageOpcode = 0
        messageLength = 0
        utf8 = UTF8Validator()
        if opcode == Opcode.text {
            // A message may not end inside a character (§8.1).
            guard complete else { return .invalidPayload }
            handle(.text(payload))
        } else {
            handle(.binary(payload))
        }
        return nil
    }

    /// Records the failure and drops whatever was held.
    private mutating func fail(_ code: CloseCode) -> CloseCode {
        failure = code
        inFrame = false
        headers = FrameHeaderReader()
        messageOpcode = 0
        messageLength = 0
        messageInScratch = false
        message = []
        control = []
        return code
    }
}
