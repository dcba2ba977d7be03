// Pure parts of the Kube target: MicroTime text, API URLs, Status decoding and the leader-election decisions.
import JSON
import Testing

@testable import Kube

@Suite struct MicroTimeTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000000Z"),
        (1_700_000_000_123_456, "2023-11-14T22:13:20.123456Z"),
        (951_782_400_000_001, "2000-02-29T00:00:00.000001Z"),
        (4_107_542_399_999_999, "2100-02-28T23:59:59.999999Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
    ])
    func formatsAndParsesBack(microseconds: Int64, text: String) {
        #expect(MicroTime.format(microseconds) == text)
        #expect(MicroTime.parse(text) == microseconds)
    }

    @Test func parsesOtherRFC3339Forms() {
        #expect(MicroTime.parse("2023-11-14T22:13:20Z") == 1_700_000_000_000_000)
        #expect(MicroTime.parse("2023-11-14T22:13:20.5Z") == 1_700_000_000_500_000)
        #expect(MicroTime.parse("2023-11-14T22:13:20.123456789Z") == 1_700_000_000_123_456)
        #expect(MicroTime.parse("2023-11-15T00:13:20+02:00") == 1_700_000_000_000_000)
        #expect(MicroTime.parse("2023-11-14T21:13:20-01:00") == 1_700_000_000_000_000)
    }

    @Test(arguments: [
        "", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z", "2023-11-14T25:13:20Z",
        "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk", "20231114T221320Z", "2023-11-14T22:13:20+0200",
    ])
    func rejectsWhatIsNotADateTime(text: String) {
        #expect(MicroTime.parse(text) == nil)
    }
}

@Suite struct APIURLTests {
    @Test func parsesSchemesHostsPortsAndPrefixes() throws {
        #expect(try APIURL("https://10.96.0.1") == APIURL(secure: true, host: "10.96.0.1", port: 443))
        #expect(try APIURL("http://127.0.0.1:8080/") == APIURL(secure: false, host: "127.0.0.1", port: 8080))
        #expect(
            try APIURL("HTTPS://api.example:6443/k8s/")
                == APIURL(
                    secure: true, host: "api.example", port: 6443, pathPrefix: "/k8s"))
        #expect(try APIURL("https://[fd00::1]:6443") == APIURL(secure: true, host: "fd00::1", port: 6443))
        #expect(try APIURL("https://[fd00::1]:6443").hostField == "[fd00::1]:6443")
        #expect(try APIURL("https://a:443").hostField == "a")
    }

    @Test(arguments: [
        "ftp://x", "x:80", "http://", "http://:80", "http://a:0", "http://a:99999", "http://u:p@a",
        "http://a/?q", "http://[::1",
    ])
    func rejectsBadURLs(text: String) {
        #expect(throws: KubeError.self) { try APIURL(text) }
    }

    @Test func percentEncodesSelectors() {
        #expect(percentEncoded("app=socket,tier!=x") == "app%3Dsocket%2Ctier%21%3Dx")
        #expect(percentEncoded("a-b.c_d~") == "a-b.c_d~")
    }
}

@Suite struct StatusDecodingTests {
    @Test func errorsCarryTheStatusObject() {
        let body = Array(
            #"{"kind":"Status","status":"Failure","message":"leases \"x\" not found","reason":"NotFound","code":404}"#
                .utf8)
        let result = KubeClient.decode(HTTPResponse(status: 404, body: body))
        guard case .failure(let error) = result else {
            Issue.record("a 404 decoded as success")
            return
        }
        #expect(error == KubeError(status: 404, reason: "NotFound", message: #"leases "x" not found"#))
    }

    @Test func errorsWithoutAStatusObjectGetTheStandardReason() {
        guard case .failure(let error) = KubeClient.decode(HTTPResponse(status: 409, body: Array("nope".utf8))) else {
            Issue.record("a 409 decoded as success")
            return
        }
        #expect(error.reason == "Conflict")
        #expect(error.message == "nope")
        guard case .failure(let bad) = KubeClient.decode(HTTPResponse(status: 200, body: Array("<html>".utf8))) else {
            Issue.record("HTML decoded as JSON")
            return
        }
        #expect(bad.status == 0 && bad.reason == "InvalidResponse")
    }

