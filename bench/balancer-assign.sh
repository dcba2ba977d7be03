#!/usr/bin/env bash
# Assignments of rtc-balancer with 50 socket nodes in the ring, against `rtc-bench http-server`'s fixed answer,
# both one event loop: wrk -t1 -c50 with a Lua script that asks for a new clientId on every request (u<offset+n>),
# so every request really runs placement; contenders alternated over ROUNDS rounds; median requests/s and server
# CPU µs per request, ratios balancer ÷ http-server (issue 11: goal ≥ 0.8× its requests/s).
#
# The stack: redis-server (--save '' --appendonly no) on 127.0.0.1:$REDIS_PORT holding NODES heartbeats
# rtc:hb:socket-1..socket-NODES (podIP 10.0.0.N, ready, equal load), `rtc-bench kafka-mock`, the release
# rtc-balancer on 127.0.0.1:$BALANCER_PORT (no Kubernetes: it leads alone and publishes the ring from the heartbeats;
# RECONCILE_INTERVAL_SEC=1), and `rtc-bench http-server` on 127.0.0.1:$SERVER_PORT. Both contenders get the same
# Lua script (the fixed server routes on the path before `?` and answers every GET / with 200 "ok"). Before and after
# the rounds SAMPLE assignments are checked (`balancer_check` below): 200, JSON with socketNodeId among the
# NODES, url /ws/<socketNodeId>/connect, ringVersion of the ring held, the same answer when asked again, and every
# node owning some of the sample (checked when SAMPLE ≥ 20 × NODES). CPU = utime+stime of the server process (all
# its threads, librdkafka's included) over each run, from /proc; the balancer's idle CPU (rounds every second, Kafka
# clients) is measured once before the rounds and printed.
#
# Environment: ROUNDS (5), DURATION seconds per run (10), CONNECTIONS (50), WARMUP seconds per contender (2),
# NODES (50), SAMPLE (2000 client ids checked), RTC_BENCH_BIN, RTC_BALANCER_BIN (release builds), RAW_OUT (file
# for the raw per-round TSV), PERF=1 (after the rounds, one more DURATION run against the balancer under
# `perf record -g`; its top symbols are printed after the table), MAX_OTHER_PCT and NOISY_RETRIES (as in lib.sh).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-2}
NODES=${NODES:-50}
SAMPLE=${SAMPLE:-2000}
MAX_OTHER_PCT=${MAX_OTHER_PCT:-25}
NOISY_RETRIES=${NOISY_RETRIES:-2}
RTC_BENCH_BIN=${RTC_BENCH_BIN:-$BENCH_DIR/../.build/release/rtc-bench}
RTC_BALANCER_BIN=${RTC_BALANCER_BIN:-$BENCH_DIR/../.build/release/rtc-balancer}
BALANCER_PORT=18140
SERVER_PORT=18141
REDIS_PORT=18142
SECRET=bench-ring-secret
ulimit -n "$(ulimit -Hn)"

[[ -x "$RTC_BENCH_BIN" ]] || die "no rtc-bench at $RTC_BENCH_BIN (swift build -c release)"
[[ -x "$RTC_BALANCER_BIN" ]] || die "no rtc-balancer at $RTC_BALANCER_BIN (swift build -c release)"
((NODES >= 1 && NODES <= 250)) || die "NODES must be 1..250 (podIPs are 10.0.0.N)"

bench_init
log "machine: $(machine_line)"

