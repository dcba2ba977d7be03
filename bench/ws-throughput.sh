#!/usr/bin/env bash
# WebSocket messages/s through each proxy: CONNS connections × INFLIGHT messages in flight × WS_SIZE-byte
# binary messages against a raw echo upstream, contenders alternated over ROUNDS rounds; median msg/s and
# proxy CPU µs per relayed message (each echo is two relayed messages, one per direction: µs/msg counts
# echoes, as the peer figures in PLATFORM.md do). "direct" (client straight to the upstream) shows what the
# Python client and upstream can drive at all: when a proxy's msg/s is close to it, the client is the limit.
#
# Environment: ROUNDS (5), DURATION (5), CONNS (100), INFLIGHT (4), WS_SIZE (64), CLIENT_PROCS client
# processes (2), ECHO_PROCS upstream processes sharing the port with SO_REUSEPORT (1), GATEWAY_BIN,
# GATEWAY_CONF (a draft config is generated when unset), RAW_OUT (file to keep the raw per-round TSV).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-100}
INFLIGHT=${INFLIGHT:-4}
CLIENT_PROCS=${CLIENT_PROCS:-2}
ECHO_PROCS=${ECHO_PROCS:-1}
export WS_SIZE=${WS_SIZE:-64}
UPSTREAM_PORT=18110
NGINX_PORT=18111
HAPROXY_PORT=18112
GATEWAY_PORT=${GATEWAY_PORT:-18114}
ulimit -n "$(ulimit -Hn)"

bench_init
log "machine: $(machine_line)"

declare -A PID PORT
CONTENDERS=(direct)
UPSTREAM_PIDS=()
for ((i = 0; i < ECHO_PROCS; i++)); do
  bench_start "upstream-$i" "$PY" "$BENCH_DIR/ws_tools.py" echo-raw "$UPSTREAM_PORT"
  UPSTREAM_PIDS+=("$BENCH_LAST_PID")
done
wait_port "$UPSTREAM_PORT" "${UPSTREAM_PIDS[0]}"
PID[direct]=$(
  IFS=,
  echo "${UPSTREAM_PIDS[*]}"
)
PORT[direct]=$UPSTREAM_PORT

nginx_start nginx "$NGINX_PORT" "$(nginx_ws_body "$NGINX_PORT" "$UPSTREAM_PORT")"
CONTENDERS+=(nginx)
PID[nginx]=$BENCH_LAST_PID
PORT[nginx]=$NGINX_PORT

haproxy_start haproxy "$HAPROXY_PORT" "$(haproxy_ws_body "$HAPROXY_PORT" "$UPSTREAM_PORT")"
CONTENDERS+=(haproxy)
PID[haproxy]=$BENCH_LAST_PID
PORT[haproxy]=$HAPROXY_PORT

if [[ -n "${GATEWAY_BIN:-}" && -x "${GATEWAY_BIN:-}" ]]; then
  conf=${GATEWAY_CONF:-$BENCH_TMP/gateway-ws.conf}
  [[ -n "${GATEWAY_CONF:-}" ]] || gateway_ws_conf "$conf" "$GATEWAY_PORT" "$UPSTREAM_PORT"
  bench_start gateway "$GATEWAY_BIN" --config "$conf" --workers 1
  wait_port "$GATEWAY_PORT" "$BENCH_LAST_PID"
  CONTENDERS+=(gateway)
  PID[gateway]=$BENCH_LAST_PID
  PORT[gateway]=$GATEWAY_PORT
elif [[ -n "${GATEWAY_BIN:-}" ]]; then
  log "gateway: skipped: GATEWAY_BIN=$GATEWAY_BIN is not an executable (run 'make release' first)"
else
  log "gateway: skipped (set GATEWAY_BIN to the rtc-gateway executable, e.g. .build/release/rtc-gateway)"
fi

# cpu_pids C: comma list of the processes whose CPU counts for contender C (proxy and children; upstream for direct).
cpu_pids() {
  local p out=()
  for p in ${PID[$1]//,/ }; do
    mapfile -t -O "${#out[@]}" out < <(proc_tree "$p")
  done
  (
    IFS=,
    echo "${out[*]}"
  )
}

log "contenders: ${CONTENDERS[*]}; $ROUNDS rounds of ${DURATION}s, $CONNS conns × $INFLIGHT in flight × ${WS_SIZE} B, $CLIENT_PROCS client procs, $ECHO_PROCS echo procs"
RAW="$BENCH_TMP/raw.tsv"
printf 'round\tcontender\tmsg_per_s\tus_per_msg\n' >"$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
  mapfile -t order < <(rotate $((r - 1)) "${CONTENDERS[@]}")
  for c in "${order[@]}"; do
    line=$("$PY" "$BENCH_DIR/ws_tools.py" throughput-client "ws://127.0.0.1:${PORT[$c]}/" \
      "$CONNS" "$INFLIGHT" "$DURATION" "$CLIENT_PROCS" "$(cpu_pids "$c")")
    rate=$(sed -E 's/.*msg_per_s=([0-9.]+).*/\1/' <<<"$line")
    us=$(awk -v l="$line" 'BEGIN { n = split(l, f, /[ =]/); for (i = 1; i < n; i += 2) v[f[i]] = f[i + 1];
      printf "%.2f", v["msgs"] ? v["cpu_s"] * 1e6 / v["msgs"] : 0 }')
    printf '%d\t%s\t%s\t%s\n' "$r" "$c" "$rate" "$us" >>"$RAW"
    log "round $r $c: $line → $us µs CPU/message"
  done
done

[[ -z "${RAW_OUT:-}" ]] || cp "$RAW" "$RAW_OUT"
echo
echo "## ws-throughput: $(machine_line)"
echo "$CONNS conns × $INFLIGHT in flight × ${WS_SIZE} B, ${DURATION}s × $ROUNDS rounds alternated, Python client ($CLIENT_PROCS procs), raw echo ($ECHO_PROCS procs); CPU = proxy (direct: upstream)"
echo
summarize "$RAW" nginx,haproxy msg_per_s:high:msg/s us_per_msg:low:µs/msg
