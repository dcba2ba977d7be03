// LeaderElector against the fake API: a race for one lease, failover when the leader loses the API, release.
import EventLoop
import Foundation
import JSON
import Synchronization
import Sys
import TestSupport
import Testing

@testable import Kube

/// Every leadership change of every candidate, with the wall-clock time it happened, from the loop thread.
final class LeadershipLog: Sendable {
    struct Change: Sendable {
        let identity: String
        let leading: Bool
        let wallSeconds: Double
    }

    private let storage = Mutex<(changes: [Change], leaders: Set<String>, maximumLeaders: Int)>(([], [], 0))

    func record(_ identity: String, _ leading: Bool) {
        storage.withLock {
            $0.changes.append(Change(identity: identity, leading: leading, wallSeconds: wallClockSeconds()))
            if leading { $0.leaders.insert(identity) } else { $0.leaders.remove(identity) }
            $0.maximumLeaders = max($0.maximumLeaders, $0.leaders.count)
        }
    }

    var leaders: Set<String> { storage.withLock { $0.leaders } }
    var maximumLeaders: Int { storage.withLock { $0.maximumLeaders } }
    var changes: [Change] { storage.withLock { $0.changes } }
}

/// Candidates on one loop, each with its own client (possibly to its own port of the fake).
final class Candidates: @unchecked Sendable {
    let running: RunningLoop
    let log = LeadershipLog()
    var electors: [String: LeaderElector] = [:]

    init() throws { running = try RunningLoop() }

    func add(_ identity: String, url: String, configuration: LeaderElection.Configuration) throws {
        let log = self.log
        try running.sync {
            let client = try KubeClient(
                loop: self.running.loop, endpoint: .url(url, token: "t", caFile: nil), resolver: nil, environment: [:],
                requestTimeout: .milliseconds(500))
            client.userAgent = identity
            var configuration = configuration
            configuration.identity = identity
            let elector = LeaderElector(client: client, configuration: configuration)
            elector.onLeadershipChange = { log.record(identity, $0) }
            self.electors[identity] = elector
        }
    }

    func start(_ identity: String) throws { try running.sync { self.electors[identity]!.start() } }

    func stop() {
        try? running.sync { for elector in self.electors.values { elector.stop() } }
        running.stop()
    }
}

@Suite(.serialized) struct LeaderElectorTests {
    /// Short timings so that a failover takes seconds: a 3 s lease, renewed every 0.5 s, given up after 2 s.
    static let configuration = LeaderElection.Configuration(
        identity: "", namespace: "rtc", name: "leader", leaseDurationSeconds: 3, renewInterval: .milliseconds(500),
        renewDeadline: .seconds(2), retryInterval: .milliseconds(250))

    /// Successful lease writes in the fake's log, in order, as (holder, time).
    func leaseWrites(_ fake: FakeKube) throws -> [(holder: String?, userAgent: String?, time: Double)] {
        try fake.state()["writes"]?.arrayValue?.compactMap { write in
            guard write["resource"]?.stringValue == "leases",
                let status = write["status"]?.int64Value, status < 300
            else { return nil }
            return (write["holder"]?.stringValue, write["userAgent"]?.stringValue, write["time"]?.doubleValue ?? 0)
        } ?? []
    }

    @Test func twoCandidatesRaceAndExactlyOneLeads() throws {
        let fake = try FakeKube(arguments: ["--token", "t"])
        let candidates = try Candidates()
        defer { candidates.stop() }
        try candidates.add("a", url: fake.url, configuration: Self.configuration)
        try candidates.add("b", url: fake.url, configuration: Self.configuration)
        try candidates.running.sync {
            candidates.electors["a"]!.start()
            candidates.electors["b"]!.start()
        }
        #expect(waitUntil(timeout: .seconds(5)) { candidates.log.leaders.count == 1 })
        // Several renewal periods later: still the same single leader, never two.
        let leader = candidates.log.leaders.first!
        Foundation.Thread.sleep(forTimeInterval: 2)
        #expect(candidates.log.leaders == [leader])
        #expect(candidates.log.maximumLeaders == 1)
        #expect(candidates.log.changes.count == 1)
        // Every successful lease write came from the leader, for the leader (the loser's create got 409).
        let writes = try leaseWrites(fake)
        #expect(writes.count >= 3)
        #expect(writes.allSatisfy { $0.holder == leader && $0.userAgent == leader })
        let lease = try fake.state()["leases"]?.arrayValue?.first
        #expect(lease?["spec"]?["leaseTransitions"]?.int64Value == 0)
        #expect(lease?["spec"]?["leaseDurationSeconds"]?.int64Value == 3)
    }

