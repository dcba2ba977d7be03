#!/usr/bin/env bash
# Renders an overlay of k8s/ and applies it in order: prerequisite checks (metrics-server, and KEDA when the
# overlay has KEDA objects), namespace, secret check, everything else, KEDA objects, then waits for the
# rollouts. --dry-run applies nothing (see usage).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: k8s/deploy.sh --overlay dev|prod [--dry-run] [--create-secret] [--bench] [--context NAME]

  --overlay dev|prod  which k8s/overlays/<name> to deploy (required)
  --dry-run           render, print the apply order and the rendered manifests, apply nothing; when a cluster
                      is reachable also run `kubectl apply --dry-run=server` (client-side dry run needs API
                      discovery too, so offline only the render and the plan are shown)
  --create-secret     create Secret rtc/rtc-secrets with random RING_SECRET and AUTH_SECRET if it is missing
  --bench             afterwards, start the one-million-connection bench Job (k8s/bench)
  --context NAME      kubectl context to use
USAGE
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
overlay="" dry_run=0 create_secret=0 bench=0 kubectl=(kubectl)
while [ $# -gt 0 ]; do
  case "$1" in
    --overlay) overlay="${2:?--overlay needs dev or prod}"; shift 2 ;;
    --overlay=*) overlay="${1#--overlay=}"; shift ;;
    --dry-run) dry_run=1; shift ;;
    --create-secret) create_secret=1; shift ;;
    --bench) bench=1; shift ;;
    --context) kubectl+=(--context "${2:?--context needs a name}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deploy.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$overlay" in
  dev|prod) ;;
  *) echo "deploy.sh: --overlay dev|prod is required" >&2; usage >&2; exit 2 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The gateway's ConfigMap is generated from gateway-config/gateway.conf, outside k8s/: kustomize must be
# allowed to load it (k8s/README.md, "Why --load-restrictor").
kubectl kustomize --load-restrictor=LoadRestrictionsNone "$here/overlays/$overlay" > "$work/all.yaml"
if [ "$bench" = 1 ]; then
  kubectl kustomize "$here/bench" > "$work/bench.yaml"
fi

# Split the render into apply phases by top-level kind.
awk -v dir="$work" '
  function flush() {
    if (doc == "") return
    file = dir "/10-workloads.yaml"
    if (kind == "Namespace") file = dir "/00-namespace.yaml"
    else if (kind == "ScaledObject") file = dir "/20-keda.yaml"
    printf "---\n%s", doc >> file
    print kind "/" name >> (file ".list")
    doc = ""; kind = ""; name = ""
  }
  /^---$/ { flush(); next }
  /^kind: / { kind = $2 }
  /^  name: / && name == "" && inmeta { name = $2 }
  /^metadata:/ { inmeta = 1 } /^[a-z]/ && !/^metadata:/ { inmeta = 0 }
  { doc = doc $0 "\n" }
  END { flush() }
' "$work/all.yaml"

phases=(00-namespace 10-workloads 20-keda)
# The HPAs (gateway, balancer; KEDA's cpu trigger) read CPU from the resource metrics API, served by
# metrics-server: without it they never scale. KEDA is needed when the render holds ScaledObjects.
metrics_api=v1beta1.metrics.k8s.io
keda_crd=scaledobjects.keda.sh
print_plan() {
  echo "# apply order for overlay $overlay:"
  echo "#   0. check prerequisites: APIService $metrics_api Available (metrics-server, for the HPAs)$([ -f "$work/20-keda.yaml" ] && echo "; KEDA CRD $keda_crd")"
  echo "#   1. 00-namespace: $(paste -sd' ' "$work/00-namespace.yaml.list" 2>/dev/null || echo none)"
  echo "#   2. check Secret rtc/rtc-secrets exists (RING_SECRET, optional AUTH_SECRET)$([ "$create_secret" = 1 ] && echo '; create it if missing')"
  echo "#   3. 10-workloads: $(wc -l < "$work/10-workloads.yaml.list") objects (RBAC, config, Services, Deployments, HPAs, PDBs$([ "$overlay" = dev ] && echo ', example Redis and Kafka'))"
  if [ -f "$work/20-keda.yaml" ]; then
    echo "#   4. 20-keda: $(paste -sd' ' "$work/20-keda.yaml.list")"
  else
    echo "#   4. no KEDA objects (SCALE_MODE=direct: the balancer scales rtc-socket)"
  fi
  echo "#   5. kubectl -n rtc rollout status for every Deployment and StatefulSet"
  # Redis and Kafka are the operator's in prod (overlays/prod/config.yaml): show where this deploy points.
  echo "# Redis and Kafka: $(grep -hE '^  (REDIS_URL|KAFKA_BOOTSTRAP): ' "$work/all.yaml" | tr -d '"' | sed 's/^ *//' | paste -sd' ')$([ "$overlay" = dev ] && echo ' (the example prereqs in namespace rtc)' || echo ' (operator-supplied: overlays/prod/config.yaml)')"
  [ "$bench" = 1 ] && echo "#   6. bench: $(grep -c '^kind:' "$work/bench.yaml") object(s) from k8s/bench (Job rtc-bench)"
  return 0
}

