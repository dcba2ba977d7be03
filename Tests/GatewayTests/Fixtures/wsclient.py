# WebSocket client for the gateway's end-to-end tests (Python `websockets` 10.x); prints one JSON result line.
#
# usage: wsclient.py MODE URL [ARGS...]
#   whoami URL                     one tunnel: {"whoami": <server's answer>, "echo": true if a binary echo matched}
#   load URL N                     N tunnels at once, random-size binary and text messages on each, every echo checked
#   hold URL N READY GO            N tunnels, one echo each, then READY (a file) is written; waits for GO (a file),
#                                  then one more echo on each: {"opened","echoed_before","echoed_after"}
#   idle URL                       two tunnels; A echoes again after 1.5 s idle; B stays idle until closed:
#                                  {"a_after_idle": bool, "b_closed_after": seconds or null}
#   drain URL READY                one tunnel, echo, READY written, then waits for the close:
#                                  {"echo": bool, "closed_at": Unix time of the close, "code": close code}
#   dnsflip URL READY GO SETTLE    tunnel T1 reports its server; READY written; SETTLE seconds after GO, six new
#                                  tunnels report theirs; then T1 echoes again: {"before","later","old_echo","old_after"}
import asyncio
import json
import os
import random
import sys
import time

import websockets


def connect(url):
    return websockets.connect(url, max_size=None, ping_interval=None, close_timeout=1, open_timeout=20)


async def echo_once(ws, size=None):
    data = os.urandom(size if size is not None else random.randint(1, 70000))
    await ws.send(data)
    return await asyncio.wait_for(ws.recv(), 10) == data


async def whoami(ws):
    await ws.send("__whoami")
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def wait_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        await asyncio.sleep(0.02)


def touch(path):
    with open(path + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(path + ".tmp", path)


async def mode_whoami(url):
    async with connect(url) as ws:
        answer = await whoami(ws)
        return {"whoami": answer, "echo": await echo_once(ws, 100000)}


async def mode_load(url, n):
    failures = []
    messages = 0
    byte_count = 0

    async def one(i):
        nonlocal messages, byte_count
        try:
            async with connect(url) as ws:
                # Frame-length boundaries (125/126, 65535/65536) and random sizes; about 10 KiB a message on average.
                for _ in range(2):
                    size = random.choice([1, 125, 126, 127, 1000, 65535, 65536, random.randint(1, 16000)])
                    data = os.urandom(size)
                    await ws.send(data)
                    back = await asyncio.wait_for(ws.recv(), 20)
                    if back != data:
                        failures.append("tunnel %d: binary echo of %d bytes differs" % (i, size))
                        return
                    messages += 1
                    byte_count += size
                text = "tunnel %d says hello %s" % (i, "x" * random.randint(0, 300))
                await ws.send(text)
                if await asyncio.wait_for(ws.recv(), 20) != text:
                    failures.append("tunnel %d: text echo differs" % i)
                    return
                messages += 1
        except Exception as error:
            failures.append("tunnel %d: %r" % (i, error))

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    return {
        "tunnels": n, "failures": len(failures), "first_failures": failures[:5], "messages": messages,
        "bytes": byte_count, "seconds": round(time.monotonic() - started, 2),
    }


async def mode_hold(url, n, ready, go):
    sockets = []
    failures = []

    async def open_one(i):
        try:
            ws = await connect(url)
            sockets.append(ws)
            return await echo_once(ws, random.randint(1, 4000))
        except Exception as error:
            failures.append(repr(error))
            return False

    # Batches keep the listen backlogs of the gateway and the echo server from overflowing.
    before = 0
    for start in range(0, n, 250):
        results = await asyncio.gather(*(open_one(i) for i in range(start, min(n, start + 250))))
        before += sum(results)
    touch(ready)
    await wait_file(go)

    async def again(ws):
        try:
            return await echo_once(ws, random.randint(1, 4000))
        except Exception as error:
            failures.append(repr(error))
            return False

    after = sum(await asyncio.gather(*(again(ws) for ws in sockets)))
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"opened": len(sockets), "echoed_before": before, "echoed_after": after, "first_failures": failures[:5]}


async def mode_idle(url):
    async with connect(url) as a, connect(url) as b:
        assert await echo_once(a, 10) and await echo_once(b, 10)
        b_active = time.monotonic()
        await asyncio.sleep(1.5)
        try:
            a_ok = await echo_once(a, 10)
        except Exception:
            a_ok = False
        try:
            await asyncio.wait_for(b.wait_closed(), 8)
            b_closed = round(time.monotonic() - b_active, 2)
        except asyncio.TimeoutError:
            b_closed = None
        return {"a_after_idle": a_ok, "b_closed_after": b_closed}


async def mode_drain(url, ready):
    async with connect(url) as ws:
        ok = await echo_once(ws, 1000)
        touch(ready)
        try:
            await asyncio.wait_for(ws.wait_closed(), 15)
            closed = time.time()
        except asyncio.TimeoutError:
            closed = None
        return {"echo": ok, "closed_at": closed, "code": ws.close_code}


async def mode_dnsflip(url, ready, go, settle):
    async with connect(url) as first:
        before = await whoami(first)
        touch(ready)
        await wait_file(go)
        await asyncio.sleep(settle)
        later = []
        for _ in range(6):
            async with connect(url) as ws:
                later.append((await whoami(ws))["server"])
        old_echo = await echo_once(first, 5000)
        old_after = await whoami(first)
        return {"before": before, "later": later, "old_echo": old_echo, "old_after": old_after}


async def main():
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "whoami":
        result = await mode_whoami(url)
    elif mode == "load":
        result = await mode_load(url, int(sys.argv[3]))
    elif mode == "hold":
        result = await mode_hold(url, int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif mode == "idle":
        result = await mode_idle(url)
    elif mode == "drain":
        result = await mode_drain(url, sys.argv[3])
    elif mode == "dnsflip":
        result = await mode_dnsflip(url, sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        raise SystemExit("unknown mode " + mode)
    print(json.dumps(result), flush=True)


asyncio.run(main())
