//! Attacks on delta bundles (issue 17): an insider sender forging the
//! `[delta]` table, another trusted party, an outsider with the medium, a
//! local process racing `unpack --onto`, and the sender's own base. A test
//! marked `DEFECT:` asserts the correct behaviour and fails today.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::chain::{spawn_under_strace, Chain};
use common::{assert_same_tree, fails, passes, snapshot};
use pouch::format::manifest::Manifest;

/// The first tree of every test here.
fn new_chain() -> Chain {
    Chain::with(&[
        ("case/a.txt", "alpha\n"),
        ("case/b.txt", "bravo\n"),
        ("case/sub/c.txt", "charlie\n"),
        ("case/gone.txt", "to be deleted\n"),
        ("case/run.sh", "echo hi\n"),
    ])
}

trait BaseAndDelta {
    fn base_and_delta(&self) -> (PathBuf, PathBuf, PathBuf);
}

impl BaseAndDelta for Chain {
    /// w1 (full) unpacked into inbox/w1, and w2, a delta on it that
    /// changes a.txt, adds new.txt and deletes gone.txt; b.txt, sub/c.txt,
    /// run.sh and big.bin are kept.
    fn base_and_delta(&self) -> (PathBuf, PathBuf, PathBuf) {
        let w1 = self.pack("w1", &[]);
        let inbox = self.unpack_base(&w1);
        self.put("case/a.txt", "alpha, revised\n");
        self.put("case/new.txt", "new\n");
        fs::remove_file(self.tree.join("case/gone.txt")).expect("rm");
        let w2 = self.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
        (w1, inbox, w2)
    }
}

/// The `.pouch*` names left in `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    common::names(dir)
        .into_iter()
        .filter(|n| n.starts_with(".pouch"))
        .collect()
}

/// `manifest`'s bundle re-signed by `key` after `edit` changed it, with its
/// payload, in `dir`: what an insider holding `key` can send.
fn forged(manifest: &Path, dir: &Path, key: &Path, edit: impl FnOnce(&mut Manifest)) -> PathBuf {
    let key = common::forge::key(key);
    let text = fs::read(manifest).expect("read");
    let mut m = Manifest::parse(&text, manifest).expect("parses");
    m.signer.key_id = key.key_id.clone();
    edit(&mut m);
    let from = manifest.parent().expect("folder");
    fs::copy(from.join(&m.payload.file), dir.join(&m.payload.file)).expect("payload");
    let text = m.to_toml();
    common::forge::signed_manifest(dir, &m.name, text.as_bytes(), &m.bundle_id, &key)
}

/// Runs `cmd` (an `--onto` of a tree in `parent`) with its first hard link
/// held back for two seconds, and runs `race` as soon as the staging folder
/// exists: after TREE was checked, before the base's files are linked.
fn racing(cmd: &Command, parent: &Path, race: impl FnOnce()) -> std::process::Output {
    let child = spawn_under_strace(cmd, "linkat", "delay_enter=2000000:when=1");
    let start = Instant::now();
    while leftovers(parent).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no staging folder appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    race();
    child.wait_with_output().expect("waits")
}

// ---------------------------------------------------------------------
// 4. A local process racing `unpack --onto`.
// ---------------------------------------------------------------------

// DEFECT: a kept file rewritten in TREE after the check and before the
// hard link goes into the new tree unchecked (`built` trusts the base's
// sha256 for every linked file), and the record then stamps it as good, so
// the next delta does not see it either.
#[test]
fn a_kept_file_rewritten_while_onto_runs_does_not_enter_the_new_tree() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let b = inbox.join("case/b.txt");
    let o = racing(&c.onto(&w2, &inbox), inbox.parent().expect("inbox"), || {
        // Same size, in place (same inode), the old mtime put back.
        let mtime = fs::metadata(&b).expect("stat").modified().expect("mtime");
        fs::write(&b, "BRAVO\n").expect("write");
        fs::File::options()
            .write(true)
            .open(&b)
            .expect("open")
            .set_modified(mtime)
            .expect("touch");
    });
    if o.status.success() {
        // Whatever went on, the new tree must be the signed one.
        assert_same_tree(&inbox, &c.tree);
    } else {
        assert_eq!(o.status.code(), Some(1), "{}", common::describe("onto", &o));
    }
}

// DEFECT: TREE swapped for a symlink to a look-alike folder after the
// check: `link_kept` follows it (self.tree.join(path)), the exchange then
// swaps the symlink out, and the new tree holds the look-alike's files,
// never checked.
#[test]
fn tree_swapped_for_a_symlink_while_onto_runs_is_not_followed() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let parent = inbox.parent().expect("inbox").to_path_buf();
    let decoy = c.a.w.dir("decoy");
    let o = racing(&c.onto(&w2, &inbox), &parent, || {
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(&inbox)
            .arg(decoy.join("w1"))
            .status()
            .expect("cp");
        assert!(st.success());
        fs::write(decoy.join("w1/case/b.txt"), "BRAVO\n").expect("write");
        fs::rename(&inbox, parent.join("w1.real")).expect("mv");
        std::os::unix::fs::symlink(decoy.join("w1"), &inbox).expect("ln -s");
    });
    let meta = fs::symlink_metadata(&inbox).expect("stat");
    if o.status.success() && meta.is_dir() {
        assert_same_tree(&inbox, &c.tree);
    } else {
        assert_eq!(o.status.code(), Some(1), "{}", common::describe("onto", &o));
    }
}

