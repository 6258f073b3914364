//! Nothing attacker-chosen reaches the terminal raw: every command is run on
//! files whose every field, name and key holds terminal controls, and no
//! control, bidi or invisible character may appear raw in what it prints
//! (text or JSON, stdout or stderr).
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::path::Path;

use common::{Keys, World};

/// Clears the screen, returns the cursor, rings the bell, flips the text
/// right to left, and hides a C1 control.
const EVIL: &str = "\u{1b}[2J\r\u{7}\u{202e}\u{85}\u{200b}\u{61c}\u{e0001}";

/// The same, as a TOML basic string's contents.
const EVIL_TOML: &str = "\\u001b[2J\\r\\u0007\\u202e\\u0085\\u200b\\u061c\\U000e0001";

thread_local! {
    /// What reached a stream raw, one line per command and stream.
    static LEAKS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records it when something in `bytes` would change the terminal.
fn check_clean(what: &str, stream: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let raw = text.chars().find(|&c| {
        let bidi_or_invisible = matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
            | '\u{61C}' | '\u{E0000}'..='\u{E007F}');
        (c.is_control() && c != '\n') || bidi_or_invisible
    });
    if let Some(c) = raw {
        let line = text.lines().find(|l| l.contains(c)).unwrap_or_default();
        LEAKS.with(|l| {
            l.borrow_mut()
                .push(format!("{what}: {stream} holds {c:?} raw in {line:?}"))
        });
    }
}

/// Runs a command and checks both its streams.
fn sweep(what: &str, mut cmd: assert_cmd::Command) {
    let out = cmd.output().expect("runs");
    check_clean(what, "stdout", &out.stdout);
    check_clean(what, "stderr", &out.stderr);
}

fn run(w: &World, args: &[&dyn AsRef<std::ffi::OsStr>]) -> assert_cmd::Command {
    let mut c = w.home("evil");
    for a in args {
        c.arg(a);
    }
    c
}

