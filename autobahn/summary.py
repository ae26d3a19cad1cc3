#!/usr/bin/env python3
"""Summarise Autobahn TestSuite reports strictly: summary.py REPORT_DIR [AGENT].

Prints every case that is not OK/INFORMATIONAL or whose close behaviour is not OK, then one count
line per agent. Exits non-zero if any case is FAILED, NON-STRICT or UNIMPLEMENTED, if any close
behaviour is not OK, or if the report has no cases at all."""
import collections
import json
import sys

args = sys.argv[1:]
index = json.load(open(args[0] + "/index.json"))
bad = 0
seen = 0
for agent, cases in sorted(index.items()):
    if len(args) > 1 and agent != args[1]:
        continue
    counts = collections.Counter()
    for case in sorted(cases, key=lambda c: [int(x) for x in c.split(".")]):
        r = cases[case]
        behavior, close = r["behavior"], r["behaviorClose"]
        counts[behavior] += 1
        if behavior not in ("OK", "INFORMATIONAL") or close not in ("OK", "INFORMATIONAL"):
            bad += 1
            print(f"  {agent} {case}: behavior={behavior} close={close} remoteCloseCode={r.get('remoteCloseCode')}")
    seen += sum(counts.values())
    kinds = ["OK", "INFORMATIONAL", "NON-STRICT", "UNIMPLEMENTED", "FAILED"]
    print(f"{agent}: " + " ".join(f"{k}={counts.get(k, 0)}" for k in kinds) + f" total={sum(counts.values())}")
sys.exit(1 if bad or not seen else 0)
