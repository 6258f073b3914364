#!/usr/bin/env bash
# pouch against the pipeline a careful administrator would type:
#   pack:   tar -cf - DIR | zstd -3 -T0 | age -r R > B.age
#   unpack: age -d -i K B.age | zstd -d | tar -xf -
# on a deterministic corpus, alternating A B A B ... after a warm-up, and
# printing per operation the median wall time of each, the median of the
# per-pair ratios pouch/pipeline, and peak resident memory.
#
# Usage: bench/compare.sh [--mixed-mib N] [--small-files N] [--pairs N] [--work DIR]
#   defaults: 1024 MiB mixed corpus, 100000 small files, 5 pairs, /dev/shm/pouch-bench
# Needs: age, zstd, GNU tar, /usr/bin/time, python3. Not run in CI (minutes).
set -euo pipefail
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
cd "$(dirname "$0")/.."
cargo build --release --quiet
pouch=$PWD/target/release/pouch
for tool in age zstd tar /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install age zstd time)" >&2; exit 2; }
done
mkdir -p "$work"
export POUCH_HOME=$work/home
keys=$work/keys
if [[ ! -f $keys/k.age-identity ]]; then
  mkdir -p "$keys"
  "$pouch" keygen --name k --no-passphrase --out "$keys" >/dev/null 2>&1
fi
recipient=$(cat "$keys/k.age-recipient")

# Deterministic corpora (seeded), made once and reused.
python3 bench/corpus.py "$work/corpus" "$mixed_mib" "$small_files"

t() { # label, command...: runs, appends "label seconds maxrss_kib" to $results
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/err.out" || {
    echo "error: $label failed:" >&2; cat "$work/err.out" >&2; exit 1; }
  echo "$label $(cat "$work/time.out")" >> "$results"
}

run_corpus() { # name, source folder
  local name=$1 src=$2 out=$work/out
  results=$work/results-$name.txt; : > "$results"
  echo "== corpus $name: $(du -sh --apparent-size "$src" | cut -f1), $(find "$src" -type f | wc -l) files; $(nproc) cores"
  for i in $(seq 0 "$pairs"); do
    rm -rf "$out"; mkdir -p "$out/p" "$out/q" "$out/pu" "$out/qu"
    local lbl=run; ((i == 0)) && lbl=warmup
    t "$lbl-pack-pouch" "$pouch" pack "$src" -o "$out/p" --name b -r "$recipient" -s "$keys/k.minisign.key" --no-verify-after-write
    t "$lbl-pack-pipe" bash -c "set -o pipefail; tar -cf - -C '$(dirname "$src")' '$(basename "$src")' | zstd -3 -T0 -q | age -r '$recipient' > '$out/q/b.age'"
    t "$lbl-unpack-pouch" "$pouch" unpack "$out/p/b.toml" -i "$keys/k.age-identity" --trust "$keys/k.minisign.pub" -d "$out/pu" --allow-replay
    t "$lbl-unpack-pipe" bash -c "set -o pipefail; age -d -i '$keys/k.age-identity' '$out/q/b.age' | zstd -d -q | tar -xf - -C '$out/qu'"
    t "$lbl-verify-pouch" "$pouch" verify "$out/p/b.toml" --trust "$keys/k.minisign.pub"
    t "$lbl-verify-pipe" sha256sum "$out/q/b.age"
    t "$lbl-verifyi-pouch" "$pouch" verify "$out/p/b.toml" --trust "$keys/k.minisign.pub" -i "$keys/k.age-identity"
    t "$lbl-verifyi-pipe" bash -c "set -o pipefail; age -d -i '$keys/k.age-identity' '$out/q/b.age' | zstd -d -q | tar -tf - >/dev/null"
    if ((i == 0)); then
      diff -r "$src" "$out/pu/b/$(basename "$src")" >/dev/null || { echo "error: pouch's unpacked tree differs from the source" >&2; exit 1; }
      echo "   unpacked tree equals the source; payload $(stat -c %s "$out/p/b.age") bytes (pipeline: $(stat -c %s "$out/q/b.age"))"
    fi
  done
  python3 bench/summary.py "$results" "$(stat -c %s "$out/p/b.age")"
}

run_corpus mixed "$work/corpus/mixed"
run_corpus small "$work/corpus/small"
