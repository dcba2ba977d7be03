// KubeClient against the fake API: leases with optimistic concurrency, scale, pods, tokens, TLS, failures.
import EventLoop
import Foundation
import JSON
import Sys
import TestSupport
import Testing

@testable import Kube

@Suite(.serialized) struct KubeClientTests {
    let token = "token-1"

    func lease(_ holder: String?, rv: String = "") -> Lease {
        Lease(
            name: "leader", namespace: "rtc", holderIdentity: holder, leaseDurationSeconds: 15,
            acquireTime: "2026-01-02T03:04:05.000000Z", renewTime: "2026-01-02T03:04:05.000000Z",
            leaseTransitions: 0, resourceVersion: rv)
    }

    @Test func leaseLifecycleWithOptimisticConcurrency() throws {
        let fake = try FakeKube(arguments: ["--token", token])
        let test = try ClientHarness(.url(fake.url, token: token, caFile: nil))
        defer { test.stop() }

        let missing = try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }
        #expect(missing.failure?.status == 404)
        #expect(missing.failure?.reason == "NotFound")

        let created = try test.call { $0.createLease(self.lease("a"), $1) }.get()
        #expect(created.holderIdentity == "a")
        #expect(!created.resourceVersion.isEmpty)
        #expect(created.renewTime == "2026-01-02T03:04:05.000000Z")

        let again = try test.call { $0.createLease(self.lease("b"), $1) }
        #expect(again.failure?.status == 409)
        #expect(again.failure?.reason == "AlreadyExists")

        var renewed = created
        renewed.renewTime = "2026-01-02T03:04:10.000000Z"
        let updated = try test.call { $0.updateLease(renewed, $1) }.get()
        #expect(updated.renewTime == "2026-01-02T03:04:10.000000Z")
        #expect(Int(updated.resourceVersion)! > Int(created.resourceVersion)!)

        // The copy read before the update is stale now.
        var stale = created
        stale.holderIdentity = "b"
        let conflict = try test.call { $0.updateLease(stale, $1) }
        #expect(conflict.failure?.status == 409)
        #expect(conflict.failure?.reason == "Conflict")
        #expect(conflict.failure?.message.contains("the object has been modified") == true)

