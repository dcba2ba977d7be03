// libFuzzer harness for HTTP1.ChunkedDecoder: split feeds agree, and the output is exactly the chunks' data.
import HTTP1

/// Input layout: byte 0 chooses the mode and the limits, bytes 1–4 the split points, the rest is either the body
/// itself (raw mode, read in place so a read past the end is an AddressSanitizer report) or a recipe from which a
/// valid chunked body is built (built mode: it must decode to exactly the data put in).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 5 else { return 0 }
    let control = data[0]
    let rest = UnsafeRawBufferPointer(start: data + 5, count: size - 5)
    if control & 1 == 0 {
        let small = control & 2 != 0
        let extensionLimit = small ? 1 + Int(control >> 2 & 0xF) : 1024
        let trailerLimit = small ? 2 + Int(control >> 4) : 8192
        checkRaw(rest, cutSeed: data + 1, extensionLimit: extensionLimit, trailerLimit: trailerLimit)
    } else {
        checkBuilt(recipe: rest, cutSeed: data + 1, control: control)
    }
    return 0
}

/// The result of decoding all of an input: the data bytes and how it ended (`consumed` is an input offset).
struct Decoded: Equatable {
    var output: [UInt8] = []
    var end: End = .needMore

    enum End: Equatable {
        case needMore
        case end(consumed: Int)
        case failure(ChunkedError)
    }
}

/// Decodes `input` fed in the pieces `cuts` delimits, with `next(_:)`, checking every step's offsets.
func decode(_ decoder: inout ChunkedDecoder, _ input: UnsafeRawBufferPointer, cuts: [Int]) -> Decoded {
    var result = Decoded()
    for index in 0..<(cuts.count - 1) {
        var offset = cuts[index]
        let pieceEnd = cuts[index + 1]
        while true {
            let piece = UnsafeRawBufferPointer(rebasing: input[offset..<pieceEnd])
            switch decoder.next(piece) {
            case .data(let range):
                require(range.lowerBound >= 0 && range.upperBound <= piece.count, "data \(range) outside the piece")
                require(!range.isEmpty, "empty data span")
                result.output.append(contentsOf: piece[range])
                offset += range.upperBound
                continue
            case .needMore:
                break
            case .end(let consumed):
                require(consumed >= 1 && consumed <= piece.count, "consumed \(consumed) of \(piece.count)")
                require(decoder.isFinished, "end without isFinished")
                require(decoder.next(piece) == .end(consumed: 0), "a finished decoder consumed more")
                result.end = .end(consumed: offset + consumed)
                return result
            case .failure(let error):
                require(decoder.next(piece) == .failure(error), "a failed decoder did not repeat its failure")
                result.end = .failure(error)
                return result
            }
            break
        }
    }
    return result
}

func cuts(_ seed: UnsafePointer<UInt8>, count n: Int) -> [Int] {
    let a = (Int(seed[0]) << 8 | Int(seed[1])) % (n + 1)
    let b = (Int(seed[2]) << 8 | Int(seed[3])) % (n + 1)
    return [0, min(a, b), max(a, b), n]
}

func checkRaw(_ input: UnsafeRawBufferPointer, cutSeed: UnsafePointer<UInt8>, extensionLimit: Int, trailerLimit: Int) {
    let n = input.count
    var decoder = ChunkedDecoder(maxExtensionBytes: extensionLimit, maxTrailerBytes: trailerLimit)
    let whole = decode(&decoder, input, cuts: [0, n])

    var splitDecoder = ChunkedDecoder(maxExtensionBytes: extensionLimit, maxTrailerBytes: trailerLimit)
    let split = decode(&splitDecoder, input, cuts: cuts(cutSeed, count: n))
    require(split == whole, "split feed gave \(split.end), \(split.output.count) bytes; whole \(whole.end)")

    // The convenience `decode(_:onData:)` over the whole input agrees with `next(_:)`.
    var viaDecode = ChunkedDecoder(maxExtensionBytes: extensionLimit, maxTrailerBytes: trailerLimit)
    var output: [UInt8] = []
    let step = viaDecode.decode(input) { output.append(contentsOf: $0) }
    require(output == whole.output, "decode(_:onData:) output differs")
    switch (step, whole.end) {
    case (.needMore, .needMore): break
    case (.end(let a), .end(let b)): require(a == b, "decode(_:onData:) consumed \(a), next(_:) \(b)")
    case (.failure(let a), .failure(let b)): require(a == b, "decode(_:onData:) failed with \(a), next(_:) \(b)")
    default: fatalError("invariant broken: decode(_:onData:) ended \(step), next(_:) \(whole.end)")
    }

    // A reset decoder behaves like a fresh one.
    decoder.reset()
    require(decode(&decoder, input, cuts: [0, n]) == whole, "a reset decoder disagrees with a fresh one")

    // An accepted body: the output is the data of the chunks, as a plain reading of the accepted bytes finds them.
    if case .end(let consumed) = whole.end {
        let reference = referenceData(Array(input[0..<consumed]))
        require(reference.sizes.reduce(0, +) == whole.output.count, "output length is not the sum of chunk sizes")
        require(reference.data == whole.output, "output is not the chunks' data")
    }
}

