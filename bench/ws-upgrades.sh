#!/usr/bin/env bash
# New WebSocket upgrades per second through each proxy: `rtc-bench ws-upgrades` opens TOTAL connections, at most
# CONCURRENCY at a time, each one connect + upgrade + one 16-byte echo + Close 1000 both ways (server closes
# first), against `rtc-bench ws-echo`; contenders alternated over ROUNDS rounds; median upgrades/s and proxy CPU
# µs per upgrade. "direct" (client straight to the echo; CPU = echo) shows what client and echo reach at all.
#
# Environment: ROUNDS (5), TOTAL (10000), CONCURRENCY (64), WARMUP_TOTAL (2000 per contender before round 1),
# CLIENT_WORKERS (1), ECHO_WORKERS (1), SOURCES (0: `--sources K` of ws-upgrades, bind to 127.0.1.1..K),
# RTC_BENCH_BIN (default .build/release/rtc-bench), GATEWAY_BIN, GATEWAY_CONF (generated when unset),
# GATEWAY_PORT (18124), RELAY_FLOOR (1: `rtc-bench relay` as the parse-nothing floors floor-epoll and
# floor-uring; FLOOR_URING_SIMPLE=1 adds floor-uring-simple), URING (1: the gateway on io_uring too), RAW_OUT (file to keep the raw per-round TSV), MAX_OTHER_PCT (25) and NOISY_RETRIES (2):
# a run during which processes that are not ours used more than 25 % of a core is run again, at most twice
# (the last attempt is kept; its figure is in the other-CPU-% column).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
TOTAL=${TOTAL:-10000}
CONCURRENCY=${CONCURRENCY:-64}
WARMUP_TOTAL=${WARMUP_TOTAL:-2000}
CLIENT_WORKERS=${CLIENT_WORKERS:-1}
ECHO_WORKERS=${ECHO_WORKERS:-1}
SOURCES=${SOURCES:-0}
MAX_OTHER_PCT=${MAX_OTHER_PCT:-25}
NOISY_RETRIES=${NOISY_RETRIES:-2}
RTC_BENCH_BIN=${RTC_BENCH_BIN:-$BENCH_DIR/../.build/release/rtc-bench}
UPSTREAM_PORT=18120
NGINX_PORT=18121
HAPROXY_PORT=18122
RELAY_PORT=18123 # floor-epoll; floor-uring on 18125, floor-uring-simple on 18128
RELAY_FLOOR=${RELAY_FLOOR:-1}
GATEWAY_PORT=${GATEWAY_PORT:-18124}
ulimit -n "$(ulimit -Hn)"
[[ -x "$RTC_BENCH_BIN" ]] || die "RTC_BENCH_BIN=$RTC_BENCH_BIN is not an executable (build rtc-bench with -c release)"

bench_init
log "machine: $(machine_line)"

declare -A PID PORT
bench_start upstream "$RTC_BENCH_BIN" ws-echo --port "$UPSTREAM_PORT" --workers "$ECHO_WORKERS"
wait_port "$UPSTREAM_PORT" "$BENCH_LAST_PID"
CONTENDERS=(direct)
PID[direct]=$BENCH_LAST_PID
PORT[direct]=$UPSTREAM_PORT

# The generated configs allow far more than CONCURRENCY × 2 connections: nginx worker_connections 19000,
# HAProxy maxconn 9500; connections in TIME_WAIT hold no descriptor.
nginx_start nginx "$NGINX_PORT" "$(nginx_ws_body "$NGINX_PORT" "$UPSTREAM_PORT")"
CONTENDERS+=(nginx)
PID[nginx]=$BENCH_LAST_PID
PORT[nginx]=$NGINX_PORT

haproxy_start haproxy "$HAPROXY_PORT" "$(haproxy_ws_body "$HAPROXY_PORT" "$UPSTREAM_PORT")"
CONTENDERS+=(haproxy)
PID[haproxy]=$BENCH_LAST_PID
PORT[haproxy]=$HAPROXY_PORT

