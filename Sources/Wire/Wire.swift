// The JSON messages between clients, socket nodes and the balancer: envelopes, control frames, heartbeats, tokens.
