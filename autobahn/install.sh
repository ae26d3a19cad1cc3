#!/bin/bash
# Installs the Autobahn TestSuite (wstest, Python 2.7) into /opt/autobahn, once.
# Same recipe as ../shared/autobahn/install.sh, but looks for a *real* python2.7 binary: on
# machines with pyenv, `command -v python2.7` finds a shim that cannot run, and the shared
# script then skips installing the interpreter.
set -euo pipefail
[[ -x /opt/autobahn/bin/wstest ]] && /opt/autobahn/bin/wstest --help >/dev/null 2>&1 && exit 0
py27=/usr/bin/python2.7
if ! "$py27" -c 'pass' 2>/dev/null; then
  src=/etc/apt/sources.list.d/bullseye-py27.sources
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > $src
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python2.7 python2.7-dev >/dev/null
  rm -f $src; apt-get update -qq
fi
python3 -m pip install -q 'virtualenv<20.22' 2>/dev/null
rm -rf /opt/autobahn
python3 -m virtualenv -q -p "$py27" /opt/autobahn
/opt/autobahn/bin/pip install -q autobahntestsuite 2>&1 | grep -v DEPRECATION || true
/opt/autobahn/bin/wstest --help >/dev/null
echo "wstest installed in /opt/autobahn/bin"
