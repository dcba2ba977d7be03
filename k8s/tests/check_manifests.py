#!/usr/bin/env python3
"""Asserts the properties the rtc deployment promises (k8s/README.md) on a rendered kustomize output.

One line per check: `PASS <check> <subject>: <detail>` or `FAIL <check> <subject>: <detail>`; exit 1 when
any check fails. Profiles: `system` for an overlay (k8s/overlays/*), `bench` for k8s/bench.

usage: check_manifests.py --profile system|bench FILE
"""
import argparse
import re
import sys

import yaml

import hpa_sim

NAMESPACE = "rtc"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PriorityClass", "StorageClass"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"}

# The balancer's Role, exactly (SYSTEM §3): (apiGroup, resource) -> verbs. Nothing more, nothing less.
BALANCER_RULES = {
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
    ("apps", "deployments/scale"): {"get", "patch"},
    ("", "pods"): {"list", "patch"},
}
READ_ONLY_VERBS = {"get", "list", "watch"}
PORT_RANGE_SYSCTL = "net.ipv4.ip_local_port_range"
# A port range with fewer ports than this does not hold 50,000 connections to one address.
MIN_EPHEMERAL_PORTS = 60000
SOCKET_GRACE_SECONDS = 330
BENCH_TARGET_CONNECTIONS = 1_000_000


class Report:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, ok, name, subject, detail):
        line = "%s %s %s: %s" % ("PASS" if ok else "FAIL", name, subject, detail)
        print(line)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


class Render:
    def __init__(self, objects):
        self.objects = objects

    def all(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind, name):
        for o in self.objects:
            if o.get("kind") == kind and o["metadata"].get("name") == name:
                return o
        return None

    def named(self, name, kinds):
        return [o for o in self.objects if o.get("kind") in kinds and o["metadata"].get("name") == name]

    def workloads(self):
        return [o for o in self.objects if o.get("kind") in WORKLOAD_KINDS]

    def config_value(self, configmap, key):
        cm = self.get("ConfigMap", configmap)
        return None if cm is None else (cm.get("data") or {}).get(key)


def ref(obj):
    return "%s/%s" % (obj["kind"], obj["metadata"]["name"])


def pod_template(obj):
    kind = obj["kind"]
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def pod_spec(obj):
    return pod_template(obj).get("spec") or {}


def pod_labels(obj):
    return (pod_template(obj).get("metadata") or {}).get("labels") or {}


def containers(obj, include_init=True):
    spec = pod_spec(obj)
    result = [(c, False) for c in spec.get("containers") or []]
    if include_init:
        result += [(c, True) for c in spec.get("initContainers") or []]
    return result


def selects(selector, labels):
    """True when a label selector (matchLabels form or a plain map) is non-empty and matches labels."""
    match = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    if not match:
        return False
    return all(labels.get(k) == v for k, v in match.items())


def env_var(container, name):
    for e in container.get("env") or []:
        if e.get("name") == name:
            return e
    return None


def probe_http_path(probe):
    return ((probe or {}).get("httpGet") or {}).get("path")


def port_number(container, port):
    """Resolves a named or numeric container port."""
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def image_tag(image):
    if "@sha256:" in image:
        return "digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def sysctl_port_range(obj):
    for s in (pod_spec(obj).get("securityContext") or {}).get("sysctls") or []:
        if s.get("name") == PORT_RANGE_SYSCTL:
            parts = str(s.get("value", "")).split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                return int(parts[0]), int(parts[1])
    return None


# ---- checks for every workload ----

def check_workloads(render, report):
    for wl in render.workloads():
        spec = pod_spec(wl)
        pod_sc = spec.get("securityContext") or {}
        problems = []
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field):
                problems.append("%s is set" % field)
        if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append("seccompProfile is not RuntimeDefault")
        if pod_sc.get("runAsUser") == 0:
            problems.append("runAsUser is 0")
        if pod_sc.get("runAsNonRoot") is not True:
            problems.append("runAsNonRoot is not true")
        report.check(not problems, "pod.security", ref(wl), "; ".join(problems) or
                     "non-root, seccomp RuntimeDefault, no host namespaces")
        for c, is_init in containers(wl):
            subject = "%s/%s" % (ref(wl), c["name"])
            check_container(wl, c, is_init, subject, pod_sc, report)


