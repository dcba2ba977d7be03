#!/usr/bin/env bash
# Runs a load scenario (bench/scenarios/NAME.env) against the local stack started with the scenario's process counts:
# bench/stack.sh up (socket nodes, gateway processes), then `rtc-bench run` with the scenario's clients, ramp, hold,
# rate and worker processes, watching every program's memory and CPU from /proc (and the first gateway's from its
# /metrics as well, the way a remote one is watched); then the stack is stopped.
# The summary (Markdown), result.json and chart.svg go to --out (default bench/out/NAME-<UTC time>/).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/scenario.sh NAME [--bin DIR] [--net A.B.C] [--dir DIR] [--out DIR]
  NAME       a file of bench/scenarios/ without .env: smoke, 10k, 100k-local (1m-cluster is the Kubernetes Job's)
  --bin DIR  the programs (default .build/release; build with `make release`)
  --net      the stack's /24 (default 127.0.0)
  --dir DIR  the stack's state and logs (default .run-NAME)
  --out DIR  where the results go (default bench/out/NAME-<UTC time>)
Exit status: rtc-bench run's (0 when every client connected and every accepted message arrived exactly once).
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="${1:-}"
case "$name" in
  "") usage >&2; exit 2 ;;
  -h | --help) usage; exit 0 ;;
esac
shift
scenario="$root/bench/scenarios/$name.env"
[ -f "$scenario" ] || { echo "scenario.sh: no scenario $scenario" >&2; exit 2; }
bin="$root/.build/release"
net="127.0.0"
dir="$root/.run-$name"
out="$root/bench/out/$name-$(date -u +%Y%m%dT%H%M%SZ)"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$(cd "$2" && pwd)"; shift 2 ;;
    --net) net="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "scenario.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
# shellcheck source=/dev/null
source "$scenario"
[ -n "${NODES:-}" ] || { echo "scenario.sh: $name is not for the local stack (no NODES)" >&2; exit 2; }
mkdir -p "$dir" "$out"

# The stack in the background; it stops everything when it gets SIGTERM. (Its output file is removed first: the
# background job truncates it only once it runs, and a previous run's "stack is up" must not be read as this one's.)
rm -f "$dir/stack.out"
GATEWAY_WORKERS="$GATEWAY_WORKERS" bash "$root/bench/stack.sh" up --bin "$bin" --dir "$dir" --net "$net" \
  --nodes "$NODES" --gateways "$GATEWAYS" --no-prometheus > "$dir/stack.out" 2>&1 &
stack=$!
trap 'kill -TERM $stack 2> /dev/null || true; wait $stack 2> /dev/null || true' EXIT
until grep -q '^stack is up' "$dir/stack.out" 2> /dev/null; do
  kill -0 $stack 2> /dev/null || { cat "$dir/stack.out" >&2; echo "scenario.sh: the stack did not start" >&2; exit 1; }
  sleep 0.2
done

status=0
"$bin/rtc-bench" run --target "$net.1:8080" --clients "$CLIENTS" --processes "$PROCESSES" --ramp "$RAMP" \
  --hold "$HOLD" --rate "$RATE" --size "$SIZE" --pattern "$PATTERN" ${SOURCES:+--sources "$SOURCES"} \
  --settle "$SETTLE" --watch-dir "$dir/pids" --watch-metrics "gateway-metrics=http://$net.1:9113/metrics" --out "$out" --name "$name, $(date -u '+%Y-%m-%d %H:%M UTC')" || status=$?
echo "scenario.sh: results in $out (exit status $status)"
exit $status