/// A symlink planted in place of a kept file after the check is linked as
/// a symlink, and the walk of the new tree refuses it: exit 1, nothing left.
#[test]
fn a_symlink_planted_while_onto_runs_is_refused() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let parent = inbox.parent().expect("inbox").to_path_buf();
    let secret = c.a.w.write("secret.txt", "top secret\n");
    let o = racing(&c.onto(&w2, &inbox), &parent, || {
        fs::remove_file(inbox.join("case/b.txt")).expect("rm");
        std::os::unix::fs::symlink(&secret, inbox.join("case/b.txt")).expect("ln -s");
    });
    // Refused at the link: the file is not the one the check saw.
    common::exited(
        &o,
        1,
        &["case/b.txt changed while the delta was being applied"],
    );
    assert!(leftovers(&parent).is_empty(), "{:?}", leftovers(&parent));
    assert!(fs::symlink_metadata(inbox.join("case/b.txt"))
        .expect("stat")
        .file_type()
        .is_symlink());
    assert!(inbox.join("case/gone.txt").exists(), "the old tree stays");
}

/// A symlink or FIFO in TREE before the unpack, and TREE itself a symlink.
#[test]
fn links_and_special_files_in_tree_are_refused_before_anything_is_written() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let parent = inbox.parent().expect("inbox").to_path_buf();
    std::os::unix::fs::symlink("/etc/passwd", inbox.join("case/link")).expect("ln -s");
    let before = fs::read_link(inbox.join("case/link")).expect("link");
    fails(
        c.onto(&w2, &inbox),
        1,
        &["neither a file nor a folder", "not the base's"],
    );
    assert_eq!(
        fs::read_link(inbox.join("case/link")).expect("link"),
        before
    );
    fs::remove_file(inbox.join("case/link")).expect("rm");
    let st = std::process::Command::new("mkfifo")
        .arg(inbox.join("case/fifo"))
        .status()
        .expect("mkfifo");
    assert!(st.success());
    fails(c.onto(&w2, &inbox), 1, &["neither a file nor a folder"]);
    fs::remove_file(inbox.join("case/fifo")).expect("rm");
    // TREE given as a symlink to the real tree: an operator mistake.
    let alias = c.a.w.join("alias");
    std::os::unix::fs::symlink(&inbox, &alias).expect("ln -s");
    fails(c.onto(&w2, &alias), 2, &["a symbolic link is not followed"]);
    assert!(leftovers(&parent).is_empty());
    let snap = snapshot(&inbox);
    assert!(snap.contains_key(Path::new("case/gone.txt")));
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

/// The recorded state of TREE, edited by `edit` line by line.
fn edit_state(c: &Chain, tree: &Path, edit: impl Fn(serde_json::Value) -> serde_json::Value) {
    let tree = fs::canonicalize(tree).expect("canonical");
    let path = pouch::delta::state::unpacked_path(&c.ledger(), &tree, false);
    let text = fs::read_to_string(&path).expect("state");
    let mut out = String::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        out.push_str(&edit(v).to_string());
        out.push('\n');
    }
    fs::write(&path, out).expect("write state");
}

// The recorded state in LEDGER.trees/ is trusted for its stat data
// and bound to nothing (the ledger's chain and signature do not cover it;
// its digest leaves the stamps out): whoever can write it makes a changed
// file pass as the base's, and the new tree then keeps it as checked.
#[test]
fn a_forged_stamp_in_the_recorded_state_does_not_hide_a_changed_file() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let b = inbox.join("case/b.txt");
    fs::write(&b, "BRAVO\n").expect("write");
    let m = fs::metadata(&b).expect("stat");
    let stamp = serde_json::json!({
        "mtime_ns": m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        "ctime_ns": m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        "ino": m.ino(),
    });
    edit_state(&c, &inbox, |mut v| {
        if v["path"] == "case/b.txt" {
            v["stamp"] = stamp.clone();
        }
        v
    });
    // Not a defect but the trust model: the record is in POUCH_HOME, beside
    // the keyring, and whoever can write there can as well make any key a
    // trusted signer. What holds: --rehash reads every file, whatever the
    // record says.
    fails(
        args!(c.onto(&w2, &inbox); "--rehash"),
        1,
        &["case/b.txt was changed"],
    );
}

/// A state file's bundle id (another local user's, or damaged) never puts
/// terminal escapes on the operator's screen.
#[test]
fn a_damaged_state_file_is_never_printed_raw() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    edit_state(&c, &inbox, |mut v| {
        if v.get("format").is_some() {
            v["bundle_id"] = "\u{1b}]0;pwned\u{7}\u{1b}[2J".into();
        }
        v
    });
    let o = common::output(c.onto(&w2, &inbox));
    assert_eq!(o.status.code(), Some(1), "{}", common::describe("onto", &o));
    assert!(
        !o.stderr.contains(&0x1b),
        "raw escape printed: {}",
        common::stderr_of(&o)
    );
}

/// A state file pointing at another tree (a copy of the state of another
/// folder renamed to this tree's key) is not taken for this tree's.
#[test]
fn a_state_file_of_another_tree_is_not_taken_for_this_one() {
    let c = new_chain();
    let (w1, inbox, w2) = c.base_and_delta();
    let copy_dest = c.a.w.dir("copy");
    let again =
        args!(c.a.receiver(); "unpack", &w1, "-i", &c.a.recipient.identity, "-d", &copy_dest);
    passes(args!(again; "--allow-replay"), &[]);
    let copy = fs::canonicalize(copy_dest.join("w1")).expect("canonical");
    let inbox = fs::canonicalize(inbox).expect("canonical");
    let from = pouch::delta::state::unpacked_path(&c.ledger(), &inbox, false);
    let to = pouch::delta::state::unpacked_path(&c.ledger(), &copy, false);
    fs::copy(&from, &to).expect("copy state");
    let before = snapshot(&copy);
    fails(c.onto(&w2, &copy), 1, &["there is no record of what"]);
    assert_eq!(snapshot(&copy), before);
}

