// What the resolver asks whom and how long it keeps answers: servers, search list, timeouts and cache limits.
import DNS
import Sys

/// The settings of one `Resolver`; an immutable value, replaced whole when the gateway reloads its config.
public struct ResolverConfiguration: Sendable, Hashable {
    /// Servers in the order they are tried, each with its port (the gateway's config allows `ADDR:PORT`).
    public var servers: [SocketAddress]
    /// The search list (resolv.conf(5) "search"); a name with fewer than `ndots` dots is tried with each first.
    public var search: [Name]
    /// resolv.conf(5) "ndots".
    public var ndots: Int
    /// How long one try (one query to one server) may take before the next server is asked.
    public var timeout: Duration
    /// Rounds over all servers before a lookup fails (resolv.conf(5) "attempts").
    public var attempts: Int
    /// Caps positive TTLs, like nginx's `resolver ... valid=`; `nil` honours the zone's TTLs as they are.
    public var maximumTTL: UInt32?
    /// Caps the TTL of negative answers, NXDOMAIN and NODATA (RFC 2308 §5), so a new name appears quickly.
    public var negativeTTLCap: UInt32
    /// How long an expired answer may still be served while refreshing it fails (RFC 8767 §4).
    public var staleWindow: Duration
    /// The most names the cache holds; the least recently used one is dropped beyond this.
    public var cacheCapacity: Int

    public init(
        servers: [SocketAddress] = [.loopback(port: 53)], search: [Name] = [], ndots: Int = 1,
        timeout: Duration = .seconds(5), attempts: Int = 2, maximumTTL: UInt32? = nil, negativeTTLCap: UInt32 = 10,
        staleWindow: Duration = .seconds(60), cacheCapacity: Int = 4096
    ) {
        self.servers = servers
        self.search = search
        self.ndots = ndots
        self.timeout = timeout
        self.attempts = attempts
        self.maximumTTL = maximumTTL
        self.negativeTTLCap = negativeTTLCap
        self.staleWindow = staleWindow
        self.cacheCapacity = cacheCapacity
    }

    /// Servers, search list, ndots, timeout and attempts from a resolv.conf(5) file, every server on port 53;
    /// glibc's defaults when the file is missing or says nothing (a server on 127.0.0.1).
    public static func system(path: String = "/etc/resolv.conf") -> ResolverConfiguration {
        let conf = readSmallFile(path).map { ResolvConf(parsing: String(decoding: $0, as: UTF8.self)) } ?? ResolvConf()
        return ResolverConfiguration(
            servers: conf.nameservers.map { SocketAddress($0, port: 53) }, search: conf.search, ndots: conf.ndots,
            timeout: .seconds(conf.timeout), attempts: conf.attempts)
    }

    /// Parses a server as the gateway's config writes it: `10.0.0.10`, `10.0.0.10:5353`, `fd00::a` or
    /// `[fd00::a]:5353`; port 53 when none is given. `nil` when it is not an address.
    public static func server(_ text: String) -> SocketAddress? {
        SocketAddress(text) ?? SocketAddress(host: text, port: 53)
    }
}

extension SocketAddress {
    /// The socket address of `address` at `port` (how a resolved address becomes something to connect to).
    public init(_ address: IPAddress, port: UInt16) {
        switch address {
        case .v4(let v4): self = .v4(address: v4.value, port: port)
        case .v6(let v6): self = .v6(high: v6.high, low: v6.low, port: port, scope: 0)
        }
    }
}
