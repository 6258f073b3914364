//! Faults from the outside world, driven through the binary: a full disk while
//! packing and unpacking, a read-only destination, `kill -9` at many points of
//! a pack and of an unpack, and a source file that shrinks while it is read;
//! in `faults/records.rs`, the custody records under the same faults (kills
//! at exact system calls with strace, a full disk under the ledger, races,
//! interruptions during a flush).
//!
//! Small filesystems are tmpfs mounts (these tests run as root, locally and in
//! CI). A mount that fails fails the test; every mount is undone by a guard,
//! also when the test fails.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_same_tree, noise, run, snapshot, Keys, World};

const MIB: usize = 1 << 20;

/// A tmpfs mounted on a folder; unmounted (lazily) when dropped.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    /// Mounts a tmpfs with mount options `opts` on `dir`, which must exist.
    /// Fails the test, saying why, if that is not possible.
    fn tmpfs(dir: &Path, opts: &str) -> Mount {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run mount(8) to mount a tmpfs on {}: {e}; these tests need root and mount(8)", dir.display())
            });
        assert!(
            out.status.success(),
            "mounting a tmpfs (-o {opts}) on {} failed ({}): {}\nthese fault tests need root (or CAP_SYS_ADMIN) to mount small filesystems",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Mount {
            dir: dir.to_path_buf(),
        }
    }

    /// Remounts with `opts` (e.g. `ro`).
    fn remount(&self, opts: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.dir)
            .output()
            .expect("runs mount(8)");
        assert!(
            out.status.success(),
            "remounting {} with {opts} failed: {}",
            self.dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Output of a finished command, for messages.
fn describe(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that `o` succeeded; `what` names it in the message.
#[track_caller]
fn assert_ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", describe(o));
}

/// Asserts that `o` exited with `code`; `what` names it in the message.
#[track_caller]
fn assert_code(o: &Output, code: i32, what: &str) {
    assert_eq!(o.status.code(), Some(code), "{what}: {}", describe(o));
}

/// Asserts that `o` failed with exit code 2, naming `place` and saying why
/// (`reason`); `what` names it in the message.
#[track_caller]
fn assert_refused(o: &Output, reason: &str, place: &Path, what: &str) {
    let err = stderr(o);
    assert_code(o, 2, what);
    assert!(
        err.contains(reason) && err.contains(&place.display().to_string()),
        "{what}: the error names the folder and says why: {err}"
    );
}

/// The pouch binary as a plain process (these tests spawn and kill it), with
/// stdin closed and the test's own pouch home.
fn pouch_process() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pouch"));
    c.env_remove("SOURCE_DATE_EPOCH")
        .env("POUCH_HOME", common::test_home())
        .stdin(Stdio::null());
    c
}

/// `pouch pack` of `sources` into `out` as bundle `name`, at level 1.
/// These tests fill disks while pouch writes: the check of the free space
/// before any work (tests/daily.rs) is skipped.
fn pack_cmd(sources: &[&Path], out: &Path, name: &str, keys: &Keys) -> Command {
    let mut c = pouch_process();
    c.arg("pack")
        .args(sources)
        .arg("-o")
        .arg(out)
        .arg("--no-space-check");
    c.args(["--name", name, "--level", "1", "-r", &keys.recipient]);
    c.arg("-s").arg(&keys.secret);
    c
}

/// `pouch unpack MANIFEST -d DEST`, trusting and decrypting with `keys`.
/// These tests unpack the same bundle again and again on purpose: with
/// `--allow-replay`; and they fill disks while pouch writes, past the check
/// of the free space before any work.
fn unpack_cmd(manifest: &Path, dest: &Path, keys: &Keys) -> Command {
    let (id, trust) = (&keys.identity, &keys.public);
    let c = args!(pouch_process(); "unpack", manifest, "-i", id, "--trust", trust, "-d", dest);
    args!(c; "--allow-replay", "--no-space-check")
}

/// `pouch verify MANIFEST --trust PUB -i IDENTITY`, with `keys`.
fn verify_ok(manifest: &Path, keys: &Keys) -> Output {
    let (trust, id) = (&keys.public, &keys.identity);
    run(args!(pouch_process(); "verify", manifest, "--trust", trust, "-i", id))
}

/// The names in a folder.
fn names(dir: &Path) -> BTreeSet<String> {
    common::names(dir).into_iter().collect()
}

/// The three files of bundle `name`.
fn finals(name: &str) -> [String; 3] {
    [
        format!("{name}.age"),
        format!("{name}.toml"),
        format!("{name}.toml.minisig"),
    ]
}

