#!/usr/bin/python3
"""A fake Kubernetes API server for tests: the subset the balancer uses, with the API's semantics.

Command line:
  /usr/bin/python3 fake_kube.py --port PORT [--port PORT2 ...] [--token TOKEN | --token-file PATH]
                                [--cert CERT.pem --key KEY.pem] [--chunked] [--rbac]
                                [--lease-name NAME] [--deployment NAME] [--seed FILE.json]
                                [--max-requests-per-connection N] [--verbose]

  --port        listen on 127.0.0.1:PORT; repeat it to listen on several ports that share one state (a test can
                cut one of them off with /__partition to make the API unreachable for one client only).
  --token       the bearer token every API request must carry (401 Unauthorized without it or with another).
  --token-file  the same, read from this file on every request (rewrite the file to rotate the token).
  --cert/--key  serve HTTPS with this certificate chain and key (PEM) instead of HTTP.
  --chunked     send response bodies with Transfer-Encoding: chunked instead of Content-Length.
  --rbac        allow only what k8s/base/rbac.yaml grants the balancer (403 Forbidden for anything else):
                leases create (any name), get/update (--lease-name only); deployments/scale get/patch
                (--deployment only); pods list/patch.
  --max-requests-per-connection N
                after N answers on one connection (kept alive, no `Connection: close`), the next request on it is
                read and the connection closed without an answer: a server closing an idle connection just as the
                client reuses it (RFC 9112 §9.3.1).
  --seed        a JSON file {"deployments": [{"namespace", "name", "replicas"}],
                "pods": [{"namespace", "name", "labels", "ip", "phase", "annotations"}],
                "leases": [Lease objects]} loaded at start.

API (JSON bodies, Status objects on errors, resourceVersion from one counter incremented on every write):
  GET/PUT    /apis/coordination.k8s.io/v1/namespaces/NS/leases/NAME   (404 NotFound; PUT with a stale
             metadata.resourceVersion: 409 Conflict; without one: unconditional)
  POST       /apis/coordination.k8s.io/v1/namespaces/NS/leases        (201; 409 AlreadyExists)
  GET/PATCH  /apis/apps/v1/namespaces/NS/deployments/NAME/scale       (merge patch of spec.replicas)
  GET        /api/v1/namespaces/NS/pods?labelSelector=a=b,c!=d,e,!f
  PATCH      /api/v1/namespaces/NS/pods/NAME                          (merge patch, RFC 7386)
  PATCH needs Content-Type application/merge-patch+json (415 otherwise).

Debug endpoints (no token needed):
  GET  /__state       {"resourceVersion", "leases", "deployments", "pods", "writes": [{"seq", "time", "verb",
                      "resource", "namespace", "name", "holder", "userAgent", "status"}]} (every write attempt with
                      its status, so a test can check that no two leaders wrote)
  POST /__seed        the --seed document, merged into the state
  POST /__partition   {"port": P, "blocked": true|false}: connections on port P are closed without an answer
  POST /__token       {"token": "..."}: replaces the --token value

It runs until SIGTERM/SIGINT.
"""

import argparse
import json
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"rv": 0, "leases": {}, "deployments": {}, "pods": {}, "writes": [], "blocked": set(), "token": None}
ARGS = None


def next_rv():
    STATE["rv"] += 1
    return str(STATE["rv"])


