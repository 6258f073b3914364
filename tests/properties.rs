//! Property tests of three laws, through the library API:
//!
//! 1. **Round trip.** For any tree of nested folders and files (names mixing
//!    ASCII, spaces and non-ASCII letters, random contents, some executable),
//!    unpacking what pack sealed gives the same tree back: paths (in NFC, as
//!    bundles store them), kinds, bytes and executable bits. With and without
//!    sealed names.
//! 2. **Tamper detection.** Any single flipped byte and any truncation of the
//!    payload, the manifest or the `.minisig` is refused by `verify` (with and
//!    without an identity) and by `unpack`, which leaves DEST exactly as it was.
//!    The only changes that may pass are those to bytes nobody signed: the
//!    untrusted comment (which *must* pass) and trailing whitespace at the end
//!    of the `.minisig`.
//! 3. **Path policy.** Whatever bytes an archive names, a path `check_path`
//!    accepts is relative, has no `.`, `..` or empty components, and joined to
//!    DEST stays below DEST.
//!
//! Failing cases are shrunk and printed; nothing is persisted to disk.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use age::x25519;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestRunner};
use unicode_normalization::UnicodeNormalization;

use common::{noise, snapshot, Node, World};
use pouch::format::names::check_path;
use pouch::pack::{self, pack, PackOptions};
use pouch::signature::{self, SigningKey, TrustedKey};
use pouch::unpack::{unpack, UnpackOptions};
use pouch::verify::{verify, Trust, VerifyOptions};

// ---------------------------------------------------------------------------
// Shared set-up
// ---------------------------------------------------------------------------

/// Keys made once per test: a signing key loaded from a minisign file, its
/// public key loaded from a `.pub` file, and an age identity.
struct Keys {
    _world: World,
    signing: SigningKey,
    trusted: TrustedKey,
    identity: pouch::payload::crypto::Identity,
}

fn keys() -> Keys {
    let w = World::new();
    let kp = signature::generate(None).expect("generate a signing key");
    let secret = w.path().join("clerk.minisign.key");
    let public = w.path().join("clerk.minisign.pub");
    fs::write(&secret, &kp.secret).expect("write the secret key");
    fs::write(&public, &kp.public).expect("write the public key");
    let signing = SigningKey::load(&secret, &mut || {
        unreachable!("an unprotected key needs no passphrase")
    })
    .expect("load the signing key");
    let trusted = TrustedKey::load(public.to_str().expect("UTF-8 temp path")).expect("load .pub");
    Keys {
        _world: w,
        signing,
        trusted,
        identity: pouch::payload::crypto::Identity::X25519(x25519::Identity::generate()),
    }
}

impl Keys {
    fn trust(&self) -> Trust {
        Trust::Keys(vec![self.trusted.clone()])
    }

    fn verify_opts(&self, manifest: &Path, with_identity: bool) -> VerifyOptions {
        VerifyOptions {
            manifest: manifest.to_path_buf(),
            trust: self.trust(),
            identities: if with_identity {
                vec![self.identity.clone()]
            } else {
                Vec::new()
            },
            parts_from: Vec::new(),
            progress: Default::default(),
        }
    }

    fn unpack_opts(&self, manifest: &Path, dest: &Path) -> UnpackOptions {
        UnpackOptions {
            manifest: manifest.to_path_buf(),
            trust: self.trust(),
            identities: vec![self.identity.clone()],
            dest: dest.to_path_buf(),
            parts_from: Vec::new(),
            progress: Default::default(),
            ledger: None,
            allow_replay: false,
            allow_removable_dest: false,
            no_space_check: false,
            onto: None,
            rehash: false,
        }
    }
}

/// A runner that persists nothing (this suite must not write files into the
/// source tree) and bounds shrinking, since a case packs and unpacks.
fn runner(cases: u32) -> TestRunner {
    // PROPTEST_CASES=N runs a deeper (or shallower) sweep.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    })
}

/// Runs `test` on `strategy`, panicking with proptest's report (the minimal
/// failing input and why) on failure.
fn check<S: Strategy>(
    what: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    if let Err(e) = runner(cases).run(&strategy, test) {
        panic!("law violated: {what}\n{e}");
    }
}

fn fail(msg: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(msg.into())
}

fn describe(n: &Node) -> String {
    match n {
        Node::Folder => "folder".into(),
        Node::File(c, x) => format!(
            "file of {} bytes (FNV-1a {:016x}), executable {x}",
            c.len(),
            c.iter()
                .fold(0xcbf29ce484222325u64, |h, &b| (h ^ u64::from(b))
                    .wrapping_mul(0x100000001b3))
        ),
    }
}

