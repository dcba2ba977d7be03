// Per-loop server state: accepting, the loop-owned output batch and head-parser pool, the cached Date line.
import EventLoop
import HTTP1
import Sys

/// Everything one loop of a server owns. Used only on its loop's thread (`onLoop` hops there), hence
/// `@unchecked Sendable`: the server keeps the list of contexts to reach them from `stop`/`closeIdle`.
final class LoopContext: AcceptHandler, @unchecked Sendable {
    let loop: EventLoop
    let router: Router
    let configuration: ServerConfiguration
    let shared: ServerShared
    var listener: Listener?
    /// Open connections of this loop; each knows its slot (swap-remove on close).
    var connections: [ServerConnection] = []
    /// Parsers lent to connections only while a request is incomplete; idle connections hold none.
    private var parsers = HeadParserPool(kind: .request, capacity: 64)
    /// Responses of one read callback are gathered here and sent with one write.
    let output: UnsafeMutableRawBufferPointer
    var outputCount = 0
    /// Reused to serialise dynamic response heads.
    var headScratch: [UInt8] = []
    var date = DateLine()
    private var dateRefreshAt: UInt64 = 0
    var draining = false
    let headerTimeout: UInt64
    let idleTimeout: UInt64
    let lingerTimeout: UInt64

    init(loop: EventLoop, router: Router, configuration: ServerConfiguration, shared: ServerShared) {
        self.loop = loop
        self.router = router
        self.configuration = configuration
        self.shared = shared
        output = .allocate(byteCount: 32 * 1024, alignment: 16)
        headScratch.reserveCapacity(1024)
        connections.reserveCapacity(1024)
        headerTimeout = nanoseconds(configuration.headerTimeout)
        idleTimeout = nanoseconds(configuration.idleTimeout)
        lingerTimeout = nanoseconds(configuration.lingerTimeout)
    }

    deinit { output.deallocate() }

    /// Runs `body` on the loop thread: now when already there, else as a loop task.
    func onLoop(_ body: @escaping @Sendable (LoopContext) -> Void) {
        if loop.isInLoop {
            body(self)
        } else {
            loop.execute { body(self) }
        }
    }

