// The nginx-like surface syntax: tokens with `${VAR}` expanded, then a tree of `name args;` / `name args { }`.

struct Token: Sendable {
    var text: String
    var line: Int
    var quoted: Bool
}

/// A directive as written: its name, its arguments, and its block when it has one.
struct Directive: Sendable {
    var name: Token
    var arguments: [Token]
    var block: [Directive]?
    var line: Int { name.line }
}

private enum Lexeme {
    case word(Token)
    case semicolon(Int)
    case open(Int)
    case close(Int)
    case end(Int)
}

/// Splits text into lexemes, expanding `${VAR}` inside words and strings; errors stop lexing at the first one
/// (later positions could not be trusted).
struct Lexer {
    private let bytes: [UInt8]
    private let environment: [String: String]
    private var position = 0
    private var line = 1
    /// FNV-1a 64 of the expanded token stream: comments and layout do not change it, a value does.
    private(set) var hash: UInt64 = 0xcbf2_9ce4_8422_2325

    init(text: String, environment: [String: String]) {
        bytes = Array(text.utf8)
        self.environment = environment
    }

    private mutating func mix<S: Sequence<UInt8>>(_ values: S) {
        for byte in values { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        hash = (hash ^ 0) &* 0x0000_0100_0000_01b3
    }

    fileprivate mutating func next() throws(LocatedError) -> Lexeme {
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\n") {
                line += 1
                position += 1
            } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
                position += 1
            } else if byte == UInt8(ascii: "#") {
                while position < bytes.count && bytes[position] != UInt8(ascii: "\n") { position += 1 }
            } else {
                break
            }
        }
        guard position < bytes.count else { return .end(line) }
        let byte = bytes[position]
        switch byte {
        case UInt8(ascii: ";"):
            position += 1
            mix([byte])
            return .semicolon(line)
        case UInt8(ascii: "{"):
            position += 1
            mix([byte])
            return .open(line)
        case UInt8(ascii: "}"):
            position += 1
            mix([byte])
            return .close(line)
        case UInt8(ascii: "\""):
            return .word(try quoted())
        default:
            return .word(try word())
        }
    }

    private mutating func word() throws(LocatedError) -> Token {
        let startLine = line
        var raw: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
                || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: ";") || byte == UInt8(ascii: "{")
                || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "\"")
            {
                break
            }
            // `${VAR}` belongs to the word even though it contains braces.
            if byte == UInt8(ascii: "$") && position + 1 < bytes.count && bytes[position + 1] == UInt8(ascii: "{") {
                while position < bytes.count && bytes[position] != UInt8(ascii: "}")
                    && bytes[position] != UInt8(ascii: "\n")
                {
                    raw.append(bytes[position])
                    position += 1
                }
                if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
                    raw.append(bytes[position])
                    position += 1
                }
                continue
            }
            raw.append(byte)
            position += 1
        }
        let text = try expand(raw, line: startLine)
        mix(text.utf8)
        return Token(text: text, line: startLine, quoted: false)
    }

    private mutating func quoted() throws(LocatedError) -> Token {
        let startLine = line
        position += 1
        var raw: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                let text = try expand(raw, line: startLine)
                mix(text.utf8)
                return Token(text: text, line: startLine, quoted: true)
            }
            if byte == UInt8(ascii: "\\") && position + 1 < bytes.count
                && (bytes[position + 1] == UInt8(ascii: "\"") || bytes[position + 1] == UInt8(ascii: "\\"))
            {
                raw.append(bytes[position + 1])
                position += 2
                continue
            }
            // Other backslashes stay as written, so regexes keep `\d`, `\.` and the like.
            if byte == UInt8(ascii: "\n") { line += 1 }
            raw.append(byte)
            position += 1
        }
        throw LocatedError(line: startLine, message: "unterminated string: the '\"' opened here is never closed")
    }

    /// Expands `${VAR}`; `$$` stays `$$` (a template's literal `$`) and `$name` stays (a capture reference).
    private func expand(_ raw: [UInt8], line: Int) throws(LocatedError) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(raw.count)
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            guard byte == UInt8(ascii: "$") && index + 1 < raw.count else {
                output.append(byte)
                index += 1
                continue
            }
            let next = raw[index + 1]
            if next == UInt8(ascii: "$") {
                output.append(contentsOf: [byte, next])
                index += 2
                continue
            }
            guard next == UInt8(ascii: "{") else {
                output.append(byte)
                index += 1
                continue
            }
            guard let close = raw[(index + 2)...].firstIndex(of: UInt8(ascii: "}")) else {
                throw LocatedError(line: line, message: "unterminated '${': expected '}' after the variable name")
            }
            let name = String(decoding: raw[(index + 2)..<close], as: UTF8.self)
            guard isVariableName(name) else {
                throw LocatedError(line: line, message: "invalid environment variable name '${\(name)}'")
            }
            guard let value = environment[name] else {
                throw LocatedError(line: line, message: "environment variable '\(name)' is not set")
            }
            output.append(contentsOf: value.utf8)
            index = close + 1
        }
        return String(decoding: output, as: UTF8.self)
    }
}

