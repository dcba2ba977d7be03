// The producer against the mock cluster: delivery reports, per-key partitioning, and errors that are reported.
import EventLoop
import Kafka
import TestSupport
import Testing

/// Produces `records` with a fresh producer and waits for every delivery report; returns them in record order.
func produceAll(
    _ fixture: Fixture, topic: String, _ records: [(key: String, value: String)], partition: Int32? = nil
) throws -> [Result<KafkaDelivery, KafkaError>?] {
    let loop = fixture.loop
    let results = Collected<[Result<KafkaDelivery, KafkaError>?]>(Array(repeating: nil, count: records.count))
    let done = Collected(0)
    let producer = try fixture.running.sync { try KafkaProducer(loop: loop, bootstrap: fixture.cluster.bootstrap) }
    defer { try? fixture.running.sync { producer.close() } }
    try fixture.running.sync {
        for (index, record) in records.enumerated() {
            producer.produce(topic: topic, key: bytes(record.key), value: bytes(record.value), partition: partition) {
                result in
                results.update { $0[index] = result }
                done.update { $0 += 1 }
            }
        }
    }
    _ = waitUntil(timeout: .seconds(20)) { done.value == records.count }
    return results.value
}

@Suite(.serialized) struct ProducerTests {
    @Test func thousandRecordsAreDeliveredWithIncreasingOffsetsPerPartition() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        try fixture.cluster.createTopic("orders", partitions: 3)
        let loop = fixture.loop
        // (record index, result, ran on the loop thread), in completion order.
        let reports = Collected<[(Int, Result<KafkaDelivery, KafkaError>, Bool)]>([])
        let producer = try fixture.running.sync { try KafkaProducer(loop: loop, bootstrap: fixture.cluster.bootstrap) }
        defer { try? fixture.running.sync { producer.close() } }
        try fixture.running.sync {
            for index in 0..<1000 {
                producer.produce(topic: "orders", key: bytes("key-\(index % 17)"), value: bytes("\(index)")) {
                    result in
                    let onLoop = loop.isInLoop
                    reports.update { $0.append((index, result, onLoop)) }
                }
            }
            #expect(producer.inFlight == 1000)
        }
        #expect(waitUntil(timeout: .seconds(20)) { reports.value.count == 1000 })
        let all = reports.value
        #expect(all.allSatisfy { $0.2 }, "every completion runs on the loop thread")
        let deliveries = all.compactMap { entry in (try? entry.1.get()).map { (entry.0, $0) } }
        #expect(deliveries.count == 1000, "failures: \(all.filter { (try? $0.1.get()) == nil }.prefix(3))")
        var offsetsByPartition: [Int32: [Int64]] = [:]
        var partitionOfKey: [Int: Int32] = [:]
        for (index, delivery) in deliveries {
            #expect(delivery.topic == "orders")
            offsetsByPartition[delivery.partition, default: []].append(delivery.offset)
            let known = partitionOfKey[index % 17, default: delivery.partition]
            #expect(known == delivery.partition, "one key, one partition")
            partitionOfKey[index % 17] = delivery.partition
        }
        #expect(offsetsByPartition.count > 1, "17 keys spread over the 3 partitions")
        for (partition, offsets) in offsetsByPartition {
            #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(partition): increasing, no gaps")
        }
        #expect(try fixture.running.sync { producer.inFlight } == 0)
    }

    @Test func aForcedPartitionMustExist() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        try fixture.cluster.createTopic("five", partitions: 5)
        let last = try produceAll(fixture, topic: "five", [("a", "last")], partition: 4)
        #expect((try? last[0]?.get())?.partition == 4)
        let beyond = try produceAll(fixture, topic: "five", [("a", "beyond")], partition: 5)
        #expect(beyond[0].map { (try? $0.get()) == nil } == true)
        if case .failure(let error)? = beyond[0] { #expect(error.code == KafkaError.unknownPartition) }
    }

    @Test func aClosedClusterYieldsAnErrorNotSilence() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        try fixture.cluster.createTopic("gone", partitions: 1)
        let loop = fixture.loop
        let results = Collected<[Result<KafkaDelivery, KafkaError>]>([])
        let producer = try fixture.running.sync {
            try KafkaProducer(
                loop: loop, bootstrap: fixture.cluster.bootstrap, config: ["message.timeout.ms": "2000"])
        }
        defer { try? fixture.running.sync { producer.close(flushTimeout: .zero) } }
        func send(_ value: String) throws {
            try fixture.running.sync {
                producer.produce(topic: "gone", key: [], value: bytes(value)) { result in
                    results.update { $0.append(result) }
                }
            }
        }
        try send("before")
        #expect(waitUntil(timeout: .seconds(15)) { results.value.count == 1 })
        #expect((try? results.value.first?.get())?.offset == 0)
        fixture.cluster.close()
        try send("after")
        #expect(waitUntil(timeout: .seconds(15)) { results.value.count == 2 })
        guard results.value.count == 2, case .failure(let error) = results.value[1] else {
            Issue.record("expected a failed delivery, got \(results.value)")
            return
        }
        #expect(error.code == KafkaError.messageTimedOut)
    }

    @Test func anUnreachableBootstrapYieldsErrorsAndAFullQueueFailsAtOnce() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let results = Collected<[Int: Result<KafkaDelivery, KafkaError>]>([:])
        let producer = try running.sync {
            try KafkaProducer(
                loop: loop, bootstrap: "127.0.0.1:\(freeTCPPort())",
                config: ["message.timeout.ms": "1000", "queue.buffering.max.messages": "5"])
        }
        defer { try? running.sync { producer.close(flushTimeout: .zero) } }
        let immediate = try running.sync {
            var failedAtOnce: [Int] = []
            for index in 0..<8 {
                producer.produce(topic: "nowhere", key: bytes("k"), value: bytes("\(index)")) { result in
                    results.update { $0[index] = result }
                }
                if results.value[index] != nil { failedAtOnce.append(index) }
            }
            return failedAtOnce
        }
        #expect(immediate == [5, 6, 7], "the sixth record and later do not fit the local queue")
        for index in immediate {
            if case .failure(let error)? = results.value[index] { #expect(error.code == KafkaError.queueFull) }
        }
        #expect(waitUntil(timeout: .seconds(15)) { results.value.count == 8 })
        for index in 0..<5 {
            guard case .failure(let error)? = results.value[index] else {
                Issue.record("record \(index): \(String(describing: results.value[index]))")
                continue
            }
            #expect(error.code == KafkaError.messageTimedOut)
        }
    }

    @Test func closingFailsWhatIsStillQueued() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let results = Collected<[Result<KafkaDelivery, KafkaError>]>([])
        let producer = try running.sync {
            try KafkaProducer(
                loop: loop, bootstrap: "127.0.0.1:\(freeTCPPort())", config: ["message.timeout.ms": "60000"])
        }
        let clock = ContinuousClock()
        let started = clock.now
        try running.sync {
            for index in 0..<3 {
                producer.produce(topic: "nowhere", key: [], value: bytes("\(index)")) { result in
                    results.update { $0.append(result) }
                }
            }
            producer.close(flushTimeout: .milliseconds(300))
            #expect(producer.inFlight == 0)
        }
        #expect(clock.now - started < .seconds(5))
        #expect(results.value.count == 3)
        #expect(results.value.allSatisfy { (try? $0.get()) == nil })
        // A closed producer fails at once.
        let late = try running.sync {
            var outcome: Result<KafkaDelivery, KafkaError>?
            producer.produce(topic: "nowhere", key: [], value: []) { outcome = $0 }
            return outcome
        }
        if case .failure(let error)? = late {
            #expect(error.code == KafkaError.closed)
        } else {
            Issue.record("\(late as Any)")
        }
    }

    @Test func anUnknownPropertyIsRejected() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let outcome = try running.sync { () -> KafkaError? in
            do {
                _ = try KafkaProducer(loop: loop, bootstrap: "127.0.0.1:9", config: ["no.such.property": "1"])
                return nil
            } catch let error as KafkaError {
                return error
            }
        }
        #expect(outcome?.code == KafkaError.invalidConfiguration)
        #expect(outcome?.message.contains("no.such.property") == true)
    }
}
