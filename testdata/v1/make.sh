#!/bin/sh
# Regenerates the frozen bundles in this folder with the pouch binary given as
# $1 (default: target/debug/pouch). Run once, when a format version is frozen;
# the committed files are the reference (age encryption is randomised, so a
# re-run gives different, equally valid bytes). tests/frozen.rs checks that
# today's pouch still verifies and unpacks them to exactly tree/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pouch=${1:-"$here/../../target/debug/pouch"}
export POUCH_HOME="$here/.home"
export SOURCE_DATE_EPOCH=1764633600
rm -rf "$here/keys" "$here/bundle" "$here/split" "$POUCH_HOME"
mkdir -p "$here/keys"
"$pouch" keygen --name clerk --no-passphrase --out "$here/keys" >/dev/null 2>&1
"$pouch" keygen --name fedpol --no-passphrase --out "$here/keys" >/dev/null 2>&1
for out in bundle split; do
    mkdir -p "$here/$out"
    extra=""
    [ "$out" = split ] && extra="--split 4K"
    # shellcheck disable=SC2086
    "$pouch" -q pack "$here/tree" -o "$here/$out" --name v1 \
        -s "$here/keys/clerk.minisign.key" -R "$here/keys/fedpol.age-recipient" \
        --from bka --to fedpol --marking RESTRICTED --description "frozen v1" \
        --no-verify-after-write $extra >/dev/null
done
rm -rf "$POUCH_HOME"
