# shellcheck shell=bash
# Shared helpers for the side-by-side benchmarks: start nginx/HAProxy/any server as children of this shell,
# wait for ports, read CPU time and RSS from /proc, run wrk, compute medians. Source it; do not execute it.
#
# Every server is started in the foreground as a direct child of the calling shell (never inside `$(...)`,
# whose subshell would exit and leave an orphan that PID 1 never reaps) and is stopped by pid from the
# EXIT/INT/TERM trap that bench_init installs.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PY:-/usr/bin/python3} # Debian's python3 sees python3-websockets; the pyenv one on PATH does not.
NGINX=${NGINX:-/usr/sbin/nginx}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
WRK=${WRK:-wrk}
CLK_TCK=$(getconf CLK_TCK)
BENCH_PIDS=()
declare -A BENCH_LOG_OF=()
BENCH_TMP=""
BENCH_LAST_PID=""

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# bench_init: make the temp dir and install the trap that stops every child started with bench_start.
bench_init() {
  BENCH_TMP=$(mktemp -d /tmp/bench.XXXXXX)
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    bench_wait_exit "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [[ -n "$BENCH_TMP" && -d "$BENCH_TMP" && -z "${BENCH_KEEP_TMP:-}" ]]; then
    rm -rf "$BENCH_TMP"
  fi
}

# bench_wait_exit PID TENTHS: poll until PID is gone (returns 1 if it is still there after TENTHS/10 s).
bench_wait_exit() {
  local pid=$1 tries=${2:-50}
  while ((tries-- > 0)); do
    kill -0 "$pid" 2>/dev/null || return 0
    # A zombie child still answers kill -0: look at its state.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
    sleep 0.1
  done
  return 1
}

# bench_start NAME CMD...: start CMD in the background (stdout+stderr to $BENCH_TMP/NAME.log);
# the pid is left in BENCH_LAST_PID and recorded for cleanup.
bench_start() {
  local name=$1
  shift
  "$@" >"$BENCH_TMP/$name.log" 2>&1 &
  BENCH_LAST_PID=$!
  BENCH_PIDS+=("$BENCH_LAST_PID")
  BENCH_LOG_OF[$BENCH_LAST_PID]="$BENCH_TMP/$name.log"
}

# bench_stop PID: stop one child now (TERM, then KILL after 5 s) and forget it.
bench_stop() {
  local pid=$1 p keep=()
  kill -TERM "$pid" 2>/dev/null || true
  bench_wait_exit "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${BENCH_PIDS[@]}"; do
    [[ "$p" == "$pid" ]] || keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
}

# wait_port PORT [PID] [TIMEOUT_S]: poll 127.0.0.1:PORT until it accepts; fail early if PID died.
wait_port() {
  local port=$1 pid=${2:-} timeout=${3:-10} deadline
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "process $pid died before port $port opened; its output:"
      tail -n 20 "${BENCH_LOG_OF[$pid]:-/dev/null}" >&2 || true
      die "process $pid exited early"
    fi
    sleep 0.05
  done
  die "port $port did not open within ${timeout}s"
}

# PROXY_WORKERS (1): workers of the proxies under test: nginx `worker_processes` (with a master process when more
# than one), HAProxy `nbthread`; the scripts pass it to rtc-gateway as `--workers`.
PROXY_WORKERS=${PROXY_WORKERS:-1}

# nginx_start NAME PORT_TO_WAIT HTTP_BLOCK_BODY: one process (master_process off), one worker, logs and pid in
# a temp dir (PROXY_WORKERS > 1: a master and that many workers). HTTP_BLOCK_BODY is inserted inside `http { }`.
# Leaves the pid in BENCH_LAST_PID.
nginx_start() {
  local name=$1 port=$2 body=$3 dir="$BENCH_TMP/$1" master=off workers=1
  if [[ "$name" != upstream ]] && ((PROXY_WORKERS > 1)); then
    master=on
    workers=$PROXY_WORKERS
  fi
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process $master;
worker_processes $workers;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 19000;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
$body
}
EOF
  bench_start "$name" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
  wait_port "$port" "$BENCH_LAST_PID"
}

