#!/usr/bin/env bash
# Cost per session of rtc-socket: resident memory per idle session (fresh node per round, N and N_SMALL sessions),
# local delivery (senders and receivers on one node) and cross-node delivery (senders on node 1, receivers on
# node 2, relayed through the mock Kafka cluster): messages/s, latency percentiles, and CPU per message of every
# process on the path (node(s), redis-server, the Kafka mock, the load client), over ROUNDS rounds; medians.
#
# The stack: redis-server (--save '' --appendonly no) on 127.0.0.1:$REDIS_PORT, `rtc-bench kafka-mock`, release
# rtc-socket nodes socket-1 on $NODE1_HOST:$NODE_PORT and socket-2 on $NODE2_HOST:$NODE_PORT, the ring published in
# Redis (`rtc-bench ring-update`, signed). Every process is a child of this script, stopped by pid on exit.
#
# Environment: ROUNDS (3), N (5000) and N_SMALL (1000) idle sessions, HOLD (12 s a batch is held), PAIRS (10),
# WINDOW (8), MESSAGES (5000 per sender), SIZE (64 payloadJson bytes), CROSS_PAIRS (10), CROSS_WINDOW (8),
# CROSS_MESSAGES (300), DEEP_PAIRS (200), DEEP_WINDOW (64), DEEP_MESSAGES (100) for the cross-node run with a deep
# window (DEEP_PAIRS=0 skips it), RTC_BENCH_BIN, RTC_SOCKET_BIN (release builds), SKIP_IDLE=1, SKIP_DELIVERY=1,
# RAW_OUT (a directory to keep the raw JSON lines and TSVs in).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
N=${N:-5000}
N_SMALL=${N_SMALL:-1000}
HOLD=${HOLD:-12}
PAIRS=${PAIRS:-10}
WINDOW=${WINDOW:-8}
MESSAGES=${MESSAGES:-5000}
SIZE=${SIZE:-64}
CROSS_PAIRS=${CROSS_PAIRS:-10}
CROSS_WINDOW=${CROSS_WINDOW:-8}
CROSS_MESSAGES=${CROSS_MESSAGES:-300}
DEEP_PAIRS=${DEEP_PAIRS:-200}
DEEP_WINDOW=${DEEP_WINDOW:-64}
DEEP_MESSAGES=${DEEP_MESSAGES:-100}
RTC_BENCH_BIN=${RTC_BENCH_BIN:-$BENCH_DIR/../.build/release/rtc-bench}
RTC_SOCKET_BIN=${RTC_SOCKET_BIN:-$BENCH_DIR/../.build/release/rtc-socket}
REDIS_PORT=18131
NODE_PORT=18130
NODE1_HOST=127.0.0.31
NODE2_HOST=127.0.0.32
SECRET=bench-ring-secret
ulimit -n "$(ulimit -Hn)"

[[ -x "$RTC_BENCH_BIN" ]] || die "no rtc-bench at $RTC_BENCH_BIN (swift build -c release)"
[[ -x "$RTC_SOCKET_BIN" ]] || die "no rtc-socket at $RTC_SOCKET_BIN (swift build -c release)"

bench_init
log "machine: $(machine_line)"

bench_start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no
REDIS_PID=$BENCH_LAST_PID
wait_port "$REDIS_PORT" "$REDIS_PID"
bench_start kafka "$RTC_BENCH_BIN" kafka-mock
KAFKA_PID=$BENCH_LAST_PID
BOOTSTRAP=$(wait_line "$BENCH_TMP/kafka.log" '^bootstrap=' "$KAFKA_PID" 20)
BOOTSTRAP=${BOOTSTRAP#bootstrap=}
log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT, kafka-mock pid $KAFKA_PID at $BOOTSTRAP"

RING_VERSION=0
# publish_ring IDS: a newer signed ring of the comma list IDS (weight 1 each) in rtc:ring.
publish_ring() {
  RING_VERSION=$((RING_VERSION + 1))
  redis-cli -p "$REDIS_PORT" SET rtc:ring \
    "$("$RTC_BENCH_BIN" ring-update --nodes "$1" --secret "$SECRET" --version "$RING_VERSION")" >/dev/null
}

# metric HOST NAME: a value of the node's /metrics (empty when absent).
metric() {
  curl -fsS --max-time 5 "http://$1:$NODE_PORT/metrics" 2>/dev/null | awk -v n="$2" '$1 == n { print $2 }'
}

# node_start INDEX NAME: a fresh release node socket-INDEX on 127.0.0.(30+INDEX); waits until /readyz answers 200
# and it runs the current ring. The pid is left in BENCH_LAST_PID.
node_start() {
  local index=$1 host="127.0.0.$((30 + $1))" deadline
  bench_start "$2" env NODE_ID="socket-$index" BIND_ADDRESS="$host" HTTP_PORT="$NODE_PORT" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT" KAFKA_BOOTSTRAP="$BOOTSTRAP" RING_SECRET="$SECRET" \
    HEARTBEAT_INTERVAL_SEC=1 HEARTBEAT_TTL_SEC=3 DRAIN_SECONDS=1 "$RTC_SOCKET_BIN"
  deadline=$((SECONDS + 20))
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$host:$NODE_PORT/readyz")" == 200 &&
    "$(metric "$host" rtc_socket_ring_version)" == "$RING_VERSION" ]]; do
    kill -0 "$BENCH_LAST_PID" 2>/dev/null || die "node $index exited: $(tail -n 5 "$BENCH_TMP/$2.log")"
    ((SECONDS < deadline)) || die "node $index not ready with ring $RING_VERSION in 20 s"
    sleep 0.2
  done
}

