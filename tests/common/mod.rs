//! Helpers shared by the integration tests: running the binary, making keys
//! and trees, and comparing trees.

#![allow(dead_code)]
// Test helpers fail the test they serve by panicking, as assertions do.
#![allow(clippy::expect_used, clippy::panic)]

use std::borrow::BorrowMut;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use assert_cmd::assert::Assert;
use assert_cmd::Command;
use predicates::str::contains;

pub mod forge;

/// The pouch binary under test.
pub fn pouch() -> Command {
    let mut c = Command::cargo_bin("pouch").expect("binary built");
    c.env_remove("SOURCE_DATE_EPOCH");
    c.env("POUCH_HOME", test_home());
    c
}

/// A pouch home (keyring, ledger) of the calling test's own, so that tests
/// do not see each other's ledgers, nor the user's.
pub fn test_home() -> PathBuf {
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    std::env::temp_dir()
        .join(format!("pouch-test-home-{}", std::process::id()))
        .join(test)
}

/// The path of a stock tool on PATH; fails the test with an install hint
/// when it is missing (tests that need a tool never skip).
pub fn require(tool: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{tool} not found: install Debian's {package} package (.ci/run does)")
        })
}

/// Describes a finished command: status, stdout and stderr.
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a (non-pouch) tool with stdin closed and returns its output.
pub fn run(mut cmd: std::process::Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Asserts a finished command succeeded; returns its output.
pub fn ok(what: &str, out: Output) -> Output {
    assert!(out.status.success(), "{}", describe(what, &out));
    out
}

/// `pouch verify MANIFEST --trust PUB [-i IDENTITY]`.
pub fn verify(manifest: &Path, trust: &Path, identity: Option<&Path>) -> Output {
    let mut c = pouch();
    c.arg("verify").arg(manifest).arg("--trust").arg(trust);
    if let Some(i) = identity {
        c.arg("-i").arg(i);
    }
    c.output().expect("runs")
}

/// `args!(command; a, b, …)`: `command` with arguments of mixed
/// `AsRef<OsStr>` types added, so that a whole command fits on one line.
/// (This and [`pouch!`] reach a test file through `#[macro_use] mod common;`.)
#[allow(unused_macros)]
macro_rules! args {
    ($cmd:expr; $($arg:expr),* $(,)?) => {{
        let mut c = $cmd;
        $(c.arg($arg);)*
        c
    }};
}

/// `pouch!(a, b, …)`: [`pouch`] with arguments of mixed `AsRef<OsStr>` types.
#[allow(unused_macros)]
macro_rules! pouch {
    ($($arg:expr),* $(,)?) => {
        args!($crate::common::pouch(); $($arg),*)
    };
}

pub mod agencies;
pub mod chain;

/// Runs `cmd` and asserts that it succeeds and that its stdout contains each
/// of `stdout`; returns the assertion, for further checks.
#[track_caller]
pub fn passes(mut cmd: impl BorrowMut<Command>, stdout: &[&str]) -> Assert {
    let mut a = cmd.borrow_mut().assert().success();
    for s in stdout {
        a = a.stdout(contains(*s));
    }
    a
}

/// Runs `cmd` and asserts that it exits with `code` and that its stderr
/// contains each of `stderr`; returns the assertion, for further checks.
#[track_caller]
pub fn fails(mut cmd: impl BorrowMut<Command>, code: i32, stderr: &[&str]) -> Assert {
    let mut a = cmd.borrow_mut().assert().code(code);
    for s in stderr {
        a = a.stderr(contains(*s));
    }
    a
}

/// Asserts that the finished command `out` exited with `code` and that its
/// stderr contains each of `stderr` (as [`fails`] does for a command).
#[track_caller]
pub fn exited(out: &Output, code: i32, stderr: &[&str]) -> Assert {
    let mut a = Assert::new(out.clone()).code(code);
    for s in stderr {
        a = a.stderr(contains(*s));
    }
    a
}

/// Runs `cmd` and returns its output, whatever the outcome.
pub fn output(mut cmd: impl BorrowMut<Command>) -> Output {
    cmd.borrow_mut().output().expect("runs")
}

/// A finished command's stderr, as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A finished command's stdout, as text.
pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of top-level `key = value` in TOML text (quotes removed).
pub fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{key} = "))
            .map(|v| v.trim_matches('"').to_string())
    })
}

/// The names in folder `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `keyring add NAME --sign-pub KEYS.public` in the home of `side` of `w`.
pub fn trusts(w: &World, side: &str, name: &str, keys: &Keys) {
    passes(
        args!(w.home(side); "keyring", "add", name, "--sign-pub", &keys.public),
        &[],
    );
}

