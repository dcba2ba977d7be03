#!/usr/bin/env bash
# The local stack: Redis, the librdkafka mock Kafka cluster, dnsmasq answering the cluster names, one rtc-balancer,
# socket nodes on their own 127.0.0.x, Prometheus scraping all three programs, and rtc-gateway in front.
# `make run` calls `stack.sh up`; the end-to-end tests (Tests/SystemTests) and the bench scenarios start the same
# stack with their own --net and --dir. Every program's log and pid file is under --dir.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/stack.sh up [options]         start the whole stack, print what to try, run until Ctrl-C
       bench/stack.sh node N [options]     run socket node N in the foreground (joins a running stack)
       bench/stack.sh redis [options]      run the stack's Redis in the foreground (after it was stopped)
       bench/stack.sh stop [options]       stop whatever a stack left running in --dir
options:
  --bin DIR        the programs' directory (default .build/release)
  --dir DIR        state: logs/, pids/, generated configs (default .run); emptied by `up`
  --net A.B.C      the /24 of loopback addresses (default 127.0.0): gateway and dnsmasq on .1, balancer .2,
                   Redis .3, Prometheus .4, socket node N on .(10+N)
  --nodes N        socket nodes `up` starts (default 2; names for up to 9 are published in DNS)
  --gateways N     gateway processes sharing the public port with SO_REUSEPORT (default 1); process K > 1 has its
                   admin listener on port 9113 + K - 1 (one process holds about 9,900 tunnels under a 20,000-file limit)
  --no-prometheus  skip Prometheus
Tunables come from the environment when set: RING_SECRET, HEARTBEAT_INTERVAL_SEC, HEARTBEAT_TTL_SEC,
DRAIN_SECONDS, MOVE_WINDOW_SEC, RECONCILE_INTERVAL_SEC, SOCKET_URL_FORM, GATEWAY_WORKERS.
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command="${1:-}"
[ -n "$command" ] || { usage >&2; exit 2; }
shift
case "$command" in -h | --help | help) usage; exit 0 ;; esac

bin="$root/.build/release"
dir="$root/.run"
net="127.0.0"
nodes=2
gateways=1
prometheus=1
node_index=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$(cd "$2" && pwd)"; shift 2 ;;
    --dir) mkdir -p "$2"; dir="$(cd "$2" && pwd)"; shift 2 ;;
    --net) net="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --gateways) gateways="$2"; shift 2 ;;
    --no-prometheus) prometheus=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *)
      if [ "$command" = node ] && [ -z "$node_index" ] && [[ "$1" =~ ^[1-9]$ ]]; then
        node_index="$1"; shift
      else
        echo "stack.sh: unknown argument '$1'" >&2; usage >&2; exit 2
      fi
      ;;
  esac
done
[[ "$net" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "stack.sh: --net must be 127.B.C, got '$net'" >&2; exit 2; }
[[ "$nodes" =~ ^[1-9]$ ]] || { echo "stack.sh: --nodes must be 1 to 9, got '$nodes'" >&2; exit 2; }
[[ "$gateways" =~ ^[1-9][0-9]?$ ]] || { echo "stack.sh: --gateways must be 1 to 99, got '$gateways'" >&2; exit 2; }

logs="$dir/logs"
pids="$dir/pids"
gateway_host="$net.1"
dns_port=5353
balancer_host="$net.2"
balancer_port=8081
redis_host="$net.3"
redis_port=6379
prometheus_host="$net.4"
prometheus_port=9090
socket_port=8080
namespace=rtc
balancer_name="rtc-balancer.$namespace.svc.cluster.local"
socket_domain="socket.$namespace.svc.cluster.local"

export RING_SECRET="${RING_SECRET:-local-ring-secret}"
export HEARTBEAT_INTERVAL_SEC="${HEARTBEAT_INTERVAL_SEC:-1}"
export HEARTBEAT_TTL_SEC="${HEARTBEAT_TTL_SEC:-3}"
export DRAIN_SECONDS="${DRAIN_SECONDS:-5}"
export MOVE_WINDOW_SEC="${MOVE_WINDOW_SEC:-2}"
export RECONCILE_INTERVAL_SEC="${RECONCILE_INTERVAL_SEC:-1}"
export SOCKET_URL_FORM="${SOCKET_URL_FORM:-name}"

say() { echo "stack: $*"; }
die() { echo "stack: $*" >&2; exit 1; }
socket_host() { echo "$net.$((10 + $1))"; }

# Waits until `$2...` succeeds, at most $1 seconds; fails with the component's log when its process is gone.
wait_for() {
  local seconds="$1" name="$2" pidfile="$pids/$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" > /dev/null 2>&1; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2> /dev/null; then
      tail -n 30 "$logs/$name.log" >&2 || true
      die "$name exited during start-up (log: $logs/$name.log)"
    fi
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$logs/$name.log" >&2 || true; die "$name not ready after ${seconds} s (log: $logs/$name.log)"; }
    sleep 0.1
  done
}

http_ok() { curl -fsS --max-time 2 -o /dev/null "$1"; }

# A recorded pid is ours only while its command line still names the program (pids are reused).
alive_pid() {
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null | grep -q -- "$(basename "$pidfile" | sed 's/-[0-9]*$//')" || return 1
  echo "$pid"
}

# Stops one component: SIGTERM, then SIGKILL after $2 seconds.
stop_one() {
  local name="$1" grace="${2:-10}" pid
  pid="$(alive_pid "$pids/$name")" || { rm -f "$pids/$name"; return 0; }
  kill -TERM "$pid" 2> /dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2> /dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2> /dev/null)" != Z ]; do
    if [ $SECONDS -ge $deadline ]; then
      kill -KILL "$pid" 2> /dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$pids/$name"
}

