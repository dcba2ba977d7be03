// A small HTTP/1.1 client for control-plane calls: one keep-alive connection (plain TCP or TLS), one request at a
// time, Content-Length, chunked and until-close bodies, one deadline per request.
import EventLoop
import HTTP1
import Resolver
import Sys
import TLS

/// A request: method, target (path and query), extra header fields and an optional body.
struct HTTPRequest {
    var method: Method
    var target: String
    var fields: [(name: String, value: String)] = []
    var body: [UInt8]?

    var methodName: String {
        switch method {
        case .get: "GET"
        case .post: "POST"
        case .put: "PUT"
        case .patch: "PATCH"
        case .delete: "DELETE"
        case .head: "HEAD"
        default: "GET"
        }
    }
}

/// A whole response.
struct HTTPResponse: Equatable {
    var status: Int
    var body: [UInt8]
}

/// One request's life on the client, replaced whole for the next request.
struct Exchange {
    enum Phase {
        /// Waiting for a connection (resolving, connecting, handshaking).
        case connecting
        /// Written; the head has not fully arrived.
        case awaitingHead
        /// Reading the body as the head framed it.
        case body(BodyFraming)
    }

    var request: HTTPRequest
    var completion: (Result<HTTPResponse, KubeError>) -> Void
    /// Monotonic nanoseconds by which the whole response must have come.
    var deadline: UInt64
    var phase: Phase = .connecting
    /// Sent on a kept-alive connection (which the server may have closed meanwhile).
    var reusedConnection = false
    /// Whether it was already sent again after a kept-alive connection turned out closed.
    var retried = false
    var responseBytes = 0
    var parser = HeadParser(kind: .response)
    var chunked = ChunkedDecoder()
    var body: [UInt8] = []
    var remaining: UInt64 = 0
}

/// The socket under the client: plain, or TLS over it.
enum Transport {
    case plain(Connection)
    case tls(TLSStream)

    func write(_ bytes: [UInt8]) {
        switch self {
        case .plain(let connection): bytes.withUnsafeBytes { connection.write($0) }
        case .tls(let stream): stream.write(bytes)
        }
    }

    func close() {
        switch self {
        case .plain(let connection): connection.close()
        case .tls(let stream): stream.abort()
        }
    }

    func isSame(_ connection: Connection) -> Bool {
        if case .plain(let own) = self { return own === connection }
        return false
    }

    func isSame(_ stream: TLSStream) -> Bool {
        if case .tls(let own) = self { return own === stream }
        return false
    }
}

/// An HTTP/1.1 client of one server, on one loop (all methods on its thread). Requests queue and go one at a time
/// on one connection kept alive between them (RFC 9112 §9.3); a request sent on a kept-alive connection that the
/// server had closed (no byte of an answer) is sent once more on a new connection. Each request has a deadline
/// that covers resolving, connecting, the TLS handshake and the whole response; when it passes the connection is
/// dropped and the request fails with `Timeout`.
final class HTTPClient {
    unowned let loop: EventLoop
    let url: APIURL
    let tls: TLSContext?
    let resolver: Resolver?
    let requestTimeout: Duration
    /// Largest response body accepted.
    var maximumBodySize = 16 << 20

    private var transport: Transport?
    private var connecting = false
    private var exchange: Exchange?
    private var queue: [Exchange] = []
    private var generation: UInt64 = 0
    private var connector: Connector?
    private var timer: TimerID?
    private var events: HTTPClientEvents!
    private var closed = false

    init(loop: EventLoop, url: APIURL, tls: TLSContext?, resolver: Resolver?, requestTimeout: Duration) {
        self.loop = loop
        self.url = url
        self.tls = tls
        self.resolver = resolver
        self.requestTimeout = requestTimeout
        events = HTTPClientEvents(self)
    }

    deinit {
        connector?.cancel()
        transport?.close()
        if let timer { loop.cancel(timer) }
    }

    /// Whether a connection is open (idle or busy).
    var isConnected: Bool { transport != nil }

    /// Queues `request`; `completion` runs on the loop, never inside this call.
    func send(_ request: HTTPRequest, _ completion: @escaping (Result<HTTPResponse, KubeError>) -> Void) {
        guard !closed else {
            loop.schedule(after: .zero) { completion(.failure(.transport("Closed", "the client was closed"))) }
            return
        }
        let deadline = loop.now &+ nanoseconds(requestTimeout)
        queue.append(Exchange(request: request, completion: completion, deadline: deadline))
        if exchange == nil { loop.schedule(after: .zero) { [weak self] in self?.startNext() } }
    }

