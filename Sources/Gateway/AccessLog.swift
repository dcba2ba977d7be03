// The access log: one JSON line per request and per closed tunnel, buffered per worker, written by its own thread.
import HTTP1
import Synchronization
import Sys

/// Where the lines go. Called only on the writer thread, never on a loop.
public protocol AccessLogSink: AnyObject, Sendable {
    /// Writes `bytes` (whole lines) completely.
    func write(_ bytes: UnsafeRawBufferPointer)
    /// Opens the file again at its path (after a rotation moved it away: `SIGUSR1`).
    func reopen()
}

/// Standard output (`access_log stdout`).
public final class StandardOutputSink: AccessLogSink {
    public init() {}

    public func write(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            guard
                case .count(let count) = try? FileDescriptor(1).write(
                    UnsafeRawBufferPointer(rebasing: bytes[offset...])),
                count > 0
            else { return }
            offset += count
        }
    }

    public func reopen() {}
}

/// Takes the workers' filled buffers and writes them on its own thread, so a slow disk never stalls a loop.
///
/// A worker appends lines to its own buffer (no lock, no allocation while it has room) and hands it over when it
/// holds `flushSize` bytes or at the worker's next sweep (100 ms): one lock and one eventfd write per hand-over,
/// not per request. Buffers come back to be reused.
public final class AccessLogWriter: Sendable {
    static let bufferCapacity = 64 * 1024
    static let flushSize = 32 * 1024

    private struct State {
        var full: [[UInt8]] = []
        var spare: [[UInt8]] = []
        var reopen = false
        var stopping = false
    }

    private let state = Mutex(State())
    private let wake: Latch
    private let sink: any AccessLogSink
    private let thread = Mutex<Thread?>(nil)

    public init(sink: any AccessLogSink) throws(Errno) {
        self.sink = sink
        wake = try Latch()
        let started = try Thread { [self] in run() }
        thread.withLock { $0 = started }
    }

    /// Hands `buffer` over to be written; `buffer` becomes an empty one with capacity (a returned spare).
    func submit(_ buffer: inout [UInt8]) {
        guard !buffer.isEmpty else { return }
        var replacement = state.withLock { state -> [UInt8]? in
            state.spare.popLast()
        }
        if replacement == nil {
            var fresh: [UInt8] = []
            fresh.reserveCapacity(Self.bufferCapacity)
            replacement = fresh
        }
        var filled = replacement!
        swap(&filled, &buffer)
        state.withLock { $0.full.append(filled) }
        wake.signal()
    }

    /// Reopens the file before the next write (`SIGUSR1`). From any thread.
    public func reopen() {
        state.withLock { $0.reopen = true }
        wake.signal()
    }

    /// Writes what was handed over, then ends the thread.
    public func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
        let running = thread.withLock { thread -> Thread? in
            defer { thread = nil }
            return thread
        }
        running?.join()
    }

    private func run() {
        while true {
            wake.wait()
            let (batch, reopen, stopping) = state.withLock { state in
                defer {
                    state.full = []
                    state.reopen = false
                }
                return (state.full, state.reopen, state.stopping)
            }
            if reopen { sink.reopen() }
            var emptied: [[UInt8]] = []
            for var buffer in batch {
                buffer.withUnsafeBytes { sink.write($0) }
                buffer.removeAll(keepingCapacity: true)
                emptied.append(buffer)
            }
            if !emptied.isEmpty {
                state.withLock { state in
                    for buffer in emptied where state.spare.count < 16 { state.spare.append(buffer) }
                }
            }
            if stopping { return }
        }
    }
}

/// What a tunnel keeps for its access log line (only when the log is on).
struct TunnelLogFields {
    let route: String
    let upstream: SocketAddress?
    let startedAt: UInt64
    var bytesIn: UInt64
    var bytesOut: UInt64
}

/// Why a tunnel ended and which side ended it, for its access log line.
enum TunnelEnd: Sendable {
    enum Reason: String, Sendable {
        /// Both sides closed (or one closed and the other followed).
        case closed
        /// A connection failed (reset, or another socket error).
        case error
        case idleTimeout = "idle_timeout"
        case drain
        /// A side stopped reading and its unsent bytes reached the loop's bound.
        case unsentLimit = "unsent_limit"
    }

    enum Initiator: String, Sendable {
        case client
        case upstream
        case gateway
    }
}

