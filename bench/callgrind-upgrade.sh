#!/usr/bin/env bash
# User-space instructions per WebSocket upgrade, counted by callgrind: rtc-gateway (release build, one worker, EVENTS
# backend) in front of `rtc-bench ws-echo`; `rtc-bench ws-upgrades` makes WARMUP upgrades, the counters are zeroed,
# UPGRADES more are made (each one connect + upgrade + one 16-byte echo + Close both ways, CONCURRENCY at a time)
# and the counters dumped; prints the instructions of the whole process divided by UPGRADES, and the calls per
# upgrade of the Swift runtime's reference-counting, exclusivity and allocation entry points (and malloc/free).
#
# Environment: BIN (rtc-gateway executable, .build/release/rtc-gateway), RTC_BENCH_BIN (.build/release/rtc-bench),
# EVENTS (epoll), WARMUP (500), UPGRADES (2000), CONCURRENCY (16), UPSTREAM_PORT (18565), GATEWAY_PORT (18566),
# TOP, INCLUSIVE, OUT (as in callgrind-request.sh).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=${BIN:-.build/release/rtc-gateway}
RTC_BENCH_BIN=${RTC_BENCH_BIN:-.build/release/rtc-bench}
EVENTS=${EVENTS:-epoll}
WARMUP=${WARMUP:-500}
UPGRADES=${UPGRADES:-2000}
CONCURRENCY=${CONCURRENCY:-16}
UPSTREAM_PORT=${UPSTREAM_PORT:-18565}
GATEWAY_PORT=${GATEWAY_PORT:-18566}

[[ -x "$BIN" ]] || die "BIN=$BIN is not an executable (swift build -c release --product rtc-gateway)"
[[ -x "$RTC_BENCH_BIN" ]] || die "RTC_BENCH_BIN=$RTC_BENCH_BIN is not an executable (swift build -c release --product rtc-bench)"
command -v valgrind >/dev/null || die "valgrind is not installed"

bench_init
log "machine: $(machine_line)"

bench_start upstream "$RTC_BENCH_BIN" ws-echo --port "$UPSTREAM_PORT" --workers 1
wait_port "$UPSTREAM_PORT" "$BENCH_LAST_PID"

conf="$BENCH_TMP/gw.conf"
gateway_ws_conf "$conf" "$GATEWAY_PORT" "$UPSTREAM_PORT" "$EVENTS"
echo "access_log off;" >>"$conf"

dump_prefix="$BENCH_TMP/callgrind.out"
bench_start gateway valgrind --tool=callgrind --callgrind-out-file="$dump_prefix" "$BIN" --config "$conf" --workers 1
GW_PID=$BENCH_LAST_PID
wait_port "$GATEWAY_PORT" "$GW_PID" 60

# upgrades N: N upgrades through the gateway; fails unless every one went through its whole exchange.
upgrades() {
  "$RTC_BENCH_BIN" ws-upgrades --url "ws://127.0.0.1:$GATEWAY_PORT/" --total "$1" --concurrency "$CONCURRENCY" >&2
}

upgrades "$WARMUP"
callgrind_control -z "$GW_PID" >/dev/null
upgrades "$UPGRADES"
callgrind_control -d "$GW_PID" >/dev/null
callgrind_report "$dump_prefix" "$UPGRADES" upgrade
