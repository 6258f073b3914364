#!/usr/bin/env bash
# What PAR2 parity costs: `pouch pack --parity 10%` against `pouch pack`,
# pouch's parity creation (the difference) against Debian's `par2 create`
# at the same slice size and redundancy on the same parts, and `par2
# repair` and `pouch repair` of one lost part (parts of 96 MiB: one is about a tenth); on a payload of random bytes (incompressible,
# so the payload is as large as the source) in /dev/shm.
#
# Usage: bench/parity.sh [--mib N] [--runs N] [--work DIR]
#   defaults: 1024 MiB, 3 runs, /dev/shm/pouch-parity
# Prints the median wall and CPU times and peak RSS of each, and the ratios.
# Needs: par2, /usr/bin/time, python3. Not run in CI (minutes).
set -euo pipefail
mib=1024 runs=3 work=/dev/shm/pouch-parity
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
size_runs_work "$@"
bench_init "$work"
command -v par2 >/dev/null || { echo "error: par2 is missing (apt-get install par2)" >&2; exit 2; }
src=$work/src
if [[ $(stat -c %s "$src/blob.bin" 2>/dev/null || echo 0) != $((mib << 20)) ]]; then
  mkdir -p "$src"
  head -c $((mib << 20)) /dev/urandom > "$src/blob.bin"
fi
results=$work/results.txt; : > "$results"
# lib.sh's t, with the CPU time (user + system, seconds) as a fourth
# column: on a machine shared with other work the wall times vary with its
# load, the CPU times much less.
t() { # label, command...
  local label=$1 t0 t1 us rss user sys; shift
  t0=${EPOCHREALTIME//[.,]/}
  if ! /usr/bin/time -f "%M %U %S" -o "$state/time.out" "$@" >/dev/null 2>"$state/err.out"; then
    echo "error: $label failed:" >&2; cat "$state/err.out" >&2
    exit 1
  fi
  t1=${EPOCHREALTIME//[.,]/}
  us=$((10#$t1 - 10#$t0))
  read -r rss user sys < <(tail -n 1 "$state/time.out")
  printf '%s %d.%06d %s %s\n' "$label" $((us / 1000000)) $((us % 1000000)) "$rss" \
    "$(python3 -c "print($user + $sys)")" >> "$results"
}
out=$work/out
pack() { # label, extra flags...
  local label=$1; shift
  rm -rf "$out/$label"; mkdir -p "$out/$label"
  t "$label" "$pouch" pack "$src" -o "$out/$label" --name b -r "$recipient" \
    -s "$keys/k.minisign.key" --split 96M -q "$@"
}
for ((i = 0; i < runs; i++)); do
  pack pack
  pack parity --parity 10%
done
# par2 create at pouch's own slice size and recovery count, on the parts.
read -r slice count < <(python3 - "$out/parity/b.toml" <<'PY'
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["payload"]["parity"]
print(p["slice_size"], p["recovery_slices"])
PY
)
mkdir -p "$out/stock"
for ((i = 0; i < runs; i++)); do
  rm -f "$out/stock"/*
  cp "$out/pack"/b.age.* "$out/stock/"
  t par2-create par2 create -q -s"$slice" -c"$count" -n1 "$out/stock/b.par2" "$out/stock"/b.age.*
done
for ((i = 0; i < runs; i++)); do
  rm -f "$out/parity/b.age.002" "$out/parity"/*.1
  (cd "$out/parity" && t par2-repair-one-part par2 repair -q b.par2)
done
for ((i = 0; i < runs; i++)); do
  rm -f "$out/parity/b.age.002"
  t pouch-repair-one-part "$pouch" repair -q "$out/parity/b.toml" --trust "$keys/k.minisign.pub"
done
python3 - "$results" "$slice" "$count" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, secs, rss, cpu = line.split()
    rows.setdefault(label, []).append((float(secs), int(rss), float(cpu)))
med = {k: statistics.median(s for s, _, _ in v) for k, v in rows.items()}
cpu = {k: statistics.median(c for _, _, c in v) for k, v in rows.items()}
rss = {k: max(r for _, r, _ in v) for k, v in rows.items()}
print(f"slice size {sys.argv[2]} bytes, {sys.argv[3]} recovery slices; medians")
for k in rows:
    print(f"{k:24} {med[k]:8.2f} s  CPU {cpu[k]:6.2f} s  peak RSS {rss[k] / 1024:7.1f} MiB")
made = med["parity"] - med["pack"]
made_cpu = cpu["parity"] - cpu["pack"]
print(f"parity creation (pack --parity 10% - pack): {made:.2f} s, "
      f"{100 * made / med['pack']:.0f} % of pack (CPU: {made_cpu:.2f} s, "
      f"{100 * made_cpu / cpu['pack']:.0f} % of pack's)")
print(f"par2 create / pouch parity creation: {med['par2-create'] / made:.1f}x "
      f"(CPU: {cpu['par2-create'] / made_cpu:.1f}x)")
for tool in ("par2", "pouch"):
    r = tool + '-repair-one-part'
    print(f"{tool} repair of one lost part / pouch parity creation: "
          f"{med[r] / made:.1f}x (CPU: {cpu[r] / made_cpu:.1f}x)")
PY
