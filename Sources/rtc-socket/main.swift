// rtc-socket: the WebSocket node (arrives with the socket-node issue).
import SocketNode

print("rtc-socket: not built yet")
