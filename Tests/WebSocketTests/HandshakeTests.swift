// The opening handshake: RFC 6455 §1.3's accept key, RFC 4648 §10's base64 vectors, and a table of requests with
// every missing or wrong field and the status it is refused with.
import Testing
import WebSocket

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A request's handshake fields; `expected` is the accept value or the refusal's status.
struct RequestCase: Sendable, CustomTestStringConvertible {
    var name: String
    var method = "GET"
    var isHTTP11 = true
    var upgrade: String? = "websocket"
    var connection: String? = "Upgrade"
    var key: String? = "dGhlIHNhbXBsZSBub25jZQ=="
    var version: String? = "13"
    /// nil: accepted (with the RFC's sample accept value); else the status.
    var status: Int?

    var testDescription: String { name }
}

struct HandshakeTests {
    @Test func acceptKeyOfRFCExample() {
        #expect(
            text(Handshake.acceptKey(for: Array("dGhlIHNhbXBsZSBub25jZQ==".utf8))) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    static let base64Vectors: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ]

    @Test func base64OfRFC4648Vectors() {
        for (plain, encoded) in Self.base64Vectors {
            #expect(text(Handshake.base64(Array(plain.utf8))) == encoded)
            #expect(Handshake.base64Decode(Array(encoded.utf8)) == Array(plain.utf8))
        }
        let all = (0...255).map { UInt8($0) }
        #expect(Handshake.base64Decode(Handshake.base64(all)) == all)
    }

    @Test(arguments: ["Zg=", "Zg=a", "Z===", "====", "=Zg=", "Zm9v!A==", "Zm9 ", "Zg==Zg==", "Zm8=Zm8="])
    func base64DecodeRefuses(_ encoded: String) {
        #expect(Handshake.base64Decode(Array(encoded.utf8)) == nil)
    }

    static let requests: [RequestCase] = [
        RequestCase(name: "valid"),
        RequestCase(
            name: "tokens in other case and lists", upgrade: "h2c, WebSocket", connection: "keep-alive, UPGRADE"),
        RequestCase(
            name: "spaces around values", upgrade: " websocket ", key: " dGhlIHNhbXBsZSBub25jZQ== ", version: " 13"),
        RequestCase(name: "method POST", method: "POST", status: 400),
        RequestCase(name: "method get (methods are case-sensitive)", method: "get", status: 400),
        RequestCase(name: "HTTP/1.0", isHTTP11: false, status: 400),
        RequestCase(name: "no Upgrade", upgrade: nil, status: 400),
        RequestCase(name: "Upgrade: h2c", upgrade: "h2c", status: 400),
        RequestCase(name: "Upgrade: websockets", upgrade: "websockets", status: 400),
        RequestCase(name: "no Connection", connection: nil, status: 400),
        RequestCase(name: "Connection: keep-alive", connection: "keep-alive", status: 400),
        RequestCase(name: "Connection: upgrades", connection: "upgrades", status: 400),
        RequestCase(name: "no version", version: nil, status: 400),
        RequestCase(name: "version 8", version: "8", status: 426),
        RequestCase(name: "version 13 among others", version: "13, 8", status: 426),
        RequestCase(name: "empty version", version: "", status: 426),
        RequestCase(name: "no key", key: nil, status: 400),
        RequestCase(name: "empty key", key: "", status: 400),
        RequestCase(name: "key of 15 bytes", key: "AAAAAAAAAAAAAAAAAAAA", status: 400),
        RequestCase(name: "key of 17 bytes", key: "AAAAAAAAAAAAAAAAAAAAAAA=", status: 400),
        RequestCase(name: "key not base64", key: "dGhlIHNhbXBsZSBub25jZQ!!", status: 400),
        RequestCase(name: "key without padding", key: "dGhlIHNhbXBsZSBub25jZQ", status: 400),
    ]

    @Test(arguments: requests)
    func request(_ test: RequestCase) {
        let result = Handshake.validateRequest(
            method: test.method, isHTTP11: test.isHTTP11, upgrade: test.upgrade, connection: test.connection,
            key: test.key, version: test.version)
        switch result {
        case .success(let accept):
            #expect(test.status == nil)
            #expect(text(accept) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        case .failure(let error):
            #expect(error.status == test.status)
            #expect(!error.reason.isEmpty)
        }
    }

    @Test func refusalResponses() {
        let upgradeRequired = text(Handshake.errorResponse(HandshakeError(status: 426, reason: "version")))
        #expect(upgradeRequired.hasPrefix("HTTP/1.1 426 Upgrade Required\r\n"))
        #expect(upgradeRequired.contains("\r\nSec-WebSocket-Version: 13\r\n"))
        #expect(upgradeRequired.hasSuffix("\r\n\r\n"))
        let badRequest = text(Handshake.errorResponse(HandshakeError(status: 400, reason: "key")))
        #expect(badRequest == "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    @Test func acceptResponse() {
        let response = Handshake.acceptResponse(
            accept: Array("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".utf8), extraHeaders: [("X-Node", "a")])
        #expect(
            text(response)
                == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Node: a\r\n\r\n")
    }

    @Test func clientRequestFormat() {
        let request = Handshake.clientRequest(
            host: "server.example.com", path: "/chat?x=1", key: "dGhlIHNhbXBsZSBub25jZQ==",
            extraHeaders: [("Origin", "http://example.com"), ("Sec-WebSocket-Protocol", "chat")])
        #expect(
            text(request)
                == "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                + "Origin: http://example.com\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
        // What the client sends passes the server's own check.
        let accepted = Handshake.validateRequest(
            method: "GET", isHTTP11: true, upgrade: "websocket", connection: "Upgrade",
            key: "dGhlIHNhbXBsZSBub25jZQ==", version: "13")
        #expect(accepted == .success(Array("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".utf8)))
    }

    @Test func serverResponseCheck() {
        let key = "dGhlIHNhbXBsZSBub25jZQ=="
        let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        func check(_ status: Int, _ upgrade: String?, _ connection: String?, _ accept: String?) -> Int? {
            switch Handshake.validateResponse(
                status: status, upgrade: upgrade, connection: connection, accept: accept, key: key)
            {
            case .success: return nil
            case .failure(let error): return error.status
            }
        }
        #expect(check(101, "websocket", "Upgrade", accept) == nil)
        #expect(check(101, "WebSocket", "upgrade", " \(accept) ") == nil)
        #expect(check(200, "websocket", "Upgrade", accept) == 200)
        #expect(check(404, nil, nil, nil) == 404)
        #expect(check(101, nil, "Upgrade", accept) == 101)
        #expect(check(101, "websocket", nil, accept) == 101)
        #expect(check(101, "websocket", "Upgrade", nil) == 101)
        #expect(check(101, "websocket", "Upgrade", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo") == 101)
    }
}
