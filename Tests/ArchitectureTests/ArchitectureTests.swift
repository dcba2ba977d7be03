// Guards the shape of the package: runs the layering rules on the real tree and on synthetic violations.
import Foundation
import Testing

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

private func loadSources(targets: [TargetDecl]) throws -> [String: [(path: String, text: String)]] {
    var result: [String: [(path: String, text: String)]] = [:]
    for target in targets where target.kind != "systemLibrary" {
        let base = target.kind == "testTarget" ? "Tests" : "Sources"
        let directory = repositoryRoot.appendingPathComponent(target.path ?? "\(base)/\(target.name)")
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else {
            continue
        }
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            let relative = String(url.path.dropFirst(repositoryRoot.path.count + 1))
            result[target.name, default: []].append((relative, try String(contentsOf: url, encoding: .utf8)))
        }
    }
    return result
}

@Suite struct ArchitectureTests {
    @Test func realTreeFollowsTheLayers() throws {
        let package = try String(contentsOf: repositoryRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let targets = parseTargets(packageSwift: package)
        #expect(targets.contains { $0.name == "HTTP1" && $0.kind == "target" })
        #expect(targets.contains { $0.name == "CLinux" && $0.kind == "systemLibrary" })
        let sources = try loadSources(targets: targets)
        #expect((sources["HTTP1"] ?? []).count > 0, "the HTTP1 sources were found")
        let violations = checkArchitecture(packageSwift: package, sources: sources)
        #expect(violations.isEmpty, "\(violations.map(\.description).joined(separator: "\n"))")
    }

    static let syntheticPackage = """
        let package = Package(name: "x", targets: [
            .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
            .systemLibrary(name: "CHiredis", path: "Sources/CHiredis", pkgConfig: "hiredis"),
            .target(name: "HTTP1", dependencies: []),
            .target(name: "Metrics", dependencies: ["EventLoop"]),
            .target(name: "Sys", dependencies: ["CLinux"]),
            .target(name: "EventLoop", dependencies: ["Sys"]),
            .target(name: "Mystery"),
            .executableTarget(name: "rtc-gateway", dependencies: ["EventLoop"]),
        ])
        """

    struct Case: CustomTestStringConvertible, Sendable {
        var target: String
        var source: String
        var expected: String?
        var testDescription: String { "\(target): \(source.replacingOccurrences(of: "\n", with: " "))" }
    }

    static let cases: [Case] = [
        Case(target: "HTTP1", source: "import EventLoop\n", expected: "pure target imports runtime module EventLoop"),
        Case(target: "HTTP1", source: "import Glibc\n", expected: "imports Glibc: libc I/O belongs in Sys"),
        Case(target: "HTTP1", source: "import Foundation\n", expected: "imports Foundation"),
        Case(target: "HTTP1", source: "@testable import struct Sys.FileDescriptor\n", expected: "pure target imports"),
        Case(target: "HTTP1", source: "import CHiredis\n", expected: "a C module that does I/O"),
        Case(target: "EventLoop", source: "import CLinux\n", expected: "imports CLinux: libc I/O belongs in Sys"),
        Case(target: "EventLoop", source: "import Foundation\n", expected: "stays off the data path"),
        Case(target: "Sys", source: "import EventLoop\n", expected: nil),  // same layer: allowed
        Case(target: "Sys", source: "import Glibc\nimport CLinux\n", expected: nil),
        Case(target: "HTTP1", source: "import Synchronization\n", expected: nil),
        Case(target: "rtc-gateway", source: "import Foundation\nimport EventLoop\n", expected: nil),
    ]

    @Test(arguments: cases) func syntheticImportViolationIsCaught(_ c: Case) {
        let violations = checkArchitecture(
            packageSwift: Self.syntheticPackage, sources: [c.target: [("Sources/\(c.target)/X.swift", c.source)]])
        let fileViolations = violations.filter { $0.location.hasSuffix("X.swift") }
        if let expected = c.expected {
            #expect(fileViolations.contains { $0.message.contains(expected) }, "\(violations)")
        } else {
            #expect(fileViolations.isEmpty, "\(fileViolations)")
        }
    }

    @Test func syntheticPackageViolationsAreCaught() {
        let violations = checkArchitecture(packageSwift: Self.syntheticPackage, sources: [:])
        let messages = violations.map(\.description)
        #expect(messages.contains("Package.swift: Metrics: pure target imports runtime module EventLoop"))
        #expect(
            messages.contains(
                "Package.swift: target 'Mystery' has no declared layer (add it to ArchitectureRules.swift)"))
        #expect(violations.count == 2, "\(messages)")
    }

    @Test func parsesTargetDeclarations() {
        let targets = parseTargets(packageSwift: Self.syntheticPackage)
        #expect(
            targets.map(\.name) == [
                "CLinux", "CHiredis", "HTTP1", "Metrics", "Sys", "EventLoop", "Mystery", "rtc-gateway",
            ])
        #expect(targets[3] == TargetDecl(name: "Metrics", kind: "target", dependencies: ["EventLoop"], path: nil))
        #expect(targets[0].path == "Sources/CLinux")
    }

    @Test func readsImportLines() {
        let source = "import Foundation\n@testable import HTTP1\nimport struct Sys.Errno\n// import Fake\nlet x = 1\n"
        #expect(importedModules(source: source) == ["Foundation", "HTTP1", "Sys"])
    }
}
