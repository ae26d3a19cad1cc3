#!/usr/bin/env bash
# End-to-end echo benchmark: wscore's three echo servers, and its tokio driver in the peers' loop,
# against the peers' (bench-e2e/README.md).
#
#   bash bench-e2e/run.sh              # throughput and idle memory (about 7 minutes after the build)
#   bash bench-e2e/run.sh throughput   # msgs/s only
#   bash bench-e2e/run.sh idle         # memory per idle connection only
#   bash bench-e2e/run.sh chart        # only redo the table and docs/perf-e2e.svg from target/e2e
#
# Every server runs pinned to core 0, the load generator (examples/e2e_load_gen) to core 1.
# For each case (connections x payload bytes) and server: a fresh server, the upgrades, a warm-up,
# then msgs/s over the measurement window; the whole grid is repeated and the best run of each
# cell is kept (other processes on the machine can only slow a run down). Then, for each server,
# 10,000 idle connections and the server's RSS before and after.
#
# Settings (environment):
#   SERVERS    which servers (default: all; names as in the table, e.g. "wscore-tokio fastwebsockets")
#   CASES      "CONNECTIONSxBYTES ..." (default "100x20 100x1024 200x16384 4x1048576")
#   IN_FLIGHT  messages in flight per connection, one grid per value (default "1 8": 1 as
#              uWebSockets' load_test, 8 for pipelined clients)
#   WARMUP, DURATION  seconds (default 1 and 2)       REPEAT  runs per cell (default 2)
#   IDLE_CONNECTIONS  (default 10000; the embedded server gets 200, of its fixed table of 1,024)
#   PRIORITY   rt (default when root: SCHED_FIFO 1 for server and load generator, so the other
#              work on a shared machine cannot take their cores mid-run), nice (nice -n -20),
#              none
#   OUT        results directory (default target/e2e); CHART  SVG path (default docs/perf-e2e.svg)
#   PORT_BASE  first port (default 9400; one per server)
# Results: OUT/throughput.jsonl, OUT/idle.jsonl, OUT/machine.txt, OUT/results.{json,md}, the chart.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-all}"
ALL_SERVERS="wscore-tokio wscore-embedded wscore-std wscore-tokio-send tungstenite tokio-tungstenite fastwebsockets tokio-websockets"
SERVERS="${SERVERS:-$ALL_SERVERS}"
CASES="${CASES:-100x20 100x1024 200x16384 4x1048576}"
IN_FLIGHT="${IN_FLIGHT:-1 8}"
WARMUP="${WARMUP:-1}"
DURATION="${DURATION:-2}"
REPEAT="${REPEAT:-2}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
EMBEDDED_IDLE=200
OUT="${OUT:-target/e2e}"
CHART="${CHART:-docs/perf-e2e.svg}"
PORT_BASE="${PORT_BASE:-9400}"
# PRIORITY, prio, server_pid, stop_server and launch_server.
. bench-e2e/server.sh

binary_of() {
    case "$1" in
        wscore-tokio) echo tokio_echo_server ;;
        wscore-embedded) echo embedded_echo_server ;;
        wscore-std) echo std_echo_server ;;
        wscore-tokio-send) echo e2e_wscore_send_echo_server ;;
        tungstenite) echo e2e_tungstenite_echo_server ;;
        tokio-tungstenite) echo e2e_tokio_tungstenite_echo_server ;;
        fastwebsockets) echo e2e_fastwebsockets_echo_server ;;
        tokio-websockets) echo e2e_tokio_websockets_echo_server ;;
        *) echo "unknown server $1 (one of: $ALL_SERVERS)" >&2; return 1 ;;
    esac
}

report() {
    python3 bench-e2e/report.py "$OUT"
    python3 bench-e2e/chart.py "$OUT/results.json" "$CHART"
}
if [ "$MODE" = chart ]; then
    report
    exit 0
fi
case "$MODE" in all | throughput | idle) ;; *) echo "mode must be all, throughput, idle or chart" >&2; exit 2 ;; esac

# 10,000 connections: as many sockets in the load generator and in the server.
want=$((IDLE_CONNECTIONS + 1024))
hard="$(ulimit -Hn)"
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want="$hard"; fi
ulimit -n "$want"

examples=(--example e2e_load_gen)
for server in $SERVERS; do examples+=(--example "$(binary_of "$server")"); done
echo "=== building (release): ${examples[*]}"
cargo build --release --quiet "${examples[@]}"
bin=target/release/examples