def check_container(wl, c, is_init, subject, pod_sc, report):
    sc = c.get("securityContext") or {}
    problems = []
    run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if run_as_non_root is not True:
        problems.append("runAsNonRoot is not true")
    if run_as_user == 0:
        problems.append("runAsUser is 0")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        problems.append("privileged")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        problems.append("capabilities not dropped (drop: [ALL])")
    if caps.get("add"):
        problems.append("capabilities added: %s" % caps["add"])
    report.check(not problems, "container.security", subject, "; ".join(problems) or
                 "non-root, read-only root filesystem, no privilege escalation, capabilities dropped")

    res = c.get("resources") or {}
    missing = ["%s.%s" % (kind, r) for kind in ("requests", "limits") for r in ("cpu", "memory")
               if r not in (res.get(kind) or {})]
    report.check(not missing, "container.resources", subject,
                 "missing " + ", ".join(missing) if missing else "cpu and memory requests and limits")

    image = c.get("image") or ""
    tag = image_tag(image)
    report.check(tag is not None and tag != "latest", "container.image", subject,
                 "%s: %s" % (image, "pinned" if tag not in (None, "latest") else "needs a fixed tag, not latest"))

    if wl["kind"] in LONG_RUNNING_KINDS and not is_init:
        missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
        report.check(not missing, "container.probes", subject,
                     "missing " + ", ".join(missing) if missing else "readiness and liveness probes")


def check_namespace(render, report):
    wrong = [ref(o) for o in render.objects
             if o.get("kind") not in CLUSTER_SCOPED and o["metadata"].get("namespace") != NAMESPACE]
    report.check(not wrong, "objects.namespace", NAMESPACE,
                 "not in namespace %s: %s" % (NAMESPACE, ", ".join(wrong)) if wrong else "every object in %s" % NAMESPACE)


# ---- the system profile ----

REQUIRED = [
    ("Namespace", NAMESPACE), ("ConfigMap", "rtc-config"),
    ("ServiceAccount", "rtc-balancer"), ("ServiceAccount", "rtc-socket"), ("ServiceAccount", "rtc-gateway"),
    ("Role", "rtc-balancer"), ("RoleBinding", "rtc-balancer"),
    ("Deployment", "rtc-balancer"), ("Service", "rtc-balancer"),
    ("HorizontalPodAutoscaler", "rtc-balancer"), ("PodDisruptionBudget", "rtc-balancer"),
    ("Service", "socket"),
    ("Deployment", "rtc-gateway"), ("Service", "rtc-gateway"),
    ("HorizontalPodAutoscaler", "rtc-gateway"), ("PodDisruptionBudget", "rtc-gateway"),
    ("Deployment", "prometheus"), ("Service", "prometheus"),
]


def check_required(render, report):
    missing = ["%s/%s" % k for k in REQUIRED if render.get(*k) is None]
    report.check(not missing, "objects.required", "system",
                 "missing " + ", ".join(missing) if missing else "%d required objects present" % len(REQUIRED))


def check_secrets(render, report):
    secrets = [o for o in render.all("Secret") if o.get("data") or o.get("stringData")]
    report.check(not secrets, "secrets.external", "rtc-secrets",
                 "secret values committed in %s" % ", ".join(ref(s) for s in secrets) if secrets
                 else "no Secret values in the render; rtc-secrets is created outside it")


def the_container(wl, name):
    for c, is_init in containers(wl, include_init=False):
        if c["name"] == name:
            return c
    cs = pod_spec(wl).get("containers") or []
    return cs[0] if cs else {}


def check_env(report, check, wl, c, names):
    missing = [n for n in names if env_var(c, n) is None]
    report.check(not missing, check, ref(wl),
                 "missing env " + ", ".join(missing) if missing else "env " + ", ".join(names))


def check_secret_ref(report, check, wl, c, name):
    e = env_var(c, name) or {}
    key_ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
    report.check(key_ref.get("name") == "rtc-secrets", check, "%s %s" % (ref(wl), name),
                 "from Secret rtc-secrets" if key_ref.get("name") == "rtc-secrets"
                 else "must come from Secret rtc-secrets (secretKeyRef), found %s" % (e.get("valueFrom") or e.get("value")))


def check_field_ref(report, check, wl, c, name, path):
    e = env_var(c, name) or {}
    got = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    report.check(got == path, check, "%s %s" % (ref(wl), name),
                 "fieldRef %s" % path if got == path else "must be fieldRef %s, found %s" % (path, got))


def check_probe_paths(report, check, wl, c, ready, alive, port):
    rp, lp = c.get("readinessProbe"), c.get("livenessProbe")
    problems = []
    if probe_http_path(rp) != ready:
        problems.append("readiness must be GET %s, found %s" % (ready, probe_http_path(rp)))
    if probe_http_path(lp) != alive:
        problems.append("liveness must be GET %s, found %s" % (alive, probe_http_path(lp)))
    for name, p in (("readiness", rp), ("liveness", lp)):
        got = port_number(c, ((p or {}).get("httpGet") or {}).get("port"))
        if p and got != port:
            problems.append("%s probe port must be %d, found %s" % (name, port, got))
    report.check(not problems, check, ref(wl), "; ".join(problems) or
                 "readiness GET %s, liveness GET %s on :%d" % (ready, alive, port))


def find_hpa(render, kind, name):
    return [h for h in render.all("HorizontalPodAutoscaler")
            if (h["spec"].get("scaleTargetRef") or {}).get("kind") == kind
            and h["spec"]["scaleTargetRef"].get("name") == name]


