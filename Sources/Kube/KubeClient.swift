// The Kubernetes API client: leases, the deployment scale subresource and pods, over HTTP or HTTPS on one loop.
import EventLoop
import HTTP1
import JSON
import Resolver
import Sys
import TLS

/// A client of the Kubernetes API on one event loop; every method on the loop's thread, every completion there
/// too (never inside the call). Requests go one at a time over one kept-alive connection.
///
/// Authentication is a bearer token (the service account's, for `.inCluster`). A token read from a file is read
/// again when `tokenRefreshInterval` has passed since the last read, and at once after a 401, in which case the
/// request is sent once more if the token changed: the kubelet rotates projected tokens in place.
///
/// Errors: a non-2xx answer becomes `KubeError(status:reason:message:)` from the API's `Status` body (e.g. 409
/// `Conflict` for an update with a stale resourceVersion, 404 `NotFound`); no answer is status 0.
public final class KubeClient {
    public unowned let loop: EventLoop
    /// Where requests go, e.g. `https://10.96.0.1:443`.
    public let baseURL: String
    let http: HTTPClient
    var token: TokenSource
    /// Told the verb (`get`, `list`, `create`, `update`, `patch`) and HTTP status (0 when no answer came) of every
    /// call, for metrics.
    public var onCall: ((_ verb: String, _ status: Int) -> Void)?

    /// The User-Agent field of every request (the pod name tells replicas apart in the API server's audit log).
    public var userAgent = "rtc-balancer"

    /// How long a token read from a file is used before the file is read again.
    public var tokenRefreshInterval: Duration = .seconds(10)

