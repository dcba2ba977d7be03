// Frame boundaries of a relayed stream: every header form, split at every byte, and stopping at the first boundary.
import TestRandom
import Testing
import WebSocket

/// A frame: FIN + opcode, payload, optional mask (the payload is not masked here: only lengths matter).
private func frame(_ opcode: UInt8, payload: Int, masked: Bool = false) -> [UInt8] {
    var out: [UInt8] = [0x80 | opcode]
    let maskBit: UInt8 = masked ? 0x80 : 0
    if payload < 126 {
        out.append(maskBit | UInt8(payload))
    } else if payload <= 0xFFFF {
        out.append(maskBit | 126)
        out += [UInt8(payload >> 8), UInt8(payload & 0xFF)]
    } else {
        out.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8((UInt64(payload) >> UInt64(shift)) & 0xFF))
        }
    }
    if masked { out += [1, 2, 3, 4] }
    out += [UInt8](repeating: 0x61, count: payload)
    return out
}

struct FrameBoundariesTests {
    /// Frames of every header form, back to back: lengths 0, 125 (7-bit), 126 and 65535 (16-bit), 65536 (64-bit),
    /// masked and not.
    static let frames: [[UInt8]] = [
        frame(1, payload: 0), frame(2, payload: 125), frame(2, payload: 126, masked: true), frame(9, payload: 3),
        frame(2, payload: 65535), frame(2, payload: 65536, masked: true), frame(8, payload: 2, masked: true),
    ]

    /// Offsets where a frame ends in the concatenation.
    static var boundaries: [Int] {
        var ends: [Int] = []
        var total = 0
        for bytes in frames {
            total += bytes.count
            ends.append(total)
        }
        return ends
    }

    @Test(arguments: [1, 2, 3, 7, 100, 4096, 1 << 20])
    func boundaryAfterEveryFrameWhateverTheSplit(step: Int) {
        let stream = Self.frames.flatMap { $0 }
        var tracker = FrameBoundaries()
        var seen: [Int] = []
        var offset = 0
        while offset < stream.count {
            let end = min(stream.count, offset + step)
            // Byte by byte inside each piece, to record every boundary it crosses.
            for index in offset..<end {
                _ = stream[index...index].withUnsafeBytes { tracker.advance($0) }
                if tracker.isAtBoundary { seen.append(index + 1) }
            }
            offset = end
        }
        #expect(seen == Self.boundaries)
    }

    @Test func stopsAtTheFirstBoundaryInsideAPiece() {
        let stream = Self.frames.flatMap { $0 }
        var tracker = FrameBoundaries()
        // Start in the middle of the second frame.
        _ = stream[0..<10].withUnsafeBytes { tracker.advance($0) }
        #expect(!tracker.isAtBoundary)
        let cut = stream[10...].withUnsafeBytes { tracker.advance($0, stopAtBoundary: true) }
        #expect(cut.map { $0 + 10 } == Self.boundaries[1])
        #expect(tracker.isAtBoundary)
        // Already between frames: the boundary is at offset 0.
        let again = stream[Self.boundaries[1]...].withUnsafeBytes { tracker.advance($0, stopAtBoundary: true) }
        #expect(again == 0)
    }

    @Test func noBoundaryInsideOneLongPayload() {
        let bytes = frame(2, payload: 70000)
        var tracker = FrameBoundaries()
        let cut = bytes[0..<50000].withUnsafeBytes { tracker.advance($0, stopAtBoundary: true) }
        #expect(cut == 0)  // it starts between frames
        var tracker2 = FrameBoundaries()
        _ = bytes[0..<1].withUnsafeBytes { tracker2.advance($0) }
        #expect(bytes[1..<50000].withUnsafeBytes { tracker2.advance($0, stopAtBoundary: true) } == nil)
        #expect(bytes[50000...].withUnsafeBytes { tracker2.advance($0, stopAtBoundary: true) } == bytes.count - 50000)
    }

    /// Random streams (every header form, masked or not, Close frames among them, payloads full of 0x88 bytes) fed
    /// in random pieces, some stopping at their first boundary: a piece ends between frames exactly when a frame
    /// ends there, a stop is at the first frame end in the piece, and `closeSeen` turns true exactly when the first
    /// byte of the first Close frame has been fed, whether the header arrived whole (read at once) or split across
    /// pieces (byte by byte).
    @Test(arguments: 0..<40)
    func randomStreamsInRandomPieces(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var stream: [UInt8] = []
        var ends: [Int] = []
        var firstClose: Int?
        for _ in 0..<(1 + random.below(12)) {
            let opcode: UInt8 = random.pick([0, 1, 2, 8, 9, 10])
            let payload = random.pick([0, 1, 2, 5, 125, 126, 127, 300, 65535, 65536, 70000])
            if opcode == 8 && firstClose == nil { firstClose = stream.count }
            var bytes = frame(opcode, payload: payload, masked: random.chance(50))
            // Payload bytes that look like a Close header must not count.
            for index in stride(from: bytes.count - payload, to: bytes.count, by: 3) { bytes[index] = 0x88 }
            stream += bytes
            ends.append(stream.count)
        }
        let boundaries = [0] + ends
        var tracker = FrameBoundaries()
        var offset = 0
        while offset < stream.count {
            let end = min(stream.count, offset + 1 + random.below(random.chance(50) ? 20 : 100_000))
            if random.chance(50) {
                // Stop at the first boundary at or after `offset`, when it is in the piece; then the rest.
                let cut = stream[offset..<end].withUnsafeBytes { tracker.advance($0, stopAtBoundary: true) }
                let first = boundaries.first { $0 >= offset }.flatMap { $0 <= end ? $0 : nil }
                #expect(cut.map { offset + $0 } == first, "seed \(seed) at \(offset)")
                let fed = cut.map { offset + $0 } ?? end
                #expect(tracker.closeSeen == (firstClose.map { $0 < fed } ?? false), "seed \(seed) at \(fed)")
                if fed < end { _ = stream[fed..<end].withUnsafeBytes { tracker.advance($0) } }
            } else {
                _ = stream[offset..<end].withUnsafeBytes { tracker.advance($0) }
            }
            #expect(tracker.isAtBoundary == boundaries.contains(end), "seed \(seed) at \(end)")
            #expect(tracker.closeSeen == (firstClose.map { $0 < end } ?? false), "seed \(seed) at \(end)")
            offset = end
        }
        #expect(tracker.closeSeen == (firstClose != nil))
    }
}
