#!/usr/bin/env python3
"""Draws the end-to-end benchmark's results as an SVG grouped bar chart (standard library only).

    python3 bench-e2e/chart.py [target/e2e/results.json] [docs/perf-e2e.svg]

One panel per case (msgs/s, one bar per server, each panel on its own scale since the cases
differ by orders of magnitude), plus a panel of server memory per idle connection when
results.json has it; wscore's servers in blues, the peers in other colours; the machine and
command underneath. results.json comes from bench-e2e/report.py.
"""

import json
import math
import sys
from xml.sax.saxutils import escape

COLORS = {
    "wscore-tokio": "#1d4f91",
    "wscore-embedded": "#3f7fd0",
    "wscore-std": "#8db8ec",
    "wscore-tokio-send": "#b9d3f2",
    "tungstenite": "#d9822b",
    "tokio-tungstenite": "#f2b56b",
    "fastwebsockets": "#5c9e31",
    "tokio-websockets": "#9b59b6",
}
FALLBACK = ["#777777", "#aa5555", "#55aaaa", "#aaaa55"]

PANEL_W = 190
PANEL_H = 200
GAP = 26
LEFT = 58
TOP = 92
FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""


def nice_max(value):
    if value <= 0:
        return 1
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.6, 2, 2.4, 3.2, 4, 6, 8, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def human(value, unit=""):
    if value >= 1e6:
        text = f"{value / 1e6:.3g}M"
    elif value >= 1e3:
        text = f"{value / 1e3:.3g}k"
    else:
        text = f"{value:.3g}"
    return text + unit


def text(x, y, content, size=11, anchor="middle", weight="normal", fill="#222", rotate=None):
    transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
        f'fill="{fill}" {FONT}{transform}>{escape(content)}</text>'
    )


def panel(x0, top, title, subtitle, bars):
    """bars: list of (server, value or None). Returns SVG elements."""
    out = []
    plot_h = PANEL_H
    values = [v for _, v in bars if v is not None]
    vmax = nice_max(max(values) if values else 1)
    out.append(text(x0 + PANEL_W / 2, top - 30, title, size=13, weight="bold"))
    if subtitle:
        out.append(text(x0 + PANEL_W / 2, top - 14, subtitle, size=10, fill="#555"))
    # Grid and axis labels.
    for i in range(5):
        value = vmax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x0 + PANEL_W:.1f}" y2="{y:.1f}" stroke="#ddd" stroke-width="1"/>')
        out.append(text(x0 - 4, y + 4, human(value), size=9, anchor="end", fill="#666"))
    out.append(
        f'<line x1="{x0:.1f}" y1="{top + plot_h:.1f}" x2="{x0 + PANEL_W:.1f}" y2="{top + plot_h:.1f}" '
        f'stroke="#888" stroke-width="1"/>'
    )
    slot = PANEL_W / max(len(bars), 1)
    bar_w = slot * 0.72
    for i, (server, value) in enumerate(bars):
        x = x0 + i * slot + (slot - bar_w) / 2
        if value is None:
            out.append(text(x + bar_w / 2, top + plot_h - 4, "–", size=10, fill="#999"))
            continue
        h = plot_h * value / vmax
        y = top + plot_h - h
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{COLORS.get(server, FALLBACK[i % 4])}">'
            f"<title>{escape(server)}: {value:,.0f}</title></rect>"
        )
        out.append(text(x + bar_w / 2, y - 3, human(value), size=8, fill="#333"))
    return out


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "target/e2e/results.json"
    dst = sys.argv[2] if len(sys.argv) > 2 else "docs/perf-e2e.svg"
    with open(src) as f:
        r = json.load(f)
    servers = r["servers"]
    names = r["names"]
    # One row of panels per in-flight depth; the idle-memory panel ends the first row.
    depths = []
    for c in r["cases"]:
        if c["in_flight"] not in depths:
            depths.append(c["in_flight"])
    rows = []
    for depth in depths:
        row = []
        for case in [c for c in r["cases"] if c["in_flight"] == depth]:
            bars = [(s, r["throughput"].get(s, {}).get(case["id"], {}).get("msgs_per_s")) for s in servers]
            ratio = r["ratios"].get("wscore-tokio", {}).get(case["id"])
            best = r["best_peer"].get(case["id"], {}).get("server")
            subtitle = f"tokio / best peer ({best}): {ratio:.2f}×" if ratio is not None and best else ""
            row.append((f"{case['label']}, {depth} in flight", subtitle, bars))
        rows.append(row)
    if r.get("idle"):
        bars = [(s, r["idle"].get(s, {}).get("bytes_per_connection")) for s in servers]
        idle_panel = ("idle connection: bytes", "server RSS / connection (lower is better)", bars)
        if rows:
            rows[0].append(idle_panel)
        else:
            rows.append([idle_panel])

    column = PANEL_W + GAP + LEFT - 20
    row_h = PANEL_H + 70
    width = LEFT + max(len(row) for row in rows) * column if rows else 400
    height = TOP + len(rows) * row_h + 56
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        text(width / 2, 24, "WebSocket echo servers on one core: messages per second (higher is better)", size=15, weight="bold"),
    ]
    # Legend.
    x = LEFT
    for i, s in enumerate(servers):
        svg.append(f'<rect x="{x}" y="38" width="12" height="12" fill="{COLORS.get(s, FALLBACK[i % 4])}"/>')
        label = names.get(s, s)
        svg.append(text(x + 16, 48, label, size=11, anchor="start"))
        x += 26 + 6.3 * len(label)
    for j, row in enumerate(rows):
        for i, (title, subtitle, bars) in enumerate(row):
            svg.extend(panel(LEFT + i * column, TOP + 20 + j * row_h, title, subtitle, bars))
    footer_top = TOP + len(rows) * row_h
    m = r.get("machine", {})
    footer = [
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('kernel', '?')}, {m.get('rustc', '?')}; "
        f"server pinned to core 0, load generator to core 1, scheduling {m.get('priority', '?')}",
        f"binary messages, no compression; best of "
        f"{m.get('repeat', '?')} runs of {m.get('duration', '?')} s after {m.get('warmup', '?')} s warm-up; "
        f"{m.get('date', '?')}, commit {m.get('commit', '?')}",
        f"{m.get('command', 'bash bench-e2e/run.sh')}   (bench-e2e/README.md)",
    ]
    if r.get("idle"):
        counts = sorted({cell["idle_connections"] for cell in r["idle"].values()}, reverse=True)
        note = f"idle memory: {counts[0]:,} upgraded connections per server"
        small = [names.get(s, s) + f" {cell['idle_connections']:,}" for s, cell in r["idle"].items() if cell["idle_connections"] != counts[0]]
        if small:
            note += " (" + ", ".join(small) + ": its fixed connection table)"
        footer.insert(2, note)
    for i, line in enumerate(footer):
        svg.append(text(LEFT, footer_top + 8 + 15 * i, line, size=10, anchor="start", fill="#444"))
    svg.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
