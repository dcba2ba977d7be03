// `rtc-bench run`: the coordinator starts worker processes (each on its own event loop, so a run gets past the
// per-process file limit), merges what they report, prints a live progress line and, at the end, a Markdown summary,
// a JSON file and an SVG chart.
import Bench
import DNS
import EventLoop
import Foundation
import JSON
import Resolver
import Synchronization
import Sys

let runUsage = """
    usage: rtc-bench run --target HOST:PORT [options]

    The real client flow through the gateway at HOST:PORT (a host name or an IP literal): for each client the
    assignment GET /ws/connect?clientId=…, then the WebSocket to the URL it names, then messages to other clients,
    every one accounted for by its msgId (delivered once, late, lost, duplicated).

      --clients N            clients in this run (default 100)
      --client-offset N      global index of the first client (a Kubernetes Job pod: index × clients; default 0)
      --job-index I          this pod's index in an indexed Job ($(JOB_COMPLETION_INDEX)): --client-offset I × clients
      --total-clients N      clients across every pod of a Job, for random recipients (default: offset + clients;
                             every pod of one Job must share RTC_RUN_ID so their client ids match)
      --ramp R               new clients per second (default 500)
      --hold S               seconds of messages once every client has connected or failed (default 10)
      --rate R               messages per second per connected client (default 1)
      --size B               bytes of each message's payloadJson (default 64)
      --pattern P            recipients: random (any client), same-node or other-node (default random)
      --sources A-B          source addresses, e.g. 127.1.0.1-127.1.3.254 (one machine past 64k ports per address)
      --processes N          worker processes (default 1); each holds about 19,000 connections at most
      --concurrency N        assignments and upgrades in progress per worker (default 256)
      --late-ms MS           a message slower than this counts as late (default 1000)
      --settle S             after the hold, wait at most S seconds for messages still on their way (default 30)
      --watch NAME=PID       read this process's resident memory and CPU from /proc before and after (repeatable)
      --watch-dir DIR        watch every DIR/<name> pid file (bench/stack.sh's pids/)
      --watch-metrics NAME=URL  a remote program's memory and CPU from its /metrics (process_resident_memory_bytes,
                             process_cpu_seconds_total), e.g. gateway-0=http://10.0.0.5:9113/metrics (repeatable)
      --out DIR              write summary.md, result.json and chart.svg there
      --name NAME            the run's title (default "rtc-bench run")

    Prints a progress line every second on stderr and the Markdown summary on stdout. Exit status 0 when every
    client connected and every accepted message was delivered exactly once with no error, 1 otherwise, 2 for bad
    options.
    """

/// Parsed options of `run` (the coordinator's and, with --worker, a worker's).
struct RunOptions {
    var settings: RunSettings
    var targetText: String
    var totalClients: Int?
    var watch: [(name: String, pid: Int32)] = []
    var watchDir: String?
    /// Remote programs read through their /metrics: name and URL.
    var watchMetrics: [(name: String, url: String)] = []
    var out: String?
    var name = "rtc-bench run"
    var worker: Int?
    var arguments: [String]
}