    /// Fails every queued request with `Closed` and closes the connection.
    func close() {
        guard !closed else { return }
        closed = true
        dropConnection()
        var failed = queue
        queue = []
        if let current = exchange {
            failed.insert(current, at: 0)
            exchange = nil
        }
        if let timer { loop.cancel(timer) }
        timer = nil
        for item in failed { item.completion(.failure(.transport("Closed", "the client was closed"))) }
    }

    private func startNext() {
        guard exchange == nil, !closed, !queue.isEmpty else { return }
        exchange = queue.removeFirst()
        if let timer { loop.cancel(timer) }
        timer = loop.schedule(deadline: exchange!.deadline, handler: events)
        if let transport {
            writeRequest(on: transport, reused: true)
        } else if !connecting {
            connect()
        }
    }

    private func writeRequest(on transport: Transport, reused: Bool) {
        guard var current = exchange else { return }
        current.phase = .awaitingHead
        current.reusedConnection = reused
        current.parser.reset()
        current.chunked.reset()
        current.body = []
        current.responseBytes = 0
        exchange = current
        var head: [UInt8] = []
        head.reserveCapacity(256 + (current.request.body?.count ?? 0))
        HeadSerializer.appendRequestLine(
            method: Array(current.request.methodName.utf8),
            target: Array((url.pathPrefix + current.request.target).utf8),
            into: &head)
        HeadSerializer.appendField(name: Array("Host".utf8), value: Array(url.hostField.utf8), into: &head)
        for field in current.request.fields {
            HeadSerializer.appendField(name: Array(field.name.utf8), value: Array(field.value.utf8), into: &head)
        }
        if let body = current.request.body {
            HeadSerializer.appendField(name: Array("Content-Length".utf8), decimal: UInt64(body.count), into: &head)
            HeadSerializer.appendEndOfHead(into: &head)
            head.append(contentsOf: body)
        } else {
            HeadSerializer.appendEndOfHead(into: &head)
        }
        transport.write(head)
    }

    // MARK: Connecting

    private func connect() {
        generation &+= 1
        connecting = true
        if let address = SocketAddress(host: url.host, port: url.port) {
            startConnect(to: address)
            return
        }
        if url.host.lowercased() == "localhost" {
            startConnect(to: .loopback(port: url.port))
            return
        }
        guard let resolver else {
            connectFailed(.transport("ConnectFailed", "no resolver for the host name \(url.host)"))
            return
        }
        if let outcome = resolver.resolve(url.host, handler: events, tag: generation) {
            resolved(outcome, tag: generation)
        }
    }

    fileprivate func resolved(_ outcome: ResolveOutcome, tag: UInt64) {
        guard tag == generation, connecting, connector == nil else { return }
        if case .addresses(let addresses, _) = outcome, let first = addresses.first {
            startConnect(to: SocketAddress(first, port: url.port))
        } else {
            connectFailed(.transport("ConnectFailed", "cannot resolve \(url.host): \(outcome)"))
        }
    }

    private func startConnect(to address: SocketAddress) {
        do {
            connector = try Connector.connect(
                loop: loop, to: address, timeout: requestTimeout, handler: events, tag: generation)
        } catch {
            connectFailed(.transport("ConnectFailed", "\(address): \(error)"))
        }
    }

