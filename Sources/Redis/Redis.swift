// A Redis client on the event loop, through hiredis's asynchronous API.
