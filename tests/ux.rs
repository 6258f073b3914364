//! The command line for people and scripts: config precedence, pack specs,
//! dry runs, JSON everywhere, completions, man pages, Ctrl-C, progress.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{pouch, Keys, World};
use predicates::str::contains;

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

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn home(d: &Path) -> std::path::PathBuf {
    let h = d.join("home");
    fs::create_dir_all(&h).expect("mkdir");
    h
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{key} = "))
            .map(|v| v.trim_matches('"').to_string())
    })
}

#[test]
fn every_command_has_help_with_an_example() {
    for sub in COMMANDS {
        let out = pouch().args(*sub).arg("--help").output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Example"),
            "{sub:?} --help: {text}"
        );
    }
}

#[test]
fn config_precedence_flag_over_config_over_default() {
    let w = World::new();
    let d = w.path();
    let k = w.keys("clerk");
    let h = home(d);
    fs::write(d.join("f.txt"), "f").expect("write");
    fs::create_dir(d.join("out")).expect("mkdir");
    let pack = |name: &str, extra: &[&str]| {
        let mut c = pouch();
        c.env("POUCH_HOME", &h)
            .arg("pack")
            .arg(d.join("f.txt"))
            .args(["--name", name, "-r", &k.recipient])
            .args(extra);
        c
    };
    // Default: no marking, and -o and -s are required.
    pack("a", &[])
        .assert()
        .code(2)
        .stderr(contains("no output folder"));
    pack(
        "a",
        &[
            "-o",
            d.join("out").to_str().expect("utf8"),
            "-s",
            k.secret.to_str().expect("utf8"),
        ],
    )
    .assert()
    .success();
    assert_eq!(
        field(
            &fs::read_to_string(d.join("out/a.toml")).expect("read"),
            "marking"
        )
        .as_deref(),
        Some("")
    );
    // Config fills in what the flags do not say.
    fs::write(
        h.join("config.toml"),
        format!(
            "marking = \"FROM-CONFIG\"\nsigning_key = \"{}\"\nout_dir = \"{}\"\nlevel = 5\n",
            k.secret.display(),
            d.join("out").display()
        ),
    )
    .expect("write");
    pack("b", &[]).assert().success();
    assert_eq!(
        field(
            &fs::read_to_string(d.join("out/b.toml")).expect("read"),
            "marking"
        )
        .as_deref(),
        Some("FROM-CONFIG")
    );
    pack("c", &["--marking", "FROM-FLAG"]).assert().success();
    assert_eq!(
        field(
            &fs::read_to_string(d.join("out/c.toml")).expect("read"),
            "marking"
        )
        .as_deref(),
        Some("FROM-FLAG")
    );
    let shown = pouch()
        .env("POUCH_HOME", &h)
        .args(["config", "show"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&shown.stdout);
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
    let v = json_of(
        &pouch()
            .env("POUCH_HOME", &h)
            .args(["config", "show", "--json"])
            .output()
            .expect("runs"),
    );
    assert_eq!(v["level"]["value"], "5");
    assert!(v["level"]["source"]
        .as_str()
        .expect("source")
        .starts_with("config"));
    let v = json_of(
        &pouch()
            .env("POUCH_HOME", &h)
            .args([
                "--ledger",
                "/tmp/elsewhere.jsonl",
                "config",
                "show",
                "--json",
            ])
            .output()
            .expect("runs"),
    );
    assert_eq!(v["ledger"]["source"], "flag");
    // Unknown keys are named, with the file.
    fs::write(h.join("config.toml"), "marking = \"x\"\ncolour = \"red\"\n").expect("write");
    pouch()
        .env("POUCH_HOME", &h)
        .args(["config", "show"])
        .assert()
        .code(2)
        .stderr(contains("colour"))
        .stderr(contains("config.toml"));
}

fn spec_world(w: &World) -> (Keys, std::path::PathBuf) {
    let d = w.path();
    let k = w.keys("clerk");
    let src = d.join("case");
    fs::create_dir_all(src.join("reports")).expect("mkdir");
    fs::create_dir_all(src.join("private")).expect("mkdir");
    fs::write(src.join("reports/a.pdf"), "pdf").expect("write");
    fs::write(src.join("reports/b.txt"), "txt").expect("write");
    fs::write(src.join("reports/c.pdf.tmp"), "tmp").expect("write");
    fs::write(src.join("private/d.pdf"), "secret").expect("write");
    fs::create_dir(d.join("out")).expect("mkdir");
    let spec = d.join("weekly.toml");
    fs::write(
        &spec,
        "sources = [\"case\"]\ninclude = [\"*.pdf\", \"*.txt\"]\nexclude = [\"*.tmp\", \"case/private\"]\nmarking = \"RESTRICTED\"\ndescription = \"weekly\"\nout_dir = \"out\"\nsplit = \"8K\"\n",
    )
    .expect("write");
    (k, spec)
}

#[test]
fn a_spec_drives_pack_with_include_and_exclude_and_flags_override_it() {
    let w = World::new();
    let d = w.path();
    let (k, spec) = spec_world(&w);
    pouch()
        .env("POUCH_HOME", home(d))
        .arg("pack")
        .arg("--spec")
        .arg(&spec)
        .args([
            "--name",
            "w",
            "--description",
            "from the flag",
            "-r",
            &k.recipient,
            "-s",
        ])
        .arg(&k.secret)
        .assert()
        .success();
    let text = fs::read_to_string(d.join("out/w.toml")).expect("read");
    assert!(
        text.contains("case/reports/a.pdf") && text.contains("case/reports/b.txt"),
        "{text}"
    );
    assert!(
        !text.contains(".tmp") && !text.contains("private"),
        "{text}"
    );
    assert_eq!(field(&text, "marking").as_deref(), Some("RESTRICTED"));
    assert_eq!(
        field(&text, "description").as_deref(),
        Some("from the flag")
    );
    assert!(
        text.contains("[[payload.parts]]"),
        "split from the spec: {text}"
    );
}

#[test]
fn dry_run_lists_and_writes_nothing() {
    let w = World::new();
    let d = w.path();
    let (k, spec) = spec_world(&w);
    let h = home(d);
    let out = pouch()
        .env("POUCH_HOME", &h)
        .arg("pack")
        .arg("--spec")
        .arg(&spec)
        .arg("--dry-run")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("case/reports/a.pdf")
            && text.contains("nothing was written")
            && text.contains("parts"),
        "{text}"
    );
    assert_eq!(fs::read_dir(d.join("out")).expect("ls").count(), 0);
    assert!(
        !h.join("ledger.jsonl").exists(),
        "a dry run records nothing"
    );
    // Unportable names are reported, with exit 2.
    fs::write(d.join("case/reports/CON"), "x").expect("write");
    let out = pouch()
        .env("POUCH_HOME", &h)
        .arg("pack")
        .arg(d.join("case"))
        .arg("--dry-run")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unportable: case/reports/CON"));
    // The annotated examples dry-run.
    for example in ["spec-weekly.toml", "spec-urgent.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests")
            .join(example);
        pouch()
            .env("POUCH_HOME", &h)
            .arg("pack")
            .arg("--spec")
            .arg(&path)
            .arg("--dry-run")
            .assert()
            .success()
            .stdout(contains("nothing was written"));
    }
    let _ = k;
}

