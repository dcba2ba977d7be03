// ws-echo: an RFC 6455 echo server on the event loop that streams each frame back as it arrives.
import EventLoop
import HTTP1
import Sys
import WebSocket

/// One loop's share of the echo server: its SO_REUSEPORT listener's handler and the output buffer its connections
/// share.
final class EchoWorker: AcceptHandler {
    /// Unmasked output of one `received` call. An echoed frame's header is 4 bytes shorter than the client's
    /// (no masking key) and payload bytes map one to one, so one read never produces more than the read buffer
    /// plus one header completed from bytes carried over from the previous read.
    let output: UnsafeMutableRawBufferPointer

    init(loop: EventLoop) {
        output = .allocate(byteCount: loop.readBuffer.count + 64, alignment: 16)
    }

    deinit { output.deallocate() }

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        // Each echo is written at once: Nagle would hold small frames back until the previous ones are acked.
        try? fd.set(.noDelay(true))
        _ = try? Connection(loop: listener.loop, fd: fd, handler: EchoConnection(worker: self))
    }
}

/// One client connection: the opening handshake, then every frame echoed with the payload unmasked as it streams
/// through. Ping is answered with Pong carrying the same payload, Close with Close (same payload) and the connection
/// closes once that is sent; Pong is dropped; data and continuation frames are echoed with their own opcode and FIN.
/// Text payloads are not checked for UTF-8 (a bench tool; the client checks what it gets back).
final class EchoConnection: ConnectionHandler {
    // Invariant: the worker lives as long as the loop, which outlives its connections.
    unowned(unsafe) let worker: EchoWorker
    /// The request head parser until the upgrade is done; nil after (its storage is released).
    private var handshake: HeadParser? = HeadParser(kind: .request)
    /// Frame headers, possibly split across reads.
    private var headers = FrameHeaderReader()
    /// Payload bytes of the current frame still to come, its masking key and the key byte due next.
    private var remaining: UInt64 = 0
    private var maskKey: UInt32 = 0
    private var phase = 0
    /// The current frame's payload is dropped rather than echoed (Pong).
    private var discard = false
    /// The current frame is a Close: once its payload is echoed the connection closes.
    private var closing = false
    /// A Close was echoed (or a protocol error answered): further input is ignored.
    private var done = false

    init(worker: EchoWorker) { self.worker = worker }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard !done else { return }
        var input = bytes
        if handshake != nil {
            guard let rest = upgrade(connection, bytes) else { return }
            input = rest
        }
        let out = worker.output.baseAddress!
        var used = 0
        var cursor = input.baseAddress
        var left = input.count
        while left > 0 && !done {
            let from = cursor!
            if remaining > 0 {
                let take = Int(min(UInt64(left), remaining))
                if !discard {
                    applyMask(maskKey, phase: phase, from: from, to: out + used, count: take)
                    used += take
                }
                phase = (phase + take) & 3
                remaining -= UInt64(take)
                cursor = from + take
                left -= take
                if remaining == 0 && closing { done = true }
                continue
            }
            var position = from
            guard let header = headers.next(&position, &left) else { break }
            cursor = position
            used += start(header, at: out + used)
        }
        if used > 0 { connection.write(UnsafeRawBufferPointer(start: out, count: used)) }
        if done { connection.closeWhenFlushed() }
    }

    /// Begins echoing a frame: writes the unmasked reply header (or, for a protocol error, a Close 1002, RFC 6455
    /// §7.4.1) and returns its size.
    private func start(_ header: FrameHeader, at destination: UnsafeMutableRawPointer) -> Int {
        let control = Opcode.isControl(header.opcode)
        guard header.masked, header.reserved == 0, Opcode.isKnown(header.opcode),
            !control || (header.fin && header.length <= 125), header.length < 1 << 62
        else {
            done = true
            let size = FrameWriter.writeHeader(
                into: destination, fin: true, opcode: Opcode.close, length: 2, maskKey: nil)
            destination.storeBytes(of: UInt16(1002).bigEndian, toByteOffset: size, as: UInt16.self)
            return size + 2
        }
        remaining = header.length
        maskKey = header.maskKey
        phase = 0
        discard = header.opcode == Opcode.pong
        closing = header.opcode == Opcode.close
        if remaining == 0 && closing { done = true }
        if discard { return 0 }
        let opcode = header.opcode == Opcode.ping ? Opcode.pong : header.opcode
        return FrameWriter.writeHeader(
            into: destination, fin: header.fin, opcode: opcode, length: Int(header.length), maskKey: nil)
    }

    /// Feeds the request head; once complete answers 101 (or 400 and closes) and returns the bytes after the head.
    private func upgrade(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        switch handshake!.parse(bytes) {
        case .needMore:
            return nil
        case .failure:
            reject(connection)
            return nil
        case .complete(let consumed):
            let head = handshake!
            handshake = nil
            guard head.method == .get, head.isWebSocketUpgrade, let key = head.value(ofField: "sec-websocket-key"),
                !key.isEmpty
            else {
                reject(connection)
                return nil
            }
            let response = Handshake.acceptResponse(accept: Handshake.acceptKey(for: key))
            response.withUnsafeBytes { connection.write($0) }
            return UnsafeRawBufferPointer(rebasing: bytes[consumed...])
        }
    }

    private func reject(_ connection: Connection) {
        done = true
        handshake = nil
        let response = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        response.withUnsafeBytes { connection.write($0) }
        connection.closeWhenFlushed()
    }

    func writabilityChanged(_ connection: Connection, writable: Bool) {
        // A client that sends faster than it reads: stop reading until our replies drain.
        if writable { connection.resumeReading() } else { connection.pauseReading() }
    }

    func closed(_ connection: Connection, error: Errno?) {}
}

/// Runs `ws-echo`: one EchoWorker and one SO_REUSEPORT listener per loop, until killed.
func runWSEcho(_ arguments: ArraySlice<String>) {
    var port: UInt16?
    var host = "127.0.0.1"
    var workers = 1
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--port": port = UInt16(value(of: flag, &rest))
        case "--host": host = value(of: flag, &rest)
        case "--workers": workers = number(of: flag, &rest, in: 1...256)
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("ws-echo: unknown option \(flag)")
        }
    }
    guard let port else { fail("ws-echo: --port is required (a number)") }
    guard var address = SocketAddress(host: host, port: port) else { fail("ws-echo: bad address \(host)") }
    _ = try? raiseOpenFileLimit()
    Signals.ignoreBrokenPipe()
    do {
        let group = try EventLoopGroup(loops: workers)
        var listeners: [Listener] = []
        for loop in group.loops {
            let listener = try Listener(loop: loop, address: address, backlog: 4096, handler: EchoWorker(loop: loop))
            // With port 0 the first bind picks the port; the other loops share it.
            address = listener.address
            listeners.append(listener)
        }
        try group.start()
        log("rtc-bench ws-echo listening on \(address) with \(workers) worker(s)")
        group.join()
        withExtendedLifetime(listeners) {}
    } catch {
        fail("ws-echo: \(error)")
    }
}
