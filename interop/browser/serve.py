#!/usr/bin/env python3
"""Serves the browser interop page and collects its result.

    python3 interop/browser/serve.py --port 9231 --result /tmp/browser-result.txt

A python3 http.server for this folder on a loopback port, plus one endpoint: the page POSTs
its report (one line per check, then `N passed, M failed`) to /result, which is written to the
--result file (atomically, so a reader never sees half of it) and echoed to stdout. run.sh
waits for that file instead of relying on headless Chromium's virtual time, which fast-forwards
the page's timers while it waits on real network I/O.
"""

import argparse
import functools
import os
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    result_path = None

    def do_POST(self):
        if self.path != "/result":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        tmp = self.result_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(body)
        os.replace(tmp, self.result_path)
        sys.stdout.write(body.decode("utf-8", "replace") + "\n")
        sys.stdout.flush()
        self.send_response(204)
        self.end_headers()

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9231)
    parser.add_argument("--result", required=True, help="where to write the page's report")
    args = parser.parse_args()
    Handler.result_path = args.result
    handler = functools.partial(Handler, directory=os.path.dirname(os.path.abspath(__file__)))
    with ThreadingHTTPServer((args.host, args.port), handler) as server:
        print(f"serving on http://{args.host}:{args.port}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
