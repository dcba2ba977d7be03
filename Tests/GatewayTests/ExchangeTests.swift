// Exchange's phase logic on a fake transport: every transition and failure, without sockets.
import DNS
import Foundation
import GatewayConfig
import Resolver
import Sys
import Testing

@testable import Gateway

@Suite struct ExchangeTests {
    static let ok5 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"

    // MARK: Transitions

    /// head → connect → awaiting → relaying → idle: the request reaches the upstream rewritten, the response reaches
    /// the client whole, and the upstream goes back to the pool.
    @Test func proxiedRequestWalksThePhases() throws {
        let h = try ExchangeHarness()
        #expect(h.phase == .idle)
        h.send("GET /a HTTP/1.1\r\nHost: gate")
        #expect(h.phase == .head)
        h.send("way.test\r\n\r\n")
        #expect(h.phase == .connecting)
        let attempt = try #require(h.transport.attempts.first)
        #expect(attempt.address.hostText == "10.0.0.1" && attempt.address.port == 80)
        let upstream = try h.acceptConnect()
        #expect(h.phase == .awaiting)
        #expect(upstream.text.hasPrefix("GET /a HTTP/1.1\r\n"))
        #expect(upstream.text.hasSuffix("\r\n\r\n"))
        h.reply(upstream, Self.ok5 + "hel")
        #expect(h.phase == .relaying)
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        h.reply(upstream, "lo")
        #expect(h.phase == .idle)
        #expect(h.downstream.text.hasSuffix("\r\n\r\nhello"))
        #expect(h.transport.pooled.count == 1 && h.transport.pooled.first?.link === upstream)
        #expect(!upstream.isClosed && !upstream.readingPaused)
        #expect(!h.downstream.isClosed && !h.downstream.readingPaused)
    }

    /// A named upstream whose server is a host name: resolving, then connecting to the answer.
    @Test func namedUpstreamIsResolvedThenConnected() throws {
        let h = try ExchangeHarness()
        h.send(get("/named"))
        #expect(h.phase == .resolving)
        #expect(h.transport.lookups.map(\.name) == ["backend.test"])
        try h.answerLookup(.addresses([IPAddress(parsing: "10.0.0.7")!], ttl: 30))
        #expect(h.phase == .connecting)
        #expect(h.transport.attempts.last?.address.hostText == "10.0.0.7")
        let upstream = try h.acceptConnect()
        h.reply(upstream, Self.ok5 + "hello")
        #expect(h.phase == .idle)
        #expect(h.downstream.text.hasSuffix("hello"))
    }

    /// The loop's matcher is shared: when another request matched while this one waited for its connect, the
    /// upstream head is still rewritten with this request's captures (the route is matched again).
    @Test func capturesAreThisRequestsAfterAnotherMatchedMeanwhile() throws {
        let h = try ExchangeHarness()
        h.send(get("/r/first"))
        #expect(h.phase == .connecting)
        // Another request of the loop matches meanwhile.
        let other = Array("/r/second".utf8)
        #expect(h.worker.snapshot.routes.match(path: other, matcher: h.worker.matcher) != nil)
        h.worker.matcherHolder = ObjectIdentifier(h.transport)
        let upstream = try h.acceptConnect()
        #expect(upstream.text.hasPrefix("GET /got/first HTTP/1.1\r\n"), "\(upstream.text)")
    }

