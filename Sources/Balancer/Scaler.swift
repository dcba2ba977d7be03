// The scaling decision: desired socket replicas from load, with cooldowns and a clamp.
import Wire

/// The knobs of `Scaler`.
public struct ScalePolicy: Equatable, Sendable {
    public var minReplicas = 2
    public var maxReplicas = 50
    /// Live connections one pod should hold.
    public var connectionsPerPod = 5000
    /// CPU cores one pod should use.
    public var cpuPerPod = 0.75
    /// Above this p95 delivery latency on any node, one more pod is wanted.
    public var p95TargetMs = 250.0
    /// Seconds after a scale-out before the next one.
    public var scaleOutCooldown = 60.0
    /// Seconds after any change before a scale-in.
    public var scaleInCooldown = 300.0
    /// Scale in only to a count whose pods would run at most this fraction of their targets (hysteresis).
    public var scaleInHeadroom = 0.8

    public init() {}
}

/// A scaling decision: the desired replicas, which way it moved, and why.
public struct ScalingDecision: Equatable, Sendable {
    public var desired: Int
    public var direction: Direction
    public var reason: Reason

    public init(desired: Int, direction: Direction, reason: Reason) {
        self.desired = desired
        self.direction = direction
        self.reason = reason
    }

    public enum Direction: String, Sendable, CaseIterable {
        case up, down, none
    }

    public enum Reason: String, Sendable, CaseIterable {
        /// Connections per pod above (up) or well below (down) the target.
        case connections
        case cpu
        /// Some node's p95 delivery latency is above the target.
        case latency
        /// Held at the minimum (or raised to it).
        case minimum
        /// Held at the maximum (load asks for more).
        case maximum
        /// A change was wanted but its cooldown has not passed.
        case cooldown
        /// Load fits the current count.
        case steady
    }
}

/// Desired socket replicas (SYSTEM §3): the most of `ceil(connections / connectionsPerPod)`,
/// `ceil(cpu / cpuPerPod)` and, while any node's p95 latency is above target, one more than now; scale-in only
/// to a count that keeps every figure under `scaleInHeadroom` of its target and never while latency is high;
/// clamped to [min, max]; a scale-out waits `scaleOutCooldown` after the last scale-out, a scale-in waits
/// `scaleInCooldown` after any change. The decision holds the previous count while a cooldown runs, so the
/// exported desired count (KEDA's input) never flaps.
public struct Scaler: Equatable, Sendable {
    public var policy: ScalePolicy
    /// The last desired count (nil before the first decision).
    public private(set) var desired: Int?
    private var lastScaleOut: Double?
    private var lastChange: Double?

    public init(policy: ScalePolicy = ScalePolicy()) { self.policy = policy }

    /// Decides at `now` (seconds, any monotonic origin) for this round's membership.
    public mutating func decide(_ membership: Membership, now: Double) -> ScalingDecision {
        let live = membership.members.filter { !$0.draining }
        // Before the first decision, the pods there are (a count below the minimum is raised to it: a decision).
        let current = desired ?? live.count
        // Draining nodes' clients come back to the others: their load counts.
        let connections = membership.members.reduce(0.0) { $0 + Double($1.connections) }
        let cpu = membership.members.reduce(0.0) { $0 + $1.cpu }
        let slow = live.contains { $0.p95DeliveryMs > policy.p95TargetMs }
        let byConnections = needed(connections, Double(max(1, policy.connectionsPerPod)))
        let byCPU = needed(cpu, max(0.001, policy.cpuPerPod))

        var wanted = current
        var reason = ScalingDecision.Reason.steady
        if slow {
            wanted = max(current + 1, byConnections, byCPU)
            reason = .latency
        } else if byConnections > current || byCPU > current {
            wanted = max(byConnections, byCPU)
            reason = byConnections >= byCPU ? .connections : .cpu
        } else {
            let inByConnections = needed(connections, Double(max(1, policy.connectionsPerPod)) * policy.scaleInHeadroom)
            let inByCPU = needed(cpu, max(0.001, policy.cpuPerPod) * policy.scaleInHeadroom)
            let fits = max(inByConnections, inByCPU)
            if fits < current {
                wanted = fits
                reason = inByConnections >= inByCPU ? .connections : .cpu
            }
        }
        let clamped = clamp(wanted)
        if clamped != wanted || (wanted == current && clamped != current) {
            reason = clamped <= policy.minReplicas ? .minimum : .maximum
        }
        wanted = clamped

        let decision: ScalingDecision
        if wanted > current {
            if let last = lastScaleOut, now - last < policy.scaleOutCooldown {
                decision = ScalingDecision(desired: current, direction: .none, reason: .cooldown)
            } else {
                decision = ScalingDecision(desired: wanted, direction: .up, reason: reason)
                lastScaleOut = now
                lastChange = now
            }
        } else if wanted < current {
            if let last = lastChange, now - last < policy.scaleInCooldown {
                decision = ScalingDecision(desired: current, direction: .none, reason: .cooldown)
            } else {
                decision = ScalingDecision(desired: wanted, direction: .down, reason: reason)
                lastChange = now
            }
        } else {
            let held: ScalingDecision.Reason = reason == .maximum || reason == .minimum ? reason : .steady
            decision = ScalingDecision(desired: current, direction: .none, reason: held)
        }
        desired = decision.desired
        return decision
    }

    private func needed(_ total: Double, _ perPod: Double) -> Int {
        guard total > 0 else { return 0 }
        let count = (total / perPod).rounded(.up)
        return count >= Double(Int.max / 2) ? Int.max / 2 : Int(count)
    }

    private func clamp(_ count: Int) -> Int { min(policy.maxReplicas, max(policy.minReplicas, count)) }
}