def find_pdb(render, wl):
    return [p for p in render.all("PodDisruptionBudget") if selects(p["spec"].get("selector") or {}, pod_labels(wl))]


def check_hpa_pdb(render, report, wl, prefix):
    hpas = find_hpa(render, wl["kind"], wl["metadata"]["name"])
    ok = len(hpas) == 1 and hpas[0]["spec"].get("minReplicas", 1) >= 1
    report.check(ok, prefix + ".hpa", ref(wl), "HPA %s, %s..%s replicas" % (
        hpas[0]["metadata"]["name"], hpas[0]["spec"].get("minReplicas"), hpas[0]["spec"].get("maxReplicas"))
        if ok else "needs exactly one HorizontalPodAutoscaler targeting it, found %d" % len(hpas))
    pdbs = find_pdb(render, wl)
    report.check(len(pdbs) == 1, prefix + ".pdb", ref(wl),
                 "PodDisruptionBudget %s" % pdbs[0]["metadata"]["name"] if len(pdbs) == 1
                 else "needs exactly one PodDisruptionBudget selecting its pods, found %d" % len(pdbs))


def check_balancer(render, report):
    wl = render.get("Deployment", "rtc-balancer")
    if wl is None:
        return
    c = the_container(wl, "rtc-balancer")
    check_env(report, "balancer.env", wl, c,
              ["REDIS_URL", "KAFKA_BOOTSTRAP", "RING_SECRET", "SCALE_MODE", "POD_NAMESPACE"])
    check_secret_ref(report, "balancer.secret", wl, c, "RING_SECRET")
    check_field_ref(report, "balancer.env", wl, c, "POD_NAMESPACE", "metadata.namespace")
    check_probe_paths(report, "balancer.probes", wl, c, "/readyz", "/healthz", 8081)
    check_hpa_pdb(render, report, wl, "balancer")
    svc = render.get("Service", "rtc-balancer")
    ok = svc is not None and selects(svc["spec"].get("selector") or {}, pod_labels(wl)) and \
        any(p.get("port") == 8081 for p in svc["spec"].get("ports") or [])
    report.check(ok, "balancer.service", "Service/rtc-balancer",
                 "selects the balancer pods on :8081" if ok else "must select the balancer pods and serve port 8081")


def check_socket(render, report):
    candidates = render.named("rtc-socket", WORKLOAD_KINDS) + [
        w for w in render.workloads() if pod_spec(w).get("subdomain") == "socket" and w["metadata"]["name"] != "rtc-socket"]
    kinds = sorted({ref(w) for w in candidates})
    ok = len(candidates) == 1 and candidates[0]["kind"] == "Deployment"
    report.check(ok, "socket.kind", "rtc-socket",
                 "a Deployment (pod-deletion-cost decides which pod a scale-in removes)" if ok else
                 "the socket nodes must be exactly one Deployment (a StatefulSet ignores pod-deletion-cost), found: %s"
                 % (", ".join(kinds) or "nothing"))
    if not candidates:
        return
    wl = candidates[0]
    spec = pod_spec(wl)
    c = the_container(wl, "rtc-socket")

    subdomain = spec.get("subdomain")
    svc = render.get("Service", subdomain) if subdomain else None
    problems = []
    if subdomain != "socket":
        problems.append("subdomain must be `socket` (the gateway resolves <podid>.socket.<ns>.svc.cluster.local), found %s"
                        % subdomain)
    if svc is None:
        problems.append("no Service named like the subdomain %s" % subdomain)
    else:
        if svc["spec"].get("clusterIP") != "None":
            problems.append("Service %s must be headless (clusterIP: None)" % subdomain)
        if not selects(svc["spec"].get("selector") or {}, pod_labels(wl)):
            problems.append("Service %s does not select the socket pods" % subdomain)
        if not any(p.get("port") == 8080 for p in svc["spec"].get("ports") or []):
            problems.append("Service %s does not serve port 8080" % subdomain)
    if spec.get("hostname"):
        problems.append("hostname is set: every pod would share one DNS name")
    report.check(not problems, "socket.subdomain", ref(wl), "; ".join(problems) or
                 "subdomain socket = headless Service socket selecting the pods on :8080")

    pre = (c.get("lifecycle") or {}).get("preStop") or {}
    drain = probe_http_path(pre) == "/drain" or any("/drain" in str(a) for a in (pre.get("exec") or {}).get("command") or [])
    report.check(drain, "socket.prestop", ref(wl), "preStop calls /drain" if drain
                 else "preStop must start the drain (httpGet /drain or an exec calling /drain), found %s" % (pre or "none"))

    grace = spec.get("terminationGracePeriodSeconds")
    drain_seconds = render.config_value("rtc-config", "DRAIN_SECONDS")
    ok = grace == SOCKET_GRACE_SECONDS and (drain_seconds is None or int(drain_seconds) < grace)
    report.check(ok, "socket.grace", ref(wl), "terminationGracePeriodSeconds %s > DRAIN_SECONDS %s" % (grace, drain_seconds)
                 if ok else "terminationGracePeriodSeconds must be %d and exceed DRAIN_SECONDS (%s), found %s"
                 % (SOCKET_GRACE_SECONDS, drain_seconds, grace))

    check_probe_paths(report, "socket.probes", wl, c, "/readyz", "/healthz", 8080)
    check_socket_startup(report, wl, c)
    check_field_ref(report, "socket.node-id", wl, c, "NODE_ID", "metadata.name")
    # The node's heartbeat carries POD_IP; with SOCKET_URL_FORM=ip the balancer builds /ws/<a-b-c-d>/connect
    # from it, the name a stock headless Service publishes (<a-b-c-d>.socket.<ns>.svc.cluster.local).
    check_field_ref(report, "socket.pod-ip", wl, c, "POD_IP", "status.podIP")
    form = render.config_value("rtc-config", "SOCKET_URL_FORM")
    bal = render.get("Deployment", "rtc-balancer")
    e = env_var(the_container(bal, "rtc-balancer"), "SOCKET_URL_FORM") if bal else None
    cm_ref = ((e or {}).get("valueFrom") or {}).get("configMapKeyRef") or {}
    problems = []
    if form not in ("ip", "name"):
        problems.append("SOCKET_URL_FORM in rtc-config must be ip or name, found %s" % form)
    if not (cm_ref.get("name") == "rtc-config" and cm_ref.get("key") == "SOCKET_URL_FORM"):
        problems.append("the balancer's SOCKET_URL_FORM must come from ConfigMap rtc-config")
    report.check(not problems, "socket.url-form", "SOCKET_URL_FORM", "; ".join(problems) or (
        "ip: /ws/<a-b-c-d>/connect, the per-pod name every headless Service publishes" if form == "ip" else
        "name: /ws/<pod>/connect, needs CoreDNS endpoint_pod_names (k8s/README.md)"))
    check_env(report, "socket.env", wl, c,
              ["NODE_ID", "REDIS_URL", "KAFKA_BOOTSTRAP", "RING_SECRET", "RESUME_TTL_SEC", "DRAIN_SECONDS"])
    check_secret_ref(report, "socket.secret", wl, c, "RING_SECRET")
    report.check(spec.get("automountServiceAccountToken") is False, "rbac.socket-token", ref(wl),
                 "no service-account token mounted" if spec.get("automountServiceAccountToken") is False
                 else "socket nodes never call the API: automountServiceAccountToken must be false")


