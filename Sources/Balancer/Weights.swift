// Ring weights from the socket nodes' load: smoothed, held inside a dead band, changed in bounded steps.
import Ring
import Wire

/// The knobs of `Weights`.
public struct WeightPolicy: Equatable, Sendable {
    /// EWMA factor for each node's relative load (0 < α ≤ 1): lower damps more.
    public var smoothing: Double = 0.3
    /// A smoothed relative load within 1 ± `deadBand` counts as balanced: the target weight is 1.
    public var deadBand: Double = 0.15
    /// A weight moves only when its target is further than this from it (so it holds near the target).
    public var minChange: Double = 0.05
    /// The most a weight changes in one step.
    public var maxStep: Double = 0.25
    /// Live nodes never drop below this (a slow node still gets some clients, and weight 0 means "draining").
    public var minWeight: Double = 0.1
    /// A fresh, empty node climbs at most to this.
    public var maxWeight: Double = 4
    /// Weights are multiples of this, so the published ring changes only for real moves.
    public var quantum: Double = 0.01
    /// How much each load figure counts in a node's load.
    public var connectionShare: Double = 0.5
    public var cpuShare: Double = 0.25
    public var latencyShare: Double = 0.25
    /// Added to both sides of each ratio, so a handful of connections or a near-idle CPU is not an imbalance.
    public var connectionFloor: Double = 50
    public var cpuFloor: Double = 0.1
    public var latencyFloorMs: Double = 20

    public init() {}
}

/// The weight controller (SYSTEM §3: weights follow load with damping, bounded per step, minimum weight > 0).
///
/// Each round, a live node's load relative to the mean of live nodes is
/// `r = Σ share · (x + floor) / (mean(x) + floor)` over connections, CPU and p95 delivery latency, smoothed per node
/// as `s ← s + α (r − s)`. Inside the dead band (|s − 1| ≤ `deadBand`) the node is balanced and its target weight is
/// 1; outside, the target is `1 / s` clamped to [`minWeight`, `maxWeight`]. The weight moves towards the target only
/// when it is more than `minChange` away, by at most `maxStep`, then is rounded to `quantum`. So balanced load
/// never changes the ring, a load that flips back and forth is averaged out before it reaches the dead band, and
/// a real imbalance moves weights monotonically towards the target, without overshoot.
///
/// Draining and unready nodes get weight 0 (draining ones stay listed with `draining = true`) and lose their
/// history; nodes that left are forgotten.
public struct Weights: Equatable, Sendable {
    public var policy: WeightPolicy
    /// Per node: smoothed relative load and current weight.
    public private(set) var state: [String: NodeState] = [:]

    public struct NodeState: Equatable, Sendable {
        public var load: Double
        public var weight: Double
    }

    public init(policy: WeightPolicy = WeightPolicy()) { self.policy = policy }

    /// Starts from the weights of a ring already in force (after a leader change), so a new leader continues where
    /// the last one stopped instead of resetting every weight to 1.
    public mutating func seed(from ring: Ring) {
        for node in ring.nodes where node.weight > 0 && !node.draining && state[node.id] == nil {
            state[node.id] = NodeState(load: 1, weight: clamp(node.weight))
        }
    }

    /// One round: the ring nodes for this membership.
    public mutating func step(_ membership: Membership) -> [RingNode] {
        let live = membership.eligible
        let present = Set(membership.members.map(\.nodeId))
        state = state.filter { present.contains($0.key) }
        let count = Double(max(live.count, 1))
        let meanConnections = live.reduce(0) { $0 + Double($1.connections) } / count
        let meanCPU = live.reduce(0) { $0 + $1.cpu } / count
        let meanLatency = live.reduce(0) { $0 + $1.p95DeliveryMs } / count
        var nodes: [RingNode] = []
        nodes.reserveCapacity(membership.members.count)
        for beat in membership.members {
            guard !beat.draining, beat.ready else {
                state[beat.nodeId] = nil
                nodes.append(RingNode(id: beat.nodeId, weight: 0, draining: beat.draining))
                continue
            }
            let relative =
                policy.connectionShare
                * ratio(Double(beat.connections), meanConnections, floor: policy.connectionFloor)
                + policy.cpuShare * ratio(beat.cpu, meanCPU, floor: policy.cpuFloor)
                + policy.latencyShare * ratio(beat.p95DeliveryMs, meanLatency, floor: policy.latencyFloorMs)
            // A node starts as average (load 1, weight 1): its own figures reach its weight through the damping too.
            var node = state[beat.nodeId] ?? NodeState(load: 1, weight: 1)
            node.load += policy.smoothing * (relative - node.load)
            let target = abs(node.load - 1) <= policy.deadBand ? 1 : clamp(1 / node.load)
            let gap = target - node.weight
            if abs(gap) > policy.minChange {
                let step = min(abs(gap), policy.maxStep)
                node.weight = clamp(quantized(node.weight + (gap > 0 ? step : -step)))
            }
            state[beat.nodeId] = node
            nodes.append(RingNode(id: beat.nodeId, weight: node.weight, draining: false))
        }
        return nodes
    }

    /// `(x + floor) / (mean + floor)`, normalised by the shares so that a balanced node sums to 1.
    private func ratio(_ value: Double, _ mean: Double, floor: Double) -> Double {
        let total = policy.connectionShare + policy.cpuShare + policy.latencyShare
        return (value + floor) / (mean + floor) / (total > 0 ? total : 1)
    }

    private func clamp(_ weight: Double) -> Double {
        min(policy.maxWeight, max(policy.minWeight, weight))
    }

    private func quantized(_ weight: Double) -> Double {
        guard policy.quantum > 0 else { return weight }
        // Multiply, round, divide by the whole number of steps: 0.75 stays 0.75 (not 75 × 0.01 = 0.7500000000000001).
        let steps = (1 / policy.quantum).rounded()
        return (weight * steps).rounded() / steps
    }
}
