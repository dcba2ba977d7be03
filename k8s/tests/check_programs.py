#!/usr/bin/env python3
"""Checks a rendered kustomize output against the programs it runs, from both sides: the built binaries'
`--help` is the source of truth for what each program reads and serves.

For every container whose image is one of the rtc programs (rtc-gateway, rtc-balancer, rtc-socket, rtc-bench):
- programs.binary    the binary exists (.build/debug or .build/release) and `--help` runs;
- programs.env       every env var set in the container (env, and the keys of envFrom ConfigMaps) is one the
                     program reads: a `--flag / ENV_VAR` line or an ENV_VAR named in its --help text; for the
                     gateway, a `${VAR}` of its config file;
- programs.required  every setting --help marks `(required)` is set (env var or flag);
- programs.env-refs  every configMapKeyRef names a ConfigMap key present in the render (a missing key keeps
                     the pod in CreateContainerConfigError);
- programs.args      every `--flag` of command/args is an option the program accepts (rtc-bench: of the
                     subcommand it runs);
- programs.ports     every containerPort is a port the program listens on, and every port it listens on is a
                     containerPort; every Service targetPort that selects the pods resolves to such a port;
- programs.probes    every httpGet probe and preStop hook asks for a path the program serves, on the port that
                     serves it (socket and balancer: the `endpoints` section, on HTTP_PORT; gateway: the admin
                     paths on its config's `admin` port, never the public listener);
- programs.scrape    the prometheus.io/port and prometheus.io/path annotations name /metrics on its port;
- gateway.config-env every `${VAR}` of the gateway's config file (from the mounted ConfigMap) is set in its env,
                     and its `listen`/`admin` ports are what the container declares.
And for the render as a whole:
- metrics.names      every metric name the manifests query (KEDA triggers, Prometheus config) is listed in
                     k8s/monitoring/metric-names.txt (Swift tests check that list against the live /metrics).

A missing binary is a FAIL ("run make build first"). The bench Job's args are checked against `rtc-bench run`;
while rtc-bench has no `run` command the line is `SKIP bench args: rtc-bench run does not exist yet`.

usage: check_programs.py --profile system|bench [--bin-dir DIR]... [--metric-names FILE] RENDER
"""
import argparse
import os
import posixpath
import re
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from check_dashboard import known_names, metric_names  # noqa: E402

PROGRAMS = ("rtc-gateway", "rtc-balancer", "rtc-socket", "rtc-bench")
DEFAULT_BIN_DIRS = [os.path.join(ROOT, ".build", "debug"), os.path.join(ROOT, ".build", "release")]
# The gateway's --help does not list its admin endpoints; SYSTEM §1 fixes them (9113 admin: /metrics, /healthz,
# /readyz) and gateway-config/gateway.conf documents them on the `admin` line. The public listener serves only
# the config's routes (everything else is 404), so no probe may use it.
GATEWAY_ADMIN_PATHS = {"/metrics", "/healthz", "/readyz"}
GATEWAY_DEFAULT_CONFIG = "/etc/rtc-gateway/gateway.conf"
# Env vars a container may carry that no program reads. Empty on purpose: every variable the manifests set is
# read by its program. Add one only with the reason it must be there.
NOT_PROGRAM_VARS = {}
ENV_WORD = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b")


class Report:
    def __init__(self):
        self.failed = self.passed = self.skipped = 0

    def check(self, ok, name, subject, detail):
        print("%s %s %s: %s" % ("PASS" if ok else "FAIL", name, subject, detail))
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def skip(self, text):
        print("SKIP " + text)
        self.skipped += 1


