// End-to-end: the `events` directive picks the loops' backend, says so at start, and proxies on it.
import Foundation
import TestSupport
import Testing

@testable import EventLoop

extension EndToEnd {
    @Suite("events backend")
    struct EventsTests {
        /// `events epoll;` and `events io_uring;` each run the gateway on that backend whatever `RTC_EVENTS` says
        /// (the test process may run the suite on the other one): the start-up line names it, and a proxied request
        /// and a WebSocket tunnel work.
        @Test func epoll() throws { try proxies(on: "epoll") }

        @Test(.enabled(if: EventsBackend.ioURingUnavailability == nil, "io_uring is not available here"))
        func ioURing() throws { try proxies(on: "io_uring") }

        func proxies(on word: String) throws {
            var settings = StackSettings()
            settings.extraMain = "events \(word);"
            let stack = try Stack(settings)
            defer { stack.stop() }
            #expect(stack.gatewayOutput.contains("rtc-gateway: events: \(word)\n"), "\(stack.gatewayOutput)")
            #expect(try stack.get("/ws/connect?clientId=u1").status == 200)
            let tunnel = try stack.wsclient(["whoami", stack.wsURL()])
            #expect(tunnel["echo"] as? Bool == true, "\(tunnel)")
        }
    }
}
