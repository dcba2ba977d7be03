#!/usr/bin/env bash
# HTTP/1.1 proxying latency at a fixed rate, side by side: the contenders of http-proxy.sh (lib.sh's
# http_proxy_contenders_start: nginx, HAProxy, rtc-gateway on epoll and on io_uring, optionally `direct` and the
# relay floors) in front of the same nginx `return 200 "ok"` upstream.
#   Step 1: each contender's maximum rate with wrk -t1 -c$CONNECTIONS (MAXRATE_ROUNDS alternated rounds, median),
#           skipped when RATE is given.
#   Step 2: TARGET = FRACTION (0.5) × the better of nginx's and HAProxy's maximum rate; `hey` (a Go load generator,
#           keep-alive, HEY_WORKERS workers each limited to TARGET / HEY_WORKERS requests/s) runs DURATION s against
#           each contender, ROUNDS alternated rounds; per contender the median p50/p90/p99/max latency, the achieved
#           rate (flagged ⚠ when a round is off the target by more than RATE_TOLERANCE %), the proxy's CPU µs per
#           request and hey's own CPU, with p99 and µs/request ÷ the better of nginx and HAProxy.
#
# Environment: ROUNDS (5), DURATION seconds per hey run (10), HEY_WORKERS (50), FRACTION (0.5), RATE (the best peer's
# maximum rate in req/s: skips step 1), MAXRATE_ROUNDS (3), MAXRATE_DURATION (5), CONNECTIONS (50, wrk in step 1),
# WARMUP seconds per contender (1: wrk before step 1, hey at the target before step 2), RATE_TOLERANCE (3 %),
# PROXY_WORKERS (1), RELAY_FLOOR (0: 1 adds the floors from RTC_BENCH_BIN), DIRECT (1: hey straight to the upstream,
# the client's and upstream's own latency), GATEWAY_BIN, GATEWAY_CONF, GATEWAY_PORT (18154), URING (1), ACCESS_LOG
# (0), HEY (hey executable; installed with apt-get when missing), MAX_OTHER_PCT, NOISY_RETRIES, RAW_OUT (the
# per-round latency TSV; step 1's wrk TSV goes to $RAW_OUT.maxrate).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
HEY_WORKERS=${HEY_WORKERS:-50}
FRACTION=${FRACTION:-0.5}
RATE=${RATE:-}
MAXRATE_ROUNDS=${MAXRATE_ROUNDS:-3}
MAXRATE_DURATION=${MAXRATE_DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-1}
RATE_TOLERANCE=${RATE_TOLERANCE:-3}
MAX_OTHER_PCT=${MAX_OTHER_PCT:-25}
NOISY_RETRIES=${NOISY_RETRIES:-2}
RELAY_FLOOR=${RELAY_FLOOR:-0}
RTC_BENCH_BIN=${RTC_BENCH_BIN:-$BENCH_DIR/../.build/release/rtc-bench}
DIRECT=${DIRECT:-1}
HEY=${HEY:-hey}
UPSTREAM_PORT=18150
NGINX_PORT=18151
HAPROXY_PORT=18152
RELAY_PORT=18153 # floor-epoll; floor-uring on 18155, floor-uring-simple on 18158
GATEWAY_PORT=${GATEWAY_PORT:-18154} # gateway-log on 18156, gateway-uring on 18157

