// One downstream HTTP connection: request head → route → upstream → response, repeated while kept alive.
import DNS
import EventLoop
import Forwarding
import GatewayConfig
import HTTP1
import Resolver
import Routing
import Sys

/// The life of one downstream connection until it closes or becomes a WebSocket tunnel.
///
/// Phases of each request, in order (nginx's request phases and Pingora's `upstream_peer` and
/// `upstream_request_filter`, flattened into one state machine):
/// `idle` (keep-alive, no byte yet) → `head` (head arriving; 408 past `client_header`) → `resolving` (DNS) →
/// `connecting` (new upstream connection, or one from the pool) → `sending` (request body streamed upstream) →
/// `awaiting` (504 past `upstream_response`) → `relaying` (response body streamed downstream) → `idle` again or
/// closed. A 101 to a forwarded upgrade hands both connections to a `Tunnel` and this object goes away.
///
/// Bytes that arrive downstream while they cannot be used yet (a body before the upstream is connected, a
/// pipelined request before the current response ended) are stashed and reading pauses; nothing else is
/// buffered, and the stash is empty again when the exchange is idle.
final class Exchange: ConnectionHandler, ConnectHandler, ResolveHandler {
    enum Phase: UInt8 {
        case idle
        case head
        case resolving
        case connecting
        case sending
        case awaiting
        case relaying
        case closed
    }

    // Invariant: a worker outlives its exchanges and tunnels (they end when its loop stops), so the reference
    // needs no reference counting.
    unowned(unsafe) let worker: Worker
    var downstream: Connection!
    let peer: SocketAddress
    /// Index in `worker.exchanges`.
    var slot = -1
    private(set) var phase: Phase = .idle {
        didSet { if oldValue != phase { worker.phaseChanged(from: oldValue, to: phase) } }
    }
    /// When the current phase times out (monotonic ns; 0: never). Checked by the worker's sweep.
    var deadline: UInt64 = 0

    private var snapshot: Snapshot
    private var request: HeadParser
    private var response = Worker.noResponseParser
    /// Whether `request` / `response` are parsers lent by the worker (else the memory-less placeholders).
    private var lentRequest = false
    private var lentResponse = false
    private var requestBody = BodyCursor()
    private var responseBody = BodyCursor()
    private var stash: [UInt8] = []
    private var route = 0
    private var group: Int?
    private var server = 0
    private var requestID: RequestID?
    private var upstream: Connection?
    private var upstreamAddress = SocketAddress.loopback(port: 0)
    /// The rendered host of a dynamic route (the pod name), for the tunnel metric.
    private var upstreamHost = ""
    private var connector: Connector?
    private var generation: UInt64 = 0
    private var startedAt: UInt64 = 0
    private var connectStartedAt: UInt64 = 0
    private var keepAliveAfter = false
    private var forwardedUpgrade = false
    private var reusedUpstream = false
    private var retried = false
    private var responseStarted = false
    private var downstreamEOF = false

    init(worker: Worker, peer: SocketAddress) {
        self.worker = worker
        self.peer = peer
        snapshot = worker.snapshot
        request = Worker.noRequestParser
    }

