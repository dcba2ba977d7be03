// The choice of readiness backend: the config words, `auto`'s fallback and its log line, and loops on each backend.
import Sys
import TestSupport
import Testing

@testable import EventLoop

@Suite struct EventsBackendTests {
    @Test func words() {
        #expect(EventsBackend(word: "auto") == .auto)
        #expect(EventsBackend(word: "epoll") == .epoll)
        #expect(EventsBackend(word: "io_uring") == .ioURing)
        #expect(EventsBackend(word: "kqueue") == nil)
        #expect(EventsBackend(word: "") == nil)
    }

    @Test func autoFallsBackToEpollWithItsReason() {
        let blocked = EventsBackend.auto.resolved(ioURingUnavailability: Errno(1))
        #expect(blocked.kind == .epoll && blocked.fallback == Errno(1))
        #expect(
            EventsBackend.auto.logLine(ioURingUnavailability: Errno(1)).hasPrefix(
                "events: epoll (io_uring unavailable: EPERM"))
        let allowed = EventsBackend.auto.resolved(ioURingUnavailability: nil)
        #expect(allowed.kind == .ioURing && allowed.fallback == nil)
        #expect(EventsBackend.auto.logLine(ioURingUnavailability: nil) == "events: io_uring")
        // An explicit choice is never replaced: io_uring that cannot run fails when the loop is made.
        #expect(EventsBackend.ioURing.resolved(ioURingUnavailability: Errno(1)).kind == .ioURing)
        #expect(EventsBackend.epoll.logLine(ioURingUnavailability: nil) == "events: epoll")
    }

    /// The same echo over a loop of each backend, whatever `RTC_EVENTS` says for the rest of the suite.
    @Test func echoOnEpoll() throws { try echo(on: .epoll) }

    @Test(.enabled(if: EventsBackend.ioURingUnavailability == nil, "io_uring is not available here"))
    func echoOnIOURing() throws { try echo(on: .ioURing) }

    func echo(on backend: EventsBackend) throws {
        let loop = try EventLoop(backend: backend)
        #expect(loop.backend == (backend == .epoll ? .epoll : .ioURing))
        let server = EchoServer()
        let port = try Listener(loop: loop, address: .loopback(port: 0), handler: server).address.port
        let thread = try Thread { try? loop.run() }
        defer {
            loop.stop()
            thread.join()
        }
        let client = try FileDescriptor.socket(.tcp, for: .loopback(port: port))
        defer { client.close() }
        _ = try client.connect(to: .loopback(port: port))
        let message: [UInt8] = Array("over \(backend)".utf8)
        var sent = false
        var echoed: [UInt8] = []
        #expect(
            waitUntil(timeout: .seconds(10)) {
                if !sent, case .count(message.count)? = try? message.withUnsafeBytes({ try client.write($0) }) {
                    sent = true
                }
                var buffer = [UInt8](repeating: 0, count: 64)
                if case .count(let count)? = try? buffer.withUnsafeMutableBytes({ try client.read(into: $0) }) {
                    echoed += buffer[0..<count]
                }
                return echoed.count >= message.count
            })
        #expect(echoed == message)
        #expect(server.accepted.load(ordering: .relaxed) == 1)
    }
}
