// IOURing: a poll, a multishot accept, a multishot receive into provided buffers and a send on real sockets.
import Sys
import Testing

let ioURingFlags: IOURing.SetupFlags = [.singleIssuer, .deferTaskRun]
let ioURingAvailable = IOURing.unavailability(flags: ioURingFlags) == nil

@Suite(.enabled(if: ioURingAvailable, "io_uring is not available here")) struct IOURingTests {
    /// Waits (submitting what is queued) until completions arrive; gives up after `turns` empty waits of 1 s.
    func completions(_ ring: IOURing, turns: Int = 5) throws -> [IOURing.Completion] {
        let buffer = UnsafeMutablePointer<IOURing.Completion>.allocate(capacity: 64)
        defer { buffer.deallocate() }
        for _ in 0..<turns {
            try ring.submitAndWait(timeoutNanoseconds: 1_000_000_000)
            let count = ring.completions(into: buffer, capacity: 64)
            if count > 0 { return Array(UnsafeBufferPointer(start: buffer, count: count)) }
        }
        return []
    }

    @Test func multishotPollReportsEachWrite() throws {
        let ring = try IOURing(entries: 8, flags: ioURingFlags)
        let pipe = try FileDescriptor.pipe()
        defer { [pipe.read, pipe.write].forEach { $0.close() } }
        try ring.pollMultishot(pipe.read, events: [.input], userData: 7)
        try ring.submitAndWait(timeoutNanoseconds: 0)
        #expect(try completions(ring, turns: 0).isEmpty)
        let byte: [UInt8] = [1]
        _ = try byte.withUnsafeBytes { try pipe.write.write($0) }
        var seen = try completions(ring)
        #expect(seen.count == 1 && seen[0].userData == 7 && seen[0].more)
        #expect(IOURing.PollEvents(rawValue: UInt32(seen[0].result)).contains(.input))
        _ = try byte.withUnsafeBytes { try pipe.write.write($0) }
        seen = try completions(ring)
        #expect(seen.count == 1 && seen[0].userData == 7 && seen[0].more)
        try ring.pollRemove(7)
        seen = try completions(ring)
        #expect(seen.count == 1 && seen[0].userData == 7 && seen[0].errno == .cancelled && !seen[0].more)
    }

    @Test func multishotAcceptAndReceiveIntoProvidedBuffers() throws {
        let ring = try IOURing(entries: 16, flags: ioURingFlags)
        let buffers = try ProvidedBufferRing(ring: ring, group: 1, count: 4, bufferSize: 16)
        let listener = try Socket.listener(at: .loopback(port: 0))
        let address = try listener.fd.localAddress()
        try ring.acceptMultishot(listener.fd, userData: 1)
        let client = try FileDescriptor.socket(.tcp, for: address)
        defer { client.close() }
        _ = try client.connect(to: address)
        let accepted = try completions(ring)
        #expect(accepted.count == 1 && accepted[0].userData == 1 && accepted[0].result >= 0 && accepted[0].more)
        guard let first = accepted.first, first.result >= 0 else { return }
        let server = FileDescriptor(first.result)
        defer { server.close() }

        try ring.receiveMultishot(server, group: 1, userData: 2)
        let message: [UInt8] = Array("0123456789abcdefXYZ".utf8)  // 19 bytes: more than one 16-byte buffer
        _ = try message.withUnsafeBytes { try client.write($0) }
        var received: [UInt8] = []
        while received.count < message.count {
            let batch = try completions(ring)
            #expect(!batch.isEmpty)
            if batch.isEmpty { break }
            for completion in batch {
                #expect(completion.userData == 2 && completion.result > 0)
                guard let id = completion.bufferID, completion.result > 0 else { continue }
                received += Array(buffers.bytes(id, count: Int(completion.result)))
                buffers.recycle(id)
            }
            buffers.commit()
        }
        #expect(received == message)

        let reply: [UInt8] = Array("pong".utf8)
        try reply.withUnsafeBytes { bytes in try ring.send(server, bytes, userData: 3) }
        let sent = try completions(ring)
        #expect(sent.count == 1 && sent[0].userData == 3 && sent[0].result == 4)
        var answer = [UInt8](repeating: 0, count: 8)
        let count = try answer.withUnsafeMutableBytes { try client.read(into: $0) }
        #expect(count == .count(4) && Array(answer[0..<4]) == reply)
        try ring.cancel(2)
        try ring.cancel(1)
        let cancelled = try completions(ring)
        #expect(Set(cancelled.map(\.userData)) == [1, 2] && cancelled.allSatisfy { $0.errno == .cancelled })
        _ = consume listener
    }

    /// Incremental consumption: three small arrivals share one 64-byte buffer, each at the offset after the one
    /// before; the buffer stays with the kernel (`bufferMore`) until an arrival fills it, and is then released.
    @Test func incrementalBuffersHoldSeveralArrivals() throws {
        let ring = try IOURing(entries: 16, flags: ioURingFlags)
        let buffers = try ProvidedBufferRing(ring: ring, group: 3, count: 2, bufferSize: 64, incremental: true)
        #expect(buffers.incremental)
        let listener = try Socket.listener(at: .loopback(port: 0))
        let address = try listener.fd.localAddress()
        let client = try FileDescriptor.socket(.tcp, for: address)
        defer { client.close() }
        _ = try client.connect(to: address)
        try ring.acceptMultishot(listener.fd, userData: 1)
        let accepted = try completions(ring)
        guard let first = accepted.first, first.result >= 0 else {
            Issue.record("no accept: \(accepted)")
            return
        }
        let server = FileDescriptor(first.result)
        defer { server.close() }
        try ring.receiveMultishot(server, group: 3, userData: 2)
        var ids: [UInt16] = []
        var pieces: [[UInt8]] = []
        var released: [Bool] = []
        // 20 + 20 bytes, each waited for, then 30: the last one fills the buffer's remaining 24 bytes and spills 6
        // bytes into the next buffer.
        for message in ["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccccccccc"] {
            _ = try Array(message.utf8).withUnsafeBytes { try client.write($0) }
            var got = 0
            while got < message.utf8.count {
                let batch = try completions(ring)
                if batch.isEmpty { break }
                for completion in batch where completion.userData == 2 {
                    guard let id = completion.bufferID, completion.result > 0 else { continue }
                    let taken = buffers.take(
                        id, count: Int(completion.result), bufferMore: completion.bufferMore)
                    ids.append(id)
                    pieces.append(Array(taken.bytes))
                    released.append(taken.released)
                    got += Int(completion.result)
                }
            }
        }
        #expect(
            pieces.map { String(decoding: $0, as: UTF8.self) } == [
                String(repeating: "a", count: 20), String(repeating: "b", count: 20), String(repeating: "c", count: 24),
                String(repeating: "c", count: 6),
            ])
        #expect(ids.count == 4 && ids[0] == ids[1] && ids[1] == ids[2] && ids[3] != ids[0])
        #expect(released == [false, false, true, false])
        try ring.cancel(2)
        try ring.cancel(1)
        _ = try completions(ring)
        _ = consume listener
    }

    @Test func aDisabledRingQueuesUntilEnabled() throws {
        let ring = try IOURing(entries: 4, flags: ioURingFlags.union(.disabled))
        #expect(!ring.enabled)
        let pipe = try FileDescriptor.pipe()
        defer { [pipe.read, pipe.write].forEach { $0.close() } }
        try ring.pollMultishot(pipe.read, events: [.input], userData: 9)
        #expect(ring.queued == 1)
        try ring.enable()
        _ = try [UInt8(1)].withUnsafeBytes { try pipe.write.write($0) }
        let seen = try completions(ring)
        #expect(seen.count == 1 && seen[0].userData == 9)
    }
}
