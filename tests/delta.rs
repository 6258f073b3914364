//! Delta bundles between two agencies: `pack --delta-from` / `--delta`,
//! `unpack --onto`, and what is refused: a wrong or modified tree, a base
//! never accepted, a replayed or out-of-order delta. Kills during `--onto`
//! are in `delta_kills.rs`.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::agencies::CHANNEL;
use common::chain::{spawn_under_strace, under_strace, Chain};
use common::{assert_same_tree, fails, passes, snapshot};

/// The first tree of every test here.
fn new_chain() -> Chain {
    Chain::with(&[
        ("case/a.txt", "alpha\n"),
        ("case/b.txt", "bravo\n"),
        ("case/sub/c.txt", "charlie\n"),
        ("case/gone.txt", "to be deleted\n"),
        ("case/old-name.txt", "to be renamed\n"),
        ("case/f2d", "a file that becomes a folder\n"),
        ("case/d2f/inner.txt", "in a folder that becomes a file\n"),
        ("case/run.sh", "echo hi\n"),
    ])
}

/// The manifest at `path`, parsed.
fn manifest(path: &Path) -> toml::Table {
    toml::from_str(&fs::read_to_string(path).expect("read")).expect("TOML")
}

fn delta_of(path: &Path) -> toml::Table {
    manifest(path)["delta"].as_table().expect("[delta]").clone()
}

fn entry_paths(path: &Path) -> Vec<String> {
    let m = manifest(path);
    let list = m
        .get("entries")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter(|e| e["kind"].as_str() == Some("file"))
        .map(|e| e["path"].as_str().expect("path").to_string())
        .collect()
}

