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


def _pool(rng, size, line):
    out, n = [], 0
    while n < size:
        s = line(rng)
        out.append(s)
        n += len(s)
    return "".join(out).encode()


# Pools of realistic text, made once; files take seeded slices of them, so
# the corpus is quick to make and still compresses like reports and logs.
_TEXT = _LOG = None


def _slice(rng, pool, size):
    out = bytearray()
    while len(out) < size:
        start = rng.randrange(0, len(pool) - 4096)
        out += pool[start:start + min(size - len(out), len(pool) - start)]
    return bytes(out[:size])


def text(rng, size):
    global _TEXT
    if _TEXT is None:
        _TEXT = _pool(random.Random(1), 8 << 20, lambda r: " ".join(r.choice(WORDS) for _ in range(r.randint(6, 14))) + f" {r.randint(0, 10**6)}\n")
    return _slice(rng, _TEXT, size)


def log(rng, size):
    global _LOG
    if _LOG is None:
        t = [1700000000]

        def line(r):
            t[0] += r.randint(0, 5)
            return f"{t[0]} host{r.randint(1, 40)} sshd[{r.randint(100, 99999)}]: {r.choice(WORDS)} {r.choice(WORDS)} from 10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}\n"
        _LOG = _pool(random.Random(2), 8 << 20, line)
    return _slice(rng, _LOG, size)


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
