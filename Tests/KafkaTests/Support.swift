// Shared pieces of the Kafka tests: a cluster plus a loop per test, and a thread-safe place to collect callbacks.
import EventLoop
import Kafka
import Synchronization
import TestSupport

/// Values written by loop callbacks and read by the test thread.
final class Collected<Value: Sendable>: Sendable {
    private let state: Mutex<Value>

    init(_ value: Value) { state = Mutex(value) }

    var value: Value { state.withLock { $0 } }

    func update(_ body: (inout Value) -> Void) {
        state.withLock { body(&$0) }
    }
}

/// A mock cluster and a loop on its own thread; `finish()` stops both.
struct Fixture {
    let cluster: KafkaMockCluster
    let running: RunningLoop
    var loop: EventLoop { running.loop }

    init(brokers: Int = 1) throws {
        cluster = try KafkaMockCluster(brokers: brokers)
        running = try RunningLoop()
    }

    func finish() {
        running.stop()
        cluster.close()
    }
}

/// How long the tests wait for anything involving a group join (the mock's first join takes about 3 s).
let groupWait: Duration = .seconds(20)

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
