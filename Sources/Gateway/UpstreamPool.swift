// Idle keep-alive upstream connections of one loop, per upstream address.
import EventLoop
import Sys

/// Idle upstream connections that finished a response and may carry the next request (RFC 9112 §9.3).
///
/// While pooled, a connection's handler is the pool: any byte or close from the server ends it (a server may
/// close an idle connection at any time), so reading is resumed when one is put. Taking returns the most recently
/// used connection (the one least likely to have been closed by the server's idle timeout). The keep-alive times
/// share one `Deadline` on the loop's timer heap, set to the earliest of them.
final class UpstreamPool: ConnectionHandler, TimerHandler {
    /// The idle connections to one address; a class so that taking and putting mutate the array in place.
    final class Bucket {
        var connections: [Connection] = []
        /// When each connection (same index) stops being worth keeping (monotonic ns).
        var deadlines: [UInt64] = []
    }

    private var idle: [SocketAddress: Bucket] = [:]
    /// The bucket used last and its address: a gateway proxying to a few addresses finds it without hashing.
    private var lastAddress: SocketAddress?
    /// The bucket of `lastAddress`, unretained: a bucket stays in `idle` from its creation until `closeAll`, which
    /// clears this too, so it is alive whenever this is set (a strong reference was retained and released on
    /// every take and put).
    private var lastBucket: Unmanaged<Bucket>?
    private(set) var count = 0
    /// Fires at `expiryAt`, the earliest keep-alive time of a pooled connection (`.max`: not armed).
    private var expiry = Deadline()
    private var expiryAt = UInt64.max
    /// The loop of the pooled connections (a pool serves one worker).
    private unowned(unsafe) var loop: EventLoop?

    /// An idle connection to `address`, now owned by the caller (who must `lend(to:)` it to its user, or
    /// `setHandler`). Lent, it keeps the pool as its owning handler, and `put` gives it back without a reference
    /// count.
    func take(_ address: SocketAddress) -> Connection? {
        guard let bucket = bucket(address) else { return nil }
        return bucket._withUnsafeGuaranteedRef { bucket in
            // `removeLast` after the check (the generic `popLast` was a call).
            guard !bucket.connections.isEmpty else { return nil }
            let connection = bucket.connections.removeLast()
            bucket.deadlines.removeLast()
            count -= 1
            return connection
        }
    }

    /// Keeps `connection` for reuse until `deadline` if fewer than `capacity` connections to `address` are idle;
    /// closes it otherwise.
    /// `connection` is moved in (appended to a bucket without a reference count).
    func put(_ connection: consuming Connection, address: SocketAddress, capacity: Int, deadline: UInt64) {
        guard !connection.isClosed else { return }
        let reference: Unmanaged<Bucket>
        if let existing = self.bucket(address) {
            reference = existing
        } else {
            let bucket = Bucket()
            bucket.connections.reserveCapacity(capacity)
            bucket.deadlines.reserveCapacity(capacity)
            idle[address] = bucket
            reference = Unmanaged.passUnretained(bucket)
        }
        var moving = Optional(connection)
        reference._withUnsafeGuaranteedRef { bucket in
            put(moving.take()!, deadline: deadline, capacity: capacity, into: bucket)
        }
    }

    @inline(__always)
    private func put(_ connection: consuming Connection, deadline: UInt64, capacity: Int, into bucket: Bucket) {
        guard bucket.connections.count < capacity else {
            connection.close()
            return
        }
        connection.setHandler(self)
        // Never pooled paused (its last user may have paused it for a slow client): a pooled connection must see
        // the server's close, and its next user must see the response.
        connection.resumeReading()
        if deadline < expiryAt {
            loop = connection.loop
            expiryAt = deadline
            connection.loop.arm(&expiry, at: deadline, handler: self)
        }
        bucket.connections.append(consume connection)
        bucket.deadlines.append(deadline)
        count += 1
    }

    /// The bucket of `address`, if any.
    @inline(__always)
    private func bucket(_ address: SocketAddress) -> Unmanaged<Bucket>? {
        if let lastBucket, Self.isLastAddress(lastAddress, address) { return lastBucket }
        guard let bucket = idle[address] else { return nil }
        let reference = Unmanaged.passUnretained(bucket)
        lastAddress = address
        lastBucket = reference
        return reference
    }

    /// `last == address`, with IPv4 addresses compared inline (the derived `==` of an optional was two calls; this
    /// runs twice per pooled request).
    @inline(__always)
    private static func isLastAddress(_ last: SocketAddress?, _ address: SocketAddress) -> Bool {
        if case .v4(let lastHost, let lastPort)? = last, case .v4(let host, let port) = address {
            return lastHost == host && lastPort == port
        }
        return last == address
    }

    func timerFired(tag: UInt64) {
        expiryAt = .max
        guard let loop else { return }
        closeExpired(now: loop.now)
        var next = UInt64.max
        for bucket in idle.values {
            for deadline in bucket.deadlines where deadline < next { next = deadline }
        }
        guard next != .max else { return }
        expiryAt = next
        loop.arm(&expiry, at: next, handler: self)
    }

    /// Closes the idle connections whose keep-alive time is over.
    func closeExpired(now: UInt64) {
        var expired: [Connection] = []
        for bucket in idle.values {
            var index = 0
            while index < bucket.connections.count {
                if bucket.deadlines[index] <= now {
                    expired.append(bucket.connections.remove(at: index))
                    bucket.deadlines.remove(at: index)
                    count -= 1
                } else {
                    index += 1
                }
            }
        }
        for connection in expired { connection.close() }
    }

    /// Closes every idle connection (drain, stop).
    func closeAll() {
        loop?.disarm(&expiry)
        expiryAt = .max
        let all = idle.values.flatMap(\.connections)
        idle.removeAll()
        lastAddress = nil
        lastBucket = nil
        count = 0
        for connection in all { connection.close() }
    }

    private func forget(_ connection: Connection) {
        for bucket in idle.values {
            guard let index = bucket.connections.firstIndex(where: { $0 === connection }) else { continue }
            bucket.connections.remove(at: index)
            bucket.deadlines.remove(at: index)
            count -= 1
            return
        }
    }

    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        // Bytes on an idle connection are a protocol error (or a late 408): the connection is not reusable.
        connection.close()
    }

    func readEOF(_ connection: Connection) { connection.close() }

    func closed(_ connection: Connection, error: Errno?) { forget(connection) }
}
