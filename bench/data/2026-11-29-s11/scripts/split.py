import csv, sys
# per-kernel times from `ncu --csv --page raw --metrics gpu__time_duration.sum` (the app's own output may precede the
# csv; numbers may carry thousands separators; a units row follows the header)
rows = list(csv.reader(sys.stdin))
k = next((i for i, r in enumerate(rows) if 'Kernel Name' in r), None)
if k is None: print('no csv'); sys.exit()
h = rows[k]; i = h.index('Kernel Name'); j = h.index('gpu__time_duration.sum')
unit = rows[k + 1][j] if len(rows) > k + 1 else ''
scale = {'nsecond': 1e-3, 'ns': 1e-3, 'usecond': 1.0, 'us': 1.0, 'msecond': 1e3, 'ms': 1e3}.get(unit.strip(), None)
tot = 0
for r in rows[k + 1:]:
    if len(r) <= max(i, j): continue
    try: x = float(r[j].replace(',', ''))
    except ValueError: continue
    x_us = x * (scale if scale is not None else 1e-3)
    tot += x_us; print(f'{x_us:8.1f} us  {r[i][:80]}')
print(f'  total {tot:.1f} us (unit row: {unit!r})')
