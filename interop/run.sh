#!/usr/bin/env bash
# Interop tests: wscore against WebSocket implementations we did not write.
#
#   bash interop/run.sh              # every pairing (~3 minutes once the tools are installed)
#   INTEROP_LARGE=0 bash interop/run.sh   # skip the 16 MiB messages
#   INTEROP_ONLY='node_client|chromium' bash interop/run.sh   # pairings matching a regex
#   INTEROP_TIMEOUT=600 bash interop/run.sh   # seconds per pairing (default 300)
#
# Pairings:
#   Python websockets client -> tokio_echo_server, std_echo_server, embedded_echo_server
#   Node ws client           -> the same three servers
#   interop_client (ours)    -> Python websockets echo server, Node ws echo server
#   headless Chromium        -> tokio_echo_server (Chromium always offers deflate)
# with permessage-deflate in these modes (the "deflate" column):
#   on        offered and accepted with each side's defaults
#   off       not offered (and the peer servers have it off)
#   tight     the client asks for no context takeover on both sides and 9-bit windows
#   declined  interop_client offers it, the server has it off
#   imposed   interop_client offers the defaults, the server imposes no context takeover and
#             9-bit windows on both sides
#
# Installs what it needs itself (interop/install.sh): websockets (pinned in
# interop/requirements.txt), ws (pinned in interop/package.json), Debian's chromium if
# missing. Uses loopback ports 9201-9231 only. Logs land in target/interop/. Prints a
# summary table and exits non-zero if any pairing failed or any server died.
set -euo pipefail
cd "$(dirname "$0")/.."
LOGS=${CARGO_TARGET_DIR:-target}/interop
BIN=${CARGO_TARGET_DIR:-target}/release/examples
TIMEOUT=${INTEROP_TIMEOUT:-300}
ONLY=${INTEROP_ONLY:-}
LARGE=()
[[ ${INTEROP_LARGE:-1} == 1 ]] && LARGE=(--large)
rm -rf "$LOGS"
mkdir -p "$LOGS"