/// A file of `len` incompressible bytes.
fn noise_file(path: &Path, len: usize, seed: u64) {
    fs::write(path, noise(len, seed)).expect("write noise");
}

/// A folder `tree` under `parent` with `count` files of `size` noise bytes
/// (and one subfolder); returns it.
fn noise_tree(parent: &Path, count: usize, size: usize) -> PathBuf {
    let tree = parent.join("tree");
    fs::create_dir_all(tree.join("sub")).expect("mkdir");
    for i in 0..count {
        let at = if i % 2 == 0 {
            tree.clone()
        } else {
            tree.join("sub")
        };
        noise_file(&at.join(format!("f{i:02}.bin")), size, 100 + i as u64);
    }
    tree
}

/// A world with the clerk's keys, a [`noise_tree`] under its `src/` and
/// bundle `b` of that (level 1) in `bundles/`.
struct Bundled {
    w: World,
    keys: Keys,
    src: PathBuf,
    manifest: PathBuf,
}

/// A [`Bundled`] world whose tree has `count` files of `size` bytes.
fn bundled_tree(count: usize, size: usize) -> Bundled {
    let w = World::new();
    let keys = w.keys("clerk");
    let src = w.join("src");
    let tree = noise_tree(&src, count, size);
    let bundles = w.join("bundles");
    let manifest = common::pack(&[&tree], &bundles, "b", &keys, &[&keys], &["--level", "1"]);
    Bundled {
        w,
        keys,
        src,
        manifest,
    }
}

/// Runs `c` to the end, asserting it succeeds; returns how long it took.
fn timed(c: Command) -> Duration {
    let started = Instant::now();
    let o = run(c);
    let full = started.elapsed();
    assert!(o.status.success(), "{}", describe(&o));
    full
}

fn assert_no_space(o: &Output, what: &str) {
    let err = stderr(o);
    assert_code(o, 2, what);
    assert!(
        err.contains("No space left on device"),
        "{what}: the error must say the disk is full: {}",
        describe(o)
    );
    assert!(err.contains("hint:"), "{what}: a hint is printed: {err}");
}

/// Asserts that `o` is a pack or unpack that failed on a full disk and
/// named `place` in its error.
#[track_caller]
fn assert_no_space_at(o: &Output, what: &str, place: &Path, named: &str) {
    assert_no_space(o, what);
    assert!(
        stderr(o).contains(&place.display().to_string()),
        "the error names {named}: {}",
        describe(o)
    );
}

#[test]
fn pack_onto_a_full_disk_fails_cleanly_and_leaves_nothing() {
    let w = World::new();
    let keys = w.keys("clerk");
    let big = w.join("big.bin");
    noise_file(&big, 16 * MIB, 1);
    let out = w.dir("out");
    let _mount = Mount::tmpfs(&out, "size=4m");

    let o = run(pack_cmd(&[&big], &out, "b", &keys));
    let what = "pack of 16 MiB onto 4 MiB";
    assert_no_space_at(&o, what, &out, "the output folder");
    assert!(
        names(&out).is_empty(),
        "OUTDIR must be left empty, found {:?}",
        names(&out)
    );
}

/// Free blocks of the filesystem holding `dir`, and its block size.
fn free_blocks(dir: &Path) -> (u64, u64) {
    let out = run(args!(Command::new("stat"); "-f", "-c", "%a %S", dir));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("number"));
    (it.next().expect("free"), it.next().expect("block size"))
}

#[test]
fn pack_fails_cleanly_when_the_disk_fills_at_the_manifest_or_the_signature() {
    let w = World::new();
    let keys = w.keys("clerk");
    let src = w.join("data.bin");
    noise_file(&src, 300 * 1024 + 17, 2);
    // The payload's size is the same every time (same source, level and
    // number of recipients), so measure it once.
    let probe = w.dir("probe");
    let o = run(pack_cmd(&[&src], &probe, "b", &keys));
    assert!(o.status.success(), "{}", describe(&o));
    let payload = fs::metadata(probe.join("b.age")).expect("payload").len();

    // Leave room for the payload plus `extra` blocks: 0 fails at the manifest,
    // 1 at the signature; with 2 the pack fits.
    for (extra, fails_at) in [
        (0, Some("b.toml.")),
        (1, Some("b.toml.minisig.")),
        (2, None),
    ] {
        let out = w.dir(format!("out{extra}"));
        let _mount = Mount::tmpfs(&out, "size=2m");
        let filler_dir = out.join("filler");
        fs::create_dir(&filler_dir).expect("mkdir");
        let (free, bsize) = free_blocks(&out);
        let need = payload.div_ceil(bsize) + extra;
        assert!(free > need, "tmpfs too small");
        fs::write(
            filler_dir.join("f"),
            vec![0xa5u8; ((free - need) * bsize) as usize],
        )
        .expect("filler");
        assert_eq!(free_blocks(&out).0, need, "filler left the intended room");

        let o = run(pack_cmd(&[&src], &out, "b", &keys));
        let left: BTreeSet<String> = names(&out).into_iter().filter(|n| n != "filler").collect();
        match fails_at {
            Some(temp) => {
                assert_no_space(&o, &format!("pack with {extra} spare block(s)"));
                assert!(
                    stderr(&o).contains(temp),
                    "with {extra} spare block(s) the pack must fail writing {temp}*: {}",
                    describe(&o)
                );
                assert!(
                    left.is_empty(),
                    "OUTDIR must be left as it was, found {left:?}"
                );
            }
            None => {
                assert_ok(&o, "the pack fits exactly");
                let want: BTreeSet<String> = finals("b").into_iter().collect();
                assert_eq!(left, want);
            }
        }
    }
}