/// The changes of the first delta: every kind the issue names.
fn change_everything(c: &Chain) {
    let t = &c.tree;
    c.put("case/a.txt", "alpha, revised\n");
    c.put("case/new.txt", "new\n");
    fs::remove_file(t.join("case/gone.txt")).expect("delete");
    fs::rename(t.join("case/old-name.txt"), t.join("case/new-name.txt")).expect("rename");
    fs::remove_file(t.join("case/f2d")).expect("rm");
    c.put("case/f2d/x.txt", "now in a folder\n");
    fs::remove_dir_all(t.join("case/d2f")).expect("rm -r");
    c.put("case/d2f", "now a file\n");
    fs::set_permissions(t.join("case/run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::create_dir(t.join("case/empty")).expect("mkdir");
}

#[test]
fn a_chain_of_deltas_rebuilds_the_sender_s_tree_exactly() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    assert_same_tree(&inbox, &c.tree);

    change_everything(&c);
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    let d = delta_of(&w2);
    let w1_id = manifest(&w1)["bundle_id"].as_str().expect("id").to_string();
    assert_eq!(d["base_bundle_id"].as_str(), Some(w1_id.as_str()));
    // Only what changed travels: the payload's files are the new, changed,
    // renamed and re-moded ones.
    let mut carried = entry_paths(&w2);
    carried.sort();
    assert_eq!(
        carried,
        [
            "case/a.txt",
            "case/d2f",
            "case/f2d/x.txt",
            "case/new-name.txt",
            "case/new.txt",
            "case/run.sh"
        ]
    );
    let deleted: Vec<&str> = d["deleted"]
        .as_array()
        .expect("deleted")
        .iter()
        .map(|v| v.as_str().expect("str"))
        .collect();
    assert_eq!(
        deleted,
        ["case/d2f/inner.txt", "case/gone.txt", "case/old-name.txt"]
    );
    assert_eq!(d["tree_files"].as_integer(), Some(9));
    let shown = [
        "on bundle",
        "the tree 9 files",
        "3 paths of the base deleted:",
        "  deleted     case/gone.txt",
    ];
    passes(args!(c.a.receiver(); "inspect", &w2), &shown);

    // With a receipt back, --delta builds on it by itself.
    let receipts = c.a.w.dir("receipts");
    let key = &c.a.recipient.secret;
    passes(
        args!(c.onto(&w2, &inbox); "--receipt-out", &receipts, "-s", key),
        &[],
    );
    assert_same_tree(&inbox, &c.tree);
    passes(c.a.import(&receipts.join("w2.receipt.toml")), &[]);

    fs::remove_file(c.tree.join("case/big.bin")).expect("rm");
    c.put("case/b.txt", "bravo, revised\n");
    let w3 = c.pack("w3", &["--delta"]);
    let w2_id = manifest(&w2)["bundle_id"].as_str().expect("id").to_string();
    assert_eq!(
        delta_of(&w3)["base_bundle_id"].as_str(),
        Some(w2_id.as_str())
    );
    assert_eq!(entry_paths(&w3), ["case/b.txt"]);
    // The sender keeps the trees a delta can still build on: the newest
    // receipted bundle's (w2) and later ones, not w1's.
    let trees = c.a.w.home_dir("sender").join("ledger.jsonl.trees");
    let kept = common::names(&trees);
    assert!(!kept.iter().any(|n| n.contains(&w1_id)), "{kept:?}");
    assert!(kept.iter().any(|n| n.contains(&w2_id)), "{kept:?}");
    passes(c.onto(&w3, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);

    // Nothing changed, but every file touched (a tree restored from a
    // backup): without --rehash all would travel again; with it, none.
    for item in walkdir::WalkDir::new(&c.tree) {
        let p = item.expect("walk").into_path();
        if p.is_file() {
            let f = fs::File::options().write(true).open(&p).expect("open");
            f.set_modified(std::time::SystemTime::now()).expect("touch");
        }
    }
    let w4 = c.pack(
        "w4",
        &["--delta-from", w3.to_str().expect("utf-8"), "--rehash"],
    );
    assert!(entry_paths(&w4).is_empty());
    passes(c.onto(&w4, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
    let leftovers: Vec<_> = fs::read_dir(inbox.parent().expect("inbox"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pouch"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");

    // The chain, as the ledgers and audit show it.
    passes(
        args!(c.a.receiver(); "ledger", "show"),
        &[&format!("delta on {w1_id}")],
    );
    let stick = c.a.d.join("stick");
    let trust = ["--trust", c.a.clerk.public.to_str().expect("utf-8")];
    passes(
        args!(c.a.receiver(); "audit", &stick).args(trust),
        &[&format!("delta on {w1_id} (bundle w1)")],
    );
    // This week's delta alone: its base is on an earlier stick.
    let lone = c.a.w.dir("lone");
    for f in ["w3.toml", "w3.toml.minisig", "w3.age"] {
        fs::copy(stick.join(f), lone.join(f)).expect("copy");
    }
    passes(
        args!(c.a.receiver(); "audit", &lone).args(trust),
        &["a missing link in its chain"],
    );
    let ledger = c.a.w.home_dir("sender").join("ledger.jsonl");
    passes(
        args!(c.a.receiver(); "audit", &lone, "--ledger", &ledger).args(trust),
        &[&format!("delta on {w2_id} (ledger)")],
    );
}

#[test]
fn a_delta_onto_a_modified_tree_is_refused_and_the_tree_left_alone() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    change_everything(&c);
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    for (how, expect) in [
        ("changed", "case/b.txt was changed"),
        ("extra", "case/extra.txt is not in the base"),
        ("missing", "case/sub/c.txt is missing"),
        ("kind", "case/sub is a file now"),
    ] {
        let before = snapshot(&inbox);
        let restore: Box<dyn Fn()> = match how {
            "changed" => {
                // Same size, and the old modification time put back: only
                // the change time and the content tell.
                let p = inbox.join("case/b.txt");
                let mtime = fs::metadata(&p).expect("stat").modified().expect("mtime");
                fs::write(&p, "BRAVO\n").expect("write");
                let f = fs::File::options().write(true).open(&p).expect("open");
                f.set_modified(mtime).expect("touch");
                Box::new(|| fs::write(inbox.join("case/b.txt"), "bravo\n").expect("write"))
            }
            "extra" => {
                fs::write(inbox.join("case/extra.txt"), "x").expect("write");
                Box::new(|| fs::remove_file(inbox.join("case/extra.txt")).expect("rm"))
            }
            "missing" => {
                fs::remove_file(inbox.join("case/sub/c.txt")).expect("rm");
                Box::new(|| fs::write(inbox.join("case/sub/c.txt"), "charlie\n").expect("write"))
            }
            _ => {
                fs::remove_dir_all(inbox.join("case/sub")).expect("rm");
                fs::write(inbox.join("case/sub"), "x").expect("write");
                Box::new(|| {
                    fs::remove_file(inbox.join("case/sub")).expect("rm");
                    fs::create_dir(inbox.join("case/sub")).expect("mkdir");
                    fs::write(inbox.join("case/sub/c.txt"), "charlie\n").expect("write");
                })
            }
        };
        let changed = snapshot(&inbox);
        assert_ne!(before, changed);
        fails(c.onto(&w2, &inbox), 1, &[expect, "nothing was changed"]);
        assert_eq!(
            snapshot(&inbox),
            changed,
            "{how}: the tree must be left as it was"
        );
        restore();
    }
    // Restored, the tree is the base's again (the changed file is hashed
    // again, its stat data being new) and the delta goes on.
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

#[test]
fn replayed_out_of_order_and_unaccepted_bases_are_refused() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    c.put("case/a.txt", "second\n");
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    c.put("case/a.txt", "third\n");
    let w3 = c.pack("w3", &["--delta-from", w2.to_str().expect("utf-8")]);

    // The receiver never accepted w1: a delta on it is refused.
    let elsewhere = c.a.w.dir("elsewhere/w1");
    fails(c.onto(&w2, &elsewhere), 1, &["was not accepted here"]);

    let inbox = c.unpack_base(&w1);
    // A second copy of w1's tree, elsewhere (unpacked again on purpose).
    let copy_dest = c.a.w.dir("copy");
    let again =
        args!(c.a.receiver(); "unpack", &w1, "-i", &c.a.recipient.identity, "-d", &copy_dest);
    passes(args!(again; "--allow-replay"), &[]);
    let copy = copy_dest.join("w1");
    // w3 builds on w2, which this ledger has not accepted yet.
    fails(c.onto(&w3, &inbox), 1, &["was not accepted here"]);
    passes(c.onto(&w2, &inbox), &[]);
    let second = snapshot(&inbox);
    // Again: the ledger knows it (a replay), and the tree holds it.
    fails(c.onto(&w2, &inbox), 1, &[]);
    fails(
        args!(c.onto(&w2, &inbox); "--allow-replay"),
        1,
        &["holds this delta's result already"],
    );
    assert_eq!(snapshot(&inbox), second);
    // w2 is accepted now, but the copy still holds w1's tree, not w2's.
    let base = snapshot(&copy);
    fails(
        c.onto(&w3, &copy),
        1,
        &["holds the result of bundle", "not of this delta's base"],
    );
    assert_eq!(snapshot(&copy), base);
    passes(c.onto(&w3, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

#[test]
fn a_full_bundle_is_not_a_delta_and_a_delta_needs_its_channel() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    fails(c.onto(&w1, &inbox), 2, &["is a full bundle"]);
    // A base of another channel is not a base.
    let a = &c.a;
    let mut other = a.pack_cmd(&c.tree.join("case"), &a.clerk.secret, &["--name", "x"]);
    other.args([
        "--from",
        "bka-zd",
        "--to",
        "someone-else",
        "-r",
        &a.recipient.recipient,
    ]);
    other.args(["--delta-from", w1.to_str().expect("utf-8")]);
    fails(other, 2, &["is not a bundle of the channel"]);
    // --delta without a receipt back.
    fails(
        c.pack_cmd("w2", &["--delta"]),
        2,
        &["has a receipt in the ledger yet"],
    );
}

#[test]
fn sealed_names_keep_the_deleted_paths_inside_the_payload() {
    let c = new_chain();
    let w1 = c.pack("w1", &["--seal-names"]);
    let inbox = c.unpack_base(&w1);
    change_everything(&c);
    let w2 = c.pack(
        "w2",
        &["--seal-names", "--delta-from", w1.to_str().expect("utf-8")],
    );
    let text = fs::read_to_string(&w2).expect("read");
    for name in ["gone.txt", "old-name.txt", "inner.txt", "new.txt"] {
        assert!(
            !text.contains(name),
            "{name} shows in the sealed manifest:\n{text}"
        );
    }
    assert_eq!(delta_of(&w2)["deleted_count"].as_integer(), Some(3));
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

#[test]
fn stock_tools_apply_a_delta_by_hand_as_the_readme_shows() {
    let age = common::require("age", "age");
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let by_hand = c.a.w.dir("by-hand");
    let base = c.unpack_base(&w1);
    change_everything(&c);
    c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    // The README's commands: a copy of the base; the deleted paths removed;
    // the delta's tar over it.
    let copy = by_hand.join("w2");
    let script = format!(
        r#"set -e
cp -a {base} {copy}
{age} -d -i {id} {payload} | zstd -dc | tar -xOf - .pouch-manifest.toml |
  python3 -c 'import sys,tomllib; print("\n".join(d["path"] for d in tomllib.load(sys.stdin.buffer).get("deleted", [])))' |
  while IFS= read -r p; do rm -rf -- "{copy}/$p"; done
{age} -d -i {id} {payload} | zstd -dc | tar -xf - -C {copy} --exclude=.pouch-manifest.toml"#,
        base = base.display(),
        age = age.display(),
        id = c.a.recipient.identity.display(),
        payload = c.a.d.join("stick/w2.age").display(),
        copy = copy.display()
    );
    let out = common::run({
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", &script]);
        sh
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&copy, &c.tree);
}

/// `cmd` under strace, killed (SIGKILL) at the `n`th call of `syscall`.
fn killed_at(cmd: &Command, syscall: &str, n: usize) -> std::process::Command {
    under_strace(cmd, syscall, &format!("signal=SIGKILL:when={n}"))
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

#[test]
fn a_kill_during_onto_leaves_the_old_tree_or_the_new_and_nothing_else() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let old = snapshot(&c.tree);
    change_everything(&c);
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    let new = snapshot(&c.tree);
    // Each run starts from the receiver's home before anything was
    // unpacked, and unpacks the base into a folder of its own.
    let home = c.a.w.home_dir("receiver");
    let pristine = c.a.d.join("pristine-home");
    copy_dir(&home, &pristine);
    let (mut kills, mut saw_old, mut saw_new) = (0, false, false);
    for syscall in [
        "linkat",
        "renameat2",
        "rename",
        "syncfs",
        "unlinkat",
        "rmdir",
    ] {
        for n in 1..=40 {
            copy_dir(&pristine, &home);
            let dest = c.a.w.dir(format!("run-{syscall}-{n}"));
            passes(
                args!(c.a.receiver(); "unpack", &w1, "-i", &c.a.recipient.identity, "-d", &dest),
                &[],
            );
            let tree = dest.join("w1");
            let o = common::run(killed_at(&c.onto(&w2, &tree), syscall, n));
            if o.status.success() {
                assert_eq!(snapshot(&tree), new, "{syscall} {n}: ran through");
                break;
            }
            assert!(
                matches!(o.status.code(), None | Some(137)),
                "{syscall} {n}: failed without being killed: {}",
                common::describe("unpack --onto", &o)
            );
            kills += 1;
            let now = snapshot(&tree);
            let was_new = now == new;
            assert!(
                was_new || now == old,
                "{syscall} {n}: the tree is neither the old nor the new one"
            );
            saw_old |= !was_new;
            saw_new |= was_new;
            // The next run settles what the kill left: the delta goes on
            // (old tree), or is known as accepted (new tree); either way the
            // other tree and every staging folder are gone.
            let again = common::output(c.onto(&w2, &tree));
            assert_eq!(
                again.status.success(),
                !was_new,
                "{syscall} {n}: {}",
                common::describe("again", &again)
            );
            assert_eq!(snapshot(&tree), new, "{syscall} {n}: after the second run");
            assert_eq!(
                common::names(&dest),
                ["w1"],
                "{syscall} {n}: left in {}",
                dest.display()
            );
        }
    }
    eprintln!("{kills} kills during --onto");
    assert!(
        saw_old && saw_new && kills >= 10,
        "kills {kills}, old {saw_old}, new {saw_new}"
    );
}

#[test]
fn where_no_hard_link_can_be_made_the_kept_files_are_copied_and_checked() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    change_everything(&c);
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    let o = common::run(under_strace(&c.onto(&w2, &inbox), "linkat", "error=EXDEV"));
    assert!(
        o.status.success(),
        "{}",
        common::describe("--onto without links", &o)
    );
    assert_same_tree(&inbox, &c.tree);
    // Copies, not links: no file of the new tree has a second name.
    for item in walkdir::WalkDir::new(&inbox) {
        let item = item.expect("walk");
        if item.file_type().is_file() {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(
                item.metadata().expect("stat").nlink(),
                1,
                "{}",
                item.path().display()
            );
        }
    }
}

/// `manifest`'s bundle as `party` would have sent it: the text changed by
/// `edit`, signed with `key`, with its payload, in folder `dir`.
fn resigned(manifest: &Path, dir: &Path, key: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let key = common::forge::key(key);
    let text = fs::read_to_string(manifest).expect("read");
    let signer =
        pouch::format::manifest::Manifest::parse(text.as_bytes(), manifest).expect("parses");
    let text = edit(text.replace(&signer.signer.key_id, &key.key_id));
    let m = pouch::format::manifest::Manifest::parse(text.as_bytes(), manifest).expect("parses");
    let from = manifest.parent().expect("folder");
    fs::copy(from.join(&m.payload.file), dir.join(&m.payload.file)).expect("payload");
    common::forge::signed_manifest(dir, &m.name, text.as_bytes(), &m.bundle_id, &key)
}

#[test]
fn only_the_base_s_own_sender_party_may_send_a_delta_onto_its_tree() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    change_everything(&c);
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    let before = snapshot(&inbox);
    // Another party the recipient trusts, on its own channel, with a delta
    // naming bka-zd's bundle as its base.
    let evil = c.a.w.keys("evil");
    passes(
        args!(c.a.receiver(); "keyring", "add", "evil", "--sign-pub", &evil.public),
        &[],
    );
    let dir = c.a.w.dir("evil");
    let forged = resigned(&w2, &dir, &evil.secret, |t| {
        t.replace("sender = \"bka-zd\"", "sender = \"evil\"")
    });
    fails(
        c.onto(&forged, &inbox),
        1,
        &["on another channel or from another party"],
    );
    assert_eq!(snapshot(&inbox), before);
    // A key no keyring party holds, trusted for this one command only.
    let stranger = c.a.w.keys("stranger");
    let dir = c.a.w.dir("stranger");
    let forged = resigned(&w2, &dir, &stranger.secret, |t| {
        t.replace("sender = \"bka-zd\"", "sender = \"stranger\"")
    });
    fails(
        args!(c.onto(&forged, &inbox); "--trust", &stranger.public),
        1,
        &["no keyring party vouches for its channel"],
    );
    assert_eq!(snapshot(&inbox), before);
    // The real one goes on.
    passes(c.onto(&w2, &inbox), &[]);
    assert_same_tree(&inbox, &c.tree);
}

#[test]
fn a_kept_file_replaced_while_the_delta_is_applied_stops_it() {
    let c = new_chain();
    let w1 = c.pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    change_everything(&c);
    let w2 = c.pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    // pouch waits 1.5 s in its first link (case/b.txt); meanwhile, after
    // TREE was checked, a local process swaps case/sub/c.txt, linked later,
    // for another file.
    let child = spawn_under_strace(&c.onto(&w2, &inbox), "linkat", "delay_enter=1500000:when=1");
    // The payload is in the staging folder: TREE was checked already.
    let parent = inbox.parent().expect("inbox").to_path_buf();
    let extracted = || {
        fs::read_dir(&parent).expect("ls").any(|e| {
            let p = e.expect("entry").path();
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".pouch-staging-w2"))
                && p.join("case/new.txt").exists()
        })
    };
    let start = std::time::Instant::now();
    while !extracted() {
        assert!(
            start.elapsed().as_secs() < 30,
            "the payload never reached the staging folder"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let swap = inbox.join("case/sub/c.swap");
    fs::write(&swap, "CHARLIE\n").expect("write");
    fs::rename(&swap, inbox.join("case/sub/c.txt")).expect("swap");
    let o = child.wait_with_output().expect("waits");
    common::exited(
        &o,
        1,
        &["case/sub/c.txt changed while the delta was being applied"],
    );
    assert_eq!(
        fs::read(inbox.join("case/sub/c.txt")).expect("read"),
        b"CHARLIE\n"
    );
    assert!(
        inbox.join("case/gone.txt").exists(),
        "the old tree is still in place"
    );
}

#[test]
fn sources_given_out_of_order_still_make_an_exact_delta() {
    let c = new_chain();
    c.put("zeta/z.txt", "zeta\n");
    c.put("alpha/a.txt", "alpha\n");
    c.put("alpha/gone.txt", "gone\n");
    let a = &c.a;
    let pack = |name: &str, extra: &[&str]| {
        let (zeta, alpha) = (c.tree.join("zeta"), c.tree.join("alpha"));
        let mut p = args!(a.sender(); "pack", &zeta, &alpha, "-o", a.d.join("stick"), "-s", &a.clerk.secret, "--name", name);
        p.args(CHANNEL).args(extra);
        passes(p, &[]);
        c.manifest(name)
    };
    let w1 = pack("w1", &[]);
    let inbox = c.unpack_base(&w1);
    c.put("zeta/z.txt", "zeta, revised\n");
    c.put("alpha/new.txt", "new\n");
    fs::remove_file(c.tree.join("alpha/gone.txt")).expect("rm");
    let w2 = pack("w2", &["--delta-from", w1.to_str().expect("utf-8")]);
    let mut carried = entry_paths(&w2);
    carried.sort();
    assert_eq!(carried, ["alpha/new.txt", "zeta/z.txt"]);
    passes(c.onto(&w2, &inbox), &[]);
    fs::remove_dir_all(c.tree.join("case")).expect("rm");
    assert_same_tree(&inbox, &c.tree);
}
