// One downstream HTTP connection (the session): keep-alive, pipelining, parser lending, and its current request.
import DNS
import EventLoop
import Forwarding
import GatewayConfig
import HTTP1
import Resolver
import Routing
import Sys

/// The interim answer to `Expect: 100-continue` (a generic type holds no static stored property).
let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

/// The life of one downstream connection until it closes or becomes a WebSocket tunnel.
///
/// The session holds what outlives a request: the connection, the parsers lent by the worker, the bytes that
/// arrived before they could be used (`stash`, consumed by offset) and whether the client half-closed. Everything
/// about the request itself is in `context`, a `RequestContext` replaced whole when the next request starts, and
/// `phase`, a `RequestPhase` whose transitions on failures, deadlines and EOFs are decided by `PhaseRules` (pure,
/// tested without sockets). This class only carries the decisions out on its connections.
///
/// Pipelined requests are a loop over an offset of the input (`consume`), never a recursion; the bytes left when a
/// request must wait (for an upstream, or for the client to read what it was already sent) stay in the stash and
/// reading pauses; the stash is empty again, and freed, once consumed.
///
/// Generic over its `Transport` (the connections and how upstreams are reached) so that the phase logic runs
/// against a fake in tests; the gateway's is `LoopTransport` (`LoopExchange`, see `Transport.swift`).
final class Exchange<Transport: ExchangeTransport> {
    typealias Link = Transport.Link
    // Strong and `let`: a call through it borrows the reference (an `unowned(unsafe)` one is retained and released
    // around every call made through it). The cycle with `worker.exchanges` ends when the downstream closes, which
    // the loop's stop also does (`loopStopping` closes every connection).
    let worker: Worker
    var downstream: Link! {
        didSet { downstreamRef = downstream.map { Unmanaged.passUnretained($0) } }
    }
    /// `downstream` without a reference count. Lifetime: `downstream` is set once, before any event reaches the
    /// exchange, is never replaced or cleared, and holds the link strongly for the exchange's whole life, so the
    /// link outlives every call made through this (a call through the strong property retains and releases it).
    private var downstreamRef: Unmanaged<Link>?
    let peer: SocketAddress
    let transport: Transport
    /// Index in `worker.exchanges`.
    var slot = -1
    private(set) var phase: RequestPhase {
        get { storedPhase }
        // Inlined where the phase is set, so that the new phase's kind is known there (worked out from the stored
        // enum with payloads, as an observer did, it was a chain of compares per change).
        @inline(__always) set {
            let new = newValue.kind
            storedPhase = newValue
            if new != phaseKind {
                worker.phaseChanged(from: phaseKind, to: new)
                phaseKind = new
            }
        }
    }
    private var storedPhase: RequestPhase = .idle
    /// `phase.kind`, kept with it: telling the cases of an enum with payloads apart is a chain of compares.
    private(set) var phaseKind: RequestPhase.Kind = .idle
    /// When the current phase times out (monotonic ns; 0: never). Setting it is a store and a compare: the timer on
    /// the loop's heap is moved only when the deadline comes earlier than `armedAt` (`Worker.deadlineMoved`); one
    /// that fires before the deadline sets itself again for it (`Worker.exchangeTimerFired`).
    var deadline: UInt64 {
        get { storedDeadline }
        // Inlined where it is set (five times per request; an observer was a call each time, and `deadline = 0` is
        // then a store).
        @inline(__always) set {
            storedDeadline = newValue
            if newValue != 0 && (armedAt == 0 || newValue < armedAt) { worker.deadlineMoved(self) }
        }
    }
    private var storedDeadline: UInt64 = 0
    /// When `deadlineTimer` fires (0: not armed). Invariant: while `deadline` is not 0 and the exchange is in the
    /// worker's books, `armedAt` is not 0 and not after `deadline`.
    var armedAt: UInt64 = 0
    var deadlineTimer = Deadline()

    private var context = RequestContext()
    /// The current request's rendered dynamic (per-pod) upstream host; nil for a named upstream. Part of the
    /// request (cleared with `context`), kept beside it so that `RequestContext` is plain data: replacing it whole
    /// then destroys nothing, where a String in it cost a call into the runtime per request, even when empty.
    private var dynamicHost: String?
    private var snapshot: Snapshot
    private var request: HeadParser
    private var response = HeadParser(kind: .response, reserving: false)
    /// Whether `request` / `response` are parsers lent by the worker (else the memory-less placeholders).
    private var lentRequest = false
    private var lentResponse = false
    /// Downstream bytes not consumed yet: `stash[stashOffset...]`.
    private var stash: [UInt8] = []
    private var stashOffset = 0
    /// A request body read and checked whole before the upstream sees the request (framing kept as received).
    private var body: [UInt8] = []
    private var upstream: Link?
    private var connector: Transport.Attempt?
    /// Tags asynchronous answers (DNS, connect) with the attempt they belong to.
    private var generation: UInt64 = 0
    /// The client half-closed: the current request is answered, then the connection closes.
    private var downstreamEOF = false
    /// Set while `consume` runs on the stash, so that nothing consumes it twice.
    private var consuming = false
    /// The downstream's unsent byte count at the last deadline, to tell a slow reader from a stalled one.
    private var pendingAtDeadline = 0

