# WebSocket echo server for the gateway's end-to-end tests (Python `websockets` 10.x).
#
# usage: wsecho.py HOST PORT
# Echoes every message. The text message "__whoami" is answered with JSON {"path": request path and query as
# received, "server": "HOST:PORT"} so a test learns which address it reached and how the gateway rewrote the path.
import asyncio
import json
import sys

import websockets

HOST, PORT = sys.argv[1], int(sys.argv[2])


async def echo(ws, path):
    try:
        async for message in ws:
            if message == "__whoami":
                await ws.send(json.dumps({"path": path, "server": "%s:%d" % (HOST, PORT)}))
            else:
                await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main():
    # No pings: a test of the gateway's idle timeout must not see traffic it did not send.
    async with websockets.serve(echo, HOST, PORT, max_size=None, ping_interval=None, backlog=4096):
        print("listening", flush=True)
        await asyncio.Future()


asyncio.run(main())
