//! `pouch demo`: the story pouch is for, on built-in sample data. Two
//! agencies, MA-DGSN and BE-FEDPOL, each with its own pouch home (keyring
//! and ledger), trade keys, send a channel series over one stick with the
//! receipts carried back, see a replay refused and a gap reported and
//! filled; an auditor without any decryption key checks both ledgers; a
//! tampered copy is refused; and the stock tools open a bundle without pouch.
//!
//! Every pouch step is the real command: this binary runs itself with the
//! arguments shown, in the demo folder, with `POUCH_HOME` set to the side's
//! home, and shows what the command printed. A step that does not end as the
//! story says (a replay accepted, say) stops the demo with an error.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pouch::demo;
use pouch::error::{Error, IoContext, Result};

use super::render::out;

/// Who is at the keyboard: each side has a folder, with its home in it.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Sender,
    Receiver,
    Auditor,
}

impl Side {
    fn party(self) -> &'static str {
        match self {
            Side::Sender => "MA-DGSN",
            Side::Receiver => "BE-FEDPOL",
            Side::Auditor => "the auditor",
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Side::Sender => "ma-dgsn",
            Side::Receiver => "be-fedpol",
            Side::Auditor => "auditor",
        }
    }
}

/// The demo's state: where it runs, the binary it runs, whose home is set.
struct Demo {
    dir: PathBuf,
    exe: PathBuf,
    side: Option<Side>,
    step: usize,
}

/// The number of titled steps in [`run`].
const TOTAL: usize = 16;

/// Lines longer than this (a post-quantum recipient is 1,959 characters)
/// are cut when shown.
const WIDE: usize = 300;

/// The split size that stands in for FAT32's: `--media fat32` cuts parts
/// just under 4 GiB; the sample's payload is 4 KiB or so.
const SMALL_SPLIT: &str = "4K";

const KEYS_MA: &str = "ma-dgsn/keys/ma-dgsn";
const KEYS_BE: &str = "be-fedpol/keys/be-fedpol";
const CHANNEL: [&str; 4] = ["--from", "MA-DGSN", "--to", "BE-FEDPOL"];

/// Runs the demo in `dir` (or a new temporary folder, kept afterwards).
pub fn run(dir: Option<PathBuf>) -> Result<u8> {
    let dir = std::path::absolute(demo_dir(dir)?).doing("resolving", "the demo folder")?;
    let exe = std::env::current_exe().doing("finding", "the pouch binary")?;
    let mut d = Demo {
        dir,
        exe,
        side: None,
        step: 0,
    };
    out(&format!(
        "pouch demo in {} (paths below are relative to it)",
        d.dir.display()
    ));
    out("Two agencies on one machine: each side's commands run with POUCH_HOME set to");
    out("its own folder (its keyring and ledger), as shown; the stick is the folder stick/.");
    for folder in ["ma-dgsn/keys", "be-fedpol/keys", "stick", "held"] {
        fs::create_dir_all(d.path(folder)).doing("creating", folder)?;
    }
    let case = demo::write_sample(&d.dir.join("sample"))?;
    out(&format!(
        "sample data: sample/case-2026-0142 ({} files and an empty folder; all fictitious)",
        demo::SAMPLE_FILES.len()
    ));
    keys(&mut d)?;
    first_bundle(&mut d, &case)?;
    series(&mut d)?;
    delta(&mut d, &case)?;
    audit(&mut d)?;
    tamper(&mut d)?;
    without_pouch(&mut d)?;
    out("");
    out(&format!(
        "demo complete; everything is in {}",
        d.dir.display()
    ));
    Ok(0)
}

impl Demo {
    fn title(&mut self, text: &str) {
        self.step += 1;
        out("");
        out(&format!("[{}/{TOTAL}] {text}", self.step));
    }