#[test]
fn unpack_onto_a_full_disk_leaves_dest_as_it_was() {
    let fx = bundled_tree(4, 4 * MIB);

    let dest = fx.w.dir("dest");
    let _mount = Mount::tmpfs(&dest, "size=4m");
    fs::write(dest.join("marker.txt"), "was here\n").expect("marker");
    let before = snapshot(&dest);

    let o = run(unpack_cmd(&fx.manifest, &dest, &fx.keys));
    let what = "unpack of 16 MiB onto 4 MiB";
    assert_no_space_at(&o, what, &dest, "where it could not write");
    assert_eq!(snapshot(&dest), before, "DEST must be exactly as before");

    // A DEST that pouch has to create on the full disk is removed again.
    let sub = dest.join("new");
    let o = run(unpack_cmd(&fx.manifest, &sub, &fx.keys));
    assert_no_space(&o, "unpack into a new folder on 4 MiB");
    assert_eq!(snapshot(&dest), before, "the created DEST must be removed");
}

#[test]
fn read_only_destinations_are_refused_with_a_clear_error() {
    let fx = bundled_tree(2, 1000);

    let ro = fx.w.dir("ro");
    let mount = Mount::tmpfs(&ro, "size=1m");
    fs::write(ro.join("marker.txt"), "was here\n").expect("marker");
    mount.remount("ro");
    let before = snapshot(&ro);
    let read_only = "Read-only file system";

    for (what, dest) in [("DEST", ro.clone()), ("a new DEST", ro.join("inbox"))] {
        let o = run(unpack_cmd(&fx.manifest, &dest, &fx.keys));
        assert_refused(&o, read_only, &ro, &format!("unpack into read-only {what}"));
        assert!(stderr(&o).contains("hint:"), "{}", stderr(&o));
        assert_eq!(snapshot(&ro), before);
    }

    let o = run(pack_cmd(&[&fx.src.join("tree")], &ro, "b", &fx.keys));
    assert_refused(&o, read_only, &ro, "pack into read-only OUTDIR");
    assert_eq!(snapshot(&ro), before);
}

/// Spawns `c`, kills it with SIGKILL after `delay`; returns whether it had
/// already finished (and how).
fn kill_after(mut c: Command, delay: Duration) -> Option<std::process::ExitStatus> {
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pouch");
    thread::sleep(delay);
    let finished = child.try_wait().expect("try_wait");
    if finished.is_none() {
        child.kill().expect("SIGKILL");
    }
    let status = child.wait().expect("wait");
    finished.or(if status.success() { Some(status) } else { None })
}

/// Kill points: fixed early ones, then fractions of a full run's duration.
fn kill_points(full: Duration) -> Vec<Duration> {
    let mut points: Vec<Duration> = [0, 20, 50, 100, 200, 400]
        .into_iter()
        .map(Duration::from_millis)
        .collect();
    for twentieths in 6..=24 {
        points.push(full * twentieths / 20);
    }
    points
}

/// Reports what each kill of a `what` (which took `full` uninterrupted) left
/// behind, and asserts that at least one kill came before anything was.
fn assert_some_kill_interrupted(what: &str, full: Duration, outcomes: &[String]) {
    eprintln!("{what} took {full:?}; after each kill: {outcomes:?}");
    assert!(
        outcomes.iter().any(|o| o.starts_with("nothing")),
        "no kill interrupted {what}: {outcomes:?}"
    );
}

