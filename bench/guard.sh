#!/usr/bin/env bash
# CI regression guard, the last step of .ci/run: bench/compare.sh on a small
# case (64 MiB mixed corpus, 10,000 small files, one pair after the warm-up,
# in a scratch folder on /dev/shm), failing only on gross regressions: a
# pouch/pipeline ratio more than twice its reference in bench/reference.txt.
# The ratios, not the times, are compared, so a slower machine does not fail
# it. Timings this short vary by up to half from run to run, so when an
# operation fails the guard measures once more and fails only on operations
# that fail both times. About 10 s on 2 cores after the release build.
# Usage: bench/guard.sh   (BENCH_GUARD_FACTOR=3 bench/guard.sh to loosen it)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
factor=${BENCH_GUARD_FACTOR:-2}
cargo build --release --quiet
base=/dev/shm
[[ -d $base && -w $base ]] || base=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$base/pouch-guard.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

measure() { # the corpora are made on the first call and reused
  rm -f "$tmp/ratios.txt"
  BENCH_MACHINE=$tmp/ratios.txt bash bench/compare.sh --mixed-mib 64 --small-files 10000 --pairs 1 --work "$tmp/work"
}

# Compares the measured ratios with the references (only those listed in
# ONLY, if given), prints a line per operation, writes the failing ones to
# $tmp/failed and returns 1 if there are any.
check() { # [ONLY]
  python3 - "$tmp/ratios.txt" bench/reference.txt "$factor" "$tmp/failed" "${1:-}" <<'PY'
import sys
measured_path, reference_path, factor, failed_path, only = sys.argv[1:6]
factor = float(factor)
only = {tuple(l.split()) for l in open(only)} if only else None
measured = {}
for line in open(measured_path):
    corpus, op, ratio = line.split()[:3]
    measured[(corpus, op)] = float(ratio)
failed = []
for line in open(reference_path):
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    corpus, op, ref = line.split()
    if only is not None and (corpus, op) not in only:
        continue
    allowed = float(ref) * factor
    got = measured.get((corpus, op))
    if got is None:
        print(f"bench guard: FAIL {corpus} {op}: no measurement (compare.sh printed no ratio for it)")
    elif got > allowed:
        print(f"bench guard: FAIL {corpus} {op}: pouch/pipeline ratio {got:.2f}, allowed {allowed:.2f} "
              f"({factor:g} x the reference {ref} in {reference_path})")
    else:
        print(f"bench guard: ok   {corpus} {op}: ratio {got:.2f}, allowed {allowed:.2f}")
        continue
    failed.append(f"{corpus} {op}\n")
open(failed_path, "w").writelines(failed)
sys.exit(1 if failed else 0)
PY
}

measure
if ! check; then
  echo "bench guard: measuring once more, to tell a regression from noise"
  measure
  if ! check "$tmp/failed"; then
    echo "bench guard: FAILED: pouch is more than ${factor}x its reference ratio to the pipeline, twice in a row, in: $(paste -sd, "$tmp/failed")" >&2
    exit 1
  fi
fi
echo "bench guard: passed ($((SECONDS - start)) s)"
