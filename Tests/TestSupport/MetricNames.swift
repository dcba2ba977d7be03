// The metric names and labels k8s/monitoring/metric-names.txt lists, and those a program's /metrics really serves,
// so a test can hold the two sides together (a rename on one side fails the build).
import Foundation

public enum MetricNames {
    /// The package root, two levels above this file (`Tests/TestSupport/MetricNames.swift`).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Families listed with `prefix`: name → label names (histograms by their base name).
    public static func listed(prefix: String) throws -> [String: Set<String>] {
        let text = try String(contentsOfFile: packageRoot + "/k8s/monitoring/metric-names.txt", encoding: .utf8)
        var result: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            var words = line.split(separator: " ").map(String.init)
            if words.first == "histogram" { words.removeFirst() }
            guard let name = words.first, name.hasPrefix(prefix) else { continue }
            result[name] = Set(words.dropFirst())
        }
        return result
    }

    /// Families a Prometheus text exposition declares with `prefix` (from `# TYPE`), with the label names its
    /// samples carry (without `le`).
    public static func served(_ exposition: String, prefix: String) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for line in exposition.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let name = String(line.split(separator: " ")[2])
                if name.hasPrefix(prefix) && result[name] == nil { result[name] = [] }
                continue
            }
            guard !line.hasPrefix("#"), line.hasPrefix(prefix) else { continue }
            var name = String(line.prefix { $0 != "{" && $0 != " " })
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && result[name] == nil {
                name = String(name.dropLast(suffix.count))
            }
            guard let open = line.firstIndex(of: "{"), let close = line.firstIndex(of: "}") else { continue }
            for pair in line[line.index(after: open)..<close].split(separator: ",") {
                let label = String(pair.prefix { $0 != "=" })
                if label != "le" { result[name, default: []].insert(label) }
            }
        }
        return result
    }
}
