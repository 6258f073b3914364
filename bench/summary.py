#!/usr/bin/env python3
"""Summarises bench/compare.sh and bench/scale.sh results.

compare: median wall time of pouch and of the pipeline per operation, the
median of the per-pair ratios, peak RSS. With BENCH_MACHINE=FILE in the
environment it also appends one line per operation to FILE:
    CORPUS OPERATION RATIO POUCH_S PIPE_S POUCH_RSS_MIB PIPE_RSS_MIB
(the first three are bench/reference.txt's columns; bench/guard.sh reads them).

scale: per size and tool, wall time, time per file (files corpora) or per
GiB (streams) and peak RSS; with --final, the growth of the time per file
(per GiB) from the smallest size to the largest, and each command's worst
peak RSS over all sizes. An ITEM is KIND:N:RESULTS, KIND being files (N
files) or stream (one file of N MiB).

Usage: summary.py RESULTS PAYLOAD_BYTES [CORPUS]
       summary.py scale [--final] ITEM...
"""
import os
import statistics
import sys

OPS = ["pack", "unpack", "verify", "verifyi"]
NAMES = {"pack": "pack", "unpack": "unpack", "verify": "verify (no key)", "verifyi": "verify -i"}
TOOLS = {"pouch": "pouch", "pipe": "tar|zstd|age", "rage": "tar|zstd|rage", "mlar": "mlar"}
PIPE_VERIFY = "sha256sum"  # the pipeline's check without a key


def read(path):
    """{(op, tool): [(seconds, maxrss_kib), ...]} of the measured (run-) lines."""
    runs = {}
    for line in open(path):
        if not line.startswith("run-"):
            continue
        label, s, m = line.split()
        _, op, tool = label.split("-")
        runs.setdefault((op, tool), []).append((float(s), int(m)))
    return runs


def compare(path, payload, corpus):
    runs = read(path)
    machine = os.environ.get("BENCH_MACHINE")
    out = open(machine, "a") if machine else None
    print(f"   {'operation':<16} {'pouch s':>9} {'pipeline s':>11} {'ratio':>7} {'pouch RSS':>11} {'pipe RSS':>10}")
    for op in OPS:
        a, b = runs.get((op, "pouch"), []), runs.get((op, "pipe"), [])
        if not a or not b:
            continue
        ratios = [x[0] / y[0] if y[0] > 0 else float("inf") for x, y in zip(a, b)]
        ma, mb, mr = statistics.median(s for s, _ in a), statistics.median(s for s, _ in b), statistics.median(ratios)
        ra, rb = max(m for _, m in a) / 1024, max(m for _, m in b) / 1024
        extra = ""
        if op == "verify":
            extra = f"   ({payload / ma / 1e9:.2f} GB/s of payload)" if ma > 0 else ""
        print(f"   {NAMES[op]:<16} {ma:>9.2f} {mb:>11.2f} {mr:>7.2f} {ra:>8.1f} MiB {rb:>6.1f} MiB{extra}")
        if out:
            print(f"{corpus or '-'} {op} {mr:.4f} {ma:.6f} {mb:.6f} {ra:.1f} {rb:.1f}", file=out)
    print("   (ratio: median of per-pair pouch/pipeline; RSS: peak of any pouch run / largest pipeline process)")


def parse_item(item):
    kind, n, path = item.split(":", 2)
    if kind not in ("files", "stream"):
        sys.exit(f"summary.py: unknown kind {kind!r} in {item!r}")
    return kind, int(n), read(path)


def tool_name(op, tool):
    return PIPE_VERIFY if (op, tool) == ("verify", "pipe") else TOOLS.get(tool, tool)


def unit(kind):
    return "µs/file" if kind == "files" else "s/GiB"


def per_unit(kind, n, seconds):
    return seconds / n * 1e6 if kind == "files" else seconds / (n / 1024)


def size_name(kind, n):
    if kind == "files":
        return f"{n} files"
    return f"{n >> 10} GiB" if n % 1024 == 0 else f"{n} MiB"


def scale_table(kind, n, runs):
    print(f"   {'operation':<16} {'tool':<14} {'wall s':>9} {unit(kind):>9} {'÷ pipe':>7} {'peak RSS':>12}")
    for op in OPS:
        pipe = runs.get((op, "pipe"))
        for tool in TOOLS:
            r = runs.get((op, tool))
            if not r:
                continue
            wall = statistics.median(s for s, _ in r)
            ratio = ""
            if pipe and tool != "pipe":
                p = statistics.median(s for s, _ in pipe)
                ratio = f"{wall / p:.2f}" if p > 0 else "inf"
            print(f"   {NAMES[op]:<16} {tool_name(op, tool):<14} {wall:>9.2f} {per_unit(kind, n, wall):>9.2f} {ratio:>7} "
                  f"{max(m for _, m in r) / 1024:>8.1f} MiB")


def scale_final(items):
    for kind in ("files", "stream"):
        sized = sorted((n, runs) for k, n, runs in items if k == kind)
        if len(sized) < 2:
            continue
        (n0, r0), (n1, r1) = sized[0], sized[-1]
        print(f"== growth of the time per {'file' if kind == 'files' else 'GiB'}, {size_name(kind, n0)} -> {size_name(kind, n1)} "
              f"(largest / smallest; 1.00 = linear)")
        tools = [t for t in TOOLS if any((op, t) in r0 and (op, t) in r1 for op in OPS)]
        print(f"   {'operation':<16}" + "".join(f" {TOOLS[t]:>14}" for t in tools))
        for op in OPS:
            cells = []
            for t in tools:
                a, b = r0.get((op, t)), r1.get((op, t))
                if not a or not b:
                    cells.append(f" {'-':>14}")
                    continue
                u0 = per_unit(kind, n0, statistics.median(s for s, _ in a))
                u1 = per_unit(kind, n1, statistics.median(s for s, _ in b))
                cells.append(f" {u1 / u0:>14.2f}" if u0 > 0 else f" {'inf':>14}")
            print(f"   {NAMES[op]:<16}" + "".join(cells))
    print("== worst peak RSS of each command over all sizes")
    for op in OPS:
        for tool in TOOLS:
            worst = [(max(m for _, m in runs[(op, tool)]), size_name(kind, n))
                     for kind, n, runs in items if (op, tool) in runs]
            if worst:
                m, where = max(worst)
                print(f"   {NAMES[op]:<16} {tool_name(op, tool):<14} {m / 1024:>8.1f} MiB   (at {where})")


def main(argv):
    if argv[:1] == ["scale"]:
        final = "--final" in argv
        items = [parse_item(a) for a in argv[1:] if a != "--final"]
        if final:
            scale_final(items)
        else:
            for item in items:
                scale_table(*item)
        return
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    compare(argv[0], int(argv[1]), argv[2] if len(argv) == 3 else None)


main(sys.argv[1:])
