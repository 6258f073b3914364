#!/usr/bin/env bash
# Peak resident memory of every command that reads a file no signature
# vouches for, on hostile files made to cost the TOML and JSON parsers the
# most: huge inline arrays, many empty tables, many tiny records, and files
# at their size caps. The target (issue 13): at most 64 MiB each.
# Usage: bench/hostile-memory.sh   (needs /usr/bin/time; not run in CI)
set -euo pipefail
source "$(dirname "$0")/setup.sh" hostile
export POUCH_HOME=$work/home
mkdir -p stick home
python3 - <<'PY'
big = 47 << 20
open('stick/array.toml', 'w').write('x = [' + '0,' * (big // 2 - 4) + '0]\n')
open('stick/tables.toml', 'w').write('[[entries]]\n' * (big // 12))
open('stick/entries.toml', 'w').write(''.join('[[entries]]\npath = "a%d"\n' % i for i in range(1_500_000)))
small = (4 << 20) - 64
open('small-array.toml', 'w').write('x = [' + '0,' * 19_999 + '0]\n' + ' ' * (small - 40_010))
open('small-tables.toml', 'w').write('[[entries]]\npath = "x"\n' * 3_000)
open('home/ledger.jsonl', 'w').write('{"index":0,"time":"x","event":"accepted","notes":[' + '"",' * (30 << 20) + '""]}\n')
import hashlib
prev, lines = '0' * 64, []
for i in range(1_000_000):
    line = '{"index":%d,"time":"x","event":"accepted","bundle_id":"%032x","sender":"a","receiver":"b","sequence":%d,"vouched_by":"a","prev":"%s"}' % (i, i, i * 2 + 1, prev)
    prev = hashlib.sha256(line.encode()).hexdigest()
    lines.append(line + '\n')
open('many.jsonl', 'w').write(''.join(lines))
open('receipt.toml', 'w').write('x = [' + '0,' * (32 << 20) + '0]\n')
open('config.toml', 'w').write('x = [' + '0,' * (2 << 20) + '0]\n')
PY
# A signature beside a hostile manifest: read whole, checked, refused.
cp stick/array.toml signed.toml
"$pouch" pack home -o . --name sig -r "$(cat k.age-recipient)" -s k.minisign.key >/dev/null 2>&1 || true
cp sig.toml.minisig signed.toml.minisig 2>/dev/null || true
cp signed.toml.minisig stick/array.toml.minisig 2>/dev/null || true

worst=0
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f '%M' -o time.log "$@" > /dev/null 2>&1 || true
  local kib; kib=$(tail -1 time.log)
  printf '%-34s %7.1f MiB peak RSS\n' "$label" "$(echo "$kib / 1024" | bc -l)"
  (( kib > worst )) && worst=$kib
  return 0
}
measure "inspect (array, 47 MiB)" "$pouch" inspect stick/array.toml
measure "inspect (tables, 47 MiB)" "$pouch" inspect stick/tables.toml
measure "inspect (array, 4 MiB, 20k items)" "$pouch" inspect small-array.toml
measure "inspect (3000 empty entries)" "$pouch" inspect small-tables.toml
measure "inspect --trust (signed, 47 MiB)" "$pouch" inspect stick/array.toml --trust k.minisign.pub
measure "verify (47 MiB, bad signature)" "$pouch" verify stick/array.toml --trust k.minisign.pub
measure "audit (the stick)" "$pouch" audit stick --trust k.minisign.pub
measure "ledger verify (one 60 MiB record)" "$pouch" ledger verify
measure "ledger show (1M records)" "$pouch" ledger show --ledger many.jsonl
measure "ledger gaps (1M records)" "$pouch" ledger gaps --ledger many.jsonl
measure "ledger verify (1M records)" "$pouch" ledger verify --ledger many.jsonl
mkdir -p empty
measure "audit --ledger (1M records)" "$pouch" audit empty --ledger many.jsonl --trust k.minisign.pub
measure "receipt import (64 MiB array)" "$pouch" receipt import receipt.toml --trust k.minisign.pub
measure "config show (4 MiB array)" env POUCH_HOME="$work/cfg" sh -c "mkdir -p $work/cfg && cp config.toml $work/cfg/ && $pouch config show"
# The operator's own ledger of a million records: unpack and verify --record
# append to it, reading only the records about the bundle and the last line.
mkdir -p small big-home && echo report > report.txt
POUCH_HOME=$work/pack-home "$pouch" pack report.txt -o small --name s -r "$(cat k.age-recipient)" -s k.minisign.key >/dev/null 2>&1
cp many.jsonl big-home/ledger.jsonl
measure "unpack (1M-record own ledger)" env POUCH_HOME="$work/big-home" "$pouch" unpack small/s.toml --trust k.minisign.pub -i k.age-identity -d inbox
measure "verify --record (1M-record ledger)" env POUCH_HOME="$work/big-home" "$pouch" verify small/s.toml --trust k.minisign.pub --record
printf 'worst: %.1f MiB (target: at most 64 MiB)\n' "$(echo "$worst / 1024" | bc -l)"