    /// Shows `$ pouch ARGS` as `side` types it, runs it, shows its output,
    /// and fails unless it exits with `expect`.
    fn pouch(&mut self, side: Side, args: &[&str], expect: i32) -> Result<()> {
        if self.side != Some(side) {
            self.side = Some(side);
            out(&format!(
                "$ export POUCH_HOME=$PWD/{}/pouch      # {}'s home",
                side.folder(),
                side.party()
            ));
        }
        let shown: Vec<String> = args.iter().map(|a| quoted(a)).collect();
        out(&format!("$ pouch {}", shown.join(" ")));
        let output = Command::new(&self.exe)
            .args(args)
            .current_dir(&self.dir)
            .env("POUCH_HOME", self.dir.join(side.folder()).join("pouch"))
            .stdin(Stdio::null())
            .output()
            .doing("running", &self.exe)?;
        for stream in [&output.stdout, &output.stderr] {
            for line in String::from_utf8_lossy(stream).lines() {
                out(&format!("  {}", cut(line)));
            }
        }
        match output.status.code() {
            Some(code) if code == expect && code != 0 => {
                out(&format!("  refused, exit code {code}, as it must be"));
                Ok(())
            }
            Some(code) if code == expect => Ok(()),
            Some(130) => Err(Error::Interrupted),
            code => Err(Error::Internal(format!(
                "the demo's step `pouch {}` ended with {code:?}, not exit code {expect}",
                shown.join(" ")
            ))),
        }
    }

