#!/usr/bin/env python3
"""stall totals and top SASS lines of an ncu source csv(.gz): stall_top.py file [n_lines]"""
import csv, gzip, collections, sys
p = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
rows = list(csv.reader((gzip.open if p.endswith('.gz') else open)(p, 'rt')))
hdr = rows[1]; data = rows[2:]; ix = {h: i for i, h in enumerate(hdr)}
stalls = [h for h in hdr if h.startswith('stall_') and 'Not Issued' not in h]
SM = "Warp Stall Sampling (All Samples)"; EX = "Instructions Executed"
tot = collections.Counter()
for r in data:
    for h in stalls: tot[h[6:]] += int(r[ix[h]] or 0)
T = sum(tot.values())
print(f"samples {T}, instructions {sum(int(r[ix[EX]] or 0) for r in data)}: " + ' '.join(f"{k}:{100*v/T:.1f}" for k, v in tot.most_common(10)))
for r in sorted(data, key=lambda r: -int(r[ix[SM]] or 0))[:n]:
    st = sorted(((int(r[ix[h]] or 0), h[6:]) for h in stalls), reverse=True)[:3]
    print(f"{int(r[ix[SM]]):6d} {r[ix['Source']][:64]:64s} " + ' '.join(f"{b}:{a}" for a, b in st))