/// The wall clock as the access log writes it, without a system call per line: the loop's monotonic clock plus
/// an offset taken again at every sweep, and the text of the last millisecond kept for the lines within it.
struct LogClock {
    private var offset: Int64 = 0
    private var lastMillisecond: Int64 = -1
    private var text: [UInt8] = []

    init() {
        text.reserveCapacity(48)
    }

    /// Takes the offset between the wall clock and `monotonic` (ns) again (the sweep calls this).
    mutating func synchronize(monotonic: UInt64) {
        offset = Int64(wallClockSeconds() * 1000) - Int64(monotonic / 1_000_000)
    }

    /// Moves the clock to `monotonic` (ns), formatting the text again when the millisecond changed.
    mutating func advance(monotonic: UInt64) {
        let millisecond = Int64(monotonic / 1_000_000) + offset
        guard millisecond != lastMillisecond else { return }
        lastMillisecond = millisecond
        text.removeAll(keepingCapacity: true)
        AccessLogLine.appendTime(into: &text, milliseconds: millisecond)
    }

    func append(into out: inout [UInt8]) { out.append(contentsOf: text) }
}

/// Formats access log lines into a byte buffer: no `String`, no Foundation, no allocation while the buffer has room.
enum AccessLogLine {
    static func appendRequest(
        into out: inout [UInt8], time: borrowing LogClock, peer: SocketAddress, request: borrowing HeadParser,
        context: borrowing RequestContext, route: borrowing String, durationNanoseconds: UInt64
    ) {
        time.append(into: &out)
        appendStatic(",\"type\":\"request\",\"client\":\"", into: &out)
        appendAddress(peer, into: &out)
        appendStatic("\",\"method\":\"", into: &out)
        if request.isComplete {
            request.methodBytes.withUnsafeBytes { appendEscaped($0, into: &out) }
            appendStatic("\",\"path\":\"", into: &out)
            request.target.withUnsafeBytes { appendEscaped($0, into: &out) }
        } else {
            appendStatic("-\",\"path\":\"-", into: &out)
        }
        appendStatic("\",\"route\":\"", into: &out)
        appendEscaped(route.utf8, into: &out)
        appendStatic("\",\"status\":", into: &out)
        appendNumber(UInt64(max(context.status, 0)), into: &out)
        appendStatic(",\"upstream\":\"", into: &out)
        if let address = context.upstreamAddress { appendAddress(address, into: &out) } else { out.append(0x2D) }
        appendStatic("\",\"bytes_in\":", into: &out)
        appendNumber(context.bytesIn, into: &out)
        appendStatic(",\"bytes_out\":", into: &out)
        appendNumber(context.bytesOut, into: &out)
        appendStatic(",\"duration\":", into: &out)
        appendSeconds(durationNanoseconds, into: &out)
        if let id = context.requestID {
            appendStatic(",\"request_id\":\"", into: &out)
            id.withUnsafeBytes { appendEscaped($0, into: &out) }
            out.append(0x22)
        }
        appendStatic("}\n", into: &out)
    }

    static func appendTunnel(
        into out: inout [UInt8], time: borrowing LogClock, peer: SocketAddress, fields: borrowing TunnelLogFields,
        durationNanoseconds: UInt64, reason: TunnelEnd.Reason, initiator: TunnelEnd.Initiator
    ) {
        time.append(into: &out)
        appendStatic(",\"type\":\"tunnel\",\"client\":\"", into: &out)
        appendAddress(peer, into: &out)
        appendStatic("\",\"route\":\"", into: &out)
        appendEscaped(fields.route.utf8, into: &out)
        appendStatic("\",\"status\":101,\"upstream\":\"", into: &out)
        if let address = fields.upstream { appendAddress(address, into: &out) } else { out.append(0x2D) }
        appendStatic("\",\"bytes_in\":", into: &out)
        appendNumber(fields.bytesIn, into: &out)
        appendStatic(",\"bytes_out\":", into: &out)
        appendNumber(fields.bytesOut, into: &out)
        appendStatic(",\"duration\":", into: &out)
        appendSeconds(durationNanoseconds, into: &out)
        appendStatic(",\"close_reason\":\"", into: &out)
        appendEscaped(reason.rawValue.utf8, into: &out)
        appendStatic("\",\"initiator\":\"", into: &out)
        appendEscaped(initiator.rawValue.utf8, into: &out)
        appendStatic("\"}\n", into: &out)
    }

