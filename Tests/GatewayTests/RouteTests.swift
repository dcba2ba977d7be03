// End-to-end: the two production routes (balancer, per-pod WebSocket), forwarded fields, and what never routes.
import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite("routes")
    struct RouteTests {
        /// SYSTEM.md §2.1/§2.2: `GET /ws/connect?...` reaches the balancer with its query, the forwarded fields, a
        /// request id the client also gets, `Host` set to the upstream's name, and no hop-by-hop field of the client.
        @Test func balancerRouteForwardsQueryAndForwardingFields() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let client = stack.net + "21"

            let plain = try stack.curl(
                [
                    "--interface", client, "-H", "Connection: foo, Keep-Alive", "-H", "foo: bar", "-H",
                    "Keep-Alive: timeout=5", "-H", "TE: trailers", "-H", "Proxy-Connection: keep-alive",
                ], url: stack.url("/ws/connect?clientId=u1&x=a%20b"))
            #expect(plain.status == 200)
            let seen = try SeenRequest(plain)
            #expect(seen.method == "GET")
            #expect(seen.path == "/ws/connect?clientId=u1&x=a%20b")
            #expect(seen.server == "\(stack.upstreamHost):\(stack.upstreamPort)")
            #expect(seen.values("Host") == ["\(Stack.balancerName):\(stack.upstreamPort)"])
            #expect(seen.values("X-Forwarded-For") == [client])
            #expect(seen.values("X-Real-IP") == [client])
            #expect(seen.values("X-Forwarded-Proto") == ["http"])
            let generated = try #require(seen.header("X-Request-ID"))
            #expect(generated.count == 32 && generated.allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(generated)")
            #expect(plain.header("X-Request-ID") == generated)
            // Hop-by-hop: Connection itself is the gateway's own, and nothing the client's Connection named survives.
            #expect(seen.values("Connection") == ["keep-alive"])
            for name in ["foo", "Keep-Alive", "TE", "Proxy-Connection"] {
                #expect(seen.values(name).isEmpty, "\(name) reached the upstream")
            }
            #expect(seen.header("User-Agent")?.hasPrefix("curl/") == true)

            // A second request gets a different generated id.
            let other = try SeenRequest(try stack.get("/ws/connect?clientId=u2"))
            #expect(other.header("X-Request-ID") != generated)
            #expect(other.header("X-Request-ID")?.count == 32)
        }

        /// A client's X-Request-ID is kept; X-Forwarded-For is appended to; X-Real-IP and X-Forwarded-Proto sent by a
        /// client are replaced, never trusted.
        @Test func clientRequestIDKeptAndSpoofedFieldsReplaced() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let client = stack.net + "22"
            let result = try stack.curl(
                [
                    "--interface", client, "-H", "X-Request-ID: req-abc-123", "-H", "X-Forwarded-For: 203.0.113.9",
                    "-H", "X-Real-IP: 198.51.100.66", "-H", "X-Forwarded-Proto: https", "-H", "Host: evil.example",
                ], url: stack.url("/ws/connect?clientId=u1"))
            #expect(result.status == 200)
            let seen = try SeenRequest(result)
            #expect(seen.values("X-Request-ID") == ["req-abc-123"])
            #expect(result.header("X-Request-ID") == "req-abc-123")
            #expect(seen.values("X-Forwarded-For") == ["203.0.113.9, \(client)"])
            #expect(seen.values("X-Real-IP") == [client])
            #expect(seen.values("X-Forwarded-Proto") == ["http"])
            #expect(seen.values("Host") == ["\(Stack.balancerName):\(stack.upstreamPort)"])
        }

        /// The pod route: the upgrade is forwarded to `<pod>.socket...:PORT` (resolved by dnsmasq), the path is
        /// rewritten to /ws/connect with the query kept, and the tunnel echoes bytes unchanged.
        @Test func websocketRouteRewritesPathAndKeepsQuery() throws {
            let stack = try Stack()
            defer { stack.stop() }
            let result = try stack.wsclient(["whoami", stack.wsURL(query: "clientId=u1&resumeOffset=7")])
            let whoami = try #require(result["whoami"] as? [String: Any])
            #expect(whoami["path"] as? String == "/ws/connect?clientId=u1&resumeOffset=7")
            #expect(whoami["server"] as? String == "\(stack.echoHost):\(stack.echoPort)")
            #expect(result["echo"] as? Bool == true)
            #expect(stack.dns.queryCount(for: "pod-a" + Stack.podSuffix) >= 1)
            // A plain GET on the WebSocket route is not proxied.
            #expect(try stack.get("/ws/pod-a/connect?clientId=u1").status == 426)
        }

        /// Unknown paths are 404; pod ids that are not DNS-1123 labels are 404 too and never reach DNS, while a
        /// well-formed unknown id does reach DNS (so the count below can see a query when one is made).
        @Test func unknownPathsAndBadPodIDsAreNotFoundWithoutDNS() throws {
            let stack = try Stack(StackSettings(echo: false))
            defer { stack.stop() }
            let notFoundBody = "{\"error\":\"not_found\"}\n"
            for path in ["/", "/nope", "/ws/connect/extra", "/ws/pod-a/connect/x", "/metrics", "/healthz"] {
                let result = try stack.get(path)
                #expect(result.status == 404, "\(path)")
                #expect(result.text == notFoundBody, "\(path)")
            }
            let longID = String(repeating: "a", count: 64)
            let badIDs = ["POD-A", "Pod-a", longID, "a..b", "-abc", "abc-", "a_b", "a%2eb"]
            let queriesBefore = stack.dns.queriesLog().components(separatedBy: "query[").count
            for id in badIDs {
                let result = try stack.upgrade("/ws/\(id)/connect?clientId=u1")
                #expect(result.status == 404, "\(id)")
                #expect(result.text == notFoundBody, "\(id)")
            }
            let log = stack.dns.queriesLog()
            #expect(log.components(separatedBy: "query[").count == queriesBefore, "DNS saw a bad pod id:\n\(log)")
            for id in badIDs { #expect(!log.lowercased().contains(id.lowercased() + "."), "\(id)") }

            // Control: a valid 63-character label is looked up (NXDOMAIN here, so 502).
            let longest = String(repeating: "b", count: 63)
            #expect(try stack.upgrade("/ws/\(longest)/connect?clientId=u1").status == 502)
            #expect(stack.dns.queryCount(for: longest + Stack.podSuffix) >= 1)
        }
    }
}

