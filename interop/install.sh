#!/usr/bin/env bash
# Installs the interop peers: websockets (pinned in interop/requirements.txt), ws (pinned in
# interop/package.json, `npm ci`) and Debian's chromium if missing. Run by interop/run.sh, and
# by .ci/run in the background while cargo builds; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
# (A Debian system Python refuses plain `pip install` (PEP 668); the machine's own Python takes it.)
python3 -m pip install --quiet --disable-pip-version-check -r interop/requirements.txt 2> /dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r interop/requirements.txt
(cd interop && npm ci --no-audit --no-fund --loglevel=error)
if ! command -v chromium > /dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi
