// Each timeout of a server connection comes from the loop's timer heap, and the server's own errors are the shared
// canned set (the gateway's JSON bodies).
import EventLoop
import Foundation
import HTTP1
import HTTPServer
import Synchronization
import Sys
import TestSupport
import Testing

@Suite(.serialized) struct TimeoutAndErrorTests {
    static let configuration = ServerConfiguration(
        headerTimeout: .milliseconds(300), idleTimeout: .milliseconds(500), lingerTimeout: .milliseconds(200))

    @Test func halfAHeadIsAnswered408AndClosedAfterTheHeaderTimeout() throws {
        let server = try TestServer(router: testRouter(), configuration: Self.configuration)
        defer { server.stop() }
        let clock = ContinuousClock()
        let client = try RawClient(port: server.port)
        let start = clock.now
        client.send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Half: ")
        let response = try client.readResponse()
        let elapsed = clock.now - start
        #expect(response.status == 408)
        #expect(response.header("Connection") == "close")
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.text == "{\"error\":\"request_timeout\"}\n")
        #expect(elapsed >= .milliseconds(290) && elapsed < .milliseconds(900), "\(elapsed)")
        #expect(client.readToEnd().closed)
        #expect(waitUntil(timeout: .seconds(3)) { server.server.connectionCount == 0 })
    }

    @Test func idleKeepAliveConnectionIsClosedAfterTheIdleTimeout() throws {
        let server = try TestServer(router: testRouter(), configuration: Self.configuration)
        defer { server.stop() }
        let clock = ContinuousClock()
        let client = try RawClient(port: server.port)
        // Requests keep the connection busy past the idle timeout: each one moves the deadline later.
        for _ in 0..<4 {
            client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            usleep(200_000)
        }
        let idleStart = clock.now
        let rest = client.readToEnd()
        let idle = clock.now - idleStart
        #expect(rest.closed && rest.bytes.isEmpty)
        // 200 ms of the 500 ms already passed in the last sleep.
        #expect(idle >= .milliseconds(250) && idle < .milliseconds(900), "\(idle)")
        #expect(waitUntil(timeout: .seconds(3)) { server.server.connectionCount == 0 })
    }

    @Test func closedConnectionsLeaveNoTimerBehind() throws {
        let server = try TestServer(router: testRouter(), configuration: ServerConfiguration(idleTimeout: .seconds(60)))
        defer { server.stop() }
        for _ in 0..<20 {
            let client = try RawClient(port: server.port)
            client.send("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            #expect(client.readToEnd().closed)
        }
        #expect(waitUntil(timeout: .seconds(3)) { server.server.connectionCount == 0 })
        // A closed connection disarms its deadline (the heap would otherwise hold it for the 60 s idle time).
        let pending = Mutex(-1)
        server.loop.execute { pending.withLock { $0 = server.loop.timerCount } }
        #expect(waitUntil(timeout: .seconds(3)) { pending.withLock { $0 } == 0 })
    }

    @Test func serverErrorsAreTheSharedCannedAnswers() throws {
        let server = try TestServer(router: testRouter(), configuration: Self.configuration)
        defer { server.stop() }
        let cases: [(request: String, error: CannedError)] = [
            ("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", .notFound),
            ("PUT /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", .methodNotAllowed),
            ("GET / HTTP/1.1\r\nHost: t\r\nX-Bad\r\n\r\n", .badRequest),
            ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", .httpVersionNotSupported),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n", .contentTooLarge),
        ]
        for (request, error) in cases {
            let client = try RawClient(port: server.port)
            client.send(request)
            let response = try client.readResponse()
            #expect(response.status == error.status, "\(request.debugDescription)")
            #expect(response.header("Content-Type") == "application/json")
            #expect(response.body == Array(error.bodyBytes), "\(response.text)")
            // The same bytes as the gateway's answer, but for the lines that belong to the connection.
            var gatewayAnswer: [UInt8] = []
            error.write(keepAlive: true, into: &gatewayAnswer)
            let gatewayHead = String(decoding: gatewayAnswer, as: UTF8.self)
            #expect(response.head.hasPrefix(String(decoding: error.head, as: UTF8.self)))
            #expect(gatewayHead.hasPrefix(String(decoding: error.head, as: UTF8.self)))
        }
    }
}
