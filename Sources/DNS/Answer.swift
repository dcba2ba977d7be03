// What an address lookup's response means: addresses and their TTL, a negative answer, a failure, or "use TCP".

/// The outcome of one response to an A or AAAA query.
public enum Answer: Hashable, Sendable {
    /// Addresses of the final name of the CNAME chain; `ttl` (seconds) is the minimum TTL along the chain.
    case addresses([IPAddress], ttl: UInt32)
    /// NXDOMAIN: the name does not exist (RFC 2308 §2.1); `negativeTTL` in seconds (RFC 2308 §5).
    case nxdomain(negativeTTL: UInt32)
    /// NODATA: the name exists but has no record of this type (RFC 2308 §2.2).
    case nodata(negativeTTL: UInt32)
    /// SERVFAIL, REFUSED, FORMERR, NOTIMP or any other code: try the next server.
    case serverFailure(ResponseCode)
    /// TC was set: ask again over TCP (RFC 7766 §5).
    case truncated
}

/// Reads the answer to the A or AAAA query `question`/`type` out of `message`.
///
/// - The question section must hold exactly the question asked (RFC 5452 §9.1), else `.questionMismatch`.
///   The id is the caller's to check, with `Message.matches(queryID:name:type:)`.
/// - A CNAME chain inside the answer section is followed (RFC 1034 §3.6.2) for at most `maximumCNAMEHops`
///   hops; a name seen twice is `.cnameLoop`, a longer chain `.cnameChainTooLong`.
/// - Only class IN records owned by the current name of the chain count, so unrelated records a server adds
///   cannot inject addresses.
/// - The negative TTL is min(SOA TTL, SOA MINIMUM) of the SOA in the authority section (RFC 2308 §5), or
///   `defaultNegativeTTL` seconds when there is none; it is also capped by the TTLs of the CNAMEs followed.
public func extractAddresses(
    message: Message, question: Name, type: RecordType, defaultNegativeTTL: UInt32 = 5, maximumCNAMEHops: Int = 8
) throws(DNSError) -> Answer {
    if message.header.truncated { return .truncated }
    let code = message.responseCode
    guard code == .noError || code == .nameError else { return .serverFailure(code) }
    guard message.questions.count == 1, message.questions[0] == Question(name: question, type: type) else {
        throw .questionMismatch
    }
    var current = question
    var chainTTL = UInt32.max
    var visited: [Name] = [question]
    while true {
        var addresses: [IPAddress] = []
        var addressTTL = UInt32.max
        var next: (target: Name, ttl: UInt32)? = nil
        for record in message.answers where record.recordClass == .internet && record.name == current {
            switch record.data {
            case .a(let address) where type == .a:
                addresses.append(.v4(address))
                addressTTL = min(addressTTL, record.ttl)
            case .aaaa(let address) where type == .aaaa:
                addresses.append(.v6(address))
                addressTTL = min(addressTTL, record.ttl)
            case .cname(let target):
                next = (target, record.ttl)
            default:
                break
            }
        }
        if !addresses.isEmpty {
            return .addresses(addresses, ttl: min(chainTTL, addressTTL))
        }
        guard let next else { break }
        if visited.contains(next.target) { throw .cnameLoop }
        if visited.count > maximumCNAMEHops { throw .cnameChainTooLong }
        visited.append(next.target)
        chainTTL = min(chainTTL, next.ttl)
        current = next.target
    }
    let negativeTTL = min(chainTTL, soaNegativeTTL(message.authority) ?? defaultNegativeTTL)
    return code == .nameError ? .nxdomain(negativeTTL: negativeTTL) : .nodata(negativeTTL: negativeTTL)
}

/// min(SOA record TTL, SOA MINIMUM) of the first SOA record, the negative-caching TTL of RFC 2308 §5.
func soaNegativeTTL(_ records: [Record]) -> UInt32? {
    for record in records {
        if case .soa(let soa) = record.data { return min(record.ttl, soa.minimum) }
    }
    return nil
}
