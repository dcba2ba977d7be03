#!/usr/bin/env python3
"""A small simulation of the Kubernetes HorizontalPodAutoscaler, as documented (autoscaling/v2; the
kube-controller-manager's replica calculator and behavior normalization), used to prove that the HPA KEDA
makes from the ScaledObject rtc-socket gives exactly the balancer's desired count N.

Per sync period (15 s, the controller manager's default):
- each metric proposes a count: desired = ceil(current x currentMetricValue / desiredMetricValue), except that
  the proposal is the current count when the ratio currentMetricValue / desiredMetricValue is within the
  tolerance: 1 - scaleDown.tolerance <= ratio <= 1 + scaleUp.tolerance (default 0.1 both ways when the HPA
  sets none). For an AverageValue external metric (KEDA's prometheus trigger) the ratio is
  value / (target x current) and the proposal ceil(value / target); for a Utilization resource metric (cpu) the
  ratio is utilization / target and the proposal ceil(ratio x current);
- the HPA takes the largest proposal;
- stabilization: the recommendation is held between the lowest proposal of the scale-up window and the highest
  of the scale-down window (recommendations of the last stabilizationWindowSeconds, this one included);
- rate limits: each policy allows, from the count at the start of its period (the current count minus the
  changes made within its periodSeconds), Pods: +-value, Percent: ceil(x(1+v/100)) up or floor(x(1-v/100))
  down; selectPolicy Max takes the policy allowing the largest change, Min the smallest, Disabled none;
  defaults when a direction sets no policies: up 100 % or 4 pods per 15 s (Max), down 100 % per 15 s; windows
  up 0 s, down 300 s;
- the result is clamped to [minReplicas, maxReplicas] (the ScaledObject's minReplicaCount/maxReplicaCount).
Pods are assumed to be created and removed within a period (the HPA counts the scale's replicas, not ready pods).

usage (also imported by check_manifests.py): hpa_sim.py RENDER   # prints the verdict for the ScaledObject
"""
import hashlib
import json
import math
import os
import sys
from fractions import Fraction

SYNC_SECONDS = 15
DEFAULT_TOLERANCE = Fraction(1, 10)
DEFAULT_RULES = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                             {"type": "Pods", "value": 4, "periodSeconds": 15}]},
    "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
}


def quantity(value):
    """A Kubernetes quantity as an exact fraction: 0, 0.05, "0.05", "50m", "1"."""
    if value is None:
        return None
    text = str(value).strip()
    scale = Fraction(1)
    if text.endswith("m"):
        text, scale = text[:-1], Fraction(1, 1000)
    return Fraction(text) * scale


def rules(behavior, direction):
    given = (behavior or {}).get(direction) or {}
    merged = dict(DEFAULT_RULES[direction])
    for key in ("stabilizationWindowSeconds", "selectPolicy", "policies"):
        if given.get(key) is not None:
            merged[key] = given[key]
    tol = quantity(given.get("tolerance"))
    merged["tolerance"] = DEFAULT_TOLERANCE if tol is None else tol
    return merged


class HPA:
    """The HPA's settings, taken from a ScaledObject as KEDA passes them on."""

    def __init__(self, min_replicas, max_replicas, behavior, metrics):
        self.min = min_replicas
        self.max = max_replicas
        self.up = rules(behavior, "scaleUp")
        self.down = rules(behavior, "scaleDown")
        # metrics: ("average-value", target) | ("value", target) | ("utilization", target percent)
        self.metrics = metrics

    def within(self, ratio):
        return 1 - self.down["tolerance"] <= ratio <= 1 + self.up["tolerance"]

    def proposal(self, kind, target, value, current):
        if kind == "average-value":
            ratio = value / (target * current)
            return current if self.within(ratio) else math.ceil(value / target)
        ratio = value / target
        return current if self.within(ratio) else math.ceil(ratio * current)


def change_in_period(events, now, period):
    return sum(change for t, change in events if t > now - period)


