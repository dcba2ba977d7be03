// What a command gets back: a reply value (RESP2), or why there is none, and why a connection could not be made.
import Sys

/// One RESP2 reply (https://redis.io/docs/reference/protocol-spec/). Error replies are values too: the command
/// ran and Redis said no (`WRONGTYPE ...`, `NOSCRIPT ...`).
public indirect enum RedisReply: Equatable, Sendable {
    /// A bulk string, binary safe.
    case string([UInt8])
    /// A simple string such as `OK` or `PONG`.
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    /// A null bulk string or a null array.
    case null
    /// An error reply, its text whole (`WRONGTYPE Operation against a key holding the wrong kind of value`).
    case error(String)

    /// The text of a bulk string (as UTF-8) or a status; nil for anything else.
    public var stringValue: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    /// An integer reply, or a bulk string holding a decimal integer (what GET returns for a counter).
    public var integerValue: Int64? {
        switch self {
        case .integer(let value): value
        case .string(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    /// The bytes of a bulk string; nil for anything else.
    public var bytesValue: [UInt8]? {
        if case .string(let bytes) = self { return bytes }
        return nil
    }

    /// The elements of an array reply; nil for anything else.
    public var arrayValue: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The text of an error reply; nil for anything else.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}

/// Why a command got no reply.
public enum RedisError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not connected when sent, or the connection dropped before the reply came.
    case disconnected
    /// No reply within the command timeout; the connection was dropped and is being made again.
    case timedOut
    /// The command could not be encoded, or the server's bytes could not be decoded.
    case protocolError(String)

    public var description: String {
        switch self {
        case .disconnected: "not connected to Redis"
        case .timedOut: "Redis did not reply in time"
        case .protocolError(let text): "Redis protocol error: \(text)"
        }
    }
}

/// Why a connection to Redis was not made, or was lost. Kept in `RedisClient.lastConnectError`.
public enum RedisConnectError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The host name did not resolve (the resolver's outcome, in words).
    case resolveFailed(host: String, reason: String)
    case connectFailed(Errno)
    case connectTimedOut
    /// AUTH or SELECT got an error reply (a wrong password, a database out of range).
    case rejected(command: String, message: String)
    /// The server closed the connection or it failed (`nil`: an orderly close by the server).
    case connectionLost(Errno?)
    /// A command got no reply within the command timeout.
    case commandTimedOut
    /// The server sent bytes that are not RESP2, or a reply nobody asked for.
    case protocolError(String)

    public var description: String {
        switch self {
        case .resolveFailed(let host, let reason): "cannot resolve Redis host \(host): \(reason)"
        case .connectFailed(let errno): "cannot connect to Redis: \(errno)"
        case .connectTimedOut: "connecting to Redis timed out"
        case .rejected(let command, let message): "Redis refused \(command): \(message)"
        case .connectionLost(let errno?): "connection to Redis lost: \(errno)"
        case .connectionLost(nil): "Redis closed the connection"
        case .commandTimedOut: "Redis did not answer a command in time"
        case .protocolError(let text): "Redis protocol error: \(text)"
        }
    }
}
