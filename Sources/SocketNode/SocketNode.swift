// The socket node: WebSocket sessions, delivery, drain and heartbeats.
