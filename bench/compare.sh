#!/usr/bin/env bash
# pouch against the pipeline a careful administrator would type:
#   pack:   tar -cf - DIR | zstd -3 -T0 | age -r R > B.age
#   unpack: age -d -i K B.age | zstd -d | tar -xf -
# on a deterministic corpus, alternating A B A B ... after a warm-up, and
# printing per operation the median wall time of each, the median of the
# per-pair ratios pouch/pipeline, and peak resident memory.
#
# Usage: bench/compare.sh [--mixed-mib N] [--small-files N] [--pairs N] [--work DIR]
#        bench/compare.sh --scale [OPTION...]   (bench/scale.sh: growth from
#                                                10k to 1M files, 1 to 8 GiB)
#   defaults: 1024 MiB mixed corpus, 100000 small files, 5 pairs, /dev/shm/pouch-bench
# With BENCH_MACHINE=FILE, bench/summary.py also appends "corpus operation
# ratio ..." lines to FILE (bench/guard.sh reads them).
# Needs: age, zstd, GNU tar, /usr/bin/time, python3. Not run in CI (minutes).
set -euo pipefail
if [[ ${1:-} == --scale ]]; then
  shift
  exec bash "$(dirname "$0")/scale.sh" "$@"
fi
mixed_mib=1024 small_files=100000 pairs=5 work=/dev/shm/pouch-bench
while (($#)); do
  case $1 in
    --mixed-mib) mixed_mib=$2; shift 2 ;;
    --small-files) small_files=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
bench_init "$work"

# Deterministic corpora (seeded), made once and reused.
python3 bench/corpus.py "$work/corpus" "$mixed_mib" "$small_files"

run_corpus() { # name, source folder
  local name=$1 src=$2 out=$work/out i lbl o tool
  results=$work/results-$name.txt; : > "$results"
  echo "== corpus $name: $(du -sh --apparent-size "$src" | cut -f1), $(find "$src" -type f | wc -l) files; $(nproc) cores"
  size_warm "$src"
  for i in $(seq 0 "$pairs"); do
    rm -rf "$out"
    lbl=run; ((i == 0)) && lbl=warmup
    for o in pack unpack verify verifyi; do
      for tool in pouch pipe; do
        op "$lbl" "$tool" "$o" "$src" "$out"
      done
    done
    if ((i == 0)); then
      check_tree "$src" "$out"
      echo "   unpacked tree equals the source; payload $(stat -c %s "$out/pouch/b.age") bytes (pipeline: $(stat -c %s "$out/pipe/b.age"))"
    fi
  done
  python3 bench/summary.py "$results" "$(stat -c %s "$out/pouch/b.age")" "$name"
}

run_corpus mixed "$work/corpus/mixed"
run_corpus small "$work/corpus/small"
