#!/usr/bin/env bash
# What a delta bundle saves: a full pack of a tree (the mixed corpus, 4 GiB
# by default), then 1 % of its files changed (every 100th of the files
# other than the four large ones, 4 KiB rewritten in each), then
# `pack --delta-from` the full bundle; and, on the recipient's side, the
# full unpack against `unpack --onto`. In /dev/shm by default.
#
# Usage: bench/delta.sh [--mib N] [--runs N] [--work DIR]
#   defaults: 4096 MiB, 3 runs, /dev/shm/pouch-delta
# Prints the median wall time and peak RSS of each, the bundle sizes, and
# the two ratios the targets are about: delta bundle / full bundle (at most
# 2 %) and delta pack / full pack (at most 20 %). Needs: python3,
# /usr/bin/time. Not run in CI (minutes, and some 12 GB of room).
set -euo pipefail
mib=4096 runs=3 work=/dev/shm/pouch-delta
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
size_runs_work "$@"
bench_init "$work"
python3 "$root/bench/corpus.py" "$work/corpus" "$mib" 1 >/dev/null
src=$work/corpus/mixed
results=$work/results.txt; : > "$results"
sizes=$work/sizes.txt; : > "$sizes"
out=$work/out recv=$work/recv
# The files to change, and their original bytes, to put back before each run.
mapfile -t picked < <(cd "$src" && find . -type f ! -name 'large-*' | sort | awk 'NR % 100 == 50')
orig=$work/orig
if [[ ! -d $orig ]]; then
  mkdir -p "$orig"
  for f in "${picked[@]}"; do mkdir -p "$orig/$(dirname "$f")"; cp -p "$src/$f" "$orig/$f"; done
fi
channel=(--from bka-zd --to fedpol-ic)
for ((i = 0; i < runs; i++)); do
  for f in "${picked[@]}"; do cp -p "$orig/$f" "$src/$f"; done
  rm -rf "$out" "$recv" "$state/home" "$state/home-r"
  mkdir -p "$out/full" "$out/delta" "$recv"
  t full-pack "$pouch" pack "$src" -o "$out/full" --name full "${channel[@]}" -r "$recipient" \
    -s "$keys/k.minisign.key" --no-verify-after-write -q
  for f in "${picked[@]}"; do
    python3 - "$src/$f" "$i" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.write(os.urandom(4096))
PY
  done
  t delta-pack "$pouch" pack "$src" -o "$out/delta" --name delta "${channel[@]}" -r "$recipient" \
    -s "$keys/k.minisign.key" --no-verify-after-write -q --delta-from "$out/full/full.toml"
  echo "full $(du -sb "$out/full" | cut -f1) delta $(du -sb "$out/delta" | cut -f1)" >> "$sizes"
  # The recipient: its own home, which knows the sender party by its key
  # (only the base's own sender party may send a delta onto its tree).
  POUCH_HOME=$state/home-r "$pouch" keyring add bka-zd --sign-pub "$keys/k.minisign.pub" >/dev/null
  POUCH_HOME=$state/home-r t full-unpack "$pouch" unpack "$out/full/full.toml" -i "$keys/k.age-identity" \
    -d "$recv" -q
  POUCH_HOME=$state/home-r t delta-onto "$pouch" unpack "$out/delta/delta.toml" -i "$keys/k.age-identity" \
    --onto "$recv/full" -q
  # The result is the sender's tree, file for file.
  diff -r "$src" "$recv/full/mixed" >/dev/null || { echo "error: the tree built by --onto differs from the source" >&2; exit 1; }
done
python3 - "$results" "$sizes" "${#picked[@]}" "$(find "$src" -type f | wc -l)" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, secs, rss = line.split()
    rows.setdefault(label, []).append((float(secs), int(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
rss = {k: max(r for _, r in v) for k, v in rows.items()}
full, delta = map(int, open(sys.argv[2]).readline().split()[1::2])
print(f"{sys.argv[3]} of {sys.argv[4]} files changed")
for k in rows:
    print(f"{k:12} {med[k]:8.2f} s  peak RSS {rss[k] / 1024:7.1f} MiB")
print(f"bundle: full {full / 2**20:.1f} MiB, delta {delta / 2**20:.2f} MiB: delta / full = {100 * delta / full:.2f} % (target <= 2 %)")
print(f"pack: delta / full = {100 * med['delta-pack'] / med['full-pack']:.1f} % (target <= 20 %)")
print(f"unpack: --onto / full = {100 * med['delta-onto'] / med['full-unpack']:.1f} %")
PY