/// `None` when the trees are equal, else every difference, one per line.
fn tree_diff(
    expected: &BTreeMap<PathBuf, Node>,
    actual: &BTreeMap<PathBuf, Node>,
) -> Option<String> {
    let mut out = Vec::new();
    for (p, n) in expected {
        match actual.get(p) {
            None => out.push(format!("  missing: {p:?} ({})", describe(n))),
            Some(m) if m != n => out.push(format!(
                "  differs: {p:?}: expected {}, found {}",
                describe(n),
                describe(m)
            )),
            Some(_) => {}
        }
    }
    for (p, n) in actual {
        if !expected.contains_key(p) {
            out.push(format!("  unexpected: {p:?} ({})", describe(n)));
        }
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

// ---------------------------------------------------------------------------
// Law 1: round trip
// ---------------------------------------------------------------------------

/// The pieces names are built from: mostly ASCII (letters of both cases, so
/// case collisions come up), spaces and punctuation that every filesystem
/// allows, and non-ASCII letters, including a decomposed é (NFD) so that
/// normalisation collisions come up too.
const NAME_UNITS: &[&str] = &[
    "a", "b", "c", "x", "A", "B", "X", "0", "7", " ", " ", "-", "_", ".", ",", "'", "(", ")", "[",
    "]", "{", "}", "!", "#", "$", "%", "&", "+", "=", ";", "@", "^", "`", "~", "ü", "Ü", "é", "É",
    "e\u{301}", "ß", "ẞ", "漢", "字", "ñ", "Ω", "ω", "ø", "ש", "🙂",
];

/// Windows device names; pack refuses them unless told to allow unportable
/// names, so the generator steers clear of them.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Makes a name one that pack accepts everywhere: no trailing dot or space
/// (which also rules out `.` and `..`), no Windows device name.
fn portable_name(raw: String) -> String {
    let mut name = raw.trim_end_matches(['.', ' ']).to_string();
    if name.is_empty() {
        name = "x".into();
    }
    let stem = name.split('.').next().unwrap_or("").trim_end_matches(' ');
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        name.insert(0, '_');
    }
    name
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAME_UNITS), 1..=40)
        .prop_map(|units| portable_name(units.concat()))
}

/// The key under which two names collide on a filesystem that ignores case
/// or Unicode normalisation.
fn collision_key(name: &str) -> String {
    name.nfc().collect::<String>().to_lowercase()
}

fn nfc(s: &str) -> String {
    s.nfc().collect()
}

#[derive(Debug, Clone)]
enum Spec {
    Folder,
    File { len: usize, seed: u64, exec: bool },
}

/// One entry to create: under which of the folders made so far, its name,
/// and what it is.
#[derive(Debug, Clone)]
struct Item {
    parent: Index,
    name: String,
    spec: Spec,
}

fn item_strategy() -> impl Strategy<Value = Item> {
    let len = prop_oneof![Just(0usize), 1..=512usize, 0..=65536usize];
    let spec = prop_oneof![
        1 => Just(Spec::Folder),
        2 => (len, any::<u64>(), any::<bool>())
            .prop_map(|(len, seed, exec)| Spec::File { len, seed, exec }),
    ];
    (any::<Index>(), name_strategy(), spec).prop_map(|(parent, name, spec)| Item {
        parent,
        name,
        spec,
    })
}

/// The deepest folder generated, counted below the tree's root.
const MAX_FOLDER_DEPTH: usize = 4;

/// Turns items into entries (component lists, parents first), dropping an
/// item whose name would collide with a sibling's.
fn layout(items: &[Item]) -> Vec<(Vec<String>, Spec)> {
    struct Folder {
        comps: Vec<String>,
        taken: HashSet<String>,
    }
    let mut folders = vec![Folder {
        comps: Vec::new(),
        taken: HashSet::new(),
    }];
    let mut out = Vec::new();
    for item in items {
        let eligible: Vec<usize> = (0..folders.len())
            .filter(|&i| match item.spec {
                Spec::Folder => folders[i].comps.len() < MAX_FOLDER_DEPTH,
                Spec::File { .. } => true,
            })
            .collect();
        let f = eligible[item.parent.index(eligible.len())];
        if !folders[f].taken.insert(collision_key(&item.name)) {
            continue;
        }
        let mut comps = folders[f].comps.clone();
        comps.push(item.name.clone());
        if let Spec::Folder = item.spec {
            folders.push(Folder {
                comps: comps.clone(),
                taken: HashSet::new(),
            });
        }
        out.push((comps, item.spec.clone()));
    }
    out
}