/// `pouch pack SOURCES… -o OUT -r K.recipient -s K.secret EXTRA…`: sealed to
/// and signed by `k`, for packs that are to be refused or looked at closely.
pub fn pack_cmd(sources: &[&Path], out: &Path, k: &Keys, extra: &[&str]) -> Command {
    let mut c = pouch();
    c.arg("pack").args(sources).arg("-o").arg(out);
    c.args(["-r", &k.recipient]).arg("-s").arg(&k.secret);
    c.args(extra);
    c
}

/// `pouch verify MANIFEST --trust FROM.public`.
pub fn verify_cmd(manifest: &Path, from: &Keys) -> Command {
    pouch!("verify", manifest, "--trust", &from.public)
}

/// `pouch unpack MANIFEST -i TO.identity --trust FROM.public -d DEST`: a
/// bundle signed by `from`, opened by `to`.
pub fn unpack_cmd(manifest: &Path, from: &Keys, to: &Keys, dest: &Path) -> Command {
    unpack_in(pouch(), manifest, from, to, dest)
}

/// [`unpack_cmd`] run as `cmd`: e.g. with a side's pouch home ([`World::home`]).
pub fn unpack_in(cmd: Command, manifest: &Path, from: &Keys, to: &Keys, dest: &Path) -> Command {
    let (trust, identity) = (&from.public, &to.identity);
    args!(cmd; "unpack", manifest, "-i", identity, "--trust", trust, "-d", dest)
}

/// Key file paths made by `pouch keygen --name NAME --out DIR`.
pub struct Keys {
    pub identity: PathBuf,
    pub recipient_file: PathBuf,
    pub recipient: String,
    pub secret: PathBuf,
    pub public: PathBuf,
}

/// Runs `pouch keygen --name NAME --no-passphrase --out DIR EXTRA…`; returns
/// the keys it wrote.
fn keygen_with(dir: &Path, name: &str, extra: &[&str]) -> Keys {
    pouch()
        .args(["keygen", "--name", name, "--no-passphrase", "--out"])
        .arg(dir)
        .args(extra)
        .assert()
        .success();
    keys_at(dir, name)
}

/// The key paths of party `name` in `dir`.
fn keys_at(dir: &Path, name: &str) -> Keys {
    let recipient_file = dir.join(format!("{name}.age-recipient"));
    let recipient = fs::read_to_string(&recipient_file)
        .expect("recipient")
        .trim()
        .to_string();
    Keys {
        identity: dir.join(format!("{name}.age-identity")),
        recipient_file,
        recipient,
        secret: dir.join(format!("{name}.minisign.key")),
        public: dir.join(format!("{name}.minisign.pub")),
    }
}

