// What one `rtc-bench run` worker measured, how workers' reports merge, and the summary a person reads (Markdown) or a
// program reads (JSON).
import JSON

/// Counts of one run. Every message a sender was told is accepted ends as delivered (once), or lost.
public struct RunCounters: Equatable, Sendable {
    /// Clients this report covers.
    public var clients: UInt64 = 0
    /// Sessions that got their welcome frame.
    public var connected: UInt64 = 0
    /// Sessions open at the end of the hold.
    public var held: UInt64 = 0
    /// Sessions that ended before the run did (closed by the server for a move or a drain, connection lost); each
    /// client connects again through a new assignment and resumes from the last offset it saw.
    public var sessionsEnded: UInt64 = 0
    /// Of those, reconnected (welcomed again).
    public var reconnected: UInt64 = 0
    /// Clients that could not connect again after their session ended.
    public var dropped: UInt64 = 0
    public var sent: UInt64 = 0
    public var accepted: UInt64 = 0
    /// Answered with an error frame (not accepted; the sender knows).
    public var refused: UInt64 = 0
    /// Distinct messages received.
    public var delivered: UInt64 = 0
    /// Copies of a message already received.
    public var duplicates: UInt64 = 0
    /// Delivered, but later than the late bound.
    public var late: UInt64 = 0
    /// Errors by kind (`assign_status_503`, `upgrade_refused`, `connect_failed`, …).
    public var errors: [String: UInt64] = [:]

    public init() {}

    /// Accepted and never received (across every worker: receipts are counted where the recipient is).
    public var lost: UInt64 { accepted > delivered ? accepted - delivered : 0 }
    public var errorTotal: UInt64 { errors.values.reduce(0, +) }

    public mutating func merge(_ other: RunCounters) {
        clients += other.clients
        connected += other.connected
        held += other.held
        sessionsEnded += other.sessionsEnded
        reconnected += other.reconnected
        dropped += other.dropped
        sent += other.sent
        accepted += other.accepted
        refused += other.refused
        delivered += other.delivered
        duplicates += other.duplicates
        late += other.late
        for (kind, count) in other.errors { errors[kind, default: 0] += count }
    }

    // Key paths are immutable values; the array is never mutated.
    nonisolated(unsafe) static let fields: [(String, WritableKeyPath<RunCounters, UInt64>)] = [
        ("clients", \.clients), ("connected", \.connected), ("held", \.held), ("sessions_ended", \.sessionsEnded),
        ("reconnected", \.reconnected), ("dropped", \.dropped),
        ("sent", \.sent), ("accepted", \.accepted), ("refused", \.refused), ("delivered", \.delivered),
        ("duplicates", \.duplicates), ("late", \.late),
    ]

    public func json() -> JSONValue {
        var members = Self.fields.map { ($0.0, JSONValue.uint(self[keyPath: $0.1])) }
        members.append(("lost", .uint(lost)))
        members.append(("errors", .object(errors.sorted { $0.key < $1.key }.map { ($0.key, .uint($0.value)) })))
        return .object(members)
    }

    public init?(json: JSONValue) {
        for (name, path) in Self.fields {
            guard let value = json[name]?.uint64Value else { return nil }
            self[keyPath: path] = value
        }
        guard let errors = json["errors"]?.objectValue else { return nil }
        for (kind, value) in errors {
            guard let count = value.uint64Value else { return nil }
            self.errors[kind] = count
        }
    }
}

/// One second of a run, as the chart draws it.
public struct TimelinePoint: Equatable, Sendable {
    /// Seconds since the run started.
    public var second: Int
    public var connections: UInt64
    public var delivered: UInt64
    public var errors: UInt64
    /// p99 of the message latencies of this second, in microseconds (merged across workers: the largest).
    public var p99Micros: UInt64

    public init(second: Int, connections: UInt64, delivered: UInt64, errors: UInt64, p99Micros: UInt64) {
        self.second = second
        self.connections = connections
        self.delivered = delivered
        self.errors = errors
        self.p99Micros = p99Micros
    }
}

/// A process whose memory and CPU the run watched (the gateway, a socket node), read from /proc.
public struct WatchedProcess: Equatable, Sendable {
    public var name: String
    public var residentBytesBefore: UInt64
    public var residentBytesAfter: UInt64
    public var cpuSeconds: Double

    public init(name: String, residentBytesBefore: UInt64, residentBytesAfter: UInt64, cpuSeconds: Double) {
        self.name = name
        self.residentBytesBefore = residentBytesBefore
        self.residentBytesAfter = residentBytesAfter
        self.cpuSeconds = cpuSeconds
    }
}

