#!/usr/bin/env python3
"""Markdown table of an MQAR sweep (scripts/mqar_sweep.sh): best accuracy over learning rates per
(backbone, seq len, d_model), with every learning rate's accuracy, parameters, steps and wall time of the best run.
A run without summary.json (killed hard) is read from the last evaluation in its metrics.jsonl."""
import json, os, re, sys

root = sys.argv[1]
best, by_lr = {}, {}
for name in sorted(os.listdir(root)):
    m = re.match(r"(\w+?)_L(\d+)_d(\d+)_lr([\d.e-]+)$", name)
    if not m:
        continue
    path = os.path.join(root, name, "summary.json")
    metrics = os.path.join(root, name, "metrics.jsonl")
    if os.path.exists(path):
        s = json.load(open(path))
        acc = s["eval"].get("accuracy", 0.0)
        row = dict(acc=acc, params=s["params"], step=s["step"], time=s["elapsed_s"], device=s["device"],
                   stopped="early stop" if s.get("early_stopped") else ("time limit" if s.get("interrupted") else "all steps"))
    elif os.path.exists(metrics):
        evals = [j for j in map(json.loads, open(metrics)) if "eval" in j]
        if not evals:
            continue
        last = evals[-1]
        row = dict(acc=last["eval"].get("accuracy", 0.0), params="?", step=last["step"], time=last.get("elapsed_s", 0.0),
                   device="?", stopped="killed (metrics.jsonl)")
        acc = row["acc"]
    else:
        continue
    key = (m.group(1), int(m.group(2)), int(m.group(3)))
    row["lr"] = m.group(4)
    by_lr.setdefault(key, {})[m.group(4)] = acc
    if key not in best or acc > best[key]["acc"]:
        best[key] = row
print("| backbone | seq len | kv pairs | d_model | best lr | accuracy | accuracy per lr | params | steps | ended by | time (s) | device |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (b, L, d), r in sorted(best.items()):
    per = ", ".join(f"{lr}: {a:.3f}" for lr, a in sorted(by_lr[(b, L, d)].items(), key=lambda kv: float(kv[0])))
    print(f"| {b} | {L} | {L // 16} | {d} | {r['lr']} | {r['acc']:.4f} | {per} | {r['params']} | {r['step']} | {r['stopped']} | {r['time']:.1f} | {r['device']} |")