# ---- The stack --------------------------------------------------------------------------------------------------
bench_start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no
REDIS_PID=$BENCH_LAST_PID
wait_port "$REDIS_PORT" "$REDIS_PID"
bench_start kafka "$RTC_BENCH_BIN" kafka-mock
KAFKA_PID=$BENCH_LAST_PID
BOOTSTRAP=$(wait_line "$BENCH_TMP/kafka.log" '^bootstrap=' "$KAFKA_PID" 20)
BOOTSTRAP=${BOOTSTRAP#bootstrap=}
log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT, kafka-mock pid $KAFKA_PID at $BOOTSTRAP"

# NODES heartbeats as Heartbeat.encoded() writes them: ready, not draining, the same load on every node (so the
# leader's weights are equal and stay put), an hour's expiry (the run is much shorter).
now_ms=$(($(date +%s) * 1000))
for ((n = 1; n <= NODES; n++)); do
  printf 'SET rtc:hb:socket-%d ' "$n"
  printf '"{\\"nodeId\\":\\"socket-%d\\",\\"podIP\\":\\"10.0.0.%d\\",\\"port\\":8080,' "$n" "$n"
  printf '\\"connections\\":100,\\"messagesPerSecond\\":10,\\"p95DeliveryMs\\":5,\\"cpu\\":0.1,'
  printf '\\"memoryBytes\\":50000000,\\"draining\\":false,\\"ready\\":true,\\"ts\\":%d}" EX 3600\n' "$now_ms"
done | redis-cli -p "$REDIS_PORT" >"$BENCH_TMP/heartbeats.out"
[[ "$(grep -c '^OK$' "$BENCH_TMP/heartbeats.out")" == "$NODES" ]] ||
  die "writing heartbeats failed: $(head -n 3 "$BENCH_TMP/heartbeats.out")"

bench_start balancer env REDIS_URL="redis://127.0.0.1:$REDIS_PORT" KAFKA_BOOTSTRAP="$BOOTSTRAP" \
  RING_SECRET="$SECRET" BIND_ADDRESS=127.0.0.1 HTTP_PORT="$BALANCER_PORT" RECONCILE_INTERVAL_SEC=1 \
  POD_NAME=rtc-balancer-bench "$RTC_BALANCER_BIN"
BALANCER_PID=$BENCH_LAST_PID
wait_port "$BALANCER_PORT" "$BALANCER_PID" 20
deadline=$((SECONDS + 30))
until [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$BALANCER_PORT/api/v1/ring" 2>/dev/null |
  jq '[.nodes[] | select(.weight > 0 and (.draining | not))] | length' 2>/dev/null)" == "$NODES" ]]; do
  kill -0 "$BALANCER_PID" 2>/dev/null || die "rtc-balancer exited: $(tail -n 5 "$BENCH_TMP/balancer.log")"
  ((SECONDS < deadline)) || die "the balancer's ring did not list $NODES eligible nodes within 30 s"
  sleep 0.2
done
RING_VERSION=$(curl -fsS "http://127.0.0.1:$BALANCER_PORT/api/v1/ring" | jq -r .version)
log "rtc-balancer pid $BALANCER_PID on 127.0.0.1:$BALANCER_PORT: ring version $RING_VERSION with $NODES nodes"

bench_start server "$RTC_BENCH_BIN" http-server --port "$SERVER_PORT" --host 127.0.0.1
SERVER_PID=$BENCH_LAST_PID
wait_port "$SERVER_PORT" "$SERVER_PID"
body=$(curl -fsS "http://127.0.0.1:$SERVER_PORT/?clientId=u1") || die "http-server: GET /?clientId=u1 failed"
[[ "$body" == ok ]] || die "http-server answered '$body' instead of 'ok'"

# ---- Checks of the answers --------------------------------------------------------------------------------------
# balancer_check OFFSET: SAMPLE client ids u<OFFSET+i> over one keep-alive connection, each asked twice; prints a
# summary line, fails on any answer that is not a valid assignment.
balancer_check() {
  "$PY" - "$BALANCER_PORT" "$NODES" "$SAMPLE" "$1" "$RING_VERSION" <<'EOF'
import http.client, json, sys

port, nodes, sample, offset, version = (int(a) for a in sys.argv[1:])
valid = {f"socket-{n}" for n in range(1, nodes + 1)}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
owners = {}
problems = []

def ask(client):
    conn.request("GET", f"/ws/connect?clientId={client}")
    response = conn.getresponse()
    raw = response.read()
    if response.status != 200:
        raise ValueError(f"{client}: status {response.status}: {raw[:200]!r}")
    if response.getheader("Content-Type", "").split(";")[0] != "application/json":
        raise ValueError(f"{client}: Content-Type {response.getheader('Content-Type')}")
    body = json.loads(raw)
    node = body.get("socketNodeId")
    if node not in valid:
        raise ValueError(f"{client}: socketNodeId {node!r} is not one of the {nodes} nodes")
    if body.get("url") != f"/ws/{node}/connect":
        raise ValueError(f"{client}: url {body.get('url')!r}")
    if body.get("ringVersion") != version:
        raise ValueError(f"{client}: ringVersion {body.get('ringVersion')!r}, ring held is {version}")
    return node

try:
    for i in range(sample):
        client = f"u{offset + i}"
        owners[client] = ask(client)
    for client, node in owners.items():
        again = ask(client)
        if again != node:
            raise ValueError(f"{client}: {node} first, {again} when asked again")
    conn.request("GET", "/ws/connect?clientId=")
    response = conn.getresponse()
    response.read()
    if response.status != 400:
        raise ValueError(f"an empty clientId got {response.status}, not 400")
except Exception as error:  # noqa: BLE001 - any failure is a failed check
    print(f"assignment check failed: {error}", file=sys.stderr)
    sys.exit(1)
counts = {}
for node in owners.values():
    counts[node] = counts.get(node, 0) + 1
# With ~20 or more clients per node, a node that owns none is a bug (chance ~nodes·e^-20), not bad luck.
if len(counts) != nodes and sample >= 20 * nodes:
    print(f"assignment check failed: only {len(counts)} of {nodes} nodes own any of {sample} clients", file=sys.stderr)
    sys.exit(1)
print(f"{sample} client ids (u{offset}..u{offset + sample - 1}) asked twice: all 200, valid and stable; "
      f"{len(counts)} of {nodes} nodes own some, {min(counts.values())}-{max(counts.values())} each "
      f"(mean {sample / nodes:.0f}); empty clientId 400")
EOF
}
CHECK_BEFORE=$(balancer_check 900000000) || die "the balancer's answers are not valid assignments"
log "check: $CHECK_BEFORE"

# ---- wrk with a new clientId per request ------------------------------------------------------------------------
# wrk's Lua: request() builds `<path>?clientId=u<offset+n>` for the n-th request of the run (one thread: -t1).
cat >"$BENCH_TMP/assign.lua" <<'EOF'
local n = 0
local offset = 0
local base = "/"
function init(args)
  offset = tonumber(args[1]) or 0
  base = wrk.path
end
function request()
  n = n + 1
  return wrk.format("GET", base .. "?clientId=u" .. (offset + n))
end
EOF
RUN_OFFSET=0

# wrk_lua URL DURATION_S: one wrk -t1 run with the Lua script (a fresh id range per run); prints
# "REQS_PER_S TOTAL_REQUESTS ERRORS" like wrk_run (errors = socket errors + non-2xx answers).
wrk_lua() {
  RUN_OFFSET=$((RUN_OFFSET + 100000000))
  "$WRK" -t1 -c"$CONNECTIONS" -d"${2}s" -s "$BENCH_TMP/assign.lua" "$1" -- "$RUN_OFFSET" \
    >"$BENCH_TMP/wrk.last" 2>&1 || die "wrk failed: $(cat "$BENCH_TMP/wrk.last")"
  awk '
    /Requests\/sec:/ { rps = $2 }
    / requests in / { total = $1 }
    /Socket errors:/ { gsub(/,/, ""); errs += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { errs += $5 }
    END { if (rps == "") exit 1; printf "%s %s %d\n", rps, total, errs }' "$BENCH_TMP/wrk.last" ||
    die "cannot parse wrk output: $(cat "$BENCH_TMP/wrk.last")"
}

declare -A PID URL
CONTENDERS=(balancer http-server)
PID[balancer]=$BALANCER_PID
PID[http-server]=$SERVER_PID
URL[balancer]="http://127.0.0.1:$BALANCER_PORT/ws/connect"
URL[http-server]="http://127.0.0.1:$SERVER_PORT/"

# The balancer's own background (a heartbeat round every second, librdkafka's threads), with no requests.
idle0=$(proc_cpu_ticks "$BALANCER_PID")
sleep 5
idle1=$(proc_cpu_ticks "$BALANCER_PID")
IDLE_MS_PER_S=$(awk -v d=$((idle1 - idle0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", d / hz * 1000 / 5 }')
log "balancer idle: $IDLE_MS_PER_S ms CPU per second"

for c in "${CONTENDERS[@]}"; do
  ((WARMUP > 0)) && wrk_lua "${URL[$c]}" "$WARMUP" >/dev/null
done

RAW="$BENCH_TMP/raw.tsv"
START=$(date -u '+%Y-%m-%d %H:%M:%S')
log "contenders: ${CONTENDERS[*]}; $ROUNDS rounds of ${DURATION}s, wrk -t1 -c$CONNECTIONS -s assign.lua"
printf 'round\tcontender\trps\tus_per_req\tother_cpu_pct\terrors\n' >"$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
  mapfile -t order < <(rotate $((r - 1)) "${CONTENDERS[@]}")
  for c in "${order[@]}"; do
    for ((attempt = 0; attempt <= NOISY_RETRIES; attempt++)); do
      t0=$(proc_cpu_ticks "${PID[$c]}")
      o0=$(own_ticks)
      b0=$(machine_busy_ticks)
      wrk_lua "${URL[$c]}" "$DURATION" >"$BENCH_TMP/wrk.parsed"
      b1=$(machine_busy_ticks)
      o1=$(own_ticks)
      t1=$(proc_cpu_ticks "${PID[$c]}")
      read -r rps total errs <"$BENCH_TMP/wrk.parsed"
      other=$(awk -v d=$(((b1 - b0) - (o1 - o0))) -v hz="$CLK_TCK" -v s="$DURATION" \
        'BEGIN { v = d / hz / s * 100; printf "%.0f", v < 0 ? 0 : v }')
      us=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$total" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
      ((other > MAX_OTHER_PCT && attempt < NOISY_RETRIES)) || break
      log "round $r $c: other processes used ${other}% of a core (> MAX_OTHER_PCT=$MAX_OTHER_PCT): run again"
    done
    printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$rps" "$us" "$other" "$errs" >>"$RAW"
    log "round $r $c: $rps req/s, $us µs CPU/request, other processes ${other}% of a core, $errs errors"
    ((errs == 0)) || log "warning: $c had $errs errors"
  done
done
END=$(date -u '+%H:%M:%S')

CHECK_AFTER=$(balancer_check 950000000) || die "after the rounds, the balancer's answers are not valid assignments"
log "check: $CHECK_AFTER"
kill -0 "$BALANCER_PID" 2>/dev/null || die "the balancer exited during the run"
ERRORS=$(awk -F'\t' 'NR > 1 { e += $6 } END { print e + 0 }' "$RAW")
ASSIGNED=$(curl -fsS "http://127.0.0.1:$BALANCER_PORT/metrics" |
  awk '/^rtc_balancer_assignments_total\{/ && /assigned/ { s += $2 } END { printf "%.0f", s }')

PERF_TOP=""
PERF_CHILDREN=""
if [[ -n "${PERF:-}" ]]; then
  log "perf: one more ${DURATION}s run against the balancer under perf record -g"
  perf record -g -F 999 -p "$BALANCER_PID" -o "$BENCH_TMP/perf.data" -- sleep "$((DURATION + 1))" \
    >"$BENCH_TMP/perf.log" 2>&1 &
  perf_pid=$!
  sleep 0.5
  wrk_lua "${URL[balancer]}" "$DURATION" >/dev/null
  wait "$perf_pid" || die "perf record failed: $(cat "$BENCH_TMP/perf.log")"
  demangle=cat
  command -v swift-demangle >/dev/null && demangle="swift-demangle --simplified"
  # Self time by symbol, then time including callees (frame-pointer call graphs), both ≥ 1 % of the samples.
  PERF_TOP=$(perf report -i "$BENCH_TMP/perf.data" --no-children --sort dso,symbol --stdio -g none \
    --percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/[ -]*$//' | $demangle | head -n 40)
  PERF_CHILDREN=$(perf report -i "$BENCH_TMP/perf.data" --children --sort symbol --stdio -g none \
    --percent-limit 3 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/[ -]*$//' | $demangle | head -n 40)
  [[ -z "${RAW_OUT:-}" ]] || cp "$BENCH_TMP/perf.data" "$RAW_OUT.perf.data"
fi

[[ -z "${RAW_OUT:-}" ]] || cp "$RAW" "$RAW_OUT"
echo
echo "## balancer-assign: $(machine_line)"
echo "Run $START–$END UTC. wrk -t1 -c$CONNECTIONS -d${DURATION}s -s assign.lua (clientId=u<n>, new per request),"
echo "$ROUNDS rounds alternated; CPU = the server process; $NODES nodes in the ring (version $RING_VERSION)."
echo
summarize "$RAW" http-server rps:high:req/s us_per_req:low:µs/req other_cpu_pct:info:other-CPU-%
echo
echo "Checks: before: $CHECK_BEFORE. After: $CHECK_AFTER. wrk errors (socket errors + non-2xx) over all runs:"
echo "$ERRORS. The balancer counted $ASSIGNED assignments (rtc_balancer_assignments_total, outcome assigned)."
echo "Balancer idle (no requests): $IDLE_MS_PER_S ms CPU per second."
if [[ -n "$PERF_TOP" ]]; then
  echo
  echo "perf (balancer, one extra ${DURATION}s run, self time by DSO and symbol, ≥ 1 %):"
  echo
  echo '```'
  echo "$PERF_TOP"
  echo '```'
  echo
  echo "perf, the same samples with callees included (children, self), ≥ 3 %:"
  echo
  echo '```'
  echo "$PERF_CHILDREN"
  echo '```'
fi