    @Test func leaseJSONRoundTrip() throws {
        let lease = Lease(
            name: "l", namespace: "ns", holderIdentity: "pod-1", leaseDurationSeconds: 15,
            acquireTime: "2026-01-01T00:00:00.000000Z", renewTime: "2026-01-01T00:00:05.000000Z",
            leaseTransitions: 3, resourceVersion: "17")
        #expect(Lease(json: try JSONParser.parse(lease.json())) == lease)
        var free = lease
        free.holderIdentity = nil
        #expect(Lease(json: try JSONParser.parse(free.json()))?.holderIdentity == nil)
    }
}

/// The election's decisions, as a table: observed lease and clocks in, action and leadership out.
@Suite struct LeaderElectionTests {
    static let configuration = LeaderElection.Configuration(
        identity: "me", namespace: "rtc", name: "leader", leaseDurationSeconds: 15, renewInterval: .seconds(5),
        renewDeadline: .seconds(10), retryInterval: .seconds(2))
    /// Wall clock of the cases: 2026-01-01T00:01:00Z.
    static let wallNow: Int64 = 1_767_225_660_000_000
    static let nowText = MicroTime.format(wallNow)
    static let second: UInt64 = 1_000_000_000

    static func observed(
        holder: String?, renewedSecondsAgo: Int64, micros: Int64 = 0, transitions: Int = 4, acquire: String? = "A"
    ) -> Lease {
        Lease(
            name: "leader", namespace: "rtc", holderIdentity: holder, leaseDurationSeconds: 15, acquireTime: acquire,
            renewTime: MicroTime.format(wallNow - renewedSecondsAgo * 1_000_000 + micros),
            leaseTransitions: transitions, resourceVersion: "9")
    }

    static func takeover(from lease: Lease) -> Lease {
        var taken = lease
        taken.holderIdentity = "me"
        taken.acquireTime = nowText
        taken.renewTime = nowText
        taken.leaseTransitions += 1
        return taken
    }

    static func renewal(of lease: Lease) -> Lease {
        var renewed = lease
        renewed.renewTime = nowText
        return renewed
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let leading: Bool
        let observed: Lease?
        let expected: LeaderElection.Action
        let leadingAfter: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        let theirsFresh = observed(holder: "other", renewedSecondsAgo: 3)
        let theirsExpired = observed(holder: "other", renewedSecondsAgo: 16)
        let atBoundary = observed(holder: "other", renewedSecondsAgo: 15)
        let pastBoundary = observed(holder: "other", renewedSecondsAgo: 15, micros: -1)
        let ours = observed(holder: "me", renewedSecondsAgo: 5)
        let oursExpired = observed(holder: "me", renewedSecondsAgo: 60)
        let released = observed(holder: nil, renewedSecondsAgo: 1)
        let emptyHolder = observed(holder: "", renewedSecondsAgo: 1)
        var noRenewTime = observed(holder: "other", renewedSecondsAgo: 0)
        noRenewTime.renewTime = nil
        return [
            Case(
                name: "absent: create", leading: false, observed: nil,
                expected: .create(
                    Lease(
                        name: "leader", namespace: "rtc", holderIdentity: "me", leaseDurationSeconds: 15,
                        acquireTime: nowText, renewTime: nowText, leaseTransitions: 0)), leadingAfter: false),
            Case(
                name: "expired: take over", leading: false, observed: theirsExpired,
                expected: .update(takeover(from: theirsExpired)), leadingAfter: false),
            Case(
                name: "ours: renew, same transitions", leading: true, observed: ours,
                expected: .update(renewal(of: ours)), leadingAfter: true),
            Case(
                name: "ours after a restart: renew", leading: false, observed: oursExpired,
                expected: .update(renewal(of: oursExpired)), leadingAfter: false),
            Case(
                name: "theirs, fresh: wait", leading: false, observed: theirsFresh, expected: .wait, leadingAfter: false
            ),
            Case(
                name: "theirs, fresh, while we thought we led (our write lost a conflict): step down",
                leading: true, observed: theirsFresh, expected: .wait, leadingAfter: false),
            Case(
                name: "renewTime + duration == now: still valid", leading: false, observed: atBoundary, expected: .wait,
                leadingAfter: false),
            Case(
                name: "one microsecond past: expired", leading: false, observed: pastBoundary,
                expected: .update(takeover(from: pastBoundary)), leadingAfter: false),
            Case(
                name: "released (no holder): take over at once", leading: false, observed: released,
                expected: .update(takeover(from: released)), leadingAfter: false),
            Case(
                name: "empty holder: take over", leading: false, observed: emptyHolder,
                expected: .update(takeover(from: emptyHolder)), leadingAfter: false),
            Case(
                name: "no renewTime: expired", leading: false, observed: noRenewTime,
                expected: .update(takeover(from: noRenewTime)), leadingAfter: false),
        ]
    }()