    init(worker: Worker, peer: SocketAddress, transport: Transport) {
        self.worker = worker
        self.peer = peer
        self.transport = transport
        snapshot = worker.snapshot
        request = HeadParser(kind: .request, reserving: false)
    }

    private var now: UInt64 { worker.loop.now }

    /// Calls `body` with the downstream link, not retained around the call (see `downstreamRef`).
    @inline(__always)
    private func withDownstream<Result>(_ body: (Link) -> Result) -> Result {
        downstreamRef.unsafelyUnwrapped._withUnsafeGuaranteedRef(body)
    }

    /// Calls `body` with the snapshot this request runs under, not retained around the call. `body` must not reach
    /// `nextRequest` (the only place `snapshot` is replaced): then the exchange's strong reference keeps the
    /// snapshot alive throughout.
    @inline(__always)
    private func withSnapshot<Result>(_ body: (Snapshot) -> Result) -> Result {
        Unmanaged.passUnretained(snapshot)._withUnsafeGuaranteedRef(body)
    }

    /// Calls `body` with the upstream link, which must be set, not retained around the call. `body` must not
    /// replace or clear `upstream` (nor reach what does): then the exchange's strong reference keeps the link alive
    /// throughout. (A `Connection`'s writes and pauses never call back into a close: errors close it a turn later.)
    @inline(__always)
    private func withUpstream<Result>(_ body: (Link) -> Result) -> Result {
        Unmanaged.passUnretained(upstream.unsafelyUnwrapped)._withUnsafeGuaranteedRef(body)
    }

    /// Initializes `slot`, which holds nil (nothing to release), with `link`: a store released the old value, nil
    /// or not.
    @inline(__always)
    private static func move(_ link: consuming Link, intoNil slot: UnsafeMutablePointer<Link?>) {
        slot.initialize(to: link)
    }

    /// Whether `link` is the downstream link.
    @inline(__always)
    private func isDownstream(_ link: Link) -> Bool {
        Unmanaged.passUnretained(link).toOpaque() == downstreamRef?.toOpaque()
    }

    /// Calls `body` with `parser` (one of this exchange's stored parsers) as an `inout` argument. Passed straight
    /// from the stored property to a function of another module, a parser is copied (its arrays retained and
    /// released), since the compiler cannot prove the call leaves the property alone; an `inout` argument is
    /// exclusive, so it is borrowed in place. `body` must not touch the exchange's parsers otherwise.
    @inline(__always)
    private static func inPlace<Result>(_ parser: inout HeadParser, _ body: (inout HeadParser) -> Result) -> Result {
        body(&parser)
    }

    // MARK: Downstream bytes

    /// Bytes read from `link` (the downstream, or the current upstream).
    func bytesArrived(on link: Link, _ bytes: UnsafeRawBufferPointer) {
        if isDownstream(link) {
            downstreamBytes(bytes)
        } else if link === upstream {
            upstreamBytes(bytes)
        }
    }

    private func downstreamBytes(_ bytes: UnsafeRawBufferPointer) {
        if phaseKind.isFinal { return }
        if stashOffset < stash.count || !phaseKind.consumesInput {
            stash.append(contentsOf: bytes)
            consumeStash()
        } else {
            let used = consume(bytes)
            if used < bytes.count && !phaseKind.isFinal {
                stash.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
            }
        }
        updateReading()
    }