#[test]
fn every_json_output_parses_with_its_documented_fields() {
    let w = World::new();
    let d = w.path();
    let k = w.keys("clerk");
    let h = home(d);
    let run = |args: &[&str]| {
        json_of(
            &pouch()
                .env("POUCH_HOME", &h)
                .args(args)
                .output()
                .expect("runs"),
        )
    };
    pouch()
        .env("POUCH_HOME", &h)
        .args(["keyring", "add", "self", "--sign-pub"])
        .arg(&k.public)
        .args(["--recipient", &k.recipient])
        .assert()
        .success();
    fs::write(d.join("f.txt"), "f").expect("write");
    fs::create_dir(d.join("out")).expect("mkdir");
    pouch()
        .env("POUCH_HOME", &h)
        .arg("pack")
        .arg(d.join("f.txt"))
        .arg("-o")
        .arg(d.join("out"))
        .args(["--name", "b", "--from", "self", "--to", "self", "-s"])
        .arg(&k.secret)
        .assert()
        .success();
    let m = d.join("out/b.toml");
    let m = m.to_str().expect("utf8");
    let v = run(&["inspect", m, "--json"]);
    assert!(
        v["manifest"]["bundle_id"].is_string()
            && v["signature"]["status"] == "trusted"
            && v["payload_present"] == true
    );
    let v = run(&["verify", m, "--json"]);
    for f in [
        "bundle_id",
        "manifest_sha256",
        "payload_size",
        "payload_sha256",
        "contents_checked",
        "files",
        "folders",
        "total_bytes",
    ] {
        assert!(!v[f].is_null(), "verify --json lacks {f}");
    }
    let dest = d.join("in");
    let v = run(&[
        "unpack",
        m,
        "-i",
        k.identity.to_str().expect("utf8"),
        "-d",
        dest.to_str().expect("utf8"),
        "--json",
    ]);
    for f in [
        "output",
        "bundle_id",
        "files",
        "missing",
        "flags",
        "receipt",
    ] {
        assert!(v.get(f).is_some(), "unpack --json lacks {f}: {v}");
    }
    let v = run(&["audit", d.join("out").to_str().expect("utf8"), "--json"]);
    assert_eq!(v["bundles"][0]["verdict"], "ok");
    assert_eq!(v["failed"], 0);
    let v = run(&["ledger", "show", "--json"]);
    let events: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["event"].as_str().expect("event"))
        .collect();
    assert_eq!(events, ["packed", "accepted"]);
    assert_eq!(v[0]["delivered"], false);
    let v = run(&["ledger", "verify", "--json"]);
    assert_eq!(v["records"], 2);
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
        let out = pouch().args(["completions", shell]).output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && text.contains("pouch")
                && text.contains("unpack")
                && text.len() > 1000,
            "{shell}"
        );
    }
    pouch()
        .arg("man")
        .assert()
        .success()
        .stdout(contains(".TH pouch"));
    let w = World::new();
    pouch()
        .arg("man")
        .arg("--out")
        .arg(w.path())
        .assert()
        .success();
    for page in [
        "pouch.1",
        "pouch-pack.1",
        "pouch-unpack.1",
        "pouch-ledger-verify.1",
    ] {
        let text =
            fs::read_to_string(w.path().join(page)).unwrap_or_else(|_| panic!("{page} missing"));
        assert!(text.contains(".TH"), "{page}");
    }
    if Path::new("/usr/bin/man").exists() {
        let out = Command::new("man")
            .arg("-l")
            .arg(w.path().join("pouch-pack.1"))
            .env("MANPAGER", "cat")
            .output()
            .expect("man");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Seal files"),
            "the page renders"
        );
    }
}

