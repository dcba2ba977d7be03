#!/usr/bin/env bash
# Every side-by-side scenario in one go (item 6 of the performance issue): HTTP proxying, HTTP latency at half the
# better peer's maximum rate (TAIL=1, the default; TAIL=0 leaves it out; HTTP=0 leaves out both HTTP scenarios), WebSocket relay at 100 × 4 × 64 B and at
# 1,000 × 2 × 1 KiB, new upgrades, and idle tunnels; each with nginx, HAProxy, the relay floors (not for idle
# tunnels: their memory is a fixed table; not for the latency run) and rtc-gateway on epoll and on io_uring.
# Release builds; ROUNDS (5) alternated rounds per scenario; OUT (bench/out/compare-<UTC time>.md) collects the
# scripts' Markdown, one section per scenario with its command line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export ROUNDS=${ROUNDS:-5}
export GATEWAY_BIN=${GATEWAY_BIN:-.build/release/rtc-gateway}
export RTC_BENCH_BIN=${RTC_BENCH_BIN:-.build/release/rtc-bench}
TAIL=${TAIL:-1}
# shellcheck source=SCRIPTDIR/lib.sh
source bench/lib.sh # best_peer_rate
[[ -x "$GATEWAY_BIN" && -x "$RTC_BENCH_BIN" ]] || {
  echo "compare-all: build release first (make release)" >&2
  exit 1
}
OUT=${OUT:-bench/out/compare-$(date -u +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"
: >"$OUT"

# scenario TITLE ENV... -- SCRIPT: runs SCRIPT with the extra environment and appends its summary to OUT.
scenario() {
  local title=$1
  shift
  local env=()
  while [[ $1 != -- ]]; do
    env+=("$1")
    shift
  done
  shift
  local started
  started=$(date -u +%H:%M:%S)
  {
    echo "### $title — $(date -u +%Y-%m-%d) $started UTC"
    echo
    echo "Command: \`ROUNDS=$ROUNDS ${env[*]:+${env[*]} }GATEWAY_BIN=$GATEWAY_BIN bash $*\`"
    echo
  } >>"$OUT"
  env "${env[@]}" bash "$@" | sed -n '/^## /,$p' | sed 's/^## [a-z-]*: /Machine: /' >>"$OUT"
  echo >>"$OUT"
}

HTTP_RAW=$(mktemp /tmp/compare-http.XXXXXX)
trap 'rm -f "$HTTP_RAW"' EXIT
if [[ "${HTTP:-1}" == 1 ]]; then
  scenario "HTTP proxying" RAW_OUT="$HTTP_RAW" -- bench/http-proxy.sh
fi
if [[ "${HTTP:-1}" == 1 && "$TAIL" == 1 ]]; then
  # The better peer's maximum rate is the one just measured: http-tail.sh takes it as RATE and skips its own step 1
  # (it measures it itself when the HTTP run left no nginx or HAProxy row).
  rate=$(best_peer_rate "$HTTP_RAW" nginx,haproxy) || rate=""
  scenario "HTTP latency at half the better peer's maximum rate" ${rate:+RATE=${rate%% *}} -- bench/http-tail.sh
fi
scenario "WebSocket relay, 100 × 4 × 64 B" CLIENT=rtc ECHO=rtc -- bench/ws-throughput.sh
scenario "WebSocket relay, 1,000 × 2 × 1 KiB" CLIENT=rtc ECHO=rtc CONNS=1000 INFLIGHT=2 WS_SIZE=1024 -- \
  bench/ws-throughput.sh
scenario "New upgrades" -- bench/ws-upgrades.sh
scenario "Idle tunnels" -- bench/ws-idle.sh
echo "compare-all: $OUT" >&2
