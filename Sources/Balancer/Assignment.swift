// The answer to `GET /ws/connect?clientId=…`: which socket node, the URL through the gateway, or why not.
import JSON
import Ring
import Wire

/// One assignment (SYSTEM §3), decided from the ring in force. Pure: the same ring and client id give the same answer
/// on every replica.
public enum Assignment: Equatable, Sendable {
    /// 200 `{"socketNodeId","url","ringVersion"}`.
    case assigned(socketNodeId: String, url: String, ringVersion: UInt64)
    /// 400: the clientId is missing or not 1–128 characters of `[A-Za-z0-9._:@-]`.
    case badClientID
    /// 503: no ring yet, or no node in it may take clients.
    case noNode
    /// 503: `ip` form, and this replica has not read the owner's address yet (it reads heartbeats every round).
    case noAddress(node: String)

    /// The owner of `clientID` in `ring`, with its URL in `form`; `address` gives a node's pod IP (from its heartbeat).
    public static func decide(
        clientID: String?, ring: Ring?, form: URLForm, address: (String) -> String?
    ) -> Assignment {
        guard let clientID, ClientID.isValid(clientID) else { return .badClientID }
        guard let ring, let owner = ring.owner(of: clientID) else { return .noNode }
        switch form {
        case .name:
            return .assigned(socketNodeId: owner, url: "/ws/\(owner)/connect", ringVersion: ring.version)
        case .ip:
            guard let ip = address(owner), let label = dashedIPv4(ip) else { return .noAddress(node: owner) }
            return .assigned(socketNodeId: owner, url: "/ws/\(label)/connect", ringVersion: ring.version)
        }
    }

    /// The HTTP status of the answer.
    public var status: Int {
        switch self {
        case .assigned: 200
        case .badClientID: 400
        case .noNode, .noAddress: 503
        }
    }

    /// The metric label of the outcome.
    public var outcome: String {
        switch self {
        case .assigned: "assigned"
        case .badClientID: "bad_client_id"
        case .noNode: "no_node"
        case .noAddress: "no_address"
        }
    }

    /// The JSON body: the assignment, or `{"error","message"}`.
    public var body: [UInt8] {
        var writer = JSONWriter(capacity: 128)
        writer.beginObject()
        switch self {
        case .assigned(let node, let url, let version):
            writer.field("socketNodeId", node)
            writer.field("url", url)
            writer.field("ringVersion", version)
        case .badClientID:
            writer.field("error", "bad_client_id")
            writer.field("message", "clientId must be 1-128 characters of [A-Za-z0-9._:@-]")
        case .noNode:
            writer.field("error", "no_node")
            writer.field("message", "no socket node is available; retry shortly")
        case .noAddress(let node):
            writer.field("error", "no_address")
            writer.field("message", "the address of socket node \(node) is not known yet; retry shortly")
        }
        writer.endObject()
        return writer.bytes
    }
}
