//! The command line for people and scripts: config precedence, pack specs,
//! dry runs, JSON everywhere, completions, man pages, Ctrl-C, progress.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{fails, field, names, output, passes, pouch, stderr_of, stdout_of, Keys, World};

/// Every command that does something (subcommand groups name their members).
const COMMANDS: &[&[&str]] = &[
    &["keygen"],
    &["pack"],
    &["verify"],
    &["unpack"],
    &["inspect"],
    &["resplit"],
    &["audit"],
    &["keyring", "add"],
    &["keyring", "list"],
    &["keyring", "remove"],
    &["ledger", "show"],
    &["ledger", "verify"],
    &["ledger", "gaps"],
    &["receipt", "import"],
    &["config", "show"],
    &["completions"],
    &["man"],
    &["demo"],
];

/// The fields `verify --json` must report.
const VERIFY_FIELDS: [&str; 8] = [
    "bundle_id",
    "manifest_sha256",
    "payload_size",
    "payload_sha256",
    "contents_checked",
    "files",
    "folders",
    "total_bytes",
];

/// The fields `unpack --json` must report.
const UNPACK_FIELDS: [&str; 6] = [
    "output",
    "bundle_id",
    "files",
    "missing",
    "flags",
    "receipt",
];

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr_of(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout_of(out)))
}

/// `pouch` with these tests' own pouch home, `ux-home/` in the world.
fn ux(w: &World) -> assert_cmd::Command {
    w.home_dir("ux");
    w.home("ux")
}

/// `--help` of command `sub` (e.g. `["keyring", "add"]`).
fn help(sub: &[&str]) -> std::process::Output {
    let mut c = pouch();
    c.args(sub).arg("--help");
    output(c)
}

#[test]
fn every_command_has_help_with_an_example() {
    for sub in COMMANDS {
        let out = help(sub);
        let text = stdout_of(&out);
        assert!(
            out.status.success() && text.contains("Example"),
            "{sub:?} --help: {text}"
        );
    }
}

