// The decisions of one lookup: which name to ask which server next, over UDP or TCP, and when it is over.

/// The order in which one query visits the servers (resolv.conf(5)): `attempts` rounds over all servers, each try
/// allowed `timeout` seconds; with `rotate`, successive queries start at successive servers.
public struct QueryPlan: Hashable, Sendable {
    public let serverCount: Int
    public let attempts: Int
    /// Nanoseconds one try may take.
    public let timeout: UInt64
    public let firstServer: Int

    /// `queryNumber` picks the first server when the configuration says `rotate`.
    public init(conf: ResolvConf, queryNumber: Int = 0) {
        serverCount = max(1, conf.nameservers.count)
        attempts = max(1, conf.attempts)
        timeout = UInt64(max(1, conf.timeout)) * 1_000_000_000
        firstServer = conf.rotate ? abs(queryNumber % serverCount) : 0
    }

    /// A plan with a per-try `timeout` in nanoseconds, for timeouts a resolv.conf cannot state (below one second,
    /// or set by the gateway's configuration). Values below 1 are raised to 1.
    public init(serverCount: Int, attempts: Int, timeout: UInt64, firstServer: Int = 0) {
        self.serverCount = max(1, serverCount)
        self.attempts = max(1, attempts)
        self.timeout = max(1, timeout)
        self.firstServer = abs(firstServer % self.serverCount)
    }

    /// The number of tries in all.
    public var tryCount: Int { serverCount * attempts }

    /// The server (index into `ResolvConf.nameservers`) for try `index`, or `nil` when the tries are spent.
    public func server(forTry index: Int) -> Int? {
        guard index >= 0 && index < tryCount else { return nil }
        return (firstServer + index) % serverCount
    }
}

/// One lookup of a host name for one record type, as a state machine the runtime drives: it performs each
/// `Action` (send a query, or report the outcome) and feeds back what happened. Follows resolv.conf(5): each
/// candidate name of the search list in turn (a negative answer moves to the next name), each server in turn
/// (a failure or timeout moves to the next server), and TCP to the same server when an answer is truncated
/// (RFC 7766 §5).
public struct Resolution: Sendable {
    /// What the runtime does next.
    public enum Action: Hashable, Sendable {
        /// Send a query for `name` to server `server`, over TCP when `overTCP`, and call `timedOut` at `deadline`
        /// (monotonic nanoseconds) if no usable response has arrived by then.
        case send(name: Name, server: Int, overTCP: Bool, deadline: UInt64)
        /// The lookup is over.
        case finished(Outcome)
    }

    /// How a lookup ended.
    public enum Outcome: Hashable, Sendable {
        /// `name` is the candidate that had the addresses.
        case addresses(name: Name, [IPAddress], ttl: UInt32)
        /// Every candidate name was negative; the last candidate's answer.
        case nxdomain(negativeTTL: UInt32)
        case nodata(negativeTTL: UInt32)
        /// No server gave a usable answer; the last failure code, or `nil` when the last try timed out.
        case failed(ResponseCode?)
        /// There was no name to ask (the name was invalid).
        case invalidName
    }

    public let candidates: [Name]
    public let plan: QueryPlan
    private var candidate = 0
    private var tryIndex = 0
    private var overTCP = false
    /// Whether `.finished` has been returned.
    public private(set) var isFinished = false

    public init(candidates: [Name], plan: QueryPlan) {
        self.candidates = candidates
        self.plan = plan
    }

    /// The name the current query asks for.
    public var currentName: Name? { candidate < candidates.count ? candidates[candidate] : nil }

    /// The first action.
    public mutating func start(now: UInt64) -> Action {
        guard !candidates.isEmpty else { return finish(.invalidName) }
        return sendCurrent(now: now)
    }

    /// Feeds the answer to the query sent last (already checked with `Message.matches` and read with
    /// `extractAddresses`).
    public mutating func received(_ answer: Answer, now: UInt64) -> Action {
        switch answer {
        case .addresses(let addresses, let ttl):
            return finish(.addresses(name: candidates[candidate], addresses, ttl: ttl))
        case .nxdomain(let ttl), .nodata(let ttl):
            candidate += 1
            tryIndex = 0
            overTCP = false
            guard candidate < candidates.count else {
                if case .nxdomain = answer { return finish(.nxdomain(negativeTTL: ttl)) }
                return finish(.nodata(negativeTTL: ttl))
            }
            return sendCurrent(now: now)
        case .truncated:
            // Truncated over TCP as well means a broken server: try the next one.
            guard overTCP else {
                overTCP = true
                return sendCurrent(now: now)
            }
            return nextServer(failure: .serverFailure, now: now)
        case .serverFailure(let code):
            return nextServer(failure: code, now: now)
        }
    }

    /// The deadline of the query sent last passed, or its transport failed, or its response was malformed
    /// (`failure` then says what to report if it was the last try).
    public mutating func timedOut(now: UInt64, failure: ResponseCode? = nil) -> Action {
        nextServer(failure: failure, now: now)
    }

    private mutating func nextServer(failure: ResponseCode?, now: UInt64) -> Action {
        tryIndex += 1
        overTCP = false
        guard tryIndex < plan.tryCount else { return finish(.failed(failure)) }
        return sendCurrent(now: now)
    }

    private mutating func sendCurrent(now: UInt64) -> Action {
        let (deadline, overflow) = now.addingReportingOverflow(plan.timeout)
        return .send(
            name: candidates[candidate], server: plan.server(forTry: tryIndex)!, overTCP: overTCP,
            deadline: overflow ? .max : deadline)
    }

    private mutating func finish(_ outcome: Outcome) -> Action {
        isFinished = true
        return .finished(outcome)
    }
}
