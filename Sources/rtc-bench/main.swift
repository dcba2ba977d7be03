// rtc-bench: load tools for the whole flow; for now `http-server`, the fixed-response server the HTTP bench measures.
import EventLoop
import HTTPServer
import Sys

let version = "0.1.0"

let usage = """
    usage: rtc-bench <command> [options]

    commands:
      http-server --port PORT [--host ADDRESS] [--workers N]
          Serve GET / with 200 "ok" (text/plain) through the zero-allocation fixed-response path,
          N event loops (default 1), one SO_REUSEPORT listener each. Runs until killed.

    options:
      --help       this text
      --version    the version

    """

/// Writes a line to fd 2 (unbuffered: the line is there even when the process is killed later).
func log(_ text: String, to fd: FileDescriptor = FileDescriptor(2)) {
    let line = Array((text + "\n").utf8)
    line.withUnsafeBytes { _ = try? fd.write($0) }
}

func fail(_ text: String) -> Never {
    log("rtc-bench: \(text)")
    log("try 'rtc-bench --help'")
    exitProcess(2)
}

func runHTTPServer(_ arguments: ArraySlice<String>) {
    var port: UInt16?
    var host = "127.0.0.1"
    var workers = 1
    var rest = arguments
    while let flag = rest.popFirst() {
        switch flag {
        case "--port":
            guard let value = rest.popFirst(), let parsed = UInt16(value) else { fail("--port needs a number") }
            port = parsed
        case "--host":
            guard let value = rest.popFirst() else { fail("--host needs an address") }
            host = value
        case "--workers":
            guard let value = rest.popFirst(), let parsed = Int(value), parsed >= 1, parsed <= 256 else {
                fail("--workers needs a number in 1...256")
            }
            workers = parsed
        case "--help", "-h":
            log(usage, to: FileDescriptor(1))
            exitProcess(0)
        default:
            fail("http-server: unknown option \(flag)")
        }
    }
    guard let port else { fail("http-server: --port is required") }
    guard let address = SocketAddress(host: host, port: port) else { fail("http-server: bad address \(host)") }
    _ = try? raiseOpenFileLimit()
    var router = Router()
    router.get("/", fixed: FixedResponse(status: 200, contentType: "text/plain", body: "ok"))
    let server = HTTPServer(router: router, configuration: ServerConfiguration(maxConnections: 19_000))
    do {
        let group = try EventLoopGroup(loops: workers)
        let bound = try server.listen(on: group, address: address)
        try group.start()
        log("rtc-bench http-server listening on \(bound) with \(workers) worker(s)")
        group.join()
    } catch {
        fail("http-server: \(error)")
    }
}

var arguments = CommandLine.arguments.dropFirst()
switch arguments.popFirst() {
case "--help", "-h", nil:
    log(usage, to: FileDescriptor(1))
case "--version":
    log("rtc-bench \(version)", to: FileDescriptor(1))
case "http-server":
    runHTTPServer(arguments)
case let other?:
    fail("unknown command \(other)")
}
