// NodeConfiguration: environment, flags, defaults and the messages that name a bad setting.
import Testing

@testable import SocketNode

@Suite struct NodeConfigurationTests {
    static let base = ["RING_SECRET": "s"]

    @Test func defaultsWithOnlyTheRequiredSecret() throws {
        let configuration = try NodeConfiguration.parse(arguments: [], environment: Self.base).get()
        #expect(configuration.httpPort == 8080)
        #expect(configuration.drainSeconds == 300)
        #expect(configuration.resumeTTLSeconds == 120)
        #expect(configuration.podIP == "127.0.0.1")
        #expect(configuration.authSecret.isEmpty)
    }

    @Test func environmentThenFlagsWhichWin() throws {
        let environment = Self.base.merging([
            "NODE_ID": "socket-7d9f-abc12", "HTTP_PORT": "9000", "BIND_ADDRESS": "127.0.0.5", "AUTH_SECRET": "a",
            "DRAIN_SECONDS": "30", "POD_IP": "10.0.0.9",
        ]) { $1 }
        let configuration = try NodeConfiguration.parse(
            arguments: ["--port", "9001", "--drain-seconds=5"], environment: environment
        ).get()
        #expect(configuration.nodeID == "socket-7d9f-abc12")
        #expect(configuration.httpPort == 9001)
        #expect(configuration.drainSeconds == 5)
        #expect(configuration.bindAddress == "127.0.0.5")
        #expect(configuration.podIP == "10.0.0.9")
        #expect(configuration.authSecret == Array("a".utf8))
        let derived = try NodeConfiguration.parse(arguments: ["--bind", "127.0.0.6"], environment: Self.base).get()
        #expect(derived.podIP == "127.0.0.6")
    }

    /// Each bad value stops start-up with a message naming the setting.
    @Test(arguments: [
        (["HTTP_PORT": "0"], "HTTP_PORT"),
        (["HTTP_PORT": "70000"], "HTTP_PORT"),
        (["DRAIN_SECONDS": "-1"], "DRAIN_SECONDS"),
        (["DRAIN_SECONDS": "ten"], "DRAIN_SECONDS"),
        (["NODE_ID": "Socket_1"], "NODE_ID"),
        (["NODE_ID": "-a"], "NODE_ID"),
        (["BIND_ADDRESS": "localhost"], "BIND_ADDRESS"),
        (["REDIS_URL": "http://x"], "REDIS_URL"),
        (["BUFFER_MAX": "0"], "BUFFER_MAX"),
        (["HEARTBEAT_INTERVAL_SEC": "20"], "HEARTBEAT_TTL_SEC"),
        (["PING_INTERVAL_SEC": "30"], "IDLE_TIMEOUT_SEC"),
    ])
    func badValuesNameTheirSetting(environment: [String: String], name: String) {
        let result = NodeConfiguration.parse(arguments: [], environment: Self.base.merging(environment) { $1 })
        guard case .failure(let error) = result else {
            Issue.record("\(environment) was accepted")
            return
        }
        #expect(error.message.contains(name), "\(error.message)")
    }

    @Test func missingSecretUnknownFlagAndMissingValue() {
        #expect(
            (try? NodeConfiguration.parse(arguments: [], environment: [:]).get()) == nil)
        if case .failure(let error) = NodeConfiguration.parse(arguments: [], environment: [:]) {
            #expect(error.message.contains("RING_SECRET"))
        }
        if case .failure(let error) = NodeConfiguration.parse(arguments: ["--frobnicate"], environment: Self.base) {
            #expect(error.message.contains("--frobnicate"))
        } else {
            Issue.record("unknown flag accepted")
        }
        if case .failure(let error) = NodeConfiguration.parse(arguments: ["--port"], environment: Self.base) {
            #expect(error.message.contains("--port needs a value"))
        } else {
            Issue.record("flag without value accepted")
        }
    }

    @Test func helpListsEveryVariableWithItsDefault() {
        let help = NodeConfiguration.helpText
        for name in [
            "NODE_ID", "POD_NAMESPACE", "POD_IP", "REDIS_URL", "KAFKA_BOOTSTRAP", "RING_SECRET", "AUTH_SECRET",
            "DRAIN_SECONDS", "RESUME_TTL_SEC", "BIND_ADDRESS", "HTTP_PORT", "BUFFER_MAX",
        ] {
            #expect(help.contains(name), "\(name)")
        }
        #expect(help.contains("(default 300)"))
    }

    @Test func batchScheduleSpreadsOverTheWindow() {
        let schedule = BatchSchedule(total: 10, start: 1000, window: 100)
        #expect(schedule.due(at: 1000) == 0)
        #expect(schedule.due(at: 1001) == 1)
        #expect(schedule.due(at: 1050) == 5)
        #expect(schedule.due(at: 1099) == 10)
        #expect(schedule.due(at: 5000) == 10)
        #expect(BatchSchedule(total: 4, start: 0, window: 0).due(at: 0) == 4)
    }
}