// DEFECT (low): a TREE the recipient made private (0700) comes out of
// `--onto` world-readable: `Onto::commit` sets 0755 on the new tree's
// folder instead of keeping TREE's mode.
#[test]
fn a_private_tree_stays_private_after_onto() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    fs::set_permissions(&inbox, fs::Permissions::from_mode(0o700)).expect("chmod");
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
    let mode = fs::metadata(&inbox).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "TREE's mode was {mode:o}");
}

// ---------------------------------------------------------------------
// 1. An insider sender with a trusted key.
// ---------------------------------------------------------------------

/// Each forged `[delta]` table, signed by the channel's own key, is refused
/// with exit 1, TREE untouched and no staging folder left.
#[test]
fn forged_delta_tables_are_refused_and_the_tree_left_alone() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let parent = inbox.parent().expect("inbox").to_path_buf();
    let key = c.a.clerk.secret.clone();
    type Edit = Box<dyn Fn(&mut Manifest)>;
    let set_deleted = |paths: Vec<&str>| -> Edit {
        let paths: Vec<String> = paths.into_iter().map(String::from).collect();
        Box::new(move |m: &mut Manifest| {
            let d = m.delta.as_mut().expect("delta");
            d.deleted_count = paths.len() as u64;
            d.deleted_sha256 = pouch::format::delta::block_sha256(&paths);
            d.deleted = paths.clone();
        })
    };
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "tree digest",
            Box::new(|m| m.delta.as_mut().expect("delta").tree_sha256 = "0".repeat(64)),
            "is not the one the signed manifest describes",
        ),
        (
            "tree counts",
            Box::new(|m| m.delta.as_mut().expect("delta").tree_files += 1),
            "is not the one the signed manifest describes",
        ),
        (
            "count",
            Box::new(|m| m.delta.as_mut().expect("delta").deleted_count = 7),
            "deleted_count",
        ),
        (
            "outer list vs inner",
            set_deleted(vec!["case/b.txt"]),
            "deleted paths",
        ),
        ("unsafe", set_deleted(vec!["../etc/passwd"]), "deleted path"),
        ("absolute", set_deleted(vec!["/etc/passwd"]), "deleted path"),
        (
            "out of order",
            set_deleted(vec!["case/z", "case/a.txt"]),
            "out of order",
        ),
        (
            "twice",
            set_deleted(vec!["case/gone.txt", "case/gone.txt"]),
            "out of order or listed twice",
        ),
        (
            "base is itself",
            Box::new(|m| {
                let id = m.bundle_id.clone();
                m.delta.as_mut().expect("delta").base_bundle_id = id;
            }),
            "was not accepted here",
        ),
        (
            "another manifest of the base",
            Box::new(|m| m.delta.as_mut().expect("delta").base_manifest_sha256 = "1".repeat(64)),
            "was not accepted here",
        ),
        ("no delta table", Box::new(|m| m.delta = None), ""),
    ];
    let before = snapshot(&inbox);
    for (i, (what, edit, expect)) in cases.into_iter().enumerate() {
        let dir = c.a.w.dir(format!("forged-{i}"));
        let m = forged(&w2, &dir, &key, |m| edit(m));
        let o = common::output(c.onto(&m, &inbox));
        let code = if what == "no delta table" { 2 } else { 1 };
        assert_eq!(
            o.status.code(),
            Some(code),
            "{what}: {}",
            common::describe("onto", &o)
        );
        let err = common::stderr_of(&o);
        assert!(err.contains(expect), "{what}: {err}");
        assert_eq!(snapshot(&inbox), before, "{what}: TREE changed");
        assert!(
            leftovers(&parent).is_empty(),
            "{what}: {:?}",
            leftovers(&parent)
        );
    }
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

// DEFECT (low): a delta refused at its last check (here a forged tree
// digest) has already hard-linked every kept file of TREE, which changes
// their change times: TREE's record no longer matches by stat, so an
// insider's bad delta makes the next one hash the whole tree again. The
// digest can be checked from the base's record, the deleted paths and the
// payload's entries before a link is made.
#[test]
fn a_refused_delta_leaves_the_base_files_as_recorded() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let dir = c.a.w.dir("forged");
    let m = forged(&w2, &dir, &c.a.clerk.secret, |m| {
        m.delta.as_mut().expect("delta").tree_sha256 = "0".repeat(64);
    });
    let big = inbox.join("case/big.bin");
    let ctime = |p: &Path| {
        let m = fs::metadata(p).expect("stat");
        (m.ctime(), m.ctime_nsec(), m.nlink())
    };
    let was = ctime(&big);
    std::thread::sleep(Duration::from_millis(20));
    fails(
        c.onto(&m, &inbox),
        1,
        &["not the one the signed manifest describes"],
    );
    assert_eq!(ctime(&big), was, "a kept file of TREE was touched");
}