#[test]
fn ctrl_c_during_a_large_pack_exits_130_and_leaves_nothing() {
    let w = World::new();
    let d = w.path();
    let k = w.keys("clerk");
    let big = d.join("big");
    fs::create_dir(&big).expect("mkdir");
    fs::write(big.join("0.bin"), common::noise(64 << 20, 9)).expect("write");
    for i in 1..8 {
        fs::hard_link(big.join("0.bin"), big.join(format!("{i}.bin"))).expect("link");
    }
    fs::create_dir(d.join("out")).expect("mkdir");
    let child = Command::new(env!("CARGO_BIN_EXE_pouch"))
        .env("POUCH_HOME", home(d))
        .arg("pack")
        .arg(&big)
        .arg("-o")
        .arg(d.join("out"))
        .args(["--name", "b", "-r", &k.recipient, "-s"])
        .arg(&k.secret)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the payload's temporary file exists: the pack is under way.
    let started = std::time::Instant::now();
    while fs::read_dir(d.join("out")).expect("ls").count() == 0
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        panic!("the pack finished before the interrupt; make the input bigger");
    }
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let left: Vec<_> = fs::read_dir(d.join("out"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn progress_only_on_a_terminal_and_never_with_quiet() {
    let w = World::new();
    let d = w.path();
    let k = w.keys("clerk");
    fs::write(d.join("big.bin"), common::noise(8 << 20, 3)).expect("write");
    fs::create_dir(d.join("out")).expect("mkdir");
    let cmd = |name: &str, quiet: &str| {
        format!(
            "{} pack {} -o {} --name {name} -r {} -s {} {quiet}",
            env!("CARGO_BIN_EXE_pouch"),
            d.join("big.bin").display(),
            d.join("out").display(),
            k.recipient,
            k.secret.display()
        )
    };
    // Not a terminal: no bar.
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd("plain", ""))
        .env("POUCH_HOME", home(d))
        .output()
        .expect("sh");
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("packing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Under a pseudo-terminal (script): a bar.
    let script = |c: String| {
        Command::new("script")
            .args(["-qec", &c, "/dev/null"])
            .env("POUCH_HOME", home(d))
            .output()
            .expect("script")
    };
    let out = script(cmd("tty", ""));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("packing"), "{text}");
    let out = script(cmd("quiet", "-q"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !text.contains("packing") && !text.contains("sealed"),
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
        let out = pouch().args(*sub).arg("--help").output().expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
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
