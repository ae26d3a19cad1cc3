# Sourced by run.sh and ab.sh: the scheduling both give the server and the load generator, and
# starting and stopping a server the same way. Sets `prio` (the command prefix for PRIORITY:
# rt, the default as root, SCHED_FIFO 1; nice, nice -n -20; none) and `server_pid`, installs
# traps that stop the server on exit or interrupt.

if [ -z "${PRIORITY:-}" ]; then
    if [ "$(id -u)" = 0 ]; then PRIORITY=rt; else PRIORITY=none; fi
fi
case "$PRIORITY" in
    rt) prio=(chrt -f 1) ;;
    nice) prio=(nice -n -20) ;;
    none) prio=() ;;
    *) echo "PRIORITY must be rt, nice or none" >&2; exit 2 ;;
esac

server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# launch_server NAME BINARY PORT LOG: starts BINARY on 127.0.0.1:PORT pinned to core 0, its
# output in LOG, and waits for its "listening on" line (no probe connection); fails, saying
# why, if it exits first or is not listening after 5 s.
launch_server() {
    local name="$1" binary="$2" port="$3" log="$4"
    # A stale "listening on" from an earlier run must not count.
    rm -f "$log"
    "${prio[@]}" taskset -c 0 "$binary" "127.0.0.1:$port" >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        if grep -q "listening on" "$log" 2>/dev/null; then return 0; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "$name exited during startup:" >&2
            tail -n 5 "$log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "$name: not listening after 5 s" >&2
    return 1
}
