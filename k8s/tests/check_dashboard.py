#!/usr/bin/env python3
"""Checks a Grafana dashboard JSON: well-formed, every panel queries something, every metric name in its
PromQL is one of k8s/monitoring/metric-names.txt, every label it groups by, matches on or shows in a legend is
one that some metric of the query has (per metric-names.txt, plus the labels the scrape adds), and the panels
the deployment promises are there.

usage: check_dashboard.py METRIC_NAMES DASHBOARD.json
"""
import json
import re
import sys

# The dashboard must show these (k8s/README.md, "Dashboard").
REQUIRED = [
    "rtc_gateway_requests_total", "rtc_gateway_tunnels_active", "rtc_gateway_tunnels_by_upstream",
    "rtc_gateway_bytes_relayed_total", "rtc_gateway_upstream_errors_total", "rtc_gateway_dns_cache_hits_total",
    "rtc_gateway_dns_failures_total", "rtc_balancer_ring_version", "rtc_balancer_desired_socket_replicas",
    "rtc_socket_connections", "rtc_socket_delivery_latency_seconds_bucket", "process_resident_memory_bytes",
]
# Labels the Prometheus scrape (k8s/monitoring) adds to every series; `le` is on every histogram bucket.
TARGET_LABELS = {"namespace", "pod", "app", "job", "instance", "container"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan"}


def known_names(path):
    """Metric name -> the set of its own label names."""
    names = {}
    ident = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if parts[0] == "histogram" and len(parts) >= 2 and re.fullmatch(ident, parts[1]):
                labels = set(parts[2:])
                names[parts[1] + "_bucket"] = labels | {"le"}
                names[parts[1] + "_sum"] = labels
                names[parts[1] + "_count"] = labels
            elif re.fullmatch(ident, parts[0]) and parts[0] != "histogram":
                names[parts[0]] = set(parts[1:])
            else:
                raise SystemExit("%s: bad line: %s" % (path, line))
            if not all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label) for label in names.get(parts[-1], ())):
                raise SystemExit("%s: bad label name: %s" % (path, line))
    return names


def label_uses(expr):
    """Label names an expression relies on: in matchers `{name="..."}` and in by/without/on/ignoring lists."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    used = []
    for m in re.finditer(r"\{([^}]*)\}", e):
        used += re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(1))
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        used += [w.strip() for w in m.group(1).split(",") if w.strip()]
    return used


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or
    Grafana variables."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # string literals (label values)
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # range selectors
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)  # label lists
    e = re.sub(r"\$\{?\w+\}?", "", e)                        # $__rate_interval, ${var}
    found = []
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        if rest.startswith("("):
            continue                                          # function or aggregation
        if m.group(0).lower() in KEYWORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue                                          # 1e3, 0.95
        found.append(m.group(0))
    return found


def main():
    names_path, dash_path = sys.argv[1], sys.argv[2]
    known = known_names(names_path)
    failures = []
    try:
        with open(dash_path) as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print("FAIL dashboard.json %s: %s" % (dash_path, e))
        return 1
    print("PASS dashboard.json %s: valid JSON" % dash_path)
    panels = dash.get("panels") or []
    flat = []
    for p in panels:
        flat.append(p)
        flat.extend(p.get("panels") or [])
    ids = [p.get("id") for p in flat]
    if len(ids) != len(set(ids)) or None in ids:
        failures.append("dashboard.panels: panel ids missing or repeated: %s" % ids)
    used = set()
    for p in flat:
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        exprs = [t.get("expr", "") for t in targets]
        if not exprs or not all(exprs):
            failures.append("dashboard.panels: panel %r has no PromQL target" % p.get("title"))
        for target in targets:
            expr = target.get("expr", "")
            available = set(TARGET_LABELS)
            for name in metric_names(expr):
                used.add(name)
                if name not in known:
                    failures.append("dashboard.metrics: panel %r uses %s, not in %s" % (p.get("title"), name, names_path))
                else:
                    available |= known[name]
            legend = re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", target.get("legendFormat", ""))
            for label in sorted(set(label_uses(expr) + legend)):
                if label not in available:
                    failures.append("dashboard.labels: panel %r uses label %s, which none of its metrics has (%s)"
                                    % (p.get("title"), label, names_path))
    missing = [n for n in REQUIRED if n not in used]
    if missing:
        failures.append("dashboard.coverage: no panel shows %s" % ", ".join(missing))
    for f in failures:
        print("FAIL " + f)
    if not failures:
        print("PASS dashboard.metrics %s: %d panels, %d metric names and their labels, all in %s, all required panels present"
              % (dash_path, len([p for p in flat if p.get("type") != "row"]), len(used), names_path))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
