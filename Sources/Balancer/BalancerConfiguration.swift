// The balancer's settings: one table of environment variables and flags, their defaults, and their checks.
import Ring

/// How the desired socket replica count is applied (SYSTEM §3). Never both.
public enum ScaleMode: String, Sendable, CaseIterable {
    /// Only export `rtc_balancer_desired_socket_replicas`; a KEDA ScaledObject scales the Deployment.
    case keda
    /// Patch the socket Deployment's `scale` subresource.
    case direct
}

/// Everything `rtc-balancer` is configured with (SYSTEM §3). Built from the environment, then flags, by `parse`.
public struct BalancerConfiguration: Sendable, Equatable {
    /// This replica's pod name: its identity as Lease holder.
    public var podName = "rtc-balancer-local"
    public var namespace = "rtc"
    public var bindAddress = "0.0.0.0"
    public var httpPort: UInt16 = 8081
    public var redisURL = "redis://127.0.0.1:6379"
    public var kafkaBootstrap = "127.0.0.1:9092"
    public var ringSecret: [UInt8] = []
    public var scaleMode = ScaleMode.keda
    public var socketDeployment = "rtc-socket"
    public var socketPodSelector = "app.kubernetes.io/name=rtc-socket"
    public var leaseName = "rtc-balancer-leader"
    public var minSocketReplicas = 2
    public var maxSocketReplicas = 50
    public var urlForm = URLForm.name
    /// Seconds between rounds: every replica reads the heartbeats and the ring; the leader reweights, publishes,
    /// scales and sets deletion costs.
    public var reconcileIntervalSeconds = 5
    /// Empty: in-cluster (service-account token and CA) when running in a pod, else no Kubernetes.
    public var kubeAPIURL = ""
    public var connectionsPerPod = 5000
    public var cpuPerPod = 0.75
    public var p95TargetMs = 250.0
    public var scaleOutCooldownSeconds = 60
    public var scaleInCooldownSeconds = 300
    /// The longest a departed node's delivery topic is read for re-routing.
    public var rerouteWindowSeconds = 120

    public init() {}

    /// One setting: its environment variable, its flag, what it means, and how it is read.
    struct Setting: Sendable {
        let environment: String
        let flag: String
        let help: String
        let apply: @Sendable (inout BalancerConfiguration, String) -> String?
        let current: @Sendable (BalancerConfiguration) -> String
    }

    static let settings: [Setting] = [
        text("POD_NAME", "--pod-name", "this replica's name (Lease holder identity)", \.podName, check: nodeName),
        text("POD_NAMESPACE", "--namespace", "Kubernetes namespace", \.namespace, check: label),
        text("BIND_ADDRESS", "--bind", "IPv4 address to listen on", \.bindAddress, check: ipv4),
        port("HTTP_PORT", "--port", "port of /ws/connect, /api/v1/ring and the admin endpoints", \.httpPort),
        text("REDIS_URL", "--redis-url", "redis://[:password@]host[:port][/db]", \.redisURL, check: redisURL),
        text("KAFKA_BOOTSTRAP", "--kafka-bootstrap", "Kafka bootstrap servers (host:port,...)", \.kafkaBootstrap),
        secret("RING_SECRET", "--ring-secret", "HMAC-SHA256 key of ring updates (required)", \.ringSecret),
        choice(
            "SCALE_MODE", "--scale-mode", "keda: export the desired count only; direct: patch the scale", \.scaleMode),
        text(
            "SOCKET_DEPLOYMENT", "--socket-deployment", "the socket Deployment scaled in direct mode",
            \.socketDeployment),
        text(
            "SOCKET_POD_SELECTOR", "--socket-pod-selector", "label selector of the socket pods (deletion costs)",
            \.socketPodSelector),
        text("LEASE_NAME", "--lease-name", "the coordination.k8s.io/v1 Lease of leader election", \.leaseName),
        number("MIN_SOCKET_REPLICAS", "--min-socket-replicas", "fewest socket pods", \.minSocketReplicas, 0...10_000),
        number("MAX_SOCKET_REPLICAS", "--max-socket-replicas", "most socket pods", \.maxSocketReplicas, 1...10_000),
        choice("SOCKET_URL_FORM", "--socket-url-form", "name: /ws/<pod>/connect; ip: /ws/<a-b-c-d>/connect", \.urlForm),
        number(
            "RECONCILE_INTERVAL_SEC", "--reconcile-interval", "seconds between heartbeat reads and leader rounds",
            \.reconcileIntervalSeconds, 1...3600),
        text("KUBE_API_URL", "--kube-api-url", "Kubernetes API URL (empty: in-cluster, or none)", \.kubeAPIURL),
        number(
            "TARGET_CONNECTIONS_PER_POD", "--target-connections-per-pod", "connections one socket pod should hold",
            \.connectionsPerPod, 1...10_000_000),
        decimal("TARGET_CPU_PER_POD", "--target-cpu-per-pod", "CPU cores one socket pod should use", \.cpuPerPod),
        decimal("TARGET_P95_MS", "--target-p95-ms", "p95 delivery latency above which a pod is added", \.p95TargetMs),
        number(
            "SCALE_OUT_COOLDOWN_SEC", "--scale-out-cooldown", "seconds between scale-outs", \.scaleOutCooldownSeconds,
            0...86_400),
        number(
            "SCALE_IN_COOLDOWN_SEC", "--scale-in-cooldown", "seconds after any change before a scale-in",
            \.scaleInCooldownSeconds, 0...86_400),
        number(
            "REROUTE_WINDOW_SEC", "--reroute-window", "longest read of a departed node's delivery topic",
            \.rerouteWindowSeconds, 1...86_400),
    ]