/// The top folder every generated tree lives in.
const TOP: &str = "tree";

/// Creates the entries below `parent/TOP`; returns what unpacking must give
/// back below `DEST/NAME`: the same tree with names in NFC.
fn create_tree(parent: &Path, entries: &[(Vec<String>, Spec)]) -> BTreeMap<PathBuf, Node> {
    let root = parent.join(TOP);
    fs::create_dir_all(&root).expect("mkdir tree");
    let mut expected = BTreeMap::new();
    expected.insert(PathBuf::from(TOP), Node::Folder);
    for (comps, spec) in entries {
        let on_disk: PathBuf = comps.iter().fold(root.clone(), |p, c| p.join(c));
        let stored: PathBuf = comps.iter().fold(PathBuf::from(TOP), |p, c| p.join(nfc(c)));
        match *spec {
            Spec::Folder => {
                fs::create_dir(&on_disk).expect("mkdir");
                expected.insert(stored, Node::Folder);
            }
            Spec::File { len, seed, exec } => {
                let bytes = noise(len, seed);
                fs::write(&on_disk, &bytes).expect("write");
                let mode = if exec { 0o755 } else { 0o644 };
                fs::set_permissions(&on_disk, fs::Permissions::from_mode(mode)).expect("chmod");
                expected.insert(stored, Node::File(bytes, exec));
            }
        }
    }
    expected
}

fn round_trip(
    keys: &Keys,
    items: &[Item],
    seal_names: bool,
    made: &AtomicUsize,
) -> Result<(), TestCaseError> {
    let entries = layout(items);
    made.fetch_add(entries.len(), Ordering::Relaxed);
    let w = World::new();
    let src = w.path().join("src");
    let out = w.path().join("out");
    let dest = w.path().join("dest");
    fs::create_dir_all(&out).expect("mkdir out");
    let expected = create_tree(&src, &entries);

    let report = pack(
        &PackOptions {
            sources: vec![src.join(TOP)],
            out_dir: out.clone(),
            recipients: vec![keys.identity.to_public()],
            name: Some("roundtrip".into()),
            level: pack::DEFAULT_LEVEL,
            seal_names,
            ..PackOptions::default()
        },
        &keys.signing,
    )
    .map_err(|e| fail(format!("pack refused a valid tree: {e}")))?;
    let manifest = report.manifest_path.clone();
    let text = fs::read_to_string(&manifest).expect("read the manifest");
    prop_assert_eq!(
        text.contains("[[entries]]"),
        !seal_names,
        "the outer manifest must list entries exactly when names are not sealed"
    );

    let files = expected
        .values()
        .filter(|n| matches!(n, Node::File(..)))
        .count() as u64;
    let folders = expected.len() as u64 - files;
    let bytes: u64 = expected
        .values()
        .map(|n| match n {
            Node::File(c, _) => c.len() as u64,
            Node::Folder => 0,
        })
        .sum();

    for with_identity in [false, true] {
        let v = verify(&keys.verify_opts(&manifest, with_identity)).map_err(|e| {
            fail(format!(
                "verify (identity: {with_identity}) refused a fresh bundle: {e}"
            ))
        })?;
        prop_assert_eq!(v.contents_checked, with_identity);
        prop_assert_eq!(
            (v.files, v.folders, v.total_bytes),
            (files, folders, bytes),
            "verify's counts (files, folders, bytes)"
        );
    }

    let u = unpack(&keys.unpack_opts(&manifest, &dest))
        .map_err(|e| fail(format!("unpack refused a fresh bundle: {e}")))?;
    prop_assert_eq!(&u.output, &dest.join("roundtrip"));
    prop_assert_eq!(
        (u.files, u.folders, u.total_bytes),
        (files, folders, bytes),
        "unpack's counts (files, folders, bytes)"
    );
    let listing = common::names(&dest);
    let only = "DEST must hold exactly the unpacked bundle (no staging folder)";
    prop_assert_eq!(listing, ["roundtrip"], "{}", only);
    let actual = snapshot(&u.output);
    if let Some(diff) = tree_diff(&expected, &actual) {
        return Err(fail(format!(
            "unpack(pack(tree)) differs from the tree (sealed names: {seal_names}):\n{diff}"
        )));
    }
    Ok(())
}

fn tree_strategy() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec(item_strategy(), 0..=12)
}

