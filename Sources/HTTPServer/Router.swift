// Method + path routing: exact paths first, then the longest matching prefix; 404 and 405 (with Allow) answers.
import EventLoop
import HTTP1

/// A dynamic handler: runs on the connection's loop thread, from any loop of the server, so it must be `@Sendable`.
public typealias Handler = @Sendable (Request) -> Response

/// What a route answers with.
public enum RouteAction: Sendable {
    /// Pre-serialised bytes: no `Request` is built, nothing is allocated per request.
    case fixed(FixedResponse)
    /// A handler called with a `Request` value.
    case dynamic(Handler)
    /// A protocol switch (RFC 9110 §7.8): the handler decides, and on `accept` takes the connection over.
    case upgrade(UpgradeHandler)
}

/// Decides on a request that asks to switch protocols; runs on the connection's loop thread.
public typealias UpgradeHandler = @Sendable (Request) -> UpgradeDecision

/// What an upgrade handler answers.
public enum UpgradeDecision {
    /// An ordinary response; the connection then closes (a refused upgrade leaves it in an unknown state).
    case reject(Response)
    /// `101 Switching Protocols` with `Upgrade: <upgrade>`, `Connection: Upgrade` and `headers`; then `adopt` is
    /// called on the loop thread with the connection and returns its new handler, which at once receives the bytes
    /// that followed the request head in the same read, if any. From then on the server no longer counts or times
    /// the connection.
    case accept(upgrade: String, headers: [Headers.Field], adopt: (Connection) -> any ConnectionHandler)
}

/// The route table of a server. Build it before the server starts; it is immutable afterwards.
///
/// Paths are compared byte for byte with the request-target up to `?` (no decoding, no normalisation).
/// A `GET` route also answers `HEAD` (same head, no body) unless a `HEAD` route exists for the path.
public struct Router: Sendable {
    struct Entry: Sendable {
        var path: [UInt8]
        var isPrefix: Bool
        var methods: [(method: Method, action: RouteAction)]
        var methodNotAllowed: FixedResponse
    }

    var exact: [Entry] = []
    // Longest first, so the first match is the most specific.
    var prefixes: [Entry] = []
    let notFound = FixedResponse(.notFound)

    public init() {}

    /// Routes `method` on exactly `path` to `action`; a later route for the same method and path replaces it.
    public mutating func add(_ method: Method, _ path: String, _ action: RouteAction) {
        precondition(method != .other, "routes name a method with a case")
        insert(method, Array(path.utf8), isPrefix: false, action, into: &exact)
    }

    /// Routes `method` on every path starting with `prefix` (after exact routes; the longest prefix wins).
    public mutating func addPrefix(_ method: Method, _ prefix: String, _ action: RouteAction) {
        precondition(method != .other, "routes name a method with a case")
        insert(method, Array(prefix.utf8), isPrefix: true, action, into: &prefixes)
        prefixes.sort { $0.path.count > $1.path.count }
    }

    /// `GET path` → `handler`.
    public mutating func get(_ path: String, _ handler: @escaping Handler) { add(.get, path, .dynamic(handler)) }

    /// `POST path` → `handler`.
    public mutating func post(_ path: String, _ handler: @escaping Handler) { add(.post, path, .dynamic(handler)) }

    /// `GET path` → a protocol switch decided by `handler`.
    public mutating func upgrade(_ path: String, _ handler: @escaping UpgradeHandler) {
        add(.get, path, .upgrade(handler))
    }

    /// `GET path` → a fixed response.
    public mutating func get(_ path: String, fixed response: FixedResponse) { add(.get, path, .fixed(response)) }

    private func insert(
        _ method: Method, _ path: [UInt8], isPrefix: Bool, _ action: RouteAction, into entries: inout [Entry]
    ) {
        if let index = entries.firstIndex(where: { $0.path == path }) {
            var entry = entries[index]
            entry.methods.removeAll { $0.method == method }
            entry.methods.append((method, action))
            entry.methodNotAllowed = Router.methodNotAllowed(entry.methods.map(\.method))
            entries[index] = entry
        } else {
            entries.append(
                Entry(
                    path: path, isPrefix: isPrefix, methods: [(method, action)],
                    methodNotAllowed: Router.methodNotAllowed([method])))
        }
    }

    static func methodNotAllowed(_ methods: [Method]) -> FixedResponse {
        var names = methods.map(Router.name)
        if methods.contains(.get) && !methods.contains(.head) { names.append("HEAD") }
        return FixedResponse(.methodNotAllowed, headers: [.init(name: "Allow", value: names.joined(separator: ", "))])
    }

    static func name(_ method: Method) -> String {
        switch method {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .connect: "CONNECT"
        case .options: "OPTIONS"
        case .trace: "TRACE"
        case .patch: "PATCH"
        case .other: "OTHER"
        }
    }

    /// What a request resolves to.
    enum Resolution {
        case action(RouteAction)
        case fixedError(FixedResponse)
    }

    /// The path part of a request-target up to `?`: origin-form as it is; absolute-form
    /// (`http://host:port/p`, which a server must accept: RFC 9112 §3.2.2) without scheme and authority, `/` when
    /// it has no path.
    static func originPath(_ target: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let first = target.first, first != UInt8(ascii: "/") else { return target }
        // "scheme://": find "://", then the first "/" after the authority.
        var index = 0
        while index + 2 < target.count {
            if target[index] == UInt8(ascii: ":") && target[index + 1] == UInt8(ascii: "/")
                && target[index + 2] == UInt8(ascii: "/")
            {
                var start = index + 3
                while start < target.count && target[start] != UInt8(ascii: "/") { start += 1 }
                if start == target.count { return UnsafeRawBufferPointer(start: Router.slash, count: 1) }
                return UnsafeRawBufferPointer(rebasing: target[start...])
            }
            if target[index] == UInt8(ascii: "/") { break }
            index += 1
        }
        return target
    }

    private static var slash: UnsafeRawPointer { UnsafeRawPointer(("/" as StaticString).utf8Start) }

    /// Looks up `method` on `path` (bytes of the target up to `?`, see `originPath`). Allocates nothing.
    func resolve(method: Method, path target: UnsafeRawBufferPointer) -> Resolution {
        let path = Router.originPath(target)
        for entry in exact where entry.path.count == path.count {
            let same = entry.path.withUnsafeBytes { $0.elementsEqual(path) }
            if same { return pick(entry, method) }
        }
        for entry in prefixes where entry.path.count <= path.count {
            let same = entry.path.withUnsafeBytes { $0.elementsEqual(path[0..<entry.path.count]) }
            if same { return pick(entry, method) }
        }
        return .fixedError(notFound)
    }

    private func pick(_ entry: Entry, _ method: Method) -> Resolution {
        for candidate in entry.methods where candidate.method == method { return .action(candidate.action) }
        if method == .head {
            for candidate in entry.methods where candidate.method == .get { return .action(candidate.action) }
        }
        return .fixedError(entry.methodNotAllowed)
    }
}
