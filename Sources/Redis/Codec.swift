// RESP2 encoding and decoding through hiredis: commands with redisFormatCommandArgv, replies with its reader.
import CHiredis

/// Encodes commands as RESP arrays of bulk strings (binary safe) with hiredis's `redisFormatCommandArgv`.
enum CommandEncoder {
    /// Calls `body` with the encoded command, valid only during the call; nil when hiredis cannot allocate.
    static func withEncoded<R>(_ arguments: [[UInt8]], _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        // hiredis wants every argument's address at once: lay the arguments end to end in one block (at least
        // one byte, so that every pointer is valid even for empty arguments), then point into it. Temporary
        // allocations live on the stack when small.
        let total = arguments.reduce(0) { $0 + $1.count }
        let count = max(arguments.count, 1)
        return withUnsafeTemporaryAllocation(byteCount: max(total, 1), alignment: 1) { joined in
            withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { pointers in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                    var offset = 0
                    for (index, argument) in arguments.enumerated() {
                        let start = joined.baseAddress! + offset
                        argument.withUnsafeBytes { bytes in
                            if let base = bytes.baseAddress { start.copyMemory(from: base, byteCount: bytes.count) }
                        }
                        pointers[index] = UnsafePointer(start.assumingMemoryBound(to: CChar.self))
                        lengths[index] = argument.count
                        offset += argument.count
                    }
                    var target: UnsafeMutablePointer<CChar>?
                    let length = redisFormatCommandArgv(
                        &target, Int32(arguments.count), pointers.baseAddress, lengths.baseAddress)
                    guard length >= 0, let target else { return nil }
                    defer { redisFreeCommand(target) }
                    return body(UnsafeRawBufferPointer(start: target, count: Int(length)))
                }
            }
        }
    }

    /// The encoded command as an array (for tests).
    static func encode(_ arguments: [[UInt8]]) -> [UInt8]? {
        withEncoded(arguments) { Array($0) }
    }
}

/// hiredis's reply reader: takes bytes as they arrive, in any split, and hands out whole replies in order.
///
/// It owns one `redisReader` (created here, freed in `deinit`), touched only by this object on one thread.
final class ReplyReader {
    private var reader: UnsafeMutablePointer<redisReader>
    /// The most bytes the reader buffered at once since it was made.
    private var peakBuffered = 0
    /// How many times a reader was replaced to give back a large buffer (for tests).
    private(set) var renewals = 0

    init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis: out of memory creating a reply reader") }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    /// Appends bytes read from the server.
    func feed(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count) == REDIS_OK else {
            throw .protocolError(readerError)
        }
        peakBuffered = max(peakBuffered, reader.pointee.len - reader.pointee.pos)
    }

    /// The next whole reply, or nil when the bytes so far end inside one.
    func next() throws(RedisError) -> RedisReply? {
        var object: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &object) == REDIS_OK else { throw .protocolError(readerError) }
        guard let object else { return nil }
        defer { freeReplyObject(object) }
        return Self.value(of: object.assumingMemoryBound(to: redisReply.self))
    }

    /// Whether the reader holds no part of a reply: every byte consumed, and no task begun (after a call that found
    /// no bytes, hiredis leaves the root task set up with no type read yet).
    var isIdle: Bool {
        let state = reader.pointee
        return state.pos == state.len && (state.ridx == -1 || (state.ridx == 0 && state.rstack.0.type < 0))
    }

    /// When idle after buffering more than hiredis's own limit for an unused buffer (`REDIS_READER_MAX_BUF`),
    /// replaces the reader: hiredis keeps a grown buffer until the next feed, and an idle client should not hold
    /// the memory of its largest reply.
    func releaseLargeBuffer() {
        guard peakBuffered > Int(REDIS_READER_MAX_BUF), isIdle, let fresh = redisReaderCreate() else { return }
        redisReaderFree(reader)
        reader = fresh
        peakBuffered = 0
        renewals += 1
    }

    private var readerError: String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "unreadable reply" : String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Converts hiredis's reply tree. Recursion is bounded: hiredis's reader refuses nesting deeper than 7 levels.
    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .string(bytes(node.str, node.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            guard let element = node.element else { return .array([]) }
            var elements: [RedisReply] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let child = element[index] { elements.append(value(of: child)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