    // MARK: Downstream

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        if connection === downstream {
            downstreamBytes(bytes)
        } else if connection === upstream {
            upstreamBytes(bytes)
        }
    }

    private func downstreamBytes(_ bytes: UnsafeRawBufferPointer) {
        switch phase {
        case .idle, .head:
            parseHead(bytes)
        case .sending:
            forwardRequestBody(bytes)
        case .resolving, .connecting, .awaiting, .relaying:
            stash.append(contentsOf: bytes)
            downstream.pauseReading()
        case .closed:
            break
        }
    }

    private func parseHead(_ bytes: UnsafeRawBufferPointer) {
        if phase == .idle {
            if !lentRequest {
                request = worker.lendRequestParser()
                lentRequest = true
            }
            phase = .head
            deadline = worker.loop.now &+ worker.clientHeaderTimeout
            // Answers before routing (400, 408, 414, 431, 505) count under no route, timed from the first byte.
            route = -1
            startedAt = worker.loop.now
        }
        switch request.parse(bytes) {
        case .needMore:
            return
        case .failure(let error):
            answer(ErrorResponse(error), closing: true)
        case .complete(let consumed):
            if consumed < bytes.count {
                stash.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
            downstream.pauseReading()
            dispatch()
        }
    }

    /// The head is complete: route it.
    private func dispatch() {
        startedAt = worker.loop.now
        deadline = 0
        let framing = request.bodyFraming
        if case .contentLength(let length) = framing, length > snapshot.bodySizeLimit {
            answer(.contentTooLarge, closing: true)
            return
        }
        requestBody.start(framing)
        let isUpgrade = request.isWebSocketUpgrade
        let decision = request.path.withUnsafeBytes { path in
            snapshot.routes.decide(path: path, isWebSocketUpgrade: isUpgrade, matcher: worker.matcher)
        }
        worker.matcherHolder = ObjectIdentifier(self)
        switch decision {
        case .notFound:
            route = -1
            answer(.notFound, closing: !requestBody.isDone)
        case .upgradeRequired(let index):
            route = index
            answer(.upgradeRequired, closing: !requestBody.isDone)
        case .respond(let index):
            route = index
            answerRoute(index)
        case .proxy(let index):
            route = index
            proxy()
        }
    }

    // MARK: Choosing and reaching the upstream

    private func proxy() {
        let plan = snapshot.plans[route]
        forwardedUpgrade = plan.websocket && request.isWebSocketUpgrade
        generation &+= 1
        retried = false
        switch plan.target {
        case .group(let groupIndex):
            guard groupIndex >= 0 else {
                fail(.badGateway, kind: .dns)
                return
            }
            group = groupIndex
            let upstreamGroup = worker.group(groupIndex, of: snapshot)
            server = upstreamGroup.pickServer()
            if let address = upstreamGroup.address(server: server, now: worker.loop.now) {
                connect(to: address)
            } else {
                resolve(upstreamGroup.servers[server].host)
            }
        case .dynamic(let host, let port):
            group = nil
            server = Int(port)
            var name: [UInt8] = []
            request.path.withUnsafeBytes { path in
                host.render(captures: worker.matcher, path: path, into: &name)
            }
            upstreamHost = String(decoding: name, as: UTF8.self)
            resolve(upstreamHost)
        case .respond:
            answerRoute(route)
        }
    }

    private func resolve(_ name: String) {
        phase = .resolving
        let tag = generation
        if let outcome = worker.resolver.resolve(name, handler: self, tag: tag) {
            resolved(outcome, name: name, tag: tag)
        }
    }

    func resolved(_ outcome: ResolveOutcome, name: String, tag: UInt64) {
        guard tag == generation, phase == .resolving else { return }
        switch outcome {
        case .addresses(let addresses, let ttl) where !addresses.isEmpty:
            if let group {
                let upstreamGroup = worker.group(group, of: snapshot)
                upstreamGroup.update(server: server, addresses: addresses, ttl: ttl, now: worker.loop.now)
                connect(to: upstreamGroup.staleAddress(server: server)!)
            } else {
                // The resolver already hands successive lookups the addresses in turn: take its first.
                connect(to: SocketAddress(addresses[0], port: UInt16(server)))
            }
        default:
            // A named upstream whose refresh failed keeps its last addresses.
            if let group, let address = worker.group(group, of: snapshot).staleAddress(server: server) {
                connect(to: address)
                return
            }
            fail(.badGateway, kind: .dns)
        }
    }

    private func connect(to address: SocketAddress) {
        upstreamAddress = address
        if let pooled = worker.pool.take(address) {
            pooled.setHandler(self)
            upstream = pooled
            reusedUpstream = true
            sendRequest()
            return
        }
        reusedUpstream = false
        connectFresh()
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64) {
        connected(result, tag: tag, connector: nil)
    }

    func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector) {
        connected(result, tag: tag, connector: connector)
    }

    private func connected(_ result: ConnectResult, tag: UInt64, connector: Connector?) {
        guard tag == generation, phase == .connecting else {
            if case .connected(let fd) = result {
                connector?.releaseRegistration()
                fd.close()
            }
            return
        }
        self.connector = nil
        switch result {
        case .connected(let fd):
            // A head and then its body are two writes: without TCP_NODELAY the body would wait for the head's ACK.
            try? fd.set(.noDelay(true))
            // Keep the connector's epoll registration (no deregister + register on the upgrade path).
            if let adopted = connector?.connection(handler: self) {
                upstream = adopted
            } else {
                do {
                    upstream = try Connection(loop: worker.loop, fd: fd, handler: self)
                } catch {
                    fail(.badGateway, kind: .connectRefused)
                    return
                }
            }
            worker.metrics.connectDuration.observe(
                shard: worker.index, Double(worker.loop.now &- connectStartedAt) / 1e9)
            sendRequest()
        case .failed:
            fail(.badGateway, kind: .connectRefused)
        case .timedOut:
            fail(.gatewayTimeout, kind: .connectTimeout)
        }
    }

    // MARK: Request upstream

    private func sendRequest() {
        guard let upstream else { return }
        // The matcher is shared by the loop: if another request matched since this one's `dispatch` (while this
        // one waited for DNS or a connect), match again so it holds this request's captures.
        if worker.matcherHolder != ObjectIdentifier(self) {
            _ = request.path.withUnsafeBytes { snapshot.routes.match(path: $0, matcher: worker.matcher) }
            worker.matcherHolder = ObjectIdentifier(self)
        }
        worker.scratch.removeAll(keepingCapacity: true)
        worker.writeClientAddress(peer)
        requestID = worker.clientAddress.withUnsafeBytes { address in
            snapshot.rewriter.writeUpstreamHead(
                request: request, route: route, server: group == nil ? 0 : server, matcher: worker.matcher,
                clientAddress: address, scheme: .http, requestIDs: &worker.requestIDs, into: &worker.scratch)
        }
        worker.scratch.withUnsafeBytes { upstream.write($0) }
        if lentResponse {
            response.reset()
        } else {
            response = worker.lendResponseParser()
            lentResponse = true
        }
        responseStarted = false
        if requestBody.isDone {
            phase = .awaiting
            deadline = worker.loop.now &+ worker.upstreamResponseTimeout
        } else {
            phase = .sending
            // A body must keep coming: `client_header` is also the longest pause between two of its reads.
            deadline = worker.loop.now &+ worker.clientHeaderTimeout
        }
        if !stash.isEmpty && phase == .sending {
            let pending = takeStash()
            pending.withUnsafeBytes { forwardRequestBody($0) }
        }
        if phase == .sending { downstream.resumeReading() }
    }

    private func forwardRequestBody(_ bytes: UnsafeRawBufferPointer) {
        guard let upstream else { return }
        switch requestBody.take(bytes) {
        case .invalid:
            answerOrAbort(.badRequest)
        case .body(let count, let ended):
            if requestBody.total > snapshot.bodySizeLimit {
                answerOrAbort(.contentTooLarge)
                return
            }
            if count > 0 {
                upstream.write(UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
                worker.metrics.bytesUpstream.increment(shard: worker.index, by: UInt64(count))
                if phase == .sending && deadline != 0 { deadline = worker.loop.now &+ worker.clientHeaderTimeout }
            }
            if ended {
                if count < bytes.count {
                    stash.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[count...]))
                }
                downstream.pauseReading()
                if phase == .sending {
                    phase = .awaiting
                    deadline = worker.loop.now &+ worker.upstreamResponseTimeout
                }
            }
        }
    }

    // MARK: Response downstream

    private func upstreamBytes(_ bytes: UnsafeRawBufferPointer) {
        switch phase {
        case .sending, .awaiting:
            parseResponse(bytes)
        case .relaying:
            relayResponseBody(bytes)
        default:
            break
        }
    }

    private func parseResponse(_ bytes: UnsafeRawBufferPointer) {
        switch response.parse(bytes) {
        case .needMore:
            return
        case .failure:
            fail(.badGateway, kind: .badResponse)
        case .complete(let consumed):
            let rest = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
            let status = response.status
            if status == 101 {
                if forwardedUpgrade {
                    becomeTunnel(rest)
                } else {
                    fail(.badGateway, kind: .badResponse)
                }
                return
            }
            if status < 200 {
                // Interim responses (100, 103) are relayed as they come; the final one follows.
                worker.scratch.removeAll(keepingCapacity: true)
                ResponseRewriter.writeDownstreamHead(
                    response: response, keepAlive: true, requestID: nil, into: &worker.scratch)
                worker.scratch.withUnsafeBytes { downstream.write($0) }
                response.reset()
                if !rest.isEmpty { parseResponse(rest) }
                return
            }
            deadline = 0
            let after = ForwardingDecision.downstream(
                request: request, forwardedUpgrade: false, response: response, draining: worker.draining)
            keepAliveAfter = after == .keepAlive && requestBody.isDone && !downstreamEOF
            responseBody.start(response.responseFraming(requestMethod: request.method))
            worker.scratch.removeAll(keepingCapacity: true)
            ResponseRewriter.writeDownstreamHead(
                response: response, keepAlive: keepAliveAfter, requestID: requestID, into: &worker.scratch)
            phase = .relaying
            responseStarted = true
            switch responseBody.take(rest) {
            case .invalid:
                abort(kind: .badResponse)
            case .body(let count, let ended):
                worker.scratch.withUnsafeBytes { head in
                    downstream.write(head, UnsafeRawBufferPointer(rebasing: rest[0..<count]))
                }
                worker.metrics.bytesDownstream.increment(shard: worker.index, by: UInt64(count))
                if ended { finishResponse(extraBytes: count < rest.count) }
            }
        }
    }

    private func relayResponseBody(_ bytes: UnsafeRawBufferPointer) {
        switch responseBody.take(bytes) {
        case .invalid:
            abort(kind: .badResponse)
        case .body(let count, let ended):
            if count > 0 {
                downstream.write(UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
                worker.metrics.bytesDownstream.increment(shard: worker.index, by: UInt64(count))
            }
            if ended { finishResponse(extraBytes: count < bytes.count) }
        }
    }

    private func finishResponse(extraBytes: Bool) {
        record(status: response.status)
        if let upstream {
            self.upstream = nil
            let reusable =
                !extraBytes && requestBody.isDone
                && ForwardingDecision.upstreamReusable(response: response, requestMethod: request.method)
            if reusable {
                let capacity = group.map { snapshot.groupKeepalive[$0] } ?? worker.dynamicKeepalive
                let keep = group.map { snapshot.groupKeepaliveTimeout[$0] } ?? Worker.dynamicKeepaliveTimeout
                worker.pool.put(
                    upstream, address: upstreamAddress, capacity: capacity, deadline: worker.loop.now &+ keep)
            } else {
                upstream.close()
            }
        }
        if keepAliveAfter {
            nextRequest()
        } else {
            phase = .closed
            downstream.closeWhenFlushed()
        }
    }

    /// Ready for the next request on this connection (pipelined bytes first).
    private func nextRequest() {
        // The parsers stay lent while requests keep coming; the worker's sweep takes them back once idle.
        if lentRequest { request.reset() }
        if lentResponse { response.reset() }
        phase = .idle
        snapshot = worker.snapshot
        generation &+= 1
        group = nil
        requestID = nil
        deadline = worker.loop.now &+ worker.clientKeepaliveTimeout
        if worker.draining {
            phase = .closed
            downstream.closeWhenFlushed()
            return
        }
        if !stash.isEmpty {
            let pending = takeStash()
            pending.withUnsafeBytes { downstreamBytes($0) }
        }
        if phase == .idle || phase == .head { downstream.resumeReading() }
    }

    /// Between requests: gives the parsers back (the sweep calls this for idle connections).
    func shedParsers() {
        if phase == .idle { returnParsers() }
    }

    /// Gives the parsers back to the worker: a connection between requests (or a tunnel) owns none.
    private func returnParsers() {
        if lentRequest {
            worker.returnParser(&request)
            lentRequest = false
        }
        if lentResponse {
            worker.returnParser(&response)
            lentResponse = false
        }
    }

    private func takeStash() -> [UInt8] {
        var pending: [UInt8] = []
        swap(&pending, &stash)
        return pending
    }

    // MARK: WebSocket

    private func becomeTunnel(_ rest: UnsafeRawBufferPointer) {
        guard let upstream else { return }
        self.upstream = nil
        record(status: 101)
        worker.scratch.removeAll(keepingCapacity: true)
        ResponseRewriter.writeDownstreamHead(
            response: response, keepAlive: false, webSocketUpgrade: true, requestID: requestID,
            into: &worker.scratch)
        worker.scratch.withUnsafeBytes { head in downstream.write(head, rest) }
        worker.metrics.bytesDownstream.increment(shard: worker.index, by: UInt64(rest.count))
        returnParsers()
        let label = upstreamHost.isEmpty ? (group.map { snapshot.groups[$0].name } ?? "") : upstreamHost
        let tunnel = Tunnel(worker: worker, downstream: downstream, upstream: upstream, label: label, peer: peer)
        if !stash.isEmpty {
            let pending = takeStash()
            pending.withUnsafeBytes { upstream.write($0) }
        }
        phase = .closed
        worker.remove(self)
        worker.add(tunnel)
        downstream.setHandler(tunnel)
        upstream.setHandler(tunnel)
        downstream.resumeReading()
        upstream.resumeReading()
    }

    // MARK: Answers and failures

    /// Answers with a canned response; `closing` also when the answer itself closes (ErrorResponse rules).
    private func answer(_ error: ErrorResponse, closing: Bool) {
        let keepAlive =
            !closing && !error.closesConnection && request.isComplete && request.keepAlive
            && !worker.draining && !downstreamEOF
        worker.scratch.removeAll(keepingCapacity: true)
        error.write(
            keepAlive: keepAlive, requestID: requestID, includeBody: request.method != .head, into: &worker.scratch)
        worker.scratch.withUnsafeBytes { downstream.write($0) }
        record(status: error.status)
        finishLocally(keepAlive: keepAlive)
    }

    private func answerRoute(_ index: Int) {
        guard case .respond(let status, let body) = snapshot.plans[index].target else { return }
        let keepAlive = requestBody.isDone && request.keepAlive && !worker.draining && !downstreamEOF
        worker.scratch.removeAll(keepingCapacity: true)
        if body.isEmpty, let canned = ErrorResponse(rawValue: status) {
            canned.write(
                keepAlive: keepAlive, requestID: nil, includeBody: request.method != .head, into: &worker.scratch)
        } else {
            ErrorResponse.writeRouteResponse(
                status: status, body: body, keepAlive: keepAlive, requestID: nil,
                includeBody: request.method != .head, into: &worker.scratch)
        }
        worker.scratch.withUnsafeBytes { downstream.write($0) }
        record(status: status)
        finishLocally(keepAlive: keepAlive)
    }

    private func finishLocally(keepAlive: Bool) {
        if keepAlive {
            nextRequest()
        } else {
            phase = .closed
            downstream.closeWhenFlushed()
        }
    }

    /// An upstream failure before any response byte went downstream: answer `error`; after: cut the connection.
    private func fail(_ error: ErrorResponse, kind: UpstreamErrorKind) {
        worker.metrics.upstreamErrors.labels(kind.rawValue).increment(shard: worker.index)
        closeUpstream()
        if responseStarted {
            abort(kind: nil)
            return
        }
        answer(error, closing: !requestBody.isDone)
    }

    /// A client-side problem in the body (bad chunk, too large): answer if nothing was sent yet, else cut.
    private func answerOrAbort(_ error: ErrorResponse) {
        closeUpstream()
        if responseStarted {
            abort(kind: nil)
        } else {
            answer(error, closing: true)
        }
    }

    /// Ends both connections at once (a response cannot be completed).
    private func abort(kind: UpstreamErrorKind?) {
        if let kind { worker.metrics.upstreamErrors.labels(kind.rawValue).increment(shard: worker.index) }
        closeUpstream()
        phase = .closed
        downstream.close()
    }

    private func closeUpstream() {
        connector?.cancel()
        connector = nil
        generation &+= 1
        if let upstream {
            self.upstream = nil
            upstream.close()
        }
    }

    private func record(status: Int) {
        worker.countRequest(route: route, status: status, snapshot: snapshot)
        worker.metrics.requestDuration.observe(shard: worker.index, Double(worker.loop.now &- startedAt) / 1e9)
    }

    /// The sweep found the phase's deadline passed.
    func deadlineExpired() {
        deadline = 0
        switch phase {
        case .idle:
            phase = .closed
            downstream.close()
        case .head:
            answer(.requestTimeout, closing: true)
        case .sending:
            // The client stopped sending its body (a slow-body attack, or a dead client).
            answerOrAbort(.requestTimeout)
        case .awaiting:
            fail(.gatewayTimeout, kind: .responseTimeout)
        default:
            break
        }
    }

    /// Drain: an idle connection closes now; a busy one finishes its response with `Connection: close`.
    func drain() {
        if phase == .idle {
            phase = .closed
            downstream.close()
        }
    }

    // MARK: Connection events

    func readEOF(_ connection: Connection) {
        if connection === downstream {
            switch phase {
            case .idle, .head:
                phase = .closed
                downstream.close()
            case .sending:
                abort(kind: nil)
            default:
                // Half-closed after a complete request: answer it, then close.
                downstreamEOF = true
            }
        } else if connection === upstream {
            upstreamEnded()
        } else {
            connection.close()
        }
    }

    func writabilityChanged(_ connection: Connection, writable: Bool) {
        if connection === downstream {
            if writable { upstream?.resumeReading() } else { upstream?.pauseReading() }
        } else if connection === upstream {
            // While the upstream is backed up, the client is not read: that pause is not the client's.
            if writable {
                if phase == .sending {
                    downstream.resumeReading()
                    deadline = worker.loop.now &+ worker.clientHeaderTimeout
                }
            } else {
                downstream.pauseReading()
                if phase == .sending { deadline = 0 }
            }
        }
    }

    func closed(_ connection: Connection, error: Errno?) {
        if connection === downstream {
            phase = .closed
            closeUpstream()
            returnParsers()
            worker.remove(self)
            worker.connectionClosed(peer: peer)
        } else if connection === upstream {
            upstreamEnded()
        }
    }

    /// The upstream closed (EOF or error) while this exchange used it.
    private func upstreamEnded() {
        guard let upstream else { return }
        switch phase {
        case .relaying:
            if responseBody.kind == .untilClose {
                responseBody.finishAtClose()
                self.upstream = nil
                upstream.close()
                keepAliveAfter = false
                finishResponse(extraBytes: false)
            } else {
                abort(kind: .reset)
            }
        case .sending, .awaiting:
            // A pooled connection the server closed while idle: try once more on a new one if nothing of the
            // request body had to be streamed (the request can be sent again unchanged).
            if reusedUpstream && !retried && requestBody.kind == .none && response.isComplete == false {
                self.upstream = nil
                upstream.close()
                retried = true
                generation &+= 1
                reusedUpstream = false
                connectFresh()
            } else {
                fail(.badGateway, kind: .reset)
            }
        default:
            self.upstream = nil
            upstream.close()
        }
    }

    /// Opens a new connection to `upstreamAddress`.
    private func connectFresh() {
        phase = .connecting
        connectStartedAt = worker.loop.now
        let timeout = group.map { snapshot.groupConnectTimeout[$0] } ?? snapshot.connectTimeout
        do {
            connector = try Connector.connect(
                loop: worker.loop, to: upstreamAddress, timeout: timeout, handler: self, tag: generation)
        } catch {
            fail(.badGateway, kind: .connectRefused)
        }
    }

    func loopStopping() {}
}