# A socket pod has this long to open its listener before the kubelet restarts it.
SOCKET_STARTUP_MIN_SECONDS = 30


def check_socket_startup(report, wl, c):
    """startupProbe GET /healthz on the node's port 8080: /healthz answers once the listener is up, while
    /readyz waits for Redis; a startupProbe on /readyz would restart every new pod during a Redis outage."""
    sp = c.get("startupProbe")
    problems = []
    if not sp:
        problems.append("missing startupProbe (GET /healthz on :8080)")
    else:
        path = probe_http_path(sp)
        port = port_number(c, ((sp.get("httpGet") or {}).get("port")))
        if path != "/healthz":
            problems.append("startupProbe must be GET /healthz (/readyz waits for Redis: a Redis outage would "
                            "crash-loop new pods), found %s" % path)
        if port != 8080:
            problems.append("startupProbe port must be 8080, found %s" % port)
        budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
        if budget < SOCKET_STARTUP_MIN_SECONDS:
            problems.append("startupProbe allows %d s (periodSeconds x failureThreshold) < %d s"
                            % (budget, SOCKET_STARTUP_MIN_SECONDS))
    report.check(not problems, "socket.startup", ref(wl), "; ".join(problems) or
                 "startupProbe GET /healthz on :8080, %d s budget" % (sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)))