/// A delta whose payload holds a file where the base keeps a folder with
/// files, or a folder where the base kept a file, without listing them as
/// deleted: the result is whatever the signed digest says, or refused.
#[test]
fn file_folder_swaps_without_deleting_are_refused_unless_signed() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    // The sender's real change: sub becomes a file.
    fs::remove_dir_all(c.tree.join("case/sub")).expect("rm");
    c.put("case/sub", "now a file\n");
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    // The insider drops case/sub/c.txt from the deleted list.
    let dir = c.a.w.dir("forged");
    let m = forged(&w2, &dir, &c.a.clerk.secret, |m| {
        let d = m.delta.as_mut().expect("delta");
        let paths: Vec<String> = Vec::new();
        d.deleted_count = 0;
        d.deleted_sha256 = pouch::format::delta::block_sha256(&paths);
        d.deleted = paths;
    });
    let before = snapshot(&inbox);
    fails(c.onto(&m, &inbox), 1, &[]);
    assert_eq!(snapshot(&inbox), before);
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

// ---------------------------------------------------------------------
// 2. Another trusted party; 3. an outsider with the medium.
// ---------------------------------------------------------------------

/// Another keyring party re-signs the real delta, channel unchanged: its
/// key cannot claim bka-zd's channel.
#[test]
fn another_party_cannot_sign_a_delta_on_the_sender_s_channel() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let evil = c.a.w.keys("evil");
    passes(
        args!(c.a.receiver(); "keyring", "add", "evil", "--sign-pub", &evil.public),
        &[],
    );
    let dir = c.a.w.dir("evil");
    let m = forged(&w2, &dir, &evil.secret, |_| {});
    let before = snapshot(&inbox);
    let o = common::output(c.onto(&m, &inbox));
    assert_eq!(o.status.code(), Some(1), "{}", common::describe("onto", &o));
    assert_eq!(snapshot(&inbox), before);
    assert!(leftovers(inbox.parent().expect("inbox")).is_empty());
}

/// Edits of the `[delta]` table without a key fail the signature check.
#[test]
fn edits_of_the_delta_table_without_a_key_fail_the_signature() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let text = fs::read_to_string(&w2).expect("read");
    assert!(text.contains("case/gone.txt"), "{text}");
    let before = snapshot(&inbox);
    for (i, (from, to)) in [
        ("case/gone.txt", "case/b.txt\u{0}"),
        ("deleted_count = 1", "deleted_count = 0"),
        ("tree_files = ", "tree_files = 1"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = c.a.w.dir(format!("edited-{i}"));
        let name = "w2";
        for f in ["w2.age", "w2.toml.minisig"] {
            fs::copy(w2.with_file_name(f), dir.join(f)).expect("copy");
        }
        fs::write(dir.join(format!("{name}.toml")), text.replacen(from, to, 1)).expect("write");
        let o = common::output(c.onto(&dir.join("w2.toml"), &inbox));
        assert_eq!(
            o.status.code(),
            Some(1),
            "{from}: {}",
            common::describe("onto", &o)
        );
        assert!(!o.stderr.contains(&0), "NUL printed");
        assert_eq!(snapshot(&inbox), before);
    }
}

// ---------------------------------------------------------------------
// 5. The sender's side.
// ---------------------------------------------------------------------

/// A recorded tree on the sender's side that belongs to another manifest
/// (the base's manifest edited on the stick) is refused, exit 2.
#[test]
fn an_edited_base_manifest_is_refused_by_the_sender_s_record() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let text = fs::read_to_string(&w1).expect("read");
    fs::write(
        &w1,
        text.replacen("created = ", "description = \"x\"\ncreated = ", 1),
    )
    .ok();
    let text2 = fs::read_to_string(&w1).expect("read");
    if Manifest::parse(text2.as_bytes(), &w1).is_err() {
        fs::write(&w1, text.replacen("\"bka-zd\"", "\"bka-zd\" ", 1)).expect("write");
    }
    c.put("case/a.txt", "changed\n");
    // Its signature (by the sender's own key) no longer holds: exit 1.
    fails(
        c.pack_cmd("w2", &["--delta-from", w1.to_str().expect("utf-8")]),
        1,
        &["signature"],
    );
}

// DEFECT (low): without a recorded tree, `pack --delta-from BASE.toml`
// takes the base's entry list from a manifest whose signature it never
// checks, nor whether its own ledger packed that bundle: a base edited on
// the stick, or one this ledger never made (which `audit --ledger` then
// calls a missing link), is built on.
#[test]
fn a_base_manifest_that_fails_its_signature_is_not_built_on() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let trees = c.a.w.home_dir("sender").join("ledger.jsonl.trees");
    fs::remove_dir_all(&trees).expect("rm the sender's records");
    let text = fs::read_to_string(&w1).expect("read");
    let edited = text.replacen("description = \"\"", "description = \"edited\"", 1);
    assert_ne!(edited, text, "{text}");
    fs::write(&w1, edited).expect("write");
    c.put("case/a.txt", "changed\n");
    let o = common::output(c.pack_cmd("w2", &["--delta-from", w1.to_str().expect("utf-8")]));
    assert!(
        !o.status.success(),
        "a delta was built on a manifest whose signature fails: {}",
        common::describe("pack", &o)
    );
}

// DEFECT (low): `unpack DELTA -d DEST` unpacks the changed files alone as if
// they were a full bundle, accepts the delta in the ledger and records
// DEST/NAME as the delta's result tree; the delta can then no longer go
// onto the real tree (a replay), and a later delta onto DEST/NAME fails at
// its last check, blaming the bundle. Refuse it (exit 2, "use --onto").
#[test]
fn a_delta_unpacked_as_a_full_bundle_is_refused() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let dest = c.a.w.dir("plain");
    let o = common::output(
        args!(c.a.receiver(); "unpack", &w2, "-i", &c.a.recipient.identity, "-d", &dest),
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        common::describe("unpack -d", &o)
    );
    passes(c.onto(&w2, &inbox), &[]);
}

