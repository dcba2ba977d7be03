#!/usr/bin/python3
"""Checks an RFC 6455 echo server (rtc-bench ws-echo) with a client nobody here wrote, then with raw bytes.

  ws_check.py library URL   the `websockets` library (Debian's 10.4): text and binary messages of 0, 125, 126,
                            65535, 65536 and 1 MiB bytes byte-exact, 200 messages sent back to back, a fragmented
                            message, Ping/Pong, and the close handshake (code 1000 echoed)
  ws_check.py raw HOST PORT raw socket: the accept key, a frame sent one byte per segment, a 64-bit-length frame
                            split inside its header, three frames in one segment, Ping -> Pong, and an unmasked
                            client frame answered with Close 1002
Prints "ok ..." lines and exits 0, or raises (exit 1) at the first difference.
"""

import asyncio
import base64
import hashlib
import os
import socket
import sys
import time

SIZES = [0, 125, 126, 65535, 65536, 1 << 20]


async def library(url):
    import websockets

    async with websockets.connect(url, max_size=None, compression=None, ping_interval=None) as ws:
        for size in SIZES:
            data = os.urandom(size)
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(got, bytes) and got == data, f"binary {size}: got {len(got)} bytes, different"
            # Two-byte UTF-8 characters, so frames split inside a character too.
            text = "é" * (size // 2) + "a" * (size % 2)
            assert len(text.encode()) == size
            await ws.send(text)
            got = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(got, str) and got == text, f"text {size}: different"
            print(f"ok binary and text {size}", flush=True)
        batch = [os.urandom(i) for i in range(200)]
        for message in batch:
            await ws.send(message)
        for message in batch:
            assert await asyncio.wait_for(ws.recv(), 5) == message, "batch: different"
        print("ok 200 back to back", flush=True)
        await ws.send([b"frag", b"men", b"ted"])
        assert await asyncio.wait_for(ws.recv(), 5) == b"fragmented", "fragmented: different"
        print("ok fragmented", flush=True)
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        print("ok ping", flush=True)
    assert ws.close_code == 1000, f"close code {ws.close_code}"
    print("ok close 1000", flush=True)


def masked_frame(opcode, payload, key=b"\x01\x02\x03\x04", fin=True):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n <= 125:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def server_frame(opcode, payload):
    n = len(payload)
    if n <= 125:
        head = bytes([0x80 | opcode, n])
    elif n <= 0xFFFF:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


def read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, f"connection closed after {len(data)} of {count} bytes"
        data += chunk
    return data


def open_raw(host, port):
    sock = socket.create_connection((host, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    expected = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"\r\nSec-WebSocket-Accept: " + expected + b"\r\n" in head, head
    return sock


def raw(host, port):
    sock = open_raw(host, port)
    print("ok accept key", flush=True)
    payload = os.urandom(300)
    for byte in masked_frame(0x2, payload, key=b"\xa1\xb2\xc3\xd4"):
        sock.send(bytes([byte]))
        time.sleep(0.0005)
    assert read_exactly(sock, 4 + 300) == server_frame(0x2, payload), "byte-by-byte frame: different echo"
    print("ok one byte per segment", flush=True)
    big = os.urandom(70000)
    frame = masked_frame(0x2, big, key=b"\x10\x20\x30\x40")
    sock.send(frame[:5])
    time.sleep(0.02)
    sock.sendall(frame[5:])
    assert read_exactly(sock, 10 + 70000) == server_frame(0x2, big), "split 64-bit header: different echo"
    print("ok header split", flush=True)
    frames = [os.urandom(n) for n in (1, 0, 130)]
    sock.sendall(b"".join(masked_frame(0x2, f, key=bytes([n, 2, 3, n])) for n, f in enumerate(frames)))
    expected = b"".join(server_frame(0x2, f) for f in frames)
    assert read_exactly(sock, len(expected)) == expected, "three frames in one segment: different echo"
    print("ok three frames in one segment", flush=True)
    sock.sendall(masked_frame(0x9, b"ping!"))
    assert read_exactly(sock, 7) == server_frame(0xA, b"ping!"), "ping: no pong"
    print("ok pong", flush=True)
    sock.sendall(bytes([0x82, 0x03]) + b"abc")
    assert read_exactly(sock, 4) == bytes([0x88, 0x02, 0x03, 0xEA]), "unmasked frame: no close 1002"
    assert sock.recv(10) == b"", "the server kept the connection open after a protocol error"
    print("ok unmasked frame -> close 1002", flush=True)


def main():
    if sys.argv[1] == "library":
        asyncio.run(asyncio.wait_for(library(sys.argv[2]), 20))
    elif sys.argv[1] == "raw":
        raw(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")


if __name__ == "__main__":
    main()
