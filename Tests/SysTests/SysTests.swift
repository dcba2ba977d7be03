// Sys unit tests: address parsing and formatting, errno names, limits, pipe2 + splice, process figures.
import Sys
import Testing

@Suite struct SocketAddressTests {
    @Test(arguments: [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("0.0.0.0:0", "0.0.0.0:0"),
        ("255.255.255.255:65535", "255.255.255.255:65535"),
        ("[::1]:8080", "[::1]:8080"),
        ("[::]:53", "[::]:53"),
        ("[2001:DB8:0:0:0:0:0:1]:443", "[2001:db8::1]:443"),
        ("[2001:db8:0:0:1:0:0:1]:1", "[2001:db8::1:0:0:1]:1"),
        ("[fe80::1:2]:9", "[fe80::1:2]:9"),
        ("[::ffff:10.0.0.1]:80", "[::ffff:a00:1]:80"),
        ("[1:2:3:4:5:6:7:8]:80", "[1:2:3:4:5:6:7:8]:80"),
    ])
    func roundTrip(input: String, formatted: String) {
        #expect(SocketAddress(input)?.description == formatted)
    }

    @Test(arguments: [
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "256.0.0.1:80", "1.2.3:80", "1.2.3.4.5:80", "01.2.3.4:80",
        "[::1]", "[::1]80", "::1:80", "[1:2:3:4:5:6:7:8:9]:80", "[1::2::3]:80", "[12345::]:80", "[:1::]:1",
        "a.b.c.d:1", "", ":80", "[1:2:3:4:5:6:7:]:1",
    ])
    func rejects(input: String) {
        #expect(SocketAddress(input) == nil)
    }

    @Test func valuesAndPorts() {
        #expect(SocketAddress("10.1.2.3:4")! == .v4(address: 0x0a01_0203, port: 4))
        #expect(SocketAddress("[::1]:5")! == .v6(high: 0, low: 1, port: 5, scope: 0))
        #expect(SocketAddress(host: "::1", port: 7)!.description == "[::1]:7")
        #expect(SocketAddress.loopback(port: 9).with(port: 10).description == "127.0.0.1:10")
    }

    @Test func sockaddrRoundTripThroughBind() throws {
        let socket = try Socket.listener(at: .loopback(port: 0))
        let bound = try socket.fd.localAddress()
        guard case .v4(let address, let port) = bound else {
            Issue.record("not IPv4: \(bound)")
            return
        }
        #expect(address == 0x7f00_0001)
        #expect(port != 0)
    }
}

@Suite struct SystemCallTests {
    @Test func errnoNames() {
        #expect(Errno.connectionRefused.name == "ECONNREFUSED")
        #expect(Errno.tooManyOpenFiles.name == "EMFILE")
        #expect(Errno.wouldBlock.name == "EAGAIN")
        #expect(Errno(9999).name == "errno 9999")
        #expect(Errno.connectionRefused.description == "ECONNREFUSED (Connection refused)")
    }

    @Test func openFileLimitRaisesSoftToHard() throws {
        let (soft, hard) = try raiseOpenFileLimit()
        #expect(soft == hard)
        #expect(try openFileLimit().soft == hard)
    }

    @Test func pipeAndSpliceMoveBytes() throws {
        let first = try FileDescriptor.pipe()
        let second = try FileDescriptor.pipe()
        defer { [first.read, first.write, second.read, second.write].forEach { $0.close() } }
        let message: [UInt8] = Array("spliced bytes".utf8)
        #expect(try message.withUnsafeBytes { try first.write.write($0) } == .count(message.count))
        #expect(try first.read.splice(to: second.write, count: 4096) == .count(message.count))
        var buffer = [UInt8](repeating: 0, count: 64)
        let result = try buffer.withUnsafeMutableBytes { try second.read.read(into: $0) }
        #expect(result == .count(message.count))
        #expect(Array(buffer[0..<message.count]) == message)
        // Empty and nonblocking now.
        #expect(try buffer.withUnsafeMutableBytes { try second.read.read(into: $0) } == .wouldBlock)
        #expect(try first.read.splice(to: second.write, count: 4096) == .wouldBlock)
        first.write.close()
        #expect(try buffer.withUnsafeMutableBytes { try first.read.read(into: $0) } == .endOfFile)
    }

    @Test func connectToClosedPortIsRefused() throws {
        let probe = try Socket.listener(at: .loopback(port: 0))
        let address = try probe.fd.localAddress()
        _ = consume probe
        let fd = try FileDescriptor.socket(.tcp, for: address)
        defer { fd.close() }
        var outcome: Errno?
        do {
            if try fd.connect(to: address) == .inProgress {
                for _ in 0..<100 where outcome == nil {
                    outcome = try fd.socketError()
                }
            }
        } catch {
            outcome = error
        }
        #expect(outcome == .connectionRefused)
    }

    @Test func eventFDCountsSignals() throws {
        let fd = try FileDescriptor.eventFD()
        defer { fd.close() }
        #expect(fd.drainEvent() == 0)
        fd.signalEvent(2)
        fd.signalEvent(3)
        #expect(fd.drainEvent() == 5)
    }

    @Test func processFigures() throws {
        let before = ProcessFigures.current()
        let pipe = try FileDescriptor.pipe()
        let after = ProcessFigures.current()
        pipe.read.close()
        pipe.write.close()
        #expect(after.openFileDescriptors >= before.openFileDescriptors + 2 - 64)
        #expect(before.residentBytes > 1_000_000)
        #expect(before.startTimeSeconds > 1_600_000_000 && before.startTimeSeconds <= wallClockSeconds())
        #expect(monotonicNanoseconds() > 0)
    }
}