    /// Keep-alive: the second request gets a fresh context and the pooled upstream (no new connect).
    @Test func keepAliveNextRequestReusesThePooledUpstream() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let upstream = try h.acceptConnect()
        h.reply(upstream, Self.ok5 + "hello")
        #expect(h.phase == .idle)
        upstream.clearOutput()
        h.downstream.clearOutput()
        // The next request goes to the other server (round robin): make an idle link to it available too.
        let second = FakeLink("idle 10.0.0.2")
        h.transport.idle[SocketAddress(IPAddress(parsing: "10.0.0.2")!, port: 80), default: []].append(second)
        h.send(get("/a"))
        #expect(h.phase == .awaiting)
        #expect(h.transport.attempts.count == 1, "a pooled upstream needs no connect")
        #expect(second.text.hasPrefix("GET /a HTTP/1.1"))
        h.reply(second, Self.ok5 + "again")
        #expect(h.phase == .idle)
        #expect(h.downstream.text.hasSuffix("again"))
    }

    /// Two requests in one read: the second waits (reading paused) until the first is answered, then goes out.
    @Test func pipelinedRequestsGoOneAfterTheOther() throws {
        let h = try ExchangeHarness()
        h.send(get("/a") + get("/a", extra: "X-Second: 1\r\n"))
        #expect(h.phase == .connecting)
        #expect(h.downstream.readingPaused, "bytes of the next request wait: the client is not read meanwhile")
        let upstream = try h.acceptConnect()
        #expect(!upstream.text.contains("X-Second"))
        h.reply(upstream, Self.ok5 + "first")
        // The second request went out on the next connection (the other server's address) at once.
        #expect(h.transport.attempts.count == 2)
        let second = try h.acceptConnect()
        #expect(second.text.contains("X-Second: 1"))
        h.reply(second, Self.ok5 + "secnd")
        #expect(h.phase == .idle)
        #expect(occurrences(of: "HTTP/1.1 200 OK", in: h.downstream.text) == 2)
        #expect(h.downstream.text.hasSuffix("secnd"))
        #expect(!h.downstream.readingPaused)
    }

    /// A route's own answer: nothing reaches the transport.
    @Test func localAnswerTouchesNoUpstream() throws {
        let h = try ExchangeHarness()
        h.send(get("/local"))
        #expect(h.phase == .idle)
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 200"))
        #expect(h.downstream.text.hasSuffix("hi"))
        h.send(get("/missing"))
        #expect(h.downstream.text.contains("HTTP/1.1 404"))
        #expect(h.transport.attempts.isEmpty && h.transport.lookups.isEmpty)
    }

    /// 2,000 pipelined requests answered locally in one read: a loop over an offset (a recursion per request would
    /// need 2,000 frames), every one answered in order.
    @Test func twoThousandPipelinedLocalAnswers() throws {
        let h = try ExchangeHarness(downstreamHighWaterMark: 1 << 30)
        let one = Array(get("/local").utf8)
        var all: [UInt8] = []
        for _ in 0..<2000 { all += one }
        h.send(all)
        #expect(h.phase == .idle)
        #expect(occurrences(of: "HTTP/1.1 200", in: h.downstream.text) == 2000)
        #expect(!h.downstream.readingPaused)
    }

    /// A forwarded WebSocket upgrade: resolve the pod, connect, relay the 101 and hand both links to a tunnel,
    /// with the bytes that came after each head delivered to the other side.
    @Test func upgradeIsHandedOverToATunnel() throws {
        let h = try ExchangeHarness()
        h.send(
            "GET /ws/pod HTTP/1.1\r\nHost: gateway.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
        #expect(h.phase == .resolving)
        #expect(h.transport.lookups.map(\.name) == ["pod.pods.test"])
        try h.answerLookup(.addresses([IPAddress(parsing: "10.0.1.1")!], ttl: 30))
        #expect(h.transport.attempts.last?.address.port == 8080)
        let upstream = try h.acceptConnect()
        #expect(upstream.text.contains("Upgrade: websocket") || upstream.text.contains("upgrade: websocket"))
        h.reply(
            upstream,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nframe")
        #expect(h.phase == .closed)
        let handover = try #require(h.transport.handover)
        #expect(handover.downstream === h.downstream && handover.upstream === upstream)
        #expect(handover.label == "pod.pods.test")
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 101"))
        #expect(h.downstream.text.hasSuffix("\r\n\r\nframe"))
        #expect(upstream.text.hasSuffix("\r\n\r\nearly"))
        #expect(!h.downstream.isClosed && !upstream.isClosed)
        #expect(!h.downstream.readingPaused && !upstream.readingPaused)
    }

    /// `request_buffering off`: head first, then each body piece as it comes (sending), then awaiting.
    @Test func streamedBodyGoesUpstreamAsItComes() throws {
        let h = try ExchangeHarness()
        h.send("POST /stream HTTP/1.1\r\nHost: g\r\nContent-Length: 6\r\n\r\nabc")
        let upstream = try h.acceptConnect()
        #expect(h.phase == .sending)
        #expect(upstream.text.hasSuffix("\r\n\r\nabc"))
        h.send("def")
        #expect(h.phase == .awaiting)
        #expect(upstream.text.hasSuffix("abcdef"))
        h.reply(upstream, Self.ok5 + "hello")
        #expect(h.phase == .idle)
    }

    /// Request buffering: the body is read whole (phase body) before any connect.
    @Test func bufferedBodyWaitsForItsEnd() throws {
        let h = try ExchangeHarness()
        h.send("POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 6\r\n\r\nabc")
        #expect(h.phase == .body)
        #expect(h.transport.attempts.isEmpty)
        h.send("def")
        #expect(h.phase == .connecting)
        let upstream = try h.acceptConnect()
        #expect(upstream.text.hasSuffix("\r\n\r\nabcdef"))
        #expect(h.phase == .awaiting)
    }

    // MARK: Failures

    @Test func resolveFailureAnswers502() throws {
        let h = try ExchangeHarness()
        h.send(get("/named"))
        try h.answerLookup(.nameNotFound)
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 502"))
        #expect(h.transport.attempts.isEmpty)
        #expect(h.phase == .idle)
    }

    /// A refused connect is retried on the group's other address before any byte reached the client.
    @Test func refusedConnectRetriesAnotherAddress() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        try h.failConnect(.refused)
        #expect(h.transport.attempts.count == 2)
        #expect(h.transport.attempts.map(\.address.hostText) == ["10.0.0.1", "10.0.0.2"])
        #expect(h.downstream.output.isEmpty)
        let upstream = try h.acceptConnect()
        h.reply(upstream, Self.ok5 + "hello")
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 200"))
    }

    /// Both addresses refuse: 502.
    @Test func refusedEverywhereAnswers502() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        try h.failConnect(.refused)
        try h.failConnect(.refused)
        #expect(h.transport.attempts.count == 2)
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 502"))
        #expect(h.phase == .idle)
    }

    /// Connect timeouts on every address: 504.
    @Test func connectTimeoutAnswers504() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        try h.failConnect(.timedOut)
        try h.failConnect(.timedOut)
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 504"))
    }

    /// No response head within `upstream_response`: 504, and the upstream is closed (not pooled).
    @Test func responseTimeoutAnswers504() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let upstream = try h.acceptConnect()
        #expect(h.exchange.deadline != 0)
        h.exchange.deadlineExpired()
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 504"))
        #expect(upstream.isClosed)
        #expect(h.transport.pooled.isEmpty)
    }

    /// The upstream closes in the middle of the response head: a GET is retried on the other address; a second
    /// failure is a 502.
    @Test func upstreamEOFMidHead() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let first = try h.acceptConnect()
        h.reply(first, "HTTP/1.1 200 OK\r\nContent-Le")
        h.exchange.eofArrived(on: first)
        #expect(first.isClosed)
        #expect(h.transport.attempts.count == 2)
        #expect(h.downstream.output.isEmpty)
        let second = try h.acceptConnect()
        h.reply(second, "HTTP/1.1 200 OK\r\n")
        h.exchange.eofArrived(on: second)
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 502"))
    }

    /// A POST (not idempotent) is not sent again after its upstream closed mid-head: 502 at once.
    @Test func upstreamEOFMidHeadOfPostIsNotRetried() throws {
        let h = try ExchangeHarness()
        h.send("POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\n\r\nhi")
        let upstream = try h.acceptConnect()
        h.exchange.eofArrived(on: upstream)
        #expect(h.transport.attempts.count == 1)
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 502"))
    }

    /// The upstream closes in the middle of a response body: part of it reached the client, so both connections
    /// are cut (a truncated body must not look complete).
    @Test func upstreamEOFMidBodyCutsBoth() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let upstream = try h.acceptConnect()
        h.reply(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        #expect(h.phase == .relaying)
        h.exchange.eofArrived(on: upstream)
        #expect(upstream.isClosed)
        #expect(h.downstream.isClosed)
        #expect(h.phase == .closed)
        #expect(h.transport.removals == 1)
    }

    /// A body delimited by the upstream's close ends with that close, and the client connection closes after it.
    @Test func untilCloseBodyEndsWithTheUpstreamClose() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let upstream = try h.acceptConnect()
        h.reply(upstream, "HTTP/1.1 200 OK\r\n\r\nsome")
        h.reply(upstream, " more")
        h.exchange.eofArrived(on: upstream)
        #expect(h.downstream.text.hasSuffix("some more"))
        #expect(h.downstream.isClosed)
        #expect(h.transport.pooled.isEmpty)
    }

    /// Client EOF while idle or in the middle of its head or body: the connection closes, nothing goes upstream.
    @Test(arguments: ["", "GET /a HTTP/1.1\r\nHo", "POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 9\r\n\r\nabc"])
    func clientEOFBeforeTheRequestIsComplete(_ sent: String) throws {
        let h = try ExchangeHarness()
        if !sent.isEmpty { h.send(sent) }
        h.exchange.eofArrived(on: h.downstream)
        #expect(h.downstream.isClosed)
        #expect(h.phase == .closed)
        #expect(h.transport.attempts.isEmpty)
        #expect(h.downstream.output.isEmpty)
    }

    /// Client half-close once its request is complete (resolving, connecting, awaiting, relaying): the request is
    /// answered, then the connection closes.
    @Test(arguments: [RequestPhase.Kind.resolving, .connecting, .awaiting, .relaying])
    func clientEOFAfterACompleteRequestIsAnsweredThenClosed(_ phase: RequestPhase.Kind) throws {
        let h = try ExchangeHarness()
        h.send(get(phase == .resolving ? "/named" : "/a"))
        var upstream: FakeLink?
        if phase == .resolving {
            h.exchange.eofArrived(on: h.downstream)
            try h.answerLookup(.addresses([IPAddress(parsing: "10.0.0.7")!], ttl: 30))
        }
        if phase == .connecting { h.exchange.eofArrived(on: h.downstream) }
        upstream = try h.acceptConnect()
        if phase == .awaiting { h.exchange.eofArrived(on: h.downstream) }
        h.reply(upstream!, Self.ok5 + "he")
        if phase == .relaying { h.exchange.eofArrived(on: h.downstream) }
        #expect(!h.downstream.isClosed, "the answer is still due")
        h.reply(upstream!, "llo")
        #expect(h.downstream.text.hasSuffix("hello"))
        if phase != .relaying {
            // The response head was written after the EOF: it says so.
            #expect(h.downstream.text.lowercased().contains("connection: close"))
        }
        #expect(h.downstream.isClosed, "a half-closed client is not kept for another request")
    }

    /// Client EOF while its streamed body is going upstream: the request cannot complete, both are cut.
    @Test func clientEOFWhileSendingAborts() throws {
        let h = try ExchangeHarness()
        h.send("POST /stream HTTP/1.1\r\nHost: g\r\nContent-Length: 6\r\n\r\nabc")
        let upstream = try h.acceptConnect()
        #expect(h.phase == .sending)
        h.exchange.eofArrived(on: h.downstream)
        #expect(upstream.isClosed && h.downstream.isClosed)
    }

    /// A declared body over `body_size`: 413 and close, nothing upstream.
    @Test func declaredBodyTooLargeAnswers413() throws {
        let h = try ExchangeHarness()
        h.send("POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 5000\r\n\r\n")
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 413"))
        #expect(h.transport.attempts.isEmpty)
        #expect(h.downstream.isClosed)
    }

    /// A chunked body that grows over `body_size`: 413 once the limit is passed, nothing upstream.
    @Test func chunkedBodyTooLargeAnswers413() throws {
        let h = try ExchangeHarness()
        h.send("POST /a HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = "200\r\n" + String(repeating: "x", count: 512) + "\r\n"
        for _ in 0..<3 { h.send(chunk) }
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 413"))
        #expect(h.transport.attempts.isEmpty)
    }

    /// A malformed chunked body: 400 and close; no upstream was even asked for.
    @Test func malformedChunkedBodyAnswers400WithNothingUpstream() throws {
        let h = try ExchangeHarness()
        h.send("POST /a HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n")
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 400"))
        #expect(h.transport.attempts.isEmpty && h.transport.lookups.isEmpty)
        #expect(h.downstream.isClosed)
    }

    /// A malformed chunked body on a streaming route, before the response started: 400 and the upstream closed.
    @Test func malformedStreamedBodyAnswers400() throws {
        let h = try ExchangeHarness()
        h.send("POST /stream HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n")
        let upstream = try h.acceptConnect()
        h.send("zz\r\n")
        #expect(upstream.isClosed)
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 400"))
    }

    /// A response body that stops mid-way while the client is not making progress: the deadline cuts both.
    @Test func stalledResponseBodyIsCutByItsDeadline() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let upstream = try h.acceptConnect()
        h.reply(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        #expect(h.phase == .relaying)
        #expect(h.exchange.deadline != 0)
        h.exchange.deadlineExpired()
        #expect(upstream.isClosed && h.downstream.isClosed)
        #expect(h.phase == .closed)
    }

    /// A client slow to read but reading gets another period; one that stops reading is cut at the next deadline.
    @Test func slowReaderIsExtendedThenCut() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let upstream = try h.acceptConnect()
        h.downstream.holding = true
        h.downstream.unsent = 100
        h.reply(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        h.downstream.unsent = 50
        h.exchange.deadlineExpired()
        #expect(!h.downstream.isClosed && h.phase == .relaying, "progress since the response started")
        h.exchange.deadlineExpired()
        #expect(h.downstream.isClosed, "no progress for a whole period")
    }

    /// Deadlines before a response: idle closes quietly, a slow head is answered 408.
    @Test func idleAndHeadDeadlines() throws {
        let idle = try ExchangeHarness()
        idle.exchange.deadlineExpired()
        #expect(idle.downstream.isClosed && idle.downstream.output.isEmpty)
        let head = try ExchangeHarness()
        head.send("GET /a HTTP/1.1\r\n")
        head.exchange.deadlineExpired()
        #expect(head.downstream.text.hasPrefix("HTTP/1.1 408"))
    }

    /// A connect answer for an attempt the exchange already gave up on is not taken.
    @Test func staleConnectAnswerIsIgnored() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let tag = try #require(h.transport.attempts.last).tag
        try h.failConnect(.refused)
        #expect(!h.exchange.isCurrentConnect(tag: tag))
        #expect(h.transport.attempts.count == 2)
    }

    /// The resolver's backstop deadline: 502, and an answer arriving after it is not used.
    @Test func resolvingDeadlineAnswers502AndIgnoresALateAnswer() throws {
        let h = try ExchangeHarness()
        h.send(get("/named"))
        #expect(h.phase == .resolving)
        h.exchange.deadlineExpired()
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 502"))
        #expect(h.phase == .idle)
        try h.answerLookup(.addresses([IPAddress(parsing: "10.0.0.7")!], ttl: 30))
        #expect(h.transport.attempts.isEmpty)
    }

    /// A pooled upstream the server had closed while idle: the same address again, on a fresh connection.
    @Test func resetPooledUpstreamRetriesFreshOnTheSameAddress() throws {
        let h = try ExchangeHarness()
        let pooled = FakeLink("idle 10.0.0.1")
        h.transport.idle[SocketAddress(IPAddress(parsing: "10.0.0.1")!, port: 80), default: []].append(pooled)
        h.send(get("/a"))
        #expect(h.phase == .awaiting)
        #expect(pooled.text.hasPrefix("GET /a HTTP/1.1"))
        h.exchange.eofArrived(on: pooled)
        #expect(pooled.isClosed)
        #expect(h.transport.attempts.map(\.address.hostText) == ["10.0.0.1"])
        let fresh = try h.acceptConnect()
        h.reply(fresh, Self.ok5 + "hello")
        #expect(h.downstream.text.hasSuffix("hello"))
    }

    /// A response head the parser rejects: 502, not retried (the server's software, not its reachability).
    @Test func badResponseHeadAnswers502() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let upstream = try h.acceptConnect()
        h.reply(upstream, "NOT HTTP AT ALL\r\n\r\n")
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 502"))
        #expect(upstream.isClosed)
        #expect(h.transport.attempts.count == 1)
    }

    /// `Expect: 100-continue` on a buffered body: the gateway itself answers 100, then reads the body.
    @Test func expectContinueIsAnsweredBeforeTheBody() throws {
        let h = try ExchangeHarness()
        h.send("POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        #expect(h.phase == .body)
        #expect(h.downstream.text == "HTTP/1.1 100 Continue\r\n\r\n")
        h.send("abc")
        #expect(h.phase == .connecting)
    }

    /// An answer that closes waits in `closing` for the client to read it; that phase has its deadline too.
    @Test func closingHasADeadline() throws {
        let h = try ExchangeHarness()
        h.downstream.holding = true
        h.send("POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 5000\r\n\r\n")
        #expect(h.phase == .closing)
        #expect(!h.downstream.isClosed, "the 413 is still being sent")
        #expect(h.exchange.deadline != 0)
        h.exchange.deadlineExpired()
        #expect(h.downstream.isClosed)
        #expect(h.phase == .closed)
    }

    /// Drain: an idle connection closes at once; one with a request in flight finishes it with `Connection: close`.
    @Test func drainClosesIdleAndLetsBusyFinish() throws {
        let idle = try ExchangeHarness()
        idle.exchange.drain()
        #expect(idle.downstream.isClosed)
        let busy = try ExchangeHarness()
        busy.send(get("/a"))
        let upstream = try busy.acceptConnect()
        // The worker's drain asks each of its exchanges; this one is not in its books, so it is asked here.
        busy.worker.drain(window: .seconds(1))
        busy.exchange.drain()
        #expect(!busy.downstream.isClosed)
        busy.reply(upstream, Self.ok5 + "hello")
        #expect(busy.downstream.text.hasSuffix("hello"))
        #expect(busy.downstream.text.lowercased().contains("connection: close"))
        #expect(busy.downstream.isClosed)
    }

    /// No socket for the connect (EMFILE): counted as refused, so the other address is tried; then 502.
    @Test func socketCreationFailureIsARefusedConnect() throws {
        let h = try ExchangeHarness()
        h.transport.failingConnects = 1
        h.send(get("/a"))
        #expect(h.transport.attempts.map(\.address.hostText) == ["10.0.0.2"])
        let upstream = try h.acceptConnect()
        h.reply(upstream, Self.ok5 + "hello")
        #expect(h.downstream.text.hasSuffix("hello"))
        let failing = try ExchangeHarness()
        failing.transport.failingConnects = 2
        failing.send(get("/a"))
        #expect(failing.transport.attempts.isEmpty)
        #expect(failing.downstream.text.hasPrefix("HTTP/1.1 502"))
    }

    // MARK: Back-pressure as a level

    /// Reproduction: "a client already above the high-water mark when an upstream is attached never pauses the next
    /// upstream". A 103 relayed to a client that reads nothing puts it above the mark (the edge pauses upstream A);
    /// A then fails and the GET is retried on B. B is attached while the client is still above the mark, with no
    /// new edge to report it: B must be paused at once, from the level.
    @Test func upstreamAttachedAboveHighWaterIsPausedAtOnce() throws {
        // The gateway's own `100 Continue` (request buffering) is still unread when the upstream is attached.
        let h = try ExchangeHarness(downstreamHighWaterMark: 16)
        h.downstream.holding = true
        h.send("POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        #expect(h.downstream.isAboveHighWater)
        h.send("abc")
        let upstream = try h.acceptConnect()
        #expect(h.phase == .awaiting)
        #expect(upstream.readingPaused, "attached while the client is above the mark: not read until it reads")
        h.downstream.peerReadAll()
        #expect(!upstream.readingPaused)
    }

    /// An interim response reached the client: a failure after it is answered (502), never retried elsewhere.
    @Test func noRetryAfterAnInterimResponseWasRelayed() throws {
        let h = try ExchangeHarness()
        h.send(get("/a"))
        let first = try h.acceptConnect()
        h.reply(first, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        #expect(h.downstream.text.hasPrefix("HTTP/1.1 103 Early Hints\r\n"))
        h.exchange.eofArrived(on: first)
        #expect(h.transport.attempts.count == 1, "not retried on another address once a byte reached the client")
        #expect(h.downstream.text.contains("HTTP/1.1 502 "))
    }

    /// A client above the mark after a response: its next request waits (not read, not routed) until it reads.
    @Test func nextRequestWaitsWhileTheClientIsAboveTheMark() throws {
        let h = try ExchangeHarness(downstreamHighWaterMark: 64)
        h.downstream.holding = true
        h.send(get("/local") + get("/a"))
        #expect(h.downstream.isAboveHighWater)
        #expect(h.phase == .idle)
        #expect(h.transport.attempts.isEmpty)
        #expect(h.downstream.readingPaused)
        h.downstream.peerReadAll()
        #expect(h.transport.attempts.count == 1)
        #expect(h.phase == .connecting)
    }
}
