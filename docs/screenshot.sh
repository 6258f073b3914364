#!/usr/bin/env bash
# Makes docs/audit-report.png, the README's picture of `pouch audit --html`:
# two agencies' homes, six bundles on one channel (one rejected, one lost,
# one accepted whose receipt is still on its way), both ledgers signed, and
# a headless browser's screenshot of the report. Needs a built pouch
# (cargo build) and chromium-headless-shell (apt-get install
# chromium-headless-shell). Run from anywhere: bash docs/screenshot.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
pouch="${POUCH:-$here/target/debug/pouch}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p stick receipts inbox src keys
ma() { POUCH_HOME="$work/ma-dgsn" "$pouch" -q "$@"; }
be() { POUCH_HOME="$work/be-fedpol" "$pouch" -q "$@"; }
ma keygen --name ma-dgsn --out keys --no-passphrase >/dev/null
be keygen --name be-fedpol --out keys --no-passphrase >/dev/null
ma keyring add BE-FEDPOL --sign-pub keys/be-fedpol.minisign.pub --recipient "$(cat keys/be-fedpol.age-recipient)" >/dev/null
ma keyring add MA-DGSN --sign-pub keys/ma-dgsn.minisign.pub >/dev/null
be keyring add MA-DGSN --sign-pub keys/ma-dgsn.minisign.pub >/dev/null
for i in 1 2 3 4 5 6; do
  echo "case file $i" > "src/case-$i.txt"
  ma pack "src/case-$i.txt" -o stick -s keys/ma-dgsn.minisign.key --from MA-DGSN --to BE-FEDPOL --name "MA-BE-00$i" >/dev/null
done
be unpack stick/MA-BE-001.toml -i keys/be-fedpol.age-identity -d inbox --receipt-out receipts -s keys/be-fedpol.minisign.key >/dev/null
be receipt make stick/MA-BE-002.toml -o receipts -s keys/be-fedpol.minisign.key --reject "marked SECRET: not covered by the agreement" 2>/dev/null
be unpack stick/MA-BE-004.toml -i keys/be-fedpol.age-identity -d inbox --receipt-out receipts -s keys/be-fedpol.minisign.key >/dev/null
be unpack stick/MA-BE-005.toml -i keys/be-fedpol.age-identity -d inbox >/dev/null
for r in MA-BE-001 MA-BE-002 MA-BE-004; do ma receipt import "receipts/$r.receipt.toml" >/dev/null; done
ma ledger sign -s keys/ma-dgsn.minisign.key >/dev/null
be ledger sign -s keys/be-fedpol.minisign.key >/dev/null
ma audit stick receipts --ledger ma-dgsn/ledger.jsonl --ledger be-fedpol/ledger.jsonl --html report.html >/dev/null || true
chromium-headless-shell --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,900 \
  --screenshot="$here/docs/audit-report.png" "file://$work/report.html" 2>/dev/null
echo "wrote $here/docs/audit-report.png"