def up_limit(rule, current, ups, downs, now):
    if rule["selectPolicy"] == "Disabled":
        return current
    pick = max if rule["selectPolicy"] == "Max" else min
    result = None
    for p in rule["policies"]:
        start = current - change_in_period(ups, now, p["periodSeconds"]) + change_in_period(downs, now, p["periodSeconds"])
        proposed = start + p["value"] if p["type"] == "Pods" else math.ceil(start * (1 + Fraction(p["value"], 100)))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def down_limit(rule, current, ups, downs, now):
    if rule["selectPolicy"] == "Disabled":
        return current
    pick = min if rule["selectPolicy"] == "Max" else max
    result = None
    for p in rule["policies"]:
        start = current - change_in_period(ups, now, p["periodSeconds"]) + change_in_period(downs, now, p["periodSeconds"])
        proposed = start - p["value"] if p["type"] == "Pods" else math.floor(start * (1 - Fraction(p["value"], 100)))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def simulate(hpa, current, load):
    """Syncs from a steady state at `current` (its past recommendations all `current`); `load(c)` gives each
    metric's value at c replicas. Yields (count after the sync, settled): settled when every recommendation
    the windows still hold equals the count, so nothing can change any more (the metrics depend on the count
    only)."""
    longest = max(hpa.up["stabilizationWindowSeconds"], hpa.down["stabilizationWindowSeconds"])
    history = [(-t, current) for t in range(0, longest + SYNC_SECONDS, SYNC_SECONDS)]
    ups, downs = [], []
    k = 0
    while True:
        k += 1
        now = k * SYNC_SECONDS
        values = load(current)
        desired = max(hpa.proposal(kind, target, v, current) for (kind, target), v in zip(hpa.metrics, values))
        history = [(t, r) for t, r in history if t > now - longest - SYNC_SECONDS]
        history.append((now, desired))
        up_rec = min(r for t, r in history if t > now - hpa.up["stabilizationWindowSeconds"] or t == now)
        down_rec = max(r for t, r in history if t > now - hpa.down["stabilizationWindowSeconds"] or t == now)
        rec = min(max(current, up_rec), down_rec)
        if rec > current:
            rec = min(rec, max(up_limit(hpa.up, current, ups, downs, now), current), hpa.max)
        elif rec < current:
            rec = max(rec, min(down_limit(hpa.down, current, ups, downs, now), current), hpa.min)
        rec = min(max(rec, hpa.min), hpa.max)
        if rec > current:
            ups.append((now, rec - current))
        elif rec < current:
            downs.append((now, current - rec))
        current = rec
        yield current, all(r == current for t, r in history if t > now - longest or t == now)


def period_bound(hpa, c, n):
    """Syncs within which N must be reached: the stabilization windows, then at least one pod per policy
    period (every policy moves at least one pod per period), plus one sync of slack."""
    windows = hpa.up["stabilizationWindowSeconds"] + hpa.down["stabilizationWindowSeconds"]
    longest = max([p["periodSeconds"] for r in (hpa.up, hpa.down) for p in r["policies"]] or [SYNC_SECONDS])
    return math.ceil(windows / SYNC_SECONDS) + abs(n - c) * math.ceil(longest / SYNC_SECONDS) + 2


def verify(hpa, desired_range, load_for, cache_key=None):
    """For every current C in [min..max] of the HPA and desired N in desired_range: the count reaches exactly N
    within period_bound syncs and settles there. Returns (failures, worst case in seconds); a failure is
    (C, N, what happened). With HPA_SIM_CACHE set to a directory, results are kept there by cache_key (test.sh
    checks many renders with the same ScaledObject)."""
    cache = os.environ.get("HPA_SIM_CACHE")
    if cache and cache_key:
        path = os.path.join(cache, hashlib.sha256(cache_key.encode()).hexdigest() + ".json")
        if os.path.exists(path):
            with open(path) as f:
                failures, worst = json.load(f)
            return [tuple(x) for x in failures], worst
        result = verify(hpa, desired_range, load_for)
        os.makedirs(cache, exist_ok=True)
        with open(path, "w") as f:
            json.dump(result, f)
        return result
    failures = []
    worst = 0
    for c in range(hpa.min, hpa.max + 1):
        for n in desired_range:
            bound = period_bound(hpa, c, n)
            # Once N is reached it must settle within the windows' length.
            give_up = bound + math.ceil((hpa.up["stabilizationWindowSeconds"] + hpa.down["stabilizationWindowSeconds"])
                                        / SYNC_SECONDS) + 2
            counts = []
            reached = None
            what = None
            for count, settled in simulate(hpa, c, load_for(n)):
                counts.append(count)
                if count == n and reached is None:
                    reached = len(counts)
                if reached is not None and count != n:
                    what = "reached, then left: %s" % describe(counts)
                elif reached is None and (settled or len(counts) >= bound):
                    what = "%s: %s" % ("stuck" if settled else "not reached in %d periods (%d s)" % (
                        bound, bound * SYNC_SECONDS), describe(counts))
                elif reached is not None and settled:
                    worst = max(worst, reached * SYNC_SECONDS)
                    break
                elif len(counts) >= give_up:
                    what = "does not settle at N: %s" % describe(counts)
                if what:
                    failures.append((c, n, what))
                    break
    return failures, worst


