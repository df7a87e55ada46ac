import csv, sys
rows = list(csv.reader(sys.stdin))
k = next((i for i, r in enumerate(rows) if 'Kernel Name' in r), None)
if k is None: print('no csv'); sys.exit()
h = rows[k]; i = h.index('Kernel Name'); j = h.index('gpu__time_duration.sum'); tot = 0
for r in rows[k + 1:]:
    try: x = float(r[j])
    except: continue
    tot += x; print(f'{x/1000:8.1f} us  {r[i][:80]}')
print(f'  total {tot/1000:.1f} us')
