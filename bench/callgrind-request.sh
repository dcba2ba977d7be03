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

dump_prefix="$BENCH_TMP/callgrind.out"
bench_start gateway valgrind --tool=callgrind --callgrind-out-file="$dump_prefix" "$BIN" --config "$conf" --workers 1
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
callgrind_report "$dump_prefix" "$REQUESTS" request
