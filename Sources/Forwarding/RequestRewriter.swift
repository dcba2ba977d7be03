// The upstream request head: request line, Host, forwarded fields, hop-by-hop removal, route header settings.
import GatewayConfig
import HTTP1
import Routing

/// Writes the head a proxied request is sent upstream with. Built once per configuration (it precomputes each
/// route's Host value and header settings) and shared by every loop; writing allocates nothing beyond growing
/// the caller's buffer, whose capacity is reused from request to request.
///
/// What is sent, in order:
/// - `METHOD path[?query] HTTP/1.1`: the route's `rewrite` rendered with the captures (else the path as
///   received), then the query as received.
/// - `Host`: the route's `set_header Host`, else the upstream's name (RFC 9110 §7.2): a named upstream's server
///   host as configured, a dynamic upstream's rendered host, each with `:port` unless the port is 80.
/// - The client's fields in order, without: hop-by-hop fields (RFC 9110 §7.6.1: `Connection`, `Keep-Alive`,
///   `Proxy-Connection`, `TE`, `Upgrade`, `HTTP2-Settings`, and `Proxy-Authorization`, whose credentials are
///   for a proxy and never for the origin behind this gateway, RFC 9110 §11.7.2); fields a `Connection` token
///   names; fields the gateway writes itself below; fields a route `set_header` replaces. `Content-Length` and
///   `Transfer-Encoding` pass unchanged, even when a Connection token names them: the engine relays the body
///   bytes as framed (chunked stays chunked; the parser already refused ambiguous framing), and dropping
///   framing would desynchronise the upstream connection. `Trailer` passes for the same reason.
/// - `Connection: Upgrade` + `Upgrade: websocket` for a WebSocket upgrade on a `websocket on` route (RFC 6455
///   §4.1; the `Sec-WebSocket-*` fields pass as ordinary fields), else `Connection: keep-alive` (pooled).
/// - `X-Forwarded-For` (received values joined with `, `, then the client address), `X-Real-IP`,
///   `X-Forwarded-Proto`, unless a route `set_header` sets them; `X-Request-ID`: the client's first one when
///   valid (`RequestID.isValid`), else a generated one.
/// - The route's other `set_header` fields, rendered with the captures; one rendering to nothing is not sent
///   (as nginx's `proxy_set_header` does). `set_header` of hop-by-hop, framing or `X-Request-ID` fields is
///   ignored: the gateway owns those.
public struct RequestRewriter: Sendable {
    let routes: [RoutePlan]
    /// `routes` unretained, for `writeUpstreamHead`: a plan loaded from the array's memory was retained and released
    /// around the call. Alive as long as `routes`, which holds the same objects.
    private let unretainedRoutes: [Unmanaged<RoutePlan>]

    /// Plans for every route of `config.routes`.
    public init(config: GatewayConfig) {
        routes = config.routes.routes.map { route in
            RoutePlan(route: route, upstream: { config.upstream(named: $0) })
        }
        unretainedRoutes = routes.map { Unmanaged.passUnretained($0) }
    }

    /// Most bytes `writeUpstreamHead` writes for `request` (a complete request head) on `route` with a client
    /// address of `clientAddressCount` bytes: the head as received (each field line written at most once, as
    /// received, one byte longer, or as an `X-Forwarded-For` element with its `, `), the route's fixed text and
    /// templates (`RoutePlan.fixedBound`, each capture at most the whole path), the client address twice and the
    /// longest request id.
    // Inlinable, reading the parser in the caller: a call passed the parser by address, and a caller whose parser
    // is a class's stored property copied all 225 bytes of it first. The route's part needs no parser.
    @inlinable @inline(__always)
    public func upstreamHeadBound(request: borrowing HeadParser, route: Int, clientAddressCount: Int) -> Int {
        request.headByteCount &+ 3 &* request.fieldCount &+ 2 &* clientAddressCount &+ RequestID.maximumLength
            &+ routeBound(route, pathCount: request.pathRange.count)
    }

    /// The route's part of `upstreamHeadBound`: its fixed text and templates, each capture at most the whole path.
    @usableFromInline
    func routeBound(_ route: Int, pathCount: Int) -> Int {
        routes.withUnsafeBufferPointer { plans in
            plans[route].fixedBound &+ plans[route].captureReferences &* pathCount
        }
    }

