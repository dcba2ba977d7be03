// A TCP listener on one loop: batched accept4 (a multishot accept on io_uring), back-off on EMFILE/ENFILE, pause for
// drain.
import Sys

/// Receives accepted sockets (nonblocking, close-on-exec) on the listener's loop; the handler owns `fd`.
public protocol AcceptHandler: AnyObject {
    func accepted(_ fd: FileDescriptor, peer: SocketAddress?, listener: Listener)
}

/// One listening socket registered with one loop. With `reusePort`, every loop of a group binds its own listener
/// on the same port and the kernel spreads connections over their accept queues (SO_REUSEPORT, socket(7)).
///
/// On an epoll loop it accepts with accept4(2) when the socket is readable. On an io_uring loop one multishot accept
/// stays armed: each connection comes as a completion carrying the new socket (its peer address from one
/// getpeername(2), since a multishot accept has no per-connection address buffer), with no wake-up to find the
/// listener readable. A pause or a back-off cancels it; it is armed again when they end.
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
    /// Accepting by completion (io_uring), and whether the multishot accept is armed (until a completion without
    /// `more`).
    private var byCompletion = false
    private var acceptArmed = false
    /// Sockets a multishot accept delivered while an injected error said "failed": handed over when the back-off
    /// ends, as a retried accept4 would have taken them then.
    private var held: [FileDescriptor] = []

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
        byCompletion = loop.acceptByCompletion(fd, token: token)
        acceptArmed = byCompletion
    }

    static let resourceErrors: Set<Errno> = [
        .tooManyOpenFiles, .tooManyOpenFilesInSystem, .noBufferSpace, .noMemory,
    ]

    public var isBackingOff: Bool { backingOff }

    /// Accepting with a multishot accept (io_uring), and whether it is armed now.
    public var acceptsByCompletion: Bool { byCompletion }
    var isAcceptArmed: Bool { acceptArmed }

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

    /// A multishot accept's completion (io_uring): a new socket, or why the accept ended.
    public func completed(_ receipt: Receipt) {
        if !receipt.more { acceptArmed = false }
        if receipt.result >= 0 {
            let socket = FileDescriptor(receipt.result)
            if closed {
                socket.close()
                return
            }
            if !injectedErrors.isEmpty, Listener.resourceErrors.contains(injectedErrors.removeFirst()) {
                held.append(socket)
                backOff()
                return
            }
            hand(socket)
        } else if Listener.resourceErrors.contains(Errno(-receipt.result)) {
            backOff()
            return
        }
        // ECANCELED (a pause, a back-off or the close) and errors that concern one connection only.
        armAcceptIfWanted()
    }

    private func hand(_ socket: FileDescriptor) {
        handler.accepted(socket, peer: try? socket.peerAddress(), listener: self)
    }

    /// EMFILE and the like from a multishot accept: it stops (cancelled if still armed) until the timer.
    private func backOff() {
        backingOff = true
        backoffCount += 1
        if acceptArmed { loop.cancelReceive(token) }
        loop.schedule(after: backoff, handler: self)
    }

    private func armAcceptIfWanted() {
        guard byCompletion, !acceptArmed, accepting, !backingOff, !closed else { return }
        acceptArmed = loop.armAccept(fd, token: token)
    }

    public func timerFired(tag: UInt64) {
        backingOff = false
        guard byCompletion else {
            if accepting && !closed { loop.retryLater(token) }
            return
        }
        let waiting = held
        held.removeAll()
        for socket in waiting {
            if closed { socket.close() } else { hand(socket) }
        }
        armAcceptIfWanted()
    }

    /// Stops taking connections (they wait in the kernel queue); for drain.
    public func pause() {
        accepting = false
        if byCompletion && acceptArmed { loop.cancelReceive(token) }
    }

    public func resume() {
        guard !accepting else { return }
        accepting = true
        if byCompletion { armAcceptIfWanted() } else { loop.retryLater(token) }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        // On io_uring this also cancels the multishot accept.
        loop.deregister(fd, token: token, willClose: true)
        fd.close()
        held.forEach { $0.close() }
        held.removeAll()
    }

    public func loopStopping() { close() }
}
