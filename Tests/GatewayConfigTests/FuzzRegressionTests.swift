// Inputs found with the gateway-config fuzz harness (Tests/Fuzz), each reduced to a small text that shows the bug.
import GatewayConfig
import Testing

@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// Blocks nested a million deep (a 7 MB file) must give a result, not overflow the stack: the parser recurses once
    /// per `{` (Parser.parseBlock → parseDirective → parseBlock), so the depth of the text bounds the depth of the
    /// stack. Found by running the gateway-config harness binary on a file beyond its -max_len; it stopped with
    /// AddressSanitizer: stack-overflow at 100,000 levels. Run in a child process, so the overflow fails this test
    /// only.
    @Test("deeply nested blocks give a result, not a stack overflow")
    func deeplyNestedBlocksDoNotOverflowTheStack() async {
        await #expect(processExitsWith: .success) {
            let text = String(repeating: "route {", count: 1_000_000)
            _ = loadConfig(text: text, file: "nested.conf", environment: [:], cores: 1)
        }
    }
}
