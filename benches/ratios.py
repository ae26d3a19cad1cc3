#!/usr/bin/env python3
"""Side-by-side table of wscore against its peers from criterion's saved estimates.

Reads every `new/benchmark.json` + `new/estimates.json` under target/criterion (written by
`cargo bench`), groups the results by benchmark group and parameter, and prints one row per
case: wscore's time per element (message, or iteration for byte-throughput groups), its rate,
then for every other implementation in the group `other_time / wscore_time` (above 1: wscore is
faster), and `wscore / baseline` (how far wscore is above the hand-written floor). A closing
summary gives the geometric mean of each ratio over the rows shown.

    python3 benches/ratios.py                      # everything benchmarked so far
    python3 benches/ratios.py decode/binary        # groups whose name contains the filter
    python3 benches/ratios.py --markdown encode    # a Markdown table
    python3 benches/ratios.py --stat median        # median instead of criterion's headline estimate
    python3 benches/ratios.py --subject wscore_ref decode   # ratios against lent events instead
"""

import argparse
import json
import math
import os
import re
import signal
import sys

SUBJECT = "wscore"
BASELINE = "baseline"
# Column order: wscore's own variants, then the peers; anything else after (the floor has its own column).
ORDER = ["wscore", "wscore_ref", "wscore_zc", "wscore-1460", "tungstenite", "fastwebsockets", "tokio-websockets", "std",
         "simdutf8"]


def load(root):
    """{(group, value): {function: (seconds_per_element, bytes_per_element or None)}}."""
    results = {}
    order = []
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            estimates = json.load(f)
        stat = ARGS.stat
        if stat == "headline":
            # What criterion prints as "time": the slope when it fitted one, else the mean.
            stat = "slope" if estimates.get("slope") else "mean"
        seconds = estimates[stat]["point_estimate"] * 1e-9
        throughput = bench.get("throughput") or {}
        value = bench.get("value_str") or ""
        elements = throughput.get("Elements")
        if elements:
            per_element = seconds / elements
            bytes_per_element = payload_bytes(value)
        else:
            per_element = seconds
            bytes_per_element = throughput.get("Bytes") or throughput.get("BytesDecimal")
        key = (bench["group_id"], value)
        if key not in results:
            results[key] = {}
            order.append(key)
        results[key][bench["function_id"]] = (per_element, bytes_per_element)
    return results, order


def payload_bytes(value):
    """The payload one element carries, from a parameter like `1024` or `16x4096`."""
    if re.fullmatch(r"\d+", value):
        return int(value)
    m = re.fullmatch(r"(\d+)x(\d+)", value)
    return int(m.group(1)) * int(m.group(2)) if m else None


def sort_key(key):
    group, value = key
    number = payload_bytes(value)
    return (group, number if number is not None else math.inf, value)


def fmt_time(seconds):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return "?"


def fmt_rate(bytes_per_element, seconds):
    if not bytes_per_element or seconds <= 0:
        return "-"
    rate = bytes_per_element / seconds
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("KB/s", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.3g} {unit}"
    return f"{rate:.3g} B/s"


def main():
    global SUBJECT
    SUBJECT = ARGS.subject
    root = ARGS.criterion_dir
    if not os.path.isdir(root):
        sys.exit(f"no criterion results at {root}: run `cargo bench` first")
    results, _ = load(root)
    selected = sorted((k for k in results if ARGS.filter in k[0]), key=sort_key)
    keys = [k for k in selected if SUBJECT in results[k]]
    loose = [k for k in selected if SUBJECT not in results[k]]
    if not selected:
        sys.exit("no matching results")
    if loose:
        # Groups with nothing to compare against (the handshake): plain times.
        print_table(["group", "param", "function", "time/elem"],
                    [[k[0], k[1], f, fmt_time(results[k][f][0])] for k in loose for f in sorted(results[k])],
                    summary=False)
        print()
    if not keys:
        return
    others = sorted({f for k in keys for f in results[k] if f not in (SUBJECT, BASELINE)},
                    key=lambda f: (ORDER.index(f) if f in ORDER else len(ORDER), f))

    header = ["group", "param", f"{SUBJECT}/elem", f"{SUBJECT} rate"] + [f"{f}/ws" for f in others] + ["ws/baseline"]
    rows = []
    logs = {column: [] for column in header[4:]}
    for key in keys:
        group, value = key
        ours, nbytes = results[key][SUBJECT]
        row = [group, value, fmt_time(ours), fmt_rate(nbytes, ours)]
        for f in others:
            theirs = results[key].get(f)
            if theirs is None:
                row.append("")
                continue
            ratio = theirs[0] / ours
            logs[f"{f}/ws"].append(math.log(ratio))
            row.append(f"{ratio:.2f}")
        floor = results[key].get(BASELINE)
        if floor:
            ratio = ours / floor[0]
            logs["ws/baseline"].append(math.log(ratio))
            row.append(f"{ratio:.2f}")
        else:
            row.append("")
        rows.append(row)
    summary = ["geomean", f"{len(rows)} rows", "", ""]
    for column in header[4:]:
        values = logs[column]
        summary.append(f"{math.exp(sum(values) / len(values)):.2f}" if values else "")
    print_table(header, rows + [summary])
    print()
    print("f/ws: that implementation's time divided by wscore's (above 1: wscore is faster).")
    print("ws/baseline: wscore's time divided by the minimal hand-written codec's (1 = at the floor).")


def print_table(header, rows, summary=True):
    if ARGS.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" if i < 2 else "--:" for i in range(len(header))) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for n, row in enumerate([header] + rows):
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
        if n == 0 or (summary and n == len(rows) - 1):
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into `head`
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("filter", nargs="?", default="", help="only groups whose name contains this")
    parser.add_argument("--criterion-dir", default=os.path.join(here, "..", "target", "criterion"))
    parser.add_argument("--stat", choices=["headline", "slope", "mean", "median"], default="headline")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--subject", default=SUBJECT,
                        help="the function the others are compared with (default: wscore; e.g. wscore_ref)")
    ARGS = parser.parse_args()
    main()
