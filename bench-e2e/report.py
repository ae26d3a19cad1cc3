#!/usr/bin/env python3
"""Turns the raw output of bench-e2e/run.sh into tables and results.json.

    python3 bench-e2e/report.py [OUT_DIR]        # default target/e2e

Reads OUT_DIR/machine.txt (key=value lines), OUT_DIR/throughput.jsonl and OUT_DIR/idle.jsonl
(one load generator result per line, with "server" and "case" added by run.sh), prints the
msgs/s table (best run of each server x case), the ratios of every wscore server to the best
peer, the CPU use behind each number and the idle memory, and writes OUT_DIR/results.json (what
chart.py reads) and OUT_DIR/results.md (the README table). Standard library only.
"""

import json
import os
import sys

# Display order and names; anything else found in the results is appended.
SERVERS = [
    ("wscore-tokio", "wscore tokio_echo_server"),
    ("wscore-embedded", "wscore embedded_echo_server"),
    ("wscore-std", "wscore std_echo_server"),
    ("wscore-tokio-send", "wscore tokio, the peers' loop"),
    ("tungstenite", "tungstenite (blocking)"),
    ("tokio-tungstenite", "tokio-tungstenite"),
    ("fastwebsockets", "fastwebsockets"),
    ("tokio-websockets", "tokio-websockets"),
]
# Below this share of a core the server was not the bottleneck (see README): marked with "~".
SATURATED = 0.85


def load_jsonl(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    rows.append(json.loads(line))
    return rows


def load_machine(path):
    machine = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    machine[key] = value
    return machine


def case_name(connections, size, in_flight=None):
    label = size_label(connections, size)
    return label if in_flight is None else f"{label}, {in_flight} in flight"


def size_label(connections, size):
    if size >= 1 << 20 and size % (1 << 20) == 0:
        unit = f"{size >> 20} MiB"
    elif size >= 1024 and size % 1024 == 0:
        unit = f"{size >> 10} KiB"
    else:
        unit = f"{size} B"
    return f"{connections} x {unit}"


def human(rate):
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e4:
        return f"{rate / 1e3:.0f}k"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.0f}"


def summarize(out):
    machine = load_machine(os.path.join(out, "machine.txt"))
    runs = load_jsonl(os.path.join(out, "throughput.jsonl"))
    idle_rows = load_jsonl(os.path.join(out, "idle.jsonl"))

    order = [key for key, _ in SERVERS]
    names = dict(SERVERS)
    for row in runs + idle_rows:
        if row["server"] not in order:
            order.append(row["server"])
            names[row["server"]] = row["server"]

    cases = []
    for row in runs:
        case = (row["connections"], row["size"], row["in_flight"])
        if case not in cases:
            cases.append(case)
    cases.sort(key=lambda c: (c[2], c[1]))

    # Best run per server and case: interference from other processes only ever slows a run.
    throughput = {}
    for row in runs:
        case = case_name(row["connections"], row["size"], row["in_flight"])
        cells = throughput.setdefault(row["server"], {})
        previous = cells.get(case)
        history = (previous["runs"] if previous else []) + [row["msgs_per_s"]]
        if previous is None or row["msgs_per_s"] > previous["msgs_per_s"]:
            cells[case] = dict(row)
        cells[case]["runs"] = history

    servers = [s for s in order if s in throughput or any(r["server"] == s for r in idle_rows)]
    wscore = [s for s in servers if s.startswith("wscore")]
    peers = [s for s in servers if not s.startswith("wscore")]
    case_names = [case_name(*c) for c in cases]
    case_info = [{"id": case_name(*c), "label": size_label(c[0], c[1]), "connections": c[0], "size": c[1], "in_flight": c[2]} for c in cases]

    ratios = {}
    best_peer = {}
    for case in case_names:
        candidates = [(throughput[p][case]["msgs_per_s"], p) for p in peers if case in throughput.get(p, {})]
        if not candidates:
            continue
        rate, peer = max(candidates)
        best_peer[case] = {"server": peer, "msgs_per_s": rate}
        for w in wscore:
            if case in throughput.get(w, {}):
                ratios.setdefault(w, {})[case] = throughput[w][case]["msgs_per_s"] / rate

    idle = {}
    for row in idle_rows:
        idle[row["server"]] = {
            "idle_connections": row["idle_connections"],
            "bytes_per_connection": row["bytes_per_connection"],
            "rss_before": row["rss_before"],
            "rss_after": row["rss_after"],
            "server_threads": row["server_threads"],
        }

    return {
        "machine": machine,
        "cases": case_info,
        "servers": servers,
        "names": {s: names[s] for s in servers},
        "throughput": throughput,
        "best_peer": best_peer,
        "ratios": ratios,
        "idle": idle,
    }


def in_flight_depths(r):
    """The in-flight depths of the cases, in the order they first appear."""
    depths = []
    for c in r["cases"]:
        if c["in_flight"] not in depths:
            depths.append(c["in_flight"])
    return depths


