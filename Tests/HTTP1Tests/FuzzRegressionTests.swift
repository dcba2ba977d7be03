// Inputs the libFuzzer harnesses (Tests/Fuzz) found, each reduced to the smallest head that shows the bug.

import HTTP1
import Testing

@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// method = token = 1*tchar (RFC 9110 §9.1, §5.6.2): a request line starting with SP has no method. Found by
    /// the http1-head harness ("empty method"); the parser accepted it, and RequestRewriter copies the empty method upstream.
    @Test(
        "a request line starting with SP is rejected",
        arguments: [
            " / HTTP/1.1\r\nHost: a\r\n\r\n",
            " /a HTTP/1.0\r\n\r\n",
        ])
    func requestLineWithEmptyMethodIsRejected(_ head: String) {
        var parser = HeadParser(kind: .request)
        #expect(parser.parse(Array(head.utf8)) == .failure(.invalidMethod))
    }
}
