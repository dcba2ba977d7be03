// Byte-level writers for the Prometheus text exposition format 0.0.4: escaping, numbers, sample lines.

/// Appenders for the Prometheus text format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
enum TextFormat {
    /// `text/plain; version=0.0.4; charset=utf-8`, the Content-Type a `/metrics` endpoint answers with.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func append(_ text: String, to out: inout [UInt8]) {
        out.append(contentsOf: text.utf8)
    }

    /// HELP text: `\` becomes `\\` and a line feed becomes `\n`.
    static func appendHelp(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            default: out.append(byte)
            }
        }
    }

    /// Label value: `\`, `"` and line feed are escaped as `\\`, `\"` and `\n`.
    static func appendLabelValue(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            default: out.append(byte)
            }
        }
    }

    /// `l1="v1",l2="v2"` without braces, so a histogram can append its `le` label after it.
    static func labelPairs(names: [String], values: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for (index, name) in names.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            append(name, to: &out)
            out.append(contentsOf: [UInt8(ascii: "="), UInt8(ascii: "\"")])
            appendLabelValue(values[index], to: &out)
            out.append(UInt8(ascii: "\""))
        }
        return out
    }

    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        // UInt64.max has 20 digits; the scratch space lives on the stack.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = value
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    /// Go's `strconv.ParseFloat` syntax, which Prometheus parses: `+Inf`, `-Inf`, `NaN`, integers without
    /// exponent or fraction where exact, otherwise Swift's shortest round-trip form (`0.25`, `1e-05`).
    static func appendDouble(_ value: Double, to out: inout [UInt8]) {
        if value.isNaN {
            append("NaN", to: &out)
        } else if value == .infinity {
            append("+Inf", to: &out)
        } else if value == -.infinity {
            append("-Inf", to: &out)
        } else if value == value.rounded(.towardZero) && value.magnitude < 9_007_199_254_740_992 {
            // Below 2^53 every integer is exact, so the digits are the value.
            if value < 0 { out.append(UInt8(ascii: "-")) }
            appendDecimal(UInt64(value.magnitude), to: &out)
        } else {
            append(value.description, to: &out)
        }
    }

    static func formatDouble(_ value: Double) -> String {
        var out: [UInt8] = []
        appendDouble(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `# HELP name text\n# TYPE name kind\n`
    static func appendHeader(name: String, help: String, kind: MetricKind, to out: inout [UInt8]) {
        append("# HELP ", to: &out)
        append(name, to: &out)
        out.append(UInt8(ascii: " "))
        appendHelp(help, to: &out)
        append("\n# TYPE ", to: &out)
        append(name, to: &out)
        out.append(UInt8(ascii: " "))
        append(kind.rawValue, to: &out)
        out.append(UInt8(ascii: "\n"))
    }

    /// `name{labels} ` up to the value: braces only when there are labels.
    static func appendSampleStart(name: String, suffix: String, labels: [UInt8], to out: inout [UInt8]) {
        append(name, to: &out)
        append(suffix, to: &out)
        if !labels.isEmpty {
            out.append(UInt8(ascii: "{"))
            out.append(contentsOf: labels)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: " "))
    }
}

/// The `# TYPE` of a metric family.
public enum MetricKind: String, Sendable {
    case counter
    case gauge
    case histogram
}
