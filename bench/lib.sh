# shellcheck shell=bash
# Sourced by the benchmarks (compare.sh, scale.sh, parity.sh, delta.sh): what they time, written
# once. bench_init builds the release binary and makes a throwaway key pair;
# t times one command; op runs one operation of one tool.
# Needs: age, zstd, GNU tar, /usr/bin/time, python3.

# The options of the one-payload benchmarks (parity.sh, delta.sh): --mib N,
# --runs N, --work DIR, into $mib, $runs and $work (defaults: the caller's).
# shellcheck disable=SC2034 # the caller reads them
size_runs_work() {
  while (($#)); do
    case $1 in
      --mib) mib=$2; shift 2 ;;
      --runs) runs=$2; shift 2 ;;
      --work) work=$2; shift 2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
}

# Enters the repository, builds, checks the tools and makes (or reuses) the
# keys in STATE/keys with POUCH_HOME=STATE/home. Sets root, pouch, keys,
# recipient, state.
bench_init() { # state folder
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cd "$root" || exit 2
  cargo build --release --quiet
  pouch=$root/target/release/pouch
  local tool
  for tool in age zstd tar /usr/bin/time python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install age zstd time)" >&2; exit 2; }
  done
  state=$1
  mkdir -p "$state"
  export POUCH_HOME=$state/home
  keys=$state/keys
  if [[ ! -f $keys/k.age-identity ]]; then
    mkdir -p "$keys"
    "$pouch" keygen --name k --no-passphrase --out "$keys" >/dev/null 2>&1
  fi
  recipient=$(cat "$keys/k.age-recipient")
}

