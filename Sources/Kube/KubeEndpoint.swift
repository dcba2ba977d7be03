// Where the Kubernetes API is and how to reach it: the endpoint, the parsed API URL, and the client's error type.
import Sys

/// Where a `KubeClient` finds the API server.
public enum KubeEndpoint: Equatable, Sendable {
    /// From inside a pod: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the service account's token
    /// from `/var/run/secrets/kubernetes.io/serviceaccount/token` (re-read as it rotates) and its CA `ca.crt` there.
    /// `KUBE_TOKEN_FILE` and `KUBE_CA_FILE` in the client's environment replace those two paths.
    case inCluster
    /// An explicit `http://` or `https://` URL (tests, local runs). `token` nil reads the token from the file
    /// `KUBE_TOKEN_FILE` names in the client's environment (re-read as it changes), or sends none. `caFile` nil
    /// verifies an `https` server against the system's trust store.
    case url(String, token: String?, caFile: String?)

    /// The service account's directory in a pod.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The endpoint the environment asks for: `KUBE_API_URL` (with `KUBE_TOKEN`, `KUBE_CA_FILE`) when set, else
    /// in-cluster when `KUBERNETES_SERVICE_HOST` is set, else nil (no Kubernetes: a single replica leads).
    public static func fromEnvironment(_ environment: [String: String]) -> KubeEndpoint? {
        if let url = environment["KUBE_API_URL"], !url.isEmpty {
            return .url(url, token: environment["KUBE_TOKEN"], caFile: environment["KUBE_CA_FILE"])
        }
        if let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty { return .inCluster }
        return nil
    }
}

/// A failed API call: the HTTP status and the API's `Status` object (`reason` such as `Conflict`, `NotFound`,
/// `AlreadyExists`, `Unauthorized`), or status 0 when no answer came (the reason then says why: `Timeout`,
/// `ConnectFailed`, `ConnectionLost`, `TLS`, `InvalidResponse`, `Configuration`, `Closed`).
public struct KubeError: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    public var message: String

    public init(status: Int, reason: String, message: String) {
        self.status = status
        self.reason = reason
        self.message = message
    }

    /// A failure without an HTTP answer.
    static func transport(_ reason: String, _ message: String) -> KubeError {
        KubeError(status: 0, reason: reason, message: message)
    }

    public var description: String {
        status == 0 ? "\(reason): \(message)" : "HTTP \(status) \(reason): \(message)"
    }
}

/// The parts of an API URL the client needs: scheme, host, port and a path prefix (without a trailing slash).
struct APIURL: Equatable, Sendable {
    var secure: Bool
    var host: String
    var port: UInt16
    var pathPrefix: String

    /// Parses `http[s]://host[:port][/prefix]`; `host` may be a name, an IPv4 literal or a bracketed IPv6 literal.
    init(_ text: String) throws(KubeError) {
        func invalid(_ why: String) -> KubeError { .transport("Configuration", "invalid API URL \"\(text)\": \(why)") }
        var rest: Substring
        if text.lowercased().hasPrefix("https://") {
            secure = true
            rest = text.dropFirst(8)
        } else if text.lowercased().hasPrefix("http://") {
            secure = false
            rest = text.dropFirst(7)
        } else {
            throw invalid("the scheme must be http or https")
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var prefix = String(rest[slash...])
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard !prefix.contains("?"), !prefix.contains("#") else { throw invalid("no query or fragment allowed") }
        pathPrefix = prefix
        guard !authority.contains("@") else { throw invalid("credentials in the URL are not supported") }
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw invalid("unclosed IPv6 literal") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("bad port") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = authority[authority.index(after: colon)...]
        } else {
            host = String(authority)
        }
        guard !host.isEmpty else { throw invalid("no host") }
        if let portText {
            guard let port = UInt16(portText), port > 0 else { throw invalid("bad port") }
            self.port = port
        } else {
            port = secure ? 443 : 80
        }
    }

    init(secure: Bool, host: String, port: UInt16, pathPrefix: String = "") {
        self.secure = secure
        self.host = host
        self.port = port
        self.pathPrefix = pathPrefix
    }

    /// The Host field value (RFC 9110 §7.2): the port only when it is not the scheme's default.
    var hostField: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }
}

/// Percent-encodes everything but RFC 3986 §2.3 unreserved characters (for path segments and query values).
func percentEncoded(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    let hex = Array("0123456789ABCDEF".utf8)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            out.unicodeScalars.append("%")
            out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
            out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 15)]))
        }
    }
    return out
}