def check_gateway(render, report):
    wl = render.get("Deployment", "rtc-gateway")
    if wl is None:
        return
    spec = pod_spec(wl)
    c = the_container(wl, "rtc-gateway")
    check_probe_paths(report, "gateway.probes", wl, c, "/readyz", "/healthz", 9113)
    check_hpa_pdb(render, report, wl, "gateway")
    check_field_ref(report, "gateway.env", wl, c, "POD_NAMESPACE", "metadata.namespace")

    lbs = [s for s in render.all("Service") if s["spec"].get("type") == "LoadBalancer"
           and selects(s["spec"].get("selector") or {}, pod_labels(wl))]
    ok = len(lbs) == 1 and any(port_number(c, p.get("targetPort", p.get("port"))) == 8080
                               and p.get("port") == 8080 for p in lbs[0]["spec"].get("ports") or [])
    exposes_admin = any(port_number(c, p.get("targetPort", p.get("port"))) == 9113
                        for s in lbs for p in s["spec"].get("ports") or [])
    report.check(ok and not exposes_admin, "gateway.service", ref(wl),
                 "Service %s type LoadBalancer :8080 -> :8080, admin port not exposed" % lbs[0]["metadata"]["name"]
                 if ok and not exposes_admin else
                 "needs one `type: LoadBalancer` Service selecting the gateway pods with port 8080 -> 8080 and "
                 "not 9113, found %s" % ([(s["metadata"]["name"], s["spec"].get("type")) for s in render.all("Service")
                                          if selects(s["spec"].get("selector") or {}, pod_labels(wl))]))

    rng = sysctl_port_range(wl)
    ok = rng is not None and rng[1] - rng[0] + 1 >= MIN_EPHEMERAL_PORTS
    report.check(ok, "gateway.sysctl", ref(wl), "%s = %s-%s" % (PORT_RANGE_SYSCTL, rng[0], rng[1]) if ok else
                 "pod securityContext.sysctls must widen %s to >= %d ports, found %s" % (PORT_RANGE_SYSCTL, MIN_EPHEMERAL_PORTS, rng))

    # The config file comes from a ConfigMap holding gateway.conf, mounted into the gateway container.
    mounted = {m["name"] for m in c.get("volumeMounts") or []}
    cms = [v["configMap"]["name"] for v in spec.get("volumes") or [] if v.get("configMap") and v["name"] in mounted]
    with_conf = [n for n in cms if "gateway.conf" in ((render.get("ConfigMap", n) or {}).get("data") or {})]
    report.check(len(with_conf) == 1, "gateway.config", ref(wl),
                 "mounts ConfigMap %s with gateway.conf" % with_conf[0] if len(with_conf) == 1
                 else "must mount exactly one ConfigMap holding gateway.conf, found %s" % cms)
    report.check(spec.get("automountServiceAccountToken") is False, "rbac.gateway-token", ref(wl),
                 "no service-account token mounted" if spec.get("automountServiceAccountToken") is False
                 else "the gateway never calls the API: automountServiceAccountToken must be false")


def role_rules(role):
    rules = {}
    problems = []
    for rule in role.get("rules") or []:
        if rule.get("nonResourceURLs"):
            problems.append("nonResourceURLs")
        for group in rule.get("apiGroups") or [""]:
            for res in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    if "*" in (group, res, verb):
                        problems.append("wildcard in %s %s %s" % (group or "core", res, verb))
                    rules.setdefault((group, res), set()).add(verb)
    return rules, problems


def bindings_for(render, sa):
    return [b for b in render.all("RoleBinding") + render.all("ClusterRoleBinding")
            if any(s.get("kind") == "ServiceAccount" and s.get("name") == sa for s in b.get("subjects") or [])]


def check_rbac(render, report):
    role = render.get("Role", "rtc-balancer")
    if role is not None:
        rules, problems = role_rules(role)
        for key in sorted(set(rules) | set(BALANCER_RULES)):
            got, want = rules.get(key, set()), BALANCER_RULES.get(key, set())
            if got - want:
                problems.append("extra verbs on %s %s: %s" % (key[0] or "core", key[1], ", ".join(sorted(got - want))))
            if want - got:
                problems.append("missing verbs on %s %s: %s" % (key[0] or "core", key[1], ", ".join(sorted(want - got))))
        report.check(not problems, "rbac.balancer", ref(role), "; ".join(problems) or
                     "exactly leases get/create/update, deployments/scale get/patch, pods list/patch")

    binding = render.get("RoleBinding", "rtc-balancer")
    wl = render.get("Deployment", "rtc-balancer")
    ok = (binding is not None and wl is not None
          and binding["roleRef"].get("kind") == "Role" and binding["roleRef"].get("name") == "rtc-balancer"
          and [(s.get("kind"), s.get("name")) for s in binding.get("subjects") or []] == [("ServiceAccount", "rtc-balancer")]
          and pod_spec(wl).get("serviceAccountName") == "rtc-balancer")
    report.check(ok, "rbac.binding", "rtc-balancer", "Role rtc-balancer bound to ServiceAccount rtc-balancer only, "
                 "used by Deployment rtc-balancer" if ok else
                 "RoleBinding rtc-balancer must bind Role rtc-balancer to ServiceAccount rtc-balancer only, and the "
                 "balancer Deployment must run as that ServiceAccount")

    cluster = render.all("ClusterRole") + render.all("ClusterRoleBinding")
    report.check(not cluster, "rbac.namespaced", NAMESPACE,
                 "cluster-wide RBAC: %s" % ", ".join(ref(o) for o in cluster) if cluster else "no ClusterRole or ClusterRoleBinding")

    for name in ("rtc-socket", "rtc-gateway"):
        wl = render.named(name, WORKLOAD_KINDS)
        sa = pod_spec(wl[0]).get("serviceAccountName", "default") if wl else name
        bound = bindings_for(render, sa)
        report.check(not bound and sa != "default", "rbac.none", "%s (ServiceAccount %s)" % (name, sa),
                     "bound by %s" % ", ".join(ref(b) for b in bound) if bound else
                     ("must use its own ServiceAccount, not default" if sa == "default" else "no Role bound"))

    for role in render.all("Role"):
        if role["metadata"]["name"] == "rtc-balancer":
            continue
        rules, problems = role_rules(role)
        extra = sorted({v for verbs in rules.values() for v in verbs} - READ_ONLY_VERBS)
        if extra:
            problems.append("writes: %s" % ", ".join(extra))
        report.check(not problems, "rbac.read-only", ref(role), "; ".join(problems) or "get/list/watch only")


