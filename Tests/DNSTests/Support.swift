// Helpers for the DNS tests: hex vectors, a message builder for hostile vectors, and a seeded PRNG.

import DNS

/// Bytes from a hex string; whitespace is ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8.filter { $0 != 0x20 && $0 != 0x0A })
    precondition(digits.count % 2 == 0)
    func value(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: preconditionFailure("not hex")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { value(digits[$0]) << 4 | value(digits[$0 + 1]) }
}

/// Builds messages byte by byte, for vectors no server would send.
struct Bytes {
    var bytes: [UInt8] = []

    static func header(
        id: UInt16 = 0x0001, flags: UInt16 = 0x8180, questions: UInt16 = 1, answers: UInt16 = 0,
        authority: UInt16 = 0, additional: UInt16 = 0
    ) -> Bytes {
        var result = Bytes()
        for value in [id, flags, questions, answers, authority, additional] { result.u16(value) }
        return result
    }

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(value & 0xFFFF))
    }

    /// An uncompressed name from dotted text.
    mutating func name(_ text: String) {
        for label in text.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes.append(contentsOf: label.utf8)
        }
        bytes.append(0)
    }

    mutating func raw(_ values: [UInt8]) { bytes.append(contentsOf: values) }

    /// Type and class IN of a question.
    mutating func question(_ text: String, type: UInt16 = 1) {
        name(text)
        u16(type)
        u16(1)
    }

    /// The fixed part of a record after its name, then `rdata`; `length` overrides RDLENGTH.
    mutating func record(type: UInt16, ttl: UInt32 = 60, rdata: [UInt8], length: UInt16? = nil) {
        u16(type)
        u16(1)
        u32(ttl)
        u16(length ?? UInt16(rdata.count))
        raw(rdata)
    }

    var count: Int { bytes.count }
}

func name(_ text: String) -> Name { try! Name(parsing: text) }

func v4(_ text: String) -> IPAddress { IPAddress(parsing: text)! }
