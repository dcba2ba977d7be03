# Real WebSocket clients (Python's `websockets`) for the tests that reach socket nodes through the gateway. Prints
# one JSON line and exits 0, or prints {"error": ...} and exits 1.
#
#   through_gateway.py exchange URL_A ID_A URL_B ID_B
#       Connects A, then B, each waiting for its welcome frame; A sends a message to B, B answers A. Prints
#       {"welcomeA", "welcomeB", "acceptedA", "atB", "acceptedB", "atA"} (the frames as received).
#   through_gateway.py status URL
#       Tries the opening handshake; prints {"status": <the HTTP status the server answered, 101 when it opened>}.
import asyncio
import json
import sys

import websockets

TIMEOUT = 30


async def frame(connection, wanted):
    """The first frame `wanted(frame)` accepts; frames before it are skipped."""

    async def read():
        while True:
            received = json.loads(await connection.recv())
            if wanted(received):
                return received

    return await asyncio.wait_for(read(), TIMEOUT)


def of_type(kind, msg_id=None):
    return lambda received: received.get("type") == kind and (msg_id is None or received.get("msgId") == msg_id)


async def connect(url):
    return await websockets.connect(url, open_timeout=10, ping_interval=None)


async def send(connection, msg_id, to, text):
    message = {"type": "message", "msgId": msg_id, "toClientId": to, "payloadJson": json.dumps({"text": text})}
    await connection.send(json.dumps(message))


async def exchange(url_a, id_a, url_b, id_b):
    a = await connect(url_a)
    welcome_a = await frame(a, of_type("welcome"))
    b = await connect(url_b)
    welcome_b = await frame(b, of_type("welcome"))
    await send(a, "m-1", id_b, "hello " + id_b)
    accepted_a = await frame(a, of_type("accepted", "m-1"))
    at_b = await frame(b, of_type("message", "m-1"))
    await send(b, "m-2", id_a, "hello " + id_a)
    accepted_b = await frame(b, of_type("accepted", "m-2"))
    at_a = await frame(a, of_type("message", "m-2"))
    await a.close()
    await b.close()
    return {
        "welcomeA": welcome_a, "welcomeB": welcome_b, "acceptedA": accepted_a, "atB": at_b,
        "acceptedB": accepted_b, "atA": at_a,
    }


async def status(url):
    try:
        connection = await connect(url)
    except websockets.InvalidStatusCode as error:
        return {"status": error.status_code}
    await connection.close()
    return {"status": 101}


async def main(arguments):
    if arguments[0] == "exchange":
        return await exchange(*arguments[1:5])
    if arguments[0] == "status":
        return await status(arguments[1])
    raise ValueError("unknown command " + arguments[0])


try:
    result = asyncio.run(main(sys.argv[1:]))
except Exception as error:  # reported to the test, which fails with it
    print(json.dumps({"error": repr(error)}), flush=True)
    sys.exit(1)
print(json.dumps(result), flush=True)
