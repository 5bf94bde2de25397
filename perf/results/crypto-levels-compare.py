import sys, re
def load(p):
    rows = {}
    hdr = None
    for l in open(p):
        if l.startswith("espgw-perf crypto:"):
            hdr = l.strip()
        m = re.match(r"^(.{26}) (\w+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+x([\d.]+)", l)
        if m:
            k = (m.group(1).strip(), m.group(2), int(m.group(3)), int(m.group(4)))
            rows[k] = dict(mb=float(m.group(5)), cb=float(m.group(6)), ossl=float(m.group(7)), ocb=float(m.group(8)), x=float(m.group(9)))
    return hdr, rows
level = sys.argv[1]
files = sys.argv[2:]
b = [load(f) for f in files if "before" in f]
a = [load(f) for f in files if "after" in f]
def med(vals):
    v = sorted(vals); return v[len(v)//2] if len(v)%2 else (v[len(v)//2-1]+v[len(v)//2])/2
print(f"level {level}: {len(b)} before run(s), {len(a)} after run(s) (medians where more than one); ratios are to OpenSSL in the same process run")
for h in [x[0] for x in b] + [x[0] for x in a]:
    print("  " + (h or "?"))
print(f"{'transform':26} {'dir':5} {'size':>5} {'bat':>3} | {'before MB/s':>11} {'c/B':>7} {'xSSL':>6} | {'after MB/s':>10} {'c/B':>7} {'SSL c/B':>7} {'xSSL':>6}")
keys = list(b[0][1].keys())
for k in keys:
    if not all(k in r[1] for r in b + a): continue
    bm = med([r[1][k]['mb'] for r in b]); bc = med([r[1][k]['cb'] for r in b]); bx = med([r[1][k]['x'] for r in b])
    am = med([r[1][k]['mb'] for r in a]); ac = med([r[1][k]['cb'] for r in a]); ax = med([r[1][k]['x'] for r in a]); oc = med([r[1][k]['ocb'] for r in a])
    flag = " <1" if ax < 1.0 else ""
    print(f"{k[0]:26} {k[1]:5} {k[2]:5} {k[3]:3} | {bm:11.1f} {bc:7.2f} {bx:6.2f} | {am:10.1f} {ac:7.2f} {oc:7.2f} {ax:6.2f}{flag}")