    /// Shows a shell step that the demo does itself.
    fn shell(&self, command: &str) {
        out(&format!("$ {command}"));
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Copies bundle `name`'s single-part payload, manifest and signature
    /// from folder `from` to folder `to`, as `cp from/NAME.* to/` would.
    fn copy_bundle(&self, name: &str, from: &str, to: &str) -> Result<()> {
        for ext in ["age", "toml", "toml.minisig"] {
            let file = format!("{name}.{ext}");
            let (a, b) = (self.path(from).join(&file), self.path(to).join(&file));
            fs::copy(&a, &b).doing("copying", &a)?;
        }
        Ok(())
    }
}

/// Steps 1 to 3: each side makes keys, and each adds the other as a party.
fn keys(d: &mut Demo) -> Result<()> {
    d.title("MA-DGSN makes its keys (throwaway keys: --no-passphrase; real ones get a passphrase)");
    d.pouch(
        Side::Sender,
        &[
            "keygen",
            "--name",
            "ma-dgsn",
            "--out",
            "ma-dgsn/keys",
            "--no-passphrase",
        ],
        0,
    )?;
    d.title("BE-FEDPOL makes its keys, with a post-quantum age key");
    d.pouch(
        Side::Receiver,
        &[
            "keygen",
            "--name",
            "be-fedpol",
            "--out",
            "be-fedpol/keys",
            "--no-passphrase",
            "--pq",
        ],
        0,
    )?;
    d.title("Each adds the other to its keyring from the public files handed over (compare key ids by phone)");
    let (ma_pub, be_pub, be_to) = (
        format!("{KEYS_MA}.minisign.pub"),
        format!("{KEYS_BE}.minisign.pub"),
        format!("{KEYS_BE}.age-recipient"),
    );
    d.pouch(
        Side::Receiver,
        &["keyring", "add", "MA-DGSN", "--sign-pub", &ma_pub],
        0,
    )?;
    d.pouch(
        Side::Sender,
        &[
            "keyring",
            "add",
            "BE-FEDPOL",
            "--sign-pub",
            &be_pub,
            "-R",
            &be_to,
        ],
        0,
    )
}

/// `pouch pack SOURCE -o OUT --name NAME` on the channel, by MA-DGSN.
fn pack(d: &mut Demo, source: &str, out_dir: &str, name: &str, extra: &[&str]) -> Result<()> {
    let key = format!("{KEYS_MA}.minisign.key");
    let mut args = vec!["pack", source, "-o", out_dir, "--name", name, "-s", &key];
    args.extend(CHANNEL);
    args.extend(["--marking", "RESTRICTED (DEMO)"]);
    args.extend(extra);
    d.pouch(Side::Sender, &args, 0)
}

/// `pouch unpack stick/NAME.toml` by BE-FEDPOL, with a receipt onto the stick.
fn unpack(d: &mut Demo, name: &str, receipt: bool, expect: i32) -> Result<()> {
    let (manifest, identity, key) = (
        format!("stick/{name}.toml"),
        format!("{KEYS_BE}.age-identity"),
        format!("{KEYS_BE}.minisign.key"),
    );
    let mut args = vec![
        "unpack",
        &manifest,
        "-i",
        &identity,
        "-d",
        "be-fedpol/inbox",
    ];
    if receipt {
        args.extend(["--receipt-out", "stick", "-s", &key]);
    }
    d.pouch(Side::Receiver, &args, expect)
}

/// Steps 4 to 7: bundle 1 on the channel, split, unpacked, replayed, its
/// receipt carried back.
fn first_bundle(d: &mut Demo, case: &Path) -> Result<()> {
    d.title(&format!(
        "MA-DGSN seals the case for BE-FEDPOL on channel MA-DGSN:BE-FEDPOL, split for the stick \
         (--split {SMALL_SPLIT} stands in for --media fat32's parts under 4 GiB)"
    ));
    pack(
        d,
        "sample/case-2026-0142",
        "stick",
        "MA-BE-001",
        &[
            "--require-pq",
            "--split",
            SMALL_SPLIT,
            "--description",
            "Case 2026/0142, fictitious",
        ],
    )?;
    d.shell("ls stick");
    let mut names: Vec<String> = fs::read_dir(d.path("stick"))
        .doing("listing", "stick")?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    out(&format!("  {}", names.join("  ")));

    d.title("BE-FEDPOL checks, unpacks and writes a signed receipt onto the stick");
    unpack(d, "MA-BE-001", true, 0)?;
    let same = same_tree(case, &d.path("be-fedpol/inbox/MA-BE-001/case-2026-0142"))?;
    out(&format!(
        "  be-fedpol/inbox/MA-BE-001 identical to the source: {}",
        if same { "yes" } else { "NO" }
    ));
    if !same {
        return Err(Error::ContentsMismatch {
            reason: "the demo's unpacked tree differs from the source".into(),
        });
    }

    d.title("The same bundle offered again is a replay: refused, and recorded as rejected");
    unpack(d, "MA-BE-001", false, 1)?;

    d.title("The stick goes back: MA-DGSN imports the receipt; bundle 1 is delivered");
    d.pouch(
        Side::Sender,
        &["receipt", "import", "stick/MA-BE-001.receipt.toml"],
        0,
    )
}

/// Steps 8 to 10: bundles 2 and 3, 2 held back: a gap, then filled.
fn series(d: &mut Demo) -> Result<()> {
    d.title("MA-DGSN packs bundles 2 and 3; number 2 waits in held/ for the next courier");
    fs::write(
        d.path("sample/followup-1.txt"),
        "Follow-up 1: second interview (fictitious)\n",
    )
    .doing("writing", "sample/followup-1.txt")?;
    fs::write(
        d.path("sample/followup-2.txt"),
        "Follow-up 2: lab results (fictitious)\n",
    )
    .doing("writing", "sample/followup-2.txt")?;
    pack(d, "sample/followup-1.txt", "held", "MA-BE-002", &[])?;
    pack(d, "sample/followup-2.txt", "stick", "MA-BE-003", &[])?;

    d.title("BE-FEDPOL unpacks bundle 3: accepted, and the gap is named");
    unpack(d, "MA-BE-003", true, 0)?;
    d.pouch(Side::Receiver, &["ledger", "gaps"], 1)?;

    d.title("Bundle 2 arrives late: the gap is filled; the receipts go back");
    d.shell("cp held/MA-BE-002.* stick/");
    d.copy_bundle("MA-BE-002", "held", "stick")?;
    unpack(d, "MA-BE-002", true, 0)?;
    d.pouch(Side::Receiver, &["ledger", "gaps"], 0)?;
    let key = format!("{KEYS_BE}.minisign.key");
    d.pouch(Side::Receiver, &["ledger", "sign", "-s", &key], 0)?;
    for n in ["002", "003"] {
        let receipt = format!("stick/MA-BE-{n}.receipt.toml");
        d.pouch(Side::Sender, &["receipt", "import", &receipt], 0)?;
    }
    let key = format!("{KEYS_MA}.minisign.key");
    d.pouch(Side::Sender, &["ledger", "sign", "-s", &key], 0)?;
    d.pouch(
        Side::Sender,
        &["ledger", "show", "--channel", "MA-DGSN:BE-FEDPOL"],
        0,
    )
}

/// Steps 11 and 12: the case folder changes; only what changed travels,
/// as a delta on bundle 1 (whose receipt came back), and BE-FEDPOL applies
/// it onto the tree bundle 1 made.
fn delta(d: &mut Demo, case: &Path) -> Result<()> {
    d.title("The case folder changes: MA-DGSN sends only what changed, a delta on bundle 1, which BE-FEDPOL confirmed");
    let report = "sample/case-2026-0142/reports/2026-12-01 follow-up report.md";
    fs::write(
        d.path(report),
        "# Follow-up report (fictitious)\n\nTwo more devices seized.\n",
    )
    .doing("writing", report)?;
    let letter = "sample/case-2026-0142/correspondence/letter to fedpol.txt";
    fs::remove_file(d.path(letter)).doing("removing", letter)?;
    d.shell(&format!(
        "echo … > {}; rm {}",
        quoted(report),
        quoted(letter)
    ));
    let base = ["--require-pq", "--delta-from", "stick/MA-BE-001.toml"];
    pack(d, "sample/case-2026-0142", "stick", "MA-BE-004", &base)?;

    d.title(
        "BE-FEDPOL applies it onto the tree bundle 1 made: checked first, then swapped in whole",
    );
    let (identity, key) = (
        format!("{KEYS_BE}.age-identity"),
        format!("{KEYS_BE}.minisign.key"),
    );
    let args = [
        "unpack",
        "stick/MA-BE-004.toml",
        "-i",
        &identity,
        "--onto",
        "be-fedpol/inbox/MA-BE-001",
        "--receipt-out",
        "stick",
        "-s",
        &key,
    ];
    d.pouch(Side::Receiver, &args, 0)?;
    let same = same_tree(case, &d.path("be-fedpol/inbox/MA-BE-001/case-2026-0142"))?;
    out(&format!(
        "  be-fedpol/inbox/MA-BE-001 identical to the changed source: {}",
        if same { "yes" } else { "NO" }
    ));
    if !same {
        return Err(Error::ContentsMismatch {
            reason: "the demo's tree after the delta differs from the source".into(),
        });
    }
    d.pouch(Side::Receiver, &["ledger", "sign", "-s", &key], 0)?;
    let ma_key = format!("{KEYS_MA}.minisign.key");
    d.pouch(
        Side::Sender,
        &["receipt", "import", "stick/MA-BE-004.receipt.toml"],
        0,
    )?;
    d.pouch(Side::Sender, &["ledger", "sign", "-s", &ma_key], 0)
}

/// Steps 13 and 14: the auditor, with public keys only, audits the stick
/// against both sides' ledgers at once, which lines the channel up from
/// both, and files the report as a page.
fn audit(d: &mut Demo) -> Result<()> {
    d.title("The auditor, who has no decryption key, trusts both parties' public signing keys");
    let (ma_pub, be_pub) = (
        format!("{KEYS_MA}.minisign.pub"),
        format!("{KEYS_BE}.minisign.pub"),
    );
    d.pouch(
        Side::Auditor,
        &["keyring", "add", "MA-DGSN", "--sign-pub", &ma_pub],
        0,
    )?;
    d.pouch(
        Side::Auditor,
        &["keyring", "add", "BE-FEDPOL", "--sign-pub", &be_pub],
        0,
    )?;
    d.title("The auditor checks every bundle, part and receipt, and lines the channel up from both ledgers");
    d.pouch(
        Side::Auditor,
        &[
            "audit",
            "stick",
            "--ledger",
            "ma-dgsn/pouch/ledger.jsonl",
            "--ledger",
            "be-fedpol/pouch/ledger.jsonl",
            "--require-pq",
            "--html",
            "audit.html",
        ],
        0,
    )?;
    Ok(())
}

/// Step 15: a copy of bundle 3 with one byte of its payload flipped.
fn tamper(d: &mut Demo) -> Result<()> {
    d.title("A courier's copy is tampered with: one byte of bundle 3's payload flipped");
    d.shell("mkdir tampered && cp stick/MA-BE-003.* tampered/   # then one byte of tampered/MA-BE-003.age is flipped");
    fs::create_dir_all(d.path("tampered")).doing("creating", "tampered")?;
    d.copy_bundle("MA-BE-003", "stick", "tampered")?;
    let payload = d.path("tampered/MA-BE-003.age");
    let mut bytes = fs::read(&payload).doing("reading", &payload)?;
    let middle = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(middle) {
        *b ^= 0x01;
    }
    fs::write(&payload, &bytes).doing("writing", &payload)?;
    d.pouch(Side::Auditor, &["verify", "tampered/MA-BE-003.toml"], 1)
}

/// Step 16: a bundle sealed to a classic X25519 key, and the stock tools'
/// recipe for it (Debian's age 1.1 has no post-quantum; age 1.3 and
/// typage open the post-quantum bundles the same way).
fn without_pouch(d: &mut Demo) -> Result<()> {
    d.title("Without pouch: a bundle sealed to a classic X25519 key opens with the stock tools");
    d.pouch(
        Side::Receiver,
        &[
            "keygen",
            "--name",
            "be-fedpol-x25519",
            "--out",
            "be-fedpol/keys",
            "--no-passphrase",
        ],
        0,
    )?;
    fs::create_dir_all(d.path("recovery")).doing("creating", "recovery")?;
    let key = format!("{KEYS_MA}.minisign.key");
    d.pouch(
        Side::Sender,
        &[
            "pack",
            "sample/case-2026-0142",
            "-o",
            "recovery",
            "--name",
            "MA-BE-STOCK",
            "-s",
            &key,
            "-R",
            "be-fedpol/keys/be-fedpol-x25519.age-recipient",
        ],
        0,
    )?;
    out("Recovered and checked with Debian's stock age, zstd, tar, minisign and sha256sum");
    out("(age 1.1 has no post-quantum; age 1.3 or typage open the post-quantum bundles too):");
    d.shell("mkdir -p recovered && age -d -i be-fedpol/keys/be-fedpol-x25519.age-identity recovery/MA-BE-STOCK.age | zstd -d | tar -x -C recovered");
    d.shell(&format!(
        "minisign -V -m recovery/MA-BE-STOCK.toml -p {KEYS_MA}.minisign.pub"
    ));
    // The payload's sha256 must be the one the signed manifest gives.
    d.shell("grep -A3 '^\\[payload\\]' recovery/MA-BE-STOCK.toml | grep \"$(sha256sum < recovery/MA-BE-STOCK.age | cut -c1-64)\"");
    Ok(())
}

/// An argument as typed at a shell prompt.
fn quoted(arg: &str) -> String {
    if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "()'\"$*?".contains(c)) {
        format!("\"{arg}\"")
    } else {
        arg.to_string()
    }
}

