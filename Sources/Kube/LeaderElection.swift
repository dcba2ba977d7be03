// The leader-election decision on a Lease, as a pure value: the observed lease and the clocks in, an action out.
import Sys

/// Leader election on one `coordination.k8s.io/v1` Lease, without I/O: `LeaderElector` feeds it what it read and
/// when, and performs what it answers.
///
/// Rules:
/// - no lease → create one naming us (leaseTransitions 0);
/// - a lease naming us → renew it (renewTime now);
/// - a lease naming nobody, or expired (`renewTime + leaseDurationSeconds < now`, wall clock) → take it over:
///   holder us, acquireTime and renewTime now, leaseTransitions + 1;
/// - a fresh lease naming someone else → wait (and stop leading, if we thought we led).
///
/// Every write carries the resourceVersion read, so of two candidates racing for one lease only one write
/// succeeds; the other gets 409 Conflict and reads again. We lead from a successful write until `renewDeadline`
/// after the moment that write was *sent* (monotonic clock), unless a later write succeeds first. Since
/// `renewDeadline` < `leaseDuration`, a leader that cannot renew stops acting before anyone may take its lease.
/// Expiry compares the holder's renewTime with the reader's wall clock, so the margin between the two (5 s by
/// default) is also how much the candidates' clocks may disagree.
public struct LeaderElection: Sendable, Equatable {
    /// Who we are and the timing of the election.
    public struct Configuration: Sendable, Equatable {
        /// This candidate's identity (the pod name).
        public var identity: String
        public var namespace: String
        /// The Lease's name.
        public var name: String
        /// How long a lease is valid after its renewTime, in whole seconds (the API's unit).
        public var leaseDurationSeconds: Int
        /// How often the leader renews.
        public var renewInterval: Duration
        /// How long a leader keeps acting after its last successful renewal was sent; less than the duration.
        public var renewDeadline: Duration
        /// How often a follower, or a leader whose renewal failed, tries again.
        public var retryInterval: Duration

        public init(
            identity: String, namespace: String, name: String, leaseDurationSeconds: Int = 15,
            renewInterval: Duration = .seconds(5), renewDeadline: Duration = .seconds(10),
            retryInterval: Duration = .seconds(2)
        ) {
            self.identity = identity
            self.namespace = namespace
            self.name = name
            self.leaseDurationSeconds = leaseDurationSeconds
            self.renewInterval = renewInterval
            self.renewDeadline = renewDeadline
            self.retryInterval = retryInterval
        }

        /// Why the configuration cannot keep two leaders apart, or nil when it can.
        public var problem: String? {
            if identity.isEmpty { return "the identity is empty" }
            if leaseDurationSeconds < 1 { return "the lease duration must be at least 1 s" }
            if renewDeadline >= .seconds(leaseDurationSeconds) {
                return "the renew deadline must be shorter than the lease duration"
            }
            if renewInterval >= renewDeadline { return "the renew interval must be shorter than the renew deadline" }
            return nil
        }
    }

    /// What to do after looking at the lease.
    public enum Action: Equatable, Sendable {
        /// There is no lease: create this one.
        case create(Lease)
        /// Write this one (a renewal of ours, or a takeover), at the resourceVersion read.
        case update(Lease)
        /// Someone else holds a fresh lease: look again later.
        case wait
    }

    public let configuration: Configuration
    /// Whether we lead now.
    public private(set) var isLeading = false
    /// Monotonic nanoseconds at which the write that last made or kept us leader was sent.
    public private(set) var renewedAt: UInt64?

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The monotonic instant (nanoseconds) at which we stop leading unless a renewal succeeds first.
    public var leadershipDeadline: UInt64? {
        guard isLeading, let renewedAt else { return nil }
        return renewedAt &+ nanoseconds(configuration.renewDeadline)
    }

    /// Decides what to do about `observed` (nil: the lease does not exist) at wall-clock `wallNow` (microseconds
    /// since the epoch) and monotonic `now` (nanoseconds). Steps down first when the renew deadline has passed,
    /// or when the lease names someone else.
    public mutating func decide(observed: Lease?, wallNow: Int64, now: UInt64) -> Action {
        _ = checkDeadline(now: now)
        let nowText = MicroTime.format(wallNow)
        guard var lease = observed else {
            return .create(
                Lease(
                    name: configuration.name, namespace: configuration.namespace,
                    holderIdentity: configuration.identity, leaseDurationSeconds: configuration.leaseDurationSeconds,
                    acquireTime: nowText, renewTime: nowText, leaseTransitions: 0))
        }
        let holder = lease.holderIdentity ?? ""
        if holder == configuration.identity {
            lease.renewTime = nowText
            if lease.acquireTime == nil { lease.acquireTime = nowText }
            lease.leaseDurationSeconds = configuration.leaseDurationSeconds
            return .update(lease)
        }
        if holder.isEmpty || Self.isExpired(lease, wallNow: wallNow) {
            lease.holderIdentity = configuration.identity
            lease.acquireTime = nowText
            lease.renewTime = nowText
            lease.leaseDurationSeconds = configuration.leaseDurationSeconds
            lease.leaseTransitions += 1
            return .update(lease)
        }
        isLeading = false
        renewedAt = nil
        return .wait
    }

    /// Whether `lease` expired at `wallNow`: `renewTime + leaseDurationSeconds < wallNow` (a lease without a
    /// readable renewTime counts as expired; at exactly the boundary it is still valid).
    public static func isExpired(_ lease: Lease, wallNow: Int64) -> Bool {
        guard let text = lease.renewTime, let renewed = MicroTime.parse(text) else { return true }
        return renewed + Int64(lease.leaseDurationSeconds) * 1_000_000 < wallNow
    }

    /// A write decided at monotonic `sentAt` succeeded, as learned at `now`: we lead until
    /// `sentAt + renewDeadline`, unless that is already past (an answer that came too late makes nobody leader).
    /// Returns whether this made us leader (we did not lead before).
    public mutating func writeSucceeded(sentAt: UInt64, now: UInt64) -> Bool {
        guard now < sentAt &+ nanoseconds(configuration.renewDeadline) else { return false }
        let became = !isLeading
        isLeading = true
        if renewedAt == nil || renewedAt! < sentAt { renewedAt = sentAt }
        return became
    }

    /// Steps down when the renew deadline has passed at `now`; returns whether it did.
    public mutating func checkDeadline(now: UInt64) -> Bool {
        guard let deadline = leadershipDeadline, now >= deadline else { return false }
        isLeading = false
        renewedAt = nil
        return true
    }

    /// Stops leading (shutdown); returns whether we led.
    public mutating func stepDown() -> Bool {
        let led = isLeading
        isLeading = false
        renewedAt = nil
        return led
    }

}
