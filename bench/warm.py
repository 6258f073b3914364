#!/usr/bin/env python3
"""Touches KIB KiB of memory and frees it, so that the command timed next
finds warm pages.

On a virtual machine whose balloon device reports free pages to the host
(Firecracker, QEMU with free-page-reporting), memory freed a few seconds
ago is handed back to the host, and the next process that touches it pays
a host page fault per page: about 10 µs for each 4 KiB page on the
development machine. That cost lands on whichever command allocates next,
so without this step the order of the commands decides their times (an
unpack that creates a million files, or writes a GiB, is measured twice as
slow when it follows a long idle or another unpack). The benchmarks run
this before every timed pack and unpack, of every tool alike.
Usage: warm.py KIB
"""
import mmap
import sys

CHUNK = 1 << 20


def main():
    size = int(sys.argv[1]) << 10
    if size < CHUNK:
        return
    m = mmap.mmap(-1, size - size % CHUNK)
    zeros = bytes(CHUNK)
    for _ in range(len(m) // CHUNK):
        m.write(zeros)
    m.close()


if __name__ == "__main__":
    main()