def describe(counts):
    """1, 1, 1, 2, 2 -> '1 x3, 2 x2'."""
    out = []
    for x in counts:
        if out and out[-1][0] == x:
            out[-1][1] += 1
        else:
            out.append([x, 1])
    text = ", ".join("%d x%d" % (x, k) if k > 1 else str(x) for x, k in out)
    return text if len(text) <= 80 else text[:60] + " ... " + text[-20:].split(", ", 1)[-1]


def from_render(objects):
    """(hpa, desired range, load_for, cache key) for the ScaledObject rtc-socket of a render, or None.
    The prometheus trigger's value is N; the cpu trigger sees a total load of N x TARGET_CPU_PER_POD cores (the
    most the balancer's N allows) spread over the current pods, as utilization of the container's cpu request."""
    def get(kind, name):
        return next((o for o in objects if o.get("kind") == kind and o["metadata"].get("name") == name), None)
    so = get("ScaledObject", "rtc-socket")
    if so is None:
        return None
    socket = next((o for o in objects if o.get("kind") in ("Deployment", "StatefulSet")
                   and o["metadata"].get("name") == "rtc-socket"), None)
    spec = so["spec"]
    config = (get("ConfigMap", "rtc-config") or {}).get("data") or {}
    request = None
    if socket:
        for c in socket["spec"]["template"]["spec"].get("containers") or []:
            if c["name"] == "rtc-socket":
                request = quantity(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
    cpu_target = quantity(config.get("TARGET_CPU_PER_POD"))
    metrics, kinds = [], []
    for t in spec.get("triggers") or []:
        md = t.get("metadata") or {}
        if t.get("type") == "prometheus":
            kind = {"AverageValue": "average-value", "Value": "value"}.get(t.get("metricType", "AverageValue"))
            metrics.append((kind, quantity(md.get("threshold"))))
            kinds.append("desired")
        elif t.get("type") == "cpu":
            metrics.append(("utilization", quantity(md.get("value"))))
            kinds.append("cpu")
        else:
            raise ValueError("trigger type %s is not simulated" % t.get("type"))
    if "cpu" in kinds and (request is None or cpu_target is None):
        raise ValueError("a cpu trigger needs the socket container's cpu request and TARGET_CPU_PER_POD in rtc-config")
    behavior = ((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior")
    hpa = HPA(spec.get("minReplicaCount", 0) or 1, spec.get("maxReplicaCount", 100), behavior, metrics)
    lo = int(config.get("MIN_SOCKET_REPLICAS", 2))
    hi = int(config.get("MAX_SOCKET_REPLICAS", 50))

    def load_for(n):
        def values(current):
            out = []
            for (kind, target), k in zip(metrics, kinds):
                if k == "desired":
                    # AverageValue: the query's value (N); Value: KEDA compares N with the target as is.
                    out.append(Fraction(n))
                else:
                    out.append(Fraction(n) * cpu_target * 100 / (request * current))
            return out
        return values
    key = repr((hpa.min, hpa.max, sorted(hpa.up.items()), sorted(hpa.down.items()), metrics, kinds, lo, hi,
                cpu_target, request))
    return hpa, range(lo, hi + 1), load_for, key


def main():
    import yaml
    with open(sys.argv[1]) as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    found = from_render(objects)
    if found is None:
        print("no ScaledObject rtc-socket")
        return 0
    hpa, desired, load_for, key = found
    failures, worst = verify(hpa, desired, load_for, key)
    for c, n, what in failures[:10]:
        print("C=%d N=%d: %s" % (c, n, what))
    print("%d of %d (C, N) pairs fail; worst convergence %d s" % (
        len(failures), (hpa.max - hpa.min + 1) * len(desired), worst))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
