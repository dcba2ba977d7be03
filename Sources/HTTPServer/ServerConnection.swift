// One server-side connection: the request state machine (head, body, closing), pipelining, timeouts.
import EventLoop
import HTTP1
import Sys

/// The life of one connection: requests are read in order and answered in order, from the bytes of each read.
///
/// Between requests a connection holds no parser and no buffer; a parser is borrowed from the loop for a read
/// and kept only while a request is incomplete at the end of that read.
final class ServerConnection: ConnectionHandler, TimerHandler, Slotted {
    enum Phase: UInt8 {
        /// Reading a head (or idle between requests when `headStartedAt == 0`).
        case head
        /// Reading `bodyRemaining` more bytes of a Content-Length body.
        case body
        /// Reading a chunked body.
        case chunked
        /// The last response is out (or going out); input is discarded until EOF or the linger timeout.
        case closing
        /// A `101` went out: the rest of the read and the connection belong to the upgrade's handler.
        case upgraded
    }

    let context: LoopContext
    let peer: SocketAddress?
    var connection: Connection?
    var slot = -1
    private var parser: HeadParser?
    private var phase = Phase.head
    // Monotonic time the current head's first byte arrived; 0 while no head is in progress.
    private var headStartedAt: UInt64 = 0
    // The request being read once its head is complete.
    private var resolution: Router.Resolution?
    private var keepAlive = true
    private var headOnly = false
    private var connectionLine = ConnectionLine.none
    private var collectBody = false
    private var bodyRemaining: UInt64 = 0
    private var bodyReceived = 0
    private var body: [UInt8] = []
    private var decoder = ChunkedDecoder()
    private var adopt: ((Connection) -> any ConnectionHandler)?
    /// The current phase's deadline (idle, header, body pause, linger) on the loop's timer heap: moving it later,
    /// as each request does, is a store.
    private var deadline = Deadline()

    init(context: LoopContext, peer: SocketAddress?) {
        self.context = context
        self.peer = peer
    }

    /// Between requests, nothing unsent: safe to close for a drain.
    var isIdle: Bool {
        phase == .head && headStartedAt == 0 && parser == nil && (connection?.pendingByteCount ?? 0) == 0
    }

