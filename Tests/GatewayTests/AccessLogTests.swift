// End-to-end: `access_log PATH` writes one JSON line per request and per closed tunnel, and reopens on SIGUSR1.
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension EndToEnd {
    @Suite("access log")
    struct AccessLogTests {
        /// The JSON objects of the log file's complete lines.
        static func entries(_ path: String) -> [[String: Any]] {
            readText(path).split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        /// curl traffic (a proxied 200, a local 404, a POST) and one WebSocket tunnel give one line each with the
        /// documented fields (the upgrade's line is the tunnel's, written when it closes); after the file is moved away and SIGUSR1 sent, new lines go to a new file at the path.
        @Test func linesPerRequestAndTunnelAndReopenOnSIGUSR1() throws {
            let directory = try makeTemporaryDirectory("access-log")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = directory + "/access.log"
            var settings = StackSettings()
            settings.extraMain = "access_log \(path);"
            let stack = try Stack(settings)
            defer { stack.stop() }

            #expect(try stack.get("/ws/connect?clientId=u1").status == 200)
            #expect(try stack.get("/nope").status == 404)
            let posted = try stack.curl(["--data-binary", "hello"], url: stack.url("/ws/connect?post=1"))
            #expect(posted.status == 200)
            let tunnel = try stack.wsclient(["whoami", stack.wsURL()])
            #expect(tunnel["echo"] as? Bool == true)
            #expect(waitUntil(timeout: .seconds(10)) { Self.entries(path).count >= 4 }, "\(readText(path))")
            let lines = Self.entries(path)
            #expect(lines.count == 4, "\(readText(path))")

            let proxied = lines.first { ($0["path"] as? String) == "/ws/connect?clientId=u1" }
            #expect(proxied?["status"] as? Int == 200)
            #expect(proxied?["route"] as? String == RouteLabel.balancer)
            #expect(proxied?["upstream"] as? String == "\(stack.upstreamHost):\(stack.upstreamPort)")
            #expect((proxied?["client"] as? String)?.hasPrefix("127.") == true)
            #expect((proxied?["bytes_out"] as? Int ?? 0) > 100)
            #expect((proxied?["bytes_in"] as? Int ?? 0) > 0)
            #expect(proxied?["duration"] is Double)
            #expect((proxied?["time"] as? String)?.hasSuffix("Z") == true)

            let missing = lines.first { ($0["path"] as? String) == "/nope" }
            #expect(missing?["status"] as? Int == 404)
            #expect(missing?["upstream"] as? String == "-")

            let post = lines.first { ($0["path"] as? String) == "/ws/connect?post=1" }
            #expect(post?["method"] as? String == "POST")
            #expect((post?["bytes_in"] as? Int ?? 0) >= 5)

            let closedTunnel = lines.first { ($0["type"] as? String) == "tunnel" }
            #expect(closedTunnel?["status"] as? Int == 101)
            #expect(closedTunnel?["route"] as? String == RouteLabel.pod)
            #expect(closedTunnel?["upstream"] as? String == "\(stack.echoHost):\(stack.echoPort)")
            // After the Close handshake the server closes the TCP connection first (RFC 6455 §7.1.1).
            #expect(closedTunnel?["initiator"] as? String == "upstream")
            #expect(closedTunnel?["close_reason"] != nil)
            #expect((closedTunnel?["bytes_in"] as? Int ?? 0) > 0 && (closedTunnel?["bytes_out"] as? Int ?? 0) > 0)

            // Rotation: move the file away, SIGUSR1, and the next line goes to a new file at the configured path.
            let rotated = directory + "/access.log.1"
            try FileManager.default.moveItem(atPath: path, toPath: rotated)
            stack.signalGateway(SIGUSR1)
            #expect(waitUntil(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: path) })
            #expect(try stack.get("/ws/connect?after=rotation").status == 200)
            #expect(
                waitUntil(timeout: .seconds(10)) {
                    Self.entries(path).contains { ($0["path"] as? String) == "/ws/connect?after=rotation" }
                })
            #expect(Self.entries(rotated).count == 4)
        }
    }
}
