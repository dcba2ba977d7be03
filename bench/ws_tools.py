#!/usr/bin/python3
"""WebSocket servers and load clients for the bench scripts (run with Debian's /usr/bin/python3).

  echo-lib PORT                      RFC 6455 echo server on the `websockets` library (ws-idle.sh upstream)
  idle-client URL N CONCURRENCY      open N tunnels with `websockets`, one echoed message each, print
                                     "READY ok=.. failed=..", then hold them until SIGTERM/SIGINT
  echo-raw PORT                      fast echo for ws-throughput.sh: real handshake, then answers every
                                     masked client frame of SIZE bytes with one unmasked SIZE-byte frame,
                                     counting frames without reading payloads (SO_REUSEPORT: run several)
  throughput-client URL CONNS INFLIGHT DURATION PROCS [CPU_PIDS]
                                     CONNS connections over PROCS processes, INFLIGHT messages of SIZE bytes
                                     in flight per connection, for DURATION s; prints one line:
                                     "msgs=.. seconds=.. msg_per_s=.. cpu_s=.." (cpu_s: utime+stime of the
                                     comma-separated CPU_PIDS over exactly the measured window)
SIZE is the environment variable WS_SIZE (64; at most 125 so the length fits the first header byte).
"""

import asyncio
import base64
import hashlib
import multiprocessing
import os
import resource
import signal
import socket
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SIZE = int(os.environ.get("WS_SIZE", "64"))
assert 0 < SIZE <= 125
# Client frames are masked (RFC 6455 §5.3): FIN+binary, MASK bit | length, 4-byte key, masked payload.
MASK = b"\x11\x22\x33\x44"
CLIENT_FRAME = bytes([0x82, 0x80 | SIZE]) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(b"x" * SIZE))
SERVER_FRAME = bytes([0x82, SIZE]) + b"x" * SIZE


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


# ---- library-based echo and idle client -------------------------------------------------------------


async def echo_lib(port):
    import websockets

    async def handler(ws, _path=None):
        async for msg in ws:
            await ws.send(msg)

    async with websockets.serve(
        handler, "127.0.0.1", port, ping_interval=None, compression=None, backlog=4096, max_queue=4
    ):
        await asyncio.Future()