RAW_DIR=${RAW_OUT:-$BENCH_TMP/raw}
mkdir -p "$RAW_DIR"

# ---- (a) idle sessions: a fresh node per batch, RSS before and after ------------------------------------------
if [[ -z "${SKIP_IDLE:-}" ]]; then
  IDLE_TSV="$RAW_DIR/idle.tsv"
  printf 'round\tsessions\trss_before_kib\trss_after_kib\tkib_per_session\n' >"$IDLE_TSV"
  publish_ring socket-1
  for ((r = 1; r <= ROUNDS; r++)); do
    mapfile -t sizes < <(rotate $((r - 1)) "$N" "$N_SMALL")
    for n in "${sizes[@]}"; do
      node_start 1 "idle-node-$r-$n"
      node=$BENCH_LAST_PID
      sleep 1
      before=$(rss_settle "$node")
      bench_start "idle-client-$r-$n" "$RTC_BENCH_BIN" socket-idle --target "$NODE1_HOST:$NODE_PORT" \
        --connections "$n" --hold-seconds "$HOLD"
      client=$BENCH_LAST_PID
      line=$(wait_line "$BENCH_TMP/idle-client-$r-$n.log" '^open=' "$client" 120)
      [[ "$line" == *" failed=0 "* ]] || die "idle sessions failed: $line"
      after=$(rss_settle "$node")
      per=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.3f", (a - b) / n }')
      sessions=$(metric "$NODE1_HOST" rtc_socket_connections)
      wait "$client" || die "socket-idle failed: $(tail -n 5 "$BENCH_TMP/idle-client-$r-$n.log")"
      bench_stop "$client"
      printf '%d\t%d\t%d\t%d\t%s\n' "$r" "$n" "$before" "$after" "$per" >>"$IDLE_TSV"
      log "idle round $r: $n sessions (node counts ${sessions:-?}): RSS $before → $after KiB = $per KiB/session"
      bench_stop "$node"
    done
  done
fi

# ---- (b, c) delivery: two nodes, ring socket-1,socket-2 ---------------------------------------------------------
if [[ -z "${SKIP_DELIVERY:-}" ]]; then
  publish_ring socket-1,socket-2
  node_start 1 node-1
  NODE1_PID=$BENCH_LAST_PID
  node_start 2 node-2
  NODE2_PID=$BENCH_LAST_PID
  CPU_ARGS=(--cpu "node1=$NODE1_PID" --cpu "node2=$NODE2_PID" --cpu "redis=$REDIS_PID" --cpu "kafka=$KAFKA_PID")
  LOCAL_ARGS=(--senders-at "$NODE1_HOST:$NODE_PORT" --ring-nodes socket-1,socket-2)
  CROSS_ARGS=(--senders-at "$NODE1_HOST:$NODE_PORT" --receivers-at "$NODE2_HOST:$NODE_PORT"
    --ring-nodes socket-1,socket-2)

  # run_load SCENARIO ROUND ARGS...: one socket-load run; its JSON line (with round, scenario and the CPU % of
  # processes that are not ours during the run) goes to $RAW_DIR/delivery.jsonl.
  run_load() {
    local scenario=$1 round=$2 out b0 b1 o0 o1 t0 t1 other
    shift 2
    out="$BENCH_TMP/load-$scenario-$round.out"
    b0=$(machine_busy_ticks)
    o0=$(own_ticks)
    t0=$(date +%s.%N)
    "$RTC_BENCH_BIN" socket-load "$@" "${CPU_ARGS[@]}" >"$out" 2>&1 || die "socket-load $scenario failed: $(cat "$out")"
    t1=$(date +%s.%N)
    o1=$(own_ticks)
    b1=$(machine_busy_ticks)
    other=$(awk -v d=$(((b1 - b0) - (o1 - o0))) -v hz="$CLK_TCK" -v s0="$t0" -v s1="$t1" \
      'BEGIN { v = d / hz / (s1 - s0) * 100; printf "%.0f", v < 0 ? 0 : v }')
    [[ "$round" == warmup ]] && return 0
    head -n 1 "$out" | jq -c --arg s "$scenario" --argjson r "$round" --argjson o "$other" \
      '. + {scenario: $s, round: $r, other_cpu_pct: $o}' >>"$RAW_DIR/delivery.jsonl"
    log "round $round $scenario: $(sed -n 2p "$out") (other processes ${other}% of a core)"
  }

  # Warm-up: the Kafka consumers' first group join takes seconds; Redis caches the script.
  run_load local warmup "${LOCAL_ARGS[@]}" --pairs 2 --messages 200
  run_load cross warmup "${CROSS_ARGS[@]}" --pairs 2 --messages 20 --timeout 60
  : >"$RAW_DIR/delivery.jsonl"
  SCENARIOS=(local cross)
  ((DEEP_PAIRS > 0)) && SCENARIOS+=(cross-deep)
  for ((r = 1; r <= ROUNDS; r++)); do
    mapfile -t order < <(rotate $((r - 1)) "${SCENARIOS[@]}")
    for s in "${order[@]}"; do
      case $s in
        local)
          run_load local "$r" "${LOCAL_ARGS[@]}" --pairs "$PAIRS" --window "$WINDOW" --messages "$MESSAGES" \
            --size "$SIZE"
          ;;
        cross)
          run_load cross "$r" "${CROSS_ARGS[@]}" --pairs "$CROSS_PAIRS" --window "$CROSS_WINDOW" \
            --messages "$CROSS_MESSAGES" --size "$SIZE"
          ;;
        cross-deep)
          run_load cross-deep "$r" "${CROSS_ARGS[@]}" --pairs "$DEEP_PAIRS" --window "$DEEP_WINDOW" \
            --messages "$DEEP_MESSAGES" --size "$SIZE"
          ;;
      esac
    done
  done
