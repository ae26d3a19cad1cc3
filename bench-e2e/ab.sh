#!/usr/bin/env bash
# A/B of two echo server builds (two commits of one server, or two servers): runs them in turn,
# A then B, REPS times per cell, pinned and prioritized as run.sh does, and prints each cell's
# msgs/s per run, the median of B over the median of A, and the servers' peak resident memory
# (VmHWM, read late in the window; median over the runs). Alternating runs are what makes a
# difference of a few percent visible on a shared machine, where the same server moves by
# ±20 % from one minute to the next (bench-e2e/README.md); one run per server, as run.sh's grid
# does, cannot show it.
#
#   bash bench-e2e/ab.sh BIN_A BIN_B [REPS] ["CASES"] ["IN_FLIGHT"]
#
#   git worktree add /tmp/base HEAD~1 && (cd /tmp/base && cargo build --release --example tokio_echo_server)
#   cargo build --release --example tokio_echo_server --example e2e_load_gen
#   bash bench-e2e/ab.sh /tmp/base/target/release/examples/tokio_echo_server \
#       target/release/examples/tokio_echo_server 6 "200x16384" "1"
#
# Defaults: REPS 5, CASES "100x20 100x1024 200x16384 4x1048576", IN_FLIGHT "1 8". The load
# generator is target/release/examples/e2e_load_gen (build it first). Environment: WARMUP,
# DURATION and PRIORITY as in run.sh (1 s, 2 s, rt as root), PORT_BASE (9800).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
A="$1"
B="$2"
REPS="${3:-5}"
CASES="${4:-100x20 100x1024 200x16384 4x1048576}"
IN_FLIGHT="${5:-1 8}"
WARMUP="${WARMUP:-1}"
DURATION="${DURATION:-2}"
PORT_BASE="${PORT_BASE:-9800}"
load_gen=target/release/examples/e2e_load_gen
for bin in "$A" "$B" "$load_gen"; do
    [ -x "$bin" ] || { echo "$bin: not built" >&2; exit 2; }
done
# PRIORITY (as run.sh's), prio, server_pid, stop_server and launch_server.
. bench-e2e/server.sh
ulimit -n 4096

port=$PORT_BASE
# One run: prints "MSGS_PER_S RSS_KB".
run() {
    local bin="$1" connections="$2" size="$3" depth="$4" log
    port=$((port + 1))
    log="$(mktemp)"
    launch_server "$bin" "$bin" "$port" "$log" || exit 1
    rm -f "$log"
    local out
    out="$(mktemp)"
    "${prio[@]}" taskset -c 1 "$load_gen" "127.0.0.1:$port" --connections "$connections" --size "$size" \
        --in-flight "$depth" --warmup "$WARMUP" --duration "$DURATION" >"$out" 2>&1 &
    local gen=$!
    # Late in the window (memory that grows with traffic has grown by then).
    sleep "$(python3 -c "print($WARMUP + $DURATION * 0.9)")"
    local rss
    rss="$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server_pid/status" 2>/dev/null || echo 0)"
    wait "$gen" || { echo "load generator failed:" >&2; tail -n 3 "$out" >&2; exit 1; }
    stop_server
    echo "$(sed -n 's/.*"msgs_per_s":\([0-9]*\).*/\1/p' "$out" | head -n1) ${rss:-0}"
    rm -f "$out"
}

echo "A = $A"
echo "B = $B"
for depth in $IN_FLIGHT; do
    for case in $CASES; do
        connections="${case%x*}"
        size="${case#*x}"
        a=()
        b=()
        for _ in $(seq 1 "$REPS"); do
            a+=("$(run "$A" "$connections" "$size" "$depth")")
            b+=("$(run "$B" "$connections" "$size" "$depth")")
        done
        python3 - "$depth" "$case" "${a[*]}" "${b[*]}" <<'EOF'
import statistics, sys
depth, case, a, b = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
a_rate, a_rss = [int(x) for x in a[0::2]], [int(x) for x in a[1::2]]
b_rate, b_rss = [int(x) for x in b[0::2]], [int(x) for x in b[1::2]]
print(f"{case}, {depth} in flight: A {a_rate} B {b_rate} msgs/s; median B/A "
      f"{statistics.median(b_rate) / statistics.median(a_rate):.3f}; RSS A {statistics.median(a_rss) / 1024:.1f} MiB, "
      f"B {statistics.median(b_rss) / 1024:.1f} MiB")
EOF
    done
done