// DEFECT (low): a damaged record of TREE says "remove it, and pass
// --rehash"; done so, `--onto` finds no record at all and refuses ("there
// is no record of what TREE holds"): the advice is a dead end. Either
// --rehash checks TREE against the base's signed entry list without a
// record, or the message sends the operator to a fresh unpack of the base.
#[test]
fn the_advice_for_a_damaged_record_of_the_tree_works() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    edit_state(&c, &inbox, |mut v| {
        if v["path"] == "case/b.txt" {
            v["size"] = 99.into();
        }
        v
    });
    fails(
        c.onto(&w2, &inbox),
        2,
        &["damaged", "unpack the base again into a fresh folder"],
    );
    // As the advice says.
    let fresh = c.a.w.dir("fresh");
    let w1 = c.a.d.join("stick/w1.toml");
    let again = args!(c.a.receiver(); "unpack", &w1, "-i", &c.a.recipient.identity, "-d", &fresh);
    passes(args!(again; "--allow-replay"), &[]);
    passes(c.onto(&w2, &fresh.join("w1")), &[]);
    assert_same_tree(&fresh.join("w1"), &c.tree);
}

// DEFECT: the full unpack of a base records its tree by stat-ing the files
// after they were moved into place (`record_unpacked` → `restamp`): a file
// changed in that window is recorded with the signed sha256 and its new
// stat data, so the next `--onto` takes it as the base's, unread, and the
// new tree keeps it. (`Onto::commit` restamps the same way after the
// exchange.) The stamps must be taken in the private staging folder,
// before the rename.
#[test]
fn a_file_changed_as_the_base_lands_is_not_recorded_as_the_base_s() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    c.put("case/a.txt", "alpha, revised\n");
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    let inbox = c.a.d.join("inbox/w1");
    let b = inbox.join("case/b.txt");
    let child = spawn_under_strace(&c.a.unpack(&w1), "renameat2", "delay_exit=1500000");
    let start = Instant::now();
    while !b.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "never landed");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mtime = fs::metadata(&b).expect("stat").modified().expect("mtime");
    fs::write(&b, "BRAVO\n").expect("write");
    fs::File::options()
        .write(true)
        .open(&b)
        .expect("open")
        .set_modified(mtime)
        .expect("touch");
    let o = child.wait_with_output().expect("waits");
    assert!(o.status.success(), "{}", common::describe("unpack", &o));
    let before = snapshot(&inbox);
    fails(c.onto(&w2, &inbox), 1, &["case/b.txt was changed"]);
    assert_eq!(snapshot(&inbox), before);
}

/// A sealed-names delta forged by an insider around the payload of
/// `members` with the inner manifest's `[[deleted]]` tail `tail` (or a
/// header claiming `claim` bytes for the inner manifest, its data left
/// out), the signed `deleted_sha256` and `deleted_count` made to match.
fn sealed_forgery(
    c: &Chain,
    real: &Path,
    dir: &Path,
    tail: &str,
    count: u64,
    claim: Option<u64>,
) -> PathBuf {
    use common::forge::{tar_body, Member};
    use pouch::format::manifest::{Entry, InnerManifest, INNER_MANIFEST_NAME};
    let sha = |b: &[u8]| pouch::payload::hashing::sha256_hex(b);
    let (a, new) = (b"alpha, revised\n".as_slice(), b"new\n".as_slice());
    let entries = vec![
        Entry::folder("case".into()),
        Entry::file("case/a.txt".into(), a.len() as u64, sha(a), false),
        Entry::file("case/new.txt".into(), new.len() as u64, sha(new), false),
        Entry::folder("case/sub".into()),
    ];
    let mut inner = InnerManifest::head();
    for e in &entries {
        pouch::format::entries::write(&mut inner, e);
    }
    inner.push_str(tail);
    let mut members = vec![
        Member::folder("case/"),
        Member::file("case/a.txt", a),
        Member::file("case/new.txt", new),
        Member::folder("case/sub/"),
    ];
    let mut body = match claim {
        None => {
            members.push(Member::file(INNER_MANIFEST_NAME, inner.as_bytes()));
            tar_body(&members)
        }
        Some(size) => {
            let mut b = tar_body(&members);
            let h = common::forge::header(INNER_MANIFEST_NAME.as_bytes(), b'0', size, 0o644, b"");
            b.extend_from_slice(&h);
            b
        }
    };
    body.extend_from_slice(&[0u8; 1024]);
    let compressed = zstd::encode_all(&body[..], 3).expect("zstd");
    let payload = common::forge::encrypt(&compressed, &c.a.recipient.recipient);
    forged(real, dir, &c.a.clerk.secret, |m| {
        m.payload.size = payload.len() as u64;
        m.payload.sha256 = sha(&payload);
        m.contents = common::forge::contents_of(&entries, true);
        let d = m.delta.as_mut().expect("delta");
        d.deleted_sha256 = sha(tail.as_bytes());
        d.deleted_count = count;
    });
    fs::write(dir.join("w2.age"), &payload).expect("payload");
    dir.join("w2.toml")
}

