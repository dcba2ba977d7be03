// Turns configuration text into a `GatewayConfig`, or every error found with its line.
import DNS
import Routing

/// Parses and validates a configuration. The caller reads the file and the process environment; this function
/// does no I/O. `cores` is what `workers auto` means. Errors are `file:line: message`, sorted by line.
public func loadConfig(
    text: String, file: String, environment: [String: String], cores: Int
) -> Result<GatewayConfig, ConfigErrors> {
    var parser = Parser(lexer: Lexer(text: text, environment: environment), knownNames: allDirectiveNames)
    var errors: [ConfigError] = []
    let directives: [Directive]
    do {
        directives = try parser.parseFile()
    } catch {
        let located = (parser.recovered + [error]).map {
            ConfigError(file: file, line: $0.line, message: $0.message)
        }
        return .failure(ConfigErrors(located.sorted { $0.line < $1.line }))
    }
    errors += parser.recovered.map { ConfigError(file: file, line: $0.line, message: $0.message) }
    var loader = Loader(file: file, cores: cores)
    let config = loader.load(directives, hash: parser.hash)
    errors += loader.errors
    if let config, errors.isEmpty { return .success(config) }
    // A stable order: by line, then as found.
    let ordered = errors.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
    return .failure(ConfigErrors(ordered.map(\.element)))
}

private let mainDirectives: Set<String> = [
    "workers", "events", "worker_rlimit_nofile", "listen", "admin", "resolver", "upstream", "timeouts", "limits",
    "access_log",
    "route",
]
private let upstreamDirectives: Set<String> = ["server", "keepalive", "keepalive_timeout", "connect_timeout"]
private let timeoutDirectives: Set<String> = [
    "client_header", "client_keepalive", "upstream_connect", "upstream_response", "tunnel_idle", "drain",
]
private let limitDirectives: Set<String> = [
    "header_size", "uri_length", "header_count", "body_size", "max_connections", "per_client_ip",
]
private let routeDirectives: Set<String> = [
    "websocket", "rewrite", "proxy", "return", "set_header", "request_buffering",
]
private let allDirectiveNames = mainDirectives.union(upstreamDirectives).union(timeoutDirectives).union(
    limitDirectives
).union(routeDirectives)
// Directives that may appear more than once in their block.
/// Fields a route may not set: hop-by-hop ones (RFC 9110 §7.6.1), body framing (RFC 9112 §6) and the request id.
/// The engine writes or drops them itself, so a `set_header` for them could only desynchronise or be ignored.
private let gatewayOwnedHeaders: Set<String> = [
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "http2-settings", "proxy-authorization", "content-length", "x-request-id",
]

private let repeatable: Set<String> = ["listen", "upstream", "route", "server", "set_header"]

private struct Loader {
    let file: String
    let cores: Int
    var errors: [ConfigError] = []

    init(file: String, cores: Int) {
        self.file = file
        self.cores = cores
    }

    mutating func error(_ line: Int, _ message: String) {
        errors.append(ConfigError(file: file, line: line, message: message))
    }

    // MARK: Shape checks

    /// Reports unknown, misplaced and duplicate directives of one block; returns those worth interpreting.
    mutating func checked(_ block: [Directive], context: String, allowed: Set<String>) -> [Directive] {
        var firstLine: [String: Int] = [:]
        var kept: [Directive] = []
        for directive in block {
            let name = directive.name.text
            guard allowed.contains(name) else {
                if allDirectiveNames.contains(name) {
                    error(directive.line, "'\(name)' is not allowed in \(context)")
                } else {
                    error(directive.line, "unknown directive '\(name)'")
                }
                continue
            }
            if !repeatable.contains(name), let first = firstLine[name] {
                error(directive.line, "duplicate '\(name)' (first at line \(first))")
                continue
            }
            firstLine[name] = firstLine[name] ?? directive.line
            kept.append(directive)
        }
        return kept
    }

    /// Checks the argument count and that no block was given; false when the directive cannot be read.
    mutating func simple(_ directive: Directive, _ counts: ClosedRange<Int>) -> Bool {
        if directive.block != nil {
            error(directive.line, "'\(directive.name.text)' does not take a block")
            return false
        }
        return arity(directive, counts)
    }