async def idle_client(url, n, concurrency):
    import websockets

    sem = asyncio.Semaphore(concurrency)
    conns, failed = [], 0
    payload = b"p" * SIZE

    async def one(i):
        nonlocal failed
        async with sem:
            try:
                ws = await asyncio.wait_for(
                    websockets.connect(url, ping_interval=None, compression=None, max_queue=4, close_timeout=1),
                    30,
                )
                await ws.send(payload)
                got = await asyncio.wait_for(ws.recv(), 30)
                if got != payload:
                    raise ValueError("echo mismatch")
                conns.append(ws)
            except Exception as e:  # noqa: BLE001 - every failure is counted and the first few shown
                failed += 1
                if failed <= 3:
                    print(f"connection {i} failed: {e!r}", file=sys.stderr)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    print(f"READY ok={len(conns)} failed={failed} seconds={time.monotonic() - t0:.1f}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    os._exit(0)  # the kernel closes every socket at once; a 5000-way close handshake is not what we measure


# ---- raw fast echo ----------------------------------------------------------------------------------


class RawEcho(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.head = b""
        self.pending = 0
        self.upgraded = False

    def data_received(self, data):
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            key = b""
            for line in self.head[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            rest = self.head[end + 4 :]
            self.head = b""
            self.upgraded = True
            self.t.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
            )
            data = rest
        total = self.pending + len(data)
        frames, self.pending = divmod(total, len(CLIENT_FRAME))
        if frames:
            self.t.write(SERVER_FRAME * frames)


async def echo_raw(port):
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    server = await loop.create_server(RawEcho, sock=sock)
    async with server:
        await server.serve_forever()


# ---- raw throughput client --------------------------------------------------------------------------


class LoadConn(asyncio.Protocol):
    def __init__(self, host, inflight, ready):
        self.host, self.inflight, self.ready = host, inflight, ready
        self.key = base64.b64encode(os.urandom(16))
        self.head = b""
        self.upgraded = False
        self.pending = 0
        self.count = 0
        self.counting = False
        self.running = False

    def connection_made(self, transport):
        self.t = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(
            b"GET / HTTP/1.1\r\nHost: " + self.host.encode() + b"\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + self.key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def data_received(self, data):
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.head[:end]
            if not head.startswith(b"HTTP/1.1 101") or accept_key(self.key) not in head:
                self.ready.set_exception(RuntimeError(f"bad upgrade answer: {head[:200]!r}"))
                return
            self.upgraded = True
            data = self.head[end + 4 :]
            self.ready.set_result(None)
        total = self.pending + len(data)
        frames, self.pending = divmod(total, len(SERVER_FRAME))
        if self.counting:
            self.count += frames
        if self.running and frames:
            self.t.write(CLIENT_FRAME * frames)

    def start(self):
        self.running = True
        self.t.write(CLIENT_FRAME * self.inflight)

    def connection_lost(self, exc):
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"connection lost before upgrade: {exc!r}"))


def cpu_ticks(pids):
    total = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


async def load_worker(host, port, conns, inflight, q_ready, q_go, q_out):
    loop = asyncio.get_running_loop()
    protos = []
    for _ in range(conns):
        ready = loop.create_future()
        _, proto = await loop.create_connection(lambda: LoadConn(host, inflight, ready), host, port)
        await asyncio.wait_for(ready, 10)
        protos.append(proto)
    q_ready.put(os.getpid())
    start_at, duration = await loop.run_in_executor(None, q_go.get)
    await asyncio.sleep(max(0.0, start_at - time.time() - 0.3))
    for p in protos:  # start 0.3 s early so the window measures the steady state
        p.start()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    for p in protos:
        p.counting = True
    await asyncio.sleep(max(0.0, start_at + duration - time.time()))
    for p in protos:
        p.counting = False
        p.running = False
    q_out.put(sum(p.count for p in protos))
    for p in protos:
        p.t.close()


def load_proc(*args):
    raise_nofile()
    asyncio.run(load_worker(*args))


def throughput_client(url, conns, inflight, duration, procs, cpu_pids):
    hostport = url.split("//", 1)[1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    ctx = multiprocessing.get_context("fork")
    q_ready, q_go, q_out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    shares = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(target=load_proc, args=(host, int(port), s, inflight, q_ready, q_go, q_out)) for s in shares if s
    ]
    for w in workers:
        w.start()
    for _ in workers:
        q_ready.get(timeout=60)
    start_at = time.time() + 0.5
    for _ in workers:
        q_go.put((start_at, duration))
    time.sleep(max(0.0, start_at - time.time()))
    c0, t0 = (cpu_ticks(cpu_pids) if cpu_pids else 0), time.monotonic()
    time.sleep(max(0.0, start_at + duration - time.time()))
    c1, t1 = (cpu_ticks(cpu_pids) if cpu_pids else 0), time.monotonic()
    msgs = sum(q_out.get(timeout=30) for _ in workers)
    for w in workers:
        w.join(10)
    hz = os.sysconf("SC_CLK_TCK")
    secs = t1 - t0
    print(f"msgs={msgs} seconds={secs:.3f} msg_per_s={msgs / secs:.0f} cpu_s={(c1 - c0) / hz:.3f}", flush=True)


def main():
    raise_nofile()
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "echo-lib":
        asyncio.run(echo_lib(int(args[0])))
    elif cmd == "idle-client":
        asyncio.run(idle_client(args[0], int(args[1]), int(args[2])))
    elif cmd == "echo-raw":
        asyncio.run(echo_raw(int(args[0])))
    elif cmd == "throughput-client":
        pids = [int(p) for p in args[5].split(",") if p] if len(args) > 5 else []
        throughput_client(args[0], int(args[1]), int(args[2]), float(args[3]), int(args[4]), pids)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
