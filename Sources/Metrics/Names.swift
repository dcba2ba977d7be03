// Validation of metric and label names, and the typed error registration throws.

/// Why a registration was refused. Registration happens at start-up, so these are configuration bugs
/// reported before any traffic flows.
public enum RegistrationError: Error, Equatable, Sendable {
    /// The metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    case invalidMetricName(String)
    /// The label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`.
    case invalidLabelName(String)
    /// Label names starting with `__` are reserved for Prometheus itself; `le` is reserved on histograms.
    case reservedLabelName(String)
    /// The same label name appears twice in one family.
    case duplicateLabelName(String)
    /// Another family already renders a sample with this name (histograms own `_bucket`, `_sum`, `_count`).
    case duplicateMetricName(String)
    /// Bucket bounds must be strictly increasing and not NaN; exponential buckets need start > 0,
    /// factor > 1, count ≥ 1; linear buckets need width > 0, count ≥ 1.
    case invalidBuckets(String)
}

enum Names {
    /// Prometheus data model: metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    static func validateMetricName(_ name: String) throws(RegistrationError) {
        var first = true
        for byte in name.utf8 {
            let ok =
                isLetter(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":") || (!first && isDigit(byte))
            if !ok { throw .invalidMetricName(name) }
            first = false
        }
        if first { throw .invalidMetricName(name) }
    }

    /// Prometheus data model: label names match `[a-zA-Z_][a-zA-Z0-9_]*`; names starting with `__` are reserved.
    static func validateLabelNames(_ names: [String], reserved: [String] = []) throws(RegistrationError) {
        var seen: Set<String> = []
        for name in names {
            var first = true
            for byte in name.utf8 {
                let ok = isLetter(byte) || byte == UInt8(ascii: "_") || (!first && isDigit(byte))
                if !ok { throw .invalidLabelName(name) }
                first = false
            }
            if first { throw .invalidLabelName(name) }
            if name.utf8.starts(with: "__".utf8) || reserved.contains(name) { throw .reservedLabelName(name) }
            if !seen.insert(name).inserted { throw .duplicateLabelName(name) }
        }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