extension EndToEnd {
    @Suite("named upstream addresses")
    struct NamedUpstreamTests {
        /// SYSTEM.md §2.1: the balancer Service name is resolved through DNS, its addresses are used round-robin,
        /// and it is resolved again when the TTL runs out (here 1 s): a removed address stops getting requests.
        @Test func roundRobinOverTheNamesAddressesAndReresolutionByTTL() throws {
            var settings = StackSettings(echo: false)
            settings.secondUpstream = true
            settings.dnsTTL = 1
            settings.workers = 1
            let stack = try Stack(settings)
            defer { stack.stop() }
            let first = "\(stack.upstreamHost):\(stack.upstreamPort)"
            let second = "\(stack.upstream2Host):\(stack.upstreamPort)"

            var servers: [String] = []
            for index in 0..<8 {
                let answer = try stack.get("/ws/connect?clientId=rr\(index)")
                #expect(answer.status == 200)
                servers.append(try SeenRequest(answer).server)
            }
            // Both addresses take turns (a TTL expiry in between may restart the rotation once).
            #expect(servers.filter { $0 == first }.count >= 3, "\(servers)")
            #expect(servers.filter { $0 == second }.count >= 3, "\(servers)")

            try stack.dns.update(records: [
                Stack.balancerName: [stack.upstream2Host], "pod-a" + Stack.podSuffix: [stack.echoHost],
            ])
            // Once the 1 s TTL has run out, the name is asked again and only the remaining address is used.
            #expect(
                waitUntil(timeout: .seconds(5)) {
                    (try? (0..<4).map { _ in try SeenRequest(stack.get("/ws/connect?clientId=ttl")).server })
                        == Array(repeating: second, count: 4)
                })
            let later = try (0..<6).map { _ in try SeenRequest(stack.get("/ws/connect?clientId=after")).server }
            #expect(later == Array(repeating: second, count: 6))
        }

        /// `keepalive_timeout 1s`: the pooled connection to the upstream is used again while requests keep coming,
        /// and closed by the gateway once it has been idle for the timeout.
        @Test func idlePooledConnectionsCloseAfterKeepaliveTimeout() throws {
            var settings = StackSettings(echo: false)
            settings.balancerExtra = "keepalive_timeout 1s;"
            settings.workers = 1
            let stack = try Stack(settings)
            defer { stack.stop() }
            for index in 0..<3 { #expect(try stack.get("/ws/connect?clientId=k\(index)").status == 200) }
            // One connection to the upstream carried the three requests, and it is still open.
            #expect(try established(to: stack.upstreamHost, port: stack.upstreamPort) == 1)
            #expect(
                waitUntil(timeout: .seconds(4)) {
                    (try? established(to: stack.upstreamHost, port: stack.upstreamPort)) == 0
                })
            // A new request opens a new one.
            #expect(try stack.get("/ws/connect?clientId=again").status == 200)
            #expect(try established(to: stack.upstreamHost, port: stack.upstreamPort) == 1)
        }
    }
}

/// Established TCP connections to `host:port` on this machine (`ss`), counting the client sides only.
private func established(to host: String, port: UInt16) throws -> Int {
    let (status, output) = try runProgram(
        "/usr/bin/ss", ["-Htn", "state", "established", "dst", "\(host):\(port)"],
        scratch: NSTemporaryDirectory() + "ss-\(UUID().uuidString)")
    guard status == 0 else { throw SetupError("ss failed: \(output)") }
    return output.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
}
