//! A channel that carries deltas: two agencies and the sender's tree
//! `tree/case`, which the receiver unpacks into `inbox/` (the first bundle)
//! and keeps up to date with `unpack --onto`. Shared by tests/delta.rs and
//! tests/delta_attacks.rs.
#![allow(dead_code)] // each test binary uses some of it

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;

use super::agencies::{Agencies, CHANNEL};
use super::{noise, passes};

/// The agencies and the sender's tree.
pub struct Chain {
    pub a: Agencies,
    /// `tree`, holding `case`.
    pub tree: PathBuf,
}

impl Chain {
    /// The agencies and a first tree of `files` (path, text), with
    /// `case/big.bin` (300 KiB of noise) besides.
    pub fn with(files: &[(&str, &str)]) -> Chain {
        let a = Agencies::new();
        let tree = a.w.dir("tree");
        let c = Chain { a, tree };
        for (path, text) in files {
            c.put(path, text);
        }
        c.put("case/big.bin", noise(300 << 10, 7));
        c
    }

    /// Writes `tree/PATH`.
    pub fn put(&self, path: &str, contents: impl AsRef<[u8]>) {
        let p = self.tree.join(path);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, contents).expect("write");
    }

    /// `pouch pack tree/case --name NAME` on the channel, with `extra`.
    pub fn pack_cmd(&self, name: &str, extra: &[&str]) -> Command {
        let a = &self.a;
        let mut c = a.pack_cmd(&self.tree.join("case"), &a.clerk.secret, &["--name", name]);
        c.args(CHANNEL).args(extra);
        c
    }

    /// Packs bundle NAME; returns its manifest.
    pub fn pack(&self, name: &str, extra: &[&str]) -> PathBuf {
        passes(self.pack_cmd(name, extra), &[]);
        self.manifest(name)
    }

    /// `stick/NAME.toml`.
    pub fn manifest(&self, name: &str) -> PathBuf {
        self.a.d.join("stick").join(format!("{name}.toml"))
    }

    /// The receiver's `unpack NAME.toml --onto TREE`.
    pub fn onto(&self, manifest: &Path, tree: &Path) -> Command {
        let a = &self.a;
        args!(a.receiver(); "unpack", manifest, "-i", &a.recipient.identity, "--onto", tree)
    }

    /// Unpacks the full bundle `manifest` into `inbox/`; returns the tree.
    pub fn unpack_base(&self, manifest: &Path) -> PathBuf {
        passes(self.a.unpack(manifest), &[]);
        let name = manifest.file_stem().expect("stem").to_string_lossy();
        self.a.d.join("inbox").join(&*name)
    }

    /// The receiver's ledger.
    pub fn ledger(&self) -> PathBuf {
        self.a.w.home_dir("receiver").join("ledger.jsonl")
    }
}

/// `cmd` under strace, with `syscall` faulted as `how` (strace's
/// `inject=SYSCALL:HOW`).
pub fn under_strace(cmd: &Command, syscall: &str, how: &str) -> std::process::Command {
    let mut c = std::process::Command::new(super::require("strace", "strace"));
    c.args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:{how}"))
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// [`under_strace`], started with its output piped, not waited for.
pub fn spawn_under_strace(cmd: &Command, syscall: &str, how: &str) -> std::process::Child {
    let mut c = under_strace(cmd, syscall, how);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c.spawn().expect("strace runs")
}
