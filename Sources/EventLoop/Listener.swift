// A TCP listener on one loop: batched accept4, back-off on EMFILE/ENFILE, pause for drain.
import Sys

/// Receives accepted sockets (nonblocking, close-on-exec) on the listener's loop; the handler owns `fd`.
public protocol AcceptHandler: AnyObject {
    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener)
}

/// One listening socket registered with one loop. With `reusePort`, every loop of a group binds its own listener
/// on the same port and the kernel spreads connections over their accept queues (SO_REUSEPORT, socket(7)).
public final class Listener: EventHandler, TimerHandler {
    public unowned let loop: EventLoop
    public let fd: FileDescriptor
    /// The bound address (the real port when bound to port 0).
    public let address: SocketAddress
    private let handler: any AcceptHandler
    private var token: UInt64 = 0
    private var accepting = true
    private var backingOff = false
    private var closed = false
    /// Accepts per wake before yielding to other events.
    public var acceptBatch = 64
    /// How long to stop accepting after EMFILE/ENFILE instead of spinning on a full accept queue.
    public var backoff: Duration = .milliseconds(100)
    /// How many times the listener backed off (for metrics and tests).
    public private(set) var backoffCount = 0
    /// Tests set this to make the next accepts fail with these errors (EMFILE cannot be provoked per-listener).
    var injectedErrors: [Errno] = []

    /// `noDelay`: TCP_NODELAY on the listening socket, which every accepted socket inherits (Linux copies it at
    /// accept): one `setsockopt` per listener instead of one per connection. `delayedAck`: TCP_QUICKACK off on it,
    /// which accepted sockets also inherit, so they start in delayed-ACK mode: a request's ACK rides on its answer
    /// instead of going alone first (a new socket otherwise answers its first segments at once).
    public init(
        loop: EventLoop, address: SocketAddress, backlog: Int32 = 1024, reusePort: Bool = true, noDelay: Bool = false,
        delayedAck: Bool = false, handler: any AcceptHandler
    ) throws(Errno) {
        let socket = try Socket.listener(at: address, backlog: backlog, reusePort: reusePort)
        if noDelay { try socket.fd.set(.noDelay(true)) }
        if delayedAck { try socket.fd.set(.quickAck(false)) }
        self.address = try socket.fd.localAddress()
        self.loop = loop
        self.handler = handler
        self.fd = socket.release()
        do {
            token = try loop.register(fd, interest: .readable, handler: self)
        } catch {
            fd.close()
            throw error
        }
    }

    static let resourceErrors: Set<Errno> = [
        .tooManyOpenFiles, .tooManyOpenFilesInSystem, .noBufferSpace, .noMemory,
    ]

    public var isBackingOff: Bool { backingOff }

    public func ready(_ events: ReadyEvents) {
        guard accepting, !backingOff, !closed else { return }
        for _ in 0..<acceptBatch {
            do throws(Errno) {
                if !injectedErrors.isEmpty { throw injectedErrors.removeFirst() }
                guard let (socket, peer) = try fd.accept() else { return }
                handler.accepted(socket, peer: peer, listener: self)
                if closed || !accepting { return }
            } catch {
                if Listener.resourceErrors.contains(error) {
                    // The queue stays full and readable: without a pause the loop would spin on it.
                    backingOff = true
                    backoffCount += 1
                    loop.schedule(after: backoff, handler: self)
                    return
                }
                // ECONNABORTED and friends concern one connection only.
                continue
            }
        }
        loop.retryLater(token)
    }

    public func timerFired(tag: UInt64) {
        backingOff = false
        if accepting && !closed { loop.retryLater(token) }
    }

    /// Stops taking connections (they wait in the kernel queue); for drain.
    public func pause() { accepting = false }

    public func resume() {
        guard !accepting else { return }
        accepting = true
        loop.retryLater(token)
    }

    public func close() {
        guard !closed else { return }
        closed = true
        loop.deregister(fd, token: token, willClose: true)
        fd.close()
    }

    public func loopStopping() { close() }
}
