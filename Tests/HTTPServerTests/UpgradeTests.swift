// Protocol switches: a 101 hands the connection, and the bytes behind the head, to the upgrade's handler.
import EventLoop
import HTTPServer
import Sys
import TestSupport
import Testing

/// After the switch: answers every byte with its uppercase and closes on "!".
final class ShoutingHandler: ConnectionHandler {
    func received(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        let out = bytes.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }
        let closing = out.contains(UInt8(ascii: "!"))
        out.withUnsafeBytes { connection.write($0) }
        if closing { connection.closeWhenFlushed() }
    }
    func closed(_ connection: Connection, error: Errno?) {}
}

@Suite struct UpgradeTests {
    static func router() -> Router {
        var router = Router()
        router.upgrade("/shout") { request in
            guard request.headers["upgrade"] == "shout" else {
                return .reject(.text("wrong protocol\n", status: 400))
            }
            return .accept(
                upgrade: "shout", headers: [.init(name: "X-Who", value: request.query["who"] ?? "")],
                adopt: { _ in ShoutingHandler() })
        }
        router.get("/plain") { _ in .text("plain\n") }
        return router
    }

    @Test func switchHandsTheConnectionAndTheBytesBehindTheHead() throws {
        let server = try TestServer(router: UpgradeTests.router())
        defer { server.stop() }
        let client = try RawClient(port: server.port)
        // The first bytes of the new protocol travel in the same write as the head.
        client.send("GET /shout?who=me HTTP/1.1\r\nHost: x\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\nhello")
        let head = try client.readResponse(headOnly: true)
        #expect(head.status == 101)
        #expect(head.header("upgrade") == "shout")
        #expect(head.header("connection") == "Upgrade")
        #expect(head.header("x-who") == "me")
        client.send("again!")
        let rest = client.readToEnd()
        #expect(String(decoding: rest.bytes, as: UTF8.self) == "HELLOAGAIN!")
        #expect(rest.closed)
        // The server no longer counts the switched connection as one of its own.
        #expect(waitUntil { server.server.connectionCount == 0 })
    }

    @Test func refusedSwitchAnswersAndCloses() throws {
        let server = try TestServer(router: UpgradeTests.router())
        defer { server.stop() }
        let client = try RawClient(port: server.port)
        client.send("GET /shout HTTP/1.1\r\nHost: x\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 400)
        #expect(response.header("connection") == "close")
        #expect(client.readToEnd().closed)
        let plain = try curl([server.url + "/plain"])
        #expect(plain.output == "plain\n")
    }
}