class Help:
    """What one program's --help says it reads, accepts and serves."""

    def __init__(self, program, text):
        self.program = program
        self.text = text
        self.flags = {}          # --flag -> ENV or None
        self.required = []       # (flag, env)
        self.defaults = {}       # --flag -> default text
        self.commands = {}       # rtc-bench: command -> set of flags
        self.paths = set()
        section = None
        command = None
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped and section == "endpoints":
                section = None          # the endpoints list ends at the first blank line
                continue
            if re.match(r"^[a-z][a-z ()]*:\s*$", line) or line.startswith("endpoints"):
                section = line.split()[0].rstrip(":")
                command = None
                continue
            m = re.match(r"^\s+(--[a-z0-9-]+)(?: [A-Z]+)?(?: / ([A-Z][A-Z0-9_]*))?\s{2,}(.*)$", line)
            if m and section != "commands":
                self.flags[m.group(1)] = m.group(2)
                if "(required)" in m.group(3):
                    self.required.append((m.group(1), m.group(2)))
                d = re.search(r"\(default ([^)]*)\)", m.group(3))
                if d:
                    self.defaults[m.group(1)] = d.group(1)
            if section == "commands":
                # A command starts at two spaces of indent; its block (options and description) runs to the
                # next one, and every --flag in it is one of its options.
                m = re.match(r"^  ([a-z][a-z0-9-]*)(?: |$)", line)
                if m:
                    command = m.group(1)
                    self.commands[command] = set()
                if command:
                    self.commands[command] |= set(re.findall(r"--[a-z0-9-]+", line))
            if section == "endpoints":
                self.paths |= {p.split("?")[0] for p in re.findall(r"(/[A-Za-z0-9_./-]*)", stripped)}
        # The usage lines list the options too (rtc-gateway [--config FILE] [--workers N]).
        for m in re.finditer(r"^\s*(?:usage:)?\s*%s ([^\n]*)" % re.escape(program), text, re.M):
            for flag in re.findall(r"--[a-z0-9-]+", m.group(1)):
                self.flags.setdefault(flag, None)
        self.env = {e for e in self.flags.values() if e} | set(ENV_WORD.findall(text))

    def http_port(self, env):
        """The port of the endpoints: HTTP_PORT from the container env, else the --port default."""
        value = env.get("HTTP_PORT")
        if value is not None and str(value).isdigit():
            return int(value)
        d = self.defaults.get("--port")
        return int(d) if d and d.isdigit() else None


def find_binary(program, dirs):
    for d in dirs:
        path = os.path.join(d, program)
        if os.access(path, os.X_OK):
            return path
    return None