/// The generator must make real trees, not mostly empty ones.
fn assert_not_vacuous(made: &AtomicUsize) {
    let n = made.load(Ordering::Relaxed);
    assert!(
        n >= 48,
        "only {n} entries were generated over all cases; the tree strategy is too thin"
    );
}

#[test]
fn unpack_of_pack_is_the_identity() {
    let keys = keys();
    let made = AtomicUsize::new(0);
    check("unpack(pack(tree)) == tree", 24, tree_strategy(), |items| {
        round_trip(&keys, &items, false, &made)
    });
    assert_not_vacuous(&made);
}

#[test]
fn unpack_of_pack_is_the_identity_with_sealed_names() {
    let keys = keys();
    let made = AtomicUsize::new(0);
    check(
        "unpack(pack(tree, seal_names)) == tree",
        24,
        tree_strategy(),
        |items| round_trip(&keys, &items, true, &made),
    );
    assert_not_vacuous(&made);
}

// ---------------------------------------------------------------------------
// Law 2: tamper detection
// ---------------------------------------------------------------------------

/// How a fixture bundle was packed.
#[derive(Debug, Clone, Copy)]
enum Layout {
    Plain,
    SealedNames,
    /// The payload split into parts (`NAME.age.001`, …).
    Split,
}

const LAYOUTS: [Layout; 3] = [Layout::Plain, Layout::SealedNames, Layout::Split];

/// A bundle made once per test, kept in memory; each case writes a copy
/// with one file damaged.
struct Fixture {
    layout: Layout,
    /// File name to bytes, for every file of the bundle.
    files: BTreeMap<String, Vec<u8>>,
    /// The payload file, or its parts, in order.
    payload: Vec<String>,
    manifest: String,
    signature: String,
    /// What unpacking gives below `DEST/NAME`.
    tree: BTreeMap<PathBuf, Node>,
}

/// A small tree: text with a non-ASCII name, a 150 kB blob (three age
/// chunks), an empty file, an executable, nested and empty folders.
fn fixture_source(root: &Path) -> PathBuf {
    let case = root.join("case 7");
    fs::create_dir_all(case.join("sub/漢字")).expect("mkdir");
    fs::create_dir_all(case.join("empty folder")).expect("mkdir");
    fs::write(case.join("report ü.txt"), "Bericht\n").expect("write");
    fs::write(case.join("blob.bin"), noise(150_000, 42)).expect("write");
    fs::write(case.join("empty"), "").expect("write");
    fs::write(case.join("sub/漢字/notes.md"), "# notes\n").expect("write");
    let script = case.join("run.sh");
    fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    case
}

fn fixtures(keys: &Keys) -> Vec<Fixture> {
    let w = World::new();
    let src = w.path().join("src");
    let case = fixture_source(&src);
    LAYOUTS
        .iter()
        .map(|&layout| {
            let out = w.path().join(format!("out-{layout:?}"));
            fs::create_dir(&out).expect("mkdir");
            let report = pack(
                &PackOptions {
                    sources: vec![case.clone()],
                    out_dir: out.clone(),
                    recipients: vec![keys.identity.to_public()],
                    name: Some("fixture".into()),
                    level: pack::DEFAULT_LEVEL,
                    seal_names: matches!(layout, Layout::SealedNames),
                    split: matches!(layout, Layout::Split).then_some(64 * 1024),
                    ..PackOptions::default()
                },
                &keys.signing,
            )
            .unwrap_or_else(|e| panic!("packing the {layout:?} fixture: {e}"));
            let name = |p: &Path| {
                p.file_name()
                    .expect("file name")
                    .to_str()
                    .expect("UTF-8")
                    .to_string()
            };
            let mut files = BTreeMap::new();
            for e in fs::read_dir(&out).expect("read out") {
                let e = e.expect("entry");
                let n = e.file_name().into_string().expect("UTF-8 name");
                files.insert(n, fs::read(e.path()).expect("read"));
            }
            let payload: Vec<String> = report.payload_files.iter().map(|p| name(p)).collect();
            let manifest = name(&report.manifest_path);
            let signature = name(&report.signature_path);
            assert_eq!(
                files.len(),
                payload.len() + 2,
                "{layout:?}: the bundle folder must hold the payload file(s), manifest and signature only: {:?}",
                files.keys().collect::<Vec<_>>()
            );
            if let Layout::Split = layout {
                assert!(payload.len() >= 2, "the split fixture must have several parts");
            }
            for with_identity in [false, true] {
                verify(&keys.verify_opts(&report.manifest_path, with_identity)).unwrap_or_else(
                    |e| panic!("the undamaged {layout:?} fixture must verify: {e}"),
                );
            }
            Fixture {
                layout,
                files,
                payload,
                manifest,
                signature,
                tree: snapshot(&src),
            }
        })
        .collect()
}

