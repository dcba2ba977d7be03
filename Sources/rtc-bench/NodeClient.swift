// A client session with an rtc-socket node for the load tools: connect, upgrade, welcome, text frames both ways,
// Pongs to the node's Pings, Close; one object per connection, all on one loop.
import EventLoop
import HTTP1
import Ring
import Sys
import WebSocket
import Wire

/// What a `NodeClient` reports to the tool that owns it, on the loop's thread.
protocol NodeClientOwner: AnyObject {
    /// Unmasking space for whole server messages, owned by the loop (read only during one callback).
    var scratch: UnsafeMutableRawBufferPointer { get }
    /// The node's first frame arrived and was a welcome.
    func welcomed(_ client: NodeClient, nodeID: String, ringVersion: UInt64)
    /// A text message after the welcome; `payload` is valid only during the call.
    func message(_ client: NodeClient, _ payload: UnsafeRawBufferPointer)
    /// Every event of one read has been delivered (a place to write what they made due, in one batch).
    func readEnded(_ client: NodeClient)
    /// The session ended (handshake refused, connection lost, Close from the node, or our own `close`).
    func ended(_ client: NodeClient, _ why: NodeClient.End)
}

/// One WebSocket session with a node (RFC 6455 client side: masked frames, §5.3), from the TCP connect to the end.
final class NodeClient: ConnectionHandler {
    enum Phase { case idle, handshaking, awaitingWelcome, open, closed }

    /// Why a session ended.
    enum End: Equatable {
        case connectFailed
        case handshakeRefused(status: Int)
        /// The first frame was not a welcome, or a frame broke the protocol.
        case protocolError
        case closedByNode(code: UInt16)
        case lost
        /// `close()` was called.
        case local
    }

    unowned(unsafe) let owner: any NodeClientOwner
    /// Free for the owner: which pair, which side.
    let index: Int
    let clientID: String
    private(set) var phase = Phase.idle
    /// The welcome arrived (stays true after the session ends).
    private(set) var wasWelcomed = false
    private(set) var connection: Connection?
    private var parser: HeadParser? = nil
    private var key = ""
    private var reader = MessageReader(role: .client, maxMessageBytes: 1 << 24)
    /// Mask keys (RFC 6455 §5.3 asks for unpredictable ones; a load tool only needs them to vary).
    private var maskState: UInt64

    init(owner: any NodeClientOwner, index: Int, clientID: String) {
        self.owner = owner
        self.index = index
        self.clientID = clientID
        maskState = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    /// Connects (nonblocking) from `source` when given and sends the upgrade request at once: `Connection` keeps
    /// it until the socket is writable. False when no socket could be opened.
    /// `path` replaces the node's own `/ws/connect?clientId=…` (e.g. the URL an assignment gave, through a gateway).
    func open(
        loop: EventLoop, address: SocketAddress, hostField: String, source: SocketAddress?, query: String = "",
        path: String? = nil
    ) -> Bool {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.socket(.tcp, for: address)
        } catch {
            return false
        }
        do {
            if let source { try fd.bind(to: source) }
            _ = try fd.connect(to: address)
        } catch {
            fd.close()
            return false
        }
        try? fd.set(.noDelay(true))
        // Registration failure closes fd.
        guard let connection = try? Connection(loop: loop, fd: fd, handler: self) else { return false }
        self.connection = connection
        var nonce = [UInt8](repeating: 0, count: 16)
        nonce.withUnsafeMutableBytes { fillRandom($0) }
        key = String(decoding: Handshake.base64(nonce), as: UTF8.self)
        parser = HeadParser(kind: .response)
        phase = .handshaking
        let request = Handshake.clientRequest(
            host: hostField, path: path ?? "/ws/connect?clientId=" + clientID + query, key: key)
        request.withUnsafeBytes { connection.write($0) }
        return true
    }

    // MARK: Sending

    /// The next mask key (splitmix64 steps).
    @inline(__always)
    private func nextMask() -> UInt32 {
        maskState &+= 0x9E37_79B9_7F4A_7C15
        var z = maskState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return UInt32(truncatingIfNeeded: z ^ (z >> 31))
    }

    /// Writes a masked frame header for a `length`-byte payload into `destination` (14 bytes must be writable) and
    /// returns its size and the key the payload must be masked with.
    @inline(__always)
    func frameHeader(into destination: UnsafeMutableRawPointer, opcode: UInt8, length: Int) -> (size: Int, key: UInt32)
    {
        let key = nextMask()
        let size = FrameWriter.writeHeader(into: destination, fin: true, opcode: opcode, length: length, maskKey: key)
        return (size, key)
    }

    /// Sends `payload` as one masked frame (copied; for control frames and the odd message).
    func send(opcode: UInt8, _ payload: UnsafeRawBufferPointer) {
        guard let connection, phase == .open || phase == .awaitingWelcome else { return }
        var frame: [UInt8] = []
        frame.reserveCapacity(payload.count + 14)
        FrameWriter.append(opcode: opcode, payload: payload, maskKey: nextMask(), to: &frame)
        frame.withUnsafeBytes { connection.write($0) }
    }

    /// Writes bytes already framed (and masked) by the owner.
    @inline(__always)
    func write(_ bytes: UnsafeRawBufferPointer) {
        guard let connection, phase == .open else { return }
        connection.write(bytes)
    }

    /// Sends Close 1000 and closes once it is written (the node closes its side when it sees it).
    func close() {
        guard phase != .closed else { return }
        if phase == .open || phase == .awaitingWelcome {
            let payload = FrameWriter.closePayload(code: .normal, reason: "")
            payload.withUnsafeBytes { send(opcode: Opcode.close, $0) }
        }
        end(.local)
        connection?.closeWhenFlushed()
    }