/// Everything one worker (or the merge of all) measured.
public struct RunReport: Equatable, Sendable {
    public var counters = RunCounters()
    /// The assignment GET, from connect to the whole answer (microseconds).
    public var assignLatency = Histogram()
    /// The WebSocket, from connect to the welcome frame (microseconds).
    public var upgradeLatency = Histogram()
    /// From the sender's send to the recipient's receipt (microseconds, wall clock: senders and recipients may be
    /// on different machines).
    public var messageLatency = Histogram()
    public var timeline: [TimelinePoint] = []
    /// Seconds from the first connect to the end of the hold.
    public var seconds: Double = 0
    public var watched: [WatchedProcess] = []

    public init() {}

    /// Adds another worker's report: counts and histograms add, timelines add second by second (p99: the larger).
    public mutating func merge(_ other: RunReport) {
        counters.merge(other.counters)
        assignLatency.merge(other.assignLatency)
        upgradeLatency.merge(other.upgradeLatency)
        messageLatency.merge(other.messageLatency)
        seconds = max(seconds, other.seconds)
        var bySecond: [Int: TimelinePoint] = [:]
        for point in timeline { bySecond[point.second] = point }
        for point in other.timeline {
            if var mine = bySecond[point.second] {
                mine.connections += point.connections
                mine.delivered += point.delivered
                mine.errors += point.errors
                mine.p99Micros = max(mine.p99Micros, point.p99Micros)
                bySecond[point.second] = mine
            } else {
                bySecond[point.second] = point
            }
        }
        timeline = bySecond.values.sorted { $0.second < $1.second }
        watched += other.watched
    }

    public func json() -> JSONValue {
        .object([
            ("counters", counters.json()),
            ("seconds", .number(String(seconds))),
            ("assign_latency_us", assignLatency.json()),
            ("upgrade_latency_us", upgradeLatency.json()),
            ("message_latency_us", messageLatency.json()),
            (
                "timeline",
                .array(
                    timeline.map {
                        .array([
                            .int(Int64($0.second)), .uint($0.connections), .uint($0.delivered), .uint($0.errors),
                            .uint($0.p99Micros),
                        ])
                    })
            ),
            (
                "watched",
                .array(
                    watched.map {
                        .object([
                            ("name", .string($0.name)), ("rss_before", .uint($0.residentBytesBefore)),
                            ("rss_after", .uint($0.residentBytesAfter)),
                            ("cpu_seconds", .number(String($0.cpuSeconds))),
                        ])
                    })
            ),
        ])
    }

    public init?(json: JSONValue) {
        guard let counters = json["counters"].flatMap(RunCounters.init(json:)),
            let assign = json["assign_latency_us"].flatMap(Histogram.init(json:)),
            let upgrade = json["upgrade_latency_us"].flatMap(Histogram.init(json:)),
            let message = json["message_latency_us"].flatMap(Histogram.init(json:)),
            let seconds = json["seconds"]?.doubleValue, let timeline = json["timeline"]?.arrayValue,
            let watched = json["watched"]?.arrayValue
        else { return nil }
        self.counters = counters
        assignLatency = assign
        upgradeLatency = upgrade
        messageLatency = message
        self.seconds = seconds
        for entry in timeline {
            guard let values = entry.arrayValue, values.count == 5, let second = values[0].int64Value,
                let connections = values[1].uint64Value, let delivered = values[2].uint64Value,
                let errors = values[3].uint64Value, let p99 = values[4].uint64Value
            else { return nil }
            self.timeline.append(
                TimelinePoint(
                    second: Int(second), connections: connections, delivered: delivered, errors: errors, p99Micros: p99)
            )
        }
        for entry in watched {
            guard let name = entry["name"]?.stringValue, let before = entry["rss_before"]?.uint64Value,
                let after = entry["rss_after"]?.uint64Value, let cpu = entry["cpu_seconds"]?.doubleValue
            else { return nil }
            self.watched.append(
                WatchedProcess(name: name, residentBytesBefore: before, residentBytesAfter: after, cpuSeconds: cpu))
        }
    }

    /// Every accepted message delivered exactly once, nothing refused or dropped, no errors.
    public var isClean: Bool {
        counters.lost == 0 && counters.duplicates == 0 && counters.refused == 0 && counters.errorTotal == 0
            && counters.dropped == 0 && counters.connected == counters.clients
    }

    // MARK: For people