        let read = try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.get()
        #expect(read == updated)
        #expect(read.holderIdentity == "a")
    }

    @Test func aMissingOrWrongTokenIsUnauthorized() throws {
        let fake = try FakeKube(arguments: ["--token", token])
        for endpoint in [KubeEndpoint.url(fake.url, token: nil, caFile: nil), .url(fake.url, token: "x", caFile: nil)] {
            let test = try ClientHarness(endpoint)
            defer { test.stop() }
            let result = try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }
            #expect(result.failure == KubeError(status: 401, reason: "Unauthorized", message: "Unauthorized"))
        }
    }

    @Test func aRotatedTokenIsReadAgain() throws {
        let directory = try makeTemporaryDirectory("token")
        let tokenFile = directory + "/token"
        try writeFile(tokenFile, "first\n")
        let fake = try FakeKube(arguments: ["--token-file", tokenFile])
        let test = try ClientHarness(
            .url(fake.url, token: nil, caFile: nil), environment: ["KUBE_TOKEN_FILE": tokenFile])
        defer { test.stop() }
        #expect(try test.call { $0.createLease(self.lease("a"), $1) }.success != nil)
        #expect(try test.running.sync { test.client.token.cached } == "first")

        // The kubelet replaces the file; the server accepts only the new token from now on. The client's copy is
        // younger than its refresh interval, so the 401 is what makes it read the file again.
        try writeFile(tokenFile, "second\n")
        let read = try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }
        #expect(read.success?.holderIdentity == "a")
        #expect(try test.running.sync { test.client.token.cached } == "second")

        // A token nobody accepts: one retry at most, then the 401 is the answer.
        try writeFile(tokenFile, "third\n")
        try test.running.sync { test.client.token = TokenSource(origin: .fixed("stale")) }
        #expect(try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.failure?.status == 401)
    }

    @Test func scaleRoundTrip() throws {
        let fake = try FakeKube(arguments: ["--token", token])
        try fake.seed(#"{"deployments": [{"namespace": "rtc", "name": "rtc-socket", "replicas": 2}]}"#)
        let test = try ClientHarness(.url(fake.url, token: token, caFile: nil))
        defer { test.stop() }
        let before = try test.call { $0.getScale(namespace: "rtc", deployment: "rtc-socket", $1) }.get()
        #expect(before.replicas == 2)
        #expect(try test.call { $0.setScale(namespace: "rtc", deployment: "rtc-socket", replicas: 7, $1) }.get() == 7)
        let after = try test.call { $0.getScale(namespace: "rtc", deployment: "rtc-socket", $1) }.get()
        #expect(after.replicas == 7)
        #expect(after.resourceVersion != before.resourceVersion)
        #expect(try fake.state()["deployments"]?.arrayValue?.first?["spec"]?["replicas"]?.int64Value == 7)
        let missing = try test.call { $0.getScale(namespace: "rtc", deployment: "nope", $1) }
        #expect(missing.failure?.status == 404)
    }

    @Test func podsListedBySelectorAndAnnotated() throws {
        let fake = try FakeKube(arguments: ["--token", token, "--chunked"])
        try fake.seed(
            """
            {"pods": [
              {"namespace": "rtc", "name": "socket-a", "labels": {"app": "socket"}, "ip": "10.0.0.1",
               "annotations": {"keep": "me"}},
              {"namespace": "rtc", "name": "socket-b", "labels": {"app": "socket"}, "phase": "Pending"},
              {"namespace": "rtc", "name": "gateway", "labels": {"app": "gateway"}, "ip": "10.0.0.9"},
              {"namespace": "other", "name": "socket-c", "labels": {"app": "socket"}}
            ]}
            """)
        let test = try ClientHarness(.url(fake.url, token: token, caFile: nil))
        defer { test.stop() }
        let pods = try test.call { $0.listPods(namespace: "rtc", labelSelector: "app=socket", $1) }.get()
        #expect(
            pods == [
                Pod(name: "socket-a", ip: "10.0.0.1", phase: "Running", annotations: ["keep": "me"]),
                Pod(name: "socket-b", ip: nil, phase: "Pending", annotations: [:]),
            ])
        let key = "controller.kubernetes.io/pod-deletion-cost"
        #expect(
            try test.call { $0.annotatePod(namespace: "rtc", name: "socket-a", key: key, value: "42", $1) }.success
                != nil)
        let after = try test.call { $0.listPods(namespace: "rtc", labelSelector: "app=socket", $1) }.get()
        #expect(after[0].annotations == ["keep": "me", key: "42"])
        let missing = try test.call { $0.annotatePod(namespace: "rtc", name: "nope", key: key, value: "1", $1) }
        #expect(missing.failure?.reason == "NotFound")
        let all = try test.call { $0.listPods(namespace: "rtc", labelSelector: "", $1) }.get()
        #expect(all.map(\.name) == ["gateway", "socket-a", "socket-b"])
    }

    /// The server closes a kept-alive connection as the next request arrives, without answering: the request goes
    /// again on a new connection, once.
    @Test func aRequestOnAConnectionTheServerClosedIsSentAgain() throws {
        let fake = try FakeKube(arguments: ["--token", token, "--max-requests-per-connection", "1"])
        let test = try ClientHarness(.url(fake.url, token: token, caFile: nil))
        defer { test.stop() }
        #expect(try test.call { $0.createLease(self.lease("a"), $1) }.success != nil)
        for _ in 0..<3 {
            #expect(try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.success?.holderIdentity == "a")
        }
    }

    @Test func rbacRefusalsAreForbidden() throws {
        let fake = try FakeKube(arguments: ["--token", token, "--rbac", "--lease-name", "leader"])
        let test = try ClientHarness(.url(fake.url, token: token, caFile: nil))
        defer { test.stop() }
        let other = try test.call { $0.getLease(namespace: "rtc", name: "someone-elses", $1) }
        #expect(other.failure?.status == 403)
        #expect(other.failure?.reason == "Forbidden")
        #expect(try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.failure?.status == 404)
    }

    @Test func httpsWithTheCAAndInCluster() throws {
        let certificates = TestCertificates.shared
        let directory = try makeTemporaryDirectory("sa")
        try writeFile(directory + "/token", token)
        let fake = try FakeKube(
            arguments: ["--token", token, "--cert", certificates.certificateFile, "--key", certificates.keyFile],
            secure: true)
        let test = try ClientHarness(.url(fake.url, token: token, caFile: certificates.caFile))
        defer { test.stop() }
        #expect(try test.call { $0.createLease(self.lease("a"), $1) }.success?.holderIdentity == "a")
        // Several calls on one kept-alive TLS connection.
        for _ in 0..<5 {
            #expect(try test.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.success != nil)
        }

        // In a pod: host and port from the environment, token and CA from the service account's files.
        let environment = [
            "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(fake.port),
            "KUBE_TOKEN_FILE": directory + "/token", "KUBE_CA_FILE": certificates.caFile,
        ]
        let inCluster = try ClientHarness(.inCluster, environment: environment)
        defer { inCluster.stop() }
        #expect(try inCluster.running.sync { inCluster.client.baseURL } == "https://127.0.0.1:\(fake.port)")
        #expect(try inCluster.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.success?.holderIdentity == "a")

        // Without the CA the server's certificate is refused.
        let untrusting = try ClientHarness(.url(fake.url, token: token, caFile: nil))
        defer { untrusting.stop() }
        let refused = try untrusting.call { $0.getLease(namespace: "rtc", name: "leader", $1) }
        #expect(refused.failure?.status == 0)
        #expect(refused.failure?.reason == "TLS")
        #expect(refused.failure?.message.contains("certificate rejected") == true)
    }

    @Test func transportFailuresHaveStatusZero() throws {
        // Nothing listens: refused.
        let closedPort = freeTCPPort()
        let refused = try ClientHarness(.url("http://127.0.0.1:\(closedPort)", token: nil, caFile: nil))
        defer { refused.stop() }
        let failure = try refused.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.failure
        #expect(failure?.status == 0)
        #expect(failure?.reason == "ConnectFailed")

        // A listener that never answers: the request's deadline.
        let socket = try Socket.listener(at: .loopback(port: 0), backlog: 8, reusePort: false)
        let port = try socket.fd.localAddress().port
        let silent = try ClientHarness(
            .url("http://127.0.0.1:\(port)", token: nil, caFile: nil), requestTimeout: .milliseconds(300))
        defer { silent.stop() }
        let start = ContinuousClock.now
        let timedOut = try silent.call { $0.getLease(namespace: "rtc", name: "leader", $1) }.failure
        #expect(timedOut?.reason == "Timeout")
        #expect(ContinuousClock.now - start < .seconds(2))
        socket.release().close()
    }

    @Test func inClusterNeedsItsEnvironment() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let error = try running.sync { () -> KubeError? in
            do {
                _ = try KubeClient(loop: running.loop, endpoint: .inCluster, resolver: nil, environment: [:])
                return nil
            } catch let error as KubeError {
                return error
            }
        }
        #expect(error?.reason == "Configuration")
        #expect(KubeEndpoint.fromEnvironment([:]) == nil)
        #expect(KubeEndpoint.fromEnvironment(["KUBERNETES_SERVICE_HOST": "10.0.0.1"]) == .inCluster)
        #expect(
            KubeEndpoint.fromEnvironment(["KUBE_API_URL": "http://x:1", "KUBERNETES_SERVICE_HOST": "10.0.0.1"])
                == .url("http://x:1", token: nil, caFile: nil))
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    var success: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}
