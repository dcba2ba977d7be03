// What a lookup ends with, why it failed, and the callback that receives it.
import DNS

/// How a lookup of one host name ended.
public enum ResolveOutcome: Equatable, Sendable {
    /// The name's IPv4 addresses, rotated so that successive callers start at successive addresses; `ttl` is the
    /// number of seconds until the cached answer expires (0 for a stale answer served while refreshing).
    case addresses([IPAddress], ttl: UInt32)
    /// NXDOMAIN for every candidate name of the search list (RFC 2308 §2.1).
    case nameNotFound
    /// The name exists but has no address of the type asked (NODATA, RFC 2308 §2.2).
    case noAddresses
    /// No usable answer; the kind of the last thing that went wrong.
    case failed(ResolveFailure)
}

/// Why a lookup got no answer.
public enum ResolveFailure: Equatable, Sendable {
    /// No server answered in time, on any try.
    case timeout
    /// The last server answered SERVFAIL (or another error code than REFUSED).
    case serverFailure
    /// The last server answered REFUSED.
    case refused
    /// The name is not a valid DNS name (nothing was sent), or the last reply to the query could not be decoded.
    case malformed
    /// The last server could not be reached: ICMP port unreachable, TCP refused or reset, no socket available.
    case unreachable
    /// Too many distinct names, or too many callers of one name, are being looked up at once.
    case overloaded
    /// The resolver was closed.
    case closed
}

/// Receives the outcome of a lookup that `Resolver.resolve` could not answer at once.
public protocol ResolveHandler: AnyObject {
    /// Called exactly once per `resolve` that returned `nil`, on the loop thread, never inside `resolve`. `name`
    /// and `tag` are the caller's, as given to `resolve`.
    func resolved(_ outcome: ResolveOutcome, name: String, tag: UInt64)
}