func parseRunOptions(_ arguments: ArraySlice<String>) -> RunOptions {
    var rest = arguments
    var target: String?
    var settings = RunSettings(target: .loopback(port: 80), hostField: "")
    var options = RunOptions(settings: settings, targetText: "", arguments: Array(arguments))
    var resolved: String?
    var jobIndex: Int?
    while let flag = rest.popFirst() {
        switch flag {
        case "--target": target = value(of: flag, &rest)
        case "--clients": settings.clients = number(of: flag, &rest, in: 1...10_000_000)
        case "--client-offset": settings.clientOffset = number(of: flag, &rest, in: 0...100_000_000)
        case "--job-index": jobIndex = number(of: flag, &rest, in: 0...1_000_000)
        case "--total-clients": options.totalClients = number(of: flag, &rest, in: 1...100_000_000)
        case "--ramp": settings.ramp = positive(of: flag, &rest)
        case "--hold": settings.hold = seconds(of: flag, &rest)
        case "--rate": settings.rate = nonNegative(of: flag, &rest)
        case "--size": settings.size = number(of: flag, &rest, in: 40...60_000)
        case "--pattern":
            guard let pattern = RunSettings.Pattern(rawValue: value(of: flag, &rest)) else {
                fail("run: --pattern is random, same-node or other-node")
            }
            settings.pattern = pattern
        case "--sources": settings.sources = addressRange(value(of: flag, &rest))
        case "--processes": settings.processes = number(of: flag, &rest, in: 1...256)
        case "--concurrency": settings.concurrency = number(of: flag, &rest, in: 1...100_000)
        case "--late-ms": settings.lateMilliseconds = positive(of: flag, &rest)
        case "--settle": settings.settleSeconds = seconds(of: flag, &rest)
        case "--watch":
            let text = value(of: flag, &rest)
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex,
                let pid = Int32(text[text.index(after: equals)...]), pid > 0
            else { fail("run: --watch takes NAME=PID") }
            options.watch.append((String(text[..<equals]), pid))
        case "--watch-dir": options.watchDir = value(of: flag, &rest)
        case "--watch-metrics":
            let text = value(of: flag, &rest)
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex,
                text[text.index(after: equals)...].hasPrefix("http://")
            else { fail("run: --watch-metrics takes NAME=http://HOST:PORT/metrics") }
            options.watchMetrics.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
        case "--out": options.out = value(of: flag, &rest)
        case "--name": options.name = value(of: flag, &rest)
        // Between the coordinator and its workers.
        case "--worker": options.worker = number(of: flag, &rest, in: 0...255)
        case "--run-id": settings.runID = value(of: flag, &rest)
        case "--resolved": resolved = value(of: flag, &rest)
        case "--help", "-h":
            log(runUsage, to: FileDescriptor(1))
            exitProcess(0)
        default: fail("run: unknown option \(flag)")
        }
    }
    guard let target else { fail("run: --target HOST:PORT is required") }
    guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
        fail("run: --target needs HOST:PORT, got \(target)")
    }
    let host = String(target[..<colon])
    settings.hostField = target
    if let resolved, let address = SocketAddress(host: resolved, port: port) {
        settings.target = address
    } else if let address = SocketAddress(host: host == "localhost" ? "127.0.0.1" : host, port: port) {
        settings.target = address
    } else if options.worker == nil {
        settings.target = resolve(host, port: port)
    } else {
        fail("run: worker without a resolved target")
    }
    if let jobIndex { settings.clientOffset = jobIndex * settings.clients }
    settings.population = options.totalClients ?? settings.clientOffset + settings.clients
    if settings.population < settings.clientOffset + settings.clients {
        fail("run: --total-clients must cover --client-offset + --clients")
    }
    options.settings = settings
    options.targetText = target
    return options
}

func positive(of flag: String, _ rest: inout ArraySlice<String>) -> Double {
    guard let value = Double(value(of: flag, &rest)), value > 0, value.isFinite else {
        fail("\(flag) needs a number > 0")
    }
    return value
}

func nonNegative(of flag: String, _ rest: inout ArraySlice<String>) -> Double {
    guard let value = Double(value(of: flag, &rest)), value >= 0, value.isFinite else {
        fail("\(flag) needs a number ≥ 0")
    }
    return value
}

/// `A.B.C.D-E.F.G.H` (inclusive) or one address: the source addresses, port 0.
func addressRange(_ text: String) -> [SocketAddress] {
    func number(_ part: Substring) -> UInt32? {
        let octets = part.split(separator: ".").compactMap { UInt8($0) }
        guard octets.count == 4 else { return nil }
        return octets.reduce(0) { $0 << 8 | UInt32($1) }
    }
    let ends = text.split(separator: "-", maxSplits: 1)
    guard let first = number(ends[0]), let last = ends.count == 2 ? number(ends[1]) : first, last >= first,
        last - first < 1 << 20
    else { fail("run: --sources takes A.B.C.D-E.F.G.H (at most 2^20 addresses)") }
    return (first...last).map { value in
        let text = "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
        return SocketAddress(host: text, port: 0)!
    }
}

