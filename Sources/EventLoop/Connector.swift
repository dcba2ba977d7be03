// Nonblocking connect with a timeout, the result delivered on the loop.
import Sys

/// How a connect attempt ended.
public enum ConnectResult: Equatable, Sendable {
    /// Connected; the handler owns `fd` (nonblocking; no longer registered with the loop).
    case connected(FileDescriptor)
    case failed(Errno)
    case timedOut
}

/// Receives the result of `Connector.connect`, on the loop, never from inside `connect`.
public protocol ConnectHandler: AnyObject {
    func connectCompleted(_ result: ConnectResult, tag: UInt64)
    /// What the connector calls. The default leaves the loop's registration (so the handler may register the fd
    /// itself) and calls `connectCompleted(_:tag:)`; a handler that implements this one may keep the registration
    /// with `connector.connection(handler:)`.
    func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector)
}

extension ConnectHandler {
    public func connectCompleted(_ result: ConnectResult, tag: UInt64, connector: Connector) {
        connector.releaseRegistration()
        connectCompleted(result, tag: tag)
    }
}

/// One connect attempt in flight.
public final class Connector: EventHandler, TimerHandler {
    unowned let loop: EventLoop
    let fd: FileDescriptor
    let tag: UInt64
    private var handler: (any ConnectHandler)?
    private var token: UInt64 = 0
    /// The connect timeout, on the loop's timer heap like every other deadline.
    private var deadline = Deadline()

    /// Starts connecting to `address`; `handler.connectCompleted` runs later on `loop`. `options` are set on the
    /// socket before it connects (failures to set one are ignored). Socket creation errors (e.g. EMFILE) are thrown
    /// here.
    @discardableResult
    public static func connect(
        loop: EventLoop, to address: SocketAddress, timeout: Duration, handler: any ConnectHandler, tag: UInt64 = 0,
        options: [SocketOption] = []
    ) throws(Errno) -> Connector {
        let fd = try FileDescriptor.socket(.tcp, for: address)
        for option in options { try? fd.set(option) }
        let connector = Connector(loop: loop, fd: fd, handler: handler, tag: tag)
        do {
            connector.token = try loop.register(fd, interest: [.readable, .writable], handler: connector)
        } catch {
            fd.close()
            throw error
        }
        do {
            if try fd.connect(to: address) == .connected { loop.retryLater(connector.token) }
        } catch {
            // Refused at once and the like: still report through the handler, on a later iteration.
            connector.failure = error
            loop.retryLater(connector.token)
            return connector
        }
        loop.arm(&connector.deadline, at: loop.now &+ nanoseconds(timeout), handler: connector)
        return connector
    }

    private var failure: Errno?

    private init(loop: EventLoop, fd: FileDescriptor, handler: any ConnectHandler, tag: UInt64) {
        self.loop = loop
        self.fd = fd
        self.handler = handler
        self.tag = tag
    }

    /// Abandons the attempt without calling the handler.
    public func cancel() { finish(nil) }

    public func ready(_ events: ReadyEvents) {
        if let failure {
            finish(.failed(failure))
            return
        }
        // A failed connect raises EPOLLERR (POLLERR from io_uring): only then is SO_ERROR worth a system call.
        let error: Errno?
        do {
            error = events.isDisjoint(with: [.error, .hangup]) ? nil : try fd.socketError()
        } catch {
            finish(.failed(error))
            return
        }
        if let error {
            finish(.failed(error))
        } else if !events.isDisjoint(with: [.writable, .readHangup]) {
            // Edge-triggered: bytes the peer sent before the connect was reported raise no new edge.
            readableAtConnect = events.contains(.readable)
            // retryLater delivers readHangup: used for an immediate connect.
            finish(.connected(fd))
        }
    }

    public func timerFired(tag: UInt64) {
        finish(.timedOut)
    }

    public func loopStopping() { finish(nil) }

    private func finish(_ result: ConnectResult?) {
        guard let handler else { return }
        self.handler = nil
        loop.disarm(&deadline)
        guard case .connected = result else {
            loop.deregister(fd, token: token, willClose: true)
            fd.close()
            if let result { handler.connectCompleted(result, tag: tag) }
            return
        }
        // The handler may take the registration over with `connection(handler:)` while it is told; otherwise
        // the fd leaves the loop before it gets it (it may register it anew).
        handingOver = true
        handler.connectCompleted(.connected(fd), tag: tag, connector: self)
        releaseRegistration()
    }

    /// Takes the connected fd out of the loop if `connection(handler:)` did not take the registration over.
    public func releaseRegistration() {
        guard handingOver else { return }
        handingOver = false
        loop.deregister(fd, token: token, willClose: false)
    }

    private var handingOver = false
    private var readableAtConnect = false

    /// Inside `connectCompleted(.connected(fd))` only: a `Connection` for the connected fd that keeps this
    /// connector's registration, which saves the two `epoll_ctl` calls of deregistering and registering again.
    /// Nil anywhere else.
    public func connection(handler: any ConnectionHandler) -> Connection? {
        guard handingOver else { return nil }
        handingOver = false
        let connection = Connection(loop: loop, fd: fd, adopting: token, handler: handler)
        // The connect event also said "readable": the new connection must look, since no new edge will come.
        if readableAtConnect { loop.retryLater(token) }
        return connection
    }
}
