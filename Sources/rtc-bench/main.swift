// rtc-bench: load tools for the whole flow: `http-server` (the HTTP bench's fixed-response server), `ws-echo`,
// `ws-load` and `ws-upgrades` (the WebSocket bench's compiled echo upstream, load client and upgrade client),
// `kafka-mock`, `ring-update`, `socket-load` and `socket-idle` (the socket node's bench: its Kafka, its ring, its
// message load and its idle sessions), `relay` (the parse-nothing TCP relay the proxy benches use as their floor).
import EventLoop
import HTTPServer
import Sys

let version = "0.1.0"

let usage = """
    usage: rtc-bench <command> [options]

    commands:
      run --target HOST:PORT [--clients N] [--ramp R] [--hold S] [--rate R] [--processes N] [--out DIR] ...
          The whole client flow through the gateway (assignment GET, WebSocket, messages between clients) with
          every message accounted for; latency histograms, a progress line, a Markdown summary, JSON and an SVG
          chart. `rtc-bench run --help` lists every option.

      http-server --port PORT [--host ADDRESS] [--workers N]
          Serve GET / with 200 "ok" (text/plain) through the zero-allocation fixed-response path,
          N event loops (default 1), one SO_REUSEPORT listener each. Runs until killed.

      ws-echo --port PORT [--host ADDRESS] [--workers N]
          RFC 6455 echo server: answers the upgrade (101 with Sec-WebSocket-Accept), then echoes every data
          frame unmasked with its own opcode, Ping with Pong, Close with Close. Frames stream through as they
          arrive (any size, split or batched). N event loops, one SO_REUSEPORT listener each; logs
          "listening on ADDRESS:PORT" on stderr. Runs until killed.

      ws-load --url ws://HOST:PORT/PATH [--connections C] [--in-flight K] [--size S] [--duration D]
              [--warmup W] [--workers N] [--check content|length] [--cpu-pids PID,...]
          Opens C WebSocket connections (default 1) over N event loops (default 1), keeps K messages (default
          1) of S bytes (default 64) in flight on each, one binary frame per message, a new one for each echo.
          Each echo must be one binary frame of S bytes in sending order; with --check content (default) also
          byte for byte (an 8-byte sequence number, then a fixed pattern). Counts echoes for D seconds
          (default 5) starting W seconds (default 0) after every connection is upgraded, then prints one line:
            msgs=N seconds=S rate=MSGS_PER_S errors=E connect_failures=F client_cpu_s=X [cpu_ticks=T]
          (cpu_ticks: utime+stime of the --cpu-pids processes over the window, in clock ticks). HOST is an IP
          literal or localhost. Exits 1 when a connection failed or an echo was wrong, 2 on bad arguments.

      ws-upgrades --url ws://HOST:PORT/PATH [--total N] [--concurrency C] [--workers W] [--sources K]
                  [--timeout T] [--cpu-pids PID,...]
          Opens N new WebSocket connections (default 10000), at most C at a time (default 64), over W event
          loops (default 1). Each one: TCP connect, upgrade (101 and Sec-WebSocket-Accept checked), one masked
          16-byte binary message and its echo (checked byte for byte), a masked Close 1000 and the Close echoed
          back, then the server's FIN, and only then the client closes (the server closes first, so TIME_WAIT
          stays on the server side, RFC 6455 §7.1.1). --sources K binds the sockets to 127.0.1.1..127.0.1.K in
          turn (default 0: the kernel's choice). Gives up after T seconds (default 60). Prints one line:
            upgrades=N seconds=S rate=UPGRADES_PER_S failures=F client_cpu_s=X [cpu_ticks=T]
          (seconds: from the first connect to the end of the last connection; cpu_ticks: utime+stime of the
          --cpu-pids processes over that window, in clock ticks). Exits 1 when any connection failed.

      kafka-mock [--brokers N] [--topic NAME[:PARTITIONS]]...
          Runs librdkafka's mock cluster with N brokers (default 1) on loopback ports, creates rtc.control.ring
          (1 partition) and any --topic, prints "bootstrap=HOST:PORT,..." on stdout, and runs until SIGTERM or
          SIGINT. Other processes connect to it as their bootstrap servers.

      ring-update --nodes ID,... --secret SECRET [--version V] [--reason R]
          Prints a RingUpdate of the nodes (weight 1 each, version V, default 1) signed with SECRET (the nodes'
          RING_SECRET) as one line of JSON: the value of rtc:ring in Redis (e.g. redis-cli SET rtc:ring "$(...)").

      socket-load --senders-at HOST:PORT [--receivers-at HOST:PORT] --ring-nodes ID,...
                  [--senders-node ID] [--receivers-node ID] [--pairs N] [--messages M] [--window W] [--size B]
                  [--timeout T] [--concurrency C] [--cpu LABEL=PID]...
          N sender/receiver pairs (default 10) on one event loop: senders connect to --senders-at, receivers to
          --receivers-at (default: the same node). Client ids are fresh for every run and chosen so the ring of
          --ring-nodes (weight 1 each, as ring-update writes it) gives senders to --senders-node (default the first
          ring node) and receivers to --receivers-node (default: the senders' node when both addresses are the
          same, else the last ring node); every welcome must name that node and a ring version. Once every session
          is welcomed, sender i sends M messages (default 1000) to receiver i with a payloadJson of B bytes
          (default 64), keeping at most W (default 8) sent and not yet both accepted and received. Checks every
          message is accepted and received exactly once, in order, with offsets 1..M, from its sender. Latency is
          from the send to the receipt (both here, monotonic clock). Prints a JSON line (rate = received / seconds
          from the first send to the last receipt, latency_ms p50 p90 p99 p999 max, error counts, CPU seconds of
          this process and of each --cpu process over that interval, and per message) and a human line. Gives up
          after T seconds (default 60) per phase. Exits 1 when anything was lost, repeated, reordered or refused.

      socket-idle --target HOST:PORT [--connections N] [--hold-seconds S] [--concurrency C] [--sources K]
                  [--prefix P] [--timeout T]
          Opens N sessions (default 1000; ids P0, P1, …, P a fresh random prefix by default; at most C handshakes
          at a time, default 128) and waits for every welcome, then prints
            open=N failed=F seconds=S holding=H
          holds them idle for S seconds (default 10; the node's Pings are answered), closes them (Close 1000) and
          prints "closed opened=N failed=F lost=L". --sources K binds to 127.0.1.1..127.0.1.K in turn. Use a node
          whose ring owns every id (one node), or they are moved. Exits 1 when a session failed or was lost.

      relay --listen HOST:PORT --upstream HOST:PORT [--backend epoll|uring|uring-multishot] [--buffer-size N]
            [--max-connections M] [--buffer-count K] [--probe]
          A 1:1 TCP relay that parses nothing: each accepted client gets its own upstream connection (nonblocking
          connect) and bytes are relayed both ways on one thread, with nothing allocated per event. End of input
          on one side shuts down the other side's write direction; both sockets close once both directions ended.
          A direction whose destination is full stops reading its source until the destination drains. Backends:
          epoll (default; edge-triggered, read and send, one N-byte buffer per direction), uring (io_uring with
          SINGLE_ISSUER and DEFER_TASKRUN: one recv per side in flight into the direction's buffer, a send on its
          completion, one io_uring_submit_and_wait per loop turn), uring-multishot (multishot accept, multishot
          recv into a ring of K provided N-byte buffers, each recycled once its bytes are sent; a direction with 8
          buffers waiting stops receiving until they are sent; a receive that found no free buffer is armed again
          once buffers come back). N defaults to 16384, M (pairs held at once; beyond it epoll leaves clients in
          the listen queue, io_uring refuses them) to 4096, K (a power of two) to 2048. Logs
            rtc-bench relay listening on ADDRESS backend NAME upstream ADDRESS
          on stderr and runs until SIGTERM or SIGINT. --probe only checks that the backend can run here: prints
          "relay: backend NAME available" and exits 0, or why not and exits 1.

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

/// The value after `flag`, or a usage failure.
func value(of flag: String, _ rest: inout ArraySlice<String>) -> String {
    guard let value = rest.popFirst() else { fail("\(flag) needs a value") }
    return value
}

/// The integer after `flag`, which must lie in `range`.
func number(of flag: String, _ rest: inout ArraySlice<String>, in range: ClosedRange<Int>) -> Int {
    guard let parsed = Int(value(of: flag, &rest)), range.contains(parsed) else {
        fail("\(flag) needs a number in \(range.lowerBound)...\(range.upperBound)")
    }
    return parsed
}

/// Non-negative seconds after `flag` (a decimal number).
func seconds(of flag: String, _ rest: inout ArraySlice<String>) -> Double {
    guard let parsed = Double(value(of: flag, &rest)), parsed >= 0, parsed < 1e6 else {
        fail("\(flag) needs a number of seconds")
    }
    return parsed
}

/// The comma list of process ids after `flag`.
func pids(of flag: String, _ rest: inout ArraySlice<String>) -> [Int32] {
    var pids: [Int32] = []
    for part in value(of: flag, &rest).split(separator: ",") {
        guard let pid = Int32(part), pid > 0 else { fail("\(flag) takes a comma list of pids") }
        pids.append(pid)
    }
    return pids
}

/// `value` with `decimals` digits after the point (no Foundation formatting).
func fixed(_ value: Double, _ decimals: Int) -> String {
    var scale = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int((abs(value) * Double(scale)).rounded())
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(scaled) }
    let fraction = String(scaled % scale)
    return sign + String(scaled / scale) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
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
case "ws-echo":
    runWSEcho(arguments)
case "ws-load":
    runWSLoad(arguments)
case "ws-upgrades":
    runWSUpgrades(arguments)
case "kafka-mock":
    runKafkaMock(arguments)
case "ring-update":
    runRingUpdate(arguments)
case "socket-load":
    runSocketLoad(arguments)
case "socket-idle":
    runSocketIdle(arguments)
case "run":
    runRun(arguments)
case "relay":
    runRelay(arguments)
case let other?:
    fail("unknown command \(other)")
}
