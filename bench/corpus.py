#!/usr/bin/env python3
"""Deterministic benchmark corpora for bench/compare.sh.

mixed: reports and logs (compressible text), incompressible blobs (like
photos and PDFs) and a few large files, about MIXED_MIB in all.
small: SMALL_FILES files of 1-4 KiB of text in 100 folders.
Seeded, so every run and every machine gets the same bytes. Made once; a
marker file records the parameters.
Usage: corpus.py DIR MIXED_MIB SMALL_FILES
"""
import os
import random
import sys

root, mixed_mib, small_files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
WORDS = ("case report witness vehicle border seized device evidence officer "
         "statement suspect interview location warrant transfer agency request").split()


def text(rng, size):
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + f" {rng.randint(0, 10**6)}\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def log(rng, size):
    out, n, t = [], 0, 1700000000
    while n < size:
        t += rng.randint(0, 5)
        line = f"{t} host{rng.randint(1, 40)} sshd[{rng.randint(100, 99999)}]: {rng.choice(WORDS)} {rng.choice(WORDS)} from 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def make_mixed(path, mib):
    rng = random.Random(20261129)
    total = mib << 20
    budget = {"reports": total * 25 // 100, "logs": total * 25 // 100, "blobs": total * 30 // 100, "large": total * 20 // 100}
    for kind, size in budget.items():
        d = os.path.join(path, kind)
        os.makedirs(d, exist_ok=True)
        done, i = 0, 0
        while done < size:
            if kind == "large":
                n = min(size - done, max(size // 4, 1))
            elif kind == "blobs":
                n = min(size - done, rng.randint(200 << 10, 8 << 20))
            else:
                n = min(size - done, rng.randint(4 << 10, 2 << 20))
            if kind in ("blobs",):
                data = rng.randbytes(n)
            elif kind == "large":
                # half incompressible, half text: like a video plus subtitles
                data = rng.randbytes(n // 2) + text(rng, n - n // 2)
            elif kind == "logs":
                data = log(rng, n)
            else:
                data = text(rng, n)
            with open(os.path.join(d, f"{kind}-{i:05d}.dat"), "wb") as f:
                f.write(data)
            done += n
            i += 1


def make_small(path, count):
    rng = random.Random(42)
    for i in range(count):
        d = os.path.join(path, f"folder-{i % 100:03d}")
        if i < 100:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"note-{i:06d}.txt"), "wb") as f:
            f.write(text(rng, rng.randint(1024, 4096)))


for name, arg, maker in (("mixed", mixed_mib, make_mixed), ("small", small_files, make_small)):
    path = os.path.join(root, name)
    marker = os.path.join(root, f".{name}-{arg}")
    if os.path.exists(marker):
        continue
    if os.path.exists(path):
        import shutil
        shutil.rmtree(path)
    os.makedirs(path)
    print(f"making the {name} corpus ({arg})...", file=sys.stderr)
    maker(path, arg)
    for m in os.listdir(root):
        if m.startswith(f".{name}-"):
            os.remove(os.path.join(root, m))
    open(marker, "w").close()
