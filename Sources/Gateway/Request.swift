// One request's state (replaced whole for every request), its phases, and the rules that move between them.
import Forwarding
import Sys

/// Where a request is. nginx's request phases and Pingora's `upstream_peer` / `upstream_request_filter`,
/// flattened: `idle` → `head` → (`body`) → `resolving` → `connecting` → (`sending`) → `awaiting` → `relaying` →
/// `idle` again, or `closing` → `closed`. Every phase has a deadline (see `PhaseRules.deadline`).
enum RequestPhase {
    /// Keep-alive: between two requests, no byte of the next one yet.
    case idle
    /// The head is arriving.
    case head
    /// The body is being read and checked before any upstream sees the request (request buffering).
    case body
    /// Waiting for DNS for this host name.
    case resolving(name: String)
    /// Opening a new connection to this address.
    case connecting(SocketAddress)
    /// The head went upstream; the body streams after it (`request_buffering off`).
    case sending
    /// The whole request went upstream; waiting for the response head.
    case awaiting
    /// The response body is relayed downstream.
    case relaying
    /// The last bytes go out before the downstream connection closes.
    case closing
    /// The downstream connection is closed.
    case closed

    /// The phase without its payload, for tables, gauges and tests.
    enum Kind: UInt8, CaseIterable, Sendable {
        case idle, head, body, resolving, connecting, sending, awaiting, relaying, closing, closed
    }

    var kind: Kind {
        switch self {
        case .idle: .idle
        case .head: .head
        case .body: .body
        case .resolving: .resolving
        case .connecting: .connecting
        case .sending: .sending
        case .awaiting: .awaiting
        case .relaying: .relaying
        case .closing: .closing
        case .closed: .closed
        }
    }
}

extension RequestPhase.Kind {
    /// Phases in which bytes from the client are consumed as they come (else they wait in the stash).
    var consumesInput: Bool {
        switch self {
        case .idle, .head, .body, .sending: true
        default: false
        }
    }

    /// The downstream connection is going or gone: nothing more is read or answered.
    var isFinal: Bool { self == .closing || self == .closed }
}

/// Everything one request owns. A new value replaces the old one whole when the next request starts on the
/// connection, so nothing of a request (its upstream, whether its response started, its retries) can leak into
/// the next one.
struct RequestContext {
    /// Index of the matched route (-1: none yet, or no route matched).
    var route = -1
    /// Monotonic ns when the head was complete (the request duration is measured from there).
    var startedAt: UInt64 = 0
    var requestID: RequestID?
    /// The upstream group and its server, for a named upstream.
    var group: Int?
    var server = 0
    /// The port of a dynamic (per-pod) upstream (its rendered host name is `Exchange.dynamicHost`: this value holds
    /// nothing reference-counted).
    var dynamicPort: UInt16 = 0
    /// The address tried last (nil: none chosen yet).
    var upstreamAddress: SocketAddress?
    var connectStartedAt: UInt64 = 0
    /// Upstream connections tried (fresh or pooled) for this request.
    var attempts = 0
    /// The current upstream connection came from the keep-alive pool.
    var reusedUpstream = false
    /// A byte of the response went downstream: from here on, a failure can only cut the connection.
    var responseStarted = false
    /// An interim response (1xx) went downstream: the request is no longer retried on another address (a byte
    /// reached the client), though a failure can still be answered with a final 502/504.
    var interimRelayed = false
    /// The client is answered with keep-alive after this response.
    var keepAliveAfter = false
    /// The request is a WebSocket upgrade the route forwards.
    var forwardedUpgrade = false
    /// `request_buffering off`: the body streams upstream as it comes.
    var streaming = false
    /// The client asked for `100 Continue` before sending its body.
    var expectsContinue = false
    var requestBody = BodyCursor()
    var responseBody = BodyCursor()
    /// For the access log: bytes read from the client and written to it for this request.
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    var status = 0
}

/// How an upstream attempt failed.
enum UpstreamFailure: Sendable, Equatable {
    case dns
    case connectRefused
    case connectTimeout
    /// The connection closed or was reset before the response ended.
    case reset
    case responseTimeout
    case badResponse