    /// Appends the upstream request head of `request` (a complete request head) to `out` and returns the
    /// request id it carries.
    ///
    /// - Parameters:
    ///   - route: index of the route `RouteTable.decide` chose (a `.proxy` decision).
    ///   - server: which `server` line of a named upstream the engine connects to (its Host value is used).
    ///   - matcher: the matcher `decide` ran with, still holding that match (captures are offsets into the path).
    ///   - clientAddress: the peer address as text (`192.0.2.7`, `2001:db8::1`, no brackets, no port).
    ///   - scheme: the listener's scheme, for `X-Forwarded-Proto`.
    ///   - requestIDs: the loop's generator, used when the client sent no valid id.
    @discardableResult
    public func writeUpstreamHead(
        request: borrowing HeadParser, route: Int, server: Int = 0, matcher: Matcher,
        clientAddress: UnsafeRawBufferPointer,
        scheme: Scheme, requestIDs: inout RequestIDGenerator, into out: inout [UInt8]
    ) -> RequestID {
        out.appendHead(
            bound: upstreamHeadBound(request: request, route: route, clientAddressCount: clientAddress.count)
        ) { output in
            var id: RequestID?
            writeUpstreamHead(
                request: request, route: route, server: server, matcher: matcher, clientAddress: clientAddress,
                scheme: scheme, requestIDs: &requestIDs, requestID: &id, into: &output)
            return id!
        }
    }

    /// `writeUpstreamHead` into raw memory: `out` must have room for `upstreamHeadBound(...)` bytes. The request id
    /// the head carries is stored in `requestID` (the 136-byte id is written in place, not returned and copied).
    public func writeUpstreamHead(
        request: borrowing HeadParser, route: Int, server: Int = 0, matcher: Matcher,
        clientAddress: UnsafeRawBufferPointer,
        scheme: Scheme, requestIDs: inout RequestIDGenerator, requestID: inout RequestID?, into out: inout HeadOutput
    ) {
        // The plan is borrowed, not retained (see `unretainedRoutes`).
        unretainedRoutes[route]._withUnsafeGuaranteedRef { plan in
            request.withUnsafeHeadBytes { buf in
                Self.write(
                    plan: plan, buf: buf, request: request, server: server, matcher: matcher,
                    clientAddress: clientAddress, scheme: scheme, requestIDs: &requestIDs, requestID: &requestID,
                    into: &out)
            }
        }
    }