/// What a damaged bundle must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Refused by every check, DEST untouched.
    Refused,
    /// Still accepted: only unsigned bytes changed.
    Accepted,
    /// Either outcome is within the law (unsigned bytes changed, but in a way
    /// pouch may reasonably refuse); if refused, DEST must be untouched, if
    /// accepted, the contents must be right.
    Either,
}

const UNTRUSTED_PREFIX: &[u8] = b"untrusted comment: ";

/// The byte range of the untrusted comment's text (after its prefix, before
/// the line break) in a `.minisig`.
fn untrusted_comment_text(sig: &[u8]) -> std::ops::Range<usize> {
    assert!(sig.starts_with(UNTRUSTED_PREFIX), "a minisign signature");
    let end = sig.iter().position(|&b| b == b'\n').expect("a line break");
    UNTRUSTED_PREFIX.len()..end
}

fn trim_trailing_whitespace(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .map_or(0, |i| i + 1);
    &b[..n]
}

/// What a change of the `.minisig` from `orig` to `new` must do. Only the
/// untrusted comment is unsigned; its prefix and the line structure are not
/// free to change, but its text is.
fn expect_for_signature(orig: &[u8], new: &[u8]) -> Expect {
    let text = untrusted_comment_text(orig);
    let same_elsewhere = new.len() == orig.len()
        && new[..text.start] == orig[..text.start]
        && new[text.end..] == orig[text.end..];
    if same_elsewhere {
        let comment = &new[text];
        if comment.contains(&b'\n') {
            // A new line break shifts every line after it.
            return Expect::Refused;
        }
        if std::str::from_utf8(comment).is_ok() {
            return Expect::Accepted;
        }
        // Not UTF-8: unsigned, so it should not matter, but pouch reads the
        // .minisig as UTF-8 text (see `a_non_utf8_untrusted_comment_...`).
        return Expect::Either;
    }
    if trim_trailing_whitespace(orig) == trim_trailing_whitespace(new) {
        // Only the final line break changed (into other whitespace, or cut):
        // minisign trims it, and it is not signed.
        return Expect::Either;
    }
    Expect::Refused
}

/// Runs `f`, turning a panic (a crash of the command, not a refusal) into a
/// failure that says so.
fn no_panic<T>(what: &str, op: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        fail(format!(
            "{what}: {op} panicked instead of refusing the bundle (the binary would exit 101 without a hint): {msg}"
        ))
    })
}

