// FrameWriter: RFC 6455 §5.7's frames byte for byte, every length form, masking, close payloads, and frames
// written by one role read back by the other.
import Testing
import WebSocket

struct FrameWriterTests {
    private func written(
        _ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, maskKey: UInt32? = nil
    ) -> [UInt8] {
        var out: [UInt8] = [0xAB]  // what was already in the buffer stays
        payload.withUnsafeBytes {
            FrameWriter.append(opcode: opcode, payload: $0, fin: fin, maskKey: maskKey, to: &out)
        }
        #expect(out.first == 0xAB)
        return Array(out.dropFirst())
    }

    @Test func rfcExamples() {
        let hello = Array("Hello".utf8)
        #expect(written(Opcode.text, hello) == [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        #expect(
            written(Opcode.text, hello, maskKey: exampleKey)
                == [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        #expect(written(Opcode.text, Array("Hel".utf8), fin: false) == [0x01, 0x03, 0x48, 0x65, 0x6C])
        #expect(written(Opcode.continuation, Array("lo".utf8)) == [0x80, 0x02, 0x6C, 0x6F])
        #expect(written(Opcode.ping, hello) == [0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        #expect(
            written(Opcode.pong, hello, maskKey: exampleKey)
                == [0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        let block = [UInt8](repeating: 0x5A, count: 256)
        #expect(written(Opcode.binary, block) == [0x82, 0x7E, 0x01, 0x00] + block)
        let big = [UInt8](repeating: 0x5A, count: 65536)
        #expect(written(Opcode.binary, big) == [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0] + big)
    }

    @Test(arguments: [
        (0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 40, 10),
    ])
    func headerSize(_ length: Int, _ size: Int) {
        withUnsafeTemporaryAllocation(byteCount: 14, alignment: 8) { buffer in
            let base = buffer.baseAddress!
            #expect(FrameWriter.writeHeader(into: base, fin: true, opcode: 2, length: length, maskKey: nil) == size)
            var header = FrameHeader.decode(UnsafeRawPointer(base))
            #expect(
                header
                    == FrameHeader(
                        fin: true, reserved: 0, opcode: 2, masked: false, length: UInt64(length),
                        maskKey: 0, size: size))
            #expect(
                FrameWriter.writeHeader(into: base, fin: false, opcode: 9, length: length, maskKey: 0xDEAD_BEEF)
                    == size + 4)
            header = FrameHeader.decode(UnsafeRawPointer(base))
            #expect(
                header
                    == FrameHeader(
                        fin: false, reserved: 0, opcode: 9, masked: true, length: UInt64(length),
                        maskKey: 0xDEAD_BEEF, size: size + 4))
        }
    }

    /// A client's masked frames read by a server, a server's unmasked ones by a client: every length form.
    @Test func roundTrip() {
        for length in [0, 1, 7, 8, 9, 125, 126, 1000, 65535, 65536, 70001] {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
            for (role, key) in [(Role.server, UInt32(0x0102_0304) &+ UInt32(length)), (Role.client, nil)] {
                var stream: [UInt8] = []
                payload.withUnsafeBytes {
                    FrameWriter.append(opcode: Opcode.binary, payload: $0, maskKey: key, to: &stream)
                    FrameWriter.append(
                        opcode: Opcode.ping, payload: UnsafeRawBufferPointer(rebasing: $0.prefix(125)),
                        maskKey: key, to: &stream)
                }
                let (outcome, idle) = feed(stream, role: role, feeding: .whole, scratchSize: 1 << 17)
                #expect(
                    outcome == Outcome(events: [.binary(payload), .ping(Array(payload.prefix(125)))], failure: nil))
                #expect(idle)
            }
        }
    }

    @Test func closePayload() {
        #expect(FrameWriter.closePayload(code: .normal, reason: "") == [0x03, 0xE8])
        #expect(FrameWriter.closePayload(code: .goingAway, reason: "bye") == [0x03, 0xE9] + Array("bye".utf8))
        let ascii = String(repeating: "a", count: 200)
        #expect(
            FrameWriter.closePayload(code: .serviceRestart, reason: ascii) == [0x03, 0xF4]
                + Array(ascii.utf8.prefix(123)))
        // 2-byte characters: 123 bytes would cut the 62nd in half, so 61 of them (122 bytes) are kept.
        let greek = String(repeating: "é", count: 100)
        let payload = FrameWriter.closePayload(code: .normal, reason: greek)
        #expect(payload.count == 2 + 122)
        #expect(payload.dropFirst(2).elementsEqual(greek.utf8.prefix(122)))
        // 4-byte characters: 123 = 30 × 4 + 3, so 30 of them.
        let faces = String(repeating: "😀", count: 40)
        #expect(FrameWriter.closePayload(code: .normal, reason: faces).count == 2 + 120)
        // Exactly 123 bytes fit whole.
        let exact = String(repeating: "b", count: 123)
        #expect(FrameWriter.closePayload(code: .normal, reason: exact).count == 125)
    }

    @Test func closeCodeValidity() {
        let valid: [UInt16] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
        let invalid: [UInt16] = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]
        for code in valid { #expect(CloseCode(rawValue: code).isValidOnWire, "\(code)") }
        for code in invalid { #expect(!CloseCode(rawValue: code).isValidOnWire, "\(code)") }
        #expect(CloseCode.noStatusReceived.rawValue == 1005 && CloseCode.abnormal.rawValue == 1006)
        #expect(CloseCode.tryAgainLater.rawValue == 1013 && CloseCode.mandatoryExtension.rawValue == 1010)
    }
}
