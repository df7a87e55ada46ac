#!/usr/bin/env python3
"""Accuracy by requested fact distance for each policy run of scripts/stream_quality.sh (questions.jsonl)."""
import json, os, sys

root = sys.argv[1]
rows, dists = {}, set()
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "questions.jsonl")
    if not os.path.exists(path):
        continue
    by = {}
    for line in open(path):
        q = json.loads(line)
        d = q["requested_distance"]
        dists.add(d)
        n, c = by.get(d, (0, 0))
        by[d] = (n + 1, c + (1 if q["correct"] else 0))
    summary = json.load(open(os.path.join(root, name, "summary.json")))
    rows[name] = (by, summary)
ds = sorted(dists)
print("| policy | cache bytes | " + " | ".join(f"distance {d}" for d in ds) + " | all |")
print("|---|---|" + "---|" * (len(ds) + 1))
for name, (by, s) in rows.items():
    cells = [f"{by[d][1]}/{by[d][0]}" if d in by else "—" for d in ds]
    print(f"| {name} | {s['cache_bytes']} | " + " | ".join(cells) + f" | {s['accuracy']:.3f} |")