/// Writes the fixture with `file` replaced by `bytes` and checks the law.
fn check_damaged(
    keys: &Keys,
    fx: &Fixture,
    file: &str,
    bytes: &[u8],
    dest_exists: bool,
    change: &str,
) -> Result<(), TestCaseError> {
    let expect = if *file == fx.signature {
        expect_for_signature(&fx.files[file], bytes)
    } else {
        Expect::Refused
    };
    let what = format!(
        "{:?} bundle, {file}: {change} (expecting {expect:?})",
        fx.layout
    );

    let w = World::new();
    let medium = w.path().join("medium");
    fs::create_dir(&medium).expect("mkdir");
    for (name, content) in &fx.files {
        let content = if name == file { bytes } else { content };
        fs::write(medium.join(name), content).expect("write");
    }
    let manifest = medium.join(&fx.manifest);
    let site = w.path().join("site");
    fs::create_dir(&site).expect("mkdir");
    let dest = site.join("inbox");
    if dest_exists {
        fs::create_dir_all(dest.join("earlier")).expect("mkdir");
        fs::write(dest.join("keep.txt"), "keep me").expect("write");
        fs::write(dest.join("earlier/old.txt"), "old").expect("write");
    }
    let site_before = snapshot(&site);
    let medium_before = snapshot(&medium);

    let plain = no_panic(&what, "verify without identity", || {
        verify(&keys.verify_opts(&manifest, false))
    })?;
    let full = no_panic(&what, "verify with identity", || {
        verify(&keys.verify_opts(&manifest, true))
    })?;
    let unpacked = no_panic(&what, "unpack", || {
        unpack(&keys.unpack_opts(&manifest, &dest))
    })?;

    prop_assert!(
        tree_diff(&medium_before, &snapshot(&medium)).is_none(),
        "{what}: verify or unpack changed the bundle's folder"
    );
    // Each check's outcome: `None` when accepted, else the error and its exit code.
    let results: [(&str, Option<(String, i32)>); 3] = [
        (
            "verify without identity",
            plain.as_ref().err().map(|e| (e.to_string(), e.exit_code())),
        ),
        (
            "verify with identity",
            full.as_ref().err().map(|e| (e.to_string(), e.exit_code())),
        ),
        (
            "unpack",
            unpacked
                .as_ref()
                .err()
                .map(|e| (e.to_string(), e.exit_code())),
        ),
    ];
    let summary = results
        .iter()
        .map(|(n, r)| match r {
            None => format!("  {n}: accepted"),
            Some((e, code)) => format!("  {n}: refused, exit code {code}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let all_refused = results.iter().all(|(_, r)| r.is_some());
    let all_accepted = results.iter().all(|(_, r)| r.is_none());

    match expect {
        Expect::Refused => prop_assert!(all_refused, "{what}: must be refused by all three\n{summary}"),
        Expect::Accepted => prop_assert!(
            all_accepted,
            "{what}: only the unsigned untrusted comment changed, so all three must accept\n{summary}"
        ),
        Expect::Either => prop_assert!(
            all_refused || all_accepted,
            "{what}: verify and unpack must agree\n{summary}"
        ),
    }
    for (n, r) in &results {
        if let Some((e, code)) = r {
            prop_assert_eq!(
                *code,
                1,
                "{}: {} must report a failed check (exit 1), not a usage or I/O error: {}",
                what,
                n,
                e
            );
        }
    }
    match &unpacked {
        Err(_) => {
            if let Some(diff) = tree_diff(&site_before, &snapshot(&site)) {
                return Err(fail(format!(
                    "{what}: a refused unpack must leave DEST as it was (DEST existed before: {dest_exists}):\n{diff}"
                )));
            }
        }
        Ok(report) => {
            if let Some(diff) = tree_diff(&fx.tree, &snapshot(&report.output)) {
                return Err(fail(format!(
                    "{what}: accepted, but unpacked wrongly:\n{diff}"
                )));
            }
        }
    }
    Ok(())
}

/// Which file of a bundle: payload (or one of its parts), manifest or signature.
#[derive(Debug, Clone, Copy)]
enum Role {
    Payload,
    Manifest,
    Signature,
}

fn role_strategy() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Payload),
        Just(Role::Manifest),
        Just(Role::Signature)
    ]
}

/// Which file of which fixture to damage: the fixture's index, the file's
/// role and, for payload parts, which part.
type Target = (Index, Role, Index);

fn target_strategy() -> impl Strategy<Value = Target> {
    (any::<Index>(), role_strategy(), any::<Index>())
}

/// The fixture and the file (by name) that `target` picks.
fn pick(fxs: &[Fixture], (layout, role, part): Target) -> (&Fixture, &str) {
    let fx = &fxs[layout.index(fxs.len())];
    let file = match role {
        Role::Payload => &fx.payload[part.index(fx.payload.len())],
        Role::Manifest => &fx.manifest,
        Role::Signature => &fx.signature,
    };
    (fx, file)
}

#[test]
fn any_flipped_byte_is_detected() {
    let keys = keys();
    let fxs = fixtures(&keys);
    let strategy = (target_strategy(), any::<Index>(), 1..=255u8, any::<bool>());
    check(
        "a flipped byte is refused, DEST untouched",
        64,
        strategy,
        |(target, pos, mask, dest_exists)| {
            let (fx, file) = pick(&fxs, target);
            let mut bytes = fx.files[file].clone();
            let at = pos.index(bytes.len());
            bytes[at] ^= mask;
            let change = format!("byte {at} of {} xor {mask:#04x}", fx.files[file].len());
            check_damaged(&keys, fx, file, &bytes, dest_exists, &change)
        },
    );
}

#[test]
fn any_truncation_is_detected() {
    let keys = keys();
    let fxs = fixtures(&keys);
    let strategy = (target_strategy(), any::<Index>(), any::<bool>());
    check(
        "a truncated file is refused, DEST untouched",
        64,
        strategy,
        |(target, len, dest_exists)| {
            let (fx, file) = pick(&fxs, target);
            let full = fx.files[file].len();
            let keep = len.index(full);
            let bytes = &fx.files[file][..keep];
            let change = format!("truncated from {full} to {keep} bytes");
            check_damaged(&keys, fx, file, bytes, dest_exists, &change)
        },
    );
}

