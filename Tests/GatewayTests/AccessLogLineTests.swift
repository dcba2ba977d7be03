// Access log lines as bytes: the timestamp, JSON escaping of what clients control, and addresses.
import Sys
import Testing

@testable import Gateway

@Suite struct AccessLogLineTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(951_782_400_123), "2000-02-29T00:00:00.123Z"),
        (Int64(1_796_083_199_999), "2026-11-30T23:59:59.999Z"),
        (Int64(4_107_542_400_000), "2100-03-01T00:00:00.000Z"),
    ])
    func timestamps(milliseconds: Int64, expected: String) {
        var out: [UInt8] = []
        AccessLogLine.appendTime(into: &out, milliseconds: milliseconds)
        #expect(String(decoding: out, as: UTF8.self) == "{\"time\":\"\(expected)\"")
    }

    /// A request target or id may hold `"`, `\`, control or non-UTF-8 bytes: the line stays one valid JSON string.
    @Test func escaping() {
        let raw: [UInt8] = Array("/a\"b\\c".utf8) + [0x0A, 0x01, 0xFF, 0x7F] + Array("ok".utf8)
        var out: [UInt8] = []
        raw.withUnsafeBytes { AccessLogLine.appendEscaped($0, into: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "/a\\\"b\\\\c\\u000a\\u0001\\u00ff\\u007fok")
        var plain: [UInt8] = []
        Array("/ws/connect?x=1".utf8).withUnsafeBytes { AccessLogLine.appendEscaped($0, into: &plain) }
        #expect(String(decoding: plain, as: UTF8.self) == "/ws/connect?x=1")
    }

    @Test func addressesAndDurations() {
        var out: [UInt8] = []
        AccessLogLine.appendAddress(SocketAddress(host: "10.1.2.3", port: 8080)!, into: &out)
        out.append(0x20)
        AccessLogLine.appendSeconds(1_234_567_890, into: &out)
        out.append(0x20)
        AccessLogLine.appendSeconds(999, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "10.1.2.3:8080 1.234567 0.000000")
    }
}