    // MARK: Receiving

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        var input = bytes
        if phase == .handshaking {
            guard let rest = handshake(bytes) else { return }
            input = rest
        }
        guard phase == .open || phase == .awaitingWelcome else { return }
        let failure = reader.feed(input, scratch: owner.scratch) { event in self.handle(event) }
        if failure != nil {
            end(.protocolError)
            connection.close()
        }
        owner.readEnded(self)
    }

    private func handshake(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        switch parser!.parse(bytes) {
        case .needMore:
            return nil
        case .failure:
            end(.handshakeRefused(status: 0))
            connection?.close()
            return nil
        case .complete(let consumed):
            let head = parser!
            parser = nil
            let text = { (name: StaticString) in head.value(ofField: name).map { String(decoding: $0, as: UTF8.self) } }
            let verdict = Handshake.validateResponse(
                status: head.status, upgrade: text("upgrade"), connection: text("connection"),
                accept: text("sec-websocket-accept"), key: key)
            guard case .success = verdict else {
                end(.handshakeRefused(status: head.status))
                connection?.close()
                return nil
            }
            phase = .awaitingWelcome
            return UnsafeRawBufferPointer(rebasing: bytes[consumed...])
        }
    }

    private func handle(_ event: FrameEvent) {
        switch event {
        case .text(let payload):
            if phase == .awaitingWelcome {
                guard case .welcome(let nodeID, _, let ringVersion, _)? = try? ServerMessage.decode(payload) else {
                    end(.protocolError)
                    connection?.close()
                    return
                }
                phase = .open
                wasWelcomed = true
                owner.welcomed(self, nodeID: nodeID, ringVersion: ringVersion)
            } else if phase == .open {
                owner.message(self, payload)
            }
        case .binary:
            end(.protocolError)
            connection?.close()
        case .ping(let payload):
            send(opcode: Opcode.pong, payload)
        case .pong:
            break
        case .close(let code, _):
            guard phase != .closed else { return }
            let payload = FrameWriter.closePayload(code: code ?? .normal, reason: "")
            payload.withUnsafeBytes { send(opcode: Opcode.close, $0) }
            end(.closedByNode(code: code?.rawValue ?? 1005))
            connection?.closeWhenFlushed()
        }
    }

    func readEOF(_ connection: Connection) {
        lostConnection()
        connection.close()
    }

    func closed(_ connection: Connection, error: Errno?) {
        lostConnection()
        self.connection = nil
    }

    private func lostConnection() {
        switch phase {
        case .closed: break
        case .idle, .handshaking: end(.connectFailed)
        default: end(.lost)
        }
    }

    private func end(_ why: End) {
        guard phase != .closed else { return }
        phase = .closed
        parser = nil
        owner.ended(self, why)
    }
}

/// Where sessions go: a node's `host:port` (an IP literal).
struct NodeTarget {
    var address: SocketAddress
    /// The Host field.
    var hostField: String

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let address = SocketAddress(host: host == "localhost" ? "127.0.0.1" : host, port: port) else {
            return nil
        }
        self.address = address
        hostField = text
    }
}

/// Opens sessions a bounded number at a time (a burst of thousands would overflow the node's accept queue) and
/// counts how they settled: welcomed, or failed before the welcome.
final class SessionOpener {
    unowned(unsafe) let loop: EventLoop
    let concurrency: Int
    let sources: [SocketAddress]
    private var queue: [(client: NodeClient, target: NodeTarget)] = []
    private var started = 0
    private var inProgress = 0
    private(set) var welcomed = 0
    private(set) var failed = 0

    init(loop: EventLoop, concurrency: Int, sources: [SocketAddress] = []) {
        self.loop = loop
        self.concurrency = max(1, concurrency)
        self.sources = sources
    }

    var total: Int { queue.count }
    var settled: Bool { welcomed + failed == queue.count }

    func add(_ client: NodeClient, at target: NodeTarget) { queue.append((client, target)) }

    /// Starts the first sessions; call on the loop's thread or before it runs.
    func begin() { startMore() }

    /// A session this opener started got its welcome (`true`) or ended before it.
    func settle(welcomed ok: Bool) {
        inProgress -= 1
        if ok { welcomed += 1 } else { failed += 1 }
        startMore()
    }

    private func startMore() {
        while started < queue.count && inProgress < concurrency {
            let (client, target) = queue[started]
            let source = sources.isEmpty ? nil : sources[started % sources.count]
            started += 1
            if client.open(loop: loop, address: target.address, hostField: target.hostField, source: source) {
                inProgress += 1
            } else {
                failed += 1
            }
        }
    }
}

/// Client ids the ring gives to `node`: `prefix` followed by 0, 1, 2, … in turn, the first `count` that match.
func clientIDs(ownedBy node: String, in ring: Ring, count: Int, prefix: String) -> [String] {
    var result: [String] = []
    result.reserveCapacity(count)
    var index = 0
    while result.count < count {
        let id = prefix + String(index)
        if ring.owner(of: id) == node { result.append(id) }
        index += 1
    }
    return result
}

/// A ring of `ids`, each with weight 1 and not draining (what `ring-update` publishes).
func benchRing(version: UInt64, ids: [String]) -> Ring {
    Ring(version: version, nodes: ids.map { RingNode(id: $0, weight: 1, draining: false) })
}

/// A short random run id (hex): client ids and msgIds of one run never meet a previous run's inboxes or dedup keys.
func randomRunID() -> String {
    var bytes = [UInt8](repeating: 0, count: 4)
    bytes.withUnsafeMutableBytes { fillRandom($0) }
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// utime + stime of one process in seconds (/proc/PID/stat is in USER_HZ, 100 per second on Linux).
func processCPUSeconds(_ pid: Int32) -> Double { Double(processCPUTicks([pid])) / 100 }
