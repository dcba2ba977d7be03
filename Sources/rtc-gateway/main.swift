// rtc-gateway: parses arguments, loads the configuration, and starts the gateway (or only checks the file).
import EventLoop
import Foundation
import Gateway
import GatewayConfig
import HTTPServer
import Metrics
import Sys

let version = "0.1.0"

let usage = """
    usage: rtc-gateway [--config FILE] [--workers N]
           rtc-gateway --check-config FILE
           rtc-gateway --help | --version

    The L7 gateway of Reactive RTC: HTTP/1.1 and WebSocket reverse proxy.

    options:
      --config FILE        configuration file (default /etc/rtc-gateway/gateway.conf)
      --check-config FILE  load and validate FILE, print 'FILE:LINE: message' for each problem, then exit:
                           0 when valid, 1 when not (like nginx -t)
      --workers N          event loops (overrides the file's 'workers'; default one per core)
      --help               this text
      --version            the version

    RTC_EVENTS=auto|epoll|io_uring picks the event loops' readiness backend (default epoll; the file's 'events' wins).

    signals: SIGHUP reloads the configuration; SIGTERM and SIGQUIT drain and exit.

    """

func fail(_ message: String, status: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("rtc-gateway: \(message)\n".utf8))
    exit(status)
}

func say(_ message: String) {
    FileHandle.standardOutput.write(Data("\(message)\n".utf8))
}

/// Reads and validates a configuration file; the errors come back as `file:line: message` lines.
func load(path: String) -> Result<GatewayConfig, ConfigErrors> {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
    else {
        return .failure(ConfigErrors([ConfigError(file: path, line: 0, message: "cannot read the file")]))
    }
    return loadConfig(
        text: text, file: path, environment: ProcessInfo.processInfo.environment,
        cores: ProcessInfo.processInfo.activeProcessorCount)
}

var configPath = "/etc/rtc-gateway/gateway.conf"
var checkOnly = false
var workersOverride: Int?
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--help", "-h":
        say(usage)
        exit(0)
    case "--version":
        say("rtc-gateway \(version)")
        exit(0)
    case "--config", "-c":
        guard let value = arguments.popFirst() else { fail("--config needs a file\n\(usage)") }
        configPath = value
    case "--check-config", "-t":
        guard let value = arguments.popFirst() else { fail("--check-config needs a file\n\(usage)") }
        configPath = value
        checkOnly = true
    case "--workers":
        guard let value = arguments.popFirst(), let count = Int(value), count > 0, count <= 256 else {
            fail("--workers needs a number from 1 to 256")
        }
        workersOverride = count
    default:
        fail("unknown argument '\(argument)'\n\(usage)")
    }
}

switch load(path: configPath) {
case .failure(let errors):
    FileHandle.standardError.write(Data("\(errors.description)\n".utf8))
    fail("configuration \(configPath) is invalid (\(errors.errors.count) problem(s))", status: 1)
case .success(let config):
    if checkOnly {
        say(
            "rtc-gateway: configuration \(configPath) is valid (\(config.routes.routes.count) routes, "
                + "\(config.upstreams.count) upstreams, hash \(String(config.configHash, radix: 16)))")
        exit(0)
    }
    run(config: config, path: configPath, workersOverride: workersOverride)
}
