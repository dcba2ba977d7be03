// The layering rules of STYLE.md as code: which target may depend on and import what.

/// Where a target sits; dependencies and imports may only point to the same or a lower layer.
enum Layer: Int, Comparable, CustomStringConvertible {
    case cModule = 0
    case pure = 1
    case runtime = 2
    case program = 3
    case executable = 4
    case test = 5

    static func < (a: Layer, b: Layer) -> Bool { a.rawValue < b.rawValue }

    var description: String {
        switch self {
        case .cModule: "C module"
        case .pure: "pure"
        case .runtime: "runtime"
        case .program: "program"
        case .executable: "executable"
        case .test: "test"
        }
    }
}

/// The declared layer of every library target. A new target must be added here, which makes its author decide.
let declaredLayers: [String: Layer] = [
    "HTTP1": .pure, "Metrics": .pure, "DNS": .pure, "Routing": .pure, "GatewayConfig": .pure, "Forwarding": .pure,
    "WebSocket": .pure, "Ring": .pure, "Wire": .pure, "JSON": .pure,
    "Sys": .runtime, "EventLoop": .runtime, "HTTPServer": .runtime, "Resolver": .runtime, "TLS": .runtime,
    "Redis": .runtime, "Kafka": .runtime, "Kube": .runtime,
    "Gateway": .program, "Balancer": .program, "SocketNode": .program, "Bench": .program,
    "TestSupport": .test, "TestRandom": .test,
]

/// C modules a pure target may use: they compute, they do no I/O.
let cModulesAllowedInPure: Set<String> = ["CPCRE2", "COpenSSL"]

/// Modules that only `Sys` may import: libc I/O lives there and nowhere else.
let systemCallModules: Set<String> = ["Glibc", "Musl", "Darwin", "CLinux"]

/// Targets on the per-byte or per-request path, where Foundation must not appear.
let dataPathTargets: Set<String> = [
    "HTTP1", "Metrics", "DNS", "Routing", "GatewayConfig", "Forwarding", "WebSocket", "Ring", "Wire", "JSON",
    "Sys", "EventLoop", "HTTPServer", "Resolver", "TLS", "Gateway",
]

/// Modules that come with the toolchain and may be imported where the rules above allow.
let toolchainModules: Set<String> = [
    "Swift", "Synchronization", "_Concurrency", "Foundation", "FoundationEssentials", "Dispatch", "Testing", "XCTest",
    "Glibc", "Musl", "Darwin",
]

struct TargetDecl: Equatable {
    var name: String
    var kind: String  // target, executableTarget, testTarget, systemLibrary
    var dependencies: [String]
    var path: String?
}

/// Reads the target declarations of a Package.swift: `.kind(name: "X", dependencies: ["A", "B"], path: "P")`.
func parseTargets(packageSwift: String) -> [TargetDecl] {
    var result: [TargetDecl] = []
    let kinds = ["executableTarget", "testTarget", "systemLibrary", "target"]
    var rest = Substring(packageSwift)
    while let dot = rest.firstIndex(of: ".") {
        rest = rest[rest.index(after: dot)...]
        guard let kind = kinds.first(where: { rest.hasPrefix($0 + "(") }) else { continue }
        // The declaration runs to its matching parenthesis.
        var depth = 0
        var end = rest.startIndex
        for index in rest.indices {
            if rest[index] == "(" { depth += 1 }
            if rest[index] == ")" {
                depth -= 1
                if depth == 0 {
                    end = index
                    break
                }
            }
        }
        let body = String(rest[rest.startIndex..<end])
        rest = rest[end...]
        guard let name = quotedValue(after: "name:", in: body) else { continue }
        var dependencies: [String] = []
        if let range = body.range(of: "dependencies:"),
            let open = body[range.upperBound...].firstIndex(of: "["),
            let close = body[open...].firstIndex(of: "]")
        {
            dependencies = body[body.index(after: open)..<close].split(separator: ",").compactMap { item in
                let trimmed = item.filter { $0 != "\"" && $0 != " " && $0 != "\n" }
                return trimmed.isEmpty ? nil : String(trimmed)
            }
        }
        result.append(
            TargetDecl(name: name, kind: kind, dependencies: dependencies, path: quotedValue(after: "path:", in: body)))
    }
    return result
}

