// A head being written straight into raw memory whose capacity the caller checked once, up front.

import Routing

/// Writes bytes at `base + count` without capacity checks or uniqueness tests.
///
/// Invariant: the memory at `base` holds at least the upper bound the writer's caller computed for the head
/// (`RequestRewriter.upstreamHeadBound`, `ResponseRewriter.downstreamHeadBound`) and checked before the first
/// write; every function writing through a `HeadOutput` writes no more than that bound counts for it.
public struct HeadOutput {
    public let base: UnsafeMutableRawPointer
    /// Bytes written so far.
    public private(set) var count = 0

    public init(_ base: UnsafeMutableRawPointer) { self.base = base }

    @inline(__always)
    mutating func write(_ string: StaticString) {
        let length = string.utf8CodeUnitCount
        (base + count).copyMemory(from: string.utf8Start, byteCount: length)
        count &+= length
    }

    @inline(__always)
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress else { return }
        (base + count).copyMemory(from: source, byteCount: bytes.count)
        count &+= bytes.count
    }

    /// `buf[range]`.
    @inline(__always)
    mutating func write(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        guard let source = buf.baseAddress else { return }
        (base + count).copyMemory(from: source + range.lowerBound, byteCount: range.count)
        count &+= range.count
    }

    @inline(__always)
    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    @inline(__always)
    mutating func write(byte: UInt8) {
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    /// Two bytes, `first` then `second`.
    @inline(__always)
    mutating func write(_ first: UInt8, _ second: UInt8) {
        base.storeBytes(of: first, toByteOffset: count, as: UInt8.self)
        base.storeBytes(of: second, toByteOffset: count &+ 1, as: UInt8.self)
        count &+= 2
    }

    /// Forgets the bytes written after `mark`.
    @inline(__always)
    mutating func truncate(to mark: Int) { count = mark }

    /// `template` rendered with the captures of `matcher` over `path`.
    @inline(__always)
    mutating func write(_ template: Template, captures matcher: Matcher, path: UnsafeRawBufferPointer) {
        count &+= template.render(captures: matcher, path: path, intoMemory: base + count)
    }
}

extension Array where Element == UInt8 {
    /// Appends at most `bound` bytes written by `body` through a `HeadOutput` (the cold path: tests, and heads
    /// too large for the worker's scratch memory).
    @inline(__always)
    mutating func appendHead<Result>(bound: Int, _ body: (inout HeadOutput) -> Result) -> Result {
        let start = count
        append(contentsOf: repeatElement(0, count: bound))
        let (result, written) = withUnsafeMutableBytes { bytes -> (Result, Int) in
            var output = HeadOutput(bytes.baseAddress! + start)
            let result = body(&output)
            precondition(output.count <= bound, "a head writer wrote more than its bound")
            return (result, output.count)
        }
        removeLast(bound - written)
        return result
    }
}
