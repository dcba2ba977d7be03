// The socket node's settings: one table of environment variables and flags, their defaults, and their checks.

/// Everything `rtc-socket` is configured with (SYSTEM §4). Built from the environment, then flags, by `parse`.
public struct NodeConfiguration: Sendable, Equatable {
    /// This node's id: the pod name, also the DNS label the gateway resolves (DNS-1123).
    public var nodeID: String = "socket-local"
    public var namespace: String = "rtc"
    /// The address the balancer may hand out in `ip` URL form; written into every heartbeat.
    public var podIP: String = ""
    public var bindAddress: String = "0.0.0.0"
    public var httpPort: UInt16 = 8080
    public var redisURL: String = "redis://127.0.0.1:6379"
    public var kafkaBootstrap: String = "127.0.0.1:9092"
    public var ringSecret: [UInt8] = []
    /// Empty: connects need no token.
    public var authSecret: [UInt8] = []
    public var drainSeconds: Int = 300
    public var resumeTTLSeconds: Int = 120
    /// Entries kept per recipient in the offline buffer.
    public var bufferMax: Int = 1000
    public var heartbeatIntervalSeconds: Int = 5
    public var heartbeatTTLSeconds: Int = 15
    /// A Ping goes out after this long without a write to the client.
    public var pingIntervalSeconds: Int = 10
    /// A client silent this long is closed.
    public var idleTimeoutSeconds: Int = 20
    public var maxMessageBytes: Int = 64 * 1024
    /// A repeated (sender, msgId) within this window is accepted once.
    public var dedupWindowSeconds: Int = 300
    /// Clients whose owner changed in a ring update are moved over this window.
    public var moveWindowSeconds: Int = 10
    /// Unsent bytes a slow client may hold before it is closed.
    public var maxPendingBytes: Int = 1 << 20
    /// Longest wait of a Kafka fetch for data (librdkafka's `fetch.wait.max.ms`). A real broker answers as soon as
    /// data arrives; librdkafka's mock cluster always waits this long, so the default is short.
    public var kafkaFetchWaitMilliseconds: Int = 20

    public init() {}

    /// One setting: its environment variable, its flag, what it means, and how it is read.
    struct Setting: Sendable {
        let environment: String
        let flag: String
        let help: String
        let apply: @Sendable (inout NodeConfiguration, String) -> String?
        let current: @Sendable (NodeConfiguration) -> String
    }

    static let settings: [Setting] = [
        text("NODE_ID", "--node-id", "node id (the pod name; a DNS-1123 label)", \.nodeID, check: isDNSLabel),
        text("POD_NAMESPACE", "--namespace", "Kubernetes namespace", \.namespace, check: isDNSLabel),
        text(
            "POD_IP", "--pod-ip", "address written into heartbeats (default: the bind address, or 127.0.0.1)", \.podIP),
        text("BIND_ADDRESS", "--bind", "IPv4 address to listen on", \.bindAddress, check: isIPv4),
        port("HTTP_PORT", "--port", "port of the WebSocket and HTTP endpoints", \.httpPort),
        text("REDIS_URL", "--redis-url", "redis://[:password@]host[:port][/db]", \.redisURL, check: isRedisURL),
        text("KAFKA_BOOTSTRAP", "--kafka-bootstrap", "Kafka bootstrap servers (host:port,...)", \.kafkaBootstrap),
        secret("RING_SECRET", "--ring-secret", "HMAC-SHA256 key of ring updates (required)", \.ringSecret),
        secret("AUTH_SECRET", "--auth-secret", "HMAC-SHA256 key of client tokens (empty: no tokens)", \.authSecret),
        number("DRAIN_SECONDS", "--drain-seconds", "drain window", \.drainSeconds, 0...86_400),
        number("RESUME_TTL_SEC", "--resume-ttl", "seconds an offline buffer is kept", \.resumeTTLSeconds, 1...604_800),
        number("BUFFER_MAX", "--buffer-max", "messages kept per offline recipient", \.bufferMax, 1...1_000_000),
        number(
            "HEARTBEAT_INTERVAL_SEC", "--heartbeat-interval", "seconds between heartbeats", \.heartbeatIntervalSeconds,
            1...3600),
        number("HEARTBEAT_TTL_SEC", "--heartbeat-ttl", "heartbeat expiry", \.heartbeatTTLSeconds, 2...3600),
        number(
            "PING_INTERVAL_SEC", "--ping-interval", "Ping after this long without writes", \.pingIntervalSeconds,
            1...3600),
        number(
            "IDLE_TIMEOUT_SEC", "--idle-timeout", "close after this long without reads", \.idleTimeoutSeconds, 2...7200),
        number(
            "MAX_MESSAGE_BYTES", "--max-message-bytes", "largest client message", \.maxMessageBytes, 256...16_777_216),
        number("DEDUP_WINDOW_SEC", "--dedup-window", "window for repeated msgIds", \.dedupWindowSeconds, 1...86_400),
        number(
            "MOVE_WINDOW_SEC", "--move-window", "window for moving clients on a ring change", \.moveWindowSeconds,
            0...3600),
        number(
            "KAFKA_FETCH_WAIT_MS", "--kafka-fetch-wait-ms", "longest wait of a Kafka fetch for data",
            \.kafkaFetchWaitMilliseconds, 1...10_000),
        number(
            "MAX_PENDING_BYTES", "--max-pending-bytes", "unsent bytes a slow client may hold", \.maxPendingBytes,
            4096...1_073_741_824),
    ]