/// With sealed names the deleted paths are only in the payload, bound by
/// the signed `deleted_sha256`: a hostile tail (unsafe, out of order, not
/// as pouch writes it, too long, or lying about what is gone) is refused,
/// exit 1, TREE untouched, nothing left; the honest forgery goes on (so the
/// forging is right).
#[test]
fn a_sealed_delta_s_hostile_deleted_tail_is_refused() {
    let c = new_chain();
    let w1 = c.pack("w1", &["--seal-names"]);
    let inbox = c.unpack_base(&w1);
    c.put("case/a.txt", "alpha, revised\n");
    c.put("case/new.txt", "new\n");
    fs::remove_file(c.tree.join("case/gone.txt")).expect("rm");
    let w2 = c.pack(
        "w2",
        &["--seal-names", "--delta-from", w1.to_str().expect("utf-8")],
    );
    let parent = inbox.parent().expect("inbox").to_path_buf();
    let t = |p: &str| format!("\n[[deleted]]\npath = \"{p}\"\n");
    let before = snapshot(&inbox);
    let cases: Vec<(&str, String, u64, Option<u64>, &str)> = vec![
        ("unsafe", t("../../etc/passwd"), 1, None, "deleted path"),
        ("absolute", t("/etc/passwd"), 1, None, "deleted path"),
        (
            "out of order",
            t("case/z") + &t("case/gone.txt"),
            2,
            None,
            "out of order",
        ),
        (
            "not as pouch writes it",
            "\n[[deleted]]\npath = 'case/gone.txt'\n".into(),
            1,
            None,
            "not written as pouch writes it",
        ),
        (
            "another table",
            t("case/gone.txt") + "\n[[entries]]\npath = \"case/x\"\nkind = \"folder\"\n",
            1,
            None,
            "not a [[deleted]] table",
        ),
        (
            "a line too long",
            t(&"a/".repeat(20_000)),
            1,
            None,
            "too long",
        ),
        ("count", t("case/gone.txt"), 2, None, "signed delta counts"),
        (
            "nothing deleted",
            String::new(),
            0,
            None,
            "not the one the signed manifest describes",
        ),
        (
            "a huge inner manifest",
            t("case/gone.txt"),
            1,
            Some(64 << 20),
            "does not list the entries",
        ),
    ];
    for (i, (what, tail, count, claim, expect)) in cases.into_iter().enumerate() {
        let dir = c.a.w.dir(format!("sealed-{i}"));
        let m = sealed_forgery(&c, &w2, &dir, &tail, count, claim);
        let start = Instant::now();
        let o = common::output(c.onto(&m, &inbox));
        assert!(start.elapsed() < Duration::from_secs(30), "{what}: slow");
        assert_eq!(
            o.status.code(),
            Some(1),
            "{what}: {}",
            common::describe("onto", &o)
        );
        let err = common::stderr_of(&o);
        assert!(err.contains(expect), "{what}: {err}");
        assert!(!o.stderr.contains(&0x1b), "{what}");
        assert_eq!(snapshot(&inbox), before, "{what}: TREE changed");
        assert!(
            leftovers(&parent).is_empty(),
            "{what}: {:?}",
            leftovers(&parent)
        );
    }
    let dir = c.a.w.dir("sealed-honest");
    let m = sealed_forgery(&c, &w2, &dir, &t("case/gone.txt"), 1, None);
    passes(c.onto(&m, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status();
    assert!(st.expect("cp").success(), "cp -a {}", from.display());
}

// DEFECT: a kill -9 of the base's full unpack after its folder was moved
// into place but before its tree was recorded: the next run settles the
// intent as accepted (`intent::recover`) but records no tree, so every
// delta on that base is refused for good ("there is no record of what
// TREE holds"), and the advice, to unpack the base again, is a replay.
// Recovery should record the tree (from the accepted manifest's entries,
// hashing the files), or `--onto --rehash` should check TREE against them.
#[test]
fn a_kill_after_the_base_landed_does_not_strand_its_tree() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    c.put("case/a.txt", "alpha, revised\n");
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    let home = c.a.w.home_dir("receiver");
    let pristine = c.a.d.join("pristine-home");
    copy_dir(&home, &pristine);
    let mut landed = 0;
    for n in 1..=12 {
        copy_dir(&pristine, &home);
        let dest = c.a.w.dir(format!("run-{n}"));
        let unpack =
            args!(c.a.receiver(); "unpack", &w1, "-i", &c.a.recipient.identity, "-d", &dest);
        let mut strace = std::process::Command::new(common::require("strace", "strace"));
        strace
            .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync", "-e"])
            .arg(format!("inject=fsync:signal=SIGKILL:when={n}"))
            .arg(unpack.get_program())
            .args(unpack.get_args());
        for (k, v) in unpack.get_envs() {
            if let Some(v) = v {
                strace.env(k, v);
            }
        }
        let o = common::run(strace);
        let tree = dest.join("w1");
        if o.status.success() {
            break;
        }
        let recorded = fs::canonicalize(&tree)
            .map(|t| pouch::delta::state::unpacked_path(&c.ledger(), &t, false).exists())
            .unwrap_or(true);
        if !tree.is_dir() {
            continue;
        }
        // The record is written in the staging folder, before the move:
        // a tree in place always has one.
        assert!(
            recorded,
            "kill at fsync {n}: the tree landed without its record"
        );
        landed += 1;
        let o = common::output(c.onto(&w2, &tree));
        assert!(
            o.status.success(),
            "kill at fsync {n}: {}",
            common::describe("onto after the kill", &o)
        );
    }
    assert!(landed > 0, "no kill landed after the base moved into place");
}

/// An insider's delta whose outer manifest lists a million deleted paths
/// (some 18 MB, under the 48 MiB cap): refused in bounded time and memory
/// (today by the 1 MiB cap on a large manifest's head, with a wrong reason:
/// see `an_honest_delta_that_deletes_a_big_folder_can_be_applied`).
#[test]
fn a_huge_deleted_list_is_refused_in_bounded_time_and_memory() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let dir = c.a.w.dir("huge");
    let paths: Vec<String> = (0..1_000_000u32)
        .map(|i| format!("case/x/{i:07}"))
        .collect();
    let m = forged(&w2, &dir, &c.a.clerk.secret, |m| {
        let d = m.delta.as_mut().expect("delta");
        d.deleted_count = paths.len() as u64;
        d.deleted_sha256 = pouch::format::delta::block_sha256(&paths);
        d.deleted = paths.clone();
    });
    let onto = c.onto(&m, &inbox);
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("maxrss_kib=%M")
        .arg(onto.get_program())
        .args(onto.get_args());
    for (k, v) in onto.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let before = snapshot(&inbox);
    let start = Instant::now();
    let o = common::run(timed);
    let took = start.elapsed();
    let err = common::stderr_of(&o);
    assert_eq!(o.status.code(), Some(1), "{}", common::describe("onto", &o));
    let rss: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .expect("maxrss");
    eprintln!("huge deleted list: {took:?}, {rss} KiB");
    assert!(took < Duration::from_secs(120), "took {took:?}");
    assert!(rss < 1 << 20, "{rss} KiB");
    assert_eq!(snapshot(&inbox), before);
}

