// The group consumer against the mock cluster: order, loop-thread callbacks, commits after handling, rebalances.
import EventLoop
import Kafka
import TestSupport
import Testing

/// Group timings that make rebalances quick on the mock cluster.
let quickGroup = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]

/// Holds a loop-confined object for callbacks that need it (touched on the loop thread only).
final class Slot<Value: AnyObject> {
    var value: Value?
}

@Suite(.serialized) struct ConsumerTests {
    @Test func aMemberReceivesEveryRecordInKeyOrderOnTheLoopThread() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        try fixture.cluster.createTopic("events", partitions: 4)
        // 10 keys, 40 records each; the value is the record's sequence number within its key.
        var records: [(key: String, value: String)] = []
        for sequence in 0..<40 { for key in 0..<10 { records.append(("user-\(key)", "\(sequence)")) } }
        let produced = try produceAll(fixture, topic: "events", records)
        #expect(produced.allSatisfy { (try? $0?.get()) != nil })

        let loop = fixture.loop
        let received = Collected<[KafkaMessage]>([])
        let offLoop = Collected(0)
        let assignments = Collected<[[Int32]]>([])
        let consumer = try fixture.running.sync {
            let consumer = try KafkaConsumer(
                loop: loop, bootstrap: fixture.cluster.bootstrap, groupID: "readers", topics: ["events"],
                config: quickGroup
            ) { message in
                if !loop.isInLoop { offLoop.update { $0 += 1 } }
                received.update { $0.append(message) }
            }
            consumer.onAssignment = { partitions in
                if !loop.isInLoop { offLoop.update { $0 += 1 } }
                assignments.update { $0.append(partitions.map(\.partition)) }
            }
            return consumer
        }
        defer { try? fixture.running.sync { consumer.close() } }
        #expect(waitUntil(timeout: groupWait) { received.value.count >= 400 })
        #expect(received.value.count == 400)
        #expect(offLoop.value == 0, "every callback runs on the loop thread")
        #expect(assignments.value.last == [0, 1, 2, 3])
        var sequences: [String: [Int]] = [:]
        var partitionOfKey: [String: Int32] = [:]
        for message in received.value {
            #expect(message.topic == "events")
            sequences[text(message.key), default: []].append(Int(text(message.value)) ?? -1)
            #expect(partitionOfKey[text(message.key), default: message.partition] == message.partition)
            partitionOfKey[text(message.key)] = message.partition
        }
        #expect(sequences.count == 10)
        for (key, values) in sequences {
            #expect(values == Array(0..<40), "\(key) arrives in the order produced")
        }
    }

    @Test func aNewMemberResumesRightAfterTheLastHandledRecord() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        try fixture.cluster.createTopic("jobs", partitions: 2)
        let produced = try produceAll(fixture, topic: "jobs", (0..<100).map { ("job-\($0)", "\($0)") })
        let deliveries = produced.compactMap { try? $0?.get() }
        #expect(deliveries.count == 100)
        let loop = fixture.loop

        // The first member handles 40 records and closes itself from inside the handler.
        let first = Collected<[KafkaMessage]>([])
        let slot = Slot<KafkaConsumer>()
        let consumer = try fixture.running.sync {
            let consumer = try KafkaConsumer(
                loop: loop, bootstrap: fixture.cluster.bootstrap, groupID: "workers", topics: ["jobs"],
                config: quickGroup
            ) { message in
                first.update { $0.append(message) }
                if first.value.count == 40 { slot.value?.close() }
            }
            slot.value = consumer
            return consumer
        }
        #expect(waitUntil(timeout: groupWait) { (try? fixture.running.sync { consumer.isClosed }) == true })
        #expect(first.value.count == 40, "nothing is handled after close")

        // The second member of the same group starts after what the first one handled, per partition.
        let second = Collected<[KafkaMessage]>([])
        let successor = try fixture.running.sync {
            try KafkaConsumer(
                loop: loop, bootstrap: fixture.cluster.bootstrap, groupID: "workers", topics: ["jobs"],
                config: quickGroup
            ) { message in second.update { $0.append(message) } }
        }
        defer { try? fixture.running.sync { successor.close() } }
        #expect(waitUntil(timeout: groupWait) { second.value.count >= 60 })
        #expect(second.value.count == 60)
        for partition: Int32 in [0, 1] {
            let total = deliveries.filter { $0.partition == partition }.count
            let handled = first.value.filter { $0.partition == partition }.map(\.offset)
            let resumed = second.value.filter { $0.partition == partition }.map(\.offset)
            #expect(handled == Array(0..<Int64(handled.count)))
            #expect(resumed == Array(Int64(handled.count)..<Int64(total)), "partition \(partition)")
        }
    }

    @Test func twoMembersSplitThePartitionsAndReceiveEachRecordOnce() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        try fixture.cluster.createTopic("split", partitions: 4)
        let loop = fixture.loop
        let received = [Collected<[KafkaMessage]>([]), Collected<[KafkaMessage]>([])]
        let assigned = [Collected<[Int32]>([]), Collected<[Int32]>([])]
        var members: [KafkaConsumer] = []
        for member in 0..<2 {
            members.append(
                try fixture.running.sync {
                    let consumer = try KafkaConsumer(
                        loop: loop, bootstrap: fixture.cluster.bootstrap, groupID: "pair", topics: ["split"],
                        config: quickGroup
                    ) { message in received[member].update { $0.append(message) } }
                    consumer.onAssignment = { partitions in
                        assigned[member].update { $0 = partitions.map(\.partition) }
                    }
                    return consumer
                })
        }
        defer { try? fixture.running.sync { for member in members { member.close() } } }
        let split = waitUntil(timeout: groupWait) {
            let a = Set(assigned[0].value)
            let b = Set(assigned[1].value)
            return !a.isEmpty && !b.isEmpty && a.isDisjoint(with: b) && a.union(b) == [0, 1, 2, 3]
        }
        #expect(split, "assignments: \(assigned[0].value) and \(assigned[1].value)")

        let produced = try produceAll(fixture, topic: "split", (0..<200).map { ("user-\($0)", "\($0)") })
        #expect(produced.allSatisfy { (try? $0?.get()) != nil })
        #expect(waitUntil(timeout: groupWait) { received[0].value.count + received[1].value.count >= 200 })
        var seen = Set<[Int64]>()
        for member in 0..<2 {
            let mine = Set(assigned[member].value)
            #expect(!received[member].value.isEmpty, "member \(member) got a share")
            for message in received[member].value {
                #expect(mine.contains(message.partition), "member \(member) only reads its own partitions")
                #expect(seen.insert([Int64(message.partition), message.offset]).inserted, "no record twice")
            }
        }
        #expect(seen.count == 200)
    }

    /// With one event per wake-up the rest of the queue is served on later loop iterations (`retryLater`): the io
    /// event does not fire again while the queue is non-empty, so without the continuation consumption would stall.
    @Test func oneEventPerWakeUpStillDrainsTheQueueAndCloseIsPrompt() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        try fixture.cluster.createTopic("drip", partitions: 1)
        let produced = try produceAll(fixture, topic: "drip", (0..<300).map { ("k", "\($0)") })
        #expect(produced.allSatisfy { (try? $0?.get()) != nil })
        let loop = fixture.loop
        let offsets = Collected<[Int64]>([])
        let consumer = try fixture.running.sync {
            let consumer = try KafkaConsumer(
                loop: loop, bootstrap: fixture.cluster.bootstrap, groupID: "drip", topics: ["drip"],
                config: quickGroup
            ) { message in offsets.update { $0.append(message.offset) } }
            consumer.eventsPerWakeUp = 1
            return consumer
        }
        #expect(waitUntil(timeout: groupWait) { offsets.value.count >= 300 })
        #expect(offsets.value == Array(0..<300))
        let clock = ContinuousClock()
        let started = clock.now
        try fixture.running.sync { consumer.close() }
        let closing = clock.now - started
        #expect(closing < .seconds(3), "leaving the group took \(closing)")
        #expect(try fixture.running.sync { consumer.isClosed })
    }

    @Test func anUnreachableClusterIsReportedThroughOnErrorOnTheLoopThread() throws {
        let running = try RunningLoop()
        defer { running.stop() }
        let loop = running.loop
        let errors = Collected<[(KafkaError, Bool)]>([])
        let consumer = try running.sync {
            let consumer = try KafkaConsumer(
                loop: loop, bootstrap: "127.0.0.1:\(freeTCPPort())", groupID: "lonely", topics: ["nothing"]
            ) { _ in }
            consumer.onError = { error in
                let onLoop = loop.isInLoop
                errors.update { $0.append((error, onLoop)) }
            }
            return consumer
        }
        defer { try? running.sync { consumer.close() } }
        #expect(waitUntil(timeout: .seconds(10)) { !errors.value.isEmpty })
        #expect(errors.value.allSatisfy { $0.1 })
        #expect(errors.value.allSatisfy { $0.0.code < 0 && !$0.0.message.isEmpty }, "\(errors.value.map(\.0))")
    }
}
