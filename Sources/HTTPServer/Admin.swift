// Admin endpoints (/metrics, /healthz, /readyz) and the standard process_* metrics of Prometheus client libraries.
import Metrics
import Synchronization
import Sys

/// Whether the process accepts work: `/readyz` answers 200 while set, 503 otherwise (false while draining).
public final class ReadinessFlag: Sendable {
    private let value: Atomic<Bool>

    public init(_ ready: Bool = false) { value = Atomic(ready) }

    public var isReady: Bool { value.load(ordering: .acquiring) }

    public func set(_ ready: Bool) { value.store(ready, ordering: .releasing) }
}

/// The admin routes every program serves on its admin listener.
public enum AdminEndpoints {
    /// Adds `GET /metrics` (the registry in Prometheus text format 0.0.4), `GET /healthz` (200 `ok`: the process
    /// is alive) and `GET /readyz` (200 `ready` or 503 `not ready`, from `readiness`) to `router`.
    public static func install(in router: inout Router, registry: Registry, readiness: ReadinessFlag) {
        router.get("/metrics") { _ in
            var out: [UInt8] = []
            out.reserveCapacity(16 * 1024)
            registry.render(into: &out)
            return .bytes(out, contentType: Registry.contentType)
        }
        router.get("/healthz", fixed: FixedResponse(status: 200, contentType: "text/plain; charset=utf-8", body: "ok"))
        router.get("/readyz") { _ in readiness.isReady ? .text("ready") : .text("not ready", status: 503) }
    }

    /// A router with only the admin routes.
    public static func router(registry: Registry, readiness: ReadinessFlag) -> Router {
        var router = Router()
        install(in: &router, registry: registry, readiness: readiness)
        return router
    }
}

/// The `process_*` metrics of the Prometheus client libraries, read from /proc at each scrape.
public enum ProcessMetrics {
    /// Registers `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
    /// `process_max_fds` and `process_start_time_seconds` in `registry`.
    public static func register(in registry: Registry) throws(RegistrationError) {
        let start = ProcessFigures.current().startTimeSeconds
        try registry.counter("process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.") {
            ProcessFigures.current().cpuSeconds
        }
        try registry.gauge("process_resident_memory_bytes", help: "Resident memory size in bytes.") {
            Double(ProcessFigures.current().residentBytes)
        }
        try registry.gauge("process_open_fds", help: "Number of open file descriptors.") {
            Double(ProcessFigures.current().openFileDescriptors)
        }
        try registry.gauge("process_max_fds", help: "Maximum number of open file descriptors.") {
            Double((try? openFileLimit().soft) ?? 0)
        }
        try registry.gauge("process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.")
        {
            start
        }
    }
}
