// Connect tokens: a published vector, expiry, tampering, and malformed strings.
import Ring
import Testing

@testable import Wire

struct AuthTokenTests {
    static let secret = Array("test-secret".utf8)
    /// HMAC-SHA256("test-secret", "alice.1767225600"), computed with Python's hmac module.
    static let published = "1767225600.3283bdc6fd96fc5e6ba28f27a2cd2dc6f19bae4b888deec7ad70da48f5d96eb2"

    @Test func makeMatchesThePublishedVector() {
        #expect(AuthToken.make(clientId: "alice", expiresAt: 1_767_225_600, secret: Self.secret) == Self.published)
    }

    @Test func validUntilAndIncludingTheExpirySecond() {
        for now: Int64 in [0, 1_767_225_599, 1_767_225_600] {
            #expect(AuthToken.verify(Self.published, clientId: "alice", now: now, secret: Self.secret) == .valid)
        }
        for now: Int64 in [1_767_225_601, Int64.max] {
            #expect(AuthToken.verify(Self.published, clientId: "alice", now: now, secret: Self.secret) == .expired)
        }
    }

    @Test func boundToClientAndSecret() {
        let now: Int64 = 1_700_000_000
        #expect(AuthToken.verify(Self.published, clientId: "bob", now: now, secret: Self.secret) == .badSignature)
        #expect(AuthToken.verify(Self.published, clientId: "Alice", now: now, secret: Self.secret) == .badSignature)
        #expect(AuthToken.verify(Self.published, clientId: "alice.", now: now, secret: Self.secret) == .badSignature)
        #expect(
            AuthToken.verify(Self.published, clientId: "alice", now: now, secret: Array("test-secreT".utf8))
                == .badSignature)
        // An expired token for someone else is a bad signature, not "expired".
        #expect(AuthToken.verify(Self.published, clientId: "bob", now: Int64.max, secret: Self.secret) == .badSignature)
    }

    /// Tokens altered after signing.
    static let tampered: [String] = [
        "1767225601.3283bdc6fd96fc5e6ba28f27a2cd2dc6f19bae4b888deec7ad70da48f5d96eb2",  // later expiry
        "1767225600.4283bdc6fd96fc5e6ba28f27a2cd2dc6f19bae4b888deec7ad70da48f5d96eb2",  // first digit
        "1767225600.3283bdc6fd96fc5e6ba28f27a2cd2dc6f19bae4b888deec7ad70da48f5d96eb3",  // last digit
        "9999999999.3283bdc6fd96fc5e6ba28f27a2cd2dc6f19bae4b888deec7ad70da48f5d96eb2",
        "1767225600." + String(repeating: "0", count: 64),
    ]

    @Test(arguments: tampered)
    func tamperedTokensHaveBadSignatures(token: String) {
        #expect(AuthToken.verify(token, clientId: "alice", now: 0, secret: Self.secret) == .badSignature)
    }

    static let hex64 = String(repeating: "a", count: 64)

    static let malformed: [String] = [
        "", "abc", "1.", ".ff", ".", "..", "1767225600", "1767225600.", ".\(hex64)", "x.\(hex64)",
        "1767225600.\(hex64).", "1767225600.\(hex64).1", "1.2.\(hex64)", "1767225600..\(hex64)",
        "-1.\(hex64)", "+1.\(hex64)", "01.\(hex64)", " 1.\(hex64)", "1 .\(hex64)", "1.\(hex64) ",
        "1e3.\(hex64)", "99999999999999999999.\(hex64)", "9223372036854775808.\(hex64)",
        "1.\(String(repeating: "a", count: 63))", "1.\(String(repeating: "a", count: 65))",
        "1.\(String(repeating: "A", count: 64))", "1.\(String(repeating: "g", count: 64))",
        "1.\(String(repeating: "é", count: 32))", "١.\(hex64)",
        String(Self.published.uppercased()),
    ]

    @Test(arguments: malformed)
    func malformedTokens(token: String) {
        #expect(AuthToken.verify(token, clientId: "alice", now: 0, secret: Self.secret) == .malformed)
    }

    @Test func boundaryExpiries() {
        for expiresAt: Int64 in [0, 1, Int64.max] {
            let token = AuthToken.make(clientId: "c", expiresAt: expiresAt, secret: [])
            #expect(AuthToken.verify(token, clientId: "c", now: expiresAt, secret: []) == .valid)
            if expiresAt < Int64.max {
                #expect(AuthToken.verify(token, clientId: "c", now: expiresAt + 1, secret: []) == .expired)
            }
        }
    }
}