    mutating func arity(_ directive: Directive, _ counts: ClosedRange<Int>) -> Bool {
        guard counts.contains(directive.arguments.count) else {
            let expected =
                counts.lowerBound == counts.upperBound
                ? "\(counts.lowerBound)" : "\(counts.lowerBound) to \(counts.upperBound)"
            error(
                directive.line,
                "wrong number of arguments for '\(directive.name.text)': expected \(expected), got \(directive.arguments.count)"
            )
            return false
        }
        return true
    }

    mutating func blockOf(_ directive: Directive) -> [Directive]? {
        guard let block = directive.block else {
            error(directive.line, "'\(directive.name.text)' needs a block { ... }")
            return nil
        }
        return block
    }

    // MARK: The main context

    mutating func load(_ directives: [Directive], hash: UInt64) -> GatewayConfig? {
        var workers = cores
        var events: Events?
        var openFileLimit = OpenFileLimit.unchanged
        var listeners: [Listener] = []
        var listenLines: [BindAddress: Int] = [:]
        var admin = BindAddress(host: .v4(IPv4Address(0, 0, 0, 0)), port: 9113)
        var resolver = ResolverSettings.defaults
        var upstreams: [Upstream] = []
        var timeouts = Timeouts()
        var limits = Limits()
        var accessLog = AccessLog.off
        var routes: [Route] = []
        var requestBuffering: [Bool] = []
        var routeLines: [String: Int] = [:]
        var upstreamReferences: [(name: String, line: Int)] = []

        for directive in checked(directives, context: "the main context", allowed: mainDirectives) {
            let arguments = directive.arguments
            switch directive.name.text {
            case "workers":
                guard simple(directive, 1...1) else { continue }
                if arguments[0].text == "auto" {
                    workers = max(1, cores)
                } else if let count = positiveInteger(arguments[0].text), count <= 4096 {
                    workers = count
                } else {
                    error(
                        arguments[0].line,
                        "'workers' expects 'auto' or a number from 1 to 4096, got '\(arguments[0].text)'")
                }
            case "events":
                guard simple(directive, 1...1) else { continue }
                if let choice = Events(rawValue: arguments[0].text) {
                    events = choice
                } else {
                    error(
                        arguments[0].line, "'events' expects 'auto', 'epoll' or 'io_uring', got '\(arguments[0].text)'")
                }
            case "worker_rlimit_nofile":
                guard simple(directive, 1...1) else { continue }
                if arguments[0].text == "max" {
                    openFileLimit = .hardLimit
                } else if let count = positiveInteger(arguments[0].text) {
                    openFileLimit = .count(count)
                } else {
                    error(
                        arguments[0].line,
                        "'worker_rlimit_nofile' expects 'max' or a number, got '\(arguments[0].text)'")
                }
            case "listen":
                guard simple(directive, 1...4), let listener = listener(arguments) else { continue }
                if let first = listenLines[listener.address] {
                    error(directive.line, "duplicate 'listen \(listener.address)' (first at line \(first))")
                    continue
                }
                listenLines[listener.address] = directive.line
                listeners.append(listener)
            case "admin":
                guard simple(directive, 1...1) else { continue }
                if let address = bindAddress(arguments[0], directive: "admin") { admin = address }
            case "resolver":
                guard simple(directive, 1...Int.max) else { continue }
                if let settings = resolverSettings(arguments) { resolver = settings }
            case "upstream":
                guard arity(directive, 1...1), let block = blockOf(directive) else { continue }
                let name = arguments[0]
                if let existing = upstreams.first(where: { $0.name == name.text }) {
                    error(name.line, "duplicate upstream '\(name.text)' (first at line \(existing.line))")
                } else if let upstream = upstream(name, block, line: directive.line) {
                    upstreams.append(upstream)
                }
            case "timeouts":
                guard arity(directive, 0...0), let block = blockOf(directive) else { continue }
                timeouts = self.timeouts(block)
            case "limits":
                guard arity(directive, 0...0), let block = blockOf(directive) else { continue }
                limits = self.limits(block)
            case "access_log":
                guard simple(directive, 1...1) else { continue }
                switch arguments[0].text {
                case "off": accessLog = .off
                case "stdout": accessLog = .stdout
                case let path where path.hasPrefix("/"): accessLog = .file(path)
                default:
                    error(
                        arguments[0].line,
                        "'access_log' expects off, stdout or an absolute path, got '\(arguments[0].text)'")
                }
            case "route":
                guard arity(directive, 1...2), let block = blockOf(directive) else { continue }
                guard let (route, reference, buffering) = route(directive, block) else { continue }
                if let first = routeLines[route.label] {
                    error(directive.line, "duplicate route '\(route.label)' (first at line \(first))")
                    continue
                }
                routeLines[route.label] = directive.line
                routes.append(route)
                requestBuffering.append(buffering)
                if let reference { upstreamReferences.append(reference) }
            default:
                break
            }
        }
        for reference in upstreamReferences where !upstreams.contains(where: { $0.name == reference.name }) {
            error(
                reference.line,
                "proxy to undefined upstream '\(reference.name)': define it with 'upstream \(reference.name) { server HOST:PORT; }'"
            )
        }
        // Only when none was written: a listener with a bad address has its own error already.
        if !directives.contains(where: { $0.name.text == "listen" }) {
            error(1, "no 'listen' directive: the gateway needs at least one public listener")
        }
        guard errors.isEmpty else { return nil }
        return GatewayConfig(
            file: file, workers: workers, events: events, openFileLimit: openFileLimit, listeners: listeners,
            admin: admin,
            resolver: resolver, upstreams: upstreams, timeouts: timeouts, limits: limits, accessLog: accessLog,
            routes: RouteTable(routes: routes), requestBuffering: requestBuffering, configHash: hash)
    }