def text_tables(r):
    lines = []
    m = r["machine"]
    lines.append(f"machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('kernel', '?')}; {m.get('rustc', '?')}")
    lines.append(
        f"run: {m.get('date', '?')}, commit {m.get('commit', '?')}, scheduling {m.get('priority', '?')}, "
        f"in flight {m.get('in_flight', '?')}, warm-up {m.get('warmup', '?')} s, window {m.get('duration', '?')} s, "
        f"best of {m.get('repeat', '?')}; load average before {m.get('load_before', '?')}, after {m.get('load_after', '?')}"
    )
    width = max([len(r["names"][s]) for s in r["servers"]] + [30])
    for depth in in_flight_depths(r):
        cases = [c for c in r["cases"] if c["in_flight"] == depth]
        head = " " * width + "".join(f"{c['label']:>18}" for c in cases)
        lines.append("")
        lines.append(f"msgs/s, {depth} in flight per connection (best run; ~ = server below {SATURATED:.2f} of a core)")
        lines.append(head)
        for s in r["servers"]:
            cells = r["throughput"].get(s, {})
            row = ""
            for c in cases:
                cell = cells.get(c["id"])
                if cell is None:
                    row += f"{'-':>18}"
                else:
                    mark = "~" if (cell.get("server_cpu") or 0) < SATURATED else ""
                    row += f"{mark + format(cell['msgs_per_s'], ',.0f'):>18}"
            lines.append(f"{r['names'][s]:<{width}}{row}")
        lines.append(f"{'best peer':<{width}}" + "".join(f"{r['best_peer'].get(c['id'], {}).get('server', '-'):>18}" for c in cases))
        for w, per_case in r["ratios"].items():
            label = r["names"][w].replace("wscore ", "") + " / best peer"
            lines.append(f"{label:<{width}}" + "".join(f"{(format(per_case[c['id']], '.2f') + 'x') if c['id'] in per_case else '-':>18}" for c in cases))
        lines.append(f"CPU, server / load generator (1.00 = one core; 0.95 is all a real-time process gets):")
        for s in r["servers"]:
            cells = r["throughput"].get(s, {})
            row = ""
            for c in cases:
                cell = cells.get(c["id"])
                if cell is None or cell.get("server_cpu") is None:
                    row += f"{'-':>18}"
                else:
                    row += f"{'%.2f / %.2f' % (cell['server_cpu'], cell['loadgen_cpu']):>18}"
            lines.append(f"{r['names'][s]:<{width}}{row}")
    if r["idle"]:
        lines.append("")
        lines.append("server memory per idle connection ((RSS after - RSS before) / connections)")
        for s in r["servers"]:
            cell = r["idle"].get(s)
            if cell:
                lines.append(
                    f"{r['names'][s]:<{width}}{cell['bytes_per_connection']:>10,.0f} B"
                    f"   ({cell['idle_connections']} connections, {cell['server_threads']} threads)"
                )
    return "\n".join(lines)


def markdown(r):
    out = []
    for depth in in_flight_depths(r):
        cases = [c for c in r["cases"] if c["in_flight"] == depth]
        out.append(f"| msgs/s, {depth} in flight | " + " | ".join(c["label"] for c in cases) + " |")
        out.append("|---|" + "---:|" * len(cases))
        for s in r["servers"]:
            cells = r["throughput"].get(s, {})
            if not cells:
                continue
            name = r["names"][s]
            row = []
            for c in cases:
                cell = cells.get(c["id"])
                if cell is None:
                    row.append("–")
                else:
                    mark = "~" if (cell.get("server_cpu") or 0) < SATURATED else ""
                    row.append(f"{mark}{cell['msgs_per_s']:,.0f}")
            if s.startswith("wscore"):
                name = f"**{name}**"
            out.append(f"| {name} | " + " | ".join(row) + " |")
        for w, per_case in r["ratios"].items():
            label = r["names"][w].replace("wscore ", "") + " / best peer"
            out.append(f"| {label} | " + " | ".join(f"{per_case[c['id']]:.2f}×" if c["id"] in per_case else "–" for c in cases) + " |")
        out.append("")
    if r["idle"]:
        out.append("| server memory per idle connection | bytes |")
        out.append("|---|---:|")
        for s in r["servers"]:
            cell = r["idle"].get(s)
            if cell:
                note = "" if cell["idle_connections"] >= 10000 else f" ({cell['idle_connections']} connections)"
                out.append(f"| {r['names'][s]}{note} | {cell['bytes_per_connection']:,.0f} |")
    return "\n".join(out) + "\n"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "target/e2e"
    r = summarize(out)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(r, f, indent=1)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(markdown(r))
    print(text_tables(r))
    print(f"\nwrote {out}/results.json and {out}/results.md")


if __name__ == "__main__":
    main()
