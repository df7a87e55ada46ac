#!/usr/bin/env python3
"""Markdown table of an MQAR sweep (scripts/mqar_sweep.sh): best accuracy over learning rates per
(backbone, seq len, d_model), with parameters, steps and wall time of that best run."""
import json, os, re, sys

root = sys.argv[1]
best = {}
for name in sorted(os.listdir(root)):
    m = re.match(r"(\w+?)_L(\d+)_d(\d+)_lr([\d.e-]+)$", name)
    path = os.path.join(root, name, "summary.json")
    if not m or not os.path.exists(path):
        continue
    s = json.load(open(path))
    key = (m.group(1), int(m.group(2)), int(m.group(3)))
    acc = s["eval"].get("accuracy", 0.0)
    row = dict(acc=acc, lr=m.group(4), params=s["params"], step=s["step"], time=s["elapsed_s"], device=s["device"],
               stopped="early stop" if s.get("early_stopped") else ("time limit" if s.get("interrupted") else "all steps"))
    if key not in best or acc > best[key]["acc"]:
        best[key] = row
print("| backbone | seq len | kv pairs | d_model | best lr | accuracy | params | steps | ended by | time (s) | device |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for (b, L, d), r in sorted(best.items()):
    print(f"| {b} | {L} | {L // 16} | {d} | {r['lr']} | {r['acc']:.4f} | {r['params']} | {r['step']} | {r['stopped']} | {r['time']:.1f} | {r['device']} |")
