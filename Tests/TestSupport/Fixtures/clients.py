#!/usr/bin/python3
"""WebSocket clients for the socket-node tests, driven one JSON command per stdin line.

Each command gets exactly one JSON reply line on stdout. Clients use the `websockets` library (a client nobody in
this project wrote); `raw` speaks bytes over a plain socket for frames a library would refuse to send.

Commands ({"op": ..., ...}):
  connect  name url [headers] [timeout]  -> {"ok", "welcome"} or {"ok": false, "status", "body"}
  send     name frame (object, sent as JSON text)                       -> {"ok"}
  message  name to msgId payload                                        -> {"ok"}
  burst    name to count prefix                                         -> {"ok"} (count messages, msgIds prefix0..)
  wait     name type count [timeout]  -> {"ok", "frames"}: the first `count` unread frames of `type`, removing them
  take     name [type]                -> {"frames"}: every unread frame (of `type`), removing them
  closed   name [timeout]             -> {"ok", "code", "reason", "frames"}: waits for the server's close
  close    name                       -> {"ok"}
  raw      host port path bytes(hex) [timeout] -> {"status", "close_code"}: handshake, send bytes, read the close
  quit
"""
import asyncio
import base64
import json
import os
import socket
import struct
import sys

import websockets


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.frames = []
        self.changed = asyncio.Event()
        self.close_code = None
        self.close_reason = None
        self.closed = asyncio.Event()
        self.task = asyncio.ensure_future(self.read())

    async def read(self):
        try:
            async for text in self.ws:
                try:
                    self.frames.append(json.loads(text))
                except ValueError:
                    self.frames.append({"type": "<not json>", "text": str(text)})
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self.changed.set()

    def take(self, kind=None, limit=None):
        taken, kept = [], []
        for frame in self.frames:
            if (kind is None or frame.get("type") == kind) and (limit is None or len(taken) < limit):
                taken.append(frame)
            else:
                kept.append(frame)
        self.frames = kept
        return taken

    def count(self, kind):
        return sum(1 for frame in self.frames if frame.get("type") == kind)


clients = {}


async def wait_for(client, predicate, timeout):
    deadline = asyncio.get_event_loop().time() + timeout
    while not predicate():
        left = deadline - asyncio.get_event_loop().time()
        if left <= 0:
            return False
        client.changed.clear()
        try:
            await asyncio.wait_for(client.changed.wait(), left)
        except asyncio.TimeoutError:
            return predicate()
    return True


async def handle(command):
    op = command["op"]
    if op == "connect":
        try:
            ws = await websockets.connect(
                command["url"], extra_headers=command.get("headers", {}), open_timeout=command.get("timeout", 10),
                max_size=2**24, ping_interval=None)
        except websockets.InvalidStatusCode as error:
            return {"ok": False, "status": error.status_code}
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as error:
            return {"ok": False, "status": 0, "error": repr(error)}
        client = Client(ws)
        clients[command["name"]] = client
        if not await wait_for(client, lambda: client.count("welcome") > 0 or client.closed.is_set(), 10):
            return {"ok": False, "status": 101, "error": "no welcome frame"}
        welcome = client.take("welcome", 1)
        return {"ok": bool(welcome), "welcome": welcome[0] if welcome else None}
    client = clients.get(command.get("name"))
    if op == "send":
        await client.ws.send(json.dumps(command["frame"]))
        return {"ok": True}
    if op == "message":
        frame = {"type": "message", "msgId": command["msgId"], "toClientId": command["to"],
                 "payloadJson": command.get("payload", "{}")}
        await client.ws.send(json.dumps(frame))
        return {"ok": True}
    if op == "burst":
        for index in range(command["count"]):
            frame = {"type": "message", "msgId": "%s%d" % (command["prefix"], index), "toClientId": command["to"],
                     "payloadJson": json.dumps({"n": index})}
            await client.ws.send(json.dumps(frame))
        return {"ok": True}
    if op == "wait":
        kind, count = command["type"], command["count"]
        ok = await wait_for(client, lambda: client.count(kind) >= count, command.get("timeout", 15))
        return {"ok": ok, "frames": client.take(kind, count), "others": [f.get("type") for f in client.frames]}
    if op == "take":
        return {"ok": True, "frames": client.take(command.get("type"))}
    if op == "closed":
        ok = await wait_for(client, lambda: client.closed.is_set(), command.get("timeout", 15))
        return {"ok": ok, "code": client.close_code, "reason": client.close_reason, "frames": client.take()}
    if op == "close":
        await client.ws.close()
        return {"ok": True}
    if op == "raw":
        return await asyncio.get_event_loop().run_in_executor(None, raw, command)
    return {"ok": False, "error": "unknown op " + op}


def raw(command):
    """Handshake by hand, then send `bytes` and report the close frame the server answers with."""
    sock = socket.create_connection((command["host"], command["port"]), timeout=command.get("timeout", 10))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (command["path"], key)).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return {"ok": False, "status": 0}
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if status != 101:
        return {"ok": True, "status": status}
    sock.sendall(bytes.fromhex(command["bytes"]))
    # Read frames until a Close (opcode 8) or EOF; report every opcode seen.
    opcodes = []
    while True:
        while len(data) < 2:
            chunk = sock.recv(65536)
            if not chunk:
                return {"ok": True, "status": status, "close_code": None, "opcodes": opcodes}
            data += chunk
        length = data[1] & 0x7F
        offset = 2
        if length == 126:
            length, offset = struct.unpack(">H", data[2:4])[0], 4
        elif length == 127:
            length, offset = struct.unpack(">Q", data[2:10])[0], 10
        while len(data) < offset + length:
            chunk = sock.recv(65536)
            if not chunk:
                return {"ok": True, "status": status, "close_code": None, "opcodes": opcodes}
            data += chunk
        opcode, payload = data[0] & 0x0F, data[offset:offset + length]
        data = data[offset + length:]
        opcodes.append(opcode)
        if opcode == 8:
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            return {"ok": True, "status": status, "close_code": code, "opcodes": opcodes}


async def main():
    loop = asyncio.get_event_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        if command["op"] == "quit":
            break
        try:
            reply = await handle(command)
        except Exception as error:  # reported to the test, which fails with it
            reply = {"ok": False, "error": repr(error)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for client in clients.values():
        client.task.cancel()


asyncio.get_event_loop().run_until_complete(main())
