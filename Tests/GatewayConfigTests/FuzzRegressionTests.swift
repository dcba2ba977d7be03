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

@Suite struct NestingLimitTests {
    @Test func blocksNestedTooDeepAreAFileLineError() {
        let text = "workers 1;\n" + String(repeating: "route {\n", count: 40)
        guard case .failure(let errors) = loadConfig(text: text, file: "deep.conf", environment: [:], cores: 1) else {
            Issue.record("a 40-deep file was accepted")
            return
        }
        #expect(errors.description.contains("deep.conf:18: blocks nested more than 16 deep"), "\(errors.description)")
    }
}