mkdir -p "$OUT"
if [ "$MODE" != idle ]; then : >"$OUT/throughput.jsonl"; fi
if [ "$MODE" != throughput ]; then : >"$OUT/idle.jsonl"; fi
{
    echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
    echo "cores=$(nproc)"
    echo "kernel=$(uname -sr)"
    echo "rustc=$(rustc -V)"
    echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "priority=$PRIORITY"
    echo "in_flight=$IN_FLIGHT"
    echo "warmup=$WARMUP"
    echo "duration=$DURATION"
    echo "repeat=$REPEAT"
    echo "command=IN_FLIGHT=\"$IN_FLIGHT\" WARMUP=$WARMUP DURATION=$DURATION REPEAT=$REPEAT bash bench-e2e/run.sh $MODE"
    echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
echo "=== $(sed -n 's/^cpu=//p' "$OUT/machine.txt"), $(nproc) cores, $(uname -sr); scheduling: $PRIORITY; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# Starts server NAME on PORT (bench-e2e/server.sh), its output in OUT/server-NAME.log.
start_server() {
    launch_server "$1" "$bin/$(binary_of "$1")" "$2" "$OUT/server-$1.log"
}

port_of() {
    local index=0
    for server in $ALL_SERVERS; do
        if [ "$server" = "$1" ]; then echo $((PORT_BASE + index)); return; fi
        index=$((index + 1))
    done
}

# After a load-generator run (its output in $result, its exit status STATUS): stops the server,
# then prints the run's lines and appends its RESULT to FILE with the fields PREFIX in front,
# or counts and shows the failure of WHAT.
finish_run() {
    local status="$1" what="$2" prefix="$3" file="$4" json
    stop_server
    if [ "$status" -ne 0 ]; then
        failures=$((failures + 1))
        echo "--- $what: FAILED"
        echo "$result" | tail -n 3
        return 0
    fi
    echo "$result" | grep -v '^RESULT '
    json="$(echo "$result" | sed -n 's/^RESULT //p')"
    echo "{$prefix,${json#\{}" >>"$file"
}

failures=0
if [ "$MODE" != idle ]; then
    for rep in $(seq 1 "$REPEAT"); do
        echo "=== throughput, round $rep of $REPEAT (in flight: $IN_FLIGHT; ${WARMUP} s warm-up, ${DURATION} s window)"
        for depth in $IN_FLIGHT; do
            for case in $CASES; do
                connections="${case%x*}"
                size="${case#*x}"
                for server in $SERVERS; do
                    port="$(port_of "$server")"
                    if ! start_server "$server" "$port"; then failures=$((failures + 1)); continue; fi
                    status=0
                    result="$("${prio[@]}" taskset -c 1 "$bin/e2e_load_gen" "127.0.0.1:$port" --label "$server" \
                        --connections "$connections" --size "$size" --in-flight "$depth" \
                        --warmup "$WARMUP" --duration "$DURATION" --server-pid "$server_pid" 2>&1)" || status=$?
                    finish_run "$status" "$server $case" "\"server\":\"$server\",\"rep\":$rep" "$OUT/throughput.jsonl"
                done
            done
        done
    done
fi

if [ "$MODE" != throughput ]; then
    echo "=== idle memory: $IDLE_CONNECTIONS upgraded connections per server (embedded: $EMBEDDED_IDLE)"
    for server in $SERVERS; do
        count="$IDLE_CONNECTIONS"
        if [ "$server" = wscore-embedded ] && [ "$count" -gt "$EMBEDDED_IDLE" ]; then count="$EMBEDDED_IDLE"; fi
        port="$(port_of "$server")"
        if ! start_server "$server" "$port"; then failures=$((failures + 1)); continue; fi
        status=0
        result="$(taskset -c 1 "$bin/e2e_load_gen" "127.0.0.1:$port" --label "$server" --idle "$count" \
            --server-pid "$server_pid" --settle 1 2>&1)" || status=$?
        finish_run "$status" "$server idle" "\"server\":\"$server\"" "$OUT/idle.jsonl"
    done
fi

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
echo
report
if [ "$failures" -gt 0 ]; then
    echo "=== $failures run(s) failed (server logs in $OUT/)"
    exit 1
fi