    fileprivate func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector) {
        guard tag == generation, connecting else {
            if case .connected(let fd) = result {
                connector.releaseRegistration()
                fd.close()
            }
            return
        }
        self.connector = nil
        switch result {
        case .connected(let fd):
            let transport: Transport
            if let tls {
                let stream: TLSStream
                do {
                    stream = try TLSStream(context: tls, serverName: url.host, delegate: events)
                } catch {
                    connector.releaseRegistration()
                    fd.close()
                    connectFailed(.transport("TLS", "\(error)"))
                    return
                }
                guard let connection = connector.connection(handler: stream) else { return }
                stream.start(on: connection)
                transport = .tls(stream)
            } else {
                guard let connection = connector.connection(handler: events) else { return }
                transport = .plain(connection)
            }
            connecting = false
            self.transport = transport
            if exchange != nil { writeRequest(on: transport, reused: false) }
        case .failed(let errno):
            connectFailed(.transport("ConnectFailed", "\(url.host):\(url.port): \(errno)"))
        case .timedOut:
            connectFailed(.transport("Timeout", "connecting to \(url.host):\(url.port)"))
        }
    }

    fileprivate func connectFailed(_ result: ConnectResult, tag: UInt64) {
        guard tag == generation, connecting else { return }
        switch result {
        case .failed(let errno): connectFailed(.transport("ConnectFailed", "\(url.host):\(url.port): \(errno)"))
        case .timedOut: connectFailed(.transport("Timeout", "connecting to \(url.host):\(url.port)"))
        case .connected: break
        }
    }

    private func connectFailed(_ error: KubeError) {
        connecting = false
        connector = nil
        finish(.failure(error))
    }

    // MARK: Responses

    fileprivate func received(_ bytes: UnsafeRawBufferPointer) {
        guard var current = exchange else {
            // Bytes nobody asked for: the connection cannot be trusted any more.
            dropConnection()
            return
        }
        current.responseBytes += bytes.count
        var offset = 0
        while offset < bytes.count || isBodyless(current.phase) {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            switch current.phase {
            case .connecting:
                exchange = current
                return
            case .awaitingHead:
                switch current.parser.parse(rest) {
                case .needMore:
                    exchange = current
                    return
                case .failure(let error):
                    exchange = current
                    failAndDrop(.transport("InvalidResponse", "response head: \(error)"))
                    return
                case .complete(let consumed):
                    offset += consumed
                    if current.parser.status < 200 {
                        // 1xx: an interim response; the real one follows.
                        current.parser.reset()
                        continue
                    }
                    let framing = current.parser.responseFraming(requestMethod: current.request.method)
                    switch framing {
                    case .contentLength(let length):
                        guard length <= UInt64(maximumBodySize) else {
                            exchange = current
                            failAndDrop(.transport("InvalidResponse", "body of \(length) bytes is too large"))
                            return
                        }
                        current.remaining = length
                        current.body.reserveCapacity(Int(length))
                    case .tunnel:
                        exchange = current
                        failAndDrop(.transport("InvalidResponse", "unexpected tunnel"))
                        return
                    default:
                        break
                    }
                    current.phase = .body(framing)
                }
            case .body(let framing):
                switch framing {
                case .none:
                    exchange = current
                    complete(keepAlive: current.parser.keepAlive && offset == bytes.count)
                    return
                case .contentLength:
                    let take = Int(min(UInt64(rest.count), current.remaining))
                    current.body.append(contentsOf: rest[0..<take])
                    current.remaining -= UInt64(take)
                    offset += take
                    if current.remaining == 0 {
                        exchange = current
                        complete(keepAlive: current.parser.keepAlive && offset == bytes.count)
                        return
                    }
                case .chunked:
                    var body = current.body
                    let step = current.chunked.decode(rest) { body.append(contentsOf: $0) }
                    current.body = body
                    switch step {
                    case .needMore, .data:
                        offset = bytes.count
                    case .end(let consumed):
                        offset += consumed
                        exchange = current
                        complete(keepAlive: current.parser.keepAlive && offset == bytes.count)
                        return
                    case .failure(let error):
                        exchange = current
                        failAndDrop(.transport("InvalidResponse", "chunked body: \(error)"))
                        return
                    }
                    if current.body.count > maximumBodySize {
                        exchange = current
                        failAndDrop(.transport("InvalidResponse", "body too large"))
                        return
                    }
                case .untilClose, .tunnel:
                    current.body.append(contentsOf: rest)
                    offset = bytes.count
                    if current.body.count > maximumBodySize {
                        exchange = current
                        failAndDrop(.transport("InvalidResponse", "body too large"))
                        return
                    }
                }
            }
        }
        exchange = current
    }

    private func isBodyless(_ phase: Exchange.Phase) -> Bool {
        if case .body(.none) = phase { return true }
        return false
    }

    /// The response is whole: hand it over, keep or drop the connection, go on with the next request.
    private func complete(keepAlive: Bool) {
        guard let current = exchange else { return }
        if !keepAlive { dropConnection() }
        finish(.success(HTTPResponse(status: current.parser.status, body: current.body)))
    }

    private func failAndDrop(_ error: KubeError) {
        dropConnection()
        finish(.failure(error))
    }

    private func finish(_ result: Result<HTTPResponse, KubeError>) {
        guard let current = exchange else { return }
        exchange = nil
        if let timer { loop.cancel(timer) }
        timer = nil
        current.completion(result)
        if !queue.isEmpty, exchange == nil {
            loop.schedule(after: .zero) { [weak self] in self?.startNext() }
        }
    }

    private func dropConnection() {
        generation &+= 1
        connecting = false
        connector?.cancel()
        connector = nil
        let old = transport
        transport = nil
        old?.close()
    }

    /// The connection ended (EOF, error, TLS failure).
    fileprivate func transportEnded(error: KubeError?) {
        // Forgotten before closing, so the close's own callback is not taken for another end.
        let old = transport
        transport = nil
        old?.close()
        guard var current = exchange else { return }
        switch current.phase {
        case .connecting:
            return
        case .body(.untilClose) where error == nil:
            complete(keepAlive: false)
        case .awaitingHead where current.responseBytes == 0 && current.reusedConnection && !current.retried:
            // The server closed the idle connection as the request went out (RFC 9112 §9.3.1): try a new one.
            current.retried = true
            current.phase = .connecting
            exchange = current
            connect()
        default:
            finish(.failure(error ?? .transport("ConnectionLost", "the server closed the connection mid-response")))
        }
    }

    fileprivate func transportEOF(_ transport: Transport) {
        guard let own = self.transport, isSameTransport(own, transport) else {
            transport.close()
            return
        }
        transportEnded(error: nil)
    }

    fileprivate func transportClosed(_ transport: Transport, error: KubeError?) {
        guard let own = self.transport, isSameTransport(own, transport) else { return }
        transportEnded(error: error ?? .transport("ConnectionLost", "the connection closed"))
    }

    fileprivate func isCurrent(_ transport: Transport) -> Bool {
        guard let own = self.transport else { return false }
        return isSameTransport(own, transport)
    }

    private func isSameTransport(_ a: Transport, _ b: Transport) -> Bool {
        switch b {
        case .plain(let connection): a.isSame(connection)
        case .tls(let stream): a.isSame(stream)
        }
    }

    fileprivate func timerFired() {
        timer = nil
        guard let current = exchange else { return }
        if current.deadline > loop.now {
            timer = loop.schedule(deadline: current.deadline, handler: events)
            return
        }
        dropConnection()
        finish(.failure(.transport("Timeout", "no answer within \(requestTimeout)")))
    }
}