/// Packs `small` into `out` as bundle `c`: a new name always works, whatever
/// a kill left behind.
fn assert_a_new_name_works(small: &Path, out: &Path, keys: &Keys, at: &str) {
    let o = run(pack_cmd(&[small], out, "c", keys));
    assert_ok(&o, &format!("{at}: rerun with a new name"));
}

/// A world with the clerk's keys, a noise tree to pack (of 2 MiB files) and
/// a small file to pack after a kill.
struct Packing {
    w: World,
    keys: Keys,
    tree: PathBuf,
    small: PathBuf,
}

/// A [`Packing`] world whose tree has `count` files.
fn packing(count: usize) -> Packing {
    let w = World::new();
    let keys = w.keys("clerk");
    let tree = noise_tree(&w.join("src"), count, 2 * MIB);
    let small = w.write("small.txt", "small\n");
    Packing {
        w,
        keys,
        tree,
        small,
    }
}

#[test]
fn kill_9_during_pack_never_leaves_a_partial_bundle() {
    let p = packing(40);
    let full = timed(pack_cmd(&[&p.tree], &p.w.dir("reference"), "b", &p.keys));

    let mut outcomes = Vec::new();
    for (i, delay) in kill_points(full).into_iter().enumerate() {
        let out = p.w.dir(format!("out{i}"));
        let finished = kill_after(pack_cmd(&[&p.tree], &out, "b", &p.keys), delay);
        let found = names(&out);
        let at = format!("killed after {delay:?} (finished: {finished:?}), found {found:?}");
        let present = assert_in_commit_order(&found, &out, &p.keys, &at);
        for n in &found {
            assert!(
                finals("b").contains(n) || (n.starts_with('.') && n.ends_with(".tmp")),
                "{at}: {n:?} is neither a final name nor a hidden temporary file"
            );
        }
        let complete = present == 3;
        if complete {
            let o = verify_ok(&out.join("b.toml"), &p.keys);
            assert_ok(&o, &format!("{at}: the bundle must verify"));
        }
        let temps = found.len() - present;
        let kind = if complete {
            "complete"
        } else if present == 0 {
            "nothing"
        } else {
            "between-renames"
        };
        outcomes.push(format!("{kind}+{temps}tmp"));

        // Same name again: only possible when nothing was left under it.
        let o = run(pack_cmd(&[&p.small], &out, "b", &p.keys));
        if present != 0 {
            assert_code(&o, 2, &format!("{at}: rerun must refuse"));
            assert!(stderr(&o).contains("already exists"), "{}", describe(&o));
        } else {
            assert_ok(&o, &format!("{at}: rerun with the same name"));
            assert!(verify_ok(&out.join("b.toml"), &p.keys).status.success());
        }
        assert_a_new_name_works(&p.small, &out, &p.keys, &at);
        assert!(verify_ok(&out.join("c.toml"), &p.keys).status.success());
    }
    assert_some_kill_interrupted("a pack", full, &outcomes);
}

#[test]
fn kill_9_during_unpack_never_leaves_a_partial_folder() {
    let fx = bundled_tree(20, 2 * MIB);

    let reference = fx.w.join("reference");
    let full = timed(unpack_cmd(&fx.manifest, &reference, &fx.keys));
    assert_same_tree(&fx.src, &reference.join("b"));

    let mut outcomes = Vec::new();
    for (i, delay) in kill_points(full).into_iter().enumerate() {
        let dest = fx.w.join(format!("dest{i}"));
        let finished = kill_after(unpack_cmd(&fx.manifest, &dest, &fx.keys), delay);
        let found = if dest.exists() {
            names(&dest)
        } else {
            BTreeSet::new()
        };
        let at = format!("killed after {delay:?} (finished: {finished:?}), found {found:?}");
        for n in &found {
            let path = dest.join(n);
            if n == "b" {
                assert_same_tree(&fx.src, &path);
            } else {
                assert!(n.starts_with(".pouch-staging-b-"), "{at}: unexpected {n:?}");
                let mode = fs::symlink_metadata(&path)
                    .expect("stat")
                    .permissions()
                    .mode();
                assert_eq!(
                    mode & 0o7777,
                    0o700,
                    "{at}: staging folder {n} must stay private"
                );
            }
        }
        let complete = found.contains("b");
        let staging = found.len() - usize::from(complete);
        let kind = if complete { "complete" } else { "nothing" };
        outcomes.push(format!("{kind}+{staging}staging"));

        // Again, into the same DEST when possible, else into a fresh one.
        let again = if complete {
            fx.w.join(format!("again{i}"))
        } else {
            dest.clone()
        };
        let o = run(unpack_cmd(&fx.manifest, &again, &fx.keys));
        assert_ok(&o, &format!("{at}: unpack again"));
        assert_same_tree(&fx.src, &again.join("b"));
        fs::remove_dir_all(&again).expect("clean up");
        if dest.exists() {
            fs::remove_dir_all(&dest).expect("clean up");
        }
    }
    assert_some_kill_interrupted("an unpack", full, &outcomes);
}