// DEFECT: an honest unsealed delta that deletes many paths cannot be
// opened. A signed manifest over 4 MiB is read by `listing::open`, which
// wants everything before the first `[[entries]]` line within 1 MiB; the
// `[delta]` table, with its `deleted` list, is in that head. Deleting (or
// renaming) a big folder makes a delta the recipient refuses as a "damaged,
// forged" manifest, "yet larger than 48 MiB" (it is not). Fix: let the
// head hold `delta.deleted` (bound it by MAX_MANIFEST_BYTES, not
// MAX_HEAD_BYTES), or put the deleted list after the entries / only in the
// inner manifest as with sealed names.
#[test]
fn an_honest_delta_that_deletes_a_big_folder_can_be_applied() {
    let c = new_chain();
    let deep = format!("case/deep/{}", format!("{}/", "d".repeat(250)).repeat(7));
    for i in 0..2200 {
        c.put(&format!("{deep}{i:05}{}", "f".repeat(240)), "x");
    }
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    fs::remove_dir_all(c.tree.join("case/deep")).expect("rm -r");
    // By bundle id: by manifest file, see the test below.
    let id = common::field(&fs::read_to_string(&w1).expect("read"), "bundle_id").expect("id");
    let w2 = c.pack("w2", &["--delta-from", &id]);
    // The long list of deleted paths stays in the inner manifest only.
    let t: toml::Table = toml::from_str(&fs::read_to_string(&w2).expect("read")).expect("TOML");
    let d = t["delta"].as_table().expect("[delta]").clone();
    assert_eq!(d["deleted_count"].as_integer(), Some(2200 + 8));
    assert!(d.get("deleted").is_none());
    assert!(fs::metadata(&w2).expect("stat").len() < 1 << 20);
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

// DEFECT: `pack --delta-from BASE.toml` reads the base's manifest with the
// parser for text no signature vouches for (`Manifest::parse`: 4 MiB, 40,000
// TOML items), so a base whose manifest is over 4 MiB (some 25,000 files)
// cannot be named by its manifest ("larger than 4 MiB"), which is what the README
// shows, and what a sender without a recorded tree must do. Fix
// (`delta::base::Base::resolve`): verify the base manifest's signature with
// the sender's own key and read it as `bundle::open` does (large manifests
// from a private copy), or read only its head when a record exists.
#[test]
fn a_big_base_can_be_named_by_its_manifest() {
    let c = new_chain();
    let deep = format!("case/deep/{}", format!("{}/", "d".repeat(250)).repeat(7));
    for i in 0..2200 {
        c.put(&format!("{deep}{i:05}{}", "f".repeat(240)), "x");
    }
    let w1 = c.pack("w1", &[]);
    assert!(fs::metadata(&w1).expect("stat").len() > 4 << 20);
    c.put("case/a.txt", "alpha, revised\n");
    passes(
        c.pack_cmd("w2", &["--delta-from", w1.to_str().expect("utf-8")]),
        &[],
    );
}

/// kill -9 at every fsync of `--onto` (the pending record, the ledger's
/// intent, the folder after the exchange, the current record, the
/// settlement), which tests/delta.rs does not kill at: TREE is the old tree
/// or the new, the next run settles it, and nothing is left beside it.
#[test]
fn a_kill_at_any_fsync_of_onto_leaves_the_old_tree_or_the_new() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let old = snapshot(&c.tree);
    c.put("case/a.txt", "alpha, revised\n");
    fs::remove_file(c.tree.join("case/gone.txt")).expect("rm");
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    let new = snapshot(&c.tree);
    let home = c.a.w.home_dir("receiver");
    let pristine = c.a.d.join("pristine-home");
    copy_dir(&home, &pristine);
    let (mut kills, mut saw_new) = (0, false);
    for n in 1..=30 {
        copy_dir(&pristine, &home);
        let dest = c.a.w.dir(format!("run-{n}"));
        passes(
            args!(c.a.receiver(); "unpack", &w1, "-i", &c.a.recipient.identity, "-d", &dest),
            &[],
        );
        let tree = dest.join("w1");
        let onto = c.onto(&w2, &tree);
        let mut strace = std::process::Command::new(common::require("strace", "strace"));
        strace
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=fsync,fdatasync",
                "-e",
            ])
            .arg(format!("inject=fsync,fdatasync:signal=SIGKILL:when={n}"))
            .arg(onto.get_program())
            .args(onto.get_args());
        for (k, v) in onto.get_envs() {
            if let Some(v) = v {
                strace.env(k, v);
            }
        }
        let o = common::run(strace);
        if o.status.success() {
            assert_eq!(snapshot(&tree), new, "fsync {n}: ran through");
            break;
        }
        kills += 1;
        let now = snapshot(&tree);
        let was_new = now == new;
        assert!(was_new || now == old, "fsync {n}: neither tree");
        saw_new |= was_new;
        let again = common::output(c.onto(&w2, &tree));
        assert_eq!(
            again.status.success(),
            !was_new,
            "fsync {n}: {}",
            common::describe("again", &again)
        );
        assert_eq!(snapshot(&tree), new, "fsync {n}: after the second run");
        assert_eq!(common::names(&dest), ["w1"], "fsync {n}: left behind");
        // And a delta on the new tree still goes on: its record is right.
        let records = fs::read_dir(home.join("ledger.jsonl.trees"))
            .expect("trees")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".pending"))
            .count();
        assert_eq!(records, 0, "fsync {n}: a pending record is left");
    }
    assert!(kills >= 3 && saw_new, "kills {kills}, new {saw_new}");
}