/// Flips concentrated on the untrusted comment, which random positions
/// rarely hit: unsigned, so they must not matter (unless they break the line
/// structure).
#[test]
fn a_flip_in_the_untrusted_comment_does_not_matter() {
    let keys = keys();
    let fxs = fixtures(&keys);
    let strategy = (any::<Index>(), any::<Index>(), 1..=127u8, any::<bool>());
    check(
        "a flip in the untrusted comment is accepted",
        32,
        strategy,
        |(layout, pos, mask, dest_exists)| {
            let fx = &fxs[layout.index(fxs.len())];
            let file = fx.signature.as_str();
            let mut bytes = fx.files[file].clone();
            let text = untrusted_comment_text(&bytes);
            let at = text.start + pos.index(text.len());
            bytes[at] ^= mask;
            let change = format!("untrusted comment byte {at} xor {mask:#04x}");
            check_damaged(&keys, fx, file, &bytes, dest_exists, &change)
        },
    );
}

/// The untrusted comment is not signed and minisign itself accepts any bytes
/// there (e.g. a Latin-1 comment written by `minisign -c` in a Latin-1
/// locale); pouch refuses the whole `.minisig` unless it is UTF-8.
#[test]
fn a_non_utf8_untrusted_comment_does_not_matter() {
    let keys = keys();
    let fxs = fixtures(&keys);
    let fx = &fxs[0];
    let sig = &fx.files[&fx.signature];
    let text = untrusted_comment_text(sig);
    let mut bytes = sig[..text.start].to_vec();
    bytes.extend_from_slice(b"signed by M\xfcller");
    bytes.extend_from_slice(&sig[text.end..]);
    let w = World::new();
    for (name, content) in &fx.files {
        let content = if *name == fx.signature {
            &bytes
        } else {
            content
        };
        fs::write(w.path().join(name), content).expect("write");
    }
    let manifest = w.path().join(&fx.manifest);
    if let Err(e) = verify(&keys.verify_opts(&manifest, false)) {
        panic!("a Latin-1 untrusted comment was refused: {e}");
    }
}

