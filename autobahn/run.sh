#!/usr/bin/env bash
# Runs the Autobahn TestSuite against wscore's three echo servers (fuzzingclient mode) and its
# autobahn client (fuzzingserver mode), then fails unless every case is OK or INFORMATIONAL
# and every close behaviour is OK (NON-STRICT and UNIMPLEMENTED count as failures).
#
#   autobahn/run.sh            # cases 1.* to 10.* (301 cases per agent, ~20 s each)
#   autobahn/run.sh all        # every case, permessage-deflate included (517 per agent, ~9 min
#                              # each: wstest's own Python compression dominates)
#   autobahn/run.sh ci         # what CI runs: every case for tokio_echo_server (server role) and
#                              # autobahn_client (client role), side by side, then cases 1-10 for
#                              # the std and embedded servers. The permessage-deflate cases (12, 13)
#                              # exercise the core's compression, which every agent shares; running
#                              # them four times would take ~20 of CI's 30 minutes.
#   AGENTS="std_echo_server" autobahn/run.sh   # a subset of the drivers
#   JOBS=1 autobahn/run.sh     # agents one at a time (default: 2 in parallel)
#
# Reports land in autobahn/reports/<agent>/ (index.html to browse them).
set -euo pipefail
cd "$(dirname "$0")/.."
WSTEST=${WSTEST:-/opt/autobahn/bin/wstest}
[[ -x $WSTEST ]] || bash autobahn/install.sh
CORE='["1.*","2.*","3.*","4.*","5.*","6.*","7.*","9.*","10.*"]'
MODE=${1:-core}
case "$MODE" in
  core) CASES=$CORE ;;
  all|ci) CASES='["*"]' ;;
  *) echo "usage: $0 [core|all|ci]" >&2; exit 2 ;;
esac
if [[ $MODE == ci ]]; then
  # Listed so that each batch of two pairs agents of about the same length.
  AGENTS=${AGENTS:-"tokio_echo_server autobahn_client std_echo_server embedded_echo_server"}
else
  AGENTS=${AGENTS:-"std_echo_server tokio_echo_server embedded_echo_server autobahn_client"}
fi
# The cases an agent runs: in ci mode, the core cases only for the std and embedded servers.
cases_for() {
  case "$MODE:$1" in
    ci:std_echo_server|ci:embedded_echo_server) echo "$CORE" ;;
    *) echo "$CASES" ;;
  esac
}
JOBS=${JOBS:-2}
REPORTS=autobahn/reports
BIN=${CARGO_TARGET_DIR:-target}/release/examples
rm -rf "$REPORTS"; mkdir -p "$REPORTS"

build=()
for a in $AGENTS; do build+=(--example "$a"); done
cargo build --release --quiet "${build[@]}"

wait_port() { # wait until something listens on $1
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on port $1" >&2; return 1
}

# One agent, on its own port, with its own wstest process and report directory.
run_agent() {
  local agent=$1 port=$2 dir="$REPORTS/$1" status=0 pid cases
  cases=$(cases_for "$agent")
  mkdir -p "$dir"
  if [[ $agent == autobahn_client ]]; then
    printf '{"url": "ws://127.0.0.1:%s", "outdir": "%s", "cases": %s, "exclude-cases": [], "exclude-agent-cases": {}}\n' \
      "$port" "$dir" "$cases" > "$dir/spec.json"
    "$WSTEST" -m fuzzingserver -s "$dir/spec.json" -u 0 > "$dir/wstest.log" 2>&1 &
    pid=$!
    wait_port "$port"
    "$BIN"/autobahn_client "ws://127.0.0.1:$port" "$agent" > "$dir/agent.log" 2>&1 || status=1
  else
    "$BIN/$agent" "127.0.0.1:$port" > "$dir/agent.log" 2>&1 &
    pid=$!
    wait_port "$port"
    printf '{"outdir": "%s", "servers": [{"agent": "%s", "url": "ws://127.0.0.1:%s"}], "cases": %s, "exclude-cases": [], "exclude-agent-cases": {}}\n' \
      "$dir" "$agent" "$port" "$cases" > "$dir/spec.json"
    "$WSTEST" -m fuzzingclient -s "$dir/spec.json" > "$dir/wstest.log" 2>&1 || status=1
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 autobahn/summary.py "$dir" "$agent" > "$dir/summary.txt" 2>&1 || status=1
  return $status
}

# Agents run JOBS at a time, in fixed batches; each batch is waited for by PID.
port=${PORT_BASE:-9100}
status=0
batch=()
run_batch() {
  local pids=() agent
  for agent in "${batch[@]}"; do
    run_agent "$agent" "$port" &
    pids+=($!)
    port=$((port + 1))
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  for agent in "${batch[@]}"; do cat "$REPORTS/$agent/summary.txt"; done
  batch=()
}
for agent in $AGENTS; do
  batch+=("$agent")
  if (( ${#batch[@]} >= JOBS )); then run_batch; fi
done
if (( ${#batch[@]} > 0 )); then run_batch; fi
exit $status