    /// The summary in Markdown: what ran, the counts, the latency table, memory per connection.
    public func markdown(title: String, command: String) -> String {
        let c = counters
        var text = "## \(title)\n\n"
        text += "Command: `\(command)`\n\n"
        text +=
            "| clients | connected | held at end | sessions ended | reconnected | dropped | sent | accepted | delivered | lost | duplicated | late | refused | errors |\n"
        text += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        text += "| \(c.clients) | \(c.connected) | \(c.held) | \(c.sessionsEnded) | \(c.reconnected) | \(c.dropped) | "
        text += "\(c.sent) | \(c.accepted) | \(c.delivered) | "
        text += "\(c.lost) | \(c.duplicates) | \(c.late) | \(c.refused) | \(c.errorTotal) |\n\n"
        if !c.errors.isEmpty {
            text += "Errors by kind: "
            text += c.errors.sorted { $0.key < $1.key }.map { "`\($0.key)` \($0.value)" }.joined(separator: ", ")
            text += "\n\n"
        }
        let rate = seconds > 0 ? Double(c.delivered) / seconds : 0
        text += "Throughput: \(format(rate, digits: 0)) messages/s delivered over \(format(seconds, digits: 1)) s.\n\n"
        text += "| latency (ms) | count | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|\n"
        for (name, histogram) in [
            ("assignment GET", assignLatency), ("WebSocket upgrade to welcome", upgradeLatency),
            ("message, send to receipt", messageLatency),
        ] {
            text += "| \(name) | \(histogram.count) | "
            text += [50, 90, 99, 99.9].map { milliseconds(histogram.percentile($0)) }.joined(separator: " | ")
            text += " | \(milliseconds(histogram.maximum)) |\n"
        }
        if !watched.isEmpty {
            text += "\n| process | RSS before (MiB) | RSS after (MiB) | growth per held connection (KiB) | CPU (s) |\n"
            text += "|---|---|---|---|---|\n"
            for process in watched + Self.groups(of: watched) {
                let growth = Double(process.residentBytesAfter) - Double(process.residentBytesBefore)
                let perConnection = c.held > 0 ? growth / Double(c.held) / 1024 : 0
                text += "| \(process.name) | \(format(Double(process.residentBytesBefore) / 1_048_576, digits: 1)) | "
                text += "\(format(Double(process.residentBytesAfter) / 1_048_576, digits: 1)) | "
                text += "\(format(perConnection, digits: 2)) | \(format(process.cpuSeconds, digits: 1)) |\n"
            }
        }
        return text
    }

    /// Sums over the processes of one program that runs as several (`gateway`, `gateway-2`, …; `socket-1`, …): the
    /// program's memory per connection is the growth of all of them over the connections they hold together.
    static func groups(of watched: [WatchedProcess]) -> [WatchedProcess] {
        func program(_ name: String) -> String {
            guard let dash = name.lastIndex(of: "-"), name[name.index(after: dash)...].allSatisfy(\.isNumber),
                name.index(after: dash) != name.endIndex
            else { return name }
            return String(name[..<dash])
        }
        var order: [String] = []
        var sums: [String: (count: Int, process: WatchedProcess)] = [:]
        for process in watched {
            let name = program(process.name)
            if var sum = sums[name] {
                sum.count += 1
                sum.process.residentBytesBefore += process.residentBytesBefore
                sum.process.residentBytesAfter += process.residentBytesAfter
                sum.process.cpuSeconds += process.cpuSeconds
                sums[name] = sum
            } else {
                order.append(name)
                sums[name] = (1, process)
            }
        }
        return order.compactMap { name in
            guard var sum = sums[name], sum.count > 1 else { return nil }
            sum.process.name = "all \(sum.count) \(name) processes"
            return sum.process
        }
    }

    /// One progress line: connections, delivered/s, errors, p99.
    public static func progressLine(
        elapsed: Double, connections: UInt64, target: UInt64, ratePerSecond: Double, errors: UInt64, p99Micros: UInt64
    ) -> String {
        "[\(format(elapsed, digits: 0)) s] connections \(connections)/\(target)  messages \(format(ratePerSecond, digits: 0))/s  "
            + "errors \(errors)  p99 \(milliseconds(p99Micros)) ms"
    }
}

/// Microseconds as milliseconds with two decimals.
func milliseconds(_ micros: UInt64) -> String { format(Double(micros) / 1000, digits: 2) }

/// A fixed-point decimal without Foundation.
func format(_ value: Double, digits: Int) -> String {
    guard value.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = UInt64(scaled / scale)
    let fraction = UInt64(scaled - Double(whole) * scale)
    var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
    if digits > 0 {
        let digitsText = String(fraction)
        text += "." + String(repeating: "0", count: digits - digitsText.count) + digitsText
    }
    return text
}