[[ -z "$RATE" || "$RATE" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "RATE=$RATE is not a number of requests/s"
[[ "$HEY_WORKERS" =~ ^[1-9][0-9]*$ ]] || die "HEY_WORKERS=$HEY_WORKERS is not a positive integer"

bench_init
log "machine: $(machine_line)"
[[ "$HEY" != hey ]] || ensure_tool hey hey
command -v "$HEY" >/dev/null || die "HEY=$HEY is not an executable"
ensure_tool wrk wrk

declare -A PID PORT
CONTENDERS=()
# direct, nginx, haproxy, the relay floors and the gateway contenders (lib.sh), as in http-proxy.sh.
http_proxy_contenders_start
check_body ok

# Step 1: maximum rates (the same wrk runs as http-proxy.sh, fewer and shorter rounds).
MAXRAW="$BENCH_TMP/maxrate.tsv"
if [[ -z "$RATE" ]]; then
  ROUNDS=$MAXRATE_ROUNDS DURATION=$MAXRATE_DURATION wrk_rounds "$MAXRAW"
  best=$(best_peer_rate "$MAXRAW" nginx,haproxy) || die "no maximum rate measured for nginx or HAProxy"
  read -r BEST_RATE BEST_PEER <<<"$best"
  RATE_SOURCE="the better peer's maximum rate, $BEST_PEER's $BEST_RATE req/s (step 1)"
else
  BEST_RATE=$(printf '%.0f' "$RATE")
  RATE_SOURCE="RATE=$RATE req/s (given; step 1 skipped)"
fi
TARGET=$(awk -v r="$BEST_RATE" -v f="$FRACTION" 'BEGIN { printf "%.0f", r * f }')
((TARGET >= HEY_WORKERS)) || die "target rate $TARGET req/s is below one request/s per hey worker ($HEY_WORKERS)"
PER_WORKER=$(awk -v t="$TARGET" -v c="$HEY_WORKERS" 'BEGIN { printf "%.3f", t / c }')
# hey paces each worker with a Go ticker of int(1e6 / q) µs: the rate it aims at is slightly above TARGET.
HEY_AIM=$(awk -v q="$PER_WORKER" -v c="$HEY_WORKERS" 'BEGIN { printf "%.0f", c * 1e6 / int(1e6 / q) }')
log "target: $TARGET req/s = $FRACTION × $RATE_SOURCE; hey -c $HEY_WORKERS -q $PER_WORKER (aims at $HEY_AIM req/s)"

# self_child_ticks: CPU ticks (cutime + cstime) of this shell's waited-for children, read without a fork.
self_child_ticks() {
  local line f
  read -r line </proc/$$/stat
  read -r -a f <<<"${line##*) }"
  echo $((f[13] + f[14]))
}

# hey_run URL SECONDS OUT: hey at TARGET req/s (HEY_WORKERS workers, keep-alive) for SECONDS; output in OUT.
hey_run() {
  "$HEY" -z "${2}s" -c "$HEY_WORKERS" -q "$PER_WORKER" "$1" >"$3" 2>&1 || die "hey failed: $(tail -n 20 "$3")"
}

# hey_parse OUT: "P50_MS P90_MS P99_MS MAX_MS OK_PER_S OK FAILED" from hey's summary: the "Latency distribution"
# lines (`  99% in 0.0012 secs`), Slowest, Total, "Status code distribution" (`  [200]	N responses`) and "Error
# distribution" (`  [N]	message`). The rate counts 2xx/3xx answers only (hey's Requests/sec counts errors too).
hey_parse() {
  awk '
    /^[A-Za-z]/ { sec = "" }
    /^Status code distribution:/ { sec = "status"; next }
    /^Error distribution:/ { sec = "error"; next }
    /^ *Total:/ { total = $2 }
    /^ *Slowest:/ { slowest = $2 }
    /^ *[0-9.]+% in [0-9.]+ secs/ { p = $1; sub(/%$/, "", p); lat[p + 0] = $3 }
    sec == "status" && /^ *\[[0-9]+\]/ {
      code = $1; gsub(/[][]/, "", code)
      if (code >= 200 && code < 400) ok += $2; else bad += $2
    }
    sec == "error" && /^ *\[[0-9]+\]/ { n = $1; gsub(/[][]/, "", n); bad += n }
    END {
      if (total <= 0 || !(50 in lat) || !(90 in lat) || !(99 in lat) || slowest == "") exit 1
      printf "%.3f %.3f %.3f %.3f %.1f %d %d\n", lat[50] * 1e3, lat[90] * 1e3, lat[99] * 1e3, slowest * 1e3,
        ok / total, ok, bad
    }' "$1"
}

# Step 2: hey at the target against each contender, ROUNDS rounds, the order rotating each round.
for c in "${CONTENDERS[@]}"; do
  if ((WARMUP > 0)); then hey_run "http://127.0.0.1:${PORT[$c]}/" "$WARMUP" "$BENCH_TMP/hey.warmup"; fi
done
log "contenders: ${CONTENDERS[*]}; $ROUNDS rounds of ${DURATION}s, hey -c $HEY_WORKERS -q $PER_WORKER"
RAW="$BENCH_TMP/tail.tsv"
printf 'round\tcontender\tp50_ms\tp90_ms\tp99_ms\tmax_ms\trps\trate_pct\tus_per_req\they_cpu_pct\tother_cpu_pct\tfailed\n' \
  >"$RAW"
declare -A OFF=()
for ((r = 1; r <= ROUNDS; r++)); do
  mapfile -t order < <(rotate $((r - 1)) "${CONTENDERS[@]}")
  for c in "${order[@]}"; do
    heyout="$BENCH_TMP/hey.$c.$r"
    for ((attempt = 0; attempt <= NOISY_RETRIES; attempt++)); do
      t0=$(proc_cpu_ticks "${PID[$c]}")
      o0=$(own_ticks)
      b0=$(machine_busy_ticks)
      h0=$(self_child_ticks)
      hey_run "http://127.0.0.1:${PORT[$c]}/" "$DURATION" "$heyout"
      h1=$(self_child_ticks)
      b1=$(machine_busy_ticks)
      o1=$(own_ticks)
      t1=$(proc_cpu_ticks "${PID[$c]}")
      parsed=$(hey_parse "$heyout") || die "cannot parse hey's output: $(cat "$heyout")"
      read -r p50 p90 p99 max rps ok failed <<<"$parsed"
      ((ok > 0)) || die "$c: no successful request: $(tail -n 20 "$heyout")"
      other=$(awk -v d=$(((b1 - b0) - (o1 - o0))) -v hz="$CLK_TCK" -v s="$DURATION" \
        'BEGIN { v = d / hz / s * 100; printf "%.0f", v < 0 ? 0 : v }')
      ((other > MAX_OTHER_PCT && attempt < NOISY_RETRIES)) || break
      log "round $r $c: other processes used ${other}% of a core (> MAX_OTHER_PCT=$MAX_OTHER_PCT): run again"
    done
    us=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$ok" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
    heycpu=$(awk -v d=$((h1 - h0)) -v hz="$CLK_TCK" -v s="$DURATION" 'BEGIN { printf "%.0f", d / hz / s * 100 }')
    pct=$(awk -v a="$rps" -v t="$TARGET" 'BEGIN { printf "%.1f", a / t * 100 }')
    printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$p50" "$p90" "$p99" "$max" "$rps" "$pct" \
      "$us" "$heycpu" "$other" "$failed" >>"$RAW"
    log "round $r $c: p50 $p50 p90 $p90 p99 $p99 max $max ms, $rps req/s ($pct % of the target)," \
      "$us µs CPU/request, hey ${heycpu}% of a core, other processes ${other}% of a core, $failed failed"
    ((failed == 0)) || log "warning: $c: $failed requests failed or were not 2xx/3xx"
    if awk -v p="$pct" -v tol="$RATE_TOLERANCE" 'BEGIN { d = p - 100; if (d < 0) d = -d; exit !(d > tol) }'; then
      OFF[$c]=$((${OFF[$c]:-0} + 1))
      log "warning: round $r $c: achieved $rps req/s, $pct % of the target $TARGET (tolerance ±$RATE_TOLERANCE %)"
    fi
  done
done

if [[ -n "${RAW_OUT:-}" ]]; then
  cp "$RAW" "$RAW_OUT"
  [[ ! -f "$MAXRAW" ]] || cp "$MAXRAW" "$RAW_OUT.maxrate"
fi
HEY_VERSION=$(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo "?")
echo
echo "## http-tail: $(machine_line)"
if [[ -f "$MAXRAW" ]]; then
  echo "Step 1, maximum rates: wrk -t1 -c$CONNECTIONS -d${MAXRATE_DURATION}s, $MAXRATE_ROUNDS rounds alternated;" \
    "CPU = the proxy process (for 'direct': the upstream)"
  echo
  summarize "$MAXRAW" nginx,haproxy rps:high:req/s us_per_req:low:µs/req other_cpu_pct:median:other-CPU-%
  echo
fi
echo "Step 2, latency at $FRACTION × $RATE_SOURCE: target $TARGET req/s; hey $HEY_VERSION -c $HEY_WORKERS" \
  "-q $PER_WORKER -z ${DURATION}s (keep-alive; each worker waits for its answer, then for its next tick), $ROUNDS rounds" \
  "alternated; latency in ms from hey's distribution (printed in 0.1 ms steps); req/s = 2xx answers ÷ hey's total" \
  "time; CPU = the proxy process (for 'direct': the upstream); hey-CPU-% = hey's own CPU in % of one core"
echo
summarize "$RAW" nginx,haproxy p50_ms:median:p50-ms p90_ms:median:p90-ms p99_ms:low:p99-ms max_ms:median:max-ms \
  rps:info:req/s us_per_req:low:µs/req hey_cpu_pct:median:hey-CPU-% other_cpu_pct:median:other-CPU-% \
  failed:info:failed | awk -v off="$(for c in "${!OFF[@]}"; do printf '%s ' "$c"; done)" '
    BEGIN { n = split(off, o, " "); for (i = 1; i <= n; i++) flag[o[i]] = 1 }
    /^\| / { c = $0; sub(/^\| /, "", c); sub(/ \|.*/, "", c); if (c in flag) sub(/^\| [^ |]+/, "& ⚠") }
    { print }'
if ((${#OFF[@]})); then
  echo
  for c in "${CONTENDERS[@]}"; do
    [[ -z "${OFF[$c]:-}" ]] ||
      echo "⚠ $c: the achieved rate was off the target $TARGET req/s by more than $RATE_TOLERANCE % in ${OFF[$c]} of $ROUNDS rounds."
  done
fi
