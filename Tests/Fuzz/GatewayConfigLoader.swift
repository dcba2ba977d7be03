// libFuzzer harness for GatewayConfig.loadConfig: it loads or reports errors at `file:line:` of lines that exist.
import GatewayConfig

let file = "fuzz.conf"
// One variable with a newline in its value: expanding it must not move the line numbers.
let environment = ["POD_NAMESPACE": "rtc", "EMPTY": "", "LINES": "a\nb", "PORT": "8080"]

/// The whole input is the text of a configuration file (invalid UTF-8 is replaced, as reading a file would).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.utf8.reduce(1) { $1 == 10 ? $0 + 1 : $0 }
    let result = loadConfig(text: text, file: file, environment: environment, cores: 3)
    switch result {
    case .success(let config):
        require(config.file == file, "config names file \(config.file)")
        require(config.workers >= 1, "\(config.workers) workers")
        for upstream in config.upstreams {
            require((1...lines).contains(upstream.line), "upstream line \(upstream.line) of \(lines)")
        }
        // Comments and layout do not change the configuration hash; a comment after the last line is layout.
        switch loadConfig(text: text + "\n# a comment\n\n", file: file, environment: environment, cores: 3) {
        case .success(let again):
            require(again.configHash == config.configHash, "a trailing comment changed the hash")
        case .failure(let errors):
            fatalError("invariant broken: a trailing comment broke a valid file: \(errors)")
        }
    case .failure(let errors):
        require(!errors.errors.isEmpty, "failure without an error")
        var previous = 0
        for error in errors.errors {
            require(error.file == file, "error names file \(error.file)")
            require((1...lines).contains(error.line), "error at line \(error.line) of a \(lines)-line file: \(error)")
            require(error.line >= previous, "errors not sorted by line")
            require(!error.message.isEmpty, "an empty message at line \(error.line)")
            let prefix = "\(file):\(error.line): "
            require(error.description.hasPrefix(prefix), "'\(error.description)' does not start with '\(prefix)'")
            previous = error.line
        }
        let printed = errors.description.split(separator: "\n", omittingEmptySubsequences: false)
        require(printed.count >= errors.errors.count, "fewer printed lines than errors")
        require(printed.first?.hasPrefix("\(file):\(errors.errors[0].line): ") == true, "printed form")
    }
    return 0
}

/// Stops the run with the message; libFuzzer reports the abort as a crash and saves the input.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant broken: \(message())") }
}