/// A manifest that pouch wrote, then edited so that its free-text fields,
/// a key and an entry name hold [`EVIL`], re-signed by the clerk (an
/// insider) and left unsigned beside it (an outsider).
fn hostile_manifests(w: &World, clerk: &Keys) -> Vec<std::path::PathBuf> {
    let f = w.write("src/report.txt", "report\n");
    let m = common::pack(&[&f], &w.join("stick"), "b", clerk, &[clerk], &[]);
    let text = std::fs::read_to_string(&m).expect("read");
    let bundle_id = text
        .lines()
        .find_map(|l| l.strip_prefix("bundle_id = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("bundle id")
        .to_string();
    let key = common::forge::key(&clerk.secret);
    let mut out = Vec::new();
    let edits = [
        (
            "marking",
            text.replace("marking = \"\"", &format!("marking = \"{EVIL_TOML}\"")),
        ),
        (
            "tool",
            text.replace("tool = \"pouch", &format!("tool = \"{EVIL_TOML}")),
        ),
        ("unknown key", format!("\"{EVIL_TOML}\" = 1\n{text}")),
        ("bad line", format!("{text}\n{EVIL}\n")),
        (
            "entry name",
            text.replace("report.txt\"", &format!("{EVIL_TOML}report.txt\"")),
        ),
    ];
    for (i, (_, edited)) in edits.iter().enumerate() {
        let name = format!("e{i}");
        let payload = w.join("stick/b.age");
        std::fs::copy(&payload, w.join(format!("stick/{name}.age"))).expect("copy");
        let edited = edited.replace("file = \"b.age\"", &format!("file = \"{name}.age\""));
        let signed = common::forge::signed_manifest(
            &w.join("stick"),
            &name,
            edited.as_bytes(),
            &bundle_id,
            &key,
        );
        out.push(signed);
        let unsigned = w.write(format!("loose/{name}.toml"), &edited);
        out.push(unsigned);
    }
    out
}

#[test]
fn no_command_prints_a_control_character_from_the_medium() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let manifests = hostile_manifests(&w, &clerk);
    // A stray file whose name holds controls, for audit to list.
    w.write(format!("stick/{EVIL}notes.txt"), "courier log");
    w.write(format!("stick/{EVIL}.toml"), "not a manifest");
    let trust: [&dyn AsRef<std::ffi::OsStr>; 2] = [&"--trust", &clerk.public];
    for m in &manifests {
        for json in [false, true] {
            let j: &[&dyn AsRef<std::ffi::OsStr>] = if json { &[&"--json"] } else { &[] };
            let label = |cmd: &str| format!("{cmd} {} json={json}", m.display());
            let mut c = run(&w, &[&"inspect", m]);
            c.args(j.iter().map(|a| a.as_ref()));
            sweep(&label("inspect"), c);
            let mut c = run(&w, &[&"inspect", m, trust[0], trust[1]]);
            c.args(j.iter().map(|a| a.as_ref()));
            sweep(&label("inspect --trust"), c);
            let mut c = run(
                &w,
                &[&"verify", m, trust[0], trust[1], &"-i", &clerk.identity],
            );
            c.args(j.iter().map(|a| a.as_ref()));
            sweep(&label("verify -i"), c);
            let dest = w.join("inbox");
            let mut c = run(
                &w,
                &[
                    &"unpack",
                    m,
                    trust[0],
                    trust[1],
                    &"-i",
                    &clerk.identity,
                    &"-d",
                    &dest,
                ],
            );
            c.args(j.iter().map(|a| a.as_ref()));
            sweep(&label("unpack"), c);
        }
        let out = w.join("resplit");
        std::fs::create_dir_all(&out).expect("mkdir");
        let c = run(
            &w,
            &[
                &"resplit",
                m,
                &"-o",
                &out,
                &"-s",
                &clerk.secret,
                &"--split",
                &"1M",
                trust[0],
                trust[1],
            ],
        );
        sweep("resplit", c);
    }
    for dir in ["stick", "loose"] {
        for json in [false, true] {
            let mut c = run(&w, &[&"audit", &w.join(dir), trust[0], trust[1]]);
            if json {
                c.arg("--json");
            }
            sweep(&format!("audit {dir} json={json}"), c);
        }
    }
    hostile_custody_files(&w, &clerk);
    let leaks = LEAKS.with(|l| l.take());
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// Receipts, ledgers, keyrings, configs and specs with controls in every
/// field a party or an editor could put them.
fn hostile_custody_files(w: &World, clerk: &Keys) {
    // A receipt signed by a trusted party (an insider), fields full of controls.
    let receipt = format!(
        "format_version = 1\nkind = \"receipt\"\nbundle_id = \"{EVIL_TOML}\"\nname = \"{EVIL_TOML}\"\n\
         sender = \"{EVIL_TOML}\"\nreceiver = \"{EVIL_TOML}\"\nmanifest_sha256 = \"{EVIL_TOML}\"\n\
         received = \"{EVIL_TOML}\"\nfiles = 1\ntotal_bytes = 1\nverdict = \"{EVIL_TOML}\"\n\
         receiver_key_id = \"{EVIL_TOML}\"\n"
    );
    let r = w.write("receipts/x.receipt.toml", &receipt);
    let key = common::forge::key(&clerk.secret);
    let sig = key
        .sign_with_comment(
            receipt.as_bytes(),
            &format!("pouch receipt bundle_id:{EVIL} name:{EVIL}"),
            "x",
        )
        .expect("sign");
    std::fs::write(pouch::signature::signature_path(&r), sig).expect("write");
    let trust: [&dyn AsRef<std::ffi::OsStr>; 2] = [&"--trust", &clerk.public];
    sweep(
        "receipt import",
        run(w, &[&"receipt", &"import", &r, trust[0], trust[1]]),
    );
    sweep(
        "audit receipts",
        run(w, &[&"audit", &w.join("receipts"), trust[0], trust[1]]),
    );
    // Ledgers: a chain of records whose strings are controls, and one whose
    // lines are not records at all.
    let record = |i: u64, prev: &str| {
        format!(
            "{{\"index\":{i},\"time\":\"{EVIL_TOML}\",\"event\":\"accepted\",\"bundle_id\":\"{EVIL_TOML}\",\
             \"name\":\"{EVIL_TOML}\",\"sender\":\"{EVIL_TOML}\",\"receiver\":\"{EVIL_TOML}\",\"sequence\":{},\
             \"vouched_by\":\"{EVIL_TOML}\",\"notes\":[\"{EVIL_TOML}\"],\"prev\":\"{prev}\"}}",
            i + 5
        )
    };
    let first = record(0, &"0".repeat(64));
    let second = record(1, &pouch::payload::hashing::sha256_hex(first.as_bytes()));
    let chained = w.write("ledgers/chained.jsonl", format!("{first}\n{second}\n"));
    let junk = w.write(
        "ledgers/junk.jsonl",
        format!("{{\"{EVIL_TOML}\": 1}}\n{EVIL}\n"),
    );
    let edited = w.write("ledgers/edited.jsonl", format!("{second}\n{first}\n"));
    for ledger in [&chained, &junk, &edited] {
        for cmd in ["show", "verify", "gaps"] {
            for json in [false, true] {
                let mut c = run(w, &[&"ledger", &cmd, &"--ledger", ledger]);
                if json {
                    c.arg("--json");
                }
                sweep(&format!("ledger {cmd} {} json={json}", ledger.display()), c);
            }
        }
        let c = run(
            w,
            &[
                &"audit",
                &w.join("stick"),
                &"--ledger",
                ledger,
                trust[0],
                trust[1],
            ],
        );
        sweep("audit --ledger", c);
    }
    // The operator's own files, edited badly or by someone else.
    let home = w.join("evil-home");
    std::fs::create_dir_all(&home).expect("mkdir");
    for (file, text) in [
        ("config.toml", format!("\"{EVIL_TOML}\" = 1\n")),
        (
            "keyring.toml",
            format!("format_version = 1\n[[party]]\nname = \"{EVIL_TOML}\"\n"),
        ),
    ] {
        std::fs::write(home.join(file), text).expect("write");
        sweep(
            &format!("config show ({file})"),
            run(w, &[&"config", &"show"]),
        );
        sweep(
            &format!("keyring list ({file})"),
            run(w, &[&"keyring", &"list"]),
        );
        std::fs::remove_file(home.join(file)).expect("rm");
    }
    let spec = w.write(
        "spec.toml",
        format!("\"{EVIL_TOML}\" = 1\nmarking = \"{EVIL_TOML}\"\n"),
    );
    let src = w.join("src/report.txt");
    let c = run(
        w,
        &[
            &"pack",
            &src,
            &"--dry-run",
            &"--spec",
            &spec,
            &"-r",
            &clerk.recipient,
        ],
    );
    sweep("pack --spec", c);
    assert_paths_exist(&[&chained, &junk, &edited]);
}

fn assert_paths_exist(paths: &[&Path]) {
    for p in paths {
        assert!(p.exists(), "{}", p.display());
    }
}
