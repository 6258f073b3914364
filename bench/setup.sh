# Sourced by the benchmarks: builds the release binary into $pouch, makes a
# scratch folder $work (removed on exit) named after $1, enters it, and makes
# a throwaway key pair k.* there.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
pouch=$PWD/target/release/pouch
work=$(mktemp -d "${TMPDIR:-/tmp}/pouch-$1.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
"$pouch" keygen --name k --no-passphrase --out . >/dev/null 2>&1