# Every process started here runs in its own process group (setsid), so cleanup can end it
# with all its children (Chromium's zygote and renderers included).
GROUPS_STARTED=()
declare -A SERVER_PID=()
CLIENT=
cleanup() {
  local pid
  for pid in $CLIENT "${GROUPS_STARTED[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${GROUPS_STARTED[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  GROUPS_STARTED=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo; echo "=== $* ($(date +%T))"; }

# ----- tools -----

step "installing the peers"
bash interop/install.sh
python3 -c 'import websockets; print("websockets", websockets.__version__)'
echo "ws $(node -p 'require("./interop/node_modules/ws/package.json").version') on node $(node --version)"
chromium --version 2> /dev/null

step "building wscore's examples (release)"
cargo build --release --quiet --example tokio_echo_server --example std_echo_server \
  --example embedded_echo_server --example interop_client

# ----- servers -----

port_busy() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# start NAME PORT COMMAND...: starts a server in its own process group, waits for its port.
start() {
  local name=$1 port=$2 pid
  shift 2
  if port_busy "$port"; then
    echo "port $port is already in use: cannot start $name" >&2
    exit 1
  fi
  setsid "$@" > "$LOGS/$name.log" 2>&1 &
  pid=$!
  GROUPS_STARTED+=("$pid")
  SERVER_PID[$name]=$pid
  for _ in $(seq 1 100); do
    port_busy "$port" && return 0
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  echo "$name did not start listening on port $port; its log:" >&2
  cat "$LOGS/$name.log" >&2
  exit 1
}

step "starting the echo servers"
start tokio_echo_server 9201 "$BIN/tokio_echo_server" 127.0.0.1:9201
start std_echo_server 9202 "$BIN/std_echo_server" 127.0.0.1:9202
start embedded_echo_server 9203 "$BIN/embedded_echo_server" 127.0.0.1:9203
start python_echo_server 9211 python3 interop/python_echo_server.py --port 9211
start python_echo_server_nodeflate 9212 python3 interop/python_echo_server.py --port 9212 --no-compression
start python_echo_server_tight 9213 python3 interop/python_echo_server.py --port 9213 --tight-compression
start node_echo_server 9221 node interop/node_echo_server.js --port 9221
start node_echo_server_nodeflate 9222 node interop/node_echo_server.js --port 9222 --no-compression
start node_echo_server_tight 9223 node interop/node_echo_server.js --port 9223 --tight-compression
echo "all listening"

# ----- pairings -----

ROWS=()
FAILED=0

# record PAIRING DEFLATE LOG STATUS: reads the client's `N passed, M failed` line.
record() {
  local pairing=$1 deflate=$2 log=$3 status=$4 counts passed=- failed=- result=ok
  counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
  if [[ -n $counts ]]; then
    passed=${counts%% passed*}
    failed=${counts#*, }
    failed=${failed%% failed}
  fi
  if [[ $status == 124 ]]; then
    result="TIMEOUT (${TIMEOUT}s)"
  elif [[ $status != 0 || -z $counts || $failed != 0 ]]; then
    result="FAIL (exit $status)"
  fi
  if [[ $result != ok ]]; then
    FAILED=$((FAILED + 1))
    echo "--- $pairing (deflate $deflate): $result; failed checks and the log's tail:"
    grep -E '^FAIL' "$log" | head -n 20 || true
    tail -n 5 "$log"
  fi
  ROWS+=("$(printf '%-48s %-9s %7s %7s  %s' "$pairing" "$deflate" "$passed" "$failed" "$result")")
  printf '%-48s deflate %-9s %s passed, %s failed: %s\n' "$pairing" "$deflate" "$passed" "$failed" "$result"
}

# pair PAIRING DEFLATE COMMAND...: runs one client with a timeout and records its counts.
pair() {
  local pairing=$1 deflate=$2 log status=0
  shift 2
  [[ -z $ONLY || "$pairing $deflate" =~ $ONLY ]] || return 0
  log="$LOGS/$(tr -c 'A-Za-z0-9_\n-' '_' <<< "$pairing-$deflate").log"
  # In the background so that a signal to this script is handled at once (`wait` returns),
  # not after the client ends; `timeout` leads a process group of its own, which cleanup ends.
  timeout "$TIMEOUT" "$@" > "$log" 2>&1 &
  CLIENT=$!
  wait "$CLIENT" || status=$?
  CLIENT=
  record "$pairing" "$deflate" "$log" "$status"
}

step "Python websockets client -> wscore servers"
for server in tokio_echo_server:9201 std_echo_server:9202 embedded_echo_server:9203; do
  url="ws://127.0.0.1:${server#*:}/"
  pair "python_client -> ${server%%:*}" on python3 interop/python_client.py "$url" --expect-compression "${LARGE[@]}"
  pair "python_client -> ${server%%:*}" off python3 interop/python_client.py "$url" --no-compression "${LARGE[@]}"
  pair "python_client -> ${server%%:*}" tight python3 interop/python_client.py "$url" --tight-compression \
    --expect-compression "${LARGE[@]}"
done

step "Node ws client -> wscore servers"
for server in tokio_echo_server:9201 std_echo_server:9202 embedded_echo_server:9203; do
  url="ws://127.0.0.1:${server#*:}/"
  pair "node_client -> ${server%%:*}" on node interop/node_client.js "$url" --expect-compression "${LARGE[@]}"
  pair "node_client -> ${server%%:*}" off node interop/node_client.js "$url" --no-compression "${LARGE[@]}"
  pair "node_client -> ${server%%:*}" tight node interop/node_client.js "$url" --tight-compression \
    --expect-compression "${LARGE[@]}"
done

step "wscore interop_client -> Python websockets and Node ws servers"
for peer in python:9211:9212:9213 node:9221:9222:9223; do
  IFS=: read -r name on off tight <<< "$peer"
  pair "interop_client -> ${name}_echo_server" on "$BIN/interop_client" "ws://127.0.0.1:$on/" --expect-deflate "${LARGE[@]}"
  pair "interop_client -> ${name}_echo_server" off "$BIN/interop_client" "ws://127.0.0.1:$off/" --no-deflate "${LARGE[@]}"
  pair "interop_client -> ${name}_echo_server" tight "$BIN/interop_client" "ws://127.0.0.1:$on/" --deflate-tight \
    --expect-deflate "${LARGE[@]}"
  pair "interop_client -> ${name}_echo_server" declined "$BIN/interop_client" "ws://127.0.0.1:$off/" "${LARGE[@]}"
  pair "interop_client -> ${name}_echo_server" imposed "$BIN/interop_client" "ws://127.0.0.1:$tight/" \
    --expect-deflate "${LARGE[@]}"
done

step "headless Chromium -> tokio_echo_server"
browser() {
  local result="$LOGS/browser-result.txt" page pid status
  page="http://127.0.0.1:9231/index.html?ws=ws://127.0.0.1:9201/"
  [[ -z $ONLY || "chromium -> tokio_echo_server offered" =~ $ONLY ]] || return 0
  start browser_page_server 9231 python3 interop/browser/serve.py --port 9231 --result "$result"
  setsid chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d "$LOGS/chromium-profile.XXXXXX")" "$page" > "$LOGS/chromium.log" 2>&1 &
  pid=$!
  GROUPS_STARTED+=("$pid")
  status=124
  for _ in $(seq 1 $((TIMEOUT * 10))); do
    if [[ -f $result ]]; then
      status=0
      break
    fi
    if ! kill -0 "$pid" 2> /dev/null; then
      status=1 # Chromium exited without a result
      break
    fi
    sleep 0.1
  done
  kill -TERM -- "-$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  if [[ $status == 0 ]]; then
    cp "$result" "$LOGS/chromium-tokio_echo_server.log"
  else
    { echo "no result from the page; Chromium's log:"; grep -v dbus "$LOGS/chromium.log" | tail -n 20; } \
      > "$LOGS/chromium-tokio_echo_server.log"
  fi
  record "chromium -> tokio_echo_server" offered "$LOGS/chromium-tokio_echo_server.log" "$status"
}
browser

# ----- summary -----

step "summary"
CRASHED=0
for server in "${!SERVER_PID[@]}"; do
  if ! kill -0 "${SERVER_PID[$server]}" 2> /dev/null; then
    echo "$server is no longer running (crashed?); its log: $LOGS/$server.log"
    CRASHED=$((CRASHED + 1))
  fi
done
printf '%-48s %-9s %7s %7s  %s\n' pairing deflate passed failed result
for row in "${ROWS[@]}"; do echo "$row"; done
echo
echo "logs: $LOGS/"
# A server that died counts as one more failure.
echo "interop: $((${#ROWS[@]} - FAILED)) passed, $((FAILED + CRASHED)) failed"
[[ $FAILED == 0 && $CRASHED == 0 ]]