#[test]
fn config_precedence_flag_over_config_over_default() {
    let w = World::new();
    let k = w.keys("clerk");
    let h = w.home_dir("ux");
    let f = w.write("f.txt", "f");
    let out = w.dir("out");
    let pack = |name: &str, extra: &[&str]| {
        let mut c = args!(ux(&w); "pack", &f, "--name", name, "-r", &k.recipient);
        c.args(extra);
        c
    };
    let marking = |name: &str| {
        let text = fs::read_to_string(out.join(format!("{name}.toml"))).expect("read");
        field(&text, "marking")
    };
    // Default: no marking, and -o and -s are required.
    fails(pack("a", &[]), 2, &["no output folder"]);
    let (out_dir, key) = (
        out.to_str().expect("utf8"),
        k.secret.to_str().expect("utf8"),
    );
    passes(pack("a", &["-o", out_dir, "-s", key]), &[]);
    assert_eq!(marking("a").as_deref(), Some(""));
    // Config fills in what the flags do not say.
    fs::write(
        h.join("config.toml"),
        format!(
            "marking = \"FROM-CONFIG\"\nsigning_key = \"{}\"\nout_dir = \"{}\"\nlevel = 5\n",
            k.secret.display(),
            out.display()
        ),
    )
    .expect("write");
    passes(pack("b", &[]), &[]);
    assert_eq!(marking("b").as_deref(), Some("FROM-CONFIG"));
    passes(pack("c", &["--marking", "FROM-FLAG"]), &[]);
    assert_eq!(marking("c").as_deref(), Some("FROM-FLAG"));
    let text = stdout_of(&output(args!(ux(&w); "config", "show")));
    assert!(
        text.lines().any(|l| l.starts_with("marking")
            && l.contains("FROM-CONFIG")
            && l.contains("(config ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("media") && l.contains("(default)")),
        "{text}"
    );
    let v = json_of(&output(args!(ux(&w); "config", "show", "--json")));
    assert_eq!(v["level"]["value"], "5");
    assert!(v["level"]["source"]
        .as_str()
        .expect("source")
        .starts_with("config"));
    let elsewhere = args!(ux(&w); "--ledger", "/tmp/elsewhere.jsonl", "config", "show", "--json");
    let v = json_of(&output(elsewhere));
    assert_eq!(v["ledger"]["source"], "flag");
    // Unknown keys are named, with the file.
    fs::write(h.join("config.toml"), "marking = \"x\"\ncolour = \"red\"\n").expect("write");
    fails(
        args!(ux(&w); "config", "show"),
        2,
        &["colour", "config.toml"],
    );
}

/// A world with the clerk's keys, a case folder to pack with a spec, and the
/// spec `weekly.toml`.
fn spec_world() -> (World, Keys, PathBuf) {
    let w = World::new();
    let k = w.keys("clerk");
    for (file, text) in [
        ("reports/a.pdf", "pdf"),
        ("reports/b.txt", "txt"),
        ("reports/c.pdf.tmp", "tmp"),
        ("private/d.pdf", "secret"),
    ] {
        w.write(Path::new("case").join(file), text);
    }
    // Enough incompressible bytes for the spec's split to make two parts.
    w.write("case/reports/e.pdf", common::noise(12 << 10, 5));
    w.dir("out");
    let spec = w.write(
        "weekly.toml",
        "sources = [\"case\"]\ninclude = [\"*.pdf\", \"*.txt\"]\nexclude = [\"*.tmp\", \"case/private\"]\nmarking = \"RESTRICTED\"\ndescription = \"weekly\"\nout_dir = \"out\"\nsplit = \"8K\"\n",
    );
    (w, k, spec)
}

#[test]
fn a_spec_drives_pack_with_include_and_exclude_and_flags_override_it() {
    let (w, k, spec) = spec_world();
    let flags = ["--name", "w", "--description", "from the flag"];
    let mut pack = args!(ux(&w); "pack", "--spec", &spec, "-r", &k.recipient, "-s", &k.secret);
    passes(pack.args(flags), &[]);
    let text = fs::read_to_string(w.join("out/w.toml")).expect("read");
    assert!(
        text.contains("case/reports/a.pdf") && text.contains("case/reports/b.txt"),
        "{text}"
    );
    assert!(
        !text.contains(".tmp") && !text.contains("private"),
        "{text}"
    );
    for (key, value) in [("marking", "RESTRICTED"), ("description", "from the flag")] {
        assert_eq!(field(&text, key).as_deref(), Some(value));
    }
    assert!(
        text.contains("[[payload.parts]]"),
        "split from the spec: {text}"
    );
}

#[test]
fn dry_run_lists_and_writes_nothing() {
    let (w, k, spec) = spec_world();
    let h = w.home_dir("ux");
    let dry = |extra: &[&str]| {
        let mut c = args!(ux(&w); "pack", "--dry-run", "-r", &k.recipient);
        output(c.args(extra))
    };
    let out = dry(&[
        "--spec",
        spec.to_str().expect("utf-8"),
        "--from",
        "bka-zd",
        "--to",
        "x",
    ]);
    let text = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        text.contains("case/reports/a.pdf")
            && text.contains("nothing was written")
            && text.contains("parts"),
        "{text}"
    );
    // The whole pre-flight: recipients, the channel's next number, the room.
    for shown in [
        "recipient: ",
        "(x25519)",
        "channel: bka-zd:x, sequence number 1",
        "room: needs",
    ] {
        assert!(text.contains(shown), "{shown}: {text}");
    }
    // Without recipients, pack would refuse, and so does the dry run.
    let none = output(args!(ux(&w); "pack", "--spec", &spec, "--dry-run"));
    assert_eq!(none.status.code(), Some(2), "{}", stdout_of(&none));
    assert!(stderr_of(&none).contains("no recipients"));
    assert_eq!(names(&w.join("out")).len(), 0);
    assert!(
        !h.join("ledger.jsonl").exists(),
        "a dry run records nothing"
    );
    // Unportable names are reported, with exit 2.
    w.write("case/reports/CON", "x");
    let out = dry(&[w.join("case").to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout_of(&out).contains("unportable: case/reports/CON"));
    // The annotated examples dry-run (they ask for post-quantum recipients,
    // and name keyring parties).
    let pq = w.keys_pq("pq");
    for party in ["fedpol-ic", "europol-liaison"] {
        let add = args!(ux(&w); "keyring", "add", party, "--recipient", &pq.recipient);
        passes(add, &[]);
    }
    for example in ["spec-weekly.toml", "spec-urgent.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests")
            .join(example);
        // Their out_dir is a stick that is not mounted here.
        let out = w.join("out");
        let dry = args!(ux(&w); "pack", "--spec", &path, "--dry-run", "-o", &out);
        passes(dry, &["nothing was written"]);
    }
}

#[test]
fn every_json_output_parses_with_its_documented_fields() {
    let w = World::new();
    let k = w.keys("clerk");
    let run = |args: &[&str]| {
        let mut c = ux(&w);
        c.args(args);
        json_of(&output(c))
    };
    let add = args!(ux(&w); "keyring", "add", "self", "--sign-pub", &k.public);
    passes(args!(add; "--recipient", &k.recipient), &[]);
    let f = w.write("f.txt", "f");
    let out = w.dir("out");
    let pack = args!(ux(&w); "pack", &f, "-o", &out, "--name", "b", "-s", &k.secret);
    passes(args!(pack; "--from", "self", "--to", "self"), &[]);
    let m = w.join("out/b.toml");
    let m = m.to_str().expect("utf8");
    let v = run(&["inspect", m, "--json"]);
    assert!(
        v["manifest"]["bundle_id"].is_string()
            && v["signature"]["status"] == "trusted"
            && v["payload_present"] == true
    );
    let v = run(&["verify", m, "--json"]);
    for f in VERIFY_FIELDS {
        assert!(!v[f].is_null(), "verify --json lacks {f}");
    }
    let (id, dest) = (k.identity.to_str().expect("utf8"), w.join("in"));
    let v = run(&[
        "unpack",
        m,
        "-i",
        id,
        "-d",
        dest.to_str().expect("utf8"),
        "--json",
    ]);
    for f in UNPACK_FIELDS {
        assert!(v.get(f).is_some(), "unpack --json lacks {f}: {v}");
    }
    let v = run(&["audit", out.to_str().expect("utf8"), "--json"]);
    assert_eq!(v["bundles"][0]["verdict"], "ok");
    assert_eq!(v["failed"], 0);
    let v = run(&["ledger", "show", "--json"]);
    let events: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["event"].as_str().expect("event"))
        .collect();
    // Each commit: its intent, then its settlement naming the intent.
    assert_eq!(events, ["reserved", "packed", "accepting", "accepted"]);
    assert_eq!(
        (v[1]["intent"].as_u64(), v[3]["intent"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(v[1]["delivered"], false);
    let v = run(&["ledger", "verify", "--json"]);
    assert_eq!(v["records"], 4);
    let v = run(&["ledger", "gaps", "--json"]);
    assert_eq!(v["self:self"], serde_json::json!([]));
    let v = run(&["keyring", "list", "--json"]);
    assert_eq!(v[0]["name"], "self");
    let v = run(&["config", "show", "--json"]);
    assert!(v["home"]["value"].is_string());
}

#[test]
fn completions_for_each_shell_and_man_pages() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = output(pouch!("completions", shell));
        let text = stdout_of(&out);
        assert!(
            out.status.success()
                && text.contains("pouch")
                && text.contains("unpack")
                && text.len() > 1000,
            "{shell}"
        );
    }
    passes(pouch!("man"), &[".TH pouch"]);
    let w = World::new();
    passes(pouch!("man", "--out", w.path()), &[]);
    for page in [
        "pouch.1",
        "pouch-pack.1",
        "pouch-unpack.1",
        "pouch-ledger-verify.1",
    ] {
        let text = fs::read_to_string(w.join(page)).unwrap_or_else(|_| panic!("{page} missing"));
        assert!(text.contains(".TH"), "{page}");
        for section in [
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            "POUCH_HOME",
        ] {
            assert!(text.contains(section), "{page} has {section}");
        }
    }
    // man renders the page (tests/run installs man-db; a missing man fails).
    let mut man =
        args!(Command::new(common::require("man", "man-db")); "-l", w.join("pouch-pack.1"));
    let out = man.env("MANPAGER", "cat").output().expect("man");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("Seal files"), "the page renders");
    assert!(
        shown.contains("EXIT STATUS") && shown.contains("Interrupted"),
        "{shown}"
    );
}

