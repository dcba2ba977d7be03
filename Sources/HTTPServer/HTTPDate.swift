// The `Date` header line in IMF-fixdate form (RFC 9110 §5.6.7), formatted without Foundation into fixed bytes.

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n` for one second, rewritten in place when the second changes.
struct DateLine {
    static let count = 37
    // 37 bytes inline: a tuple keeps the line out of the heap.
    var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
    private(set) var second: Int64 = -1

    /// Reformats the line when `epochSeconds` differs from the last one.
    mutating func update(epochSeconds: Int64) {
        guard epochSeconds != second else { return }
        second = epochSeconds
        let days = epochSeconds >= 0 ? epochSeconds / 86_400 : (epochSeconds - 86_399) / 86_400
        let secondOfDay = Int(epochSeconds - days * 86_400)
        let (year, month, day) = DateLine.civil(days: days)
        // 1970-01-01 was a Thursday.
        let weekday = Int(((days % 7) + 11) % 7)
        let names: StaticString = "SunMonTueWedThuFriSat"
        let months: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
        withUnsafeMutableBytes(of: &bytes) { out in
            var i = 0
            func put(_ byte: UInt8) {
                out[i] = byte
                i += 1
            }
            func two(_ value: Int) {
                put(UInt8(0x30 + value / 10))
                put(UInt8(0x30 + value % 10))
            }
            for byte in "Date: ".utf8 { put(byte) }
            for k in 0..<3 { put(names.utf8Start[weekday * 3 + k]) }
            put(UInt8(ascii: ","))
            put(0x20)
            two(day)
            put(0x20)
            for k in 0..<3 { put(months.utf8Start[(month - 1) * 3 + k]) }
            put(0x20)
            let clamped = max(0, min(9999, Int(year)))
            two(clamped / 100)
            two(clamped % 100)
            put(0x20)
            two(secondOfDay / 3600)
            put(UInt8(ascii: ":"))
            two(secondOfDay / 60 % 60)
            put(UInt8(ascii: ":"))
            two(secondOfDay % 60)
            for byte in " GMT\r\n".utf8 { put(byte) }
        }
    }

    /// Proleptic Gregorian (year, month 1...12, day 1...31) of a day count since 1970-01-01 (H. Hinnant's
    /// days_from_civil inverse).
    static func civil(days: Int64) -> (Int64, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The line as text.
    var text: String {
        withUnsafeBytes(of: bytes) { String(decoding: $0[0..<DateLine.count], as: UTF8.self) }
    }
}

/// HTTP dates (RFC 9110 §5.6.7).
public enum HTTPDate {
    /// IMF-fixdate of a time in seconds since the Unix epoch, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func string(epochSeconds: Int64) -> String {
        var line = DateLine()
        line.update(epochSeconds: epochSeconds)
        // Without "Date: " and CRLF (counted in bytes: "\r\n" is one Character).
        return String(decoding: Array(line.text.utf8).dropFirst(6).dropLast(2), as: UTF8.self)
    }
}
