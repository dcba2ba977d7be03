#!/usr/bin/env bash
# Resident memory per idle proxied WebSocket: for each contender (nginx, HAProxy, rtc-gateway when built) and
# each round, a freshly started proxy; RSS before, N tunnels opened through it with one echoed message each,
# RSS again once it settles → KiB per tunnel. Upstream: a `websockets` echo server in its own process.
#
# Environment: N tunnels (5000; the proxy holds 2 fds per tunnel and the fd limit is 20000, so ≤ 9500),
# ROUNDS (5), CONCURRENCY handshakes in flight (100), GATEWAY_BIN, GATEWAY_CONF (a draft config is generated
# when unset), RAW_OUT (file to keep the raw per-round TSV).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${N:-5000}
ROUNDS=${ROUNDS:-5}
CONCURRENCY=${CONCURRENCY:-100}
UPSTREAM_PORT=18100
NGINX_PORT=18101
HAPROXY_PORT=18102
GATEWAY_PORT=${GATEWAY_PORT:-18104}
ulimit -n "$(ulimit -Hn)"

bench_init
log "machine: $(machine_line)"

declare -A PORT
CONTENDERS=(nginx haproxy)
PORT[nginx]=$NGINX_PORT
PORT[haproxy]=$HAPROXY_PORT
if [[ -n "${GATEWAY_BIN:-}" && -x "${GATEWAY_BIN:-}" ]]; then
  CONTENDERS+=(gateway)
  PORT[gateway]=$GATEWAY_PORT
  GW_CONF=${GATEWAY_CONF:-$BENCH_TMP/gateway-ws.conf}
  [[ -n "${GATEWAY_CONF:-}" ]] || gateway_ws_conf "$GW_CONF" "$GATEWAY_PORT" "$UPSTREAM_PORT"
  if uring_wanted; then
    # The same gateway on the io_uring backend, on the next port.
    CONTENDERS+=(gateway-uring)
    PORT[gateway-uring]=$((GATEWAY_PORT + 3))
    GW_URING_CONF=$BENCH_TMP/gateway-ws-io_uring.conf
    gateway_ws_conf "$GW_URING_CONF" "$((GATEWAY_PORT + 3))" "$UPSTREAM_PORT" io_uring
  fi
elif [[ -n "${GATEWAY_BIN:-}" ]]; then
  log "gateway: skipped: GATEWAY_BIN=$GATEWAY_BIN is not an executable (run 'make release' first)"
else
  log "gateway: skipped (set GATEWAY_BIN to the rtc-gateway executable, e.g. .build/release/rtc-gateway)"
fi

bench_start upstream "$PY" "$BENCH_DIR/ws_tools.py" echo-lib "$UPSTREAM_PORT"
wait_port "$UPSTREAM_PORT" "$BENCH_LAST_PID"

# start_proxy NAME: a fresh process of contender NAME; pid in BENCH_LAST_PID.
start_proxy() {
  case $1 in
    nginx) nginx_start "nginx-$r" "$NGINX_PORT" "$(nginx_ws_body "$NGINX_PORT" "$UPSTREAM_PORT")" ;;
    haproxy) haproxy_start "haproxy-$r" "$HAPROXY_PORT" "$(haproxy_ws_body "$HAPROXY_PORT" "$UPSTREAM_PORT")" ;;
    gateway)
      bench_start "gateway-$r" "$GATEWAY_BIN" --config "$GW_CONF" --workers 1
      wait_port "$GATEWAY_PORT" "$BENCH_LAST_PID"
      ;;
    gateway-uring)
      bench_start "gateway-uring-$r" "$GATEWAY_BIN" --config "$GW_URING_CONF" --workers 1
      wait_port "$((GATEWAY_PORT + 3))" "$BENCH_LAST_PID"
      ;;
  esac
}

RAW="$BENCH_TMP/raw.tsv"
printf 'round\tcontender\tkib_per_tunnel\trss_before_kib\trss_after_kib\ttunnels\n' >"$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
  mapfile -t order < <(rotate $((r - 1)) "${CONTENDERS[@]}")
  for c in "${order[@]}"; do
    start_proxy "$c"
    proxy=$BENCH_LAST_PID
    before=$(rss_settle "$proxy")
    bench_start "client-$c-$r" "$PY" "$BENCH_DIR/ws_tools.py" idle-client "ws://127.0.0.1:${PORT[$c]}/" "$N" "$CONCURRENCY"
    client=$BENCH_LAST_PID
    ready=$(wait_line "$BENCH_TMP/client-$c-$r.log" '^READY' "$client" 300)
    ok=$(sed -E 's/.*ok=([0-9]+).*/\1/' <<<"$ready")
    after=$(rss_settle "$proxy")
    kib=$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN { printf "%.2f", n ? (a - b) / n : 0 }')
    printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$kib" "$before" "$after" "$ok" >>"$RAW"
    log "round $r $c: $ready; RSS $before → $after KiB: $kib KiB/tunnel"
    ((ok == N)) || log "warning: $c: only $ok of $N tunnels opened"
    bench_stop "$client"
    bench_stop "$proxy"
  done
done

[[ -z "${RAW_OUT:-}" ]] || cp "$RAW" "$RAW_OUT"
echo
echo "## ws-idle: $(machine_line)"
echo "$N idle tunnels per fresh proxy process, $ROUNDS rounds alternated; RSS = VmRSS of the proxy (and children)"
echo
summarize "$RAW" nginx,haproxy kib_per_tunnel:low:KiB/tunnel rss_before_kib:low:RSS-before-KiB
