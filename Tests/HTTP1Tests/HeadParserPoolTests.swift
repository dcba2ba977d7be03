// The parser pool: lending into a placeholder and giving back are swaps with the pool's slots, the storage of a
// pooled parser is the one lent next, and what the pool will not keep (full, or grown too large) is dropped.

import Testing

@testable import HTTP1

@Suite struct HeadParserPoolTests {
    static let head = [UInt8](ascii: "GET /a?b=c HTTP/1.1\r\nHost: h\r\nX-One: 1\r\n\r\n")

    /// The address of a parser's head storage (nil for a placeholder, which owns none).
    func storageAddress(_ parser: HeadParser) -> UnsafeRawPointer? {
        parser.storage.capacity == 0 ? nil : parser.storage.withUnsafeBytes { $0.baseAddress }
    }

    @Test func aParserGivenBackIsTheOneLentNextResetAndWithTheNewLimits() {
        var pool = HeadParserPool(kind: .request, capacity: 2)
        var held = pool.placeholder
        pool.lend(into: &held, limits: Limits())
        #expect(held.parse(Self.head) == .complete(consumed: Self.head.count))
        let storage = storageAddress(held)
        #expect(storage != nil)

        pool.giveBack(&held)
        #expect(pool.count == 1)
        #expect(held.retainedBytes == 0)
        #expect(held.kind == .request)

        let limits = Limits(maxRequestLine: 5)
        pool.lend(into: &held, limits: limits)
        #expect(pool.count == 0)
        #expect(storageAddress(held) == storage)
        #expect(held.limits == limits)
        #expect(!held.isComplete && held.fieldCount == 0)
        #expect(held.parse(Self.head) == .failure(.requestLineTooLong))

        // Through `take` (the server's connections hold an optional parser): the same pooled storage.
        held.reset()
        pool.giveBack(&held)
        let taken = pool.take(limits: Limits())
        #expect(storageAddress(taken) == storage)
        #expect(pool.count == 0)
    }

    @Test func anEmptyPoolLendsANewParser() {
        var pool = HeadParserPool(kind: .response, capacity: 4)
        var held = pool.placeholder
        pool.lend(into: &held, limits: Limits())
        #expect(held.kind == .response)
        #expect(held.retainedBytes > 0)
        let status = [UInt8](ascii: "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(held.parse(status) == .complete(consumed: status.count))
        #expect(held.status == 204)
    }

    @Test func aFullPoolAndAGrownParserAreNotKept() {
        var pool = HeadParserPool(kind: .request, capacity: 2, maxRetainedBytes: 2048)
        var lent = (0..<3).map { _ in pool.placeholder }
        for index in lent.indices { pool.lend(into: &lent[index], limits: Limits()) }
        let addresses = lent.map(storageAddress)
        #expect(Set(addresses.compactMap { $0 }).count == 3)
        for index in lent.indices { pool.giveBack(&lent[index]) }
        #expect(pool.count == 2)
        #expect(lent.allSatisfy { $0.retainedBytes == 0 })
        // The two kept are lent again, last given back first; then a new one (the third was dropped).
        var again = [pool.placeholder, pool.placeholder, pool.placeholder]
        for index in again.indices { pool.lend(into: &again[index], limits: Limits()) }
        #expect(storageAddress(again[0]) == addresses[1])
        #expect(storageAddress(again[1]) == addresses[0])
        #expect(pool.count == 0 && again[2].retainedBytes > 0)

        // A head larger than maxRetainedBytes grows the storage: that parser is dropped, not pooled.
        var small = HeadParserPool(kind: .request, capacity: 2, maxRetainedBytes: 2048)
        var grown = small.placeholder
        small.lend(into: &grown, limits: Limits())
        let large = [UInt8](
            ascii: "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "a", count: 4096) + "\r\n\r\n")
        #expect(grown.parse(large) == .complete(consumed: large.count))
        #expect(grown.retainedBytes > 2048)
        small.giveBack(&grown)
        #expect(small.count == 0)
        #expect(grown.retainedBytes == 0)
    }
}
