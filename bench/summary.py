#!/usr/bin/env python3
"""Summarises bench/compare.sh results: median wall time of pouch and of the
pipeline per operation, the median of the per-pair ratios, peak RSS.
Usage: summary.py RESULTS PAYLOAD_BYTES"""
import statistics
import sys

rows = [line.split() for line in open(sys.argv[1]) if line.startswith("run-")]
payload = int(sys.argv[2])
ops = ["pack", "unpack", "verify", "verifyi"]
names = {"pack": "pack", "unpack": "unpack", "verify": "verify (no key)", "verifyi": "verify -i"}
print(f"   {'operation':<16} {'pouch s':>9} {'pipeline s':>11} {'ratio':>7} {'pouch RSS':>11} {'pipe RSS':>10}")
for op in ops:
    a = [(float(s), int(m)) for (l, s, m) in rows if l == f"run-{op}-pouch"]
    b = [(float(s), int(m)) for (l, s, m) in rows if l == f"run-{op}-pipe"]
    if not a or not b:
        continue
    ratios = [x[0] / y[0] if y[0] > 0 else float("inf") for x, y in zip(a, b)]
    extra = ""
    if op == "verify":
        med = statistics.median(s for s, _ in a)
        extra = f"   ({payload / med / 1e9:.2f} GB/s of payload)" if med > 0 else ""
    print(f"   {names[op]:<16} {statistics.median(s for s, _ in a):>9.2f} {statistics.median(s for s, _ in b):>11.2f} "
          f"{statistics.median(ratios):>7.2f} {max(m for _, m in a) / 1024:>8.1f} MiB {max(m for _, m in b) / 1024:>6.1f} MiB{extra}")
print("   (ratio: median of per-pair pouch/pipeline; RSS: peak of any pouch run / largest pipeline process)")
