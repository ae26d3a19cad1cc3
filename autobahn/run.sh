#!/usr/bin/env bash
# Runs the Autobahn TestSuite against wscore's three echo servers (fuzzingclient mode) and its
# autobahn client (fuzzingserver mode), then fails unless every case is OK or INFORMATIONAL
# and every close behaviour is OK (NON-STRICT and UNIMPLEMENTED count as failures).
#
#   autobahn/run.sh            # cases 1.* to 10.* (301 cases)
#   autobahn/run.sh all        # every case, permessage-deflate included (517 cases)
#   AGENTS="std_echo_server" autobahn/run.sh   # a subset of the drivers
#
# Reports land in autobahn/reports/{servers,client}/ (index.html to browse them).
set -euo pipefail
cd "$(dirname "$0")/.."
WSTEST=${WSTEST:-/opt/autobahn/bin/wstest}
[[ -x $WSTEST ]] || bash autobahn/install.sh
case "${1:-core}" in
  core) CASES='["1.*","2.*","3.*","4.*","5.*","6.*","7.*","9.*","10.*"]' ;;
  all) CASES='["*"]' ;;
  *) echo "usage: $0 [core|all]" >&2; exit 2 ;;
esac
AGENTS=${AGENTS:-"std_echo_server tokio_echo_server embedded_echo_server autobahn_client"}
REPORTS=autobahn/reports
rm -rf "$REPORTS"; mkdir -p "$REPORTS"

build=()
for a in $AGENTS; do build+=(--example "$a"); done
cargo build --release --quiet "${build[@]}"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { # wait until something listens on $1
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on port $1" >&2; return 1
}

servers=""
port=9101
for a in $AGENTS; do
  [[ $a == autobahn_client ]] && continue
  ./target/release/examples/"$a" 127.0.0.1:$port > "$REPORTS/$a.log" 2>&1 &
  pids+=($!)
  wait_port $port
  servers+="${servers:+,}{\"agent\": \"$a\", \"url\": \"ws://127.0.0.1:$port\"}"
  port=$((port + 1))
done

status=0
if [[ -n $servers ]]; then
  cat > "$REPORTS/fuzzingclient.json" <<JSON
{"outdir": "$REPORTS/servers", "servers": [$servers], "cases": $CASES, "exclude-cases": [], "exclude-agent-cases": {}}
JSON
  echo "== Autobahn fuzzingclient against: ${servers//\"/}"
  "$WSTEST" -m fuzzingclient -s "$REPORTS/fuzzingclient.json" > "$REPORTS/fuzzingclient.log" 2>&1 || { tail -20 "$REPORTS/fuzzingclient.log"; status=1; }
  python3 autobahn/summary.py "$REPORTS/servers" || status=1
fi

if [[ " $AGENTS " == *" autobahn_client "* ]]; then
  cat > "$REPORTS/fuzzingserver.json" <<JSON
{"url": "ws://127.0.0.1:9100", "outdir": "$REPORTS/client", "cases": $CASES, "exclude-cases": [], "exclude-agent-cases": {}}
JSON
  "$WSTEST" -m fuzzingserver -s "$REPORTS/fuzzingserver.json" -u 0 > "$REPORTS/fuzzingserver.log" 2>&1 &
  pids+=($!)
  wait_port 9100
  echo "== Autobahn fuzzingserver against autobahn_client"
  ./target/release/examples/autobahn_client ws://127.0.0.1:9100 autobahn_client > "$REPORTS/autobahn_client.log" 2>&1 || { tail -20 "$REPORTS/autobahn_client.log"; status=1; }
  python3 autobahn/summary.py "$REPORTS/client" || status=1
fi
exit $status