def run_help(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def run_help_of(binary, command):
    out = subprocess.run([binary, command, "--help"], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def program_of(container):
    image = container.get("image") or ""
    repo = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return repo if repo in PROGRAMS else None


def pod_template(obj):
    if obj["kind"] == "Pod":
        return obj
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def ref(obj):
    return "%s/%s" % (obj["kind"], obj["metadata"]["name"])


def resolve_port(container, port):
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Render:
    def __init__(self, objects):
        self.objects = objects

    def all(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def configmap(self, name):
        for o in self.all("ConfigMap"):
            if o["metadata"]["name"] == name:
                return o.get("data") or {}
        return None


def container_env(render, c):
    """name -> value (a string when literal or from a ConfigMap key in the render, else '<ref>')."""
    env = {}
    for src in c.get("envFrom") or []:
        cm = render.configmap((src.get("configMapRef") or {}).get("name"))
        for k, v in (cm or {}).items():
            env[(src.get("prefix") or "") + k] = v
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            key_ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            cm = render.configmap(key_ref["name"]) if key_ref else None
            env[e["name"]] = cm.get(key_ref["key"], "<ref>") if cm else "<ref>"
    return env


def gateway_config(render, spec, c, args):
    """(path, text) of the config file the gateway container loads, from its mounted ConfigMap."""
    path = GATEWAY_DEFAULT_CONFIG
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args):
            path = args[i + 1]
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for m in c.get("volumeMounts") or []:
        mount = m["mountPath"].rstrip("/")
        if posixpath.dirname(path) != mount and not (m.get("subPath") and path == mount):
            continue
        vol = volumes.get(m["name"]) or {}
        cm = vol.get("configMap")
        if not cm:
            continue
        data = render.configmap(cm["name"]) or {}
        key = m.get("subPath") or posixpath.basename(path)
        for item in cm.get("items") or []:
            if item.get("path") == key:
                key = item["key"]
        if key in data:
            return path, data[key]
    return path, None


def config_port(text, directive):
    m = re.search(r"^\s*%s\s+(?:[^\s;]*:)?(\d+)\s*;" % directive, text, re.M)
    return int(m.group(1)) if m else None


def check_container(render, report, wl, c, helps, bin_dirs):
    program = program_of(c)
    subject = "%s/%s" % (ref(wl), c["name"])
    help_ = helps.get(program)
    if help_ is None:
        binary = find_binary(program, bin_dirs)
        if binary is None:
            helps[program] = False
            report.check(False, "programs.binary", program,
                         "no built %s in %s: run make build first" % (program, " or ".join(bin_dirs)))
            return
        help_ = helps[program] = Help(program, run_help(binary))
        if program == "rtc-bench" and "run" in help_.commands:
            # `rtc-bench run --help` lists every option of the command the Job runs, and the env vars it reads.
            text = run_help_of(binary, "run")
            help_.commands["run"] |= set(re.findall(r"(?<![\w-])--[a-z0-9-]+", text))
            help_.env |= set(ENV_WORD.findall(text))
        report.check(bool(help_.flags), "programs.binary", program,
                     "%s --help: %d options, %d env vars, %d endpoints" % (binary, len(help_.flags), len(help_.env),
                                                                          len(help_.paths)))
    if help_ is False:
        return
    spec = pod_template(wl).get("spec") or {}
    args = [str(a) for a in (c.get("command") or [])[1:] + (c.get("args") or [])]
    env = container_env(render, c)

    # Gateway: what it reads comes from its config file; its ports are the config's listen and admin.
    served = {}   # port -> set of paths served there
    listen_ports = set()
    if program == "rtc-gateway":
        path, text = gateway_config(render, spec, c, args)
        problems = []
        if text is None:
            problems.append("config %s is not in a mounted ConfigMap" % path)
            config_vars = set()
        else:
            text = re.sub(r"(^|\s)#[^\n]*", r"\1", text)          # comments (they mention ${VAR} too)
            config_vars = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
            unset = sorted(config_vars - set(env))
            if unset:
                problems.append("%s uses ${%s}, not set in the container env" % (path, "}, ${".join(unset)))
            listen, admin = config_port(text, "listen"), config_port(text, "admin")
            if listen is None or admin is None:
                problems.append("%s has no `listen` or no `admin` port" % path)
            else:
                listen_ports = {listen, admin}
                served = {listen: set(), admin: set(GATEWAY_ADMIN_PATHS)}
        report.check(not problems, "gateway.config-env", subject, "; ".join(problems) or
                     "%s: ${%s} set; listen :%s, admin :%s" % (path, "}, ${".join(sorted(config_vars)),
                                                              config_port(text, "listen"), config_port(text, "admin")))
        readable = set(config_vars) | help_.env
    else:
        readable = help_.env
        port = help_.http_port(env)
        if port is not None and program != "rtc-bench":
            listen_ports = {port}
            served = {port: set(help_.paths)}

    # env: set here, read there.
    unread = sorted(n for n in env if n not in readable and n not in NOT_PROGRAM_VARS)
    report.check(not unread, "programs.env", subject,
                 "set but never read by %s: %s" % (program, ", ".join(unread)) if unread else
                 "%d env vars, all read by %s" % (len(env), program))

    missing = [e or f for f, e in help_.required if (e is None or e not in env) and f not in args
               and not any(a.startswith(f + "=") for a in args)]
    report.check(not missing, "programs.required", subject,
                 "required by %s and not set: %s" % (program, ", ".join(missing)) if missing else
                 "required settings set: %s" % (", ".join(e or f for f, e in help_.required) or "none"))

    refs = []
    for e in c.get("env") or []:
        key_ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        if key_ref and not key_ref.get("optional"):
            cm = render.configmap(key_ref.get("name"))
            if cm is None or key_ref.get("key") not in cm:
                refs.append("%s <- ConfigMap %s key %s" % (e["name"], key_ref.get("name"), key_ref.get("key")))
    report.check(not refs, "programs.env-refs", subject,
                 "not in the render: %s" % "; ".join(refs) if refs else "every configMapKeyRef resolves")

    # args: flags the program (or its subcommand) accepts.
    if program == "rtc-bench":
        if "run" not in help_.commands:
            report.skip("bench args: rtc-bench run does not exist yet (%s %s)" % (subject, " ".join(args)))
        else:
            accepted = help_.commands["run"] | {"--help"}
            unknown = [a.split("=", 1)[0] for a in args[1:] if a.startswith("--") and a.split("=", 1)[0] not in accepted]
            ok = bool(args) and args[0] == "run" and not unknown
            report.check(ok, "programs.args", subject, "rtc-bench %s" % " ".join(args) if ok else
                         "must run `rtc-bench run` with its options; found %s%s" % (
                             " ".join(args[:1]) or "no command",
                             "; unknown: %s" % ", ".join(unknown) if unknown else ""))
    else:
        unknown = [a.split("=", 1)[0] for a in args if a.startswith("--") and a.split("=", 1)[0] not in help_.flags]
        report.check(not unknown, "programs.args", subject,
                     "not options of %s: %s" % (program, ", ".join(unknown)) if unknown else
                     "args %s" % (" ".join(args) or "none"))

    if program == "rtc-bench":
        return

    # ports: declared = listened on.
    declared = {p.get("containerPort") for p in c.get("ports") or []}
    problems = []
    if declared - listen_ports:
        problems.append("containerPort %s: %s does not listen there" % (sorted(declared - listen_ports), program))
    if listen_ports - declared:
        problems.append("%s listens on %s, not declared as a containerPort" % (program, sorted(listen_ports - declared)))
    labels = (pod_template(wl).get("metadata") or {}).get("labels") or {}
    for svc in render.all("Service"):
        if not selects(svc["spec"].get("selector") or {}, labels):
            continue
        for p in svc["spec"].get("ports") or []:
            target = resolve_port(c, p.get("targetPort", p.get("port")))
            if target not in listen_ports:
                problems.append("Service %s port %s -> %s: not a port %s listens on"
                                % (svc["metadata"]["name"], p.get("port"), p.get("targetPort"), program))
    report.check(not problems, "programs.ports", subject, "; ".join(problems) or
                 "listens on %s = containerPorts; Services target them" % sorted(listen_ports))

    # probes and hooks: a path the program serves, on the port that serves it.
    problems = []
    seen = []
    hooks = [(k, c.get(k)) for k in ("startupProbe", "readinessProbe", "livenessProbe")]
    hooks.append(("preStop", (c.get("lifecycle") or {}).get("preStop")))
    for name, probe in hooks:
        get = (probe or {}).get("httpGet")
        if not get:
            continue
        path = (get.get("path") or "/").split("?")[0]
        port = resolve_port(c, get.get("port"))
        seen.append("%s %s:%s" % (name, path, port))
        if port not in served:
            problems.append("%s GET %s on port %s: %s does not listen there" % (name, path, get.get("port"), program))
        elif path not in served[port]:
            problems.append("%s GET %s on port %s: not served there by %s (serves %s)"
                            % (name, path, port, program, ", ".join(sorted(served[port])) or "no admin path"))
    report.check(not problems, "programs.probes", subject, "; ".join(problems) or ", ".join(seen) or "no httpGet")

    ann = (pod_template(wl).get("metadata") or {}).get("annotations") or {}
    if ann.get("prometheus.io/scrape") == "true":
        port = int(ann.get("prometheus.io/port", "0") or 0)
        path = ann.get("prometheus.io/path", "/metrics")
        ok = "/metrics" in served.get(port, set()) and path == "/metrics"
        report.check(ok, "programs.scrape", subject, "scraped at :%d%s" % (port, path) if ok else
                     "prometheus.io/port %s and path %s: %s serves /metrics on %s" % (
                         port, path, program, [p for p, s in served.items() if "/metrics" in s]))


def check_metric_names(render, report, names_file):
    known = known_names(names_file)
    used = {}
    for so in render.all("ScaledObject"):
        for t in so["spec"].get("triggers") or []:
            query = (t.get("metadata") or {}).get("query")
            if query:
                for n in metric_names(query):
                    used.setdefault(n, set()).add(ref(so))
    for cm in render.all("ConfigMap"):
        text = (cm.get("data") or {}).get("prometheus.yml")
        if not text:
            continue
        config = yaml.safe_load(text) or {}
        for group in config.get("rule_files") or []:
            used.setdefault(group, set())
        for job in config.get("scrape_configs") or []:
            for rc in job.get("metric_relabel_configs") or []:
                if "__name__" in (rc.get("source_labels") or []):
                    for n in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rc.get("regex", "")):
                        used.setdefault(n, set()).add(ref(cm))
    unknown = sorted(n for n in used if n not in known)
    report.check(not unknown, "metrics.names", os.path.relpath(names_file, ROOT),
                 "not in metric-names.txt: %s" % ", ".join("%s (%s)" % (n, ", ".join(sorted(used[n]))) for n in unknown)
                 if unknown else "the manifests query %s" % (", ".join(sorted(used)) or "no metric"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", choices=["system", "bench"], required=True)
    parser.add_argument("--bin-dir", action="append", help="where the built programs are (default: .build/debug, .build/release)")
    parser.add_argument("--metric-names", default=os.path.join(ROOT, "k8s", "monitoring", "metric-names.txt"))
    parser.add_argument("file")
    opts = parser.parse_args()
    with open(opts.file) as f:
        render = Render([o for o in yaml.safe_load_all(f) if o])
    report = Report()
    helps = {}
    bin_dirs = opts.bin_dir or DEFAULT_BIN_DIRS
    count = 0
    for wl in render.objects:
        if wl.get("kind") not in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}:
            continue
        spec = pod_template(wl).get("spec") or {}
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            if program_of(c):
                count += 1
                check_container(render, report, wl, c, helps, bin_dirs)
    report.check(count > 0, "programs.containers", opts.profile, "%d containers run rtc programs" % count)
    if opts.profile == "system":
        check_metric_names(render, report, opts.metric_names)
    print("%s: %d checks passed, %d failed, %d skipped" % (opts.file, report.passed, report.failed, report.skipped))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
