# Holds WebSocket connections open (one per URL argument) until standard input closes; prints "ready" once every
# connection has its welcome frame, or "error <text>".
import asyncio
import sys

import websockets


async def main():
    connections = []
    try:
        for url in sys.argv[1:]:
            connection = await websockets.connect(url, open_timeout=10)
            await asyncio.wait_for(connection.recv(), 10)
            connections.append(connection)
    except Exception as error:  # reported to the test, which fails with it
        print("error", repr(error), flush=True)
        return
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for connection in connections:
        await connection.close()


asyncio.run(main())