    // MARK: Listeners, resolver

    mutating func listener(_ arguments: [Token]) -> Listener? {
        guard let address = bindAddress(arguments[0], directive: "listen") else { return nil }
        guard arguments.count > 1 else { return Listener(address: address, tls: nil) }
        guard arguments[1].text == "tls" else {
            error(arguments[1].line, "'listen' expects 'tls' after the address, got '\(arguments[1].text)'")
            return nil
        }
        var certificate: String? = nil
        var key: String? = nil
        for option in arguments.dropFirst(2) {
            if let value = option.text.value(after: "cert=") {
                certificate = value
            } else if let value = option.text.value(after: "key=") {
                key = value
            } else {
                error(option.line, "'listen ... tls' expects cert=PATH and key=PATH, got '\(option.text)'")
                return nil
            }
        }
        // `cert=` and `key=` are given as one token each, so three arguments can hold only one of them.
        guard let certificate, let key, !certificate.isEmpty, !key.isEmpty else {
            error(arguments[1].line, "'listen ... tls' needs both cert=PATH and key=PATH")
            return nil
        }
        return Listener(address: address, tls: TLSFiles(certificate: certificate, key: key))
    }

    mutating func bindAddress(_ token: Token, directive: String, defaultPort: UInt16? = nil) -> BindAddress? {
        guard let (host, port) = splitHostPort(token.text, defaultPort: defaultPort),
            let address = IPAddress(parsing: host)
        else {
            error(
                token.line,
                "'\(directive)' expects an IP address and port like 0.0.0.0:8080 or [::]:8080, got '\(token.text)'")
            return nil
        }
        return BindAddress(host: address, port: port)
    }

    mutating func resolverSettings(_ arguments: [Token]) -> ResolverSettings? {
        var servers: [BindAddress] = []
        var system = false
        var valid: Duration? = nil
        var timeout = ResolverSettings.defaults.timeout
        var attempts = ResolverSettings.defaults.attempts
        for argument in arguments {
            let text = argument.text
            if let value = text.value(after: "valid=") {
                guard let duration = parseDuration(value), duration > .zero else {
                    error(argument.line, "'resolver' valid= expects a duration like 30s, got '\(value)'")
                    return nil
                }
                valid = duration
            } else if let value = text.value(after: "timeout=") {
                guard let duration = parseDuration(value), duration > .zero else {
                    error(argument.line, "'resolver' timeout= expects a duration like 2s, got '\(value)'")
                    return nil
                }
                timeout = duration
            } else if let value = text.value(after: "attempts=") {
                guard let count = positiveInteger(value), count <= 10 else {
                    error(argument.line, "'resolver' attempts= expects a number from 1 to 10, got '\(value)'")
                    return nil
                }
                attempts = count
            } else if text == "system" {
                system = true
            } else {
                guard let address = bindAddress(argument, directive: "resolver", defaultPort: 53) else { return nil }
                servers.append(address)
            }
        }
        if system == !servers.isEmpty {
            error(arguments[0].line, "'resolver' expects either 'system' or server addresses")
            return nil
        }
        return ResolverSettings(
            servers: system ? .system : .addresses(servers), valid: valid, timeout: timeout, attempts: attempts)
    }