/// One lookup of `host` through the system's resolv.conf with our resolver (no blocking getaddrinfo).
func resolve(_ host: String, port: UInt16) -> SocketAddress {
    final class Answer: ResolveHandler {
        var outcome: ResolveOutcome?
        let loop: EventLoop
        init(loop: EventLoop) { self.loop = loop }
        func resolved(_ outcome: ResolveOutcome, name: String, tag: UInt64) {
            self.outcome = outcome
            loop.stop()
        }
    }
    do {
        let loop = try EventLoop()
        let resolver = try Resolver(loop: loop, configuration: .system())
        let answer = Answer(loop: loop)
        if let outcome = resolver.resolve(host, handler: answer, tag: 0) {
            answer.outcome = outcome
        } else {
            try loop.run()
        }
        resolver.close()
        guard case .addresses(let addresses, _)? = answer.outcome, let first = addresses.first else {
            fail("run: cannot resolve \(host): \(String(describing: answer.outcome))")
        }
        return SocketAddress(first, port: port)
    } catch {
        fail("run: cannot resolve \(host): \(error)")
    }
}

// MARK: Worker

func runWorkerProcess(_ options: RunOptions, index: Int) -> Never {
    _ = try? raiseOpenFileLimit()
    Signals.ignoreBrokenPipe()
    do {
        let loop = try EventLoop()
        let worker = RunWorker(loop: loop, settings: options.settings, index: index)
        let signals = try Signals.notify([Signals.terminate, SIGUSR1])
        _ = try loop.register(signals, interest: .readable, handler: FinishOnSignal(fd: signals, worker: worker))
        worker.begin()
        try loop.run()
        exitProcess(0)
    } catch {
        fail("run worker \(index): \(error)")
    }
}

// MARK: Coordinator

/// What the coordinator knows of one worker, updated from its stdout lines.
struct WorkerState {
    var phase = "connect"
    var connected: UInt64 = 0
    var open: UInt64 = 0
    var accepted: UInt64 = 0
    var delivered: UInt64 = 0
    var errors: UInt64 = 0
    var p99: UInt64 = 0
    var report: RunReport?
    var exited = false
}

