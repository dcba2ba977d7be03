// Template parsing and rendering vectors: named and numbered captures, `$$`, and load-time errors.
import Routing
import Testing

private func render(_ template: String, regex: String, path: String) throws -> String {
    let pattern = try Pattern(compiling: regex)
    let parsed = try Template(parsing: template, pattern: pattern)
    let matcher = Matcher(captureCapacity: pattern.captureCount)
    let bytes = Array(path.utf8)
    var output: [UInt8] = Array("prefix:".utf8)  // render appends
    try bytes.withUnsafeBytes { raw in
        try #require(matcher.match(pattern, raw))
        parsed.render(captures: matcher, path: raw, into: &output)
    }
    return String(decoding: output, as: UTF8.self)
}

@Test(arguments: [
    ("/api/$rest", "^/api/(?<rest>.*)$", "/api/x/y", "prefix:/api/x/y"),
    ("/v2/$rest", "^/api/(?<rest>.*)$", "/api/", "prefix:/v2/"),
    ("/ws/connect", "^/ws/(?<podid>[a-z0-9-]+)/connect$", "/ws/p1/connect", "prefix:/ws/connect"),
    (
        "$podid.socket.rtc.svc.cluster.local", "^/ws/(?<podid>[a-z0-9-]+)/connect$", "/ws/p-1/connect",
        "prefix:p-1.socket.rtc.svc.cluster.local"
    ),
    ("/$2/$1", "^/(\\w+)/(\\w+)$", "/a/b", "prefix:/b/a"),
    ("[$0]", "^/(\\w+)$", "/abc", "prefix:[/abc]"),
    ("$$1 costs $$$1", "^/(\\d+)$", "/5", "prefix:$1 costs $5"),
    ("$a_1-$a_1", "^/(?<a_1>x)$", "/x", "prefix:x-x"),
    ("<$opt>", "^/(?<opt>y)?z$", "/z", "prefix:<>"),  // unset group renders as nothing
    ("", "^/$", "/", "prefix:"),
])
func renders(template: String, regex: String, path: String, expected: String) throws {
    #expect(try render(template, regex: regex, path: path) == expected)
}

@Test func rewriteKeepsQueryWhenCallerAppendsIt() throws {
    // The proxy matches on the path only and appends the original query after rendering.
    let target = "/ws/abc/connect?clientId=u1"
    let path = String(target.prefix { $0 != "?" })
    var rendered = try render("/ws/connect", regex: "^/ws/(?<podid>[a-z]+)/connect$", path: path)
    rendered += target.drop { $0 != "?" }
    #expect(rendered == "prefix:/ws/connect?clientId=u1")
}

@Test(arguments: [
    ("/x/$nope", "^/(?<rest>.*)$", "capture '$nope' is not a named group of the route's regex"),
    ("/x/$2", "^/(a)$", "capture '$2' does not exist: the regex has 1 group(s)"),
    ("/x/$", "^/(a)$", "'$' at the end of template '/x/$'; write '$$' for a literal '$'"),
    ("/x/$-", "^/(a)$", "'$' must be followed by a capture name or number in '/x/$-'; write '$$' for '$'"),
])
func rejectsBadReferences(template: String, regex: String, message: String) throws {
    let pattern = try Pattern(compiling: regex)
    #expect(throws: TemplateError(message: message)) { try Template(parsing: template, pattern: pattern) }
}

@Test func capturesNeedARegexRoute() throws {
    #expect(throws: TemplateError(message: "capture '$podid' used on a route without a regex")) {
        try Template(parsing: "$podid.example", pattern: nil)
    }
    #expect(throws: TemplateError(message: "capture '$1' used on a route without a regex")) {
        try Template(parsing: "/$1", pattern: nil)
    }
    let literal = try Template(parsing: "/plain$$", pattern: nil)
    #expect(literal.isLiteral)
    #expect(literal.literalBytes == Array("/plain$".utf8))
}

@Test func captureGroupsListed() throws {
    let pattern = try Pattern(compiling: "^/(?<a>x)/(?<b>y)$")
    #expect(try Template(parsing: "$b.$a.$1", pattern: pattern).captureGroups == [2, 1, 1])
}