    // MARK: Blocks

    mutating func upstream(_ name: Token, _ block: [Directive], line: Int) -> Upstream? {
        guard isIdentifier(name.text) else {
            error(name.line, "upstream name '\(name.text)' must be letters, digits, '-' or '_'")
            return nil
        }
        var servers: [UpstreamServer] = []
        var keepalive = 32
        var connectTimeout: Duration? = nil
        var keepaliveTimeout = Duration.seconds(60)
        for directive in checked(block, context: "'upstream'", allowed: upstreamDirectives) {
            let arguments = directive.arguments
            switch directive.name.text {
            case "server":
                guard simple(directive, 1...4) else { continue }
                guard let (host, port) = splitHostPort(arguments[0].text, defaultPort: nil), isHostName(host) else {
                    error(arguments[0].line, "'server' expects HOST:PORT, got '\(arguments[0].text)'")
                    continue
                }
                var weight = 1
                var maxFails = 1
                var failTimeout = Duration.seconds(10)
                var valid = true
                for argument in arguments.dropFirst() {
                    if let value = argument.text.value(after: "weight=") {
                        guard let number = positiveInteger(value), number <= 1000 else {
                            error(argument.line, "'server' expects weight=N (1 to 1000), got '\(argument.text)'")
                            valid = false
                            continue
                        }
                        weight = number
                    } else if let value = argument.text.value(after: "max_fails=") {
                        guard let number = nonNegativeInteger(value), number <= 1000 else {
                            error(argument.line, "'server' expects max_fails=N (0 to 1000), got '\(argument.text)'")
                            valid = false
                            continue
                        }
                        maxFails = number
                    } else if let value = argument.text.value(after: "fail_timeout=") {
                        let token = Token(text: value, line: argument.line, quoted: false)
                        guard let timeout = duration(token, directive: "fail_timeout") else {
                            valid = false
                            continue
                        }
                        failTimeout = timeout
                    } else {
                        error(
                            argument.line,
                            "'server' expects weight=N, max_fails=N or fail_timeout=DURATION, got '\(argument.text)'")
                        valid = false
                    }
                }
                guard valid else { continue }
                servers.append(
                    UpstreamServer(
                        host: host, address: IPAddress(parsing: host), port: port, weight: weight, maxFails: maxFails,
                        failTimeout: failTimeout))
            case "keepalive":
                guard simple(directive, 1...1) else { continue }
                if let count = nonNegativeInteger(arguments[0].text) {
                    keepalive = count
                } else {
                    error(arguments[0].line, "'keepalive' expects a number of connections, got '\(arguments[0].text)'")
                }
            case "connect_timeout":
                guard simple(directive, 1...1) else { continue }
                connectTimeout = duration(arguments[0], directive: "connect_timeout") ?? connectTimeout
            case "keepalive_timeout":
                guard simple(directive, 1...1) else { continue }
                keepaliveTimeout = duration(arguments[0], directive: "keepalive_timeout") ?? keepaliveTimeout
            default:
                break
            }
        }
        guard !servers.isEmpty || block.contains(where: { $0.name.text == "server" }) else {
            error(line, "upstream '\(name.text)' has no 'server'")
            return nil
        }
        guard !servers.isEmpty else { return nil }
        return Upstream(
            name: name.text, servers: servers, keepalive: keepalive, keepaliveTimeout: keepaliveTimeout,
            connectTimeout: connectTimeout, line: line)
    }

    mutating func duration(_ token: Token, directive: String, allowZero: Bool = false) -> Duration? {
        guard let value = parseDuration(token.text), value > .zero || (allowZero && value == .zero) else {
            error(token.line, "'\(directive)' expects a duration like 250ms, 10s, 2m or 1h, got '\(token.text)'")
            return nil
        }
        return value
    }