private func quotedValue(after key: String, in text: String) -> String? {
    guard let range = text.range(of: key) else { return nil }
    let tail = text[range.upperBound...]
    guard let open = tail.firstIndex(of: "\"") else { return nil }
    let afterOpen = tail.index(after: open)
    guard let close = tail[afterOpen...].firstIndex(of: "\"") else { return nil }
    return String(tail[afterOpen..<close])
}

/// The modules a Swift source file imports (`import X`, `@testable import X`, `import struct X.Y`, `@_exported`).
func importedModules(source: String) -> [String] {
    var modules: [String] = []
    for rawLine in source.split(separator: "\n", omittingEmptySubsequences: false) {
        var words = rawLine.split(separator: " ").map(String.init)
        while let first = words.first, first.hasPrefix("@") { words.removeFirst() }
        guard words.first == "import", words.count >= 2 else { continue }
        var module = words[1]
        if ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"].contains(module),
            words.count >= 3
        {
            module = words[2]
        }
        modules.append(String(module.split(separator: ".").first ?? Substring(module)))
    }
    return modules
}

struct Violation: Equatable, CustomStringConvertible {
    var location: String
    var message: String
    var description: String { "\(location): \(message)" }
}

/// Checks the package's targets and each source file's imports against the layering rules.
/// `sources` maps a target name to its files (path, text).
func checkArchitecture(packageSwift: String, sources: [String: [(path: String, text: String)]]) -> [Violation] {
    let targets = parseTargets(packageSwift: packageSwift)
    var layers: [String: Layer] = [:]
    var violations: [Violation] = []
    for target in targets {
        switch target.kind {
        case "systemLibrary": layers[target.name] = .cModule
        case "executableTarget": layers[target.name] = .executable
        case "testTarget": layers[target.name] = .test
        default:
            if let layer = declaredLayers[target.name] {
                layers[target.name] = layer
            } else {
                violations.append(
                    Violation(
                        location: "Package.swift",
                        message: "target '\(target.name)' has no declared layer (add it to ArchitectureRules.swift)"))
            }
        }
    }

    func allowed(_ module: String, from target: TargetDecl, layer: Layer) -> String? {
        if systemCallModules.contains(module) && target.name != "Sys" && layer < .test {
            return "imports \(module): libc I/O belongs in Sys"
        }
        if module == "Foundation" || module == "FoundationEssentials" || module == "Dispatch" {
            if layer == .pure || dataPathTargets.contains(target.name) {
                return "imports \(module), which stays off the data path and out of pure targets"
            }
            return nil
        }
        if toolchainModules.contains(module) { return nil }
        guard let dependencyLayer = layers[module] else { return nil }  // not a package module
        if layer == .pure {
            if dependencyLayer == .cModule && !cModulesAllowedInPure.contains(module) {
                return "pure target uses \(module), a C module that does I/O"
            }
            if dependencyLayer > .pure { return "pure target imports \(dependencyLayer) module \(module)" }
        }
        if dependencyLayer > layer && layer < .test {
            return "\(layer) target imports \(dependencyLayer) module \(module): dependencies point downward only"
        }
        return nil
    }

    for target in targets {
        guard let layer = layers[target.name] else { continue }
        for dependency in target.dependencies {
            if let problem = allowed(dependency, from: target, layer: layer) {
                violations.append(Violation(location: "Package.swift", message: "\(target.name): \(problem)"))
            }
        }
        for file in sources[target.name] ?? [] {
            for module in importedModules(source: file.text) {
                if let problem = allowed(module, from: target, layer: layer) {
                    violations.append(Violation(location: file.path, message: problem))
                }
            }
        }
    }
    return violations
}
