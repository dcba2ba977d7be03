#!/usr/bin/env bash
# Our HTTP server's 200 OK against nginx `return 200 "ok"`, both one worker: wrk -t1 -c50, contenders
# alternated over ROUNDS rounds; median req/s and server CPU µs per request, ratios against nginx.
#
# Environment: ROUNDS (5), DURATION seconds per run (5), CONNECTIONS (50), WARMUP seconds (1),
# SERVER_BIN (our server, started as `$SERVER_BIN $SERVER_ARGS --port PORT`; skipped when unset), SERVER_ARGS
# (words put before --port, e.g. "http-server" for rtc-bench; empty by default), SERVER_BODY (the body
# our server answers to GET /, checked before measuring; "ok"), RAW_OUT (file to keep the raw per-round TSV).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-1}
NGINX_PORT=18090
SERVER_PORT=${SERVER_PORT:-18091}

bench_init
log "machine: $(machine_line)"

declare -A PID PORT
CONTENDERS=()

nginx_start nginx "$NGINX_PORT" "
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / { return 200 \"ok\"; }
    }"
CONTENDERS+=(nginx)
PID[nginx]=$BENCH_LAST_PID
PORT[nginx]=$NGINX_PORT
check_body ok

if [[ -n "${SERVER_BIN:-}" && -x "${SERVER_BIN:-}" ]]; then
  read -r -a server_args <<<"${SERVER_ARGS:-}"
  bench_start server "$SERVER_BIN" "${server_args[@]}" --port "$SERVER_PORT"
  wait_port "$SERVER_PORT" "$BENCH_LAST_PID"
  PID[server]=$BENCH_LAST_PID
  PORT[server]=$SERVER_PORT
  body=$(curl -fsS "http://127.0.0.1:$SERVER_PORT/") || die "server: GET / failed"
  [[ "$body" == "${SERVER_BODY:-ok}" ]] || die "server answered '$body' instead of '${SERVER_BODY:-ok}'"
  CONTENDERS+=(server)
elif [[ -n "${SERVER_BIN:-}" ]]; then
  log "server: skipped: SERVER_BIN=$SERVER_BIN is not an executable (run 'make release' first)"
else
  log "server: skipped (set SERVER_BIN to our HTTP server executable, started as \$SERVER_BIN --port PORT)"
fi

RAW="$BENCH_TMP/raw.tsv"
wrk_rounds "$RAW"

[[ -z "${RAW_OUT:-}" ]] || cp "$RAW" "$RAW_OUT"
echo
echo "## http-server: $(machine_line)"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds alternated; CPU = the server process"
echo
summarize "$RAW" nginx rps:high:req/s us_per_req:low:µs/req other_cpu_pct:info:other-CPU-%