#[test]
fn ctrl_c_during_a_large_pack_exits_130_and_leaves_nothing() {
    let w = World::new();
    let big = w.dir("big");
    fs::write(big.join("0.bin"), common::noise(64 << 20, 9)).expect("write");
    for i in 1..8 {
        fs::hard_link(big.join("0.bin"), big.join(format!("{i}.bin"))).expect("link");
    }
    let k = w.keys("clerk");
    let out = w.dir("out");
    let pouch = Command::new(env!("CARGO_BIN_EXE_pouch"));
    let pack = args!(pouch; "pack", &big, "-o", &out, "--name", "b");
    let child = args!(pack; "-r", &k.recipient, "-s", &k.secret)
        .env("POUCH_HOME", w.home_dir("ux"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the payload's temporary file exists: the pack is under way.
    let started = std::time::Instant::now();
    while fs::read_dir(&out).expect("ls").count() == 0
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    let done = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&done.stderr);
    if done.status.success() {
        panic!("the pack finished before the interrupt; make the input bigger");
    }
    assert_eq!(done.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let left = names(&out);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn progress_only_on_a_terminal_and_never_with_quiet() {
    let w = World::new();
    let k = w.keys("clerk");
    let big = w.write("big.bin", common::noise(8 << 20, 3));
    let out = w.dir("out");
    let cmd = |name: &str, quiet: &str| {
        format!(
            "{} pack {} -o {} --name {name} -r {} -s {} {quiet}",
            env!("CARGO_BIN_EXE_pouch"),
            big.display(),
            out.display(),
            k.recipient,
            k.secret.display()
        )
    };
    let home = w.home_dir("ux");
    // Not a terminal: no bar.
    let mut sh = args!(Command::new("sh"); "-c", cmd("plain", ""));
    let plain = sh.env("POUCH_HOME", &home).output().expect("sh");
    assert!(plain.status.success());
    assert!(
        !stderr_of(&plain).contains("packing"),
        "{}",
        stderr_of(&plain)
    );
    // Under a pseudo-terminal (script): a bar.
    let script = |c: String| {
        Command::new("script")
            .args(["-qec", &c, "/dev/null"])
            .env("POUCH_HOME", &home)
            .output()
            .expect("script")
    };
    let tty = script(cmd("tty", ""));
    let text = stdout_of(&tty);
    assert!(tty.status.success() && text.contains("packing"), "{text}");
    let quiet = script(cmd("quiet", "-q"));
    let text = stdout_of(&quiet);
    assert!(
        quiet.status.success() && !text.contains("packing") && !text.contains("sealed"),
        "{text}"
    );
}

#[test]
fn the_readme_documents_every_flag_of_every_command() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let mut missing = Vec::new();
    for sub in COMMANDS {
        let name = format!("pouch {}", sub.join(" "));
        if !readme.contains(&name) {
            missing.push(format!("command `{name}`"));
        }
        let help = stdout_of(&help(sub));
        for word in help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if word.starts_with("--")
                && word.len() > 3
                && word != "--help"
                && !readme.contains(word)
            {
                missing.push(format!("{name} {word}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "the README does not mention: {missing:?}"
    );
}

/// The payload, a part or the signature given where the manifest goes is
/// named for what it is, with the manifest to pass instead (exit 2): not
/// reported as a damaged bundle to ask the sender for again.
#[test]
fn a_bundles_other_files_given_as_its_manifest_are_named() {
    let w = World::new();
    let k = w.keys("clerk");
    w.write("case/big.bin", common::noise(10 << 10, 4));
    let whole = w.pack(&[&w.join("case")], "w", &k, &[&k], &[]);
    let split = w.pack(&[&w.join("case")], "s", &k, &[&k], &["--split", "4K"]);
    let out = w.join("out");
    let dest = w.join("dest");
    for (file, manifest) in [
        ("w.age", &whole),
        ("w.toml.minisig", &whole),
        ("s.age.001", &split),
        ("s.age.002", &split),
    ] {
        let given = out.join(file);
        let pass = format!("pass {}", manifest.file_name().unwrap().to_string_lossy());
        for cmd in [
            common::verify_cmd(&given, &k),
            common::unpack_cmd(&given, &k, &k, &dest),
            pouch!("inspect", &given),
        ] {
            let refused = fails(cmd, 2, &[&pass]);
            refused.stderr(predicates::prelude::PredicateBooleanExt::not(
                predicates::str::contains("ask the sender"),
            ));
        }
        let json = output(args!(common::verify_cmd(&given, &k); "--json"));
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON error");
        assert_eq!(v["error"]["kind"], "wrong_file", "{v}");
        assert_eq!(json.status.code(), Some(2));
    }
    assert!(!dest.exists(), "nothing was unpacked");
    passes(common::verify_cmd(&split, &k), &[]);
}

/// Every error kind under `--json` is one the README's table documents.
#[test]
fn json_error_kinds_are_documented() {
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let w = World::new();
    let k = w.keys("clerk");
    let m = w.write("out/x.toml", "not a manifest");
    for (cmd, kind) in [
        (common::verify_cmd(&m, &k), "bad_signature"),
        (
            pouch!("verify", w.join("nothing.toml"), "--trust", &k.public),
            "io",
        ),
        (
            pouch!("verify", &m, "--insecure-skip-signature"),
            "bad_manifest",
        ),
    ] {
        let out = output(args!(cmd; "--json"));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
        let found = v["error"]["kind"].as_str().expect("a kind").to_string();
        assert_eq!(found, kind, "{v}");
        assert!(
            readme.contains(&format!("`{found}`")),
            "{found} is documented"
        );
    }
    // And every kind the code can give: the arms of `Error::kind`.
    let code =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/error.rs")).expect("source");
    let body = code
        .split("pub fn kind(&self)")
        .nth(1)
        .and_then(|rest| rest.split("pub fn hint").next())
        .expect("Error::kind");
    let kinds: Vec<&str> = body
        .split("=> \"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(kinds.len() > 20, "{kinds:?}");
    for kind in kinds {
        assert!(
            readme.contains(&format!("`{kind}`")),
            "{kind} is documented"
        );
    }
}
