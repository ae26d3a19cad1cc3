#!/usr/bin/env bash
# Where the memory of an idle connection of wscore's tokio_echo_server goes: the inline sizes of
# the types and driver futures (examples/e2e_idle_sizes), then a heaptrack profile of the server
# holding CONNECTIONS idle connections, its peak heap split by allocation site per connection
# (bench-e2e/heap_breakdown.py). Needs heaptrack (apt-get install heaptrack).
#
#   bash bench-e2e/idle_profile.sh            # 1000 connections, port 9480 (about 30 s)
#   CONNECTIONS=5000 SERVER=e2e_fastwebsockets_echo_server bash bench-e2e/idle_profile.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS="${CONNECTIONS:-1000}"
SERVER="${SERVER:-tokio_echo_server}"
PORT="${PORT:-9480}"
OUT="${OUT:-target/e2e}"
command -v heaptrack >/dev/null || { echo "heaptrack is not installed (apt-get install heaptrack)" >&2; exit 1; }
ulimit -n $((CONNECTIONS + 1024))

cargo build --release --quiet --example e2e_load_gen --example e2e_idle_sizes --example "$SERVER"
bin=target/release/examples
mkdir -p "$OUT"

echo "=== inline sizes"
"$bin/e2e_idle_sizes"

echo "=== heaptrack: $SERVER with $CONNECTIONS idle connections"
rm -f "$OUT/heaptrack-$SERVER".*
heaptrack -o "$OUT/heaptrack-$SERVER" "$bin/$SERVER" "127.0.0.1:$PORT" >"$OUT/heaptrack-$SERVER.log" 2>&1 &
wrapper=$!
# heaptrack runs the server as a child of its wrapper script: find the server's own PID.
server=""
cleanup() {
    # The server first (killing only the wrapper would leave it running).
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    kill "$wrapper" 2>/dev/null || true
}
trap cleanup EXIT
listening=""
for _ in $(seq 1 100); do
    server="$(pgrep -P "$wrapper" -f "^$bin/$SERVER " || true)"
    if [ -n "$server" ] && grep -q "listening on" "$OUT/heaptrack-$SERVER.log"; then listening=1; break; fi
    if ! kill -0 "$wrapper" 2>/dev/null; then break; fi
    sleep 0.1
done
if [ -z "$listening" ]; then
    echo "the server did not start under heaptrack:" >&2
    tail -n 5 "$OUT/heaptrack-$SERVER.log" >&2
    exit 1
fi
"$bin/e2e_load_gen" "127.0.0.1:$PORT" --idle "$CONNECTIONS" --server-pid "$server" --settle 1 2>&1 | grep -v '^RESULT '
# The load generator has exited and its connections ended: stop the server (TERM: a background
# job ignores INT) and let heaptrack finish writing.
sleep 1
kill -TERM "$server"
wait "$wrapper" || true
server=""
trap - EXIT
data="$OUT/heaptrack-$SERVER.zst"
heaptrack_print -f "$data" -p 0 -a 0 -T 0 -F "$OUT/heaptrack-$SERVER.stacks" --flamegraph-cost-type peak >/dev/null 2>&1
python3 bench-e2e/heap_breakdown.py "$OUT/heaptrack-$SERVER.stacks" "$CONNECTIONS"
echo "(profile: $data; heaptrack_gui or heaptrack_print for the call paths)"
