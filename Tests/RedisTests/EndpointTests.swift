// Redis URLs, good and bad, and how an endpoint prints.
import Testing

@testable import Redis

@Suite struct EndpointTests {
    struct Good: CustomTestStringConvertible, Sendable {
        let url: String
        let expected: RedisEndpoint
        var testDescription: String { url }
    }

    static let good: [Good] = [
        Good(url: "redis://localhost", expected: RedisEndpoint(host: "localhost")),
        Good(url: "redis://redis:6380", expected: RedisEndpoint(host: "redis", port: 6380)),
        Good(url: "REDIS://Redis.Example:7000/", expected: RedisEndpoint(host: "Redis.Example", port: 7000)),
        Good(url: "redis://10.0.0.5/3", expected: RedisEndpoint(host: "10.0.0.5", database: 3)),
        Good(
            url: "redis://:s3cret@redis.rtc.svc.cluster.local:6379/2",
            expected: RedisEndpoint(host: "redis.rtc.svc.cluster.local", database: 2, password: "s3cret")),
        Good(
            url: "redis://app:pw@127.0.0.1:6390",
            expected: RedisEndpoint(host: "127.0.0.1", port: 6390, password: "pw", username: "app")),
        Good(
            url: "redis://:p%40ss%3Aw%2Fd@h", expected: RedisEndpoint(host: "h", password: "p@ss:w/d")),
        Good(url: "redis://:a@b@h", expected: RedisEndpoint(host: "h", password: "a@b")),
        Good(url: "redis://[::1]:6381/1", expected: RedisEndpoint(host: "::1", port: 6381, database: 1)),
        Good(url: "redis://[fd00::a]", expected: RedisEndpoint(host: "fd00::a")),
        Good(url: "redis://redis_master-0", expected: RedisEndpoint(host: "redis_master-0")),
    ]

    @Test(arguments: good) func parsesGoodURLs(_ row: Good) throws {
        #expect(try RedisEndpoint.parse(url: row.url) == row.expected)
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        let url: String
        let error: RedisConfigError
        var testDescription: String { url }
    }

    static let bad: [Bad] = [
        Bad(url: "", error: .notARedisURL),
        Bad(url: "localhost:6379", error: .unsupportedScheme("localhost")),
        Bad(url: "redis:/localhost", error: .unsupportedScheme("redis")),
        Bad(url: "rediss://localhost", error: .unsupportedScheme("rediss")),
        Bad(url: "http://localhost", error: .unsupportedScheme("http")),
        Bad(url: "redis://", error: .missingHost),
        Bad(url: "redis://:6379", error: .missingHost),
        Bad(url: "redis://:pw@", error: .missingHost),
        Bad(url: "redis://host:0", error: .invalidPort("0")),
        Bad(url: "redis://host:65536", error: .invalidPort("65536")),
        Bad(url: "redis://host:-1", error: .invalidPort("-1")),
        Bad(url: "redis://host:", error: .invalidPort("")),
        Bad(url: "redis://host:63 79", error: .invalidPort("63 79")),
        Bad(url: "redis://host/x", error: .invalidDatabase("x")),
        Bad(url: "redis://host/1/2", error: .invalidDatabase("1/2")),
        Bad(url: "redis://host/-1", error: .invalidDatabase("-1")),
        Bad(url: "redis://host/99999999999", error: .invalidDatabase("99999999999")),
        Bad(url: "redis://host?db=1", error: .queryNotSupported),
        Bad(url: "redis://host#x", error: .queryNotSupported),
        Bad(url: "redis://secret@host", error: .credentialsWithoutColon),
        Bad(url: "redis://user:@host", error: .emptyPassword),
        Bad(url: "redis://:pa%4@host", error: .invalidPercentEncoding),
        Bad(url: "redis://:pa%zz@host", error: .invalidPercentEncoding),
        Bad(url: "redis://ho st", error: .invalidHost),
        Bad(url: "redis://[::1", error: .invalidHost),
        Bad(url: "redis://[::1]6379", error: .invalidHost),
        Bad(url: "redis://[]:6379", error: .invalidHost),
        Bad(url: "redis://[not-v6]", error: .invalidHost),
    ]

    @Test(arguments: bad) func refusesBadURLs(_ row: Bad) {
        #expect(throws: row.error) { try RedisEndpoint.parse(url: row.url) }
    }

    @Test func errorsAndDescriptionsNeverShowThePassword() throws {
        for url in ["redis://:hunter2@host:99999", "redis://u:hunter2@host/x", "redis://:hunter2@host?x"] {
            do {
                _ = try RedisEndpoint.parse(url: url)
                Issue.record("\(url) parsed")
            } catch {
                #expect(!error.description.contains("hunter2"))
                #expect(!error.description.isEmpty)
            }
        }
        let endpoint = try RedisEndpoint.parse(url: "redis://app:hunter2@redis:6380/4")
        #expect(endpoint.description == "redis://app:***@redis:6380/4")
        #expect(RedisEndpoint(host: "::1").description == "redis://[::1]:6379")
        #expect(RedisConfigError.unsupportedScheme("rediss").description.contains("TLS"))
    }
}
