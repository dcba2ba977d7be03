// Configuration errors, each pointing at a file and line.

/// One problem in a configuration file, printed `file:line: message` like a compiler or `nginx -t`.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public let file: String
    /// 1-based line of the offending token.
    public let line: Int
    public let message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { "\(file):\(line): \(message)" }
}

/// Every problem found in one file, in line order; the file is rejected as a whole.
public struct ConfigErrors: Error, Equatable, Sendable, CustomStringConvertible {
    public let errors: [ConfigError]

    public init(_ errors: [ConfigError]) { self.errors = errors }

    /// One `file:line: message` per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
