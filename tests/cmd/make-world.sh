#!/bin/sh
# Regenerates world/, the fixture every snapshot case in this folder runs in
# (a fresh copy of it each time): keys of three parties, a small tree, and
# bundles packed from it, whole, split and damaged in the ways a user meets.
# age encryption is randomised, so the committed world/ is the reference and
# a re-run changes bundle bytes (and the snapshots' key ids and fingerprints):
# run it only to add to the world, then update the cases (TRYCMD=overwrite).
# Usage: tests/cmd/make-world.sh [PATH-TO-POUCH]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pouch=${1:-"$here/../../target/debug/pouch"}
w="$here/world"
rm -rf "$w"
mkdir -p "$w/keys" "$w/tree/reports" "$w/home" "$w/bundle" "$w/split"
cd "$w"
export POUCH_HOME="$w/home"
export SOURCE_DATE_EPOCH=1764633600
for who in clerk fedpol mallory; do
    "$pouch" keygen --name $who --no-passphrase --out keys >/dev/null 2>&1
done
printf 'case 0142\n' > tree/README.txt
printf 'Aussage\n' > tree/reports/statement.txt
head -c 9000 /dev/urandom > tree/blob.bin
pack() { # OUT EXTRA...
    out=$1; shift
    "$pouch" -q pack tree -o "$out" --name b -s keys/clerk.minisign.key \
        -R keys/fedpol.age-recipient --from bka --to fedpol \
        --description "case 0142" --no-verify-after-write "$@" >/dev/null
}
pack bundle
pack split --split 4K
# Damaged copies, one fault each.
cp -r bundle tampered-manifest
sed -i 's/^description = .*/description = "forged"/' tampered-manifest/b.toml
cp -r bundle tampered-payload
printf 'X' | dd of=tampered-payload/b.age bs=1 seek=300 conv=notrunc 2>/dev/null
cp -r bundle no-payload
rm no-payload/b.age
cp -r split missing-part
rm missing-part/b.age.002
cp -r split extra-part
cp split/b.age.003 extra-part/b.age.004
# Key files and settings that are not what they claim.
printf 'not a key\n' > keys/garbage.key
printf 'AGE-SECRET-KEY-1NOTAKEY\n' > keys/garbage.age-identity
mkdir bad-config
printf 'colour = "blue"\n' > bad-config/config.toml
mkdir bad-keyring
printf '[party\n' > bad-keyring/keyring.toml
printf 'not a manifest\n' > garbage.toml
mkdir unportable && printf 'x\n' > 'unportable/a:b.txt'
# A recipient's home that has accepted bundle/ already.
mkdir -p received && "$pouch" -q unpack bundle/b.toml -i keys/fedpol.age-identity \
    --trust keys/clerk.minisign.pub -d received >/dev/null
# A ledger with one record edited.
cp home/ledger.jsonl edited-ledger.jsonl
sed -i '1s/"bka"/"bkb"/' edited-ledger.jsonl