    /// `writeUpstreamHead` with the route's plan and the head's bytes (`buf`) in place. No closure captures the
    /// plan: a captured borrowed plan was copied.
    private static func write(
        plan: borrowing RoutePlan, buf: UnsafeBufferPointer<UInt8>, request: borrowing HeadParser, server: Int,
        matcher: Matcher, clientAddress: UnsafeRawBufferPointer,
        scheme: Scheme, requestIDs: inout RequestIDGenerator, requestID: inout RequestID?, into out: inout HeadOutput
    ) {
        let pathRange = request.pathRange
        let path = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buf[pathRange]))

        // Request line (RFC 9112 §3): always HTTP/1.1 upstream (RFC 9110 §2.5).
        if let rewrite = plan.rewrite {
            out.write(buf, request.methodRange)
            out.write(byte: 0x20)
            let mark = out.count
            out.write(rewrite, captures: matcher, path: path)
            // An empty request-target is invalid (RFC 9112 §3.2).
            if out.count == mark { out.write(byte: 0x2F) }
            if let query = request.queryRange {
                out.write(byte: 0x3F)
                out.write(buf, query)
            }
        } else {
            // Method SP target as received, in one piece (the parser allows exactly one SP between them).
            out.write(buf, request.startLineRange)
        }

        // Host first (RFC 9110 §7.2 asks user agents to send it first; upstream servers expect it early). The
        // version and the Host name go out in one copy.
        var keepClientHost = false
        if let setting = plan.hostSetting {
            out.write(" HTTP/1.1\r\n")
            writeSetting(name: "Host", value: setting, matcher: matcher, path: path, into: &out)
        } else {
            switch plan.host {
            case .client:
                out.write(" HTTP/1.1\r\n")
                keepClientHost = true
            case .named(let hosts):
                out.write(" HTTP/1.1\r\nHost: ")
                out.write(hosts[server])
                out.write(0x0D, 0x0A)
            case .dynamic(let template, let portSuffix):
                out.write(" HTTP/1.1\r\nHost: ")
                out.write(template, captures: matcher, path: path)
                out.write(portSuffix)
                out.write(0x0D, 0x0A)
            }
        }

        let tokens = ConnectionTokens(request, buf)
        var forwardedFor = false
        var clientRequestID: Range<Int>?
        var run = FieldRun()
        for index in 0..<request.fieldCount {
            let name = request.nameRange(at: index)
            let role = FieldRole(request.knownName(at: index), request: true)
            switch role {
            case .host:
                if !keepClientHost { continue }
            case .connection, .hopByHop:
                continue
            case .framing:
                break
            case .forwardedFor, .realIP, .forwardedProto, .requestID, .other:
                if tokens.lists(name, request, buf) { continue }
                switch role {
                case .forwardedFor:
                    if !plan.overrides.contains(.forwardedFor) { forwardedFor = true }
                    continue
                case .realIP, .forwardedProto:
                    continue
                case .requestID:
                    if clientRequestID == nil { clientRequestID = request.valueRange(at: index) }
                    continue
                default:
                    if isReplaced(name, plan.headers, buf) { continue }
                }
            }
            run.add(buf, name: name, value: request.valueRange(at: index), to: &out)
        }
        run.flush(buf, to: &out)

        // Static text is written in as few copies as it takes: a line whose value was just written owes its
        // CRLF (`owesCRLF`), which starts the next static piece.
        let writesForwardedFor = !plan.overrides.contains(.forwardedFor)
        if plan.websocket && request.isWebSocketUpgrade {
            out.write(
                writesForwardedFor
                    ? "Connection: Upgrade\r\nUpgrade: websocket\r\nX-Forwarded-For: "
                    : "Connection: Upgrade\r\nUpgrade: websocket\r\n")
        } else {
            out.write(
                writesForwardedFor ? "Connection: keep-alive\r\nX-Forwarded-For: " : "Connection: keep-alive\r\n")
        }

        var owesCRLF = false
        if writesForwardedFor {
            if forwardedFor {
                // Every received X-Forwarded-For line is one list (RFC 9110 §5.3), in order.
                for index in 0..<request.fieldCount {
                    guard request.knownName(at: index) == .xForwardedFor else { continue }
                    let value = request.valueRange(at: index)
                    guard !value.isEmpty else { continue }
                    out.write(buf, value)
                    out.write(0x2C, 0x20)
                }
            }
            out.write(clientAddress)
            owesCRLF = true
        }
        if !plan.overrides.contains(.realIP) {
            out.write(owesCRLF ? "\r\nX-Real-IP: " : "X-Real-IP: ")
            out.write(clientAddress)
            owesCRLF = true
        }
        let writesForwardedProto = !plan.overrides.contains(.forwardedProto)

        if let range = clientRequestID, let received = RequestID(UnsafeBufferPointer(rebasing: buf[range])) {
            requestID = received
        } else {
            requestID = requestIDs.next()
        }
        if writesForwardedProto {
            out.write(scheme.forwardedProtoThenRequestID(afterValue: owesCRLF))
        } else {
            out.write(owesCRLF ? "\r\nX-Request-ID: " : "X-Request-ID: ")
        }
        _ = RequestID.write(&requestID, to: &out)
        if plan.headers.isEmpty {
            out.write("\r\n\r\n")
            return
        }
        out.write(0x0D, 0x0A)

        for setting in plan.headers {
            writeSetting(name: setting.name, value: setting.value, matcher: matcher, path: path, into: &out)
        }
        out.write(0x0D, 0x0A)
    }

    /// `writeUpstreamHead` with the client address as an array (tests and cold paths).
    @discardableResult
    public func writeUpstreamHead(
        request: borrowing HeadParser, route: Int, server: Int = 0, matcher: Matcher, clientAddress: [UInt8],
        scheme: Scheme, requestIDs: inout RequestIDGenerator, into out: inout [UInt8]
    ) -> RequestID {
        clientAddress.withUnsafeBytes { address in
            writeUpstreamHead(
                request: request, route: route, server: server, matcher: matcher, clientAddress: address,
                scheme: scheme, requestIDs: &requestIDs, into: &out)
        }
    }
}

/// Whether a route `set_header` replaces the received field `buf[name]`.
@inline(__always)
private func isReplaced(_ name: Range<Int>, _ headers: [HeaderPlan], _ buf: UnsafeBufferPointer<UInt8>) -> Bool {
    for header in headers where equalsLowercase(buf, name, header.lowercaseName) { return true }
    return false
}

/// `name: <rendered value> CRLF`, or nothing when the value renders empty. Captures come from the request path,
/// which the parser already limited to visible bytes, so a rendered value cannot hold CR or LF.
@inline(__always)
private func writeSetting(
    name: [UInt8], value: Template, matcher: Matcher, path: UnsafeRawBufferPointer, into out: inout HeadOutput
) {
    let mark = out.count
    out.write(name)
    finishSetting(from: mark, value: value, matcher: matcher, path: path, into: &out)
}

@inline(__always)
private func writeSetting(
    name: StaticString, value: Template, matcher: Matcher, path: UnsafeRawBufferPointer, into out: inout HeadOutput
) {
    let mark = out.count
    out.write(name)
    finishSetting(from: mark, value: value, matcher: matcher, path: path, into: &out)
}

/// The rest of a setting whose name was written from `mark`: `: <rendered value> CRLF`, or back to `mark` when the
/// value renders empty.
@inline(__always)
private func finishSetting(
    from mark: Int, value: Template, matcher: Matcher, path: UnsafeRawBufferPointer, into out: inout HeadOutput
) {
    out.write(0x3A, 0x20)
    let valueStart = out.count
    out.write(value, captures: matcher, path: path)
    if out.count == valueStart {
        out.truncate(to: mark)
        return
    }
    out.write(0x0D, 0x0A)
}