/// Regression for a crash found by `any_truncation_is_detected`: a `.minisig`
/// whose last line (the global signature) is valid base64 of fewer than 64
/// bytes made `signature::verify` panic inside the minisign crate
/// (`ed25519::verify` slices `signature[32..64]`) instead of refusing it.
#[test]
fn a_short_global_signature_is_refused_not_a_crash() {
    let keys = keys();
    let fxs = fixtures(&keys);
    let fx = &fxs[0];
    let sig = std::str::from_utf8(&fx.files[&fx.signature]).expect("UTF-8");
    let mut lines: Vec<&str> = sig.lines().collect();
    for short in ["AAAA", "AAAAAAAA", &"A".repeat(84)] {
        lines[3] = short;
        let damaged = lines.join("\n") + "\n";
        let w = World::new();
        for (name, content) in &fx.files {
            let content = if *name == fx.signature {
                damaged.as_bytes()
            } else {
                content
            };
            fs::write(w.path().join(name), content).expect("write");
        }
        let manifest = w.path().join(&fx.manifest);
        let r = std::panic::catch_unwind(|| verify(&keys.verify_opts(&manifest, false)));
        match r {
            Err(_) => panic!(
                "verify panicked on a .minisig whose global signature is {short:?} ({} bytes)",
                short.len() / 4 * 3
            ),
            Ok(Ok(_)) => panic!("verify accepted a .minisig whose global signature is {short:?}"),
            Ok(Err(e)) => assert_eq!(e.exit_code(), 1, "{e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Law 3: path policy
// ---------------------------------------------------------------------------

/// Pieces that attack a path policy: traversal, roots, Windows separators
/// and drives, home folders, NUL and other controls, overlong UTF-8 encodings
/// of `.` and `/`, invalid UTF-8, and harmless pieces to glue them.
const PATH_PIECES: &[&[u8]] = &[
    b"..",
    b".",
    b"",
    b"a",
    b"b.txt",
    b"...",
    b".hidden",
    b"/",
    b"//",
    b"\\",
    b"C:",
    b"c:",
    b"Z:\\",
    b"~",
    b"~x",
    b"\0",
    b"\n",
    b"\r",
    b"\x1b",
    b"\x7f",
    b" ",
    "é".as_bytes(),
    "漢".as_bytes(),
    "\u{202e}".as_bytes(),
    "\u{2024}".as_bytes(), // one dot leader, looks like "."
    "\u{ff0f}".as_bytes(), // fullwidth solidus, looks like "/"
    "\u{85}".as_bytes(),   // NEL, a C1 control
    b"\xc0\xae",           // overlong "."
    b"\xc0\xaf",           // overlong "/"
    b"\xe0\x80\xaf",       // overlong "/"
    b"\xff",
];

fn path_bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        prop::collection::vec(prop::sample::select(PATH_PIECES), 0..10).prop_map(|p| p.concat()),
        // Pieces separated by "/", so that many inputs are well-formed and
        // the interesting ones differ in a single component.
        prop::collection::vec(prop::sample::select(PATH_PIECES), 1..8).prop_map(|p| p.join(&b'/')),
        any::<String>().prop_map(String::into_bytes),
    ]
}

/// Resolves `.` and `..` lexically, as a naive extractor would.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn path_law(bytes: &[u8], accepted: &AtomicUsize) -> Result<(), TestCaseError> {
    if check_path(bytes).is_err() {
        return Ok(());
    }
    accepted.fetch_add(1, Ordering::Relaxed);
    let shown = String::from_utf8_lossy(bytes).escape_debug().to_string();
    let s = std::str::from_utf8(bytes)
        .map_err(|_| fail(format!("accepted a path that is not UTF-8: {bytes:?}")))?;
    let path = Path::new(OsStr::from_bytes(bytes));
    prop_assert!(
        path.is_relative() && !path.has_root(),
        "accepted an absolute path: \"{}\"",
        shown
    );
    for part in s.split('/') {
        prop_assert!(
            !matches!(part, "" | "." | ".."),
            "accepted \"{}\", which has a {:?} component",
            shown,
            part
        );
        prop_assert!(
            part.len() <= 255,
            "accepted a component over 255 bytes in \"{}\"",
            shown
        );
        prop_assert!(
            !part.contains('\\') && !part.chars().any(char::is_control),
            "accepted \"{}\", which holds a backslash or control character",
            shown
        );
    }
    let first = s.split('/').next().unwrap_or("");
    let b = first.as_bytes();
    let drive = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
    prop_assert!(
        !(drive || first.starts_with('~')),
        "accepted \"{}\", which starts with a drive letter or ~",
        shown
    );
    for c in path.components() {
        prop_assert!(
            matches!(c, Component::Normal(_)),
            "accepted \"{}\", which has the component {:?}",
            shown,
            c
        );
    }

    let dest = Path::new("/srv/inbox/.pouch-staging-b-0123");
    let joined = dest.join(path);
    prop_assert!(
        !joined.components().any(|c| c == Component::ParentDir),
        "DEST joined with \"{}\" has a .. component: {}",
        shown,
        joined.display()
    );
    let resolved = normalise(&joined);
    prop_assert!(
        resolved.starts_with(dest) && resolved != dest,
        "\"{}\" resolves to {}, not below {}",
        shown,
        resolved.display(),
        dest.display()
    );
    prop_assert_eq!(
        resolved.components().count(),
        dest.components().count() + s.split('/').count(),
        "\"{}\" must add one level below DEST per component",
        shown
    );
    Ok(())
}

#[test]
fn accepted_paths_stay_below_dest() {
    let accepted = AtomicUsize::new(0);
    check(
        "check_path(p) is Ok => DEST/p stays below DEST",
        2000,
        path_bytes_strategy(),
        |bytes| path_law(&bytes, &accepted),
    );
    // Not vacuous: a fair share of the inputs must have been accepted.
    let n = accepted.load(Ordering::Relaxed);
    assert!(n >= 100, "only {n} of 2000 generated paths were accepted; the strategy is too hostile to test the law");
}

/// The other direction, so the policy is not vacuously safe: ordinary
/// relative paths of ordinary names are accepted.
#[test]
fn ordinary_relative_paths_are_accepted() {
    let component = prop::collection::vec(prop::sample::select(NAME_UNITS), 1..=20)
        .prop_map(|u| portable_name(u.concat()))
        .prop_filter("not ~ at the start", |s| !s.starts_with('~'));
    check(
        "ordinary relative paths are accepted",
        500,
        prop::collection::vec(component, 1..=8),
        |parts| {
            let p = parts.join("/");
            prop_assert!(
                check_path(p.as_bytes()).is_ok(),
                "refused the ordinary path {:?}: {:?}",
                p,
                check_path(p.as_bytes())
            );
            Ok(())
        },
    );
}