// (Same root as the recipient's forged stamp): the sender's record
// of the base's tree (LEDGER.trees/packed-ID.jsonl) is trusted for its stat
// data and bound to nothing: a record whose stamp was set to a changed
// file's makes the delta leave the change out, and the recipient's "exact"
// tree silently differs from the sender's. At least the record's digest
// must match the base manifest's signed tree (entries_sha256, or
// delta.tree_sha256), and the record be bound to the ledger (its sha256 in
// the `packed` record) so that an edit is seen.
#[test]
fn a_sender_s_record_that_lies_does_not_hide_a_change() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    let id = common::field(&fs::read_to_string(&w1).expect("read"), "bundle_id").expect("id");
    let record =
        c.a.w
            .home_dir("sender")
            .join(format!("ledger.jsonl.trees/packed-{id}.jsonl"));
    let b = c.tree.join("case/b.txt");
    fs::write(&b, "BRAVO\n").expect("write");
    let m = fs::metadata(&b).expect("stat");
    let text = fs::read_to_string(&record).expect("record");
    let mut out = String::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
        if v["path"] == "case/b.txt" {
            v["stamp"] = serde_json::json!({
                "mtime_ns": m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                "ctime_ns": m.ctime() * 1_000_000_000 + m.ctime_nsec(),
                "ino": m.ino(),
            });
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    fs::write(&record, out).expect("write record");
    // As for the recipient, the record is as trusted as the keyring beside
    // it; --rehash reads every file and so sends the change.
    let w2 = c.pack(
        "w2",
        &["--delta-from", w1.to_str().expect("utf-8"), "--rehash"],
    );
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

/// Two `--onto` of the same delta onto the same TREE at once (the first
/// held back at its first hard link): one goes on, the other is refused,
/// and the tree is the new one with nothing left beside it.
#[test]
fn two_onto_at_once_apply_the_delta_once() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let parent = inbox.parent().expect("inbox").to_path_buf();
    let mut second = None;
    let first = racing(&c.onto(&w2, &inbox), &parent, || {
        second = Some(common::output(c.onto(&w2, &inbox)));
    });
    let second = second.expect("ran");
    let ok = [first.status.success(), second.status.success()];
    assert_eq!(
        ok.iter().filter(|s| **s).count(),
        1,
        "{}\n{}",
        common::describe("first", &first),
        common::describe("second", &second)
    );
    assert_same_tree(&inbox, &c.tree);
    assert!(leftovers(&parent).is_empty(), "{:?}", leftovers(&parent));
    let accepted = fs::read_to_string(c.ledger())
        .expect("ledger")
        .lines()
        .filter(|l| l.contains("\"accepted\"") && l.contains("w2"))
        .count();
    assert_eq!(accepted, 1, "the delta is accepted {accepted} times");
}

/// A filesystem that cannot exchange two folders (renameat2 fails): the
/// unpack is refused at that step, TREE is the old tree, nothing is left
/// beside it, and the delta goes on once the filesystem can.
#[test]
fn without_rename_exchange_the_tree_is_left_as_it_was() {
    let c = new_chain();
    let (_, inbox, w2) = c.base_and_delta();
    let parent = inbox.parent().expect("inbox").to_path_buf();
    let before = snapshot(&inbox);
    let child = spawn_under_strace(&c.onto(&w2, &inbox), "renameat2", "error=EINVAL");
    let o = child.wait_with_output().expect("waits");
    assert!(!o.status.success(), "{}", common::describe("onto", &o));
    assert_eq!(o.status.code(), Some(2), "{}", common::describe("onto", &o));
    assert!(
        common::stderr_of(&o).contains("cannot swap two folders in one step"),
        "{}",
        common::stderr_of(&o)
    );
    assert_eq!(snapshot(&inbox), before);
    assert!(leftovers(&parent).is_empty(), "{:?}", leftovers(&parent));
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}