if [ "$dry_run" = 1 ]; then
  print_plan
  echo "# objects:"
  for p in "${phases[@]}"; do
    [ -f "$work/$p.yaml.list" ] && sed "s|^|#   $p: |" "$work/$p.yaml.list"
  done
  if "${kubectl[@]}" get --raw /version --request-timeout=5s >/dev/null 2>&1; then
    echo "# cluster reachable: server-side dry run"
    available="$("${kubectl[@]}" get apiservice "$metrics_api" -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null || true)"
    echo "# prerequisite metrics-server ($metrics_api): $([ "$available" = True ] && echo available || echo "MISSING: a real deploy stops here")"
    if [ -f "$work/20-keda.yaml" ]; then
      echo "# prerequisite KEDA ($keda_crd): $("${kubectl[@]}" get crd "$keda_crd" >/dev/null 2>&1 && echo installed || echo "MISSING: a real deploy stops here")"
    fi
    for p in "${phases[@]}"; do
      [ -f "$work/$p.yaml" ] && "${kubectl[@]}" apply --dry-run=server -f "$work/$p.yaml" | sed 's/^/# /'
    done
  else
    echo "# no cluster reachable: server-side dry run skipped (kubectl's client-side dry run needs API discovery too)"
  fi
  cat "$work/all.yaml"
  [ "$bench" = 1 ] && { echo "---"; cat "$work/bench.yaml"; }
  exit 0
fi

print_plan
# Prerequisites first, so a missing one leaves nothing half-applied.
available="$("${kubectl[@]}" get apiservice "$metrics_api" -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null || true)"
if [ "$available" != "True" ]; then
  echo "deploy.sh: metrics-server is not installed or not available (APIService $metrics_api: ${available:-missing}); the HPAs need it: install it (k8s/README.md)" >&2
  exit 1
fi
if [ -f "$work/20-keda.yaml" ] && ! "${kubectl[@]}" get crd "$keda_crd" >/dev/null 2>&1; then
  echo "deploy.sh: KEDA is not installed (no CRD $keda_crd); install it (k8s/README.md) or use --overlay dev" >&2
  exit 1
fi
"${kubectl[@]}" apply -f "$work/00-namespace.yaml"
if ! "${kubectl[@]}" -n rtc get secret rtc-secrets >/dev/null 2>&1; then
  if [ "$create_secret" = 1 ]; then
    "${kubectl[@]}" -n rtc create secret generic rtc-secrets \
      --from-literal=RING_SECRET="$(openssl rand -hex 32)" \
      --from-literal=AUTH_SECRET="$(openssl rand -hex 32)"
  else
    echo "deploy.sh: Secret rtc/rtc-secrets is missing; create it (k8s/README.md) or pass --create-secret" >&2
    exit 1
  fi
fi
"${kubectl[@]}" apply -f "$work/10-workloads.yaml"
if [ -f "$work/20-keda.yaml" ]; then
  "${kubectl[@]}" apply -f "$work/20-keda.yaml"
fi
grep -E '^(Deployment|StatefulSet)/' "$work/10-workloads.yaml.list" | while read -r obj; do
  # Socket pods take up to 330 s to drain when a rollout replaces them.
  "${kubectl[@]}" -n rtc rollout status "${obj,,}" --timeout=15m
done
if [ "$bench" = 1 ]; then
  "${kubectl[@]}" -n rtc delete job rtc-bench --ignore-not-found
  "${kubectl[@]}" apply -f "$work/bench.yaml"
  echo "bench started: kubectl -n rtc logs -f -l job-name=rtc-bench --max-log-requests=20"
fi
echo "deployed overlay $overlay; check it with the steps in k8s/README.md (\"Check that it works\")"
