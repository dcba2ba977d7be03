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
# direct, nginx, haproxy, the relay floors and the gateway contenders (lib.sh).
http_proxy_contenders_start

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