    mutating func timeouts(_ block: [Directive]) -> Timeouts {
        var timeouts = Timeouts()
        for directive in checked(block, context: "'timeouts'", allowed: timeoutDirectives) {
            let name = directive.name.text
            guard simple(directive, 1...1),
                let value = duration(directive.arguments[0], directive: name, allowZero: name == "drain")
            else { continue }
            switch name {
            case "client_header": timeouts.clientHeader = value
            case "client_keepalive": timeouts.clientKeepalive = value
            case "upstream_connect": timeouts.upstreamConnect = value
            case "upstream_response": timeouts.upstreamResponse = value
            case "tunnel_idle": timeouts.tunnelIdle = value
            case "drain": timeouts.drain = value
            default: break
            }
        }
        return timeouts
    }

    mutating func limits(_ block: [Directive]) -> Limits {
        var limits = Limits()
        for directive in checked(block, context: "'limits'", allowed: limitDirectives) {
            let name = directive.name.text
            guard simple(directive, 1...1) else { continue }
            let token = directive.arguments[0]
            let isSize = name == "header_size" || name == "uri_length" || name == "body_size"
            guard let value = isSize ? parseSize(token.text) : positiveInteger(token.text), value > 0 else {
                error(
                    token.line,
                    isSize
                        ? "'\(name)' expects a size like 16k, 1m or a byte count, got '\(token.text)'"
                        : "'\(name)' expects a positive number, got '\(token.text)'")
                continue
            }
            switch name {
            case "header_size": limits.headerSize = value
            case "uri_length": limits.uriLength = value
            case "header_count": limits.headerCount = value
            case "body_size": limits.bodySize = value
            case "max_connections": limits.maxConnections = value
            case "per_client_ip": limits.perClientIP = value
            default: break
            }
        }
        return limits
    }

    // MARK: Routes