    @Test func aLeaderCutOffFromTheAPIStepsDownBeforeItsLeaseExpires() throws {
        let fake = try FakeKube(portCount: 2, arguments: ["--token", "t"])
        let candidates = try Candidates()
        defer { candidates.stop() }
        try candidates.add("a", url: fake.url(port: fake.ports[0]), configuration: Self.configuration)
        try candidates.add("b", url: fake.url(port: fake.ports[1]), configuration: Self.configuration)
        try candidates.start("a")
        #expect(waitUntil(timeout: .seconds(5)) { candidates.log.leaders == ["a"] })
        try candidates.start("b")
        Foundation.Thread.sleep(forTimeInterval: 1)
        #expect(candidates.log.leaders == ["a"])

        // a can no longer reach the API; b still can.
        try fake.partition(port: fake.ports[0], blocked: true)
        #expect(waitUntil(timeout: .seconds(10)) { candidates.log.leaders == ["b"] })
        #expect(candidates.log.maximumLeaders == 1)

        let changes = candidates.log.changes
        let aStopped = try #require(changes.first { $0.identity == "a" && !$0.leading })
        let bStarted = try #require(changes.first { $0.identity == "b" && $0.leading })
        #expect(aStopped.wallSeconds < bStarted.wallSeconds)
        // a's last renewal, as the API recorded it, and the moment its lease expired for everyone else.
        let writes = try leaseWrites(fake)
        let lastRenewal = try #require(writes.last { $0.holder == "a" })
        let expiry = lastRenewal.time + 3
        #expect(aStopped.wallSeconds < expiry)
        #expect(bStarted.wallSeconds >= expiry - 0.05)
        // The takeover counted a transition, and b led within the lease duration (plus its retry and a call).
        let lease = try fake.state()["leases"]?.arrayValue?.first
        #expect(lease?["spec"]?["holderIdentity"]?.stringValue == "b")
        #expect(lease?["spec"]?["leaseTransitions"]?.int64Value == 1)
        #expect(bStarted.wallSeconds - lastRenewal.time < 3 + 1.5)
        // No write for b happened while a could still have been leading.
        #expect(writes.filter { $0.holder == "b" }.allSatisfy { $0.time > aStopped.wallSeconds })
    }

    @Test func releaseHandsOverWithoutWaitingForExpiry() throws {
        let fake = try FakeKube(arguments: ["--token", "t"])
        let candidates = try Candidates()
        defer { candidates.stop() }
        try candidates.add("a", url: fake.url, configuration: Self.configuration)
        try candidates.add("b", url: fake.url, configuration: Self.configuration)
        try candidates.start("a")
        #expect(waitUntil(timeout: .seconds(5)) { candidates.log.leaders == ["a"] })
        try candidates.start("b")
        Foundation.Thread.sleep(forTimeInterval: 0.5)
        let released = Box<Bool>()
        let start = wallClockSeconds()
        try candidates.running.sync { candidates.electors["a"]!.release { released.set(true) } }
        #expect(waitUntil(timeout: .seconds(2)) { released.value == true })
        #expect(candidates.log.leaders.isEmpty || candidates.log.leaders == ["b"])
        #expect(waitUntil(timeout: .seconds(2)) { candidates.log.leaders == ["b"] })
        // Well before the 3 s lease could have expired.
        #expect(wallClockSeconds() - start < 2)
        #expect(candidates.log.maximumLeaders == 1)
        let writes = try leaseWrites(fake)
        #expect(writes.contains { $0.holder == nil && $0.userAgent == "a" })
    }

    @Test func aConflictIsReadAgainAndDecidedOnTheFreshLease() throws {
        let fake = try FakeKube(arguments: ["--token", "t"])
        let candidates = try Candidates()
        defer { candidates.stop() }
        try candidates.add("a", url: fake.url, configuration: Self.configuration)
        try candidates.start("a")
        #expect(waitUntil(timeout: .seconds(5)) { candidates.log.leaders == ["a"] })
        // Someone writes the lease behind a's back (a fresh holder): a's next renewal (at its old
        // resourceVersion) gets 409, it reads again, sees another holder with a fresh lease, and steps down.
        let now = MicroTime.format(Int64(wallClockSeconds() * 1_000_000) + 5_000_000)
        let test = try ClientHarness(.url(fake.url, token: "t", caFile: nil))
        defer { test.stop() }
        var lease = try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.get()
        lease.holderIdentity = "intruder"
        lease.renewTime = now
        #expect(try test.call { $0.updateLease(lease, $1) }.success != nil)
        #expect(waitUntil(timeout: .seconds(3)) { candidates.log.leaders.isEmpty })
        let conflicts = try fake.state()["writes"]?.arrayValue?.filter {
            $0["status"]?.int64Value == 409 && $0["userAgent"]?.stringValue == "a"
        }
        #expect(conflicts?.isEmpty == false)
    }
}
