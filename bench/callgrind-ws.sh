#!/usr/bin/env bash
# User-space instructions per WebSocket upgrade or per relayed echo, counted by callgrind: rtc-gateway (release build,
# one worker, EVENTS backend) in front of `rtc-bench ws-echo`; prints the instructions of the whole process divided by
# the units, and the calls per unit of the Swift runtime's reference-counting, exclusivity and allocation entry points
# (and malloc/free).
# - UNIT=upgrade (default): `rtc-bench ws-upgrades` makes WARMUP upgrades, the counters are zeroed, UPGRADES more are
#   made (each one connect + upgrade + one 16-byte echo + Close both ways, CONCURRENCY at a time), then dumped.
# - UNIT=echo: CONNECTIONS tunnels are opened and warmed by one second of `rtc-bench ws-load`, the counters are
#   zeroed, then `ws-load` keeps IN_FLIGHT messages of SIZE bytes in flight on each for DURATION and the counters are
#   dumped; the unit is one echo (a message through the gateway each way), as counted by ws-load. The run's
#   upgrades are in the count too: a few dozen against tens of thousands of echoes.
#
# Environment: BIN (rtc-gateway executable, .build/release/rtc-gateway), RTC_BENCH_BIN (.build/release/rtc-bench),
# EVENTS (epoll), UNIT (upgrade); for upgrades WARMUP (500), UPGRADES (2000), CONCURRENCY (16); for echoes
# CONNECTIONS (10), IN_FLIGHT (4), SIZE (64), DURATION (5 s); UPSTREAM_PORT (18565), GATEWAY_PORT (18566), TOP,
# INCLUSIVE, OUT (as in callgrind-request.sh).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=${BIN:-.build/release/rtc-gateway}
RTC_BENCH_BIN=${RTC_BENCH_BIN:-.build/release/rtc-bench}
EVENTS=${EVENTS:-epoll}
UNIT=${UNIT:-upgrade}
WARMUP=${WARMUP:-500}
UPGRADES=${UPGRADES:-2000}
CONCURRENCY=${CONCURRENCY:-16}
CONNECTIONS=${CONNECTIONS:-10}
IN_FLIGHT=${IN_FLIGHT:-4}
SIZE=${SIZE:-64}
DURATION=${DURATION:-5}
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

if [[ "$UNIT" == upgrade ]]; then
  # upgrades N: N upgrades through the gateway; fails unless every one went through its whole exchange.
  upgrades() {
    "$RTC_BENCH_BIN" ws-upgrades --url "ws://127.0.0.1:$GATEWAY_PORT/" --total "$1" --concurrency "$CONCURRENCY" >&2
  }
  upgrades "$WARMUP"
  callgrind_control -z "$GW_PID" >/dev/null
  upgrades "$UPGRADES"
  callgrind_control -d "$GW_PID" >/dev/null
  callgrind_report "$dump_prefix" "$UPGRADES" upgrade
elif [[ "$UNIT" == echo ]]; then
  # load S: ws-load through the gateway for S seconds; prints its echo count.
  load() {
    local line
    line=$("$RTC_BENCH_BIN" ws-load --url "ws://127.0.0.1:$GATEWAY_PORT/" --connections "$CONNECTIONS" \
      --in-flight "$IN_FLIGHT" --size "$SIZE" --duration "$1")
    echo "$line" >&2
    [[ "$line" =~ msgs=([0-9]+) ]] || die "ws-load printed no message count: $line"
    echo "${BASH_REMATCH[1]}"
  }
  load 1 >/dev/null
  callgrind_control -z "$GW_PID" >/dev/null
  echoes=$(load "$DURATION")
  callgrind_control -d "$GW_PID" >/dev/null
  callgrind_report "$dump_prefix" "$echoes" echo
else
  die "UNIT=$UNIT: upgrade or echo"
fi
