// The API objects the client reads and writes (Lease, Pod, Scale) and their JSON forms.
import JSON

/// A `coordination.k8s.io/v1` Lease: who holds it, for how long, and the version it was read at.
public struct Lease: Equatable, Sendable {
    public var name: String
    public var namespace: String
    /// The holder; nil (or empty) when nobody holds it.
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int
    /// RFC 3339 MicroTime (see `MicroTime`).
    public var acquireTime: String?
    /// RFC 3339 MicroTime (see `MicroTime`).
    public var renewTime: String?
    public var leaseTransitions: Int
    /// The version this copy was read at; an update with an older one fails with 409 Conflict. Empty for a lease
    /// not yet created.
    public var resourceVersion: String

    public init(
        name: String, namespace: String, holderIdentity: String? = nil, leaseDurationSeconds: Int = 15,
        acquireTime: String? = nil, renewTime: String? = nil, leaseTransitions: Int = 0, resourceVersion: String = ""
    ) {
        self.name = name
        self.namespace = namespace
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.leaseTransitions = leaseTransitions
        self.resourceVersion = resourceVersion
    }

    /// The object as the API takes it (for create, without a resourceVersion).
    func json() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("apiVersion", "coordination.k8s.io/v1")
        writer.field("kind", "Lease")
        writer.key("metadata")
        writer.beginObject()
        writer.field("name", name)
        writer.field("namespace", namespace)
        if !resourceVersion.isEmpty { writer.field("resourceVersion", resourceVersion) }
        writer.endObject()
        writer.key("spec")
        writer.beginObject()
        if let holderIdentity { writer.field("holderIdentity", holderIdentity) }
        writer.field("leaseDurationSeconds", leaseDurationSeconds)
        if let acquireTime { writer.field("acquireTime", acquireTime) }
        if let renewTime { writer.field("renewTime", renewTime) }
        writer.field("leaseTransitions", leaseTransitions)
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    /// A Lease from the API's JSON; nil when it lacks its name.
    init?(json: JSONValue) {
        guard let metadata = json["metadata"], let name = metadata["name"]?.stringValue else { return nil }
        let spec = json["spec"]
        self.init(
            name: name, namespace: metadata["namespace"]?.stringValue ?? "",
            holderIdentity: spec?["holderIdentity"]?.stringValue,
            leaseDurationSeconds: Int(spec?["leaseDurationSeconds"]?.int64Value ?? 0),
            acquireTime: spec?["acquireTime"]?.stringValue, renewTime: spec?["renewTime"]?.stringValue,
            leaseTransitions: Int(spec?["leaseTransitions"]?.int64Value ?? 0),
            resourceVersion: metadata["resourceVersion"]?.stringValue ?? "")
    }
}

/// The parts of a Pod the balancer uses.
public struct Pod: Equatable, Sendable {
    public var name: String
    /// `status.podIP`, nil until the pod has one.
    public var ip: String?
    /// `status.phase`: Pending, Running, Succeeded, Failed or Unknown.
    public var phase: String
    public var annotations: [String: String]

    public init(name: String, ip: String?, phase: String, annotations: [String: String]) {
        self.name = name
        self.ip = ip
        self.phase = phase
        self.annotations = annotations
    }

    init?(json: JSONValue) {
        guard let metadata = json["metadata"], let name = metadata["name"]?.stringValue else { return nil }
        var annotations: [String: String] = [:]
        for (key, value) in metadata["annotations"]?.objectValue ?? [] {
            if let text = value.stringValue { annotations[key] = text }
        }
        self.init(
            name: name, ip: json["status"]?["podIP"]?.stringValue,
            phase: json["status"]?["phase"]?.stringValue ?? "Unknown", annotations: annotations)
    }
}

/// JSON bodies of the merge patches the client sends (RFC 7386).
enum MergePatch {
    /// `{"spec":{"replicas":N}}`
    static func replicas(_ replicas: Int) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("spec")
        writer.beginObject()
        writer.field("replicas", replicas)
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    /// `{"metadata":{"annotations":{key:value}}}`
    static func annotation(_ key: String, _ value: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("metadata")
        writer.beginObject()
        writer.key("annotations")
        writer.beginObject()
        writer.field(key, value)
        writer.endObject()
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }
}
