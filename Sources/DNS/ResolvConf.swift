// /etc/resolv.conf: servers, search list and options, and the order in which search names are tried.

/// The resolver configuration of resolv.conf(5): what `/etc/resolv.conf` says, with glibc's defaults and limits.
public struct ResolvConf: Hashable, Sendable {
    /// Servers in file order, at most `maximumNameservers` (glibc's MAXNS); 127.0.0.1 when the file names none.
    public var nameservers: [IPAddress]
    /// The search list from the last `search` or `domain` line (whichever comes last wins).
    public var search: [Name]
    /// A name with at least this many dots is tried as given before the search list (default 1, at most 15).
    public var ndots: Int
    /// Seconds to wait for one server before trying the next (default 5, 1–30).
    public var timeout: Int
    /// Rounds over all servers before giving up (default 2, 1–5).
    public var attempts: Int
    /// `options rotate`: spread queries over the servers instead of always starting with the first.
    public var rotate: Bool

    /// glibc's MAXNS.
    public static let maximumNameservers = 3
    /// The server used when the file names none (resolv.conf(5), "nameserver").
    public static let defaultNameserver = IPAddress.v4(IPv4Address(127, 0, 0, 1))

    public init(
        nameservers: [IPAddress] = [ResolvConf.defaultNameserver], search: [Name] = [], ndots: Int = 1,
        timeout: Int = 5, attempts: Int = 2, rotate: Bool = false
    ) {
        self.nameservers = nameservers
        self.search = search
        self.ndots = ndots
        self.timeout = timeout
        self.attempts = attempts
        self.rotate = rotate
    }

    /// Parses the text of a resolv.conf file. Lines starting with `#` or `;` are comments, and so is the rest of a
    /// line from a word starting with one; unknown keywords, unknown options and entries that do not parse (a
    /// server address with a port or a zone, a search domain with an empty label) are ignored, as the C library
    /// does, so one bad line never loses the rest of the file.
    public init(parsing text: some StringProtocol) {
        self.init(nameservers: [])
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let words = ResolvConf.words(line)
            guard let keyword = words.first else { continue }
            let arguments = words.dropFirst()
            switch keyword {
            case "nameserver":
                guard nameservers.count < ResolvConf.maximumNameservers, let first = arguments.first,
                    let address = IPAddress(parsing: first)
                else { continue }
                nameservers.append(address)
            case "domain":
                search = arguments.first.flatMap(ResolvConf.searchDomain).map { [$0] } ?? []
            case "search":
                search = arguments.compactMap(ResolvConf.searchDomain)
            case "options":
                applyOptions(arguments)
            default:
                continue
            }
        }
        if nameservers.isEmpty { nameservers = [ResolvConf.defaultNameserver] }
    }

    /// Applies options given as text, as in an `options` line or the `RES_OPTIONS` environment variable.
    public mutating func applyOptions(_ text: some StringProtocol) {
        applyOptions(ResolvConf.words(text.utf8)[...])
    }

    private mutating func applyOptions(_ options: ArraySlice<String>) {
        for option in options {
            if option == "rotate" {
                rotate = true
            } else if let value = ResolvConf.number(option, after: "ndots:") {
                ndots = min(value, 15)
            } else if let value = ResolvConf.number(option, after: "timeout:") {
                timeout = max(1, min(value, 30))
            } else if let value = ResolvConf.number(option, after: "attempts:") {
                attempts = max(1, min(value, 5))
            }
        }
    }

    // The words of one line, up to a comment.
    private static func words(_ line: some Collection<UInt8>) -> [String] {
        var words: [String] = []
        for word in line.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
            if word.first == UInt8(ascii: "#") || word.first == UInt8(ascii: ";") { break }
            words.append(String(decoding: word, as: UTF8.self))
        }
        return words
    }

    private static func number(_ option: String, after prefix: String) -> Int? {
        guard option.hasPrefix(prefix) else { return nil }
        let digits = option.utf8.dropFirst(prefix.utf8.count)
        guard !digits.isEmpty, digits.count <= 4 else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    // The root (".") adds nothing to a name, so it is not kept as a search domain.
    private static func searchDomain(_ text: String) -> Name? {
        guard let name = try? Name(parsing: text), !name.isRoot else { return nil }
        return name
    }
}

/// The names to query for `name`, in order (resolv.conf(5), "search" and "ndots"): a name ending with a dot is
/// absolute and tried alone; a name with at least `ndots` dots is tried as given first and then with each search
/// domain; a shorter name is tried with each search domain first and as given last. Candidates that would be
/// invalid (longer than 255 bytes) are left out, and so are duplicates; an unparseable name gives no candidates.
public func candidateNames(for name: some StringProtocol, conf: ResolvConf) -> [Name] {
    guard let asGiven = try? Name(parsing: name), !asGiven.isRoot || Name.isFQDN(name) else { return [] }
    if Name.isFQDN(name) { return [asGiven] }
    let dots = name.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: ".") ? 1 : 0) }
    var candidates: [Name] = []
    candidates.reserveCapacity(conf.search.count + 1)
    if dots >= conf.ndots { candidates.append(asGiven) }
    for domain in conf.search {
        guard let candidate = try? asGiven.appending(domain), !candidates.contains(candidate) else { continue }
        candidates.append(candidate)
    }
    if dots < conf.ndots && !candidates.contains(asGiven) { candidates.append(asGiven) }
    return candidates
}
