// A PCRE2 regular expression compiled once at load, and the per-thread `Matcher` scratch that runs it.
import CPCRE2

/// Why a route regex did not compile: PCRE2's own message and the byte offset in the pattern.
public struct PatternError: Error, Equatable, Sendable {
    public let message: String
    public let offset: Int

    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }
}

/// A compiled PCRE2 pattern (8-bit code units, no UTF mode: paths are matched as bytes).
///
/// JIT-compiled with `PCRE2_JIT_COMPLETE` when the library supports it. Sharing across threads is safe: PCRE2
/// documents a compiled pattern as read-only after `pcre2_jit_compile`, and all per-match state lives in a
/// `Matcher` (match data), which is never shared.
public final class Pattern: @unchecked Sendable {
    // Invariant: `code` is a valid pcre2_code_8 owned by this object, never mutated after init, freed in deinit.
    let code: OpaquePointer
    /// Whether PCRE2 JIT-compiled the pattern (matching then uses `pcre2_jit_match_8`).
    public let isJITCompiled: Bool
    /// The pattern text as written in the configuration.
    public let source: String
    /// Number of capture groups, not counting group 0 (the whole match).
    public let captureCount: Int
    /// Named capture groups: name → group number.
    public let captureNames: [String: Int]

    /// Compiles `source`; on failure returns PCRE2's message and the offset of the offending byte.
    public init(compiling source: String) throws(PatternError) {
        var errorCode: Int32 = 0
        var errorOffset = 0
        let compiled: OpaquePointer? = source.utf8CString.withUnsafeBufferPointer { text in
            text.withMemoryRebound(to: UInt8.self) { bytes in
                pcre2_compile_8(bytes.baseAddress, bytes.count - 1, 0, &errorCode, &errorOffset, nil)
            }
        }
        guard let compiled else {
            throw PatternError(message: Pattern.errorMessage(errorCode), offset: errorOffset)
        }
        code = compiled
        self.source = source
        isJITCompiled = pcre2_jit_compile_8(compiled, PCRE2_JIT_COMPLETE) == 0

        var count: UInt32 = 0
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_CAPTURECOUNT), &count)
        captureCount = Int(count)

        var nameCount: UInt32 = 0
        var entrySize: UInt32 = 0
        var table: UnsafePointer<UInt8>? = nil
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMECOUNT), &nameCount)
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMEENTRYSIZE), &entrySize)
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMETABLE), &table)
        var names: [String: Int] = [:]
        if let table {
            // Each entry: group number as 2 big-endian bytes, then the name, NUL-terminated, padded to entrySize.
            for entry in 0..<Int(nameCount) {
                let start = table + entry * Int(entrySize)
                let group = Int(start[0]) << 8 | Int(start[1])
                names[String(cString: start + 2)] = group
            }
        }
        captureNames = names
    }

    deinit { pcre2_code_free_8(code) }

    static func errorMessage(_ code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        return length > 0 ? String(decoding: buffer[0..<Int(length)], as: UTF8.self) : "PCRE2 error \(code)"
    }
}

/// Per-thread scratch for regex matching: one PCRE2 match data block, reused for every match.
///
/// Not thread-safe (PCRE2 match data is not); each event loop owns one. Capture spans of the last successful
/// match stay readable until the next match.
public final class Matcher {
    // Invariant: `matchData` is a valid pcre2_match_data_8 with `pairCapacity` ovector pairs, owned by this object.
    private var matchData: OpaquePointer
    private var pairCapacity: Int
    private var ovector: UnsafeMutablePointer<Int>
    private var setPairs = 0
    private let unset = rtc_pcre2_unset()

    /// A matcher able to hold `captureCapacity` groups (plus group 0) without growing.
    public init(captureCapacity: Int = 9) {
        pairCapacity = max(captureCapacity, 0) + 1
        matchData = pcre2_match_data_create_8(UInt32(pairCapacity), nil)!
        ovector = pcre2_get_ovector_pointer_8(matchData)
    }

    /// A matcher sized for every regex in `table`, so matching never grows it.
    public convenience init(for table: RouteTable) {
        self.init(captureCapacity: table.maximumCaptureCount)
    }

    deinit { pcre2_match_data_free_8(matchData) }

    /// Runs `pattern` over `subject`; true when it matched. Capture spans are then readable with `span(_:)`.
    public func match(_ pattern: Pattern, _ subject: UnsafeRawBufferPointer) -> Bool {
        if pattern.captureCount + 1 > pairCapacity {
            // Only after a reload brought a regex with more groups than this matcher was sized for.
            pcre2_match_data_free_8(matchData)
            pairCapacity = pattern.captureCount + 1
            matchData = pcre2_match_data_create_8(UInt32(pairCapacity), nil)!
            ovector = pcre2_get_ovector_pointer_8(matchData)
        }
        let base = subject.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(emptySubject)
        let result =
            pattern.isJITCompiled
            ? pcre2_jit_match_8(pattern.code, base, subject.count, 0, 0, matchData, nil)
            : pcre2_match_8(pattern.code, base, subject.count, 0, 0, matchData, nil)
        setPairs = result > 0 ? Int(result) : 0
        return result > 0
    }

    /// Forgets the last match (used when a non-regex route matched, so no stale span is read).
    func reset() { setPairs = 0 }

    /// The byte range of capture group `index` in the last matched subject, nil when the group did not take part.
    public func span(_ index: Int) -> Range<Int>? {
        guard index >= 0 && index < setPairs else { return nil }
        let start = ovector[2 * index]
        let end = ovector[2 * index + 1]
        guard start != unset && end != unset && start <= end else { return nil }
        return start..<end
    }
}

@available(*, unavailable)
extension Matcher: Sendable {}

// PCRE2 needs a non-null subject pointer even for an empty subject; this byte is never read.
nonisolated(unsafe) private let emptySubject: UnsafeMutablePointer<UInt8> = {
    let pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    pointer.initialize(to: 0)
    return pointer
}()