private func isVariableName(_ name: String) -> Bool {
    guard let first = name.utf8.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
    return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || ($0 >= 48 && $0 <= 57) }
}

private func isLetter(_ byte: UInt8) -> Bool {
    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
}

struct LocatedError: Error {
    var line: Int
    var message: String
}

/// Builds the directive tree. `knownNames` lets a missing `;` be reported where it is missing: a known
/// directive name starting a new line while arguments are being collected ends the previous directive.
struct Parser {
    private var lexer: Lexer
    private let knownNames: Set<String>
    private var lookahead: Lexeme? = nil
    /// Missing `;` errors, from which parsing recovers.
    private(set) var recovered: [LocatedError] = []
    /// Blocks open around the current position. Parsing recurses once per block, so the depth is bounded: a
    /// file of a million `{` must be an error, not a stack overflow (the grammar itself nests at most 3 deep).
    private var depth = 0
    static let maxDepth = 16

    init(lexer: Lexer, knownNames: Set<String>) {
        self.lexer = lexer
        self.knownNames = knownNames
    }

    var hash: UInt64 { lexer.hash }

    private mutating func take() throws(LocatedError) -> Lexeme {
        if let lexeme = lookahead {
            lookahead = nil
            return lexeme
        }
        return try lexer.next()
    }

    /// Parses the whole file (the top-level context).
    mutating func parseFile() throws(LocatedError) -> [Directive] {
        try parseBlock(openedAt: nil, owner: nil)
    }

    private mutating func parseBlock(openedAt: Int?, owner: String?) throws(LocatedError) -> [Directive] {
        var directives: [Directive] = []
        while true {
            switch try take() {
            case .end(let line):
                if let openedAt, let owner {
                    throw LocatedError(
                        line: openedAt,
                        message: "the '{' of '\(owner)' opened here is never closed (end of file at line \(line))")
                }
                return directives
            case .close(let line):
                if openedAt != nil { return directives }
                throw LocatedError(line: line, message: "unexpected '}': no block is open")
            case .semicolon(let line):
                throw LocatedError(line: line, message: "unexpected ';' without a directive")
            case .open(let line):
                throw LocatedError(line: line, message: "unexpected '{' without a directive name")
            case .word(let name):
                directives.append(try parseDirective(name: name))
            }
        }
    }

    private mutating func parseDirective(name: Token) throws(LocatedError) -> Directive {
        var arguments: [Token] = []
        var lastLine = name.line
        while true {
            let lexeme = try take()
            switch lexeme {
            case .semicolon:
                return Directive(name: name, arguments: arguments, block: nil)
            case .open(let line):
                guard depth < Parser.maxDepth else {
                    throw LocatedError(line: line, message: "blocks nested more than \(Parser.maxDepth) deep")
                }
                depth += 1
                let block = try parseBlock(openedAt: line, owner: name.text)
                depth -= 1
                return Directive(name: name, arguments: arguments, block: block)
            case .close, .end:
                throw LocatedError(line: lastLine, message: "missing ';' after '\(name.text)'")
            case .word(let token):
                if token.line > lastLine && !token.quoted && knownNames.contains(token.text) {
                    recovered.append(LocatedError(line: lastLine, message: "missing ';' after '\(name.text)'"))
                    lookahead = lexeme
                    return Directive(name: name, arguments: arguments, block: nil)
                }
                arguments.append(token)
                lastLine = token.line
            }
        }
    }
}