    /// Reads the environment, then the flags (`--flag value` or `--flag=value`); a flag wins over its variable.
    /// Fails with a message naming the variable or flag and the value it did not accept.
    public static func parse(
        arguments: [String], environment: [String: String]
    ) -> Result<BalancerConfiguration, BalancerConfigurationError> {
        var configuration = BalancerConfiguration()
        for setting in settings {
            guard let value = environment[setting.environment] else { continue }
            if let problem = setting.apply(&configuration, value) {
                return .failure(.init(message: "\(setting.environment)=\(quoted(value)): \(problem)"))
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
                return .failure(.init(message: "unknown option \(quoted(argument)) (see --help)"))
            }
            if value == nil { value = rest.popFirst() }
            guard let value else { return .failure(.init(message: "\(name) needs a value")) }
            if let problem = setting.apply(&configuration, value) {
                return .failure(.init(message: "\(name) \(quoted(value)): \(problem)"))
            }
        }
        if configuration.ringSecret.isEmpty {
            return .failure(.init(message: "RING_SECRET (or --ring-secret) is required: ring updates are signed"))
        }
        if configuration.minSocketReplicas > configuration.maxSocketReplicas {
            return .failure(
                .init(
                    message: "MIN_SOCKET_REPLICAS (\(configuration.minSocketReplicas)) must not exceed "
                        + "MAX_SOCKET_REPLICAS (\(configuration.maxSocketReplicas))"))
        }
        return .success(configuration)
    }

    /// The options part of `--help`: each flag, its variable, its meaning and its default.
    public static var helpText: String {
        let defaults = BalancerConfiguration()
        var lines: [String] = []
        for setting in settings {
            var left = "  \(setting.flag) / \(setting.environment)"
            while left.count < 61 { left += " " }
            let value = setting.current(defaults)
            lines.append(left + " " + setting.help + (value.isEmpty ? "" : " (default \(value))"))
        }
        return lines.joined(separator: "\n")
    }

    /// The weight policy (fixed) and the scale policy (from these settings).
    public var scalePolicy: ScalePolicy {
        var policy = ScalePolicy()
        policy.minReplicas = minSocketReplicas
        policy.maxReplicas = maxSocketReplicas
        policy.connectionsPerPod = connectionsPerPod
        policy.cpuPerPod = cpuPerPod
        policy.p95TargetMs = p95TargetMs
        policy.scaleOutCooldown = Double(scaleOutCooldownSeconds)
        policy.scaleInCooldown = Double(scaleInCooldownSeconds)
        return policy
    }

    // MARK: Setting builders

    private static func text(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<BalancerConfiguration, String> & Sendable,
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
        _ path: WritableKeyPath<BalancerConfiguration, [UInt8]> & Sendable
    ) -> Setting {
        Setting(
            environment: environment, flag: flag, help: help,
            apply: { configuration, value in
                configuration[keyPath: path] = Array(value.utf8)
                return nil
            },
            current: { _ in "" })
    }

    private static func choice<Choice: RawRepresentable & CaseIterable & Sendable>(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<BalancerConfiguration, Choice> & Sendable
    ) -> Setting where Choice.RawValue == String {
        Setting(
            environment: environment, flag: flag, help: help,
            apply: { configuration, value in
                guard let chosen = Choice(rawValue: value) else {
                    return "must be one of " + Choice.allCases.map(\.rawValue).joined(separator: ", ")
                }
                configuration[keyPath: path] = chosen
                return nil
            },
            current: { $0[keyPath: path].rawValue })
    }

    private static func number(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<BalancerConfiguration, Int> & Sendable, _ range: ClosedRange<Int>
    ) -> Setting {
        Setting(
            environment: environment, flag: flag, help: help,
            apply: { configuration, value in
                guard let number = Int(value) else { return "not a whole number" }
                guard range.contains(number) else { return "out of range \(range.lowerBound)...\(range.upperBound)" }
                configuration[keyPath: path] = number
                return nil
            },
            current: { String($0[keyPath: path]) })
    }

    private static func decimal(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<BalancerConfiguration, Double> & Sendable
    ) -> Setting {
        Setting(
            environment: environment, flag: flag, help: help,
            apply: { configuration, value in
                guard let number = Double(value), number.isFinite, number > 0 else { return "not a number above 0" }
                configuration[keyPath: path] = number
                return nil
            },
            current: { String($0[keyPath: path]) })
    }

    private static func port(
        _ environment: String, _ flag: String, _ help: String,
        _ path: WritableKeyPath<BalancerConfiguration, UInt16> & Sendable
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

    // MARK: Checks

    @Sendable private static func label(_ value: String) -> String? {
        isDNSLabel(value) ? nil : "must be a DNS-1123 label (lowercase letters, digits, inner '-'; 1 to 63)"
    }

    @Sendable private static func nodeName(_ value: String) -> String? {
        isIdentifier(value, maxBytes: 253) ? nil : "must be 1 to 253 characters of [A-Za-z0-9._:@-]"
    }

    @Sendable private static func ipv4(_ value: String) -> String? {
        dashedIPv4(value) == nil ? "not an IPv4 address" : nil
    }

    @Sendable private static func redisURL(_ value: String) -> String? {
        value.hasPrefix("redis://") && value.utf8.count > 8 ? nil : "not a redis:// URL"
    }
}

/// A setting the balancer cannot start with; `message` names it.
public struct BalancerConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
