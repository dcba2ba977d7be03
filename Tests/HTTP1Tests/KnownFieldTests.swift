// Field names with a case: each recognised in any case, near misses not, and the first-letter/length filter passes all.

import Testing

@testable import HTTP1

@Suite("Known field names")
struct KnownFieldTests {
    static let names: [(String, KnownField)] = [
        ("host", .host), ("connection", .connection), ("upgrade", .upgrade), ("content-length", .contentLength),
        ("transfer-encoding", .transferEncoding), ("te", .te), ("keep-alive", .keepAlive),
        ("proxy-connection", .proxyConnection), ("proxy-authorization", .proxyAuthorization),
        ("http2-settings", .http2Settings), ("x-forwarded-for", .xForwardedFor),
        ("x-forwarded-proto", .xForwardedProto), ("x-real-ip", .xRealIP), ("x-request-id", .xRequestID),
    ]

    static func known(_ name: String) -> KnownField {
        let bytes = Array(name.utf8)
        return bytes.withUnsafeBufferPointer { KnownField($0, 0, bytes.count) }
    }

    @Test("the table names every case but .other")
    func tableIsComplete() {
        var raw: UInt8 = 1
        while let field = KnownField(rawValue: raw) {
            #expect(Self.names.contains { $0.1 == field }, "\(field) has no name in the table")
            raw += 1
        }
        #expect(Int(raw) - 1 == Self.names.count)
    }

    @Test("each name is recognised in lowercase, uppercase and mixed case")
    func anyCase() {
        for (name, field) in Self.names {
            #expect(Self.known(name) == field, "\(name)")
            #expect(Self.known(name.uppercased()) == field, "\(name)")
            let mixed = String(
                name.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element })
            #expect(Self.known(mixed) == field, "\(mixed)")
            #expect(KnownField.mayBeKnown(first: name.utf8.first!, length: name.utf8.count), "\(name)")
        }
    }

    @Test("near misses are .other: one byte changed, one more or one fewer")
    func nearMisses() {
        for (name, _) in Self.names {
            let bytes = Array(name.utf8)
            for index in bytes.indices {
                var changed = bytes
                changed[index] = bytes[index] == 0x7A ? 0x79 : bytes[index] &+ 1
                #expect(Self.known(String(decoding: changed, as: UTF8.self)) == .other, "\(changed)")
            }
            #expect(Self.known(name + "s") == .other)
            #expect(Self.known(String(name.dropLast())) == .other || name.count <= 2)
        }
        for other in ["accept-encoding", "server", "date", "content-type", "cookie", "x", "hosts", "a"] {
            #expect(Self.known(other) == .other, "\(other)")
        }
    }
}