    /// Reads the environment, then the flags (`--flag value` or `--flag=value`); a flag wins over its variable.
    /// Fails with a message naming the variable or flag and the value it did not accept.
    public static func parse(
        arguments: [String], environment: [String: String]
    ) -> Result<NodeConfiguration, NodeConfigurationError> {
        var configuration = NodeConfiguration()
        for setting in settings {
            guard let value = environment[setting.environment] else { continue }
            if let problem = setting.apply(&configuration, value) {
                return .failure(NodeConfigurationError(message: "\(setting.environment)=\(quoted(value)): \(problem)"))
            }
        }
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            var name = argument
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            guard let setting = settings.first(where: { $0.flag == name }) else {
                return .failure(NodeConfigurationError(message: "unknown option \(quoted(argument)) (see --help)"))
            }
            if value == nil { value = rest.popFirst() }
            guard let value else {
                return .failure(NodeConfigurationError(message: "\(name) needs a value"))
            }
            if let problem = setting.apply(&configuration, value) {
                return .failure(NodeConfigurationError(message: "\(name) \(quoted(value)): \(problem)"))
            }
        }
        if configuration.ringSecret.isEmpty {
            return .failure(
                NodeConfigurationError(message: "RING_SECRET (or --ring-secret) is required: ring updates are signed"))
        }
        if configuration.heartbeatTTLSeconds <= configuration.heartbeatIntervalSeconds {
            return .failure(
                NodeConfigurationError(
                    message: "HEARTBEAT_TTL_SEC (\(configuration.heartbeatTTLSeconds)) must exceed "
                        + "HEARTBEAT_INTERVAL_SEC (\(configuration.heartbeatIntervalSeconds))"))
        }
        if configuration.idleTimeoutSeconds <= configuration.pingIntervalSeconds {
            return .failure(
                NodeConfigurationError(
                    message: "IDLE_TIMEOUT_SEC (\(configuration.idleTimeoutSeconds)) must exceed "
                        + "PING_INTERVAL_SEC (\(configuration.pingIntervalSeconds))"))
        }
        if configuration.podIP.isEmpty {
            configuration.podIP = configuration.bindAddress == "0.0.0.0" ? "127.0.0.1" : configuration.bindAddress
        }
        return .success(configuration)
    }

    /// The options part of `--help`: each flag, its variable, its meaning and its default.
    public static var helpText: String {
        let defaults = NodeConfiguration()
        var lines: [String] = []
        for setting in settings {
            var left = "  \(setting.flag) / \(setting.environment)"
            while left.count < 48 { left += " " }
            let value = setting.current(defaults)
            lines.append(left + " " + setting.help + (value.isEmpty ? "" : " (default \(value))"))
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Setting builders

    private static func text(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<NodeConfiguration, String> & Sendable,
        check: @escaping @Sendable (String) -> String? = { _ in nil }
    ) -> Setting {
        Setting(
            environment: environment, flag: flag, help: help,
            apply: { configuration, value in
                if let problem = check(value) { return problem }
                configuration[keyPath: path] = value
                return nil
            },
            current: { $0[keyPath: path] })
    }

    private static func secret(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<NodeConfiguration, [UInt8]> & Sendable
    ) -> Setting {
        Setting(
            environment: environment, flag: flag, help: help,
            apply: { configuration, value in
                configuration[keyPath: path] = Array(value.utf8)
                return nil
            },
            current: { _ in "" })
    }

    private static func number(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<NodeConfiguration, Int> & Sendable,
        _ range: ClosedRange<Int>
    ) -> Setting {
        Setting(
            environment: environment, flag: flag, help: help,
            apply: { configuration, value in
                guard let number = Int(value) else { return "not a whole number" }
                guard range.contains(number) else {
                    return "out of range \(range.lowerBound)...\(range.upperBound)"
                }
                configuration[keyPath: path] = number
                return nil
            },
            current: { String($0[keyPath: path]) })
    }

    private static func port(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<NodeConfiguration, UInt16> & Sendable
    ) -> Setting {
        Setting(
            environment: environment, flag: flag, help: help,
            apply: { configuration, value in
                guard let number = UInt16(value), number > 0 else { return "not a port (1...65535)" }
                configuration[keyPath: path] = number
                return nil
            },
            current: { String($0[keyPath: path]) })
    }

    private static func quoted(_ value: String) -> String { "\"\(value)\"" }
}

/// A setting the node cannot start with; `message` names it.
public struct NodeConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

// MARK: Checks

@Sendable func isDNSLabel(_ value: String) -> String? {
    let bytes = Array(value.utf8)
    guard (1...63).contains(bytes.count) else { return "must be 1 to 63 characters (a DNS-1123 label)" }
    func inner(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-")
    }
    guard bytes.allSatisfy(inner), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else {
        return "must be lowercase letters, digits and inner '-' (a DNS-1123 label)"
    }
    return nil
}

@Sendable func isIPv4(_ value: String) -> String? {
    let parts = value.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4, parts.allSatisfy({ part in UInt8(part) != nil && part.count <= 3 }) else {
        return "not an IPv4 address"
    }
    return nil
}

@Sendable func isRedisURL(_ value: String) -> String? {
    value.hasPrefix("redis://") && value.count > 8 ? nil : "not a redis:// URL"
}
