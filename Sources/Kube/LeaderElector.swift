// Leader election on the loop: reads and writes the Lease through a `KubeClient` on timers, as `LeaderElection`
// decides, and says when leadership begins and ends.
import EventLoop
import Sys

/// Runs a `LeaderElection` against the API: one call at a time, the next look after `renewInterval` (leader) or
/// `retryInterval` (follower, or a failed renewal), and a timer at the leadership deadline so that a leader whose
/// renewals fail steps down on time even while a call hangs. Loop thread only.
public final class LeaderElector {
    public let client: KubeClient
    public private(set) var election: LeaderElection
    /// Told `true` when we become leader and `false` when we stop (deadline passed, someone else holds the lease,
    /// `release()` or `stop()`); always alternating, starting with `true`.
    public var onLeadershipChange: ((Bool) -> Void)?
    /// Told every failed call (for logs and metrics).
    public var onError: ((KubeError) -> Void)?

    /// The lease as we last wrote it (its resourceVersion is the one to renew at); nil when we must read first.
    private var written: Lease?
    private var busy = false
    private var running = false
    private var nextLook: TimerID?
    private var deadlineTimer: TimerID?
    /// Counts starts and stops: completions of calls made before the last stop are ignored.
    private var generation: UInt64 = 0
    /// Conflicts in a row: the first is read again at once, later ones after `retryInterval`.
    private var conflicts = 0
    /// The wall clock in microseconds since the epoch; replaceable by tests.
    var wallClock: () -> Int64 = { Int64(wallClockSeconds() * 1_000_000) }

    /// An elector; a configuration with a `problem` (e.g. a renew deadline not shorter than the lease) is a
    /// programming error and stops the process.
    public init(client: KubeClient, configuration: LeaderElection.Configuration) {
        precondition(configuration.problem == nil, "leader election: \(configuration.problem ?? "")")
        self.client = client
        election = LeaderElection(configuration: configuration)
    }

    deinit {
        if let nextLook { client.loop.cancel(nextLook) }
        if let deadlineTimer { client.loop.cancel(deadlineTimer) }
    }

    public var isLeader: Bool { election.isLeading }

    /// Starts taking part (the first look is made at once).
    public func start() {
        guard !running else { return }
        running = true
        generation &+= 1
        look()
    }

    /// Stops taking part without touching the lease (it expires by itself); steps down if leading.
    public func stop() {
        guard running else { return }
        running = false
        generation &+= 1
        busy = false
        cancelTimers()
        if election.stepDown() { onLeadershipChange?(false) }
    }

    /// Shutdown: steps down at once, then, if the lease still names us, writes it with no holder so another
    /// candidate takes over without waiting for it to expire. `done` runs when that write ended (or at once).
    public func release(_ done: @escaping () -> Void) {
        let lease = written
        let wasRunning = running
        stop()
        guard wasRunning, let lease, lease.holderIdentity == election.configuration.identity else {
            client.loop.schedule(after: .zero, done)
            return
        }
        clearHolder(of: lease, retries: 1, done)
    }

    /// Writes `lease` without a holder. A 409 means a renewal still in flight when we stopped went through first:
    /// read the lease again and, if it still names us, clear that version.
    private func clearHolder(of lease: Lease, retries: Int, _ done: @escaping () -> Void) {
        var cleared = lease
        cleared.holderIdentity = nil
        client.updateLease(cleared) { [weak self] result in
            guard let self else { return done() }
            switch result {
            case .success:
                self.written = nil
                done()
            case .failure(let error) where error.status == 409 && retries > 0:
                let configuration = self.election.configuration
                self.client.getLease(namespace: configuration.namespace, name: configuration.name) { result in
                    guard case .success(let fresh) = result, fresh.holderIdentity == configuration.identity else {
                        return done()
                    }
                    self.clearHolder(of: fresh, retries: retries - 1, done)
                }
            case .failure(let error):
                self.onError?(error)
                done()
            }
        }
    }

    private func cancelTimers() {
        if let nextLook { client.loop.cancel(nextLook) }
        if let deadlineTimer { client.loop.cancel(deadlineTimer) }
        nextLook = nil
        deadlineTimer = nil
    }

    private func schedule(after delay: Duration) {
        if let nextLook { client.loop.cancel(nextLook) }
        nextLook = client.loop.schedule(after: delay) { [weak self] in
            self?.nextLook = nil
            self?.look()
        }
    }

    /// Reads the lease (unless we hold the copy we wrote last), decides, acts.
    private func look() {
        guard running, !busy else { return }
        if let written, written.holderIdentity == election.configuration.identity, election.isLeading {
            act(on: written)
            return
        }
        busy = true
        let generation = self.generation
        let configuration = election.configuration
        client.getLease(namespace: configuration.namespace, name: configuration.name) { [weak self] result in
            guard let self, self.generation == generation else { return }
            self.busy = false
            switch result {
            case .success(let lease):
                self.act(on: lease)
            case .failure(let error) where error.status == 404:
                self.act(on: nil)
            case .failure(let error):
                self.failed(error)
            }
        }
    }

    private func act(on observed: Lease?) {
        let sentAt = client.loop.now
        let wasLeading = election.isLeading
        let action = election.decide(observed: observed, wallNow: wallClock(), now: sentAt)
        if wasLeading && !election.isLeading { leadershipEnded() }
        let generation = self.generation
        let completion: (Result<Lease, KubeError>) -> Void = { [weak self] result in
            guard let self, self.generation == generation else { return }
            self.busy = false
            self.written(result, sentAt: sentAt)
        }
        switch action {
        case .create(let lease):
            busy = true
            client.createLease(lease, completion)
        case .update(let lease):
            busy = true
            client.updateLease(lease, completion)
        case .wait:
            written = nil
            conflicts = 0
            schedule(after: election.configuration.retryInterval)
        }
    }

    private func written(_ result: Result<Lease, KubeError>, sentAt: UInt64) {
        switch result {
        case .success(let lease):
            written = lease
            conflicts = 0
            let became = election.writeSucceeded(sentAt: sentAt, now: client.loop.now)
            // Stepped down meanwhile (deadline) and renewed now: leading again, say so.
            if became { onLeadershipChange?(true) }
            armDeadline()
            schedule(after: election.configuration.renewInterval)
        case .failure(let error) where error.status == 409:
            // Someone else wrote the lease (or created it) since we read it: read it again.
            written = nil
            conflicts += 1
            if conflicts == 1 {
                look()
            } else {
                schedule(after: election.configuration.retryInterval)
            }
        case .failure(let error):
            failed(error)
        }
    }

    private func failed(_ error: KubeError) {
        onError?(error)
        if checkDeadline() { written = nil }
        schedule(after: election.configuration.retryInterval)
    }

    private func armDeadline() {
        if let deadlineTimer { client.loop.cancel(deadlineTimer) }
        deadlineTimer = nil
        guard let deadline = election.leadershipDeadline else { return }
        let delay = Duration.nanoseconds(Int64(clamping: deadline &- min(deadline, client.loop.now)))
        deadlineTimer = client.loop.schedule(after: delay) { [weak self] in
            guard let self else { return }
            self.deadlineTimer = nil
            if !self.checkDeadline() { self.armDeadline() }
        }
    }

    /// Steps down if the deadline passed; returns whether it did.
    private func checkDeadline() -> Bool {
        guard election.checkDeadline(now: client.loop.now) else { return false }
        leadershipEnded()
        return true
    }

    private func leadershipEnded() {
        if let deadlineTimer { client.loop.cancel(deadlineTimer) }
        deadlineTimer = nil
        onLeadershipChange?(false)
    }
}
