#!/usr/bin/env bash
# WebSocket messages/s through each proxy: CONNS connections × INFLIGHT messages in flight × WS_SIZE-byte
# binary messages against a raw echo upstream, contenders alternated over ROUNDS rounds; median msg/s and
# proxy CPU µs per relayed message (each echo is two relayed messages, one per direction: µs/msg counts
# echoes, as the peer figures in PLATFORM.md do). "direct" (client straight to the upstream) shows what the
# client and upstream can drive at all: when a proxy's msg/s is close to it, the client is the limit.
#
# Environment: ROUNDS (5), DURATION (5), CONNS (100), INFLIGHT (4), WS_SIZE (64), CLIENT_PROCS client
# processes (2), ECHO_PROCS upstream processes sharing the port with SO_REUSEPORT (1), GATEWAY_BIN,
# GATEWAY_CONF (a draft config is generated when unset), RAW_OUT (file to keep the raw per-round TSV).
# Compiled tools instead of ws_tools.py: CLIENT=rtc (`rtc-bench ws-load`, CLIENT_WORKERS loops, default 1) and/or
# ECHO=rtc (`rtc-bench ws-echo`, ECHO_WORKERS loops, default 1) from RTC_BENCH_BIN (default
# .build/release/rtc-bench); RELAY_FLOOR (1 with CLIENT=rtc, else 0) adds `rtc-bench relay` as the parse-nothing
# floors floor-epoll and floor-uring (FLOOR_URING_SIMPLE=1 adds floor-uring-simple). With both rtc, ws-load checks
# every echoed byte; with the Python echo, lengths only.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-100}
INFLIGHT=${INFLIGHT:-4}
CLIENT_PROCS=${CLIENT_PROCS:-2}
ECHO_PROCS=${ECHO_PROCS:-1}
CLIENT=${CLIENT:-python}
ECHO=${ECHO:-python}
CLIENT_WORKERS=${CLIENT_WORKERS:-1}
ECHO_WORKERS=${ECHO_WORKERS:-1}
RTC_BENCH_BIN=${RTC_BENCH_BIN:-$(dirname "${BASH_SOURCE[0]}")/../.build/release/rtc-bench}
if [[ "$CLIENT" == rtc ]]; then RELAY_FLOOR=${RELAY_FLOOR:-1}; else RELAY_FLOOR=${RELAY_FLOOR:-0}; fi
export WS_SIZE=${WS_SIZE:-64}
UPSTREAM_PORT=18110
NGINX_PORT=18111
HAPROXY_PORT=18112
RELAY_PORT=18113 # floor-epoll; floor-uring on 18115, floor-uring-simple on 18118
GATEWAY_PORT=${GATEWAY_PORT:-18114}
ulimit -n "$(ulimit -Hn)"
[[ "$CLIENT" == python || "$CLIENT" == rtc ]] || die "CLIENT must be python or rtc, not '$CLIENT'"
[[ "$ECHO" == python || "$ECHO" == rtc ]] || die "ECHO must be python or rtc, not '$ECHO'"
if [[ "$CLIENT" == rtc || "$ECHO" == rtc || "$RELAY_FLOOR" == 1 ]]; then
  [[ -x "$RTC_BENCH_BIN" ]] || die "RTC_BENCH_BIN=$RTC_BENCH_BIN is not an executable (build rtc-bench with -c release)"
fi

bench_init
log "machine: $(machine_line)"

declare -A PID PORT
CONTENDERS=(direct)
UPSTREAM_PIDS=()
for ((i = 0; i < ECHO_PROCS; i++)); do
  if [[ "$ECHO" == rtc ]]; then
    bench_start "upstream-$i" "$RTC_BENCH_BIN" ws-echo --port "$UPSTREAM_PORT" --workers "$ECHO_WORKERS"
  else
    bench_start "upstream-$i" "$PY" "$BENCH_DIR/ws_tools.py" echo-raw "$UPSTREAM_PORT"
  fi
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

if [[ "$RELAY_FLOOR" == 1 ]]; then
  # 1:1 TCP relays that parse nothing: one upstream connection per client connection, bytes relayed.
  relay_floors_start "$RELAY_PORT" "$UPSTREAM_PORT"
fi

if gateway_ws_start gateway "$GATEWAY_PORT" "$UPSTREAM_PORT"; then
  CONTENDERS+=(gateway)
  PID[gateway]=$BENCH_LAST_PID
  PORT[gateway]=$GATEWAY_PORT