    /// Builds one route; the second value is a named upstream it proxies to (checked once all are known).
    mutating func route(_ directive: Directive, _ block: [Directive]) -> (Route, (name: String, line: Int)?, Bool)? {
        let arguments = directive.arguments
        let kind = arguments[0]
        let matching: Matching
        switch kind.text {
        case "default":
            guard arguments.count == 1 else {
                error(arguments[1].line, "'route default' takes no pattern")
                return nil
            }
            matching = .default
        case "exact", "prefix", "regex":
            guard arguments.count == 2 else {
                error(kind.line, "'route \(kind.text)' needs a pattern")
                return nil
            }
            let pattern = arguments[1]
            if kind.text == "regex" {
                do {
                    matching = .regex(try Pattern(compiling: pattern.text))
                } catch {
                    self.error(
                        pattern.line,
                        "regex does not compile: \(error.message) at offset \(error.offset) of \"\(pattern.text)\"")
                    return nil
                }
            } else {
                guard pattern.text.hasPrefix("/") else {
                    error(pattern.line, "'route \(kind.text)' pattern must start with '/', got '\(pattern.text)'")
                    return nil
                }
                let bytes = Array(pattern.text.utf8)
                matching = kind.text == "exact" ? .exact(bytes) : .prefix(bytes)
            }
        default:
            error(kind.line, "'route' expects exact, prefix, regex or default, got '\(kind.text)'")
            return nil
        }
        let regex = matching.pattern
        var websocket = false
        var websocketLine = 0
        var buffering = true
        var bufferingLine = 0
        var rewrite: Template? = nil
        var action: Action? = nil
        var actionLines: [Int] = []
        var reference: (name: String, line: Int)? = nil
        var headers: [HeaderSetting] = []
        let errorsBefore = errors.count
        for inner in checked(block, context: "'route'", allowed: routeDirectives) {
            let values = inner.arguments
            switch inner.name.text {
            case "websocket":
                guard simple(inner, 1...1) else { continue }
                switch values[0].text {
                case "on":
                    websocket = true
                    websocketLine = inner.line
                case "off": websocket = false
                default: error(values[0].line, "'websocket' expects on or off, got '\(values[0].text)'")
                }
            case "request_buffering":
                guard simple(inner, 1...1) else { continue }
                switch values[0].text {
                case "on": buffering = true
                case "off":
                    buffering = false
                    bufferingLine = inner.line
                default: error(values[0].line, "'request_buffering' expects on or off, got '\(values[0].text)'")
                }
            case "rewrite":
                guard simple(inner, 1...1) else { continue }
                guard values[0].text.hasPrefix("/") else {
                    error(values[0].line, "'rewrite' must produce a path starting with '/', got '\(values[0].text)'")
                    continue
                }
                rewrite = template(values[0], regex)
            case "proxy":
                actionLines.append(inner.line)
                guard simple(inner, 1...1), let target = upstreamRef(values[0], matching) else { continue }
                action = .proxy(target)
                if case .named(let name) = target { reference = (name, values[0].line) }
            case "return":
                actionLines.append(inner.line)
                guard simple(inner, 1...2) else { continue }
                guard let status = Int(values[0].text), (200...599).contains(status) else {
                    error(values[0].line, "'return' expects a status from 200 to 599, got '\(values[0].text)'")
                    continue
                }
                action = .respond(status: status, body: values.count == 2 ? Array(values[1].text.utf8) : [])
            case "set_header":
                guard simple(inner, 2...2) else { continue }
                guard !values[0].text.isEmpty, values[0].text.utf8.allSatisfy(isTokenByte) else {
                    error(values[0].line, "'set_header' name '\(values[0].text)' is not a valid header field name")
                    continue
                }
                if gatewayOwnedHeaders.contains(values[0].text.lowercased()) {
                    error(
                        values[0].line,
                        "'set_header' cannot set '\(values[0].text)': the gateway writes it itself (hop-by-hop, "
                            + "framing or request id)")
                    continue
                }
                guard !values[1].text.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else {
                    error(values[1].line, "'set_header' value must not contain CR, LF or NUL")
                    continue
                }
                if let value = template(values[1], regex) {
                    headers.append(HeaderSetting(name: Array(values[0].text.utf8), value: value))
                }
            default:
                break
            }
        }
        if actionLines.count > 1 {
            error(actionLines[1], "a route takes one 'proxy' or 'return', not both (first at line \(actionLines[0]))")
            return nil
        }
        if actionLines.isEmpty {
            error(directive.line, "route '\(matching.kind)' has neither 'proxy' nor 'return'")
            return nil
        }
        guard let action, errors.count == errorsBefore else { return nil }
        if websocket, case .respond = action {
            error(websocketLine, "'websocket on' needs 'proxy', not 'return'")
            return nil
        }
        if !buffering, case .respond = action {
            error(bufferingLine, "'request_buffering off' needs 'proxy', not 'return'")
            return nil
        }
        let route = Route(
            matching: matching, websocket: websocket, action: action, rewrite: rewrite, headers: headers,
            line: directive.line)
        return (route, reference, buffering)
    }

    mutating func template(_ token: Token, _ regex: Pattern?) -> Template? {
        do {
            return try Template(parsing: token.text, pattern: regex)
        } catch {
            self.error(token.line, error.message)
            return nil
        }
    }

    /// `http://NAME` (an upstream block) or `http://HOST-TEMPLATE[:PORT]` (host built from captures).
    mutating func upstreamRef(_ token: Token, _ matching: Matching) -> UpstreamRef? {
        guard let rest = token.text.value(after: "http://") else {
            error(
                token.line,
                "'proxy' expects a URL starting with http:// (only plain HTTP upstreams for now), got '\(token.text)'")
            return nil
        }
        guard !rest.contains("/") && !rest.contains("?") else {
            error(token.line, "'proxy' URL must not carry a path or query; use 'rewrite' to change the path")
            return nil
        }
        guard rest.contains("$") else {
            guard isIdentifier(rest) else {
                error(
                    token.line,
                    "'proxy' expects http://UPSTREAM-NAME or a host template with captures, got '\(token.text)'")
                return nil
            }
            return .named(rest)
        }
        guard case .regex(let pattern) = matching else {
            error(
                token.line,
                "the host template '\(rest)' uses a capture on a route of kind '\(matching.kind)'; only regex routes have captures"
            )
            return nil
        }
        guard let (host, port) = splitHostPort(rest, defaultPort: 80) else {
            error(token.line, "'proxy' host template has a bad port: '\(rest)'")
            return nil
        }
        guard let template = template(Token(text: host, line: token.line, quoted: token.quoted), pattern) else {
            return nil
        }
        // Every capture stands for a DNS-1123 label at match time; with `a` in their place the host must be a name.
        guard isHostName(sampleHost(host)) else {
            error(token.line, "'proxy' host template '\(host)' does not form a DNS name")
            return nil
        }
        return .dynamic(host: template, port: port)
    }
}

