#!/usr/bin/env bash
# Peak resident memory and wall time of pack and unpack on one large file.
# Usage: bench/memory.sh [SIZE_MIB]   (default 2048; needs /usr/bin/time)
# Not run in CI: it writes several GiB.
set -euo pipefail
size_mib=${1:-2048}
source "$(dirname "$0")/setup.sh" mem
mkdir src out
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > src/big.bin

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v "$@" > /dev/null 2> time.log || { cat time.log; exit 1; }
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' time.log)
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' time.log)
  printf '%-8s %8.1f MiB peak RSS   %s wall\n' "$label" "$(echo "$rss / 1024" | bc -l)" "$wall"
}

echo "one file of $size_mib MiB, $(nproc) cores"
measure pack "$pouch" pack src/big.bin -o out --name b -r "$(cat k.age-recipient)" -s k.minisign.key
measure verify "$pouch" verify out/b.toml --trust k.minisign.pub
measure verify-i "$pouch" verify out/b.toml --trust k.minisign.pub -i k.age-identity
measure unpack "$pouch" unpack out/b.toml --trust k.minisign.pub -i k.age-identity -d dest
cmp src/big.bin dest/b/big.bin && echo "unpacked file equals the source"
