// Topic administration: results arrive on the loop thread, errors are reported, and the mock's own topic creation.
import EventLoop
import Kafka
import TestSupport
import Testing

@Suite(.serialized) struct AdminTests {
    /// librdkafka 2.0's mock cluster serves neither CreateTopics nor DeleteTopics: requests must end with an error
    /// after the request timeout, on the loop thread, instead of never completing.
    @Test func requestsTheBrokerCannotServeEndWithAnError() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let loop = fixture.loop
        let results = Collected<[String: (Result<Void, KafkaError>, Bool)]>([:])
        let admin = try fixture.running.sync {
            try KafkaAdmin(loop: loop, bootstrap: fixture.cluster.bootstrap, requestTimeout: .seconds(2))
        }
        defer { try? fixture.running.sync { admin.close() } }
        try fixture.running.sync {
            admin.createTopic("ring", partitions: 1) { result in
                let onLoop = loop.isInLoop
                results.update { $0["create"] = (result, onLoop) }
            }
            admin.deleteTopic("deliveries.node-1") { result in
                let onLoop = loop.isInLoop
                results.update { $0["delete"] = (result, onLoop) }
            }
            #expect(admin.inFlight == 2)
        }
        #expect(waitUntil(timeout: .seconds(15)) { results.value.count == 2 })
        for (name, (result, onLoop)) in results.value {
            #expect(onLoop, "\(name) completes on the loop thread")
            guard case .failure(let error) = result else {
                Issue.record("\(name) succeeded against a broker without the Admin API")
                continue
            }
            #expect(error.code == KafkaError.timedOut, "\(name): \(error)")
        }
        #expect(try fixture.running.sync { admin.inFlight } == 0)
    }

    @Test func invalidRequestsAndClosingFailAtOnce() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let loop = fixture.loop
        let outcomes = try fixture.running.sync { () -> [Result<Void, KafkaError>?] in
            let admin = try KafkaAdmin(loop: loop, bootstrap: fixture.cluster.bootstrap)
            var invalid: Result<Void, KafkaError>?
            admin.createTopic("none", partitions: -2) { invalid = $0 }
            var pending: Result<Void, KafkaError>?
            admin.createTopic("later", partitions: 3) { pending = $0 }
            let wasPending = pending == nil
            admin.close()
            var afterClose: Result<Void, KafkaError>?
            admin.deleteTopic("later") { afterClose = $0 }
            return [invalid, wasPending ? pending : nil, afterClose]
        }
        guard case .failure(let invalid)? = outcomes[0] else {
            Issue.record("\(outcomes[0] as Any)")
            return
        }
        #expect(invalid.code == KafkaError.invalidConfiguration)
        guard case .failure(let pending)? = outcomes[1] else {
            Issue.record("\(outcomes[1] as Any)")
            return
        }
        #expect(pending.code == KafkaError.closed)
        guard case .failure(let late)? = outcomes[2] else {
            Issue.record("\(outcomes[2] as Any)")
            return
        }
        #expect(late.code == KafkaError.closed)
    }

    @Test func theMockClusterCreatesTopicsWithTheRequestedPartitions() throws {
        let fixture = try Fixture(brokers: 3)
        defer { fixture.finish() }
        #expect(fixture.cluster.bootstrap.split(separator: ",").count == 3)
        try fixture.cluster.createTopic("ring", partitions: 1, replicationFactor: 3)
        try fixture.cluster.createTopic("deliveries", partitions: 6)
        let ring = try produceAll(fixture, topic: "ring", [("a", "1"), ("b", "2"), ("c", "3")])
        #expect(ring.compactMap { try? $0?.get() }.map(\.partition) == [0, 0, 0], "one partition only")
        let lastPartition = try produceAll(fixture, topic: "deliveries", [("k", "v")], partition: 5)
        #expect((try? lastPartition[0]?.get())?.partition == 5)
        let beyond = try produceAll(fixture, topic: "deliveries", [("k", "v")], partition: 6)
        guard case .failure(let error)? = beyond[0] else {
            Issue.record("\(beyond[0] as Any)")
            return
        }
        #expect(error.code == KafkaError.unknownPartition)
        fixture.cluster.close()
        #expect(throws: KafkaError.self) { try fixture.cluster.createTopic("after", partitions: 1) }
    }

    /// What the docs promise about topics nobody created: the mock makes them on first use, with 4 partitions.
    @Test func theMockClusterAutoCreatesTopicsWithFourPartitions() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let last = try produceAll(fixture, topic: "unplanned", [("k", "v")], partition: 3)
        #expect((try? last[0]?.get())?.partition == 3)
        let beyond = try produceAll(fixture, topic: "unplanned", [("k", "v")], partition: 4)
        guard case .failure(let error)? = beyond[0] else {
            Issue.record("\(beyond[0] as Any)")
            return
        }
        #expect(error.code == KafkaError.unknownPartition)
    }
}
