// The gateway's own answers parse back with the HTTP/1 parser to the right status, framing and body.
import Forwarding
import HTTP1
import Testing

@Suite struct ErrorResponseTests {
    @Test(arguments: ErrorResponse.allCases)
    func parsesBack(_ response: ErrorResponse) throws {
        for keepAlive in [true, false] {
            var out: [UInt8] = []
            response.write(keepAlive: keepAlive, requestID: RequestID(Array("rid-5".utf8)), into: &out)
            var parser = HeadParser(kind: .response)
            guard case .complete(let consumed) = parser.parse(out) else {
                Issue.record("\(response.status) does not parse")
                return
            }
            #expect(parser.status == response.status)
            let body = Array(out[consumed...])
            #expect(parser.bodyFraming == .contentLength(UInt64(body.count)))
            #expect(body.first == UInt8(ascii: "{") && body.last == UInt8(ascii: "\n"))
            #expect(parser.keepAlive == (keepAlive && !response.closesConnection))
            #expect(parser.value(ofField: "x-request-id").map(Array.init) == Array("rid-5".utf8))
            #expect(parser.value(ofField: "content-type").map(Array.init) == Array("application/json".utf8))
            #expect((parser.value(ofField: "upgrade") != nil) == (response == .upgradeRequired))
        }
    }

    @Test func exactBytes() {
        var out: [UInt8] = []
        ErrorResponse.notFound.write(keepAlive: true, requestID: nil, into: &out)
        #expect(
            String(decoding: out, as: UTF8.self)
                == "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 22\r\n"
                + "Connection: keep-alive\r\n\r\n{\"error\":\"not_found\"}\n")
        out.removeAll(keepingCapacity: true)
        ErrorResponse.upgradeRequired.write(
            keepAlive: false, requestID: RequestID(Array("r".utf8)), includeBody: false, into: &out)
        #expect(
            String(decoding: out, as: UTF8.self)
                == "HTTP/1.1 426 Upgrade Required\r\nContent-Type: application/json\r\nContent-Length: 29\r\n"
                + "Upgrade: websocket\r\nConnection: Upgrade, close\r\nX-Request-ID: r\r\n\r\n")
        out.removeAll(keepingCapacity: true)
        // A parse error closes even when the caller asked for keep-alive (RFC 9112 §9.6).
        ErrorResponse.badRequest.write(keepAlive: true, requestID: nil, into: &out)
        #expect(String(decoding: out, as: UTF8.self).contains("\r\nConnection: close\r\n"))
    }

    @Test(arguments: [
        (HeadError.requestLineTooLong, ErrorResponse.uriTooLong), (.tooManyHeaders, .requestHeaderFieldsTooLarge),
        (.headerBlockTooLarge, .requestHeaderFieldsTooLarge), (.unsupportedVersion, .httpVersionNotSupported),
        (.unsupportedTransferCoding, .notImplemented), (.obsFold, .badRequest), (.missingHost, .badRequest),
    ])
    func fromHeadError(_ error: HeadError, _ expected: ErrorResponse) {
        #expect(ErrorResponse(error) == expected)
    }

    @Test func routeResponse() {
        var out: [UInt8] = []
        ErrorResponse.writeRouteResponse(
            status: 200, body: Array("ok\n".utf8), keepAlive: true, requestID: nil, into: &out)
        #expect(
            String(decoding: out, as: UTF8.self)
                == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
                + "Connection: keep-alive\r\n\r\nok\n")
        out.removeAll(keepingCapacity: true)
        ErrorResponse.writeRouteResponse(
            status: 404, body: [], keepAlive: false, requestID: RequestID(Array("z".utf8)), into: &out)
        #expect(
            String(decoding: out, as: UTF8.self)
                == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\nX-Request-ID: z\r\n\r\n")
    }
}