/// Reads an accepted chunked body the simplest way: hex size, skip the rest of the line, take the data, skip CRLF.
func referenceData(_ body: [UInt8]) -> (sizes: [Int], data: [UInt8]) {
    var position = 0
    var sizes: [Int] = []
    var data: [UInt8] = []
    while true {
        var size = 0
        while position < body.count, let digit = hexValue(body[position]) {
            require(size <= Int.max >> 4, "reference: chunk size overflows in an accepted body")
            size = size << 4 | digit
            position += 1
        }
        while position < body.count && body[position] != 10 { position += 1 }
        position += 1
        if size == 0 { break }
        require(position + size + 2 <= body.count, "reference: chunk of \(size) runs past the accepted bytes")
        sizes.append(size)
        data += body[position..<(position + size)]
        require(body[position + size] == 13 && body[position + size + 1] == 10, "reference: no CRLF after data")
        position += size + 2
    }
    return (sizes, data)
}

func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case 0x30...0x39: return Int(byte - 0x30)
    case 0x41...0x46: return Int(byte - 0x41 + 10)
    case 0x61...0x66: return Int(byte - 0x61 + 10)
    default: return nil
    }
}

/// Builds a valid chunked body from the recipe bytes: sizes in either case with leading zeros, extensions,
/// trailers, and bytes after the body that must not be consumed.
func checkBuilt(recipe: UnsafeRawBufferPointer, cutSeed: UnsafePointer<UInt8>, control: UInt8) {
    var reader = recipe.makeIterator()
    var body: [UInt8] = []
    var expected: [UInt8] = []
    var sizes: [Int] = []
    while sizes.count < 12, let op = reader.next(), op != 0 {
        var size = Int(op & 0x1F) + 1
        if op & 0x20 != 0 { size *= 17 }
        let fill = reader.next() ?? 0x41
        let start = expected.count
        for index in 0..<size {
            expected.append(index < 8 ? (reader.next() ?? fill) : fill &+ UInt8(truncatingIfNeeded: index))
        }
        body += repeatElement(0x30, count: Int(fill & 3))  // leading zeros
        appendHex(size, uppercase: op & 0x80 != 0, to: &body)
        if op & 0x40 != 0 {
            body += Array(" \t;a=1;q=\"x y\";z".utf8)
        } else if op & 0x80 != 0 {
            body += Array(";ext".utf8)
        }
        body += [13, 10]
        body += expected[start...]
        body += [13, 10]
        sizes.append(size)
    }
    body += Array((control & 2 != 0 ? "000;last\r\n" : "0\r\n").utf8)
    for _ in 0..<Int(control >> 2 & 3) { body += Array("X-Trailer: v 1\t\r\n".utf8) }
    body += [13, 10]
    let bodyLength = body.count
    body += Array("GET / HTTP/1.1\r\n".utf8)  // the next message on the connection

    body.withUnsafeBytes { input in
        var decoder = ChunkedDecoder()
        let whole = decode(&decoder, input, cuts: [0, input.count])
        require(whole.end == .end(consumed: bodyLength), "built body ended \(whole.end), expected \(bodyLength)")
        require(whole.output.count == sizes.reduce(0, +), "output length is not the sum of chunk sizes")
        require(whole.output == expected, "output is not the data put in")
        var splitDecoder = ChunkedDecoder()
        let split = decode(&splitDecoder, input, cuts: cuts(cutSeed, count: input.count))
        require(split == whole, "split feed of a built body gave \(split.end)")
    }
}

func appendHex(_ value: Int, uppercase: Bool, to bytes: inout [UInt8]) {
    let digits: [UInt8] = Array((uppercase ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
    var shift = 60
    while shift > 0 && value >> shift == 0 { shift -= 4 }
    while shift >= 0 {
        bytes.append(digits[value >> shift & 0xF])
        shift -= 4
    }
}

/// Stops the run with the message; libFuzzer reports the abort as a crash and saves the input.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant broken: \(message())") }
}