if [[ "$RELAY_FLOOR" == 1 ]]; then
  # 1:1 TCP relays that parse nothing: the upgrade's bytes pass through like any others.
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

# upgrades C N: one ws-upgrades run of N connections against contender C; prints its summary line.
upgrades() {
  "$RTC_BENCH_BIN" ws-upgrades --url "ws://127.0.0.1:${PORT[$1]}/" --total "$2" --concurrency "$CONCURRENCY" \
    --workers "$CLIENT_WORKERS" --sources "$SOURCES" --cpu-pids "$(contender_cpu_pids "$1")"
}

for c in "${CONTENDERS[@]}"; do
  if ((WARMUP_TOTAL > 0)); then
    line=$(upgrades "$c" "$WARMUP_TOTAL") || die "warm-up $c: ws-upgrades failed: $line"
  fi
done

log "contenders: ${CONTENDERS[*]}; $ROUNDS rounds of $TOTAL upgrades at concurrency $CONCURRENCY, ws-upgrades ($CLIENT_WORKERS loops) → ws-echo ($ECHO_WORKERS loops)"
RAW="$BENCH_TMP/raw.tsv"
printf 'round\tcontender\tupgrades_per_s\tus_per_upgrade\tclient_us_per_upgrade\tother_cpu_pct\n' >"$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
  mapfile -t order < <(rotate $((r - 1)) "${CONTENDERS[@]}")
  for c in "${order[@]}"; do
    for ((attempt = 0; attempt <= NOISY_RETRIES; attempt++)); do
      o0=$(own_ticks)
      b0=$(machine_busy_ticks)
      line=$(upgrades "$c" "$TOTAL") || die "round $r $c: ws-upgrades failed: $line"
      b1=$(machine_busy_ticks)
      o1=$(own_ticks)
      # name=value words → rate, proxy µs/upgrade, client µs/upgrade, and CPU of processes that are not ours
      # (% of one core over the run: high means a noisy run).
      read -r rate us client other < <(awk -v l="$line" -v hz="$CLK_TCK" -v d=$(((b1 - b0) - (o1 - o0))) '
        BEGIN { n = split(l, f, /[ =]/); for (i = 1; i < n; i += 2) v[f[i]] = f[i + 1]
          o = v["seconds"] ? d / hz / v["seconds"] * 100 : 0
          printf "%s %.2f %.2f %.0f\n", v["rate"], v["cpu_ticks"] / hz * 1e6 / v["upgrades"],
            v["client_cpu_s"] * 1e6 / v["upgrades"], o < 0 ? 0 : o }')
      ((other > MAX_OTHER_PCT && attempt < NOISY_RETRIES)) || break
      log "round $r $c: $line, but other processes used ${other}% of a core (> MAX_OTHER_PCT=$MAX_OTHER_PCT): run again"
    done
    printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$rate" "$us" "$client" "$other" >>"$RAW"
    log "round $r $c: $line → $us µs proxy CPU/upgrade, other processes ${other}% of a core"
  done
done

[[ -z "${RAW_OUT:-}" ]] || cp "$RAW" "$RAW_OUT"
echo
echo "## ws-upgrades: $(machine_line)"
echo "$TOTAL upgrades × $ROUNDS rounds alternated, concurrency $CONCURRENCY, each: connect, upgrade, one 16-byte echo, Close both ways; rtc-bench ws-upgrades ($CLIENT_WORKERS loops) → ws-echo ($ECHO_WORKERS loops); CPU = proxy (direct: echo)"
echo
summarize "$RAW" nginx,haproxy upgrades_per_s:high:upgrades/s us_per_upgrade:low:µs/upgrade \
  "client_us_per_upgrade:info:client µs/upgrade" other_cpu_pct:info:other-CPU-%