    // MARK: Reading

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        if phase == .closing { return }
        let context = self.context
        context.refreshDate()
        var parser = self.parser.take() ?? context.takeParser()
        var offset = 0
        let count = bytes.count
        while offset < count && phase != .closing && phase != .upgraded {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            switch phase {
            case .head:
                switch parser.parse(rest) {
                case .needMore:
                    if headStartedAt == 0 { headStartedAt = context.loop.now }
                    offset = count
                case .failure(let error):
                    answerError(ErrorResponses.forStatus(error.status), connection)
                case .complete(let consumed):
                    offset += consumed
                    headStartedAt = 0
                    startRequest(&parser, connection)
                }
            case .body:
                let take = Int(min(UInt64(rest.count), bodyRemaining))
                if collectBody { body.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take])) }
                offset += take
                bodyRemaining -= UInt64(take)
                if bodyRemaining == 0 { finishRequest(&parser, connection) }
            case .chunked:
                var tooLarge = false
                let limit = context.configuration.maxBodyBytes
                let step = decoder.decode(rest) { data in
                    bodyReceived += data.count
                    if bodyReceived > limit {
                        tooLarge = true
                    } else if collectBody {
                        body.append(contentsOf: data)
                    }
                }
                if tooLarge {
                    answerError(ErrorResponses.contentTooLarge, connection)
                    break
                }
                switch step {
                case .end(let consumed):
                    offset += consumed
                    finishRequest(&parser, connection)
                case .failure:
                    answerError(ErrorResponses.badRequest, connection)
                default:
                    offset = count
                }
            case .closing, .upgraded:
                break
            }
        }
        context.flush(to: connection)
        if phase == .upgraded {
            context.giveBack(&parser)
            handOver(connection, rest: UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            return
        }
        if phase == .closing {
            context.giveBack(&parser)
            startClosing(connection)
            return
        }
        if phase == .head && headStartedAt == 0 {
            context.giveBack(&parser)
            setDeadline(context.loop.now &+ context.idleTimeout)
        } else {
            self.parser = parser
            if phase == .head {
                // Counted from the head's first byte, never extended by later bytes: slowloris gets a 408.
                setDeadline(headStartedAt &+ context.headerTimeout)
            } else {
                setDeadline(context.loop.now &+ context.headerTimeout)
            }
        }
    }

    /// The head is complete: resolve the route and the body framing.
    private func startRequest(_ parser: inout HeadParser, _ connection: Connection) {
        let context = self.context
        let method = parser.method
        resolution = parser.path.withUnsafeBytes { context.router.resolve(method: method, path: $0) }
        keepAlive = parser.keepAlive && !context.draining
        headOnly = method == .head
        connectionLine = keepAlive ? (parser.version == .http1_0 ? .keepAlive : .none) : .close
        switch parser.bodyFraming {
        case .contentLength(let length) where length > 0:
            guard length <= UInt64(context.configuration.maxBodyBytes) else {
                answerError(ErrorResponses.contentTooLarge, connection)
                return
            }
            prepareBody(&parser, connection)
            if collectBody { body.reserveCapacity(Int(length)) }
            bodyRemaining = length
            phase = .body
        case .chunked:
            prepareBody(&parser, connection)
            decoder.reset()
            bodyReceived = 0
            phase = .chunked
        default:
            finishRequest(&parser, connection)
        }
    }

    private func prepareBody(_ parser: inout HeadParser, _ connection: Connection) {
        if case .action(.dynamic) = resolution { collectBody = true } else { collectBody = false }
        // RFC 9110 §10.1.1: a client waiting for 100 (curl does for large bodies) gets it before the body.
        if parser.version == .http1_1, let expect = parser.value(ofField: "expect"), expect.count == 12,
            expect.elementsEqual("100-continue".utf8, by: { $0 | 0x20 == $1 | 0x20 })
        {
            context.append("HTTP/1.1 100 Continue\r\n\r\n", to: connection)
        }
    }

    /// The whole request is in: answer it, and get ready for the next one (or for closing).
    private func finishRequest(_ parser: inout HeadParser, _ connection: Connection) {
        let context = self.context
        switch resolution {
        case .action(.fixed(let response)), .fixedError(let response):
            context.emit(response, headOnly: headOnly, connectionLine: connectionLine, to: connection)
        case .action(.dynamic(let handler)):
            let request = Request(parser: parser, body: body, remoteAddress: peer)
            body = []
            let response = handler(request)
            context.emit(response, headOnly: headOnly, connectionLine: connectionLine, to: connection)
        case .action(.upgrade(let handler)):
            let request = Request(parser: parser, body: body, remoteAddress: peer)
            body = []
            switch handler(request) {
            case .reject(let response):
                keepAlive = false
                context.emit(response, headOnly: headOnly, connectionLine: .close, to: connection)
            case .accept(let upgrade, let headers, let adopt):
                context.emitSwitchingProtocols(upgrade: upgrade, headers: headers, to: connection)
                self.adopt = adopt
                resolution = nil
                parser.reset()
                phase = .upgraded
                return
            }
        case nil:
            break
        }
        resolution = nil
        collectBody = false
        parser.reset()
        phase = keepAlive ? .head : .closing
    }

    /// After a `101`: the connection leaves this server (its books and its timer) for the upgrade's handler, which
    /// gets the bytes that followed the head.
    private func handOver(_ connection: Connection, rest: UnsafeRawBufferPointer) {
        context.loop.disarm(&deadline)
        let adopt = self.adopt
        self.adopt = nil
        context.removed(self)
        self.connection = nil
        guard let adopt, !connection.isClosed else { return }
        let handler = adopt(connection)
        connection.setHandler(handler)
        if rest.count > 0 && !connection.isClosed { handler.received(connection, rest) }
    }

    /// Answers an error with `Connection: close` and stops reading requests (RFC 9112 §9.6 after a bad message).
    private func answerError(_ response: FixedResponse, _ connection: Connection) {
        context.emit(response, headOnly: false, connectionLine: .close, to: connection)
        resolution = nil
        body = []
        phase = .closing
    }

    private func startClosing(_ connection: Connection) {
        headStartedAt = 0
        connection.shutdownWrite()
        setDeadline(context.loop.now &+ context.lingerTimeout)
    }

    func readEOF(_ connection: Connection) {
        // The peer is done sending. Unsent bytes still go out if the peer keeps reading: FIN after them, and
        // the linger timer closes.
        if connection.pendingByteCount == 0 {
            connection.close()
        } else {
            phase = .closing
            startClosing(connection)
        }
    }

    func writabilityChanged(_ connection: Connection, writable: Bool) {
        // A client that pipelines without reading answers: stop reading until it catches up.
        if writable { connection.resumeReading() } else { connection.pauseReading() }
    }

    func closed(_ connection: Connection, error: Errno?) {
        context.loop.disarm(&deadline)
        if var parser = self.parser.take() { context.giveBack(&parser) }
        body = []
        resolution = nil
        context.removed(self)
        self.connection = nil
    }

    // MARK: Timers

    /// Starts the idle clock of a new connection.
    func armIdle() {
        setDeadline(context.loop.now &+ context.idleTimeout)
    }

    private func setDeadline(_ time: UInt64) {
        context.loop.arm(&deadline, at: time, handler: self)
    }

    func timerFired(tag: UInt64) {
        guard let connection, !connection.isClosed else { return }
        switch phase {
        case .head where headStartedAt == 0:
            connection.close()
        case .head, .body, .chunked:
            context.refreshDate()
            answerError(ErrorResponses.requestTimeout, connection)
            context.flush(to: connection)
            if var parser = self.parser.take() { context.giveBack(&parser) }
            startClosing(connection)
        case .closing, .upgraded:
            connection.close()
        }
    }
}
