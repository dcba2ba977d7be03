// swift-tools-version:6.0
// Reactive RTC in Swift: the gateway, the balancer, the socket node and the load tool, in layers.
// Dependencies point downward only: C modules <- pure logic <- runtime <- programs.
// Tests/ArchitectureTests checks that rule against this file and the sources' imports.
import PackageDescription

// Targets on the per-byte path: in release builds their dynamic exclusivity checks (a runtime call with a
// thread-local lookup on every access to a class's stored property) are compiled out; debug builds and
// therefore `make test` keep them, so a violation still fails the tests. Measured with callgrind: the checks
// were 18 % of the gateway's instructions per proxied request.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "reactive-rtc",
    products: [],
    targets: [
        // MARK: C modules (Debian libraries through system-library targets)
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl"),
        .systemLibrary(name: "CPCRE2", path: "Sources/CPCRE2", pkgConfig: "libpcre2-8"),
        .systemLibrary(name: "CRdKafka", path: "Sources/CRdKafka", pkgConfig: "rdkafka"),
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis", pkgConfig: "hiredis"),

        // MARK: Pure logic: bytes in, values out; no syscalls, no event loop, no Foundation
        .target(name: "HTTP1", dependencies: [], swiftSettings: hotPath),
        .target(name: "Metrics", dependencies: [], swiftSettings: hotPath),
        .target(name: "DNS", dependencies: []),
        .target(name: "Routing", dependencies: ["CPCRE2", "DNS"], swiftSettings: hotPath),
        .target(name: "GatewayConfig", dependencies: ["Routing", "DNS"]),
        .target(name: "JSON", dependencies: []),
        .target(name: "WebSocket", dependencies: ["COpenSSL"], swiftSettings: hotPath),
        .target(name: "Ring", dependencies: ["JSON", "COpenSSL"]),
        .target(name: "Wire", dependencies: ["JSON", "Ring", "COpenSSL"]),
        .target(name: "Forwarding", dependencies: ["HTTP1", "Routing", "GatewayConfig"], swiftSettings: hotPath),

        // MARK: Runtime: the only code that calls libc I/O (Sys), and the event loop on top of it
        .target(name: "Sys", dependencies: ["CLinux"], swiftSettings: hotPath),
        .target(name: "EventLoop", dependencies: ["Sys"], swiftSettings: hotPath),
        .target(name: "HTTPServer", dependencies: ["HTTP1", "EventLoop", "Sys", "Metrics"], swiftSettings: hotPath),
        .target(name: "Resolver", dependencies: ["DNS", "EventLoop", "Sys", "Metrics"]),
        .target(name: "Redis", dependencies: ["CHiredis", "DNS", "EventLoop", "Resolver", "Sys"]),
        .target(name: "Kafka", dependencies: ["CRdKafka", "EventLoop", "Sys"]),
        .target(name: "TLS", dependencies: ["COpenSSL", "EventLoop", "Sys"]),
        .target(name: "Kube", dependencies: ["DNS", "EventLoop", "HTTP1", "JSON", "Resolver", "Sys", "TLS"]),

        // MARK: Program libraries: the gateway's proxy engine
        .target(
            name: "Gateway",
            dependencies: [
                "DNS", "EventLoop", "Forwarding", "GatewayConfig", "HTTP1", "HTTPServer", "Metrics", "Resolver",
                "Routing", "Sys", "WebSocket",
            ],
            swiftSettings: hotPath),

        // MARK: Program libraries: the socket node (WebSocket sessions, delivery, drain, heartbeats)
        .target(
            name: "SocketNode",
            dependencies: [
                "DNS", "EventLoop", "HTTP1", "HTTPServer", "JSON", "Kafka", "Metrics", "Redis", "Resolver", "Ring",
                "Sys", "WebSocket", "Wire",
            ]),

        // MARK: Program libraries: the balancer (assignment, membership, ring, leader election, scaling)
        .target(
            name: "Balancer",
            dependencies: [
                "DNS", "EventLoop", "HTTP1", "HTTPServer", "JSON", "Kafka", "Kube", "Metrics", "Redis", "Resolver",
                "Ring",
                "Sys", "Wire",
            ]),

        // MARK: Program libraries: the load tool's measurements (histograms, reports, charts)
        .target(name: "Bench", dependencies: ["JSON"]),

        // MARK: Programs: thin executables that parse arguments and wire the libraries together
        .executableTarget(
            name: "rtc-gateway",
            dependencies: ["Gateway", "GatewayConfig", "HTTPServer", "EventLoop", "Metrics", "Sys"]),
        .executableTarget(
            name: "rtc-balancer", dependencies: ["Balancer", "HTTPServer", "EventLoop", "Metrics", "Resolver", "Sys"]),
        .executableTarget(
            name: "rtc-socket", dependencies: ["SocketNode", "HTTPServer", "EventLoop", "Metrics", "Sys"]),
        .executableTarget(
            name: "rtc-bench",
            dependencies: [
                "Bench", "HTTPServer", "HTTP1", "EventLoop", "Sys", "COpenSSL", "WebSocket", "Wire", "Ring", "JSON",
                "Kafka", "Metrics", "Resolver", "DNS",
            ],
            swiftSettings: hotPath),

        // MARK: Test support (child processes, condition waits); used by tests only
        .target(
            name: "TestSupport", dependencies: ["EventLoop", "Sys"], path: "Tests/TestSupport", exclude: ["Fixtures"]),
        // The seeded generator of the tests (no dependencies: the pure targets' tests use it too).
        .target(name: "TestRandom", path: "Tests/TestRandom"),

        // MARK: Tests mirror targets
        .testTarget(
            name: "CModulesTests",
            dependencies: ["TestSupport", "CLinux", "COpenSSL", "CPCRE2", "CRdKafka", "CHiredis"]),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1", "TestRandom"]),
        .testTarget(name: "WebSocketTests", dependencies: ["WebSocket", "TestRandom"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "RingTests", dependencies: ["Ring", "JSON", "TestRandom"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "JSON", "Ring"]),
        .testTarget(name: "MetricsTests", dependencies: ["Metrics"]),
        .testTarget(name: "DNSTests", dependencies: ["DNS", "TestRandom"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "DNS"]),
        .testTarget(name: "GatewayConfigTests", dependencies: ["GatewayConfig", "Routing"]),
        .testTarget(
            name: "ForwardingTests", dependencies: ["Forwarding", "HTTP1", "Routing", "GatewayConfig", "TestSupport"]),
        .testTarget(name: "SysTests", dependencies: ["Sys"]),
        .testTarget(name: "EventLoopTests", dependencies: ["EventLoop", "Sys", "TestSupport", "TestRandom"]),
        .testTarget(
            name: "HTTPServerTests",
            dependencies: ["HTTPServer", "HTTP1", "EventLoop", "Sys", "Metrics", "TestSupport"]),
        .testTarget(
            name: "ResolverTests", dependencies: ["Resolver", "DNS", "EventLoop", "Sys", "Metrics", "TestSupport"]),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "GatewayConfig", "HTTPServer", "EventLoop", "Metrics", "Resolver", "DNS", "Sys",
                "TestSupport",
            ],
            exclude: ["Fixtures"]),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "EventLoop", "Sys", "Resolver", "TestSupport"]),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "EventLoop", "Sys", "CRdKafka", "TestSupport"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS", "EventLoop", "Sys", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(
            name: "KubeTests", dependencies: ["Kube", "TLS", "JSON", "EventLoop", "Sys", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "BalancerTests",
            dependencies: [
                "Balancer", "Ring", "Wire", "JSON", "Redis", "Kafka", "Kube", "EventLoop", "Sys", "HTTPServer",
                "TestSupport",
            ],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "SocketNodeTests",
            dependencies: [
                "SocketNode", "WebSocket", "Wire", "Ring", "JSON", "Redis", "Kafka", "EventLoop", "Sys", "TestSupport",
                "TestRandom",
            ]),
        // The whole system as `make run` starts it (bench/stack.sh), driven only through the gateway.
        .testTarget(name: "SystemTests", dependencies: ["TestSupport"]),
        .testTarget(name: "BenchToolTests", dependencies: ["TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "BenchTests", dependencies: ["Bench", "JSON", "TestRandom"]),
        .testTarget(name: "ArchitectureTests", dependencies: []),
    ]
)