    @Test(arguments: cases)
    func decides(_ row: Case) {
        var election = LeaderElection(configuration: Self.configuration)
        let now = 100 * Self.second
        if row.leading {
            let became = election.writeSucceeded(sentAt: now - Self.second, now: now - Self.second)
            #expect(became)
        }
        let action = election.decide(observed: row.observed, wallNow: Self.wallNow, now: now)
        #expect(action == row.expected)
        #expect(election.isLeading == row.leadingAfter)
    }

    @Test func renewFailuresStepDownAtTheDeadlineNotBefore() {
        var election = LeaderElection(configuration: Self.configuration)
        let sent = 50 * Self.second
        let step1 = election.writeSucceeded(sentAt: sent, now: sent + Self.second / 10)
        #expect(step1)
        #expect(election.leadershipDeadline == sent + 10 * Self.second)
        // Renewals keep failing: nothing changes until the deadline…
        for elapsed in [UInt64(1), 5, 9] {
            let step2 = election.checkDeadline(now: sent + elapsed * Self.second)
            #expect(!step2)
            #expect(election.isLeading)
        }
        let step3 = election.checkDeadline(now: sent + 10 * Self.second - 1)
        #expect(!step3)
        // …which comes 5 s before the lease (renewTime ≈ sent) can expire for anyone else.
        let step4 = election.checkDeadline(now: sent + 10 * Self.second)
        #expect(step4)
        #expect(!election.isLeading)
        let step5 = election.checkDeadline(now: sent + 11 * Self.second)
        #expect(!step5)
    }

    @Test func aLateSuccessMakesNobodyLeader() {
        var election = LeaderElection(configuration: Self.configuration)
        let step6 = election.writeSucceeded(sentAt: 0, now: 10 * Self.second)
        #expect(!step6)
        #expect(!election.isLeading)
        // A renewal that succeeds in time extends from the moment it was sent, not from when it was answered.
        let step7 = election.writeSucceeded(sentAt: 20 * Self.second, now: 29 * Self.second)
        #expect(step7)
        let step8 = election.writeSucceeded(sentAt: 25 * Self.second, now: 26 * Self.second)
        #expect(!step8)
        #expect(election.leadershipDeadline == 35 * Self.second)
    }

    @Test func decidingPastTheDeadlineStepsDownFirst() {
        var election = LeaderElection(configuration: Self.configuration)
        _ = election.writeSucceeded(sentAt: 0, now: 0)
        let ours = Self.observed(holder: "me", renewedSecondsAgo: 11)
        // The lease is still ours and may be renewed, but leadership resumes only when that write succeeds.
        let action = election.decide(observed: ours, wallNow: Self.wallNow, now: 11 * Self.second)
        #expect(action == .update(Self.renewal(of: ours)))
        #expect(!election.isLeading)
    }

    @Test func configurationsThatCannotKeepLeadersApartAreNamed() {
        var configuration = Self.configuration
        #expect(configuration.problem == nil)
        configuration.renewDeadline = .seconds(15)
        #expect(configuration.problem != nil)
        configuration = Self.configuration
        configuration.renewInterval = .seconds(10)
        #expect(configuration.problem != nil)
        configuration = Self.configuration
        configuration.identity = ""
        #expect(configuration.problem != nil)
    }
}
