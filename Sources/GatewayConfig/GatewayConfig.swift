// The loaded gateway configuration: an immutable value swapped whole on reload.
import DNS
import Routing

/// Everything `gateway.conf` says, with defaults filled in. Immutable and `Sendable`: a reload builds a new
/// value and swaps it whole, so live tunnels and in-flight requests keep the one they started with.
public struct GatewayConfig: Sendable {
    /// The file name used in messages.
    public let file: String
    /// Event loops to run (`workers auto` = the `cores` given to the loader).
    public let workers: Int
    /// `events auto|epoll|io_uring;` — the readiness backend of the event loops; nil when the file does not say
    /// (the process default applies: `RTC_EVENTS`, else epoll). Read at start only.
    public let events: Events?
    public let openFileLimit: OpenFileLimit
    /// Public listeners, in file order (at least one).
    public let listeners: [Listener]
    /// Admin listener: /metrics, /healthz, /readyz. Default 0.0.0.0:9113.
    public let admin: BindAddress
    public let resolver: ResolverSettings
    /// Upstream blocks in file order.
    public let upstreams: [Upstream]
    public let timeouts: Timeouts
    public let limits: Limits
    public let accessLog: AccessLog
    public let routes: RouteTable
    /// Per route (same order as `routes.routes`): whether its request bodies are read and checked whole before
    /// the upstream sees the request (`request_buffering on`, the default, like nginx's) or streamed as they come.
    public let requestBuffering: [Bool]
    /// FNV-1a 64 of the expanded token stream (comments and layout excluded): the `config hash` metric.
    public let configHash: UInt64

    /// The upstream block with this name.
    public func upstream(named name: String) -> Upstream? { upstreams.first { $0.name == name } }
}

/// The `events` directive's choice of readiness backend.
public enum Events: String, Sendable {
    /// io_uring when the machine allows it (containers often block it with seccomp), else epoll with one log line.
    case auto
    case epoll
    case ioURing = "io_uring"
}

/// An IP address and port to bind or connect to.
public struct BindAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: IPAddress
    public let port: UInt16

    public init(host: IPAddress, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var description: String {
        if case .v6 = host { return "[\(host)]:\(port)" }
        return "\(host):\(port)"
    }
}

/// `listen ADDR:PORT [tls cert=PATH key=PATH]`.
public struct Listener: Sendable, Equatable {
    public let address: BindAddress
    /// Certificate and key files when the listener terminates TLS (nil: plain TCP).
    public let tls: TLSFiles?

    public init(address: BindAddress, tls: TLSFiles?) {
        self.address = address
        self.tls = tls
    }
}

/// PEM files for a TLS listener.
public struct TLSFiles: Sendable, Equatable {
    public let certificate: String
    public let key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}

/// `worker_rlimit_nofile`: what to do with RLIMIT_NOFILE at start (getrlimit(2)).
public enum OpenFileLimit: Sendable, Equatable {
    /// Not configured: leave the limit alone.
    case unchanged
    /// `max`: raise the soft limit to the hard limit.
    case hardLimit
    /// A number: set the soft limit to it.
    case count(Int)
}

/// `resolver system|ADDR[:PORT]... [valid=DUR] [timeout=DUR] [attempts=N]`.
public struct ResolverSettings: Sendable, Equatable {
    public enum Servers: Sendable, Equatable {
        /// Servers and search list from /etc/resolv.conf.
        case system
        /// These servers (port 53 unless given), no search list.
        case addresses([BindAddress])
    }

    public let servers: Servers
    /// Cap on the TTL of cached answers (nil: the TTL as received).
    public let valid: Duration?
    /// Time to wait for one answer before retrying.
    public let timeout: Duration
    /// Tries per server.
    public let attempts: Int

    public init(servers: Servers, valid: Duration?, timeout: Duration, attempts: Int) {
        self.servers = servers
        self.valid = valid
        self.timeout = timeout
        self.attempts = attempts
    }

    public static let defaults = ResolverSettings(servers: .system, valid: nil, timeout: .seconds(2), attempts: 2)
}

/// `upstream NAME { server HOST:PORT [weight=N] [max_fails=N] [fail_timeout=DUR]; keepalive N; keepalive_timeout DUR; connect_timeout DUR; }`.
public struct Upstream: Sendable, Equatable {
    public let name: String
    public let servers: [UpstreamServer]
    /// Idle keep-alive connections kept per worker. Default 32.
    public let keepalive: Int
    /// How long an idle pooled connection is kept (like nginx's upstream `keepalive_timeout`). Default 60 s: a
    /// connection a middlebox dropped silently is not kept, and reused, forever.
    public let keepaliveTimeout: Duration
    /// Overrides `timeouts.upstream_connect` for this upstream.
    public let connectTimeout: Duration?
    /// Line of the `upstream` directive.
    public let line: Int
}

/// One `server` line: a DNS name (re-resolved by TTL) or an IP address, and a port.
public struct UpstreamServer: Sendable, Equatable {
    /// The host as written (after `${VAR}` expansion); also the `Host` header sent upstream.
    public let host: String
    /// Set when the host is an IP literal: no DNS needed.
    public let address: IPAddress?
    public let port: UInt16
    /// Relative share of requests (default 1).
    public let weight: Int
    /// Passive health, as nginx's: after `maxFails` failed attempts (connect refused or timed out, reset before a
    /// response) within `failTimeout`, an address is skipped for `failTimeout`. 0: never skipped. Default 1, 10 s.
    public let maxFails: Int
    public let failTimeout: Duration

    public init(
        host: String, address: IPAddress?, port: UInt16, weight: Int, maxFails: Int = 1,
        failTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.address = address
        self.port = port
        self.weight = weight
        self.maxFails = maxFails
        self.failTimeout = failTimeout
    }
}

/// `timeouts { ... }`.
public struct Timeouts: Sendable, Equatable {
    /// A request head must arrive within this (408 after).
    public var clientHeader: Duration = .seconds(10)
    /// Idle time allowed between two requests of a downstream keep-alive connection.
    public var clientKeepalive: Duration = .seconds(75)
    public var upstreamConnect: Duration = .seconds(5)
    /// Upstream response head after the request was sent (504 after).
    public var upstreamResponse: Duration = .seconds(60)
    /// Idle WebSocket tunnel.
    public var tunnelIdle: Duration = .seconds(3600)
    /// Window over which tunnels are closed on SIGTERM.
    public var drain: Duration = .seconds(30)

    public init() {}
}

/// `limits { ... }`.
public struct Limits: Sendable, Equatable {
    /// Largest request head in bytes (431 beyond).
    public var headerSize = 32 * 1024
    /// Longest request target in bytes (414 beyond).
    public var uriLength = 8 * 1024
    /// Most header fields in a request (431 beyond).
    public var headerCount = 100
    /// Largest request body in bytes (413 beyond).
    public var bodySize = 1024 * 1024
    /// Open downstream connections per worker process beyond which new ones are refused.
    public var maxConnections = 1_000_000
    /// Open connections per client IP (nil: no limit).
    public var perClientIP: Int? = nil

    public init() {}
}

/// `access_log off|stdout|PATH`: one JSON line per request or closed tunnel.
public enum AccessLog: Sendable, Equatable {
    case off
    case stdout
    case file(String)
}
