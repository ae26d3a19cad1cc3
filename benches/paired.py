#!/usr/bin/env python3
"""Runs the decode bench's paired mode (WSCORE_PAIRED, see benches/paired) in several processes and
prints the median of every cell, with each cell's range over the processes.

One process's table can sit a few percent off the next one's: where the allocator and the stack
land differs from process to process (address-space randomization), and on this machine some
placements cost a codec 5-70 % (4K aliasing between buffers, and between a buffer and the stack).
The paired rounds cancel drift within a process, the median over processes cancels placement.

    python3 benches/paired.py                                  # binary fed whole, 5 processes
    python3 benches/paired.py -n 7 'decode/text-ascii/whole/'  # other cases, more processes
    python3 benches/paired.py --rounds 101 --subject wscore 'decode/binary/1460/1024$'

Each process is `taskset -c CPU cargo bench --bench decode` (CPU 1 unless --cpu; --cpu -1 does not
pin), built once before the first.
"""

import argparse
import os
import statistics
import subprocess
import sys


def run_once(args):
    env = dict(os.environ, WSCORE_PAIRED=args.filter, WSCORE_PAIRED_ROUNDS=str(args.rounds),
               WSCORE_PAIRED_SUBJECT=args.subject)
    command = ["cargo", "bench", "-q", "--bench", "decode"]
    if args.cpu >= 0:
        command = ["taskset", "-c", str(args.cpu)] + command
    out = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    header, rows = None, {}
    for line in out.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "case":
            header = cells
        else:
            rows[cells[0]] = cells[1:]
    if header is None:
        sys.exit("the bench printed no table: does the filter match a case?\n" + out)
    return header, rows


def number(cell):
    return None if cell in ("–", "-", "") else float(cell.rstrip("×"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("filter", nargs="?", default="decode/binary/whole/",
                        help="comma-separated substrings of group/parameter; `$` anchors the end")
    parser.add_argument("-n", "--processes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=51)
    parser.add_argument("--subject", default="wscore_ref")
    parser.add_argument("--cpu", type=int, default=1)
    args = parser.parse_args()

    subprocess.run(["cargo", "bench", "-q", "--bench", "decode", "--no-run"], check=True)
    header, runs, order = None, [], []
    for i in range(args.processes):
        print(f"process {i + 1}/{args.processes}", file=sys.stderr)
        run_header, rows = run_once(args)
        if header is None:
            header = run_header
        elif run_header != header:
            sys.exit("the processes printed different columns")
        order = order or list(rows)
        runs.append(rows)

    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for case in order:
        line = [case]
        for column in range(len(header) - 1):
            values = [number(rows[case][column]) for rows in runs if case in rows]
            values = [v for v in values if v is not None]
            if not values:
                line.append("–")
                continue
            unit = "" if column == 0 else "×"
            digits = 1 if column == 0 else 2
            cell = f"{statistics.median(values):.{digits}f}{unit}"
            if len(values) > 1:
                cell += f" ({min(values):.{digits}f}–{max(values):.{digits}f})"
            line.append(cell)
        print("| " + " | ".join(line) + " |")
    print(f"\nMedian over {len(runs)} processes of {args.rounds} paired rounds each (range in brackets); "
          f"time per message in ns; ratios: that column's time over {args.subject}'s, the last "
          f"{args.subject}'s over the minimal codec's.")


if __name__ == "__main__":
    main()