func runRun(_ arguments: ArraySlice<String>) {
    var options = parseRunOptions(arguments)
    if let worker = options.worker { runWorkerProcess(options, index: worker) }
    var settings = options.settings
    // One run id for every pod of a Kubernetes Job (RTC_RUN_ID), so their clients can write to each other.
    settings.runID = ProcessInfo.processInfo.environment["RTC_RUN_ID"] ?? randomRunID()
    options.settings = settings
    var watch = options.watch
    if let directory = options.watchDir {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory))?.sorted() ?? [] {
            if let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                watch.append((name, pid))
            }
        }
    }
    let before = watch.map { residentBytes($0.pid) }
    let cpuBefore = watch.map { processCPUTicks([$0.pid]) }
    let remoteBefore = options.watchMetrics.map { fetchText($0.url).flatMap(MetricsFigures.init(text:)) }
    var remoteAfter: [MetricsFigures?] = []

    let state = Mutex<[WorkerState]>(Array(repeating: WorkerState(), count: settings.processes))
    var processes: [Process] = []
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let targetAddress = settings.target.description.split(separator: ":").dropLast().joined(separator: ":")
    for index in 0..<settings.processes {
        let process = Process()
        process.executableURL = executable
        process.arguments =
            ["run"] + options.arguments + [
                "--worker", String(index), "--run-id", settings.runID, "--resolved", targetAddress,
            ]
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { fail("run: cannot start worker \(index): \(error)") }
        processes.append(process)
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread {
            var buffer: [UInt8] = []
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                buffer += data
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    guard let value = try? JSONParser.parse(line) else { continue }
                    state.withLock { workers in
                        if value["type"]?.stringValue == "result" {
                            workers[index].report = value["report"].flatMap(RunReport.init(json:))
                        } else {
                            workers[index].phase = value["phase"]?.stringValue ?? workers[index].phase
                            workers[index].connected = value["connected"]?.uint64Value ?? 0
                            workers[index].open = value["open"]?.uint64Value ?? 0
                            workers[index].accepted = value["accepted"]?.uint64Value ?? 0
                            workers[index].delivered = value["delivered"]?.uint64Value ?? 0
                            workers[index].errors = value["errors"]?.uint64Value ?? 0
                            workers[index].p99 = value["p99"]?.uint64Value ?? 0
                        }
                    }
                }
            }
            state.withLock { $0[index].exited = true }
        }
    }
    log(
        "rtc-bench run \(settings.runID): \(options.settings.clients) client(s) against \(options.targetText) "
            + "(\(settings.target)), \(settings.processes) worker process(es)")

    // Progress every second; finish once every worker settled its hold and every accepted message arrived (or the
    // settle time ran out).
    let start = monotonicNanoseconds()
    var settleStart: UInt64?
    var lastDelivered: UInt64 = 0
    var lastPrint = start
    var after: [UInt64] = []
    var cpuAfter: [Int] = []
    var signalled = false
    let target = UInt64(settings.clients)
    while true {
        usleep(100_000)
        let now = monotonicNanoseconds()
        let workers = state.withLock { $0 }
        let open = workers.reduce(0) { $0 + $1.open }
        let accepted = workers.reduce(0) { $0 + $1.accepted }
        let delivered = workers.reduce(0) { $0 + $1.delivered }
        let errors = workers.reduce(0) { $0 + $1.errors }
        if now - lastPrint >= 1_000_000_000 {
            let rate = Double(delivered - min(delivered, lastDelivered)) / (Double(now - lastPrint) / 1e9)
            log(
                RunReport.progressLine(
                    elapsed: Double(now - start) / 1e9, connections: open, target: target, ratePerSecond: rate,
                    errors: errors, p99Micros: workers.map(\.p99).max() ?? 0))
            lastDelivered = delivered
            lastPrint = now
        }
        if workers.allSatisfy(\.exited) { break }
        if !signalled && workers.allSatisfy({ $0.phase == "settle" || $0.exited }) {
            if settleStart == nil {
                settleStart = now
                after = watch.map { residentBytes($0.pid) }
                cpuAfter = watch.map { processCPUTicks([$0.pid]) }
                remoteAfter = options.watchMetrics.map { fetchText($0.url).flatMap(MetricsFigures.init(text:)) }
            }
            if delivered >= accepted || Double(now - settleStart!) / 1e9 >= settings.settleSeconds {
                for process in processes where process.isRunning { kill(process.processIdentifier, SIGUSR1) }
                signalled = true
            }
        }
    }
    for process in processes { process.waitUntilExit() }
    var total = RunReport()
    let workers = state.withLock { $0 }
    for (index, worker) in workers.enumerated() {
        guard let report = worker.report else {
            log("rtc-bench run: worker \(index) gave no result (exit status \(processes[index].terminationStatus))")
            total.counters.errors["worker_failed", default: 0] += 1
            continue
        }
        total.merge(report)
    }
    if after.isEmpty {
        after = watch.map { residentBytes($0.pid) }
        cpuAfter = watch.map { processCPUTicks([$0.pid]) }
    }
    if remoteAfter.isEmpty {
        remoteAfter = options.watchMetrics.map { fetchText($0.url).flatMap(MetricsFigures.init(text:)) }
    }
    for (index, remote) in options.watchMetrics.enumerated() {
        guard let first = remoteBefore[index], let last = remoteAfter[index] else {
            log("rtc-bench run: no process_* figures from \(remote.url)")
            continue
        }
        total.watched.append(
            WatchedProcess(
                name: remote.name, residentBytesBefore: first.residentBytes, residentBytesAfter: last.residentBytes,
                cpuSeconds: last.cpuSeconds - first.cpuSeconds))
    }
    for (index, process) in watch.enumerated() {
        total.watched.append(
            WatchedProcess(
                name: process.name, residentBytesBefore: before[index], residentBytesAfter: after[index],
                cpuSeconds: Double(cpuAfter[index] - cpuBefore[index]) / 100))
    }
    let command = "rtc-bench run " + options.arguments.joined(separator: " ")
    let markdown = total.markdown(title: options.name, command: command)
    log(markdown, to: FileDescriptor(1))
    if let out = options.out {
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try markdown.write(toFile: out + "/summary.md", atomically: true, encoding: .utf8)
            try String(decoding: total.json().serialized(), as: UTF8.self).write(
                toFile: out + "/result.json", atomically: true, encoding: .utf8)
            try Chart.svg(title: options.name, timeline: total.timeline).write(
                toFile: out + "/chart.svg", atomically: true, encoding: .utf8)
            log("rtc-bench run: wrote \(out)/summary.md, result.json, chart.svg")
        } catch {
            log("rtc-bench run: cannot write \(out): \(error)")
        }
    }
    exitProcess(total.isClean ? 0 : 1)
}

