// rtc-balancer processes against the fake Kubernetes API: one leader through the Lease, failover after the leader
// dies, the scale subresource in direct mode, and deletion costs that follow each pod's live connections.
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fake API server of the Kube tests (`Tests/KubeTests/Fixtures/fake_kube.py`), as a child process.
final class FakeKube {
    let port = freeTCPPort()
    let process: ChildProcess
    let log: String

    init(directory: String, seed: [String: Any]) throws {
        let seedPath = directory + "/seed.json"
        try JSONSerialization.data(withJSONObject: seed).write(to: URL(fileURLWithPath: seedPath))
        log = directory + "/fake-kube.log"
        let script =
            URL(fileURLWithPath: Paths.packageRoot).appendingPathComponent("Tests/KubeTests/Fixtures/fake_kube.py").path
        process = try ChildProcess(
            Paths.python, [script, "--port", String(port), "--token", "t0k3n", "--rbac", "--seed", seedPath],
            logPath: log)
        guard waitUntil(timeout: .seconds(10), { (try? curl(self.url("/__state")).status) == 200 }) else {
            process.stop()
            throw SetupError("fake_kube.py did not start:\n\(readText(log))")
        }
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func state() -> [String: Any] {
        guard let answer = try? curl(url("/__state")), answer.status == 200 else { return [:] }
        return json(answer.body)
    }

    /// The holder of the balancer's Lease, from the fake's state.
    var holder: String? {
        let leases = state()["leases"]
        let all =
            (leases as? [[String: Any]]) ?? (leases as? [String: Any]).map {
                Array($0.values) as? [[String: Any]] ?? []
            } ?? []
        for lease in all {
            guard let metadata = lease["metadata"] as? [String: Any],
                metadata["name"] as? String == "rtc-balancer-leader",
                let spec = lease["spec"] as? [String: Any]
            else { continue }
            return spec["holderIdentity"] as? String
        }
        return nil
    }

    /// A pod annotation from the fake's state.
    func annotation(pod: String, key: String) -> String? {
        let pods = state()["pods"]
        let all =
            (pods as? [[String: Any]]) ?? (pods as? [String: Any]).map { Array($0.values) as? [[String: Any]] ?? [] }
            ?? []
        for item in all {
            guard let metadata = item["metadata"] as? [String: Any], metadata["name"] as? String == pod else {
                continue
            }
            return (metadata["annotations"] as? [String: Any])?[key] as? String
        }
        return nil
    }

    /// The socket Deployment's replicas from the fake's state.
    var replicas: Int? {
        let deployments = state()["deployments"]
        let all =
            (deployments as? [[String: Any]])
            ?? (deployments as? [String: Any]).map { Array($0.values) as? [[String: Any]] ?? [] } ?? []
        for item in all {
            if let metadata = item["metadata"] as? [String: Any], metadata["name"] as? String == "rtc-socket" {
                return (item["spec"] as? [String: Any])?["replicas"] as? Int
            }
        }
        return nil
    }

    /// The successful writes to the balancer's Lease, oldest first: (writer's User-Agent, holder written).
    func leaseWrites() -> [(writer: String, holder: String)] {
        let writes = state()["writes"] as? [[String: Any]] ?? []
        return writes.compactMap { write in
            guard write["resource"] as? String == "leases", write["name"] as? String == "rtc-balancer-leader",
                let status = write["status"] as? Int, (200..<300).contains(status)
            else { return nil }
            return ((write["userAgent"] as? String) ?? "", (write["holder"] as? String) ?? "")
        }
    }

    func stop() { process.stop() }
}

@Suite(.serialized) struct KubernetesTests {
    @Test func oneLeaderThroughTheLeaseScaleAndDeletionCostsThenFailover() throws {
        let stack = try Stack()
        defer { stack.stop() }
        try stack.startNode(1)
        try stack.startNode(2)
        let pod = { (name: String) -> [String: Any] in
            [
                "namespace": "rtc", "name": name, "labels": ["app.kubernetes.io/name": "rtc-socket"], "ip": "10.0.0.1",
                "phase": "Running", "annotations": [:] as [String: String],
            ]
        }
        let kube = try FakeKube(
            directory: stack.directory,
            seed: [
                "deployments": [["namespace": "rtc", "name": "rtc-socket", "replicas": 2]],
                "pods": [pod("socket-1"), pod("socket-2")],
            ])
        defer { kube.stop() }
        var balancers: [String: ChildProcess] = [:]
        defer { for (_, process) in balancers { process.stop() } }
        var ports: [String: UInt16] = [:]
        let names = ["balancer-a", "balancer-b", "balancer-c"]
        for name in names {
            var environment = ProcessInfo.processInfo.environment
            let port = freeTCPPort()
            ports[name] = port
            environment["POD_NAME"] = name
            environment["POD_NAMESPACE"] = "rtc"
            environment["BIND_ADDRESS"] = "127.0.0.1"
            environment["HTTP_PORT"] = String(port)
            environment["REDIS_URL"] = stack.redisURL
            environment["KAFKA_BOOTSTRAP"] = stack.kafka.bootstrap
            environment["RING_SECRET"] = stack.ringSecret
            environment["RECONCILE_INTERVAL_SEC"] = "1"
            environment["SCALE_MODE"] = "direct"
            environment["MIN_SOCKET_REPLICAS"] = "3"
            environment["KUBE_API_URL"] = kube.url("")
            environment["KUBE_TOKEN"] = "t0k3n"
            balancers[name] = try ChildProcess(
                Paths.balancer, [], environment: environment, logPath: stack.directory + "/\(name).log")
        }
        func isLeader(_ name: String) -> Double? {
            guard let port = ports[name], let page = try? curl("http://127.0.0.1:\(port)/metrics"), page.status == 200
            else { return nil }
            return metric(page.body, "rtc_balancer_is_leader")
        }
        func leaders() -> [String]? {
            var result: [String] = []
            for name in names where balancers[name] != nil {
                guard let value = isLeader(name) else { return nil }
                if value == 1 { result.append(name) }
            }
            return result
        }
        // Exactly one of three leads, and it is the Lease's holder.
        let elected = waitUntil(timeout: .seconds(30)) { kube.holder != nil && leaders()?.count == 1 }
        #expect(elected, "\(names.map { readText(stack.directory + "/\($0).log") }.joined(separator: "\n"))")
        let leader = try #require(kube.holder)
        #expect(leaders() == [leader])
        // Direct mode: the leader patched the scale subresource to the minimum of 3.
        #expect(waitUntil(timeout: .seconds(15)) { kube.replicas == 3 }, "replicas \(kube.replicas ?? -1)")
        // Deletion costs follow live connections: three sessions on socket-1, none on socket-2.
        let held = try HeldConnections((0..<3).map { "ws://\(stack.host(1)):\(stack.port)/ws/connect?clientId=k\($0)" })
        defer { held.close() }
        let costs = waitUntil(timeout: .seconds(15)) {
            kube.annotation(pod: "socket-1", key: "controller.kubernetes.io/pod-deletion-cost") == "3"
                && kube.annotation(pod: "socket-2", key: "controller.kubernetes.io/pod-deletion-cost") == "0"
        }
        #expect(costs)

        // The leader dies without releasing: another takes over once the Lease expired (15 s), not before.
        let killedAt = Date()
        balancers[leader]?.send(SIGKILL)
        _ = balancers[leader]?.waitForExit()
        balancers[leader] = nil
        let tookOver = waitUntil(timeout: .seconds(40)) {
            guard let holder = kube.holder, holder != leader else { return false }
            return leaders() == [holder]
        }
        #expect(tookOver)
        let failover = Date().timeIntervalSince(killedAt)
        #expect(failover >= 10, "took over \(failover) s after the kill, before the old lease could have expired")
        print("failover after \(failover) s")
        // The fake's log of Lease writes: each replica's successful writes form one run; a replica that lost the
        // Lease never wrote it again, and only the holder it names wrote (never two leaders writing).
        let writes = kube.leaseWrites()
        #expect(writes.allSatisfy { $0.writer == $0.holder }, "\(writes)")
        var runs: [String] = []
        for write in writes where runs.last != write.writer { runs.append(write.writer) }
        #expect(runs.count == 2 && Set(runs).count == 2, "writers in order: \(runs)")
    }
}