def check_scaling(render, report):
    mode = render.config_value("rtc-config", "SCALE_MODE")
    wl = render.get("Deployment", "rtc-balancer")
    e = env_var(the_container(wl, "rtc-balancer"), "SCALE_MODE") if wl else None
    cm_ref = ((e or {}).get("valueFrom") or {}).get("configMapKeyRef") or {}
    from_cm = cm_ref.get("name") == "rtc-config" and cm_ref.get("key") == "SCALE_MODE"
    scaled = [s for s in render.all("ScaledObject") if (s["spec"].get("scaleTargetRef") or {}).get("name") == "rtc-socket"]
    hpas = find_hpa(render, "Deployment", "rtc-socket")
    problems = []
    if not from_cm:
        problems.append("the balancer's SCALE_MODE must come from ConfigMap rtc-config")
    if hpas:
        problems.append("a HorizontalPodAutoscaler targets rtc-socket (KEDA or the balancer owns the count)")
    if mode == "keda":
        if len(scaled) != 1:
            problems.append("SCALE_MODE=keda needs one ScaledObject on rtc-socket, found %d" % len(scaled))
        else:
            triggers = scaled[0]["spec"].get("triggers") or []
            prom = [t for t in triggers if t.get("type") == "prometheus"
                    and "rtc_balancer_desired_socket_replicas" in (t.get("metadata") or {}).get("query", "")]
            if not prom:
                problems.append("no prometheus trigger on rtc_balancer_desired_socket_replicas")
            if not any(t.get("type") == "cpu" for t in triggers):
                problems.append("no cpu trigger")
            for t in prom:
                host = re.match(r"https?://([^:/]+)", t["metadata"].get("serverAddress", ""))
                name = host.group(1).split(".")[0] if host else None
                if render.get("Service", name) is None:
                    problems.append("serverAddress %s names no Service in the render" % t["metadata"].get("serverAddress"))
    elif mode == "direct":
        if scaled:
            problems.append("SCALE_MODE=direct but a ScaledObject targets rtc-socket (never both)")
    else:
        problems.append("SCALE_MODE must be keda or direct, found %s" % mode)
    report.check(not problems, "scaling.mode", "rtc-socket", "; ".join(problems) or
                 ("keda: ScaledObject with prometheus (rtc_balancer_desired_socket_replicas) and cpu triggers"
                  if mode == "keda" else "direct: the balancer scales, no ScaledObject or HPA"))


def endpoint_hosts(name, value):
    """[(host, port)] of REDIS_URL (redis://[:password@]host[:port][/db]) or KAFKA_BOOTSTRAP (host:port,...)."""
    if name == "REDIS_URL":
        m = re.fullmatch(r"rediss?://(?:[^@/]*@)?([A-Za-z0-9.-]+)(?::(\d+))?(?:/\d+)?", value or "")
        return [(m.group(1), int(m.group(2) or 6379))] if m else None
    out = []
    for part in (value or "").split(","):
        m = re.fullmatch(r"([A-Za-z0-9.-]+):(\d+)", part.strip())
        if not m:
            return None
        out.append((m.group(1), int(m.group(2))))
    return out or None


def in_namespace_service(host):
    """The Service name when host names one in namespace rtc (svc, svc.rtc, svc.rtc.svc[.cluster.local]), a pod of
    a headless one (pod.svc.rtc.svc...) resolving to its Service, else None (an address outside the namespace)."""
    parts = host.split(".")
    suffix = [NAMESPACE, "svc", "cluster", "local"]
    for n in range(len(suffix), -1, -1):
        if n and parts[-n:] == suffix[:n] or n == 0 and len(parts) == 1:
            rest = parts[:len(parts) - n] if n else parts
            if n == 0 or rest:
                return rest[-1] if rest else None
    return None