    // MARK: Accepting

    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener) {
        let count = shared.connections.add(1, ordering: .relaxed).newValue
        if count > configuration.maxConnections {
            shared.connections.subtract(1, ordering: .relaxed)
            shared.rejected.add(1, ordering: .relaxed)
            // A fresh socket's send buffer is empty: the short answer goes out whole, then FIN.
            _ = ErrorResponses.overloaded.withUnsafeBytes { try? fd.send($0) }
            fd.close()
            return
        }
        let handler = ServerConnection(context: self, peer: peer)
        do {
            handler.connection = try Connection(loop: loop, fd: fd, handler: handler)
        } catch {
            shared.connections.subtract(1, ordering: .relaxed)
            return
        }
        connections.appendSlotted(handler)
        handler.armIdle()
    }

    func removed(_ connection: ServerConnection) {
        shared.connections.subtract(1, ordering: .relaxed)
        connections.removeSlotted(connection)
    }

    func closeListener() {
        listener?.close()
        listener = nil
    }

    func closeIdle() {
        draining = true
        // Closing removes from `connections`: walk a copy.
        for connection in connections where connection.isIdle {
            // A request may have arrived that no event has reported yet (sent just before this call): read it first,
            // and close only a connection still between requests.
            connection.connection?.readNow()
            if connection.isIdle { connection.connection?.close() }
        }
    }

    // MARK: Parsers

    func takeParser() -> HeadParser { parsers.take(limits: configuration.limits) }

    func giveBack(_ parser: inout HeadParser) { parsers.giveBack(&parser) }

    // MARK: Output batch

    /// Refreshes the Date line when a second has passed (monotonic check first: one clock read per second).
    func refreshDate() {
        guard configuration.sendDate, loop.now >= dateRefreshAt else { return }
        let wall = wallClockSeconds()
        let whole = wall.rounded(.down)
        date.update(epochSeconds: Int64(whole))
        dateRefreshAt = loop.now &+ UInt64((1 - (wall - whole)) * 1e9) &+ 1
    }

    @inline(__always)
    func append(_ bytes: UnsafeRawBufferPointer, to connection: Connection) {
        if outputCount + bytes.count > output.count {
            flush(to: connection)
            if bytes.count > output.count {
                connection.write(bytes)
                return
            }
        }
        (output.baseAddress! + outputCount).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        outputCount += bytes.count
    }

    @inline(__always)
    func append(_ string: StaticString, to connection: Connection) {
        append(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount), to: connection)
    }

    func flush(to connection: Connection) {
        guard outputCount > 0 else { return }
        connection.write(UnsafeRawBufferPointer(start: output.baseAddress, count: outputCount))
        outputCount = 0
    }

    func appendDate(to connection: Connection) {
        guard configuration.sendDate else { return }
        withUnsafeBytes(of: &date.bytes) {
            append(UnsafeRawBufferPointer(rebasing: $0[0..<DateLine.count]), to: connection)
        }
    }

    /// Copies a fixed response: head, Date, Connection line, then CRLF and the body (CRLF only for HEAD).
    @inline(__always)
    func emit(_ response: FixedResponse, headOnly: Bool, connectionLine: ConnectionLine, to connection: Connection) {
        append(response.head, to: connection)
        appendDate(to: connection)
        appendConnectionLine(connectionLine, to: connection)
        append(headOnly ? response.endOfHead : response.tail, to: connection)
    }

    /// Serialises a dynamic response.
    func emit(_ response: Response, headOnly: Bool, connectionLine: ConnectionLine, to connection: Connection) {
        headScratch.removeAll(keepingCapacity: true)
        response.appendLeadingHead(into: &headScratch)
        headScratch.withUnsafeBytes { append($0, to: connection) }
        appendDate(to: connection)
        appendConnectionLine(connectionLine, to: connection)
        append("\r\n", to: connection)
        if !headOnly && response.hasBody && !response.body.isEmpty {
            response.body.withUnsafeBytes { append($0, to: connection) }
        }
    }

    /// `101 Switching Protocols` (RFC 9110 §15.2.2) with the protocol named in `Upgrade` and the handler's fields.
    func emitSwitchingProtocols(upgrade: String, headers: [Headers.Field], to connection: Connection) {
        headScratch.removeAll(keepingCapacity: true)
        headScratch.append(contentsOf: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: ".utf8)
        headScratch.append(contentsOf: upgrade.utf8)
        headScratch.append(contentsOf: "\r\nConnection: Upgrade\r\n".utf8)
        for field in headers where Response.isAllowed(field) {
            HeadSerializer.appendField(name: field.name.utf8, value: field.value.utf8, into: &headScratch)
        }
        headScratch.append(contentsOf: "\r\n".utf8)
        headScratch.withUnsafeBytes { append($0, to: connection) }
    }

    @inline(__always)
    func appendConnectionLine(_ line: ConnectionLine, to connection: Connection) {
        switch line {
        case .none: break
        case .close: append("Connection: close\r\n", to: connection)
        case .keepAlive: append("Connection: keep-alive\r\n", to: connection)
        }
    }
}

/// The `Connection` field a response carries.
enum ConnectionLine {
    /// HTTP/1.1 keep-alive: nothing to say.
    case none
    case close
    /// An HTTP/1.0 client asked for keep-alive and gets it.
    case keepAlive
}

/// The server's own error answers: the shared canned set (`HTTP1.CannedError`, the gateway's too), serialised
/// once as fixed responses. The server sends them with `Connection: close`.
enum ErrorResponses {
    static let badRequest = FixedResponse(.badRequest)
    static let requestTimeout = FixedResponse(.requestTimeout)
    static let contentTooLarge = FixedResponse(.contentTooLarge)
    static let uriTooLong = FixedResponse(.uriTooLong)
    static let headerFieldsTooLarge = FixedResponse(.requestHeaderFieldsTooLarge)
    static let notImplemented = FixedResponse(.notImplemented)
    static let versionNotSupported = FixedResponse(.httpVersionNotSupported)
    static let internalError = FixedResponse(.internalServerError)

    /// Sent raw on a socket refused for `maxConnections`.
    static let overloaded: [UInt8] = {
        var out: [UInt8] = []
        CannedError.serviceUnavailable.write(keepAlive: false, into: &out)
        return out
    }()

    static func forStatus(_ status: Int) -> FixedResponse {
        switch status {
        case 408: return requestTimeout
        case 413: return contentTooLarge
        case 414: return uriTooLong
        case 431: return headerFieldsTooLarge
        case 501: return notImplemented
        case 505: return versionNotSupported
        case 500: return internalError
        default: return badRequest
        }
    }
}