#[test]
fn a_source_that_shrinks_while_packed_fails_the_pack() {
    let w = World::new();
    let keys = w.keys("clerk");
    let big = w.join("shrinking.bin");
    let mut hits = 0;
    let mut tries = Vec::new();
    for (i, delay_ms) in [60u64, 30, 120, 10, 250, 500, 5, 1000]
        .into_iter()
        .enumerate()
    {
        // Sparse: instant to make, and still 200 MiB to read.
        let f = fs::File::create(&big).expect("create");
        f.set_len(200 * MIB as u64).expect("grow");
        drop(f);
        let out = w.dir(format!("out{i}"));

        let child = pack_cmd(&[&big], &out, "b", &keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pouch");
        let truncate = {
            let big = big.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(delay_ms));
                fs::OpenOptions::new()
                    .write(true)
                    .open(&big)
                    .expect("open")
                    .set_len(MIB as u64)
                    .expect("shrink");
            })
        };
        let o = child.wait_with_output().expect("wait");
        truncate.join().expect("truncating thread");
        if o.status.success() {
            // Finished before the truncation, or started after it.
            tries.push(format!("{delay_ms} ms: not hit"));
            continue;
        }
        hits += 1;
        tries.push(format!("{delay_ms} ms: hit"));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
        assert!(
            err.contains(&big.display().to_string())
                && (err.contains("shrank") || err.contains("changed")),
            "the error names the file and says it changed: {}",
            describe(&o)
        );
        assert!(
            names(&out).is_empty(),
            "nothing may be left in OUTDIR, found {:?}",
            names(&out)
        );
        if hits >= 2 {
            break;
        }
    }
    eprintln!("truncation attempts: {tries:?}");
    assert!(hits > 0, "the truncation never raced the pack: {tries:?}");
}

/// Checks what a kill may leave under final names. POSIX cannot rename three
/// files at once, so the guarantee is the order: payload, manifest, then
/// signature. Present final names (of bundle `b`, among `found` in `out`) are
/// always a prefix of that order; all three form a bundle that verifies;
/// fewer never verify. Returns how many are present.
fn assert_in_commit_order(found: &BTreeSet<String>, out: &Path, keys: &Keys, at: &str) -> usize {
    let finals = finals("b");
    let present: Vec<&String> = finals.iter().filter(|f| found.contains(*f)).collect();
    let prefix: Vec<&String> = finals.iter().take(present.len()).collect();
    assert_eq!(present, prefix, "{at}: final names out of commit order");
    if !present.is_empty() && present.len() < 3 {
        let o = verify_ok(&out.join("b.toml"), keys);
        assert_code(&o, 1, &format!("{at}: a fragment must not verify"));
    }
    present.len()
}

/// Kills a pack the moment `NAME.age` appears under its final name, i.e.
/// between the renames that put the bundle in place (`durable::commit_all`).
/// Renaming three files cannot be atomic; what must hold is the order
/// (payload, manifest, signature), that the fragment never verifies, that a
/// rerun with the same name explains the leftover, and that a new name works.
#[test]
fn kill_9_between_the_commit_renames_leaves_files_in_order_and_no_verifiable_fragment() {
    let p = packing(5);
    for attempt in 0..3 {
        let out = p.w.dir(format!("out{attempt}"));
        let mut child = pack_cmd(&[&p.tree], &out, "b", &p.keys)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pouch");
        let payload = out.join("b.age");
        while !payload.exists() && child.try_wait().expect("try_wait").is_none() {}
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let found = names(&out);
        let at = format!("attempt {attempt}, found {found:?}");
        let present = assert_in_commit_order(&found, &out, &p.keys, &at);
        if present < 3 {
            let o = run(pack_cmd(&[&p.small], &out, "b", &p.keys));
            assert_code(&o, 2, &at);
            assert!(
                stderr(&o).contains("interrupted pack"),
                "{at}: the hint explains the leftover: {}",
                describe(&o)
            );
        }
        assert_a_new_name_works(&p.small, &out, &p.keys, &at);
    }
}

// Records as durable as the files: kills at exact system calls (strace).
#[path = "faults/records.rs"]
mod records;