def check_endpoints(render, report):
    """REDIS_URL and KAFKA_BOOTSTRAP: well-formed; an address in namespace rtc must be a Service of the render
    (on that port); when the render carries the example prereqs (dev), both must point at them."""
    prereqs = {w["metadata"]["name"] for w in render.workloads() if w["metadata"]["name"] in ("redis", "kafka")}
    for key, prereq in (("REDIS_URL", "redis"), ("KAFKA_BOOTSTRAP", "kafka")):
        value = render.config_value("rtc-config", key)
        hosts = endpoint_hosts(key, value)
        problems = []
        kinds = []
        if not hosts:
            problems.append("%s is not a valid address: %r" % (key, value))
        for host, port in hosts or []:
            svc_name = in_namespace_service(host)
            if svc_name is None:
                kinds.append("external %s:%d (operator-supplied)" % (host, port))
                if prereq in prereqs:
                    problems.append("the render deploys the example %s, but %s points at %s" % (prereq, key, host))
                continue
            svc = render.get("Service", svc_name)
            if svc is None:
                problems.append("%s names Service %s in namespace %s, which the render lacks" % (key, svc_name, NAMESPACE))
            elif not any(p.get("port") == port for p in svc["spec"].get("ports") or []):
                problems.append("Service %s has no port %d" % (svc_name, port))
            elif prereq in prereqs and svc_name != prereq:
                problems.append("the render deploys the example %s, but %s points at Service %s" % (prereq, key, svc_name))
            else:
                kinds.append("in-cluster Service %s:%d" % (svc_name, port))
        report.check(not problems, "config.endpoints", key, "; ".join(problems) or "%s = %s" % (value, ", ".join(kinds)))


def check_exact_scaling(render, report):
    """keda mode: the HPA KEDA makes from the ScaledObject must give exactly the balancer's count N, for every N
    the balancer can export and every current count (hpa_sim.py simulates the HPA with the rendered settings)."""
    if render.config_value("rtc-config", "SCALE_MODE") != "keda":
        return
    try:
        found = hpa_sim.from_render(render.objects)
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as e:
        report.check(False, "scaling.exact", "ScaledObject/rtc-socket", "cannot simulate: %s" % e)
        return
    if found is None:
        return
    hpa, desired, load_for, key = found
    problems = []
    if desired.start < hpa.min or desired.stop - 1 > hpa.max:
        problems.append("the balancer's range %d..%d (MIN/MAX_SOCKET_REPLICAS) is not inside the ScaledObject's "
                        "%d..%d" % (desired.start, desired.stop - 1, hpa.min, hpa.max))
    failures, worst = hpa_sim.verify(hpa, desired, load_for, key)
    if failures:
        # Show the pairs nearest the prod size first (20 pods), e.g. C=20 N=21.
        shown = sorted(failures, key=lambda f: (abs(f[0] - 20), abs(f[1] - f[0]), f[1]))[:3]
        problems.append("%d of %d (current C, desired N) pairs do not end at N: %s" % (
            len(failures), (hpa.max - hpa.min + 1) * len(desired),
            "; ".join("C=%d N=%d %s" % f for f in shown)))
    report.check(not problems, "scaling.exact", "ScaledObject/rtc-socket", "; ".join(problems) or
                 "HPA simulation: every N in %d..%d from every C in %d..%d ends at exactly N (tolerance up %s, "
                 "down %s); slowest %d s" % (desired.start, desired.stop - 1, hpa.min, hpa.max,
                                             hpa.up["tolerance"], hpa.down["tolerance"], worst))


def check_prometheus(render, report):
    wl = render.get("Deployment", "prometheus")
    if wl is None:
        return
    spec = pod_spec(wl)
    cms = [v["configMap"]["name"] for v in spec.get("volumes") or [] if v.get("configMap")]
    problems = []
    discovery = False
    for name in cms:
        text = ((render.get("ConfigMap", name) or {}).get("data") or {}).get("prometheus.yml")
        if text is None:
            continue
        config = yaml.safe_load(text)
        for job in config.get("scrape_configs") or []:
            for sd in job.get("kubernetes_sd_configs") or []:
                if sd.get("role") == "pod" and NAMESPACE in ((sd.get("namespaces") or {}).get("names") or []):
                    discovery = True
    if not discovery:
        problems.append("no prometheus.yml with kubernetes_sd_configs role pod in namespace %s" % NAMESPACE)
    bound = bindings_for(render, spec.get("serviceAccountName", "default"))
    if not bound:
        problems.append("its ServiceAccount has no Role to list pods")
    report.check(not problems, "prometheus.discovery", ref(wl), "; ".join(problems) or "pod discovery in namespace rtc")

    for name in ("rtc-gateway", "rtc-balancer", "rtc-socket"):
        for target in render.named(name, WORKLOAD_KINDS):
            ann = (pod_template(target).get("metadata") or {}).get("annotations") or {}
            c = the_container(target, name)
            port = int(ann.get("prometheus.io/port", "0") or 0)
            ok = ann.get("prometheus.io/scrape") == "true" and port in [p.get("containerPort") for p in c.get("ports") or []]
            report.check(ok, "prometheus.scrape", ref(target),
                         "scraped on :%d%s" % (port, ann.get("prometheus.io/path", "/metrics")) if ok else
                         "pod template needs prometheus.io/scrape=\"true\" and prometheus.io/port naming a container port")


def system_profile(render, report):
    check_required(render, report)
    check_namespace(render, report)
    check_secrets(render, report)
    check_workloads(render, report)
    check_rbac(render, report)
    check_balancer(render, report)
    check_socket(render, report)
    check_gateway(render, report)
    check_scaling(render, report)
    check_exact_scaling(render, report)
    check_endpoints(render, report)
    check_prometheus(render, report)


