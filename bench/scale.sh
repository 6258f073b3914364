#!/usr/bin/env bash
# How pouch and the pipeline grow: small-file corpora of 10k, 100k and 1M
# files (1-4 KiB of text each, 1000 per folder) and streams of 1 and 8 GiB
# (one file, half text, half random). Per size and command: wall time, time
# per file (µs) or per GiB, peak RSS; at the end the growth of the time per
# file (per GiB) from the smallest size to the largest, and each command's
# worst peak RSS. Optional peers, each when installed: rage in the pipeline
# in place of age, and ANSSI's mlar (MLA 2).
#
# Usage: bench/scale.sh [OPTION...]   (or bench/compare.sh --scale [OPTION...])
#   --files N,N,...    small-file corpora (default 10000,100000,1000000; '' for none)
#   --gib N,N,...      streams in GiB (default 1,8; '' for none)
#   --stream-mib N,... streams in MiB, for quick trials (replaces the default --gib)
#   --pairs N          runs of each command per size (default 1; the median counts)
#   --tmpfs DIR        where a size runs when it fits in that file system and
#                      in free memory (default /dev/shm/pouch-scale; '' for never)
#   --work DIR         where the others run (default /var/tmp/pouch-scale: a disk)
#   --keep-corpora     keep each corpus for the next run (default: removed once
#                      measured, like every bundle and unpacked tree, so the
#                      8 GiB stream never shares the disk with the 1M files)
# A size needs about 12 KiB per file, or 3 times a stream's size (source,
# one bundle, one unpacked copy: each tool's are removed before the next's).
# Not run in CI: the full set takes long and writes tens of GiB.
set -euo pipefail
files=10000,100000,1000000 gib=1,8 mib='' gib_set='' pairs=1
tmpfs=/dev/shm/pouch-scale work=/var/tmp/pouch-scale keep=''
while (($#)); do
  case $1 in
    --files) files=$2; shift 2 ;;
    --gib) gib=$2 gib_set=1; shift 2 ;;
    --stream-mib) mib=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --tmpfs) tmpfs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --keep-corpora) keep=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $mib && -z $gib_set ]] && gib=''
sizes=() # "files N" or "stream MIB", in the order they run
for n in ${files//,/ }; do sizes+=("files $n"); done
for n in ${gib//,/ }; do sizes+=("stream $((n * 1024))"); done
for n in ${mib//,/ }; do sizes+=("stream $n"); done
for s in "${sizes[@]}"; do
  [[ ${s#* } =~ ^[1-9][0-9]*$ ]] || { echo "error: not a positive whole number: ${s#* }" >&2; exit 2; }
done
((${#sizes[@]})) || { echo "error: no sizes to run" >&2; exit 2; }
[[ $pairs =~ ^[1-9][0-9]*$ ]] || { echo "error: --pairs needs a positive whole number" >&2; exit 2; }

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
bench_init "${tmpfs:-$work}"

tools=(pouch pipe)
command -v rage >/dev/null && tools+=(rage)
if command -v mlar >/dev/null; then
  # MLA 1 had other keys and flags; only MLA 2's are written in lib.sh.
  if [[ $(mlar --version 2>/dev/null) =~ ([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 2)); then
    tools+=(mlar)
    for k in mla-sender mla-receiver; do
      [[ -f $keys/$k.mlapriv ]] || mlar keygen "$keys/$k" >/dev/null
    done
  else
    echo "note: mlar is not MLA 2 ($(mlar --version 2>&1 | head -n 1)); leaving it out" >&2
  fi
fi

kib_free() { # folder (or its nearest existing parent): free KiB of its file system
  local d=$1
  until [[ -e $d ]]; do d=$(dirname "$d"); done
  df -Pk "$d" | awk 'NR == 2 { print $4 }'
}

# Where a size needing KIB KiB runs: the tmpfs when both it and the free
# memory have room (with 1 GiB and 4 GiB to spare), else the work folder.
place() { # kib
  local need=$1 mem
  mem=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
  if [[ -n $tmpfs ]] && (($(kib_free "$tmpfs") > need + (1 << 20) && mem > need + (4 << 20))); then
    echo "$tmpfs"
  elif (($(kib_free "$work") > need + (1 << 20))); then
    echo "$work"
  else
    return 1
  fi
}

src='' out=''
cleanup() { # the current size's bundles, trees and (unless kept) corpus
  [[ -n $out ]] && rm -rf "$out"
  if [[ -n $src && -z $keep ]]; then rm -rf "$src" "$(dirname "$src")/.$(basename "$src")"-*; fi
  return 0
}
trap cleanup EXIT

items=()
run_size() { # kind (files, stream), n (files, or MiB)
  local kind=$1 n=$2 name need loc i tool o soft
  name=$kind-$n
  if [[ $kind == files ]]; then need=$((n * 12)); else need=$((n * 1024 * 3 + (64 << 10))); fi
  loc=$(place "$need") || {
    echo "== $name: skipped, it needs about $((need >> 20)) GiB and neither ${tmpfs:-(no tmpfs)} nor $work has that much free" >&2
    return 0
  }
  src=$loc/corpus/$name out=$loc/out-$name
  if [[ $kind == files ]]; then python3 bench/corpus.py --files "$n" "$src"; else python3 bench/corpus.py --stream "$n" "$src"; fi
  results=$state/scale-$name.txt; : > "$results"
  size_warm "$src"
  local what="one file of $n MiB"
  [[ $kind == files ]] && what="$n files, $(du -sh --apparent-size "$src" | cut -f1)"
  echo "== $name: $what; in $loc; $(nproc) cores; $pairs run(s) each; ${tools[*]}"
  for ((i = 1; i <= pairs; i++)); do
    for tool in "${tools[@]}"; do
      soft=''; [[ $tool == pouch || $tool == pipe ]] || soft=1
      for o in pack unpack verify verifyi; do
        op run "$tool" "$o" "$src" "$out" || { echo "   ($tool $o failed; going on without it)" >&2; break; }
        if [[ $o == unpack ]]; then
          if [[ $tool == pouch ]] && ((i == 1)); then check_tree "$src" "$out"; fi
          rm -rf "$out/$tool-u"
        fi
      done
      if ((i == 1)); then
        case $tool in
          pouch) echo "   pouch's unpacked tree equals the source; payload $(stat -c %s "$out/pouch/b.age") bytes" ;;
          pipe) echo "   pipeline payload $(stat -c %s "$out/pipe/b.age") bytes" ;;
        esac
      fi
      rm -rf "${out:?}/$tool"
    done
  done
  cleanup
  src='' out=''
  items+=("$kind:$n:$results")
  python3 bench/summary.py scale "$kind:$n:$results"
}

for s in "${sizes[@]}"; do
  # shellcheck disable=SC2086 # "kind n"
  run_size $s
done
if ((${#items[@]} == 0)); then
  echo "error: no size ran" >&2
  exit 1
fi
python3 bench/summary.py scale --final "${items[@]}"
