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
    /// `slots[0..<count]` are the pooled parsers; the slots after them hold the placeholders that lent parsers left
    /// behind. Lending and giving back swap a parser with a slot's placeholder: no array of either is retained,
    /// released, made or copied on the way.
    private var slots: [HeadParser] = []
    /// Parsers waiting in the pool.
    public private(set) var count = 0

    public init(kind: HeadParser.Kind, capacity: Int, maxRetainedBytes: Int = 8192) {
        self.kind = kind
        self.capacity = capacity
        self.maxRetainedBytes = maxRetainedBytes
        slots.reserveCapacity(capacity)
    }

    /// What a borrower holds while it has no parser lent: owns no memory.
    public var placeholder: HeadParser { HeadParser(kind: kind, reserving: false) }

    /// A reset parser with `limits`: a pooled one, or a new one when the pool is empty.
    public mutating func take(limits: Limits) -> HeadParser {
        var parser = placeholder
        lend(into: &parser, limits: limits)
        return parser
    }

    /// Puts a reset parser with `limits` into `parser` (a placeholder), a pooled one or a new one when the pool is
    /// empty; the placeholder takes the pooled parser's slot.
    public mutating func lend(into parser: inout HeadParser, limits: Limits) {
        guard count > 0 else {
            parser = HeadParser(kind: kind, limits: limits)
            return
        }
        count -= 1
        swap(&slots[count], &parser)
        parser.limits = limits
    }

    /// Takes `parser` back (leaving a placeholder in its place) and pools it, unless the pool is full or its
    /// storage grew past `maxRetainedBytes`.
    public mutating func giveBack(_ parser: inout HeadParser) {
        guard count < capacity, parser.retainedBytes <= maxRetainedBytes else {
            parser = placeholder
            return
        }
        // Reset here, where the storage is uniquely referenced: a reset on a shared copy would reallocate it.
        parser.reset()
        if count == slots.count { slots.append(placeholder) }
        swap(&slots[count], &parser)
        count += 1
    }
}
