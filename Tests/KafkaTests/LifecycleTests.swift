// Clients give their loop registration back when closed or dropped, and close twice without harm.
import EventLoop
import Kafka
import TestSupport
import Testing

@Suite(.serialized) struct LifecycleTests {
    @Test func closedOrDroppedClientsReleaseTheirRegistrations() throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let loop = fixture.loop
        let bootstrap = fixture.cluster.bootstrap
        let counts = try fixture.running.sync { () -> [Int] in
            let baseline = loop.registrationCount
            let producer = try KafkaProducer(loop: loop, bootstrap: bootstrap)
            let consumer = try KafkaConsumer(loop: loop, bootstrap: bootstrap, groupID: "g", topics: ["t"]) { _ in }
            let admin = try KafkaAdmin(loop: loop, bootstrap: bootstrap)
            let open = loop.registrationCount
            producer.close()
            consumer.close()
            admin.close()
            producer.close()
            consumer.close()
            admin.close()
            let closed = loop.registrationCount
            do {
                _ = try KafkaProducer(loop: loop, bootstrap: bootstrap)
                _ = try KafkaConsumer(loop: loop, bootstrap: bootstrap, groupID: "g", topics: ["t"]) { _ in }
                _ = try KafkaAdmin(loop: loop, bootstrap: bootstrap)
            }
            return [baseline, open, closed, loop.registrationCount]
        }
        #expect(counts[1] == counts[0] + 3, "one eventfd per client")
        #expect(counts[2] == counts[0], "close gives it back")
        #expect(counts[3] == counts[0], "so does dropping the client")
    }
}