fi
# The same gateway on the io_uring backend (`events io_uring;`), on the next port.
if uring_wanted && gateway_ws_start gateway-uring "$((GATEWAY_PORT + 3))" "$UPSTREAM_PORT" io_uring; then
  CONTENDERS+=(gateway-uring)
  PID[gateway-uring]=$BENCH_LAST_PID
  PORT[gateway-uring]=$((GATEWAY_PORT + 3))
fi

# run_client C: one measured run against contender C; sets RUN_RATE (msg/s) and RUN_US (proxy µs per message).
# Runs in this shell (not in $(...)) so that a failing client stops the script.
run_client() {
  local c=$1 line rate us check
  if [[ "$CLIENT" == rtc ]]; then
    # ws_tools.py's echo answers every frame with "x" bytes: only its lengths can be checked.
    check=length
    [[ "$ECHO" == rtc ]] && check=content
    line=$("$RTC_BENCH_BIN" ws-load --url "ws://127.0.0.1:${PORT[$c]}/" --connections "$CONNS" \
      --in-flight "$INFLIGHT" --size "$WS_SIZE" --duration "$DURATION" --warmup 0.3 --workers "$CLIENT_WORKERS" \
      --check "$check" --cpu-pids "$(contender_cpu_pids "$c")") || die "round $r $c: ws-load failed: $line"
    rate=$(sed -E 's/.* rate=([0-9.]+).*/\1/' <<<"$line")
    us=$(awk -v l="$line" -v hz="$CLK_TCK" 'BEGIN { n = split(l, f, /[ =]/); for (i = 1; i < n; i += 2) v[f[i]] = f[i + 1];
      printf "%.2f", v["msgs"] ? v["cpu_ticks"] / hz * 1e6 / v["msgs"] : 0 }')
  else
    line=$("$PY" "$BENCH_DIR/ws_tools.py" throughput-client "ws://127.0.0.1:${PORT[$c]}/" \
      "$CONNS" "$INFLIGHT" "$DURATION" "$CLIENT_PROCS" "$(contender_cpu_pids "$c")")
    rate=$(sed -E 's/.*msg_per_s=([0-9.]+).*/\1/' <<<"$line")
    us=$(awk -v l="$line" 'BEGIN { n = split(l, f, /[ =]/); for (i = 1; i < n; i += 2) v[f[i]] = f[i + 1];
      printf "%.2f", v["msgs"] ? v["cpu_s"] * 1e6 / v["msgs"] : 0 }')
  fi
  log "round $r $c: $line → $us µs CPU/message"
  RUN_RATE=$rate
  RUN_US=$us
}

if [[ "$CLIENT" == rtc ]]; then
  client_desc="rtc-bench ws-load ($CLIENT_WORKERS loops)"
else
  client_desc="Python client ($CLIENT_PROCS procs)"
fi
if [[ "$ECHO" == rtc ]]; then
  echo_desc="rtc-bench ws-echo ($ECHO_PROCS procs × $ECHO_WORKERS loops)"
else
  echo_desc="raw echo ($ECHO_PROCS procs)"
fi
log "contenders: ${CONTENDERS[*]}; $ROUNDS rounds of ${DURATION}s, $CONNS conns × $INFLIGHT in flight × ${WS_SIZE} B, $client_desc, $echo_desc"
RAW="$BENCH_TMP/raw.tsv"
printf 'round\tcontender\tmsg_per_s\tus_per_msg\n' >"$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
  mapfile -t order < <(rotate $((r - 1)) "${CONTENDERS[@]}")
  for c in "${order[@]}"; do
    run_client "$c"
    printf '%d\t%s\t%s\t%s\n' "$r" "$c" "$RUN_RATE" "$RUN_US" >>"$RAW"
  done
done

[[ -z "${RAW_OUT:-}" ]] || cp "$RAW" "$RAW_OUT"
echo
echo "## ws-throughput: $(machine_line)"
echo "$CONNS conns × $INFLIGHT in flight × ${WS_SIZE} B, ${DURATION}s × $ROUNDS rounds alternated, $client_desc, $echo_desc; CPU = proxy (direct: upstream)"
echo
summarize "$RAW" nginx,haproxy msg_per_s:high:msg/s us_per_msg:low:µs/msg