    /// A client for `endpoint`. `resolver` is needed only when the host is a name; `environment` supplies
    /// `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` (in-cluster) and optional `KUBE_TOKEN_FILE`,
    /// `KUBE_CA_FILE`. Throws a `Configuration` error for a bad URL, a missing variable or an unusable CA file.
    public init(
        loop: EventLoop, endpoint: KubeEndpoint, resolver: Resolver?, environment: [String: String],
        requestTimeout: Duration = .seconds(5)
    ) throws(KubeError) {
        let url: APIURL
        let caFile: String?
        switch endpoint {
        case .inCluster:
            guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
                throw .transport("Configuration", "KUBERNETES_SERVICE_HOST is not set: not running in a pod")
            }
            let portText = environment["KUBERNETES_SERVICE_PORT"] ?? "443"
            guard let port = UInt16(portText), port > 0 else {
                throw .transport("Configuration", "KUBERNETES_SERVICE_PORT is not a port: \(portText)")
            }
            url = APIURL(secure: true, host: host, port: port)
            caFile = environment["KUBE_CA_FILE"] ?? KubeEndpoint.serviceAccountDirectory + "/ca.crt"
            token = TokenSource(
                origin: .file(environment["KUBE_TOKEN_FILE"] ?? KubeEndpoint.serviceAccountDirectory + "/token"))
        case .url(let text, let fixedToken, let ca):
            url = try APIURL(text)
            caFile = ca
            if let fixedToken {
                token = TokenSource(origin: .fixed(fixedToken))
            } else if let path = environment["KUBE_TOKEN_FILE"], !path.isEmpty {
                token = TokenSource(origin: .file(path))
            } else {
                token = TokenSource(origin: .none)
            }
        }
        var context: TLSContext?
        if url.secure {
            do {
                context = try TLSContext.client(caFile: caFile)
            } catch {
                throw .transport("Configuration", "\(error)")
            }
        }
        self.loop = loop
        baseURL = "\(url.secure ? "https" : "http")://\(url.hostField)\(url.pathPrefix)"
        http = HTTPClient(loop: loop, url: url, tls: context, resolver: resolver, requestTimeout: requestTimeout)
    }

    /// Fails queued calls with `Closed` and closes the connection.
    public func close() { http.close() }

    // MARK: Leases (coordination.k8s.io/v1)

    /// Reads a Lease (404 `NotFound` when there is none).
    public func getLease(
        namespace: String, name: String, _ done: @escaping (Result<Lease, KubeError>) -> Void
    ) {
        call("get", .get, Self.leasePath(namespace, name)) { done(Self.lease(from: $0)) }
    }

    /// Creates `lease` (its resourceVersion is ignored); 409 `AlreadyExists` when one exists.
    public func createLease(_ lease: Lease, _ done: @escaping (Result<Lease, KubeError>) -> Void) {
        var fresh = lease
        fresh.resourceVersion = ""
        call(
            "create", .post, "/apis/coordination.k8s.io/v1/namespaces/\(percentEncoded(lease.namespace))/leases",
            body: fresh.json(), contentType: "application/json"
        ) { done(Self.lease(from: $0)) }
    }

    /// Replaces `lease` (PUT) if it is still at `lease.resourceVersion`; 409 `Conflict` when it changed since.
    public func updateLease(_ lease: Lease, _ done: @escaping (Result<Lease, KubeError>) -> Void) {
        call(
            "update", .put, Self.leasePath(lease.namespace, lease.name), body: lease.json(),
            contentType: "application/json"
        ) { done(Self.lease(from: $0)) }
    }

    // MARK: Deployments' scale subresource (apps/v1)

    /// The deployment's desired replicas (`spec.replicas` of its Scale) and the Scale's resourceVersion.
    public func getScale(
        namespace: String, deployment: String,
        _ done: @escaping (Result<(replicas: Int, resourceVersion: String), KubeError>) -> Void
    ) {
        call("get", .get, Self.scalePath(namespace, deployment)) { result in
            done(
                result.flatMap { json in
                    guard let replicas = json["spec"]?["replicas"]?.int64Value else {
                        return .failure(.transport("InvalidResponse", "a Scale without spec.replicas"))
                    }
                    return .success(
                        (Int(replicas), json["metadata"]?["resourceVersion"]?.stringValue ?? ""))
                })
        }
    }

    /// Sets the deployment's replicas with a merge patch of its Scale (RFC 7386); gives back the replicas the
    /// answer states.
    public func setScale(
        namespace: String, deployment: String, replicas: Int, _ done: @escaping (Result<Int, KubeError>) -> Void
    ) {
        call(
            "patch", .patch, Self.scalePath(namespace, deployment), body: MergePatch.replicas(replicas),
            contentType: "application/merge-patch+json"
        ) { result in
            done(
                result.flatMap { json in
                    guard let replicas = json["spec"]?["replicas"]?.int64Value else {
                        return .failure(.transport("InvalidResponse", "a Scale without spec.replicas"))
                    }
                    return .success(Int(replicas))
                })
        }
    }

    // MARK: Pods (v1)

    /// The pods matching `labelSelector` (e.g. `app=rtc-socket`; empty lists all).
    public func listPods(
        namespace: String, labelSelector: String, _ done: @escaping (Result<[Pod], KubeError>) -> Void
    ) {
        var path = "/api/v1/namespaces/\(percentEncoded(namespace))/pods"
        if !labelSelector.isEmpty { path += "?labelSelector=\(percentEncoded(labelSelector))" }
        call("list", .get, path) { result in
            done(
                result.flatMap { json in
                    guard let items = json["items"]?.arrayValue else {
                        return .failure(.transport("InvalidResponse", "a PodList without items"))
                    }
                    return .success(items.compactMap { Pod(json: $0) })
                })
        }
    }

    /// Sets one annotation of a pod with a merge patch of `metadata.annotations` (other annotations stay).
    public func annotatePod(
        namespace: String, name: String, key: String, value: String,
        _ done: @escaping (Result<Void, KubeError>) -> Void
    ) {
        call(
            "patch", .patch, "/api/v1/namespaces/\(percentEncoded(namespace))/pods/\(percentEncoded(name))",
            body: MergePatch.annotation(key, value), contentType: "application/merge-patch+json"
        ) { result in done(result.map { _ in () }) }
    }

    // MARK: Calls

    static func leasePath(_ namespace: String, _ name: String) -> String {
        "/apis/coordination.k8s.io/v1/namespaces/\(percentEncoded(namespace))/leases/\(percentEncoded(name))"
    }

    static func scalePath(_ namespace: String, _ deployment: String) -> String {
        "/apis/apps/v1/namespaces/\(percentEncoded(namespace))/deployments/\(percentEncoded(deployment))/scale"
    }

    static func lease(from result: Result<JSONValue, KubeError>) -> Result<Lease, KubeError> {
        result.flatMap { json in
            guard let lease = Lease(json: json) else {
                return .failure(.transport("InvalidResponse", "a Lease without metadata.name"))
            }
            return .success(lease)
        }
    }

    /// Sends one request; a 2xx answer's body is parsed as JSON, anything else becomes a `KubeError`.
    func call(
        _ verb: String, _ method: Method, _ target: String, body: [UInt8]? = nil, contentType: String? = nil,
        retryOn401: Bool = true, _ done: @escaping (Result<JSONValue, KubeError>) -> Void
    ) {
        var request = HTTPRequest(method: method, target: target, body: body)
        request.fields.append(("Accept", "application/json"))
        request.fields.append(("User-Agent", userAgent))
        if let contentType { request.fields.append(("Content-Type", contentType)) }
        let sentToken = token.current(now: loop.now, maximumAge: nanoseconds(tokenRefreshInterval))
        if let sentToken { request.fields.append(("Authorization", "Bearer \(sentToken)")) }
        http.send(request) { [weak self] result in
            guard let self else {
                done(.failure(.transport("Closed", "the client was released")))
                return
            }
            switch result {
            case .failure(let error):
                self.onCall?(verb, 0)
                done(.failure(error))
            case .success(let response):
                self.onCall?(verb, response.status)
                if response.status == 401 && retryOn401 && self.token.reload(now: self.loop.now) != sentToken {
                    // The token rotated since it was read: once more with the new one.
                    self.call(verb, method, target, body: body, contentType: contentType, retryOn401: false, done)
                    return
                }
                done(Self.decode(response))
            }
        }
    }

    static func decode(_ response: HTTPResponse) -> Result<JSONValue, KubeError> {
        let json = try? JSONParser.parse(response.body)
        guard (200..<300).contains(response.status) else {
            let reason = json?["reason"]?.stringValue ?? Self.reason(response.status)
            let message =
                json?["message"]?.stringValue ?? String(decoding: response.body.prefix(512), as: UTF8.self)
            return .failure(KubeError(status: response.status, reason: reason, message: message))
        }
        guard let json else {
            if response.body.isEmpty { return .success(.null) }
            return .failure(.transport("InvalidResponse", "the answer is not JSON"))
        }
        return .success(json)
    }

    /// The API's `StatusReason` for a status code, when the answer carried no Status object.
    static func reason(_ status: Int) -> String {
        switch status {
        case 400: "BadRequest"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 405: "MethodNotAllowed"
        case 409: "Conflict"
        case 410: "Expired"
        case 415: "UnsupportedMediaType"
        case 422: "Invalid"
        case 429: "TooManyRequests"
        case 500: "InternalError"
        case 503: "ServiceUnavailable"
        case 504: "Timeout"
        default: "Unknown"
        }
    }
}

/// Where the bearer token comes from, and the copy read last.
struct TokenSource {
    enum Origin: Equatable {
        case none
        case fixed(String)
        case file(String)
    }

    let origin: Origin
    private(set) var cached: String?
    private var readAt: UInt64?

    init(origin: Origin) { self.origin = origin }

    /// The token to send: the file is read again when the copy is older than `maximumAge` nanoseconds.
    mutating func current(now: UInt64, maximumAge: UInt64) -> String? {
        switch origin {
        case .none: return nil
        case .fixed(let token): return token
        case .file:
            if let readAt, now &- readAt < maximumAge, cached != nil { return cached }
            return reload(now: now)
        }
    }

    /// Reads the file now (keeping the last copy when it cannot be read); returns the token.
    @discardableResult
    mutating func reload(now: UInt64) -> String? {
        guard case .file(let path) = origin else { return current(now: now, maximumAge: .max) }
        readAt = now
        if let bytes = readSmallFile(path) {
            var text = Substring(String(decoding: bytes, as: UTF8.self))
            while let last = text.last, last.isWhitespace { text.removeLast() }
            while let first = text.first, first.isWhitespace { text.removeFirst() }
            if !text.isEmpty { cached = String(text) }
        }
        return cached
    }
}