fi

# ---- Report ---------------------------------------------------------------------------------------------------
echo "## socket-node.sh: $(machine_line)"
echo
if [[ -z "${SKIP_IDLE:-}" ]]; then
  echo "Idle sessions (fresh node per batch; RSS = VmRSS once settled; medians over $ROUNDS rounds, min–max):"
  echo
  echo "| sessions | RSS before KiB | RSS after KiB | KiB/session |"
  echo "|---|---|---|---|"
  for n in "$N_SMALL" "$N"; do
    awk -F'\t' -v n="$n" 'NR > 1 && $2 == n { print $3 "\t" $4 "\t" $5 }' "$IDLE_TSV" >"$BENCH_TMP/idle-$n"
    printf '| %s | %s | %s | %s (%s–%s) |\n' "$n" \
      "$(median $(cut -f1 "$BENCH_TMP/idle-$n"))" "$(median $(cut -f2 "$BENCH_TMP/idle-$n"))" \
      "$(median $(cut -f3 "$BENCH_TMP/idle-$n"))" "$(cut -f3 "$BENCH_TMP/idle-$n" | sort -g | head -n 1)" \
      "$(cut -f3 "$BENCH_TMP/idle-$n" | sort -g | tail -n 1)"
  done
  echo
fi
if [[ -z "${SKIP_DELIVERY:-}" ]]; then
  "$PY" - "$RAW_DIR/delivery.jsonl" <<'EOF'
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
order = ["local", "cross", "cross-deep"]
labels = ["client", "node1", "node2", "redis", "kafka"]
med = statistics.median
print(f"Delivery (medians over the rounds, min–max for msg/s; CPU from /proc over the send window; "
      f"'cores' = CPU s / wall s, 1.0 = one core saturated):")
print()
print("| scenario | pairs × window × msgs | rounds | msg/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | "
      + " | ".join(f"{l} µs/msg" for l in labels) + " | " + " | ".join(f"{l} cores" for l in labels)
      + " | other CPU % | errors |")
print("|" + "---|" * (11 + 2 * len(labels)))
for scenario in order:
    rs = [r for r in runs if r["scenario"] == scenario]
    if not rs:
        continue
    rates = [r["rate"] for r in rs]
    lat = {q: med([r["latency_ms"][q] for r in rs]) for q in ["p50", "p90", "p99", "p999", "max"]}
    per = {}
    cores = {}
    for label in labels:
        values = [r["cpu_us_per_msg"].get(label) for r in rs]
        values = [v for v in values if v is not None]
        per[label] = f"{med(values):.1f}" if values else "–"
        secs = [(r["client_cpu_s"] if label == "client" else r["cpu_s"].get(label, 0)) / r["seconds"]
                for r in rs if r["seconds"] > 0]
        cores[label] = f"{med(secs):.2f}" if secs else "–"
    errors = sum(r["errors"] + r["closes"] + r["duplicates"] + r["out_of_order"] + r["wrong_fields"]
                 + r["missing"] for r in rs)
    r0 = rs[0]
    print(f"| {scenario} | {r0['pairs']} × {r0['window']} × {r0['messages_per_sender']} | {len(rs)} | "
          f"{med(rates):.0f} ({min(rates):.0f}–{max(rates):.0f}) | {lat['p50']:.2f} | {lat['p90']:.2f} | "
          f"{lat['p99']:.2f} | {lat['p999']:.2f} | {lat['max']:.2f} | "
          + " | ".join(per[l] for l in labels) + " | " + " | ".join(cores[l] for l in labels)
          + f" | {med([r['other_cpu_pct'] for r in rs]):.0f} | {errors} |")
EOF
fi