// MARK: Value syntax

private func positiveInteger(_ text: String) -> Int? {
    guard let value = nonNegativeInteger(text), value > 0 else { return nil }
    return value
}

private func nonNegativeInteger(_ text: String) -> Int? {
    guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
    return Int(text)
}

/// `250ms`, `10s`, `2m`, `1h`, `1d`, or plain seconds.
func parseDuration(_ text: String) -> Duration? {
    let digits = text.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, let number = Int64(digits), number <= 1_000_000_000 else { return nil }
    switch text.dropFirst(digits.count) {
    case "", "s": return .seconds(number)
    case "ms": return .milliseconds(number)
    case "m": return .seconds(number * 60)
    case "h": return .seconds(number * 3600)
    case "d": return .seconds(number * 86400)
    default: return nil
    }
}

/// `16k`, `1m`, `1g` (powers of 1024) or a plain byte count.
func parseSize(_ text: String) -> Int? {
    let digits = text.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, let number = Int(digits), number <= 1 << 40 else { return nil }
    switch text.dropFirst(digits.count) {
    case "": return number
    case "k", "K": return number << 10
    case "m", "M": return number << 20
    case "g", "G": return number << 30
    default: return nil
    }
}

/// `HOST:PORT`, `[V6]:PORT`, or just `HOST` when a default port is given.
private func splitHostPort(_ text: String, defaultPort: UInt16?) -> (String, UInt16)? {
    var host = Substring(text)
    var portText: Substring? = nil
    if host.hasPrefix("[") {
        guard let close = host.firstIndex(of: "]") else { return nil }
        let after = host[host.index(after: close)...]
        host = host[host.index(after: host.startIndex)..<close]
        if !after.isEmpty {
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        }
    } else if let colon = host.lastIndex(of: ":") {
        portText = host[host.index(after: colon)...]
        host = host[..<colon]
        if host.contains(":") { return nil }
    }
    guard !host.isEmpty else { return nil }
    if let portText {
        guard let port = UInt16(portText), port > 0, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            return nil
        }
        return (String(host), port)
    }
    guard let defaultPort else { return nil }
    return (String(host), defaultPort)
}

/// An IP literal, or a DNS name of letters, digits, `-` and `.` that `DNS.Name` accepts.
private func isHostName(_ text: String) -> Bool {
    if IPAddress(parsing: text) != nil { return true }
    let labels = text.split(separator: ".", omittingEmptySubsequences: false)
    guard !labels.isEmpty,
        labels.allSatisfy({ label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) || isLetterByte($0) }
        })
    else { return false }
    return (try? Name(parsing: text)) != nil
}

/// The host template with each capture reference replaced by `a`, for a shape check at load.
private func sampleHost(_ template: String) -> String {
    var output: [UInt8] = []
    let bytes = Array(template.utf8)
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "$") && index + 1 < bytes.count {
            index += 1
            while index < bytes.count
                && (bytes[index] == UInt8(ascii: "_") || isLetterByte(bytes[index])
                    || (bytes[index] >= 48 && bytes[index] <= 57))
            {
                index += 1
            }
            output.append(UInt8(ascii: "a"))
        } else {
            output.append(bytes[index])
            index += 1
        }
    }
    return String(decoding: output, as: UTF8.self)
}

private func isLetterByte(_ byte: UInt8) -> Bool {
    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
}

private func isIdentifier(_ text: String) -> Bool {
    !text.isEmpty
        && text.utf8.allSatisfy {
            isLetterByte($0) || ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
        }
}

/// RFC 9110 §5.6.2 token characters (header field names).
private func isTokenByte(_ byte: UInt8) -> Bool {
    if isLetterByte(byte) || (byte >= 48 && byte <= 57) { return true }
    return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
}

extension String {
    /// The rest of the string after `prefix`, or nil when it does not start with it.
    fileprivate func value(after prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
