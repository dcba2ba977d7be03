// Templates with `$name` / `$N` capture references, parsed once at load and rendered into a byte buffer.

/// Why a template was rejected at load.
public struct TemplateError: Error, Equatable, Sendable {
    public let message: String

    public init(message: String) { self.message = message }
}

/// A string with capture references: `$name` (a named group of the route's regex), `$N` (group number N,
/// `$0` the whole match) and `$$` (a literal `$`). A name runs over `[A-Za-z0-9_]`, so `$podid.socket` refers
/// to `podid`. Environment references (`${VAR}`) are already expanded by the config loader.
public struct Template: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case literal(Range<Int>)
        case capture(Int)
    }

    // Literal text of all parts in one buffer, so rendering touches two arrays and allocates nothing.
    let literals: [UInt8]
    let parts: [Part]
    /// The template as written.
    public let source: String
    /// How many parts are capture references.
    let captureReferences: Int

    /// Parses `text`, resolving capture references against `pattern` (nil: the route has no regex, so any
    /// capture reference is an error).
    public init(parsing text: String, pattern: Pattern?) throws(TemplateError) {
        let bytes = Array(text.utf8)
        var literals: [UInt8] = []
        var parts: [Part] = []
        var literalStart = 0
        func flushLiteral() {
            if literals.count > literalStart {
                parts.append(.literal(literalStart..<literals.count))
            }
            literalStart = literals.count
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "$") else {
                literals.append(byte)
                index += 1
                continue
            }
            guard index + 1 < bytes.count else {
                throw TemplateError(message: "'$' at the end of template '\(text)'; write '$$' for a literal '$'")
            }
            let next = bytes[index + 1]
            if next == UInt8(ascii: "$") {
                literals.append(next)
                index += 2
                continue
            }
            var end = index + 1
            if isDigit(next) {
                while end < bytes.count && isDigit(bytes[end]) { end += 1 }
                let digits = String(decoding: bytes[(index + 1)..<end], as: UTF8.self)
                let available = pattern?.captureCount ?? -1
                guard let group = Int(digits), group <= available else {
                    throw TemplateError(
                        message: pattern == nil
                            ? "capture '$\(digits)' used on a route without a regex"
                            : "capture '$\(digits)' does not exist: the regex has \(available) group(s)")
                }
                flushLiteral()
                parts.append(.capture(group))
            } else if isNameStart(next) {
                while end < bytes.count && isNameByte(bytes[end]) { end += 1 }
                let name = String(decoding: bytes[(index + 1)..<end], as: UTF8.self)
                guard let pattern else {
                    throw TemplateError(message: "capture '$\(name)' used on a route without a regex")
                }
                guard let group = pattern.captureNames[name] else {
                    throw TemplateError(message: "capture '$\(name)' is not a named group of the route's regex")
                }
                flushLiteral()
                parts.append(.capture(group))
            } else {
                throw TemplateError(
                    message: "'$' must be followed by a capture name or number in '\(text)'; write '$$' for '$'")
            }
            index = end
        }
        flushLiteral()
        self.literals = literals
        self.parts = parts
        self.source = text
        captureReferences = parts.count { if case .capture = $0 { return true } else { return false } }
    }

    /// Capture group numbers referenced, in order of appearance.
    public var captureGroups: [Int] {
        parts.compactMap { part in
            if case .capture(let group) = part { return group }
            return nil
        }
    }

    /// True when the template references no capture (it renders the same bytes for every request).
    public var isLiteral: Bool { captureGroups.isEmpty }

    /// Appends the rendered bytes to `output`; captures are spans of `path` from `captures`' last match (a
    /// group that did not take part renders as nothing). Allocates only if `output` must grow.
    public func render(captures: Matcher, path: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        for part in parts {
            switch part {
            case .literal(let range):
                output.append(contentsOf: literals[range])
            case .capture(let group):
                if let span = captures.span(group), span.upperBound <= path.count {
                    output.append(contentsOf: UnsafeRawBufferPointer(rebasing: path[span]))
                }
            }
        }
    }

    /// Most bytes `render` writes for a path of `pathCount` bytes: the literal text, and the whole path for each
    /// capture reference (a capture is a span of the path).
    @inline(__always)
    public func renderedBound(pathCount: Int) -> Int {
        literals.count &+ captureReferences &* pathCount
    }

    /// `render` into raw memory holding at least `renderedBound(pathCount: path.count)` bytes; returns the
    /// number of bytes written.
    @inline(__always)
    public func render(
        captures: Matcher, path: UnsafeRawBufferPointer, intoMemory output: UnsafeMutableRawPointer
    ) -> Int {
        var count = 0
        literals.withUnsafeBytes { text in
            for part in parts {
                switch part {
                case .literal(let range):
                    (output + count).copyMemory(from: text.baseAddress! + range.lowerBound, byteCount: range.count)
                    count &+= range.count
                case .capture(let group):
                    if let span = captures.span(group), span.upperBound <= path.count, let source = path.baseAddress {
                        (output + count).copyMemory(from: source + span.lowerBound, byteCount: span.count)
                        count &+= span.count
                    }
                }
            }
        }
        return count
    }

    /// The rendering of a template without captures (for host names and headers known at load).
    public var literalBytes: [UInt8] { literals }

    public var description: String { source }
}

@inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

@inline(__always) func isNameStart(_ byte: UInt8) -> Bool {
    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") || byte == UInt8(ascii: "_")
}

@inline(__always) func isNameByte(_ byte: UInt8) -> Bool { isNameStart(byte) || isDigit(byte) }
