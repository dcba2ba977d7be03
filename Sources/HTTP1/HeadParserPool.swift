// Head parsers lent per loop: a connection between messages holds none, a parser keeps its storage between lends.

/// A pool of parsers of one kind, owned by one loop (the gateway's workers and `HTTPServer` both lend from one).
///
/// A parser keeps its storage across `reset()` (about 1.5 KiB once used), so lending it only while a head is being
/// read keeps idle connections free of it. `giveBack` swaps a memory-less placeholder into the borrower's variable,
/// so the borrower never keeps a second reference to pooled storage (which would force a copy on the next write).
public struct HeadParserPool {
    public let kind: HeadParser.Kind
    /// Parsers kept at most; more are dropped when given back (a burst does not hold memory afterwards).
    public let capacity: Int
    /// A parser whose storage grew past this (a huge head) is dropped rather than pooled.
    public let maxRetainedBytes: Int
    private var parsers: [HeadParser] = []

    public init(kind: HeadParser.Kind, capacity: Int, maxRetainedBytes: Int = 8192) {
        self.kind = kind
        self.capacity = capacity
        self.maxRetainedBytes = maxRetainedBytes
        parsers.reserveCapacity(capacity)
    }

    /// What a borrower holds while it has no parser lent: owns no memory.
    public var placeholder: HeadParser { HeadParser(kind: kind, reserving: false) }

    /// Parsers waiting in the pool.
    public var count: Int { parsers.count }

    /// A reset parser with `limits`: a pooled one, or a new one when the pool is empty.
    public mutating func take(limits: Limits) -> HeadParser {
        guard var parser = parsers.popLast() else { return HeadParser(kind: kind, limits: limits) }
        parser.limits = limits
        return parser
    }

    /// Takes `parser` back (leaving the placeholder in its place) and pools it, unless the pool is full or its
    /// storage grew past `maxRetainedBytes`.
    public mutating func giveBack(_ parser: inout HeadParser) {
        var returned = placeholder
        swap(&returned, &parser)
        guard parsers.count < capacity, returned.retainedBytes <= maxRetainedBytes else { return }
        // Reset here, where the storage is uniquely referenced: a reset on a shared copy would reallocate it.
        returned.reset()
        parsers.append(returned)
    }
}