    /// `{"time":"2026-12-01T14:00:00.123Z"` (UTC, milliseconds).
    static func appendTime(into out: inout [UInt8], milliseconds: Int64) {
        let days = milliseconds / 86_400_000
        let ofDay = milliseconds % 86_400_000
        // Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        appendStatic("{\"time\":\"", into: &out)
        appendPadded(year, width: 4, into: &out)
        out.append(0x2D)
        appendPadded(month, width: 2, into: &out)
        out.append(0x2D)
        appendPadded(day, width: 2, into: &out)
        out.append(0x54)
        appendPadded(ofDay / 3_600_000, width: 2, into: &out)
        out.append(0x3A)
        appendPadded(ofDay / 60_000 % 60, width: 2, into: &out)
        out.append(0x3A)
        appendPadded(ofDay / 1000 % 60, width: 2, into: &out)
        out.append(0x2E)
        appendPadded(ofDay % 1000, width: 3, into: &out)
        appendStatic("Z\"", into: &out)
    }

    /// Seconds with microseconds: `0.001234`.
    static func appendSeconds(_ nanoseconds: UInt64, into out: inout [UInt8]) {
        appendNumber(nanoseconds / 1_000_000_000, into: &out)
        out.append(0x2E)
        appendPadded(Int64(nanoseconds % 1_000_000_000 / 1000), width: 6, into: &out)
    }

    static func appendAddress(_ address: SocketAddress, into out: inout [UInt8]) {
        switch address {
        case .v4(let host, let port):
            // "255.255.255.255:65535" at most: built on the stack, appended in one copy.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { text in
                var count = 0
                func put(_ value: UInt32) {
                    if value >= 100 {
                        text[count] = 0x30 + UInt8(value / 100)
                        count += 1
                    }
                    if value >= 10 {
                        text[count] = 0x30 + UInt8(value / 10 % 10)
                        count += 1
                    }
                    text[count] = 0x30 + UInt8(value % 10)
                    count += 1
                }
                put(host >> 24)
                text[count] = 0x2E
                count += 1
                put((host >> 16) & 0xff)
                text[count] = 0x2E
                count += 1
                put((host >> 8) & 0xff)
                text[count] = 0x2E
                count += 1
                put(host & 0xff)
                text[count] = 0x3A
                count += 1
                var scale: UInt32 = 1
                while UInt32(port) / scale >= 10 { scale *= 10 }
                var rest = UInt32(port)
                while scale > 0 {
                    text[count] = 0x30 + UInt8(rest / scale)
                    rest %= scale
                    scale /= 10
                    count += 1
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: text[0..<count]))
            }
        case .v6(_, _, let port, _):
            out.append(0x5B)
            out.append(contentsOf: address.hostText.utf8)
            out.append(0x5D)
            out.append(0x3A)
            appendNumber(UInt64(port), into: &out)
        }
    }

    /// `appendEscaped` with one copy when nothing needs escaping (the usual case).
    static func appendEscaped(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) {
            out.append(contentsOf: bytes)
        } else {
            appendEscaped(bytes, escapingInto: &out)
        }
    }

    /// A JSON string body: `"` and `\` escaped, control and non-ASCII bytes as `\u00XX` (the bytes are not
    /// trusted to be UTF-8).
    static func appendEscaped(_ bytes: some Sequence<UInt8>, into out: inout [UInt8]) {
        appendEscaped(bytes, escapingInto: &out)
    }

    private static func appendEscaped(_ bytes: some Sequence<UInt8>, escapingInto out: inout [UInt8]) {
        let hex: StaticString = "0123456789abcdef"
        for byte in bytes {
            switch byte {
            case 0x22, 0x5C:
                out.append(0x5C)
                out.append(byte)
            case 0x20..<0x7F:
                out.append(byte)
            default:
                appendStatic("\\u00", into: &out)
                out.append(hex.utf8Start[Int(byte >> 4)])
                out.append(hex.utf8Start[Int(byte & 0xF)])
            }
        }
    }

    /// A decimal number, formatted on the stack and appended in one copy.
    static func appendNumber(_ value: UInt64, into out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = value
            var start = 20
            repeat {
                start -= 1
                digits[start] = 0x30 + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start..<20]))
        }
    }

    private static func appendPadded(_ value: Int64, width: Int, into out: inout [UInt8]) {
        var divisor: Int64 = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = max(value, 0)
        if rest >= divisor * 10 {
            appendNumber(UInt64(rest), into: &out)
            return
        }
        while divisor > 0 {
            out.append(0x30 + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    private static func appendStatic(_ text: StaticString, into out: inout [UInt8]) {
        HeadSerializer.appendStatic(text, into: &out)
    }
}