/// `line`, cut to [`WIDE`] characters with a note of its length.
fn cut(line: &str) -> String {
    let n = line.chars().count();
    if n <= WIDE {
        return line.to_string();
    }
    let head: String = line.chars().take(100).collect();
    format!("{head}… ({n} characters)")
}

/// The demo's folder: `dir`, which must be new or empty, or a new
/// temporary folder that is kept.
fn demo_dir(dir: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match dir {
        Some(d) => {
            fs::create_dir_all(&d).doing("creating", &d)?;
            if fs::read_dir(&d).doing("listing", &d)?.next().is_some() {
                return Err(Error::Refused(format!(
                    "demo folder {} is not empty; pass a new or empty folder",
                    d.display()
                )));
            }
            d
        }
        None => tempfile::Builder::new()
            .prefix("pouch-demo-")
            .tempdir()
            .map_err(|e| Error::io("creating a folder in", std::env::temp_dir(), e))?
            .keep(),
    })
}

/// True if two trees hold the same relative paths, kinds and file contents.
fn same_tree(a: &Path, b: &Path) -> Result<bool> {
    let list = |root: &Path| -> Result<Vec<(PathBuf, Option<Vec<u8>>)>> {
        let mut v = Vec::new();
        for item in walkdir::WalkDir::new(root).sort_by_file_name() {
            let item = item.map_err(|e| Error::io("listing", root, e.into()))?;
            let rel = item
                .path()
                .strip_prefix(root)
                .unwrap_or(item.path())
                .to_path_buf();
            let content = if item.file_type().is_file() {
                Some(fs::read(item.path()).doing("reading", item.path())?)
            } else {
                None
            };
            v.push((rel, content));
        }
        Ok(v)
    };
    Ok(list(a)? == list(b)?)
}