# Runs a command under /usr/bin/time and appends "label seconds maxrss_kib"
# to $results. Wall time comes from $EPOCHREALTIME (microseconds; time's %e
# has only centiseconds, too coarse for the small corpora), peak RSS from
# time's %M (the largest process of a pipeline). A failure ends the script,
# unless $soft is set (optional peers): then it is reported and t returns 1.
# shellcheck disable=SC2154 # $results is the caller's
t() { # label, command...
  local label=$1 t0 t1 us; shift
  t0=${EPOCHREALTIME//[.,]/}
  if ! /usr/bin/time -f "%M" -o "$state/time.out" "$@" >/dev/null 2>"$state/err.out"; then
    echo "error: $label failed:" >&2; cat "$state/err.out" >&2
    [[ ${soft:-} ]] && return 1
    exit 1
  fi
  t1=${EPOCHREALTIME//[.,]/}
  us=$((10#$t1 - 10#$t0))
  printf '%s %d.%06d %s\n' "$label" $((us / 1000000)) $((us % 1000000)) "$(tail -n 1 "$state/time.out")" >> "$results"
}

# The memory a pack or unpack of SRC may take: its size on disk (whole
# pages), a quarter more for inodes and buffers, and 256 MiB. Sets
# $warm_kib for warm_memory; call it once per source.
size_warm() { # src
  warm_kib=$(($(du -sk "$1" | cut -f1) * 5 / 4 + (256 << 10)))
}

# Touches $warm_kib KiB of memory (at most what is free, less 2 GiB) and
# frees it, so that the timed command finds warm pages whatever ran before
# it; see bench/warm.py. BENCH_COLD=1 skips it (to see the cold figures).
warm_memory() {
  [[ -n ${BENCH_COLD:-} || -z ${warm_kib:-} ]] && return 0
  local avail
  avail=$(awk '/^MemAvailable:/ { print $2 - 2097152 }' /proc/meminfo)
  python3 "$root/bench/warm.py" $((warm_kib < avail ? warm_kib : avail))
}

# One timed operation. TOOL is pouch, pipe (tar | zstd -3 -T0 | age), rage
# (the same pipeline with rage) or mlar (ANSSI's MLA); OP is pack, unpack,
# verify (no key) or verifyi (with the identity). The bundle goes to
# OUT/TOOL, the unpacked tree to OUT/TOOL-u (pouch: OUT/pouch-u/b/NAME, the
# others OUT/TOOL-u/NAME, NAME being SRC's last component). Result lines
# are labelled LABEL-OP-TOOL. Operations a tool has no equivalent of are
# skipped (rage verify would be pipe's sha256sum again; mlar has no check
# without the key).
op() { # label tool op src out
  local label=$1 tool=$2 o=$3 src=$4 out=$5
  local b=$out/$tool u=$out/$tool-u parent base age=age
  parent=$(dirname "$src") base=$(basename "$src")
  [[ $tool == rage ]] && age=rage
  case $o in
    pack) rm -rf "$b"; mkdir -p "$b"; warm_memory ;;
    unpack) rm -rf "$u"; mkdir -p "$u"; warm_memory ;;
  esac
  case $tool-$o in
    pouch-pack) t "$label-pack-pouch" "$pouch" pack "$src" -o "$b" --name b -r "$recipient" -s "$keys/k.minisign.key" --no-verify-after-write ;;
    pouch-unpack) t "$label-unpack-pouch" "$pouch" unpack "$b/b.toml" -i "$keys/k.age-identity" --trust "$keys/k.minisign.pub" -d "$u" --allow-replay ;;
    pouch-verify) t "$label-verify-pouch" "$pouch" verify "$b/b.toml" --trust "$keys/k.minisign.pub" ;;
    pouch-verifyi) t "$label-verifyi-pouch" "$pouch" verify "$b/b.toml" --trust "$keys/k.minisign.pub" -i "$keys/k.age-identity" ;;
    pipe-pack | rage-pack)
      t "$label-pack-$tool" bash -c "set -o pipefail; tar -cf - -C '$parent' '$base' | zstd -3 -T0 -q | $age -r '$recipient' > '$b/b.age'" ;;
    pipe-unpack | rage-unpack)
      t "$label-unpack-$tool" bash -c "set -o pipefail; $age -d -i '$keys/k.age-identity' '$b/b.age' | zstd -d -q | tar -xf - -C '$u'" ;;
    pipe-verify) t "$label-verify-pipe" sha256sum "$b/b.age" ;;
    pipe-verifyi | rage-verifyi)
      t "$label-verifyi-$tool" bash -c "set -o pipefail; $age -d -i '$keys/k.age-identity' '$b/b.age' | zstd -d -q | tar -tf - >/dev/null" ;;
    # MLA 2 (mlar 2.x; not installed on the development machine, so these
    # three lines are written from its README and --help, untested): signed
    # by the sender's key, encrypted to the receiver's. The file list comes
    # on stdin, since a million names do not fit on a command line.
    mlar-pack) t "$label-pack-mlar" bash -c "set -o pipefail; cd '$parent' && find '$base' -type f | mlar create -k '$keys/mla-sender.mlapriv' -p '$keys/mla-receiver.mlapub' -o '$b/b.mla' --stdin-filepath-list" ;;
    mlar-unpack) t "$label-unpack-mlar" mlar extract -k "$keys/mla-receiver.mlapriv" -p "$keys/mla-sender.mlapub" -i "$b/b.mla" -o "$u" ;;
    mlar-verifyi) t "$label-verifyi-mlar" mlar to-tar -k "$keys/mla-receiver.mlapriv" -p "$keys/mla-sender.mlapub" -i "$b/b.mla" -o /dev/stdout ;;
    rage-verify | mlar-verify) ;;
    *) echo "error: op: unknown tool or operation $tool-$o" >&2; exit 2 ;;
  esac
}

# Whether pouch's unpacked tree equals the source (exits if not).
check_tree() { # src out
  diff -r "$1" "$2/pouch-u/b/$(basename "$1")" >/dev/null || { echo "error: pouch's unpacked tree differs from the source" >&2; exit 1; }
}
