#!/usr/bin/env bash
# User-space instructions per proxied HTTP request, counted by callgrind: rtc-gateway (release build, one worker,
# `access_log off`) in front of one nginx `return 200 "ok"` upstream with a keep-alive pool; a Python keep-alive
# client sends WARMUP requests, the counters are zeroed, REQUESTS more are sent and the counters dumped; prints the
# instructions of the whole process (all threads) divided by REQUESTS, and the calls per request of the Swift
# runtime's reference-counting, exclusivity and allocation entry points.
#
# Environment: BIN (rtc-gateway executable, .build/release/rtc-gateway), WARMUP (500), REQUESTS (5000),
# TOP (1: also print the 30 functions with the highest self cost), INCLUSIVE (1: also the 30 highest inclusive
# costs), OUT (keep the callgrind output file here).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=${BIN:-.build/release/rtc-gateway}
WARMUP=${WARMUP:-500}
REQUESTS=${REQUESTS:-5000}
UPSTREAM_PORT=${UPSTREAM_PORT:-18555}
GATEWAY_PORT=${GATEWAY_PORT:-18556}

[[ -x "$BIN" ]] || die "BIN=$BIN is not an executable (swift build -c release --product rtc-gateway)"
command -v valgrind >/dev/null || die "valgrind is not installed"

bench_init
log "machine: $(machine_line)"

nginx_start upstream "$UPSTREAM_PORT" "
    server {
        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
        location / { return 200 \"ok\"; }
    }"

conf="$BENCH_TMP/gw.conf"
gateway_http_conf "$conf" "$GATEWAY_PORT" "$UPSTREAM_PORT" 1 "access_log off;"

out="$BENCH_TMP/callgrind.out"
bench_start gateway valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" --config "$conf" --workers 1
GW_PID=$BENCH_LAST_PID
wait_port "$GATEWAY_PORT" "$GW_PID" 60

# send N: N GET requests on one keep-alive connection; fails on any answer but 200 "ok".
client() {
  "$PY" - "$GATEWAY_PORT" "$1" <<'PYEOF'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    c.request("GET", "/")
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or body != b"ok":
        sys.exit(f"unexpected answer {r.status} {body!r}")
c.close()
PYEOF
}

client "$WARMUP"
callgrind_control -z "$GW_PID" >/dev/null
client "$REQUESTS"
callgrind_control -d "$GW_PID" >/dev/null
# The dump is written by the dumping thread shortly after the request returns: wait for it to appear.
for _ in $(seq 1 100); do
  compgen -G "$out.*" >/dev/null && break
  sleep 0.1
done
sleep 0.5
mapfile -t dumps < <(compgen -G "$out.*" || true)
((${#dumps[@]})) || die "no callgrind dump written"

# Each dump holds every thread (callgrind does not separate them by default): its "summary:"/"totals:" line is the
# instructions of the whole process.
total=0
for f in "${dumps[@]}"; do
  t=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
  total=$((total + ${t:-0}))
done
awk -v t="$total" -v n="$REQUESTS" 'BEGIN { printf "instructions per request: %.0f (%d over %d requests)\n", t / n, t, n }'

# Calls per request of the runtime entry points (from the call-graph lines of every dump).
"$PY" - "$REQUESTS" "${dumps[@]}" <<'PYEOF'
import re, sys
n = int(sys.argv[1])
names = ["swift_retain", "swift_release", "swift_bridgeObjectRetain", "swift_bridgeObjectRelease",
         "swift_beginAccess", "swift_endAccess", "swift_allocObject", "swift_deallocObject", "malloc", "free"]
calls = {k: 0 for k in names}
# Callgrind's format: "cfn=(id) name" names the callee of the next "calls=COUNT ..." line; ids are compressed
# (the name appears only at the first use of an id in each file).
for path in sys.argv[2:]:
    ids = {}
    callee = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("cfn="):
                m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m:
                    if m.group(2) is not None:
                        ids[m.group(1)] = m.group(2)
                    callee = ids.get(m.group(1))
                else:
                    callee = line[4:].strip()
            elif line.startswith("fn="):
                m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m and m.group(2) is not None:
                    ids[m.group(1)] = m.group(2)
            elif line.startswith("calls=") and callee is not None:
                if callee in calls:
                    calls[callee] += int(line[6:].split()[0])
                callee = None
rr = calls["swift_retain"] + calls["swift_release"]
print(f"swift_retain+swift_release per request: {rr / n:.2f}")
for k in names:
    print(f"  {k}: {calls[k] / n:.2f} per request")
PYEOF

# Swift symbols readable when the toolchain's swift-demangle is on PATH.
demangle() {
  if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi
}

if [[ "${TOP:-0}" == 1 ]]; then
  echo
  echo "top 30 functions by self cost (instructions over all $REQUESTS requests):"
  # (Functions still on the stack when the counters were zeroed show the whole total: left out.)
  callgrind_annotate --threshold=100 "${dumps[@]}" 2>/dev/null | sed -n '/file:function/,$p' |
    grep -v "(100.0%)" | demangle | head -n 32 || true
fi
if [[ "${INCLUSIVE:-0}" == 1 ]]; then
  echo
  echo "top 30 functions by inclusive cost:"
  callgrind_annotate --inclusive=yes --threshold=100 "${dumps[@]}" 2>/dev/null | sed -n '/file:function/,$p' |
    demangle | head -n 32 || true
fi
if [[ -n "${OUT:-}" ]]; then
  for f in "${dumps[@]}"; do cp "$f" "$OUT.${f##*.}"; done
  log "callgrind output kept in $OUT.*"
fi