# Gateway first (clients go away through its drain), then the programs behind it, then what they use.
stop_all() {
  local name
  for name in $(ls "$pids" 2> /dev/null | grep '^gateway' || true); do stop_one "$name" 10; done
  for name in $(ls "$pids" 2> /dev/null | grep '^socket-' || true); do stop_one "$name" 10; done
  stop_one balancer 10
  stop_one prometheus 10
  stop_one kafka 10
  stop_one redis 10
  stop_one dnsmasq 10
}

# --- components, each run in the foreground of its own process (exec), its pid in pids/<name> ---

run_redis() {
  mkdir -p "$dir/redis" "$logs" "$pids"
  echo $$ > "$pids/redis"
  exec redis-server --bind "$redis_host" --port "$redis_port" --save '' --appendonly yes --appendfsync always --dir "$dir/redis" \
    --logfile '' --protected-mode no >> "$logs/redis.log" 2>&1
}

run_node() {
  local index="$1" host
  host="$(socket_host "$index")"
  [ -f "$dir/kafka.bootstrap" ] || die "no running stack in $dir (no kafka.bootstrap)"
  mkdir -p "$logs" "$pids" "$dir/targets"
  echo $$ > "$pids/socket-$index"
  echo "[{\"targets\": [\"$host:$socket_port\"], \"labels\": {\"node\": \"socket-$index\"}}]" > "$dir/targets/socket-$index.json"
  NODE_ID="socket-$index" POD_NAMESPACE="$namespace" BIND_ADDRESS="$host" POD_IP="$host" HTTP_PORT="$socket_port" \
    REDIS_URL="redis://$redis_host:$redis_port" KAFKA_BOOTSTRAP="$(cat "$dir/kafka.bootstrap")" \
    exec "$bin/rtc-socket" >> "$logs/socket-$index.log" 2>&1
}

write_dns_hosts() {
  {
    echo "$gateway_host gateway.$namespace.svc.cluster.local"
    echo "$balancer_host $balancer_name"
    local index host
    for index in 1 2 3 4 5 6 7 8 9; do
      host="$(socket_host "$index")"
      # Both forms a cluster publishes: the pod name (CoreDNS endpoint_pod_names) and the dashed address.
      echo "$host socket-$index.$socket_domain ${host//./-}.$socket_domain"
    done
  } > "$dir/dns-hosts"
}

write_prometheus_config() {
  cat > "$dir/prometheus.yml" <<EOF
# Generated by bench/stack.sh: every program of the local stack, scraped every second.
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rtc-gateway
    static_configs:
      - targets: ['$gateway_host:9113']
  - job_name: rtc-balancer
    static_configs:
      - targets: ['$balancer_host:$balancer_port']
  # Each socket node adds its file to targets/ as it starts (file-based discovery, like pods appearing).
  - job_name: rtc-socket
    file_sd_configs:
      - files: ['$dir/targets/*.json']
EOF
}

# The shipped gateway-config/local.conf serves 127.0.0.x; another --net gets a copy with its addresses.
gateway_config() {
  if [ "$net" = 127.0.0 ]; then
    echo "$root/gateway-config/local.conf"
  else
    sed "s/127\.0\.0\./$net./g" "$root/gateway-config/local.conf" > "$dir/gateway.conf"
    echo "$dir/gateway.conf"
  fi
}

# Starts `$2...` in the background, in a session of its own (Ctrl-C reaches the stack, which stops it in
# order), with its log in logs/$1.log and its pid in pids/$1.
start() {
  local name="$1"
  shift
  setsid "$@" >> "$logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$pids/$name"
}

