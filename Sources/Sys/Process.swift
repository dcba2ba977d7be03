// Clocks, randomness, open-file limits, process figures from /proc, and the calling thread's identity.
import CLinux
import Glibc

/// CLOCK_MONOTONIC in nanoseconds.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

/// Whole nanoseconds in `duration`, as the monotonic clock counts them; 0 for negative durations, `UInt64.max`
/// past it (timeouts and deadlines everywhere use this one conversion).
public func nanoseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
    return overflow ? .max : whole &+ UInt64(attoseconds / 1_000_000_000)
}

/// CLOCK_REALTIME in seconds since the Unix epoch, with fractions.
public func wallClockSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Fills `buffer` with random bytes from the kernel (the standard library's generator calls getrandom(2);
/// getrandom itself is not exported without _GNU_SOURCE).
public func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
    var generator = SystemRandomNumberGenerator()
    var offset = 0
    while offset < buffer.count {
        let value = generator.next()
        let count = min(8, buffer.count - offset)
        withUnsafeBytes(of: value) {
            buffer.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: count)
        }
        offset += count
    }
}

/// A random 64-bit value from getrandom(2).
public func randomUInt64() -> UInt64 {
    var value: UInt64 = 0
    withUnsafeMutableBytes(of: &value) { fillRandom($0) }
    return value
}

/// The open-file limit (RLIMIT_NOFILE).
public func openFileLimit() throws(Errno) -> (soft: UInt64, hard: UInt64) {
    var limit = rlimit()
    _ = try checked { getrlimit(RLIMIT_NOFILE_VALUE, &limit) }
    return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
}

/// Sets the soft open-file limit (tests lower it to provoke EMFILE).
public func setOpenFileSoftLimit(_ soft: UInt64) throws(Errno) {
    var limit = rlimit()
    _ = try checked { getrlimit(RLIMIT_NOFILE_VALUE, &limit) }
    limit.rlim_cur = rlim_t(soft)
    _ = try checked { setrlimit(RLIMIT_NOFILE_VALUE, &limit) }
}

/// Raises the soft open-file limit to the hard limit (what a server does at start); returns the new limits.
@discardableResult
public func raiseOpenFileLimit() throws(Errno) -> (soft: UInt64, hard: UInt64) {
    let (_, hard) = try openFileLimit()
    try setOpenFileSoftLimit(hard)
    return try openFileLimit()
}

private var RLIMIT_NOFILE_VALUE: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }

/// getpid(2).
public func processID() -> Int32 { getpid() }

/// exit(3): ends the process with `code` (for programs, which may not import the C library themselves).
public func exitProcess(_ code: Int32) -> Never { exit(code) }

/// getenv(3): the value of environment variable `name`, or nil.
public func environmentValue(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

/// An identifier of the calling thread (`pthread_self`), unique among live threads.
public func threadID() -> UInt { UInt(pthread_self()) }

/// Figures about this process for metrics, read from /proc with raw open/read.
public struct ProcessFigures: Sendable, Equatable {
    /// User + system CPU time in seconds (/proc/self/stat fields 14 and 15).
    public var cpuSeconds: Double
    /// Resident set size in bytes (/proc/self/statm field 2 × page size).
    public var residentBytes: UInt64
    /// Entries in /proc/self/fd.
    public var openFileDescriptors: Int
    /// Process start time in seconds since the Unix epoch (/proc/self/stat field 22 + boot time).
    public var startTimeSeconds: Double

    /// Reads the current figures; fields that cannot be read are 0.
    public static func current() -> ProcessFigures {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        var figures = ProcessFigures(cpuSeconds: 0, residentBytes: 0, openFileDescriptors: 0, startTimeSeconds: 0)
        if let stat = readSmallFile("/proc/self/stat"),
            let close = stat.lastIndex(of: UInt8(ascii: ")"))
        {
            // Fields after the command name (which may contain spaces), starting at field 3.
            let fields = stat[(close + 2)...].split(separator: UInt8(ascii: " "))
            func field(_ number: Int) -> Double {
                let index = number - 3
                guard index < fields.count, let value = UInt64(String(decoding: fields[index], as: UTF8.self))
                else { return 0 }
                return Double(value)
            }
            figures.cpuSeconds = (field(14) + field(15)) / ticks
            figures.startTimeSeconds = bootTimeSeconds() + field(22) / ticks
        }
        if let statm = readSmallFile("/proc/self/statm") {
            let fields = statm.split(separator: UInt8(ascii: " "))
            if fields.count > 1, let pages = UInt64(String(decoding: fields[1], as: UTF8.self)) {
                figures.residentBytes = pages * pageSize
            }
        }
        figures.openFileDescriptors = countDirectoryEntries("/proc/self/fd")
        return figures
    }

    static func bootTimeSeconds() -> Double {
        guard let stat = readSmallFile("/proc/stat") else { return 0 }
        for line in stat.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("btime ".utf8)) {
            return Double(String(decoding: line.dropFirst(6), as: UTF8.self)) ?? 0
        }
        return 0
    }
}

/// Reads a file of at most 64 KiB with open/read (for /proc files, whose size is reported as 0).
public func readSmallFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { _ = Glibc.close(fd) }
    var bytes = [UInt8](repeating: 0, count: 65536)
    var total = 0
    while total < bytes.count {
        let result = bytes.withUnsafeMutableBytes { raw in
            retryingEINTR { Glibc.read(fd, raw.baseAddress! + total, raw.count - total) }
        }
        if result <= 0 { break }
        total += result
    }
    bytes.removeSubrange(total...)
    return bytes
}

func countDirectoryEntries(_ path: String) -> Int {
    guard let directory = opendir(path) else { return 0 }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        let name = entry.pointee.d_name.0
        if name != CChar(UInt8(ascii: ".")) { count += 1 }
    }
    // The directory stream itself holds one descriptor while counting.
    return max(count - 1, 0)
}
