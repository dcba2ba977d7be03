#!/usr/bin/env bash
# HTTP/1.1 reverse proxying side by side: nginx, HAProxy, the relay floors and (when built) rtc-gateway in front of
# one nginx `return 200 "ok"` upstream; wrk -t1 -c50 per contender, contenders alternated over ROUNDS rounds;
# median req/s and proxy CPU µs per request, with ratios against the better of nginx and HAProxy.
#
# Environment: ROUNDS (5), DURATION seconds per run (5), CONNECTIONS (50), WARMUP seconds (1), PROXY_WORKERS (1:
# nginx worker_processes, HAProxy nbthread and the gateway's --workers; the relay floors stay one thread),
# RELAY_FLOOR (1: include `rtc-bench relay` as the parse-nothing floors floor-epoll and floor-uring, from
# RTC_BENCH_BIN, default .build/release/rtc-bench; FLOOR_URING_SIMPLE=1 adds floor-uring-simple), DIRECT (1:
# include wrk straight to the upstream), GATEWAY_BIN (rtc-gateway executable; skipped when unset), GATEWAY_CONF (its
# config; a draft one is generated when unset), ACCESS_LOG (1: also run the gateway with `access_log` to a file in
# the bench's temporary directory, as the contender `gateway-log`, to measure the log's cost), URING (1, the
# default: also run the gateway with `events io_uring;` as the contender `gateway-uring`), RAW_OUT (file to keep the raw
# per-round TSV).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-1}
RELAY_FLOOR=${RELAY_FLOOR:-1}
RTC_BENCH_BIN=${RTC_BENCH_BIN:-$BENCH_DIR/../.build/release/rtc-bench}
DIRECT=${DIRECT:-1}
UPSTREAM_PORT=18080
NGINX_PORT=18081
HAPROXY_PORT=18082
RELAY_PORT=18083 # floor-epoll; floor-uring on 18085, floor-uring-simple on 18088
GATEWAY_PORT=${GATEWAY_PORT:-18084}

bench_init
log "machine: $(machine_line)"

declare -A PID PORT
CONTENDERS=()

nginx_start upstream "$UPSTREAM_PORT" "
    server {
        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
        location / { return 200 \"ok\"; }
    }"
UPSTREAM_PID=$BENCH_LAST_PID
if [[ "$DIRECT" == 1 ]]; then
  CONTENDERS+=(direct)
  PID[direct]=$UPSTREAM_PID
  PORT[direct]=$UPSTREAM_PORT
fi

nginx_start nginx "$NGINX_PORT" "
    upstream backend {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
CONTENDERS+=(nginx)
PID[nginx]=$BENCH_LAST_PID
PORT[nginx]=$NGINX_PORT

haproxy_start haproxy "$HAPROXY_PORT" "
frontend fe
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend be
backend be
    http-reuse always
    server up 127.0.0.1:$UPSTREAM_PORT"
CONTENDERS+=(haproxy)
PID[haproxy]=$BENCH_LAST_PID
PORT[haproxy]=$HAPROXY_PORT

if [[ "$RELAY_FLOOR" == 1 ]]; then
  # 1:1 TCP relays that parse nothing: one upstream connection per client connection, bytes relayed.
  relay_floors_start "$RELAY_PORT" "$UPSTREAM_PORT"
fi

if [[ -n "${GATEWAY_BIN:-}" && -x "${GATEWAY_BIN:-}" ]]; then
  conf=${GATEWAY_CONF:-}
  if [[ -z "$conf" ]]; then
    # One worker, one upstream with a keep-alive pool, every path proxied.
    conf="$BENCH_TMP/gateway-http.conf"
    cat >"$conf" <<EOF
workers $PROXY_WORKERS;
listen 127.0.0.1:$GATEWAY_PORT;
admin 127.0.0.1:$((GATEWAY_PORT + 1000));
upstream bench {
    server 127.0.0.1:$UPSTREAM_PORT;
    keepalive 64;
}
route default {
    proxy http://bench;
}
EOF
  fi
  bench_start gateway "$GATEWAY_BIN" --config "$conf" --workers "$PROXY_WORKERS"
  wait_port "$GATEWAY_PORT" "$BENCH_LAST_PID"
  CONTENDERS+=(gateway)
  PID[gateway]=$BENCH_LAST_PID
  PORT[gateway]=$GATEWAY_PORT
  if uring_wanted; then
    # The same configuration on the io_uring backend (`events io_uring;`), on the next port but two.
    uring_port=$((GATEWAY_PORT + 3))
    uring_conf="$BENCH_TMP/gateway-http-uring.conf"
    {
      echo "events io_uring;"
      sed -e "s/127.0.0.1:$GATEWAY_PORT;/127.0.0.1:$uring_port;/" \
        -e "s/127.0.0.1:$((GATEWAY_PORT + 1000));/127.0.0.1:$((uring_port + 1000));/" "$conf"
    } >"$uring_conf"
    bench_start gateway-uring "$GATEWAY_BIN" --config "$uring_conf" --workers "$PROXY_WORKERS"
    wait_port "$uring_port" "$BENCH_LAST_PID"
    CONTENDERS+=(gateway-uring)
    PID[gateway-uring]=$BENCH_LAST_PID
    PORT[gateway-uring]=$uring_port
  fi
  if [[ "${ACCESS_LOG:-0}" == 1 ]]; then
    # The same configuration on the next port, writing one JSON line per request.
    log_port=$((GATEWAY_PORT + 2))
    log_conf="$BENCH_TMP/gateway-http-log.conf"
    sed -e "s/127.0.0.1:$GATEWAY_PORT;/127.0.0.1:$log_port;/" -e "s/127.0.0.1:$((GATEWAY_PORT + 1000));/127.0.0.1:$((log_port + 1000));/" \
      "$conf" >"$log_conf"
    echo "access_log $BENCH_TMP/access.log;" >>"$log_conf"
    bench_start gateway-log "$GATEWAY_BIN" --config "$log_conf" --workers "$PROXY_WORKERS"
    wait_port "$log_port" "$BENCH_LAST_PID"
    CONTENDERS+=(gateway-log)
    PID[gateway-log]=$BENCH_LAST_PID
    PORT[gateway-log]=$log_port
  fi
elif [[ -n "${GATEWAY_BIN:-}" ]]; then
  log "gateway: skipped: GATEWAY_BIN=$GATEWAY_BIN is not an executable (run 'make release' first)"
else
  log "gateway: skipped (set GATEWAY_BIN to the rtc-gateway executable, e.g. .build/release/rtc-gateway)"
fi

check_body ok
RAW="$BENCH_TMP/raw.tsv"
wrk_rounds "$RAW"
[[ ! -f "$BENCH_TMP/access.log" ]] || log "gateway-log wrote $(wc -l <"$BENCH_TMP/access.log") access log lines"

[[ -z "${RAW_OUT:-}" ]] || cp "$RAW" "$RAW_OUT"
echo
echo "## http-proxy: $(machine_line)"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds alternated; CPU = the proxy process (for 'direct': the upstream)"
echo
summarize "$RAW" nginx,haproxy rps:high:req/s us_per_req:low:µs/req other_cpu_pct:info:other-CPU-%
