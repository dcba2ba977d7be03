// The route table: exact paths by hash, then prefixes (longest first), then regexes in order, then the default.

/// What the gateway does with a request, decided from its path and whether it asks for a WebSocket upgrade.
public enum Decision: Sendable, Equatable {
    /// Forward to the route's upstream (`table.routes[route]`, action `.proxy`).
    case proxy(route: Int)
    /// Answer with the route's `return` status and body.
    case respond(route: Int)
    /// 404: no route matched, or a capture used in an upstream host is not a DNS-1123 label (never reaches DNS).
    case notFound
    /// 426 Upgrade Required (RFC 9110 §15.5.22, with `Upgrade: websocket`): a `websocket on` route got a
    /// request without an upgrade. The path is a real route, so 404 would mislead the client's developer.
    case upgradeRequired(route: Int)
}

/// The routes of one configuration, immutable and shared by every loop; matching allocates nothing.
public struct RouteTable: Sendable {
    /// All routes in file order; decisions and matches refer to them by index.
    public let routes: [Route]
    private let exact: ExactIndex
    // Indexes of prefix routes, longest prefix first (file order among equal lengths).
    private let prefixes: [Int]
    private let regexes: [Int]
    private let defaultRoute: Int?
    /// The largest capture-group count of any regex, to size a `Matcher`.
    public let maximumCaptureCount: Int

    /// Builds the table. When two exact routes share a path or two default routes exist, the first wins
    /// (the config loader rejects both cases with line numbers).
    public init(routes: [Route]) {
        self.routes = routes
        var exactKeys: [([UInt8], Int)] = []
        var prefixes: [Int] = []
        var regexes: [Int] = []
        var defaultRoute: Int? = nil
        var maximumCaptureCount = 0
        for (index, route) in routes.enumerated() {
            switch route.matching {
            case .exact(let path): exactKeys.append((path, index))
            case .prefix: prefixes.append(index)
            case .regex(let pattern):
                regexes.append(index)
                maximumCaptureCount = max(maximumCaptureCount, pattern.captureCount)
            case .default: if defaultRoute == nil { defaultRoute = index }
            }
        }
        func prefixLength(_ index: Int) -> Int {
            if case .prefix(let path) = routes[index].matching { return path.count }
            return 0
        }
        // Sort by length descending; the enumerated offset keeps file order among equal lengths.
        self.prefixes = prefixes.enumerated().sorted { left, right in
            let (l, r) = (prefixLength(left.element), prefixLength(right.element))
            return l != r ? l > r : left.offset < right.offset
        }.map(\.element)
        self.regexes = regexes
        self.defaultRoute = defaultRoute
        self.maximumCaptureCount = maximumCaptureCount
        exact = ExactIndex(keys: exactKeys)
    }

    /// The index of the route matching `path` (bytes up to `?`), or nil. After a regex match, `matcher` holds
    /// the capture spans (offsets into `path`).
    public func match(path: UnsafeRawBufferPointer, matcher: Matcher) -> Int? {
        matcher.reset()
        if let index = exact.find(path) { return index }
        for index in prefixes {
            guard case .prefix(let prefix) = routes[index].matching else { continue }
            if hasPrefix(path, prefix) { return index }
        }
        for index in regexes {
            guard case .regex(let pattern) = routes[index].matching else { continue }
            if matcher.match(pattern, path) { return index }
        }
        return defaultRoute
    }

    /// Matches and decides: 404 when nothing matched or a host capture is not a DNS-1123 label, 426 for a
    /// plain request on a `websocket on` route, otherwise proxy or respond as the route says.
    public func decide(path: UnsafeRawBufferPointer, isWebSocketUpgrade: Bool, matcher: Matcher) -> Decision {
        guard let index = match(path: path, matcher: matcher) else { return .notFound }
        // The route is read in place: a copy of `Route` would retain and release each of its arrays.
        return routes.withUnsafeBufferPointer { routes in
            // By position: iterating the array retained and released it, even empty (the usual case).
            for position in 0..<routes[index].hostCaptureGroups.count {
                let group = routes[index].hostCaptureGroups[position]
                guard let span = matcher.span(group), isHostLabel(UnsafeRawBufferPointer(rebasing: path[span])) else {
                    return .notFound
                }
            }
            switch routes[index].action {
            case .respond: return .respond(route: index)
            case .proxy:
                if routes[index].websocket && !isWebSocketUpgrade { return .upgradeRequired(route: index) }
                return .proxy(route: index)
            }
        }
    }

    /// Convenience for tests and the control plane: `match(path:matcher:)` over an array.
    public func match(path: [UInt8], matcher: Matcher) -> Int? {
        path.withUnsafeBytes { match(path: $0, matcher: matcher) }
    }

    /// Convenience for tests and the control plane: `decide(path:isWebSocketUpgrade:matcher:)` over an array.
    public func decide(path: [UInt8], isWebSocketUpgrade: Bool, matcher: Matcher) -> Decision {
        path.withUnsafeBytes { decide(path: $0, isWebSocketUpgrade: isWebSocketUpgrade, matcher: matcher) }
    }
}

@inline(__always)
private func hasPrefix(_ path: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> Bool {
    guard path.count >= prefix.count else { return false }
    for offset in 0..<prefix.count where path[offset] != prefix[offset] { return false }
    return true
}

@inline(__always)
func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }
    return hash
}

// Open-addressed hash of exact paths: lookup hashes the request's bytes in place, so no key is allocated.
private struct ExactIndex: Sendable {
    // Slot → position in `keys`, or -1; the capacity is a power of two at least twice the key count.
    let slots: [Int]
    let keys: [[UInt8]]
    let hashes: [UInt64]
    let routeIndexes: [Int]

    init(keys entries: [([UInt8], Int)]) {
        var keys: [[UInt8]] = []
        var routeIndexes: [Int] = []
        var seen: Set<[UInt8]> = []
        for (key, index) in entries where seen.insert(key).inserted {
            keys.append(key)
            routeIndexes.append(index)
        }
        var capacity = 2
        while capacity < keys.count * 2 { capacity *= 2 }
        var slots = [Int](repeating: -1, count: capacity)
        let hashes = keys.map { key in key.withUnsafeBytes { fnv1a64($0) } }
        for position in keys.indices {
            var slot = Int(truncatingIfNeeded: hashes[position]) & (capacity - 1)
            while slots[slot] != -1 { slot = (slot + 1) & (capacity - 1) }
            slots[slot] = position
        }
        self.slots = slots
        self.keys = keys
        self.hashes = hashes
        self.routeIndexes = routeIndexes
    }

    func find(_ path: UnsafeRawBufferPointer) -> Int? {
        guard !keys.isEmpty else { return nil }
        let hash = fnv1a64(path)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let position = slots[slot]
            if position == -1 { return nil }
            if hashes[position] == hash && keys[position].withUnsafeBytes({ $0.elementsEqual(path) }) {
                return routeIndexes[position]
            }
            slot = (slot + 1) & mask
        }
    }
}