    var kind: UpstreamErrorKind {
        switch self {
        case .dns: .dns
        case .connectRefused: .connectRefused
        case .connectTimeout: .connectTimeout
        case .reset: .reset
        case .responseTimeout: .responseTimeout
        case .badResponse: .badResponse
        }
    }

    /// Counts against the address's passive health (a DNS failure is the name's, a bad response the server's
    /// software, not its reachability).
    var marksAddress: Bool {
        switch self {
        case .connectRefused, .connectTimeout, .reset, .responseTimeout: true
        case .dns, .badResponse: false
        }
    }
}

/// What happens next, decided from the phase and the event alone. Pure: the table of every transition and failure
/// is tested without sockets (`PhaseRulesTests`); `Exchange` carries the decisions out on its connections.
enum PhaseRules {
    enum Outcome: Equatable, Sendable {
        /// Nothing to do (the event does not concern this phase).
        case none
        /// Close the downstream connection without an answer.
        case close
        /// Answer with this canned response (then keep-alive or close by the usual rules).
        case answer(ErrorResponse)
        /// Try again: another address, or a fresh connection after a pooled one failed.
        case retry
        /// Cut both connections: part of the response already went downstream.
        case abort
        /// The client half-closed after a complete request: answer it, then close.
        case finishThenClose
        /// The response body ended with the upstream's close (no length, no chunking).
        case endOfBody
        /// The client is still reading: give it another period.
        case extend
    }

    /// The phase's deadline passed. `progressed`: the client took some of its pending bytes since the last check.
    static func deadline(_ phase: RequestPhase.Kind, progressed: Bool) -> Outcome {
        switch phase {
        case .idle: .close
        case .head, .body: .answer(.requestTimeout)
        // nginx answers a resolver timeout with 502 as well.
        case .resolving: .answer(.badGateway)
        case .connecting: .answer(.gatewayTimeout)
        // The client stopped sending its body (a slow-body attack, or a dead client): 408 if nothing was
        // answered yet.
        case .sending: .answer(.requestTimeout)
        case .awaiting: .answer(.gatewayTimeout)
        // Neither the upstream sent nor the client read for a whole period (nginx's proxy_read_timeout and
        // send_timeout): the response cannot complete.
        case .relaying: progressed ? .extend : .abort
        case .closing: .close
        case .closed: .none
        }
    }

    /// The client sent EOF (half-close) in this phase.
    static func clientEOF(_ phase: RequestPhase.Kind) -> Outcome {
        switch phase {
        case .idle, .head, .body: .close
        // Part of the body went upstream: the request cannot complete.
        case .sending: .abort
        case .resolving, .connecting, .awaiting, .relaying: .finishThenClose
        case .closing: .close
        case .closed: .none
        }
    }

    /// An upstream attempt failed. `untilClose`: the response body is delimited by the connection's close.
    static func upstreamFailed(
        _ failure: UpstreamFailure, phase: RequestPhase.Kind, responseStarted: Bool, canRetry: Bool,
        untilClose: Bool = false
    ) -> Outcome {
        if phase == .relaying && failure == .reset && untilClose { return .endOfBody }
        switch phase {
        case .idle, .closing, .closed: return .none
        case .relaying: return .abort
        default: break
        }
        if responseStarted { return .abort }
        // Another attempt only while nothing reached the client and the request can be sent again whole.
        if canRetry && failure != .dns && failure != .badResponse && phase != .sending { return .retry }
        switch failure {
        case .connectTimeout, .responseTimeout: return .answer(.gatewayTimeout)
        case .dns, .connectRefused, .reset, .badResponse: return .answer(.badGateway)
        }
    }

    /// The response head's status: 101 becomes a tunnel only for a forwarded upgrade.
    enum Head: Equatable, Sendable {
        case interim
        case tunnel
        case final
        case invalid
    }

    static func responseHead(status: Int, forwardedUpgrade: Bool) -> Head {
        if status == 101 { return forwardedUpgrade ? .tunnel : .invalid }
        if status < 200 { return .interim }
        return .final
    }
}
