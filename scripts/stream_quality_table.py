#!/usr/bin/env python3
"""Tables of scripts/stream_quality.sh's runs (each OUT/<policy>/questions.jsonl + summary.json):
  1. exact match by requested fact distance, every policy (all questions of the stream);
  2. exact match by stream length (tokens streamed when the question was asked) for each distance;
  3. digit accuracy (answer tokens right, teacher-forced) by distance.
Usage: stream_quality_table.py OUT_DIR"""
import json, os, sys

root = sys.argv[1]
buckets = [(0, 4096, "<4K"), (4096, 16384, "4K–16K"), (16384, 65536, "16K–64K"), (65536, 262144, "64K–256K"),
           (262144, 1 << 62, "256K–1M+")]
runs = {}
for name in sorted(os.listdir(root)):
    qpath, spath = os.path.join(root, name, "questions.jsonl"), os.path.join(root, name, "summary.json")
    if not (os.path.exists(qpath) and os.path.exists(spath)):
        continue
    qs = [json.loads(line) for line in open(qpath)]
    runs[name] = (qs, json.load(open(spath)))
dists = sorted({q["requested_distance"] for qs, _ in runs.values() for q in qs})


def cell(qs, key=lambda q: q["correct"]):
    return f"{sum(1 for q in qs if key(q))}/{len(qs)}" if qs else "—"


print("Exact match by fact distance (all questions):\n")
print("| policy | tokens | cache bytes | slots | decode ms/token | " + " | ".join(f"d={d}" for d in dists) + " | all |")
print("|---|---|---|---|---|" + "---|" * (len(dists) + 1))
for name, (qs, s) in runs.items():
    cells = [cell([q for q in qs if q["requested_distance"] == d]) for d in dists]
    print(f"| {name} | {s['tokens']} | {s['cache_bytes']} | {s['cache_slots']} | {s['decode_ms_per_token']:.3f} | "
          + " | ".join(cells) + f" | {s['accuracy']:.3f} |")

print("\nExact match by stream length at each fact distance:\n")
print("| policy | distance | " + " | ".join(b[2] for b in buckets) + " |")
print("|---|---|" + "---|" * len(buckets))
for name, (qs, _) in runs.items():
    for d in dists:
        cells = [cell([q for q in qs if q["requested_distance"] == d and lo <= q["tokens"] < hi]) for lo, hi, _ in buckets]
        print(f"| {name} | {d} | " + " | ".join(cells) + " |")

print("\nDigit accuracy (teacher-forced answer tokens right) by fact distance:\n")
print("| policy | " + " | ".join(f"d={d}" for d in dists) + " |")
print("|---|" + "---|" * len(dists))
for name, (qs, _) in runs.items():
    cells = []
    for d in dists:
        sel = [q for q in qs if q["requested_distance"] == d]
        n = sum(len(q["gold"]) for q in sel)
        ok = sum(sum(1 for a, b in zip(q["gold"], q["guess"]) if a == b) for q in sel)
        cells.append(f"{ok / n:.2f}" if n else "—")
    print(f"| {name} | " + " | ".join(cells) + " |")