    /// Consumes as many requests (heads, bodies) of `bytes` as can go on now; returns how many bytes it used.
    /// A loop over an offset: a thousand pipelined requests answered locally are a thousand turns, not frames.
    private func consume(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            let used: Int
            switch phase {
            case .idle:
                // Back-pressure is a level: while the client has not read what it was sent, the next request waits.
                if withDownstream({ $0.isAboveHighWater }) { return offset }
                used = consumeHead(rest)
            case .head:
                used = consumeHead(rest)
            case .body:
                used = bufferBody(rest)
            case .sending:
                used = streamBody(rest)
            default:
                return offset
            }
            if used == 0 { return offset }
            offset += used
        }
        return offset
    }

    /// Runs `consume` over the stash (after an upstream answered, or the client read its pending bytes).
    private func consumeStash() {
        guard !consuming, stashOffset < stash.count, phaseKind.consumesInput else { return }
        consuming = true
        let pending = stash
        let used = pending.withUnsafeBytes { consume(UnsafeRawBufferPointer(rebasing: $0[stashOffset...])) }
        consuming = false
        stashOffset += used
        if stashOffset >= stash.count || phaseKind.isFinal {
            stash = []
            stashOffset = 0
        }
    }

    /// Reading the client goes on only while its bytes can be used at once and it reads what it is sent.
    private func updateReading() {
        guard !phaseKind.isFinal else { return }
        let waiting = stashOffset < stash.count
        switch phase {
        case .idle, .head, .body:
            withDownstream { downstream in
                if waiting || downstream.isAboveHighWater {
                    downstream.pauseReading()
                } else {
                    downstream.resumeReading()
                }
            }
        case .sending:
            let pause = waiting || (upstream?.isAboveHighWater ?? false)
            withDownstream { downstream in
                if pause { downstream.pauseReading() } else { downstream.resumeReading() }
            }
        default:
            withDownstream { $0.pauseReading() }
        }
    }

    /// After an asynchronous event moved the request on: use what waited, then read again if there is room.
    private func resumeDownstream() {
        consumeStash()
        updateReading()
    }

    // MARK: Head

    private func consumeHead(_ bytes: UnsafeRawBufferPointer) -> Int {
        if case .idle = phase {
            if !lentRequest {
                worker.lendRequestParser(into: &request)
                lentRequest = true
            }
            // Answers before routing (400, 408, 414, 431, 505) count under no route, timed from the first byte.
            // The context is already a fresh one (from `init` or `nextRequest`).
            context.startedAt = now
            phase = .head
            deadline = now &+ worker.clientHeaderTimeout
        }
        switch request.parse(bytes) {
        case .needMore:
            context.bytesIn &+= UInt64(bytes.count)
            return bytes.count
        case .failure(let error):
            context.bytesIn &+= UInt64(bytes.count)
            answer(ErrorResponse(error), closing: true)
            return bytes.count
        case .complete(let consumed):
            context.bytesIn &+= UInt64(consumed)
            dispatch()
            return consumed
        }
    }

    /// The head is complete: route it.
    private func dispatch() {
        context.startedAt = now
        deadline = 0
        let framing = request.bodyFraming
        if case .contentLength(let length) = framing, length > withSnapshot({ $0.bodySizeLimit }) {
            answer(.contentTooLarge, closing: true)
            return
        }
        context.requestBody.start(framing)
        let isUpgrade = request.isWebSocketUpgrade
        // Through an unretained reference (`snapshot.routes` read in the closure was copied, each of its arrays
        // retained) and the head in place (a `path` slice retained the parser's storage).
        let decision = withSnapshot { current in
            worker.withMatcher { matcher in
                Self.inPlace(&request) { request in
                    let pathRange = request.pathRange
                    return request.withUnsafeHeadBytes { head in
                        current.routes.decide(
                            path: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: head[pathRange])),
                            isWebSocketUpgrade: isUpgrade, matcher: matcher)
                    }
                }
            }
        }
        worker.matcherHolder = ObjectIdentifier(self)
        switch decision {
        case .notFound:
            answer(.notFound, closing: !context.requestBody.isDone)
        case .upgradeRequired(let index):
            context.route = index
            answer(.upgradeRequired, closing: !context.requestBody.isDone)
        case .respond(let index):
            context.route = index
            answerRoute(index)
        case .proxy(let index):
            context.route = index
            let buffering = withSnapshot { index < $0.requestBuffering.count ? $0.requestBuffering[index] : true }
            context.streaming = !buffering
            if context.requestBody.isDone || context.streaming {
                proxy()
            } else {
                // Request buffering: the body is read and checked whole before any upstream sees the request.
                phase = .body
                deadline = now &+ worker.clientHeaderTimeout
                if let expect = request.value(ofField: "expect"), Self.isContinue(expect) {
                    continueResponse.withUnsafeBytes { downstream.write($0) }
                }
            }
        }
    }

    private static func isContinue(_ value: ArraySlice<UInt8>) -> Bool {
        let expected = "100-continue".utf8
        guard value.count == expected.count else { return false }
        return zip(value, expected).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }

    // MARK: Request body

    /// Request buffering: takes body bytes into `body` until the body ends; then the request goes upstream.
    private func bufferBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        switch context.requestBody.take(bytes) {
        case .invalid:
            answer(.badRequest, closing: true)
            return bytes.count
        case .body(let count, let ended):
            // The limit counts body bytes; the framing around them may add at most as much again.
            if context.requestBody.total > snapshot.bodySizeLimit
                || UInt64(body.count + count) > 2 &* snapshot.bodySizeLimit &+ 65536
            {
                answer(.contentTooLarge, closing: true)
                return bytes.count
            }
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
            context.bytesIn &+= UInt64(count)
            deadline = now &+ worker.clientHeaderTimeout
            if ended { proxy() }
            return count
        }
    }

    /// `request_buffering off`: forwards body bytes as they come.
    private func streamBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let upstream else { return 0 }
        switch context.requestBody.take(bytes) {
        case .invalid:
            clientBodyFailed(.badRequest)
            return bytes.count
        case .body(let count, let ended):
            if context.requestBody.total > snapshot.bodySizeLimit {
                clientBodyFailed(.contentTooLarge)
                return bytes.count
            }
            if count > 0 {
                upstream.write(UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
                worker.metrics.bytesUpstream.increment(ownShard: worker.index, by: UInt64(count))
                context.bytesIn &+= UInt64(count)
                deadline = now &+ worker.clientHeaderTimeout
            }
            if ended {
                phase = .awaiting
                deadline = now &+ worker.upstreamResponseTimeout
            }
            return count
        }
    }

    // MARK: Choosing and reaching the upstream

    private func proxy() {
        let plan = snapshot.plans[context.route]
        context.forwardedUpgrade = plan.websocket && request.isWebSocketUpgrade
        generation &+= 1
        switch plan.target {
        case .group(let groupIndex):
            guard groupIndex >= 0 else {
                upstreamFailed(.dns)
                return
            }
            context.group = groupIndex
            pickAndConnect()
        case .dynamic(let host, let port):
            context.group = nil
            context.dynamicPort = port
            var name: [UInt8] = []
            request.path.withUnsafeBytes { path in
                host.render(captures: worker.matcher, path: path, into: &name)
            }
            let host = String(decoding: name, as: UTF8.self)
            dynamicHost = host
            resolve(host)
        case .respond:
            answerRoute(context.route)
        }
    }

    /// A named upstream: the next server in turn, and one of its addresses not skipped by passive health.
    private func pickAndConnect() {
        guard let group = context.group else { return }
        let time = now
        let (server, address) = withSnapshot { snapshot in
            worker.withGroup(group, of: snapshot) { upstreamGroup -> (Int, SocketAddress?) in
                let server = upstreamGroup.pickServer()
                return (server, upstreamGroup.address(server: server, now: time))
            }
        }
        context.server = server
        if let address {
            connect(to: address)
        } else {
            resolve(withSnapshot { worker.group(group, of: $0) }.servers[server].host)
        }
    }

    private func resolve(_ name: String) {
        phase = .resolving(name: name)
        // The resolver answers within its own timeout × attempts; this is the backstop.
        deadline = now &+ worker.upstreamResponseTimeout
        let tag = generation
        if let outcome = transport.resolve(name, for: self, tag: tag) {
            resolved(outcome, name: name, tag: tag)
        }
    }

    func resolved(_ outcome: ResolveOutcome, name: String, tag: UInt64) {
        guard tag == generation, case .resolving = phase else { return }
        switch outcome {
        case .addresses(let addresses, let ttl) where !addresses.isEmpty:
            if let group = context.group {
                let upstreamGroup = worker.group(group, of: snapshot)
                upstreamGroup.update(server: context.server, addresses: addresses, ttl: ttl, now: now)
                connect(to: upstreamGroup.staleAddress(server: context.server, now: now)!)
            } else {
                // The resolver already hands successive lookups the addresses in turn: take its first.
                connect(to: SocketAddress(addresses[0], port: context.dynamicPort))
            }
        default:
            // A named upstream whose refresh failed keeps its last addresses.
            if let group = context.group,
                let address = worker.group(group, of: snapshot).staleAddress(server: context.server, now: now)
            {
                connect(to: address)
            } else {
                upstreamFailed(.dns)
            }
        }
        resumeDownstream()
    }

    private func connect(to address: SocketAddress) {
        context.upstreamAddress = address
        context.attempts += 1
        if let pooled = transport.takeIdle(address, for: self) {
            // Moved in: a copy retained it and released the binding. A store also releases the old value, nil
            // (as it always is here) included: into nil the link is moved without one.
            if upstream == nil {
                Self.move(pooled, intoNil: &upstream)
            } else {
                upstream = consume pooled
            }
            context.reusedUpstream = true
            sendRequest()
            return
        }
        context.reusedUpstream = false
        connectFresh(to: address)
    }

    /// Opens a new connection to `address`; the connector's timer is this phase's deadline.
    private func connectFresh(to address: SocketAddress) {
        phase = .connecting(address)
        deadline = 0
        context.connectStartedAt = now
        let timeout = context.group.map { snapshot.groupConnectTimeout[$0] } ?? snapshot.connectTimeout
        do {
            connector = try transport.connect(to: address, timeout: timeout, for: self, tag: generation)
        } catch {
            upstreamFailed(.connectRefused)
        }
    }

    /// Whether a connect answer tagged `tag` is the one this exchange waits for (else it is stale: close it).
    func isCurrentConnect(tag: UInt64) -> Bool {
        guard tag == generation, case .connecting = phase else { return false }
        return true
    }

    /// The current connect attempt ended (`isCurrentConnect` said so).
    func connectAnswered(_ answer: ConnectAnswer<Link>) {
        connector = nil
        switch answer {
        case .connected(let link):
            upstream = link
            worker.metrics.connectDuration.observe(
                ownShard: worker.index, Double(now &- context.connectStartedAt) / 1e9)
            sendRequest()
        case .refused:
            upstreamFailed(.connectRefused)
        case .timedOut:
            upstreamFailed(.connectTimeout)
        }
        resumeDownstream()
    }

    // MARK: Request upstream

    private func sendRequest() {
        guard upstream != nil else { return }
        // The matcher is shared by the loop: if another request matched since this one's `dispatch` (while this
        // one waited for DNS or a connect), match again so it holds this request's captures.
        // (In place, as in `dispatch`: `snapshot.routes` read here was a copy, each of its arrays retained.)
        if worker.matcherHolder != ObjectIdentifier(self) {
            withSnapshot { current in
                worker.withMatcher { matcher in
                    Self.inPlace(&request) { request in
                        let pathRange = request.pathRange
                        request.withUnsafeHeadBytes { head in
                            _ = current.routes.match(
                                path: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: head[pathRange])),
                                matcher: matcher)
                        }
                    }
                }
            }
            worker.matcherHolder = ObjectIdentifier(self)
        }
        let group = context.group
        let server = context.server
        let route = context.route
        let memory = worker.headScratch
        var headCount = -1
        withSnapshot { current in
            worker.withMatcher { matcher in
                worker.withClientAddress(peer) { address in
                    Self.inPlace(&request) { request in
                        let bound = current.rewriter.upstreamHeadBound(
                            request: request, route: route, clientAddressCount: address.count)
                        if bound <= memory.count {
                            var out = HeadOutput(memory.baseAddress!)
                            current.rewriter.writeUpstreamHead(
                                request: request, route: route, server: group == nil ? 0 : server,
                                matcher: matcher, clientAddress: address, scheme: .http,
                                requestIDs: &worker.requestIDs, requestID: &context.requestID, into: &out)
                            headCount = out.count
                            return
                        }
                        worker.scratch.removeAll(keepingCapacity: true)
                        context.requestID = current.rewriter.writeUpstreamHead(
                            request: request, route: route, server: group == nil ? 0 : server, matcher: matcher,
                            clientAddress: address, scheme: .http, requestIDs: &worker.requestIDs, into: &worker.scratch
                        )
                    }
                }
            }
        }
        if body.isEmpty {
            withHead(headCount) { head in withUpstream { $0.write(head) } }
        } else {
            withHead(headCount) { head in body.withUnsafeBytes { bytes in withUpstream { $0.write(head, bytes) } } }
            worker.metrics.bytesUpstream.increment(ownShard: worker.index, by: UInt64(body.count))
        }
        if lentResponse {
            response.reset()
        } else {
            worker.lendResponseParser(into: &response)
            lentResponse = true
        }
        if context.requestBody.isDone {
            phase = .awaiting
            deadline = now &+ worker.upstreamResponseTimeout
        } else {
            phase = .sending
            // A body must keep coming: `client_header` is also the longest pause between two of its reads.
            deadline = now &+ worker.clientHeaderTimeout
        }
        // Attached to a client that has not read what it was sent: do not read a response for it yet.
        applyBackPressure()
    }

    /// The level check: the upstream is read only while the client's unsent bytes are below the high-water mark.
    private func applyBackPressure() {
        guard upstream != nil else { return }
        let pause = withDownstream { $0.isAboveHighWater }
        withUpstream { if pause { $0.pauseReading() } else { $0.resumeReading() } }
    }

    /// Calls `body` with the head just written: the first `count` bytes of `worker.headScratch`, or
    /// `worker.scratch` when `count` is -1 (the head's bound did not fit the raw memory).
    @inline(__always)
    private func withHead<Result>(_ count: Int, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        if count >= 0 { return body(UnsafeRawBufferPointer(rebasing: worker.headScratch[0..<count])) }
        return worker.scratch.withUnsafeBytes(body)
    }

    /// Writes the downstream head of `response` into `worker.headScratch` and returns its byte count, or into
    /// `worker.scratch` when its bound does not fit there and returns -1 (see `withHead`).
    /// The request's id (`context.requestID`) is read in place.
    private func writeResponseHead(keepAlive: Bool, webSocketUpgrade: Bool) -> Int {
        let memory = worker.headScratch
        return Self.inPlace(&response) { response in
            if ResponseRewriter.downstreamHeadBound(response: response) <= memory.count {
                var out = HeadOutput(memory.baseAddress!)
                ResponseRewriter.writeDownstreamHead(
                    response: response, keepAlive: keepAlive, webSocketUpgrade: webSocketUpgrade,
                    requestID: &context.requestID, into: &out)
                return out.count
            }
            worker.scratch.removeAll(keepingCapacity: true)
            ResponseRewriter.writeDownstreamHead(
                response: response, keepAlive: keepAlive, webSocketUpgrade: webSocketUpgrade,
                requestID: context.requestID, into: &worker.scratch)
            return -1
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
            upstreamFailed(.badResponse)
        case .complete(let consumed):
            let rest = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
            switch PhaseRules.responseHead(status: response.status, forwardedUpgrade: context.forwardedUpgrade) {
            case .invalid:
                upstreamFailed(.badResponse)
            case .tunnel:
                becomeTunnel(rest)
            case .interim:
                // Interim responses (100, 103) are relayed as they come; the final one follows. A 100 to a body
                // the gateway already answered with its own 100 (request buffering) is not relayed again.
                if !(response.status == 100 && !body.isEmpty) {
                    worker.scratch.removeAll(keepingCapacity: true)
                    ResponseRewriter.writeDownstreamHead(
                        response: response, keepAlive: true, requestID: nil, into: &worker.scratch)
                    worker.scratch.withUnsafeBytes { downstream.write($0) }
                    context.bytesOut &+= UInt64(worker.scratch.count)
                    context.interimRelayed = true
                }
                response.reset()
                if !rest.isEmpty { parseResponse(rest) }
            case .final:
                startResponse(rest)
            }
        }
    }

    private func startResponse(_ rest: UnsafeRawBufferPointer) {
        if let group = context.group, let address = context.upstreamAddress {
            withSnapshot { snapshot in worker.withGroup(group, of: snapshot) { $0.recordSuccess(address) } }
        }
        releaseBody()
        // From the parsers' values (passed whole from their stored properties, the parsers were copied).
        let method = request.method
        let framing = response.responseFraming(requestMethod: method)
        let after = ForwardingDecision.downstream(
            requestKeepAlive: request.keepAlive, forwardedUpgrade: false, responseStatus: response.status,
            responseFraming: framing, draining: worker.draining)
        context.keepAliveAfter = after == .keepAlive && context.requestBody.isDone && !downstreamEOF
        context.responseBody.start(framing)
        let headCount = writeResponseHead(keepAlive: context.keepAliveAfter, webSocketUpgrade: false)
        phase = .relaying
        context.responseStarted = true
        deadline = now &+ worker.upstreamResponseTimeout
        pendingAtDeadline = withDownstream { $0.pendingByteCount }
        switch context.responseBody.take(rest) {
        case .invalid:
            abort(.badResponse)
        case .body(let count, let ended):
            let headBytes = withHead(headCount) { head in
                withDownstream { $0.write(head, UnsafeRawBufferPointer(rebasing: rest[0..<count])) }
                return head.count
            }
            context.bytesOut &+= UInt64(headBytes + count)
            worker.metrics.bytesDownstream.increment(ownShard: worker.index, by: UInt64(count))
            if ended { finishResponse(extraBytes: count < rest.count) }
        }
    }

    private func relayResponseBody(_ bytes: UnsafeRawBufferPointer) {
        switch context.responseBody.take(bytes) {
        case .invalid:
            abort(.badResponse)
        case .body(let count, let ended):
            if count > 0 {
                withDownstream { $0.write(UnsafeRawBufferPointer(rebasing: bytes[0..<count])) }
                context.bytesOut &+= UInt64(count)
                worker.metrics.bytesDownstream.increment(ownShard: worker.index, by: UInt64(count))
                deadline = now &+ worker.upstreamResponseTimeout
            }
            if ended { finishResponse(extraBytes: count < bytes.count) }
        }
    }

    private func finishResponse(extraBytes: Bool) {
        record(status: response.status)
        if let upstream = upstream.take() {
            let reusable =
                !extraBytes && context.requestBody.isDone
                && Self.inPlace(&response) { [method = request.method] in
                    ForwardingDecision.upstreamReusable(response: $0, requestMethod: method)
                }
            if reusable, let address = context.upstreamAddress {
                let group = context.group
                let capacity = group.map { snapshot.groupKeepalive[$0] } ?? worker.dynamicKeepalive
                let keep = group.map { snapshot.groupKeepaliveTimeout[$0] } ?? Worker.dynamicKeepaliveTimeout
                transport.putIdle(upstream, address: address, capacity: capacity, deadline: now &+ keep, from: self)
            } else {
                upstream.close()
            }
        }
        // A client that half-closed while the response was relayed gets no next request: close once it is sent.
        if context.keepAliveAfter && !downstreamEOF {
            nextRequest()
            resumeDownstream()
        } else {
            closeDownstream()
        }
    }

    /// Ready for the next request on this connection: a fresh context. Pipelined bytes are consumed by the caller's
    /// loop (or by `resumeDownstream`), never from here.
    private func nextRequest() {
        // The parsers stay lent while requests keep coming; the worker's sweep takes them back once idle.
        if lentRequest { request.reset() }
        if lentResponse { response.reset() }
        // Replaced only after a reload (assigning the same one retained and released it).
        if snapshot !== worker.snapshot { snapshot = worker.snapshot }
        generation &+= 1
        context = RequestContext()
        if dynamicHost != nil { dynamicHost = nil }
        releaseBody()
        phase = .idle
        deadline = now &+ worker.clientKeepaliveTimeout
        if worker.draining { closeDownstream() }
    }

    private func releaseBody() {
        if body.capacity > 0 { body = [] }
    }

    /// Between requests: gives the parsers back (the sweep calls this for idle connections).
    func shedParsers() {
        if case .idle = phase { returnParsers() }
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

    // MARK: WebSocket

    private func becomeTunnel(_ rest: UnsafeRawBufferPointer) {
        guard let upstream else { return }
        self.upstream = nil
        // The upgrade's access log line is the tunnel's, written when it closes.
        record(status: 101, log: false)
        let headCount = writeResponseHead(keepAlive: false, webSocketUpgrade: true)
        let headBytes = withHead(headCount) { head in
            downstream.write(head, rest)
            return head.count
        }
        worker.metrics.bytesDownstream.increment(ownShard: worker.index, by: UInt64(rest.count))
        returnParsers()
        let group = context.group
        let label = dynamicHost ?? (group.map { snapshot.groups[$0].name } ?? "")
        var log: TunnelLogFields?
        if worker.accessLog != nil {
            let route = context.route
            log = TunnelLogFields(
                route: route >= 0 && route < snapshot.routeLabels.count ? snapshot.routeLabels[route] : "-",
                upstream: context.upstreamAddress, startedAt: context.startedAt, bytesIn: context.bytesIn,
                bytesOut: UInt64(headBytes + rest.count))
        }
        // Bytes the client sent after its upgrade request are the tunnel's first.
        if stashOffset < stash.count {
            stash.withUnsafeBytes { upstream.write(UnsafeRawBufferPointer(rebasing: $0[stashOffset...])) }
        }
        stash = []
        stashOffset = 0
        phase = .closed
        deadline = 0
        transport.handOver(self, downstream: downstream, upstream: upstream, label: label, log: log)
    }

    // MARK: Answers and failures

    /// Answers with a canned response; `closing` also when the answer itself closes (ErrorResponse rules).
    private func answer(_ error: ErrorResponse, closing: Bool) {
        let keepAlive =
            !closing && !error.closesConnection && request.isComplete && request.keepAlive
            && !worker.draining && !downstreamEOF
        worker.scratch.removeAll(keepingCapacity: true)
        error.write(
            keepAlive: keepAlive, requestID: context.requestID, includeBody: request.method != .head,
            into: &worker.scratch)
        worker.scratch.withUnsafeBytes { downstream.write($0) }
        context.bytesOut &+= UInt64(worker.scratch.count)
        record(status: error.status)
        finishLocally(keepAlive: keepAlive)
    }

    private func answerRoute(_ index: Int) {
        guard case .respond(let status, let routeBody) = snapshot.plans[index].target else { return }
        let keepAlive = context.requestBody.isDone && request.keepAlive && !worker.draining && !downstreamEOF
        worker.scratch.removeAll(keepingCapacity: true)
        if routeBody.isEmpty, let canned = ErrorResponse(rawValue: status) {
            canned.write(
                keepAlive: keepAlive, requestID: nil, includeBody: request.method != .head, into: &worker.scratch)
        } else {
            ErrorResponse.writeRouteResponse(
                status: status, body: routeBody, keepAlive: keepAlive, requestID: nil,
                includeBody: request.method != .head, into: &worker.scratch)
        }
        worker.scratch.withUnsafeBytes { downstream.write($0) }
        context.bytesOut &+= UInt64(worker.scratch.count)
        record(status: status)
        finishLocally(keepAlive: keepAlive)
    }

    private func finishLocally(keepAlive: Bool) {
        if keepAlive {
            nextRequest()
        } else {
            closeDownstream()
        }
    }

    /// Closes once the answer is sent; `closing` has its own deadline, so a client that never reads cannot keep
    /// the connection (and its unsent bytes) forever.
    private func closeDownstream() {
        closeUpstream()
        phase = .closing
        deadline = now &+ worker.clientHeaderTimeout
        downstream.closeWhenFlushed()
    }

    /// An upstream attempt failed: retry, answer, or cut, as `PhaseRules.upstreamFailed` decides.
    private func upstreamFailed(_ failure: UpstreamFailure) {
        worker.metrics.upstreamErrors.labels(failure.kind.rawValue).increment(shard: worker.index)
        let reused = context.reusedUpstream
        closeUpstream()
        if failure.marksAddress, !reused, let group = context.group, let address = context.upstreamAddress {
            if worker.group(group, of: snapshot).recordFailure(server: context.server, address: address, now: now) {
                worker.metrics.addressesDown.increment(shard: worker.index)
            }
        }
        let outcome = PhaseRules.upstreamFailed(
            failure, phase: phaseKind, responseStarted: context.responseStarted,
            canRetry: canRetry(after: failure, reused: reused))
        switch outcome {
        case .retry:
            worker.metrics.retries.increment(shard: worker.index)
            generation &+= 1
            if reused, let address = context.upstreamAddress, failure == .reset {
                // A pooled connection the server had closed while idle: the same address, on a new connection.
                context.attempts += 1
                context.reusedUpstream = false
                connectFresh(to: address)
            } else {
                pickAndConnect()
            }
        case .answer(let error):
            answer(error, closing: !context.requestBody.isDone)
        case .abort:
            abort(nil)
        default:
            break
        }
    }

    /// Whether the request may go to another attempt: it can be sent again whole (no body streamed), and either a
    /// pooled connection failed (the server may have closed it while idle) or a connect failed and the group has
    /// another address to try. A connection reset after a fresh request was sent is retried only for idempotent
    /// methods (RFC 9110 §9.2.2).
    private func canRetry(after failure: UpstreamFailure, reused: Bool) -> Bool {
        guard !context.streaming || context.requestBody.kind == .none, !context.responseStarted,
            !context.interimRelayed
        else { return false }
        if reused && failure == .reset { return context.attempts < 8 }
        guard let group = context.group else { return false }
        let limit = min(worker.group(group, of: snapshot).addressCount, 4)
        guard context.attempts < limit else { return false }
        switch failure {
        case .connectRefused, .connectTimeout: return true
        case .reset: return request.method == .get || request.method == .head
        default: return false
        }
    }

    /// A client-side problem in a streamed body (bad chunk, too large): answer if nothing was sent yet, else cut.
    private func clientBodyFailed(_ error: ErrorResponse) {
        closeUpstream()
        if context.responseStarted {
            abort(nil)
        } else {
            answer(error, closing: true)
        }
    }

    /// Ends both connections at once (a response cannot be completed).
    private func abort(_ failure: UpstreamFailure?) {
        if let failure {
            worker.metrics.upstreamErrors.labels(failure.kind.rawValue).increment(shard: worker.index)
        }
        // Logged as nginx does: the status sent, else 502 for an upstream failure and 499 for a client that left.
        if context.status == 0 {
            record(status: context.responseStarted ? response.status : failure == nil ? 499 : 502)
        }
        closeUpstream()
        phase = .closing
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

    private func record(status: Int, log: Bool = true) {
        context.status = status
        let route = context.route
        withSnapshot { worker.countRequest(route: route, status: status, snapshot: $0) }
        let duration = now &- context.startedAt
        // Through an unretained reference: the histogram was retained and released around its second write.
        let seconds = Double(duration) / 1e9
        worker.withRequestDuration { $0.observe(ownShard: worker.index, seconds) }
        if log && worker.accessLog != nil {
            worker.logRequest(
                peer: peer, request: request, context: context, snapshot: snapshot, durationNanoseconds: duration)
        }
    }

    /// The phase's deadline passed.
    func deadlineExpired() {
        deadline = 0
        let pending = downstream.pendingByteCount
        let progressed = pending < pendingAtDeadline
        pendingAtDeadline = pending
        switch PhaseRules.deadline(phaseKind, progressed: progressed) {
        case .close:
            phase = .closing
            downstream.close()
        case .answer(let error):
            switch phase {
            case .resolving:
                upstreamFailed(.dns)
            case .connecting:
                upstreamFailed(.connectTimeout)
            case .awaiting:
                upstreamFailed(.responseTimeout)
            case .sending:
                clientBodyFailed(error)
            default:
                answer(error, closing: true)
            }
        case .abort:
            abort(.responseTimeout)
        case .extend:
            deadline = now &+ worker.upstreamResponseTimeout
        default:
            break
        }
    }

    /// Drain: an idle connection closes now; a busy one finishes its response with `Connection: close`.
    func drain() {
        if case .idle = phase {
            phase = .closing
            downstream.close()
        }
    }

    // MARK: Connection events

    /// `link` sent EOF.
    func eofArrived(on link: Link) {
        if isDownstream(link) {
            switch PhaseRules.clientEOF(phaseKind) {
            case .close:
                phase = .closing
                downstream.close()
            case .abort:
                abort(nil)
            case .finishThenClose:
                // Half-closed after a complete request: answer it, then close.
                downstreamEOF = true
            default:
                break
            }
        } else if link === upstream {
            upstreamEnded()
        } else {
            link.close()
        }
    }

    /// `link`'s unsent bytes crossed the high-water mark (up: not writable; down: writable).
    func writabilityChanged(on link: Link, writable: Bool) {
        if isDownstream(link) {
            if writable {
                // The client read what it was sent: responses (and answers to pipelined requests) go on.
                upstream?.resumeReading()
                if phaseKind.consumesInput { resumeDownstream() }
            } else {
                upstream?.pauseReading()
            }
        } else if link === upstream {
            // While the upstream is backed up, the client is not read: that pause is not the client's.
            guard case .sending = phase else { return }
            if writable {
                deadline = now &+ worker.clientHeaderTimeout
                resumeDownstream()
            } else {
                downstream.pauseReading()
                deadline = now &+ worker.upstreamResponseTimeout
            }
        }
    }

    /// `link` closed (by either side).
    func linkClosed(_ link: Link, error: Errno?) {
        if isDownstream(link) {
            if error == .noBufferSpace { worker.metrics.cut.labels("unsent_limit").increment(shard: worker.index) }
            closeUpstream()
            phase = .closed
            deadline = 0
            returnParsers()
            stash = []
            stashOffset = 0
            releaseBody()
            transport.remove(self)
            worker.connectionClosed(peer: peer)
        } else if link === upstream {
            upstreamEnded()
        }
    }

    /// The upstream closed (EOF or error) while this exchange used it.
    private func upstreamEnded() {
        guard let upstream else { return }
        if case .relaying = phase, context.responseBody.kind == .untilClose {
            context.responseBody.finishAtClose()
            self.upstream = nil
            upstream.close()
            context.keepAliveAfter = false
            finishResponse(extraBytes: false)
            return
        }
        if case .relaying = phase {
            abort(.reset)
            return
        }
        upstreamFailed(.reset)
        resumeDownstream()
    }

}