# Starts a stack command of this script (node, redis) as a component.
start_self() {
  local name="$1"
  shift
  setsid bash "${BASH_SOURCE[0]}" "$@" --bin "$bin" --dir "$dir" --net "$net" < /dev/null > /dev/null 2>&1 &
  local deadline=$((SECONDS + 5))
  until [ -f "$pids/$name" ]; do
    [ $SECONDS -lt $deadline ] || die "$name did not start"
    sleep 0.05
  done
}

up() {
  for program in rtc-gateway rtc-balancer rtc-socket rtc-bench; do
    [ -x "$bin/$program" ] || die "no $bin/$program: build first (make release)"
  done
  for tool in redis-server dnsmasq curl setsid; do
    command -v "$tool" > /dev/null || die "$tool is missing: run make deps"
  done
  [ "$prometheus" = 0 ] || command -v prometheus > /dev/null || die "prometheus is missing: run make deps"

  # Another `up` on this directory stops its stack first; one that was killed (not stopped) left its processes:
  # stop them, then start from nothing.
  local previous
  if previous="$(cat "$dir/stack.pid" 2> /dev/null)" && [ -n "$previous" ] && [ "$previous" != $$ ] \
    && tr '\0' ' ' < "/proc/$previous/cmdline" 2> /dev/null | grep -q 'stack.sh up'; then
    say "stopping the stack already running in $dir (pid $previous)"
    kill -TERM "$previous" 2> /dev/null || true
    while kill -0 "$previous" 2> /dev/null; do sleep 0.1; done
  fi
  echo $$ > "$dir/stack.pid"
  if [ -d "$pids" ]; then stop_all; fi
  rm -rf "$logs" "$pids" "$dir/redis" "$dir/prometheus-data" "$dir/targets" "$dir/kafka.bootstrap"
  mkdir -p "$logs" "$pids" "$dir/targets"
  # Further INT/TERM while stopping are ignored: make, when it gets SIGTERM, sends its own to this script, and a
  # second Ctrl-C must not leave the stack half stopped.
  trap 'trap "" INT TERM; echo; say "stopping"; stop_all; say "stopped"; exit 0' INT TERM
  trap 'stop_all' EXIT

  write_dns_hosts
  start dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --user=root --group=root \
    --port="$dns_port" --listen-address="$gateway_host" --bind-interfaces --addn-hosts="$dir/dns-hosts" \
    --local-ttl=5 --neg-ttl=5 --log-facility=- --pid-file= --conf-file=/dev/null --domain-needed \
    --local=/cluster.local/
  start_self redis redis
  wait_for 10 redis redis-cli -h "$redis_host" -p "$redis_port" ping
  wait_for 10 dnsmasq grep -q started "$logs/dnsmasq.log"

  start kafka "$bin/rtc-bench" kafka-mock
  wait_for 20 kafka grep -q '^bootstrap=' "$logs/kafka.log"
  sed -n 's/^bootstrap=//p' "$logs/kafka.log" | head -1 > "$dir/kafka.bootstrap"

  start balancer env POD_NAME=rtc-balancer-local POD_NAMESPACE="$namespace" BIND_ADDRESS="$balancer_host" \
    HTTP_PORT="$balancer_port" REDIS_URL="redis://$redis_host:$redis_port" \
    KAFKA_BOOTSTRAP="$(cat "$dir/kafka.bootstrap")" "$bin/rtc-balancer"
  local index
  for index in $(seq 1 "$nodes"); do start_self "socket-$index" node "$index"; done
  wait_for 30 balancer http_ok "http://$balancer_host:$balancer_port/readyz"
  for index in $(seq 1 "$nodes"); do
    wait_for 30 "socket-$index" http_ok "http://$(socket_host "$index"):$socket_port/readyz"
  done

  local config
  config="$(gateway_config)"
  start gateway "$bin/rtc-gateway" --config "$config" ${GATEWAY_WORKERS:+--workers "$GATEWAY_WORKERS"}
  wait_for 20 gateway http_ok "http://$gateway_host:9113/readyz"
  # More gateway processes on the same public port (SO_REUSEPORT), each with an admin port of its own.
  local number
  for number in $(seq 2 "$gateways"); do
    sed "s/^admin \(.*\):9113;/admin \1:$((9112 + number));/" "$config" > "$dir/gateway-$number.conf"
    start "gateway-$number" "$bin/rtc-gateway" --config "$dir/gateway-$number.conf" \
      ${GATEWAY_WORKERS:+--workers "$GATEWAY_WORKERS"}
    wait_for 20 "gateway-$number" http_ok "http://$gateway_host:$((9112 + number))/readyz"
  done
  if [ "$prometheus" = 1 ]; then
    write_prometheus_config
    start prometheus prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus-data" \
      --web.listen-address="$prometheus_host:$prometheus_port" --log.level=warn
    wait_for 30 prometheus http_ok "http://$prometheus_host:$prometheus_port/-/ready"
  fi
  # Ready when the balancer's ring holds every node: an assignment through the gateway names each of them.
  local want=$nodes
  count_ring_nodes() {
    [ "$(curl -fsS --max-time 2 "http://$balancer_host:$balancer_port/api/v1/ring" | grep -o '"id":"socket-[0-9]*"' | wc -l)" -ge "$want" ]
  }
  wait_for 30 balancer count_ring_nodes
  # ... and every node is in step with it: the same ring version in force, and its delivery topic's partitions
  # assigned (its Kafka consumer group joined), so a message relayed to it at once is pushed at once.
  node_in_step() {
    local version metrics
    version="$(curl -fsS --max-time 2 "http://$balancer_host:$balancer_port/api/v1/ring" |
      grep -o '"version":[0-9]*' | head -1 | cut -d: -f2)"
    metrics="$(curl -fsS --max-time 2 "http://$(socket_host "$1"):$socket_port/metrics")" || return 1
    [ -n "$version" ] && grep -qx "rtc_socket_ring_version $version" <<< "$metrics" &&
      grep -q '^rtc_socket_delivery_partitions [1-9]' <<< "$metrics"
  }
  for index in $(seq 1 "$nodes"); do wait_for 30 "socket-$index" node_in_step "$index"; done
  wait_for 10 gateway http_ok "http://$gateway_host:8080/ws/connect?clientId=stack-probe"

  local example
  example="$(curl -fsS --max-time 2 "http://$gateway_host:8080/ws/connect?clientId=alice")"
  cat <<EOF

Reactive RTC local stack is up (logs in $logs/, Ctrl-C stops everything):
  rtc-gateway   http://$gateway_host:8080 (public)   http://$gateway_host:9113/metrics (admin)   config $config$([ "$gateways" = 1 ] || echo "
                ($gateways processes on port 8080; admin ports 9113-$((9112 + gateways)))")
  rtc-balancer  http://$balancer_host:$balancer_port (/ws/connect, /api/v1/ring, /metrics)
EOF
  for index in $(seq 1 "$nodes"); do
    echo "  rtc-socket    http://$(socket_host "$index"):$socket_port  socket-$index.$socket_domain"
  done
  cat <<EOF
  Redis         $redis_host:$redis_port   Kafka (mock) $(cat "$dir/kafka.bootstrap")   DNS (dnsmasq) $gateway_host:$dns_port
EOF
  [ "$prometheus" = 0 ] || echo "  Prometheus    http://$prometheus_host:$prometheus_port  (query: sum by (node) (rtc_socket_connections))"
  cat <<EOF

Try it (in another terminal):
  curl 'http://$gateway_host:8080/ws/connect?clientId=alice'
  # -> $example
  /usr/bin/python3 - <<'PY'
import asyncio, json, urllib.request, websockets
GATEWAY = "$gateway_host:8080"
def assigned(client):
    with urllib.request.urlopen("http://%s/ws/connect?clientId=%s" % (GATEWAY, client)) as answer:
        return "ws://%s%s?clientId=%s" % (GATEWAY, json.load(answer)["url"], client)
async def main():
    async with websockets.connect(assigned("alice")) as alice, websockets.connect(assigned("bob")) as bob:
        print("alice:", await alice.recv())
        print("bob:  ", await bob.recv())
        await alice.send(json.dumps({"type": "message", "msgId": "m1", "toClientId": "bob", "payloadJson": "{\"text\":\"hi bob\"}"}))
        print("alice:", await alice.recv())
        print("bob:  ", await bob.recv())
asyncio.run(main())
PY

stack is up
EOF
  # Report a component that exits; keep running until Ctrl-C.
  local reported=" "
  while :; do
    for file in "$pids"/*; do
      [ -f "$file" ] || continue
      name="$(basename "$file")"
      if ! alive_pid "$file" > /dev/null && [[ "$reported" != *" $name "* ]]; then
        say "$name exited (log: $logs/$name.log)"
        reported+="$name "
      elif alive_pid "$file" > /dev/null; then
        reported="${reported// $name / }"
      fi
    done
    sleep 1 &
    wait $! || true
  done
}

case "$command" in
  up) up ;;
  node)
    [ -n "$node_index" ] || die "node needs its number, 1 to 9"
    run_node "$node_index"
    ;;
  redis) run_redis ;;
  stop) stop_all ;;
  *) echo "stack.sh: unknown command '$command'" >&2; usage >&2; exit 2 ;;
esac