# haproxy_start NAME PORT_TO_WAIT CONFIG_BODY: one process, one thread (-db keeps it in the foreground).
# CONFIG_BODY follows the generated `global` and `defaults` sections.
haproxy_start() {
  local name=$1 port=$2 body=$3 dir="$BENCH_TMP/$1"
  mkdir -p "$dir"
  cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread $PROXY_WORKERS
    maxconn 9500
    pidfile $dir/haproxy.pid
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout tunnel 1h
    timeout http-keep-alive 300s
$body
EOF
  bench_start "$name" "$HAPROXY" -db -f "$dir/haproxy.cfg"
  wait_port "$port" "$BENCH_LAST_PID"
}

# proc_tree PID: PID and all its descendants (a gateway may fork workers), from /proc/PID/task/*/children.
# Reads only these processes: scanning all of /proc races with processes that exit meanwhile.
proc_tree() {
  local queue=("$1") p kids
  while ((${#queue[@]})); do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    [[ -d "/proc/$p" ]] || continue
    echo "$p"
    kids=$(cat /proc/"$p"/task/*/children 2>/dev/null) || true
    # shellcheck disable=SC2206 # word splitting of the pid list is the point
    queue+=($kids)
  done
}

# proc_cpu_ticks PID: utime+stime (all threads) of PID and its descendants, in clock ticks.
proc_cpu_ticks() {
  local p total=0 t
  for p in $(proc_tree "$1"); do
    # Fields after the "(comm)" part: state is 1, utime is 12, stime is 13 (stat fields 14 and 15).
    t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

# proc_cpu_seconds PID: proc_cpu_ticks converted with getconf CLK_TCK.
proc_cpu_seconds() {
  awk -v t="$(proc_cpu_ticks "$1")" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f\n", t / hz }'
}

# proc_rss_kib PID: VmRSS of PID and its descendants, KiB.
proc_rss_kib() {
  local p total=0 r
  for p in $(proc_tree "$1"); do
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || r=0
    total=$((total + ${r:-0}))
  done
  echo "$total"
}

# rss_settle PID: poll RSS every 0.5 s until two readings differ by < 0.5 % (at most 15 s); print it.
rss_settle() {
  local pid=$1 prev cur i
  prev=$(proc_rss_kib "$pid")
  for ((i = 0; i < 30; i++)); do
    sleep 0.5
    cur=$(proc_rss_kib "$pid")
    if awk -v a="$prev" -v b="$cur" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d * 200 <= b) }'; then
      break
    fi
    prev=$cur
  done
  echo "$cur"
}

# wrk_run URL DURATION_S CONNECTIONS [THREADS]: run wrk; print "REQS_PER_S TOTAL_REQUESTS ERRORS".
# ERRORS counts socket errors plus non-2xx/3xx responses; the full output stays in $BENCH_TMP/wrk.last.
wrk_run() {
  local url=$1 dur=$2 conns=$3 threads=${4:-1}
  "$WRK" -t"$threads" -c"$conns" -d"${dur}s" "$url" >"$BENCH_TMP/wrk.last" 2>&1 ||
    die "wrk failed: $(cat "$BENCH_TMP/wrk.last")"
  awk '
    /Requests\/sec:/ { rps = $2 }
    / requests in / { total = $1 }
    /Socket errors:/ { gsub(/,/, ""); errs += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { errs += $5 }
    END { if (rps == "") exit 1; printf "%s %s %d\n", rps, total, errs }' "$BENCH_TMP/wrk.last" ||
    die "cannot parse wrk output: $(cat "$BENCH_TMP/wrk.last")"
}

# median NUM...: median of the arguments (mean of the two middle values for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit 1
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# rotate N ITEMS...: ITEMS rotated left by N (round r starts with a different contender).
rotate() {
  local n=$1
  shift
  local items=("$@") count=$# i
  for ((i = 0; i < count; i++)); do
    printf '%s\n' "${items[$(((i + n) % count))]}"
  done
}

# machine_line: what RESULTS.md records about the machine.
machine_line() {
  echo "nproc $(nproc), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
}

# summarize TSV PEERS METRIC...: median table (markdown) of a raw TSV with columns round, contender, metrics;
# PEERS is a comma list of the reference contenders; METRIC is column:high|low:label.
summarize() {
  "$PY" "$BENCH_DIR/summarize.py" "$@"
}

# check_body EXPECTED: every contender in CONTENDERS (ports in the PORT map) answers GET / with EXPECTED.
check_body() {
  local c body
  # shellcheck disable=SC2153 # PORT is the caller's global map

  for c in "${CONTENDERS[@]}"; do
    body=$(curl -fsS "http://127.0.0.1:${PORT[$c]}/") || die "$c: GET / failed"
    [[ "$body" == "$1" ]] || die "$c answered '$body' instead of '$1'"
  done
}

# machine_busy_ticks: user+nice+system+steal ticks of the whole machine (/proc/stat; irq/softirq left out
# because loopback traffic is charged there rather than to our processes).
machine_busy_ticks() {
  awk '/^cpu / { print $2 + $3 + $4 + $9; exit }' /proc/stat
}

# own_ticks: CPU ticks of everything this benchmark runs: each started server (and its children) plus the
# waited-for children of this shell (wrk, helpers: cutime+cstime of $$).
own_ticks() {
  local p total=0
  for p in "${BENCH_PIDS[@]}"; do
    total=$((total + $(proc_cpu_ticks "$p")))
  done
  echo $((total + $(sed 's/.*) //' "/proc/$$/stat" | awk '{print $14 + $15}')))
}

# wrk_rounds RAW_TSV: warm each contender up (WARMUP s), then ROUNDS rounds, each running wrk against every
# contender in turn (the order rotates each round); per run, CPU ticks of PID[c] and its children are read
# before and after. Uses the globals CONTENDERS, PID, PORT, ROUNDS, DURATION, CONNECTIONS, WARMUP, WRK_PATH,
# MAX_OTHER_PCT, NOISY_RETRIES.
wrk_rounds() {
  local raw=$1 r c t0 t1 rps total errs us order b0 b1 o0 o1 other
  local path=${WRK_PATH:-/} attempt
  # A run during which processes that are not ours used more than MAX_OTHER_PCT % of a core is run again,
  # at most NOISY_RETRIES times (the last attempt is kept either way; its other-CPU-% is in the table).
  MAX_OTHER_PCT=${MAX_OTHER_PCT:-25}
  NOISY_RETRIES=${NOISY_RETRIES:-2}
  for c in "${CONTENDERS[@]}"; do
    if ((WARMUP > 0)); then wrk_run "http://127.0.0.1:${PORT[$c]}$path" "$WARMUP" "$CONNECTIONS" >/dev/null; fi
  done
  log "contenders: ${CONTENDERS[*]}; $ROUNDS rounds of ${DURATION}s, wrk -t1 -c$CONNECTIONS"
  printf 'round\tcontender\trps\tus_per_req\tother_cpu_pct\terrors\n' >"$raw"
  for ((r = 1; r <= ROUNDS; r++)); do
    mapfile -t order < <(rotate $((r - 1)) "${CONTENDERS[@]}")
    for c in "${order[@]}"; do
      for ((attempt = 0; attempt <= NOISY_RETRIES; attempt++)); do
        t0=$(proc_cpu_ticks "${PID[$c]}")
        o0=$(own_ticks)
        b0=$(machine_busy_ticks)
        wrk_run "http://127.0.0.1:${PORT[$c]}$path" "$DURATION" "$CONNECTIONS" >"$BENCH_TMP/wrk.parsed"
        b1=$(machine_busy_ticks)
        o1=$(own_ticks)
        t1=$(proc_cpu_ticks "${PID[$c]}")
        read -r rps total errs <"$BENCH_TMP/wrk.parsed"
        # CPU used by processes that are not ours during the run, in % of one core: high means a noisy run.
        other=$(awk -v d=$(((b1 - b0) - (o1 - o0))) -v hz="$CLK_TCK" -v s="$DURATION" \
          'BEGIN { v = d / hz / s * 100; printf "%.0f", v < 0 ? 0 : v }')
        us=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$total" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
        ((other > MAX_OTHER_PCT && attempt < NOISY_RETRIES)) || break
        log "round $r $c: other processes used ${other}% of a core (> MAX_OTHER_PCT=$MAX_OTHER_PCT): run again"
      done
      printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$rps" "$us" "$other" "$errs" >>"$raw"
      log "round $r $c: $rps req/s, $us µs CPU/request, other processes ${other}% of a core, $errs errors"
      ((errs == 0)) || log "warning: $c had $errs errors"
    done
  done
}

# wait_line FILE REGEX PID TIMEOUT_S: poll until FILE has a line matching REGEX; print that line.
wait_line() {
  local file=$1 re=$2 pid=$3 timeout=${4:-120} deadline line
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    line=$(grep -E -m1 "$re" "$file" 2>/dev/null) && {
      echo "$line"
      return 0
    }
    if ! kill -0 "$pid" 2>/dev/null || [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]]; then
      tail -n 20 "$file" >&2 || true
      die "process $pid exited before printing /$re/"
    fi
    sleep 0.2
  done
  tail -n 20 "$file" >&2 || true
  die "no /$re/ in $file within ${timeout}s"
}

# nginx_ws_body LISTEN_PORT UPSTREAM_PORT: nginx http{} body proxying WebSocket upgrades to the upstream.
nginx_ws_body() {
  cat <<EOF2
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        '' close;
    }
    server {
        listen 127.0.0.1:$1 backlog=4096;
        location / {
            proxy_pass http://127.0.0.1:$2;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
EOF2
}

# haproxy_ws_body LISTEN_PORT UPSTREAM_PORT: HAProxy `mode http` frontend/backend (upgrades are automatic;
# the generated defaults carry `timeout tunnel 1h`).
haproxy_ws_body() {
  cat <<EOF2
frontend fe
    bind 127.0.0.1:$1
    default_backend be
backend be
    server up 127.0.0.1:$2
EOF2
}

# gateway_ws_conf FILE LISTEN_PORT UPSTREAM_PORT [EVENTS]: an rtc-gateway config (one worker, admin on
# LISTEN_PORT+1000) proxying WebSocket upgrades to one upstream, on the `events` backend EVENTS when given.
# gateway_http_conf FILE PORT UPSTREAM_PORT WORKERS [LINE...]: the gateway's HTTP proxy configuration of the
# benchmarks: WORKERS workers, one upstream with a keep-alive pool, every path proxied, admin on PORT + 1000; the
# extra LINEs (e.g. `access_log off;`) go after the listener.
gateway_http_conf() {
  local file=$1 port=$2 upstream=$3 workers=$4
  shift 4
  {
    echo "workers $workers;"
    echo "listen 127.0.0.1:$port;"
    echo "admin 127.0.0.1:$((port + 1000));"
    local line
    for line in "$@"; do echo "$line"; done
    cat <<EOF
upstream bench {
    server 127.0.0.1:$upstream;
    keepalive 64;
}
route default {
    proxy http://bench;
}
EOF
  } >"$file"
}

gateway_ws_conf() {
  {
    [[ -z "${4:-}" ]] || echo "events $4;"
    cat <<EOF2
workers 1;
listen 127.0.0.1:$2;
admin 127.0.0.1:$(($2 + 1000));
timeouts {
    tunnel_idle 1h;
}
upstream bench {
    server 127.0.0.1:$3;
}
route default {
    websocket on;
    proxy http://bench;
}
EOF2
  } >"$1"
}

# gateway_ws_start NAME PORT UPSTREAM_PORT [EVENTS]: when GATEWAY_BIN is an executable, start it (`--workers 1`)
# with GATEWAY_CONF or, when unset, a gateway_ws_conf config proxying PORT to UPSTREAM_PORT (on backend EVENTS when
# given: GATEWAY_CONF is then not used), and wait for PORT; the pid is left in BENCH_LAST_PID. Returns 1 and logs
# why when GATEWAY_BIN is unset or not an executable.
gateway_ws_start() {
  local name=$1 port=$2 upstream=$3 events=${4:-} conf
  if [[ -z "${GATEWAY_BIN:-}" ]]; then
    log "$name: skipped (set GATEWAY_BIN to the rtc-gateway executable, e.g. .build/release/rtc-gateway)"
    return 1
  fi
  if [[ ! -x "$GATEWAY_BIN" ]]; then
    log "$name: skipped: GATEWAY_BIN=$GATEWAY_BIN is not an executable (run 'make release' first)"
    return 1
  fi
  if [[ -n "$events" ]]; then
    conf=$BENCH_TMP/gateway-ws-$events.conf
    gateway_ws_conf "$conf" "$port" "$upstream" "$events"
  else
    conf=${GATEWAY_CONF:-$BENCH_TMP/gateway-ws.conf}
    [[ -n "${GATEWAY_CONF:-}" ]] || gateway_ws_conf "$conf" "$port" "$upstream"
  fi
  bench_start "$name" "$GATEWAY_BIN" --config "$conf" --workers 1
  wait_port "$port" "$BENCH_LAST_PID"
}

# uring_wanted: whether to add the gateway on io_uring as a contender (URING=1, the default, and io_uring usable).
uring_wanted() {
  [[ "${URING:-1}" == 1 ]] || return 1
  if ! grep -qx 0 /proc/sys/kernel/io_uring_disabled 2>/dev/null && [[ -e /proc/sys/kernel/io_uring_disabled ]]; then
    log "gateway-uring: skipped: kernel.io_uring_disabled is $(cat /proc/sys/kernel/io_uring_disabled)"
    return 1
  fi
}

# contender_cpu_pids C: comma list of the processes whose CPU counts for contender C: every pid of the comma
# list PID[C] (the caller's global map) and its descendants.
contender_cpu_pids() {
  local p out=()
  # shellcheck disable=SC2153 # PID is the caller's global map
  for p in ${PID[$1]//,/ }; do
    mapfile -t -O "${#out[@]}" out < <(proc_tree "$p")
  done
  (
    IFS=,
    echo "${out[*]}"
  )
}

# relay_floors_start FIRST_PORT UPSTREAM_PORT: start `rtc-bench relay` ($RTC_BENCH_BIN, a release build) in front
# of 127.0.0.1:UPSTREAM_PORT as the parse-nothing floors: floor-epoll (edge-triggered epoll) on FIRST_PORT,
# floor-uring (io_uring, multishot accept and recv, provided buffers) on FIRST_PORT+2 and, with
# FLOOR_URING_SIMPLE=1, floor-uring-simple (io_uring, one recv per side in flight) on FIRST_PORT+5 (with the
# scripts' RELAY_PORT, +1, +3 and +4 are gateway, gateway-log and gateway-uring). Each is added to CONTENDERS, PID
# and PORT (the caller's globals). They are not peers: summarize's ratios use nginx and HAProxy only. A backend
# whose `relay --probe` fails here (io_uring disabled) is left out with a log line; so are all of them when
# RTC_BENCH_BIN is not an executable.
relay_floors_start() {
  local first=$1 upstream=$2 spec name backend port
  if [[ ! -x "${RTC_BENCH_BIN:-}" ]]; then
    log "relay floors: skipped: RTC_BENCH_BIN=${RTC_BENCH_BIN:-} is not an executable" \
      "(swift build -c release --product rtc-bench)"
    return 0
  fi
  for spec in floor-epoll:epoll:0 floor-uring:uring-multishot:2 floor-uring-simple:uring:5; do
    IFS=: read -r name backend port <<<"$spec"
    port=$((first + port))
    [[ "$name" != floor-uring-simple || "${FLOOR_URING_SIMPLE:-0}" == 1 ]] || continue
    if ! "$RTC_BENCH_BIN" relay --backend "$backend" --probe >"$BENCH_TMP/$name.probe" 2>&1; then
      log "$name: skipped: $(cat "$BENCH_TMP/$name.probe")"
      continue
    fi
    bench_start "$name" "$RTC_BENCH_BIN" relay --listen "127.0.0.1:$port" --upstream "127.0.0.1:$upstream" \
      --backend "$backend"
    wait_port "$port" "$BENCH_LAST_PID"
    CONTENDERS+=("$name")
    PID[$name]=$BENCH_LAST_PID
    PORT[$name]=$port
  done
}

# http_proxy_contenders_start: the HTTP proxying contenders of http-proxy.sh and http-tail.sh, in front of one nginx
# `return 200 "ok"` upstream on UPSTREAM_PORT (its pid left in UPSTREAM_PID): `direct` (DIRECT=1: the client straight
# to the upstream), nginx on NGINX_PORT (proxy_pass, keepalive 64), HAProxy on HAPROXY_PORT (`http-reuse always`),
# the relay floors from RELAY_PORT on (RELAY_FLOOR=1, see relay_floors_start), and, when GATEWAY_BIN is an
# executable, the gateway on GATEWAY_PORT (GATEWAY_CONF or a generated config), `gateway-uring` (`events io_uring;`,
# on GATEWAY_PORT + 3, when uring_wanted) and `gateway-log` (ACCESS_LOG=1: `access_log` to a file in the temp dir, on
# GATEWAY_PORT + 2); otherwise a `gateway: skipped` line. Each is added to CONTENDERS, PID and PORT (the caller's
# globals, PID and PORT declared with `declare -A`) in that order.
# shellcheck disable=SC2154 # PID and PORT are the caller's associative arrays: their keys are names, not variables
http_proxy_contenders_start() {
  local conf uring_port uring_conf log_port log_conf
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
      conf="$BENCH_TMP/gateway-http.conf"
      gateway_http_conf "$conf" "$GATEWAY_PORT" "$UPSTREAM_PORT" "$PROXY_WORKERS"
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
}

# ensure_tool COMMAND [PACKAGE]: when COMMAND is not on PATH, install the Debian PACKAGE (default: COMMAND) with
# apt-get (as root; otherwise stop and say what to install), as `make deps` does; nothing when it is present.
ensure_tool() {
  local cmd=$1 pkg=${2:-$1}
  command -v "$cmd" >/dev/null && return 0
  ((EUID == 0)) || die "$cmd is missing: install the Debian package $pkg (apt-get install $pkg, or make deps)"
  log "$cmd is missing: apt-get install -y $pkg"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg"; } \
    >"${BENCH_TMP:-/tmp}/apt-$pkg.log" 2>&1 || die "apt-get install $pkg failed: $(tail -n 5 "${BENCH_TMP:-/tmp}/apt-$pkg.log")"
  command -v "$cmd" >/dev/null || die "$pkg is installed but $cmd is still not on PATH"
}

# best_peer_rate RAW_TSV PEERS: the best median of the rps column of a wrk_rounds TSV among the comma list PEERS,
# as "RATE CONTENDER" (rate rounded to an integer); fails when no peer has a row.
best_peer_rate() {
  local raw=$1 peers=$2 p m best="" who=""
  for p in ${peers//,/ }; do
    # shellcheck disable=SC2046 # one word per value is the point
    m=$(median $(awk -F'\t' -v c="$p" 'NR > 1 && $2 == c { print $3 }' "$raw")) || continue
    [[ -n "$m" ]] || continue
    if [[ -z "$best" ]] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a > b) }'; then
      best=$m
      who=$p
    fi
  done
  [[ -n "$best" ]] || return 1
  printf '%.0f %s\n' "$best" "$who"
}

# callgrind_report PREFIX N UNIT: after `callgrind_control -d` of a process started with
# --callgrind-out-file=PREFIX, waits for its dumps (PREFIX.1, ...) and prints the instructions of the whole process
# (all threads) divided by N, and the calls per UNIT of the Swift runtime's reference-counting, exclusivity and
# allocation entry points. TOP=1 adds the 30 functions with the highest self cost, INCLUSIVE=1 the 30 highest
# inclusive costs; OUT (environment) keeps the dump files there.
callgrind_report() {
  local prefix=$1 n=$2 unit=$3 total=0 f t
  local -a dumps
  # The dump is written by the dumping thread shortly after callgrind_control returns: wait for it to appear.
  for _ in $(seq 1 100); do
    compgen -G "$prefix.*" >/dev/null && break
    sleep 0.1
  done
  sleep 0.5
  mapfile -t dumps < <(compgen -G "$prefix.*" || true)
  ((${#dumps[@]})) || die "no callgrind dump written"

  # Each dump holds every thread (callgrind does not separate them by default): its "summary:"/"totals:" line is the
  # instructions of the whole process.
  total=0
  for f in "${dumps[@]}"; do
    t=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    total=$((total + ${t:-0}))
  done
  awk -v t="$total" -v n="$n" -v unit="$unit" 'BEGIN { printf "instructions per " unit ": %.0f (%d over %d " unit "s)\n", t / n, t, n }'

  # Calls per UNIT of the runtime entry points (from the call-graph lines of every dump).
  "$PY" "$BENCH_DIR/callgrind_calls.py" "$n" "$unit" "${dumps[@]}"

  # Swift symbols readable when the toolchain's swift-demangle is on PATH.
  demangle() {
    if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi
  }

  if [[ "${TOP:-0}" == 1 ]]; then
    echo
    echo "top 30 functions by self cost (instructions over all $n ${unit}s):"
    # (Functions still on the stack when the counters were zeroed show the whole total: left out.)
    callgrind_annotate --threshold=100 "${dumps[@]}" 2>/dev/null | sed -n '/file:function/,$p' |
      grep -v "(100.0%)" | demangle | head -n 32 || true
  fi
  if [[ "${INCLUSIVE:-0}" == 1 ]]; then
    echo
    echo "top 30 functions by inclusive cost:"
    callgrind_annotate --inclusive=yes --threshold=100 "${dumps[@]}" 2>/dev/null | sed -n '/file:function/,$p' |
      demangle | head -n 32 || true
  fi
  if [[ -n "${OUT:-}" ]]; then
    for f in "${dumps[@]}"; do cp "$f" "$OUT.${f##*.}"; done
    log "callgrind output kept in $OUT.*"
  fi
}