def now_text():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def status_body(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def selector_matches(selector, labels):
    for term in [t.strip() for t in selector.split(",") if t.strip()]:
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "==" in term or "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def scale_of(deployment):
    meta = deployment["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "resourceVersion": meta["resourceVersion"]},
            "spec": {"replicas": deployment["spec"]["replicas"]},
            "status": {"replicas": deployment["spec"]["replicas"], "selector": "app=" + meta["name"]}}


def seed(document):
    for d in document.get("deployments", []):
        key = (d["namespace"], d["name"])
        STATE["deployments"][key] = {"metadata": {"name": d["name"], "namespace": d["namespace"],
                                                  "resourceVersion": next_rv()},
                                     "spec": {"replicas": d.get("replicas", 1)}}
    for p in document.get("pods", []):
        key = (p["namespace"], p["name"])
        STATE["pods"][key] = {"kind": "Pod", "apiVersion": "v1",
                              "metadata": {"name": p["name"], "namespace": p["namespace"],
                                           "labels": p.get("labels", {}), "annotations": p.get("annotations", {}),
                                           "resourceVersion": next_rv()},
                              "status": {"phase": p.get("phase", "Running"), "podIP": p.get("ip")}}
    for lease in document.get("leases", []):
        meta = lease["metadata"]
        lease.setdefault("apiVersion", "coordination.k8s.io/v1")
        lease.setdefault("kind", "Lease")
        meta["resourceVersion"] = next_rv()
        STATE["leases"][(meta["namespace"], meta["name"])] = lease


def allowed(verb, resource, name):
    """k8s/base/rbac.yaml's Role rtc-balancer."""
    if not ARGS.rbac:
        return True
    if resource == "leases":
        return verb == "create" or (verb in ("get", "update") and name == ARGS.lease_name)
    if resource == "deployments/scale":
        return verb in ("get", "patch") and name == ARGS.deployment
    if resource == "pods":
        return verb in ("list", "patch")
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("fake-kube %s\n" % (fmt % args))

    def port(self):
        return self.server.server_address[1]

    def handle_one_request(self):
        with LOCK:
            blocked = self.port() in STATE["blocked"]
        if blocked:
            self.close_connection = True
            return
        self.answered = getattr(self, "answered", 0)
        if ARGS.max_requests_per_connection and self.answered >= ARGS.max_requests_per_connection:
            self.rfile.readline(65537)
            self.close_connection = True
            return
        self.answered += 1
        super().handle_one_request()

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        if ARGS.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = len(data) // 2
            for piece in (data[:half], data[half:]):
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def fail(self, code, reason, message):
        self.send_json(code, status_body(code, reason, message))

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        return json.loads(raw)

    def current_token(self):
        if ARGS.token_file:
            try:
                with open(ARGS.token_file) as f:
                    return f.read().strip()
            except OSError:
                return None
        return STATE["token"]

    def authorized(self):
        token = self.current_token()
        if token is None:
            return True
        header = self.headers.get("Authorization") or ""
        return header == "Bearer " + token

    def record(self, verb, resource, namespace, name, status, holder=None):
        STATE["writes"].append({"seq": len(STATE["writes"]) + 1, "time": time.time(), "verb": verb,
                                "resource": resource, "namespace": namespace, "name": name, "holder": holder,
                                "userAgent": self.headers.get("User-Agent"), "status": status})

    # Routing.

    def route(self, method):
        parsed = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in parsed.path.strip("/").split("/")]
        query = urllib.parse.parse_qs(parsed.query)
        if parts and parts[0].startswith("__"):
            return self.debug(method, parts[0])
        body = None
        try:
            body = self.read_body()
        except ValueError:
            return self.fail(400, "BadRequest", "the body is not JSON")
        if not self.authorized():
            return self.fail(401, "Unauthorized", "Unauthorized")
        with LOCK:
            # /apis/coordination.k8s.io/v1/namespaces/NS/leases[/NAME]
            if parts[:3] == ["apis", "coordination.k8s.io", "v1"] and len(parts) in (6, 7) and \
                    parts[3] == "namespaces" and parts[5] == "leases":
                return self.leases(method, parts[4], parts[6] if len(parts) == 7 else None, body)
            # /apis/apps/v1/namespaces/NS/deployments/NAME/scale
            if parts[:3] == ["apis", "apps", "v1"] and len(parts) == 8 and parts[3] == "namespaces" and \
                    parts[5] == "deployments" and parts[7] == "scale":
                return self.scale(method, parts[4], parts[6], body)
            # /api/v1/namespaces/NS/pods[/NAME]
            if parts[:2] == ["api", "v1"] and len(parts) in (5, 6) and parts[2] == "namespaces" and \
                    parts[4] == "pods":
                return self.pods(method, parts[3], parts[5] if len(parts) == 6 else None, body, query)
        return self.fail(404, "NotFound", "the server could not find the requested resource")

    def verb_of(self, method, collection):
        return {"GET": "list" if collection else "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(method, method.lower())

    def leases(self, method, namespace, name, body):
        verb = self.verb_of(method, name is None)
        if not allowed(verb, "leases", name):
            return self.fail(403, "Forbidden", "leases %s is forbidden" % verb)
        if name is None:
            if method != "POST":
                return self.fail(405, "MethodNotAllowed", "only create on the collection")
            if not body or "metadata" not in body or not body["metadata"].get("name"):
                return self.fail(422, "Invalid", "metadata.name: Required value")
            key = (namespace, body["metadata"]["name"])
            holder = (body.get("spec") or {}).get("holderIdentity")
            if key in STATE["leases"]:
                self.record("create", "leases", namespace, key[1], 409, holder)
                return self.fail(409, "AlreadyExists", 'leases.coordination.k8s.io "%s" already exists' % key[1])
            body["metadata"]["namespace"] = namespace
            body["metadata"]["resourceVersion"] = next_rv()
            body["metadata"].setdefault("creationTimestamp", now_text())
            body.setdefault("apiVersion", "coordination.k8s.io/v1")
            body.setdefault("kind", "Lease")
            STATE["leases"][key] = body
            self.record("create", "leases", namespace, key[1], 201, holder)
            return self.send_json(201, body)
        key = (namespace, name)
        if method == "GET":
            if key not in STATE["leases"]:
                return self.fail(404, "NotFound", 'leases.coordination.k8s.io "%s" not found' % name)
            return self.send_json(200, STATE["leases"][key])
        if method == "PUT":
            holder = ((body or {}).get("spec") or {}).get("holderIdentity")
            if key not in STATE["leases"]:
                self.record("update", "leases", namespace, name, 404, holder)
                return self.fail(404, "NotFound", 'leases.coordination.k8s.io "%s" not found' % name)
            if not body or (body.get("metadata") or {}).get("name") != name:
                return self.fail(400, "BadRequest", "the name of the object does not match the name on the URL")
            sent = body["metadata"].get("resourceVersion")
            stored = STATE["leases"][key]["metadata"]["resourceVersion"]
            if sent and sent != stored:
                self.record("update", "leases", namespace, name, 409, holder)
                return self.fail(409, "Conflict",
                                 'Operation cannot be fulfilled on leases.coordination.k8s.io "%s": the object has '
                                 'been modified; please apply your changes to the latest version and try again'
                                 % name)
            body["metadata"]["namespace"] = namespace
            body["metadata"]["resourceVersion"] = next_rv()
            body.setdefault("apiVersion", "coordination.k8s.io/v1")
            body.setdefault("kind", "Lease")
            STATE["leases"][key] = body
            self.record("update", "leases", namespace, name, 200, holder)
            return self.send_json(200, body)
        return self.fail(405, "MethodNotAllowed", "method not allowed")

    def scale(self, method, namespace, name, body):
        verb = self.verb_of(method, False)
        if not allowed(verb, "deployments/scale", name):
            return self.fail(403, "Forbidden", "deployments/scale %s is forbidden" % verb)
        key = (namespace, name)
        if key not in STATE["deployments"]:
            return self.fail(404, "NotFound", 'deployments.apps "%s" not found' % name)
        deployment = STATE["deployments"][key]
        if method == "GET":
            return self.send_json(200, scale_of(deployment))
        if method == "PATCH":
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/merge-patch+json":
                return self.fail(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
            patched = merge_patch(scale_of(deployment), body or {})
            replicas = (patched.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                self.record("patch", "deployments/scale", namespace, name, 422)
                return self.fail(422, "Invalid", "spec.replicas: Invalid value")
            deployment["spec"]["replicas"] = replicas
            deployment["metadata"]["resourceVersion"] = next_rv()
            self.record("patch", "deployments/scale", namespace, name, 200)
            return self.send_json(200, scale_of(deployment))
        return self.fail(405, "MethodNotAllowed", "method not allowed")

    def pods(self, method, namespace, name, body, query):
        verb = self.verb_of(method, name is None)
        if not allowed(verb, "pods", name):
            return self.fail(403, "Forbidden", "pods %s is forbidden" % verb)
        if name is None:
            if method != "GET":
                return self.fail(405, "MethodNotAllowed", "method not allowed")
            selector = (query.get("labelSelector") or [""])[0]
            items = [p for (ns, _), p in sorted(STATE["pods"].items())
                     if ns == namespace and selector_matches(selector, p["metadata"].get("labels") or {})]
            return self.send_json(200, {"kind": "PodList", "apiVersion": "v1",
                                        "metadata": {"resourceVersion": str(STATE["rv"])}, "items": items})
        key = (namespace, name)
        if key not in STATE["pods"]:
            return self.fail(404, "NotFound", 'pods "%s" not found' % name)
        if method == "GET":
            return self.send_json(200, STATE["pods"][key])
        if method == "PATCH":
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/merge-patch+json":
                return self.fail(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
            patched = merge_patch(STATE["pods"][key], body or {})
            patched["metadata"]["name"] = name
            patched["metadata"]["namespace"] = namespace
            patched["metadata"]["resourceVersion"] = next_rv()
            STATE["pods"][key] = patched
            self.record("patch", "pods", namespace, name, 200)
            return self.send_json(200, patched)
        return self.fail(405, "MethodNotAllowed", "method not allowed")

    def debug(self, method, what):
        try:
            body = self.read_body()
        except ValueError:
            return self.fail(400, "BadRequest", "the body is not JSON")
        with LOCK:
            if what == "__state" and method == "GET":
                return self.send_json(200, {
                    "resourceVersion": STATE["rv"],
                    "leases": list(STATE["leases"].values()),
                    "deployments": [scale_of(d) for d in STATE["deployments"].values()],
                    "pods": list(STATE["pods"].values()),
                    "writes": STATE["writes"]})
            if what == "__seed" and method == "POST":
                seed(body or {})
                return self.send_json(200, {"resourceVersion": STATE["rv"]})
            if what == "__partition" and method == "POST":
                if (body or {}).get("blocked", True):
                    STATE["blocked"].add(int(body["port"]))
                else:
                    STATE["blocked"].discard(int(body["port"]))
                return self.send_json(200, {"blocked": sorted(STATE["blocked"])})
            if what == "__token" and method == "POST":
                STATE["token"] = (body or {}).get("token")
                return self.send_json(200, {})
        return self.fail(404, "NotFound", "no such debug endpoint")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_PATCH(self):
        self.route("PATCH")

    def do_DELETE(self):
        self.route("DELETE")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        conn, address = super().get_request()
        with LOCK:
            blocked = self.server_address[1] in STATE["blocked"]
        if blocked:
            # Cut off: the connection is accepted and dropped before any byte is read or written.
            try:
                conn.close()
            finally:
                raise OSError("partitioned")
        return conn, address


def main():
    global ARGS
    parser = argparse.ArgumentParser(description="fake Kubernetes API server for tests")
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--token")
    parser.add_argument("--token-file")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--chunked", action="store_true")
    parser.add_argument("--rbac", action="store_true")
    parser.add_argument("--lease-name", default="rtc-balancer-leader")
    parser.add_argument("--deployment", default="rtc-socket")
    parser.add_argument("--seed")
    parser.add_argument("--max-requests-per-connection", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    ARGS = parser.parse_args()
    STATE["token"] = ARGS.token
    if ARGS.seed:
        with open(ARGS.seed) as f:
            seed(json.load(f))
    context = None
    if ARGS.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ARGS.cert, ARGS.key)
    servers = []
    for port in ARGS.port:
        server = Server(("127.0.0.1", port), Handler)
        if context:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("fake-kube listening on %s" % ",".join(str(s.server_address[1]) for s in servers), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