# ---- the bench profile ----

def flag_value(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def gateway_per_client_ip(path):
    """The `per_client_ip` limit of the shipped gateway config (None when it sets none)."""
    try:
        text = open(path).read()
    except OSError:
        return None
    match = re.search(r"^\s*per_client_ip\s+(\d+)\s*;", text, re.M)
    return int(match.group(1)) if match else None


def bench_profile(render, report, gateway_conf):
    check_namespace(render, report)
    check_workloads(render, report)
    job = render.get("Job", "rtc-bench")
    report.check(job is not None, "objects.required", "bench", "Job rtc-bench" if job else "missing Job/rtc-bench")
    if job is None:
        return
    spec = job["spec"]
    c = the_container(job, "rtc-bench")
    args = [str(a) for a in (c.get("command") or [])[1:] + (c.get("args") or [])]
    clients = flag_value(args, "--clients")
    per_pod = int(clients) if clients and clients.isdigit() else 0
    total_clients = flag_value(args, "--total-clients")
    target = flag_value(args, "--target")
    parallelism = spec.get("parallelism", 1)
    completions = spec.get("completions", parallelism)
    total = parallelism * per_pod
    problems = []
    if not args or args[0] != "run":
        problems.append("the container must run `rtc-bench run`, found %s" % (args[:1] or "no args"))
    if parallelism < 2:
        problems.append("parallelism must be > 1 (pods run in parallel), found %s" % parallelism)
    if completions != parallelism:
        problems.append("completions %s != parallelism %s: not all pods run at once" % (completions, parallelism))
    if spec.get("completionMode") != "Indexed" or flag_value(args, "--job-index") != "$(JOB_COMPLETION_INDEX)":
        problems.append("an Indexed Job whose pods pass --job-index $(JOB_COMPLETION_INDEX) (disjoint client ids)")
    if total < BENCH_TARGET_CONNECTIONS:
        problems.append("parallelism x --clients = %d < %d" % (total, BENCH_TARGET_CONNECTIONS))
    if total_clients != str(total):
        problems.append("--total-clients must be parallelism x --clients = %d, found %s" % (total, total_clients))
    run_id = [e for e in c.get("env") or [] if e.get("name") == "RTC_RUN_ID"]
    if not run_id or "controller-uid" not in str(run_id[0].get("valueFrom", {})):
        problems.append("RTC_RUN_ID must come from the Job's controller-uid label (one run id for every pod)")
    if not target or not re.match(r"^rtc-gateway\.%s\.svc(\.cluster\.local)?:8080$" % NAMESPACE, target):
        problems.append("--target must be the gateway Service rtc-gateway.%s.svc.cluster.local:8080, found %s"
                        % (NAMESPACE, target))
    if flag_value(args, "--processes") is None:
        problems.append("no --processes")
    report.check(not problems, "bench.job", ref(job), "; ".join(problems) or
                 "%d pods x %s clients = %d through %s" % (parallelism, clients, total, target))
    # One pod's connections from one IP: its clients' WebSockets plus those still connecting (an assignment GET
    # and an upgrade each): under the gateway's per_client_ip, or the gateway refuses the rest.
    limit = gateway_per_client_ip(gateway_conf)
    concurrency = flag_value(args, "--concurrency")
    in_flight = int(concurrency) if concurrency and concurrency.isdigit() else 256
    peak = per_pod + in_flight
    ok = limit is None or peak <= limit
    report.check(ok, "bench.per-client-ip", ref(job),
                 "%d clients + %d connecting = %d per pod IP <= per_client_ip %s (%s)"
                 % (per_pod, in_flight, peak, limit, gateway_conf) if ok else
                 "%d clients + %d connecting = %d per pod IP > per_client_ip %d of %s: the gateway would refuse them"
                 % (per_pod, in_flight, peak, limit, gateway_conf))
    rng = sysctl_port_range(job)
    ok = rng is not None and rng[1] - rng[0] + 1 >= max(MIN_EPHEMERAL_PORTS, per_pod)
    report.check(ok, "bench.sysctl", ref(job), "%s = %s-%s" % (PORT_RANGE_SYSCTL, rng[0], rng[1]) if ok else
                 "pod securityContext.sysctls must widen %s to >= %d ports, found %s"
                 % (PORT_RANGE_SYSCTL, max(MIN_EPHEMERAL_PORTS, per_pod), rng))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", choices=["system", "bench"], required=True)
    parser.add_argument("--gateway-conf", default="gateway-config/gateway.conf",
                        help="the gateway config whose per_client_ip the bench pods must fit (bench profile)")
    parser.add_argument("file")
    args = parser.parse_args()
    with open(args.file) as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    render = Render(objects)
    report = Report()
    if args.profile == "system":
        system_profile(render, report)
    else:
        bench_profile(render, report, args.gateway_conf)
    print("%s: %d checks passed, %d failed" % (args.file, report.passed, report.failed))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
