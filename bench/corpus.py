#!/usr/bin/env python3
"""Deterministic benchmark corpora for bench/compare.sh.

mixed: reports and logs (compressible text), incompressible blobs (like
photos and PDFs) and a few large files, about MIXED_MIB in all.
small: SMALL_FILES files of 1-4 KiB of text in 100 folders.
Seeded, so every run and every machine gets the same bytes. Made once; a
marker file next to the corpus records the parameters.
Usage: corpus.py DIR MIXED_MIB SMALL_FILES   (DIR/mixed and DIR/small)

For bench/scale.sh, one corpus at a time, in DIR itself:
  corpus.py --files N DIR    the small corpus of N files, 1000 per folder
  corpus.py --stream MIB DIR one file DIR/stream.bin of MIB MiB, half text
                             and half random in 1 MiB blocks drawn from a
                             seeded 256 MiB pool (seconds per GiB)
"""
import os
import random
import shutil
import sys

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


def make_small(path, count, folders=100):
    rng = random.Random(42)
    width = max(3, len(str(folders - 1)))
    for i in range(count):
        d = os.path.join(path, f"folder-{i % folders:0{width}d}")
        if i < folders:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"note-{i:06d}.txt"), "wb") as f:
            f.write(text(rng, rng.randint(1024, 4096)))


def make_files(path, count):
    """The small corpus at scale: the same files, about 1000 per folder."""
    make_small(path, count, folders=max(1, -(-count // 1000)))


def make_stream(path, mib_count):
    """One big file: 1 MiB blocks, each drawn at random from a pool of 128
    text and 128 random blocks. The pool (256 MiB) is larger than any zstd
    window pouch or the pipeline uses, so the file compresses like text and
    random data half and half, not like a repeated pattern."""
    rng = random.Random(20261203)
    mib = 1 << 20
    pool = [text(rng, mib) if k % 2 else rng.randbytes(mib) for k in range(256)]
    with open(os.path.join(path, "stream.bin"), "wb") as f:
        for _ in range(mib_count):
            f.write(pool[rng.randrange(len(pool))])


def make(root, name, arg, maker):
    """Makes root/name with maker(path, arg) unless its marker says it exists."""
    path = os.path.join(root, name)
    marker = os.path.join(root, f".{name}-{arg}")
    if os.path.exists(marker) and os.path.isdir(path):
        return
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    print(f"making the {name} corpus ({arg})...", file=sys.stderr)
    maker(path, arg)
    for m in os.listdir(root):
        if m.startswith(f".{name}-"):
            os.remove(os.path.join(root, m))
    open(marker, "w").close()


if len(sys.argv) == 4 and sys.argv[1] in ("--files", "--stream"):
    mode, arg, target = sys.argv[1], int(sys.argv[2]), os.path.abspath(sys.argv[3])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    make(os.path.dirname(target), os.path.basename(target), arg, make_files if mode == "--files" else make_stream)
elif len(sys.argv) == 4:
    root, mixed_mib, small_files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    make(root, "mixed", mixed_mib, make_mixed)
    make(root, "small", small_files, make_small)
else:
    sys.exit(__doc__)