/// Packs `sources` into `out` as bundle `name` for `to`, signed by `from`;
/// returns the manifest path.
pub fn pack(
    sources: &[&Path],
    out: &Path,
    name: &str,
    from: &Keys,
    to: &[&Keys],
    extra: &[&str],
) -> PathBuf {
    fs::create_dir_all(out).expect("out dir");
    let mut c = pouch();
    c.arg("pack")
        .args(sources)
        .arg("-o")
        .arg(out)
        .args(["--name", name])
        .arg("-s")
        .arg(&from.secret);
    for k in to {
        c.args(["-r", &k.recipient]);
    }
    c.args(extra);
    let output = c.output().expect("runs");
    assert!(
        output.status.success(),
        "pack failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("prints the manifest path");
    assert_eq!(Path::new(last), out.join(format!("{name}.toml")));
    out.join(format!("{name}.toml"))
}

/// A test's own world: a fresh folder, keys for each party the test names
/// (made once per test binary, copied in), a pouch home for each side, and
/// the sample tree. Dropping it removes everything.
pub struct World {
    dir: tempfile::TempDir,
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

impl World {
    /// An empty world.
    pub fn new() -> World {
        World {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The world's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the world.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file inside the world (making its folders); returns its path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, contents).expect("write");
        path
    }

    /// Makes a folder inside the world (and its parents); returns its path.
    pub fn dir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(&path).expect("mkdir");
        path
    }

    /// The classic keys of party `name`, in the world's folder.
    pub fn keys(&self, name: &str) -> Keys {
        self.keys_in(self.path(), name, false)
    }

    /// The post-quantum keys of party `name`, in the world's folder.
    pub fn keys_pq(&self, name: &str) -> Keys {
        self.keys_in(self.path(), name, true)
    }

    /// The keys of party `name`, copied into `dir` (made if missing).
    pub fn keys_in(&self, dir: &Path, name: &str, pq: bool) -> Keys {
        let made = made_keys(name, pq);
        fs::create_dir_all(dir).expect("mkdir");
        for ending in KEY_FILES {
            let file = format!("{name}.{ending}");
            fs::copy(made.join(&file), dir.join(&file)).expect("copy key");
        }
        keys_at(dir, name)
    }

    /// The sample tree ([`rich_tree`]) under `src/`; returns its root.
    pub fn tree(&self) -> PathBuf {
        rich_tree(&self.join("src"))
    }

    /// Packs `sources` into the world's `out/` as bundle `name`.
    pub fn pack(
        &self,
        sources: &[&Path],
        name: &str,
        from: &Keys,
        to: &[&Keys],
        extra: &[&str],
    ) -> PathBuf {
        pack(sources, &self.join("out"), name, from, to, extra)
    }

    /// The pouch home of side `side` inside the world, made if missing.
    pub fn home_dir(&self, side: &str) -> PathBuf {
        self.dir(format!("{side}-home"))
    }

    /// `pouch` with the pouch home of side `side` inside the world.
    pub fn home(&self, side: &str) -> Command {
        let mut c = pouch();
        c.env("POUCH_HOME", self.join(format!("{side}-home")));
        c
    }
}

/// The files `pouch keygen --name NAME` writes, by their ending.
const KEY_FILES: [&str; 4] = [
    "age-identity",
    "age-recipient",
    "minisign.key",
    "minisign.pub",
];

/// The folder holding party `name`'s keys, made by `pouch keygen` the first
/// time a test of this binary asks for them.
fn made_keys(name: &str, pq: bool) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let kind = if pq { "pq" } else { "classic" };
    let dir = std::env::temp_dir()
        .join(format!("pouch-test-keys-{}", std::process::id()))
        .join(format!("{name}-{kind}"));
    if !dir.join(format!("{name}.minisign.pub")).exists() {
        let extra: &[&str] = if pq { &["--pq"] } else { &[] };
        fs::create_dir_all(&dir).expect("mkdir");
        keygen_with(&dir, name, extra);
    }
    dir
}

/// One node of a tree: a folder, or a file with its content and executable bit.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Folder,
    File(Vec<u8>, bool),
}

/// Every path below `root` (relative) with its node.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut map = BTreeMap::new();
    for item in walkdir::WalkDir::new(root).min_depth(1) {
        let item = item.expect("walk");
        let rel = item
            .path()
            .strip_prefix(root)
            .expect("below root")
            .to_path_buf();
        let meta = fs::symlink_metadata(item.path()).expect("stat");
        let node = if meta.is_dir() {
            Node::Folder
        } else if meta.is_file() {
            Node::File(
                fs::read(item.path()).expect("read"),
                meta.permissions().mode() & 0o111 != 0,
            )
        } else {
            panic!("unexpected file type at {}", item.path().display());
        };
        map.insert(rel, node);
    }
    map
}

/// Asserts two trees are equal, naming the first difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    let ka: Vec<_> = sa.keys().collect();
    let kb: Vec<_> = sb.keys().collect();
    assert_eq!(
        ka,
        kb,
        "paths differ between {} and {}",
        a.display(),
        b.display()
    );
    for (k, v) in &sa {
        let w = &sb[k];
        if v != w {
            let describe = |n: &Node| match n {
                Node::Folder => "folder".to_string(),
                Node::File(c, x) => format!("file of {} bytes, executable {x}", c.len()),
            };
            panic!(
                "{} differs: {} vs {}",
                k.display(),
                describe(v),
                describe(w)
            );
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A tree with what a round trip must preserve: nested folders, empty files,
/// an empty folder, non-ASCII and space-containing names, a name over 100
/// bytes, an executable file and a file of several MiB.
pub fn rich_tree(root: &Path) -> PathBuf {
    let case = root.join("case 0142");
    fs::create_dir_all(case.join("reports/2026/november")).expect("mkdir");
    fs::create_dir_all(case.join("empty folder")).expect("mkdir");
    fs::write(case.join("reports/Zeugenaussage Müller.txt"), "Aussage\n").expect("write");
    fs::write(
        case.join("reports/2026/november/übersicht — résumé.csv"),
        "a,b\n1,2\n",
    )
    .expect("write");
    fs::write(case.join("empty.txt"), "").expect("write");
    fs::write(case.join("reports/2026/empty too"), "").expect("write");
    let long = format!("{}.txt", "long-name-".repeat(12));
    assert!(long.len() > 100);
    fs::write(case.join(&long), "long\n").expect("write");
    let script = case.join("collect.sh");
    fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::write(case.join("blob.bin"), noise(5 * 1024 * 1024 + 123, 7)).expect("write");
    case
}
