// Tests of resolv.conf parsing and search-list expansion.

import DNS
import Testing

@Suite struct ResolvConfTests {
    static let kubernetes = """
        search rtc.svc.cluster.local svc.cluster.local cluster.local
        nameserver 10.96.0.10
        options ndots:5
        """

    static let files: [(String, String, ResolvConf)] = [
        ("empty file: defaults", "", ResolvConf()),
        (
            "kubernetes pod", kubernetes,
            ResolvConf(
                nameservers: [v4("10.96.0.10")],
                search: [name("rtc.svc.cluster.local"), name("svc.cluster.local"), name("cluster.local")], ndots: 5)
        ),
        (
            "comments, blanks, tabs, CRLF, unknown lines",
            "# a comment\n; another\n\n\tnameserver\t192.0.2.1 # inline\r\nsortlist 10.0.0.0\nlookup file bind\n",
            ResolvConf(nameservers: [v4("192.0.2.1")])
        ),
        (
            "at most three servers, IPv6, bad entries skipped",
            "nameserver 1.1.1.1\nnameserver 2001:db8::53\nnameserver 10.0.0.1:5353\nnameserver fe80::1%eth0\n"
                + "nameserver\nnameserver 8.8.8.8\nnameserver 9.9.9.9\n",
            ResolvConf(nameservers: [v4("1.1.1.1"), IPAddress(parsing: "2001:db8::53")!, v4("8.8.8.8")])
        ),
        (
            "domain then search: last wins", "domain corp.example\nsearch a.example b.example.\n",
            ResolvConf(search: [name("a.example"), name("b.example")])
        ),
        (
            "search then domain: last wins", "search a.example b.example\ndomain Corp.Example\n",
            ResolvConf(search: [name("corp.example")])
        ),
        (
            "invalid search domains skipped", "search ok.example bad..example . x\n",
            ResolvConf(search: [name("ok.example"), name("x")])
        ),
        (
            "options with limits", "options ndots:20 timeout:0 attempts:9 rotate debug edns0 ndots:x\n",
            ResolvConf(ndots: 15, timeout: 1, attempts: 5, rotate: true)
        ),
        (
            "options in range, several lines", "options timeout:2\noptions attempts:3 ndots:0\n",
            ResolvConf(ndots: 0, timeout: 2, attempts: 3)
        ),
    ]

    @Test(arguments: files)
    func parses(label: String, text: String, expected: ResolvConf) {
        #expect(ResolvConf(parsing: text) == expected, "\(label)")
    }

    @Test func resOptionsOverride() {
        var conf = ResolvConf(parsing: Self.kubernetes)
        conf.applyOptions("ndots:2 attempts:1")
        #expect(conf.ndots == 2 && conf.attempts == 1 && conf.timeout == 5)
    }

    static let long =
        (Array(repeating: String(repeating: "x", count: 63), count: 3) + [String(repeating: "y", count: 40)])
        .joined(separator: ".")

    static let candidates: [(String, String, [String])] = [
        (
            "balancer", kubernetes,
            ["balancer.rtc.svc.cluster.local.", "balancer.svc.cluster.local.", "balancer.cluster.local.", "balancer."]
        ),
        // 4 dots < ndots 5: the search list still comes first.
        (
            "socket-1.socket.rtc.svc.cluster", kubernetes,
            [
                "socket-1.socket.rtc.svc.cluster.rtc.svc.cluster.local.",
                "socket-1.socket.rtc.svc.cluster.svc.cluster.local.",
                "socket-1.socket.rtc.svc.cluster.cluster.local.", "socket-1.socket.rtc.svc.cluster.",
            ]
        ),
        // 5 dots >= ndots 5: as given first.
        (
            "a.b.c.d.e.f", kubernetes,
            [
                "a.b.c.d.e.f.", "a.b.c.d.e.f.rtc.svc.cluster.local.", "a.b.c.d.e.f.svc.cluster.local.",
                "a.b.c.d.e.f.cluster.local.",
            ]
        ),
        ("socket-1.socket.rtc.svc.cluster.local.", kubernetes, ["socket-1.socket.rtc.svc.cluster.local."]),
        ("host", "search example.com\n", ["host.example.com.", "host."]),
        ("a.b", "search example.com\n", ["a.b.", "a.b.example.com."]),
        ("Host", "", ["host."]),
        ("a.b", "options ndots:0\n", ["a.b."]),
        ("", kubernetes, []),
        ("a..b", kubernetes, []),
        (".", kubernetes, ["."]),
        // A candidate over 255 bytes is left out: 3 * 64 + 41 + 22 + 1 = 256 with rtc.svc.cluster.local.
        (long, kubernetes, [long + ".svc.cluster.local.", long + ".cluster.local.", long + "."]),
    ]

    @Test(arguments: candidates)
    func candidateOrder(input: String, conf: String, expected: [String]) {
        let names = candidateNames(for: input, conf: ResolvConf(parsing: conf))
        #expect(names.map(\.description) == expected)
    }
}