/// Resident memory of a process (VmRSS of /proc/PID/status), 0 when it cannot be read.
func residentBytes(_ pid: Int32) -> UInt64 {
    guard let status = readSmallFile("/proc/\(pid)/status") else { return 0 }
    for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let digits = line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } ?? 0
        return digits * 1024
    }
    return 0
}

// MARK: Remote processes

/// A program watched through its `/metrics` (a remote gateway or socket node): resident memory and CPU from its
/// `process_resident_memory_bytes` and `process_cpu_seconds_total`.
struct MetricsFigures {
    var residentBytes: UInt64
    var cpuSeconds: Double

    init?(text: String) {
        var resident: UInt64?
        var cpu: Double?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("process_resident_memory_bytes ") {
                resident = Double(line.dropFirst("process_resident_memory_bytes ".count)).map { UInt64($0) }
            } else if line.hasPrefix("process_cpu_seconds_total ") {
                cpu = Double(line.dropFirst("process_cpu_seconds_total ".count))
            }
        }
        guard let resident, let cpu else { return nil }
        residentBytes = resident
        cpuSeconds = cpu
    }
}

/// One `GET` of `http://HOST:PORT/PATH` on a private loop (at most 5 s): the body, or nil.
func fetchText(_ url: String) -> String? {
    final class Fetch: ConnectionHandler {
        var bytes: [UInt8] = []
        let loop: EventLoop
        init(loop: EventLoop) { self.loop = loop }
        func received(_ connection: Connection, _ data: UnsafeRawBufferPointer) { bytes.append(contentsOf: data) }
        func readEOF(_ connection: Connection) { connection.close() }
        func closed(_ connection: Connection, error: Errno?) { loop.stop() }
    }
    guard url.hasPrefix("http://") else { return nil }
    let rest = url.dropFirst("http://".count)
    let authority = rest.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
    let path = "/" + (rest.split(separator: "/", maxSplits: 1).dropFirst().first.map(String.init) ?? "")
    guard let colon = authority.lastIndex(of: ":"), let port = UInt16(authority[authority.index(after: colon)...])
    else { return nil }
    let host = String(authority[..<colon])
    let address = SocketAddress(host: host == "localhost" ? "127.0.0.1" : host, port: port) ?? resolve(host, port: port)
    do {
        let loop = try EventLoop()
        let fetch = Fetch(loop: loop)
        let fd = try FileDescriptor.socket(.tcp, for: address)
        _ = try fd.connect(to: address)
        let connection = try Connection(loop: loop, fd: fd, handler: fetch)
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(authority)\r\nConnection: close\r\n\r\n".utf8)
        request.withUnsafeBytes { connection.write($0) }
        _ = loop.schedule(after: .seconds(5)) { loop.stop() }
        try loop.run()
        let text = String(decoding: fetch.bytes, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200"), let split = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[split.upperBound...])
    } catch {
        return nil
    }
}
