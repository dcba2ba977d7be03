// Client ids, message ids, node ids, and the key and topic names.
import Ring
import Testing

@testable import Wire

struct IdentifierTests {
    static let validClientIDs: [String] = [
        "a", "Z", "0", "alice", "user-42", "a.b_c:d@e-f", "alice@example.com", "x:1",
        String(repeating: "k", count: 128),
        "-", ".", "...", "ABCxyz0189",
    ]

    @Test(arguments: validClientIDs)
    func acceptsClientIDs(id: String) {
        #expect(ClientID.isValid(id))
    }

    static let invalidClientIDs: [String] = [
        "", String(repeating: "k", count: 129), " ", "a b", " a", "a ", "a/b", "/", "a\\b", "é", "ünï", "😀", "a\u{0}",
        "a\n", "a\t", "a+b", "a#b", "a?b", "a&b", "a=b", "a%20", "a\"b", "a'b", "a,b", "a;b", "(a)", "a*", "a~b",
        "\u{FF21}",  // fullwidth A
    ]

    @Test(arguments: invalidClientIDs)
    func rejectsClientIDs(id: String) {
        #expect(!ClientID.isValid(id))
    }

    @Test func messageIDs() {
        #expect(MessageID.isValid("m-1"))
        #expect(MessageID.isValid("!~{}[]\"'/\\"))
        #expect(MessageID.isValid(String(repeating: "m", count: 128)))
        for bad in ["", String(repeating: "m", count: 129), "a b", "a\tb", "é", "m\u{7F}", "m\n"] {
            #expect(!MessageID.isValid(bad), "\(bad)")
        }
    }

    @Test func nodeIDs() {
        #expect(NodeID.isValid("rtc-socket-7d9c8b6f5-x2k4p"))
        #expect(NodeID.isValid(String(repeating: "n", count: 253)))
        for bad in ["", String(repeating: "n", count: 254), "a b", "a/b", "é"] { #expect(!NodeID.isValid(bad)) }
    }

    @Test func keysAndTopics() {
        #expect(Keys.inbox("alice") == "rtc:inbox:alice")
        #expect(Keys.offsetCounter("alice") == "rtc:off:alice")
        #expect(Keys.dedup("alice", "m-1") == "rtc:dedup:alice:m-1")
        #expect(Keys.dedup("a", "b:c") == "rtc:dedup:a:b%3Ac")
        #expect(Keys.dedup("a:b", "c") == "rtc:dedup:a:b:c")
        #expect(Keys.dedup("a", "100%:") == "rtc:dedup:a:100%25%3A")
        #expect(Keys.dedup("a", "%3A") != Keys.dedup("a", ":"))
        #expect(Keys.heartbeat("socket-0") == "rtc:hb:socket-0")
        #expect(Keys.heartbeatPattern == "rtc:hb:*")
        #expect(Keys.ring == "rtc:ring")
        #expect(Keys.ringVersion == "rtc:ring:version")
        #expect(Keys.deliveryTopic("socket-0") == "rtc.deliver.socket-0")
        #expect(Keys.ringTopic == "rtc.control.ring")
        #expect(Keys.streamID(offset: 42) == "42-0")
    }
}