/// The loop-facing side of an `HTTPClient`: it holds the client weakly, so a client nobody references is released.
final class HTTPClientEvents: ConnectHandler, ConnectionHandler, TLSStreamDelegate, ResolveHandler, TimerHandler {
    weak var client: HTTPClient?

    init(_ client: HTTPClient) { self.client = client }

    /// Failed and timed-out attempts come here (the connector keeps no registration to hand over).
    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        switch result {
        case .connected(let fd): fd.close()
        case .failed, .timedOut: client?.connectFailed(result, tag: tag)
        }
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector) {
        if let client {
            client.connectCompleted(result, tag: tag, connector: connector)
        } else if case .connected(let fd) = result {
            connector.releaseRegistration()
            fd.close()
        }
    }

    func resolved(_ outcome: ResolveOutcome, name: String, tag: UInt64) {
        client?.resolved(outcome, tag: tag)
    }

    func timerFired(tag: UInt64) { client?.timerFired() }

    // Plain connections.
    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard let client, client.isCurrent(.plain(connection)) else {
            connection.close()
            return
        }
        client.received(bytes)
    }

    func readEOF(_ connection: Connection) {
        guard let client else {
            connection.close()
            return
        }
        client.transportEOF(.plain(connection))
    }

    func closed(_ connection: Connection, error: Errno?) {
        client?.transportClosed(
            .plain(connection), error: error.map { .transport("ConnectionLost", "\($0)") })
    }

    // TLS streams.
    func handshakeCompleted(_ stream: TLSStream) {}

    func received(_ stream: TLSStream, _ bytes: UnsafeRawBufferPointer) {
        guard let client, client.isCurrent(.tls(stream)) else {
            stream.abort()
            return
        }
        client.received(bytes)
    }

    func readEOF(_ stream: TLSStream) {
        guard let client else {
            stream.abort()
            return
        }
        client.transportEOF(.tls(stream))
    }

    func closed(_ stream: TLSStream, error: TLSError?) {
        client?.transportClosed(.tls(stream), error: error.map { .transport("TLS", "\($0)") })
    }
}
