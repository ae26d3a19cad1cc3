#!/usr/bin/env python3
"""Splits a heaptrack profile's peak heap by what allocated it, per connection.

    heaptrack_print -f heaptrack.zst -F stacks.txt --flamegraph-cost-type peak
    python3 bench-e2e/heap_breakdown.py stacks.txt CONNECTIONS

stacks.txt holds one "frame;frame;...;frame bytes" line per call path (outermost frame first),
the bytes being that path's share of the peak. Each path is charged to the first of the
categories below found from its innermost frame outwards; bytes are divided by CONNECTIONS
(the idle connections open at the peak). Used by bench-e2e/idle_profile.sh. Standard library only.
"""

import collections
import re
import sys

CATEGORIES = [
    (r"wscore::connection::recv::Receiver::spare", "receive buffer (Receiver::spare, sized by read_buffer_size)"),
    (r"wscore::connection::send|SendQueue", "send queue"),
    (r"wscore::handshake", "handshake leftovers (request, protocol, headers)"),
    (r"wscore::", "other wscore allocations"),
    (r"fastwebsockets::", "fastwebsockets allocations (its buffers)"),
    (r"tokio_websockets::", "tokio-websockets allocations (its buffers)"),
    (r"tungstenite::", "tungstenite allocations (its buffers)"),
    (r"tokio::runtime::task::core::Cell.*::new", "tokio task: the connection's future, inline"),
    (r"tokio::sync::mpsc", "tokio mpsc channel (the example's per-connection command channel)"),
    (r"tokio::runtime::io::registration_set|ScheduledIo", "tokio I/O registration (per socket)"),
    (r"JoinSet|hashbrown|HashMap", "JoinSet and HashMap entries (the example's bookkeeping)"),
    (r"tokio::runtime::(builder|blocking|io::driver|scheduler)", "tokio runtime (not per connection)"),
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, connections = sys.argv[1], int(sys.argv[2])
    totals = collections.Counter()
    for line in open(path, errors="replace"):
        stack, _, cost = line.rstrip("\n").rpartition(" ")
        if not cost.isdigit():
            continue
        frames = stack.split(";")
        label = "other"
        for frame in reversed(frames):
            found = next((name for pattern, name in CATEGORIES if re.search(pattern, frame)), None)
            if found:
                label = found
                break
        totals[label] += int(cost)
    total = sum(totals.values())
    print(f"peak heap {total / 1e6:.1f} MB with {connections} idle connections; per connection:")
    for label, cost in totals.most_common():
        print(f"  {cost / connections:>10,.0f} B  {label}")
    print(f"  {total / connections:>10,.0f} B  total")


if __name__ == "__main__":
    main()
