// Brings a librdkafka queue into the event loop: librdkafka writes to an eventfd when the queue becomes non-empty.
import CRdKafka
import EventLoop
import Sys

/// The owner of a bridged queue: serves its events on the loop thread.
protocol QueueServer: AnyObject {
    /// Serves at most `budget` events with `rd_kafka_queue_poll(queue, 0)`; returns whether events may remain.
    func serve(budget: Int) -> Bool
}

/// One librdkafka queue bridged into one loop (`rd_kafka_queue_io_event_enable`).
///
/// librdkafka writes an 8-byte counter increment to the eventfd when an element is enqueued on an empty queue (and
/// not again until the queue was polled), so on readiness the bridge drains the eventfd first and then has the
/// queue served until it is empty. Work per wake-up is bounded by `budget`; the rest continues on the next loop
/// iteration (`retryLater`), so a busy queue does not starve the loop's other registrations.
///
/// The queue is also polled once a second when nothing arrives: a group consumer that does not poll for
/// `max.poll.interval.ms` is taken out of its group by librdkafka, and an idle consumer would otherwise poll only
/// when an event arrives.
final class QueueBridge: EventHandler, TimerHandler {
    // Invariant: the owner (which holds the loop strongly) detaches the bridge before it goes away, and the loop
    // tells the bridge when it stops; the loop therefore outlives every use of this reference.
    unowned let loop: EventLoop
    let queue: OpaquePointer
    let fd: FileDescriptor
    private var token: UInt64 = 0
    private var attached = true
    weak var server: (any QueueServer)?
    /// Events served per wake-up before yielding to the loop.
    var budget = 256
    private var poll: TimerID?
    static let pollInterval: Duration = .seconds(1)

    /// Enables the queue's io event on a new eventfd and registers it. The queue stays owned by the caller.
    init(loop: EventLoop, queue: OpaquePointer, server: any QueueServer) throws(KafkaError) {
        self.loop = loop
        self.queue = queue
        self.server = server
        do {
            fd = try FileDescriptor.eventFD()
        } catch {
            throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, "eventfd: \(error)")
        }
        // eventfd(2) takes writes of one 8-byte integer; librdkafka keeps its own copy of the payload.
        var increment: UInt64 = 1
        withUnsafeBytes(of: &increment) { rd_kafka_queue_io_event_enable(queue, fd.rawValue, $0.baseAddress, 8) }
        do {
            token = try loop.register(fd, interest: .readable, handler: self)
        } catch {
            rd_kafka_queue_io_event_enable(queue, -1, nil, 0)
            fd.close()
            throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, "registering the queue's eventfd: \(error)")
        }
        // Events enqueued before the io event was enabled wrote nothing: serve them on the next iteration.
        loop.retryLater(token)
        poll = loop.schedule(after: QueueBridge.pollInterval, handler: self)
    }

    func timerFired(tag: UInt64) {
        poll = nil
        guard attached else { return }
        loop.retryLater(token)
        poll = loop.schedule(after: QueueBridge.pollInterval, handler: self)
    }

    func ready(_ events: ReadyEvents) {
        guard attached, let server else { return }
        _ = fd.drainEvent()
        if server.serve(budget: budget) && attached {
            loop.retryLater(token)
        }
    }

    func loopStopping() { detach() }

    /// Stops the io event, then deregisters and closes the eventfd. librdkafka writes to the fd under the queue's
    /// lock, which `rd_kafka_queue_io_event_enable` also takes: once it returns, no write can reach a reused fd number.
    func detach() {
        guard attached else { return }
        attached = false
        if let poll { loop.cancel(poll) }
        poll = nil
        rd_kafka_queue_io_event_enable(queue, -1, nil, 0)
        loop.deregister(fd, token: token, willClose: true)
        fd.close()
    }
}
