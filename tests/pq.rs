//! Post-quantum sealing (age's `mlkem768x25519` recipients) end to end:
//! the round trip through the binary with two post-quantum recipients, the
//! refusal to mix them with classic ones, `--require-pq` (flag, spec and
//! config), `audit --require-pq`, the keyring, and interoperability with
//! typage (the npm package `age-encryption`, a second, independent
//! implementation by age's author) in both directions.
//!
//! typage runs on the machine's Node.js from `tests/typage/`; the first test
//! that needs it runs `npm ci` there when `node_modules` is missing. A missing
//! `node` or `npm` fails the tests, never skips them.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;

use common::forge;
use common::{assert_same_tree, ok, pack, pouch, rich_tree, run, verify, World};

const KIND_PQ: &str = "kind = \"mlkem768x25519\"";

/// What most tests start from: a world with a case tree, a clerk (classic
/// age key, signing key) and a party with a post-quantum age key.
struct Setup {
    w: World,
    case: PathBuf,
    clerk: common::Keys,
    pq: common::Keys,
}

fn world() -> Setup {
    let w = World::new();
    let case = rich_tree(w.path());
    let clerk = w.keys("clerk");
    let pq = w.keys_pq("pq");
    Setup { w, case, clerk, pq }
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.w.join(name)
    }

    /// A new, empty folder.
    fn folder(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        fs::create_dir(&p).expect("mkdir");
        p
    }
}

/// `pouch unpack M -i IDENTITY --trust PUB -d DEST EXTRA...` into a new DEST.
fn unpack(m: &Path, identity: &Path, trust: &Path, dest: &Path, extra: &[&str]) -> Output {
    fs::create_dir(dest).expect("mkdir");
    pouch()
        .arg("unpack")
        .arg(m)
        .arg("-i")
        .arg(identity)
        .arg("--trust")
        .arg(trust)
        .arg("-d")
        .arg(dest)
        .args(extra)
        .output()
        .expect("runs")
}

/// `pouch pack SOURCE -o OUT -s KEY ARGS...`, for refusals.
fn pack_with(source: &Path, out: &Path, key: &Path, args: &[&OsStr]) -> Output {
    pouch()
        .arg("pack")
        .arg(source)
        .arg("-o")
        .arg(out)
        .arg("-s")
        .arg(key)
        .args(args)
        .output()
        .expect("runs")
}

/// `pouch audit STICK --trust PUB EXTRA...`.
fn audit(stick: &Path, trust: &Path, extra: &[&str]) -> Output {
    pouch()
        .arg("audit")
        .arg(stick)
        .arg("--trust")
        .arg(trust)
        .args(extra)
        .output()
        .expect("runs")
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The age header of a payload: everything up to and including the MAC line.
fn age_header(payload: &Path) -> String {
    let bytes = fs::read(payload).expect("read payload");
    let mac = bytes
        .windows(5)
        .position(|w| w == b"\n--- ")
        .expect("a MAC line");
    let end = mac
        + 1
        + bytes[mac + 1..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("eol")
        + 1;
    String::from_utf8(bytes[..end].to_vec()).expect("the header is text")
}

#[test]
fn a_bundle_for_two_post_quantum_recipients_opens_for_each() {
    let w = World::new();
    let d = w.path();
    let case = rich_tree(d);
    let clerk = w.keys("clerk");
    let a = w.keys_pq("a");
    let b = w.keys_pq("b");
    for k in [&a, &b] {
        assert!(k.recipient.starts_with("age1pq1"), "{}", k.recipient);
        assert_eq!(k.recipient.len(), 1959);
        let id = fs::read_to_string(&k.identity).expect("identity");
        assert!(id.contains("\nAGE-SECRET-KEY-PQ-1"), "{id}");
        assert!(id.contains(&format!("# public key: {}", k.recipient)));
    }
    let out = d.join("out");
    let m = pack(&[&case], &out, "pq2", &clerk, &[&a, &b], &["--require-pq"]);

    let text = fs::read_to_string(&m).expect("manifest");
    assert_eq!(text.matches(KIND_PQ).count(), 2, "{text}");

    let inspect = pouch()
        .arg("inspect")
        .arg(&m)
        .arg("--trust")
        .arg(&clerk.public)
        .output()
        .expect("runs");
    assert!(inspect.status.success(), "{}", stderr_of(&inspect));
    let shown = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        shown.contains("recipients   2 (post-quantum): mlkem768x25519 "),
        "{shown}"
    );
    let json = pouch()
        .args(["inspect", "--json"])
        .arg(&m)
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["post_quantum"], true);
    assert_eq!(v["manifest"]["recipients"][1]["kind"], "mlkem768x25519");

    for (who, key) in [("a", &a), ("b", &b)] {
        ok(who, verify(&m, &clerk.public, Some(&key.identity)));
        let dest = d.join(format!("inbox-{who}"));
        let extra = ["--allow-replay"];
        ok(who, unpack(&m, &key.identity, &clerk.public, &dest, &extra));
        assert_same_tree(&case, &dest.join("pq2/case 0142"));
    }

    // A classic identity is not one of them: exit 1, naming the recipients.
    let out = verify(&m, &clerk.public, Some(&clerk.identity));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));

    // The cost: each post-quantum stanza is the 1,120-byte encapsulated key
    // and the 32-byte sealed file key, in base64 with the stanza's framing.
    let header = age_header(&d.join("out/pq2.age"));
    let lines: Vec<&str> = header.split_inclusive('\n').collect();
    let pq_stanzas = lines
        .iter()
        .filter(|l| l.starts_with("-> mlkem768x25519 "))
        .count();
    assert_eq!(pq_stanzas, 2, "{header}");
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("-> mlkem768x25519 ") {
            let size = l.len() + lines[i + 1].len();
            assert_eq!(size, 1557, "one post-quantum stanza, in bytes");
        }
    }
    eprintln!(
        "age header: {} bytes for two post-quantum recipients (1557 bytes per stanza)",
        header.len()
    );
}

#[test]
fn post_quantum_and_classic_recipients_are_never_mixed() {
    let w = world();
    let (d, case, clerk, pq) = (w.w.path(), &w.case, &w.clerk, &w.pq);
    let out = w.folder("out");
    let args = ["-r", &pq.recipient, "-r", &clerk.recipient].map(OsStr::new);
    let run = pack_with(case, &out, &clerk.secret, &args);
    assert_eq!(run.status.code(), Some(2));
    let err = stderr_of(&run);
    assert!(err.contains("cannot mix post-quantum"), "{err}");
    assert!(err.contains("pouch keygen --pq"), "{err}");
    assert!(
        entries(&out).is_empty(),
        "nothing written: {:?}",
        entries(&out)
    );

    // The same through a recipients file holding both kinds.
    let both = d.join("both.txt");
    fs::write(
        &both,
        format!("# two kinds\n{}\n{}\n", pq.recipient, clerk.recipient),
    )
    .expect("write");
    let run = pack_with(
        case,
        &out,
        &clerk.secret,
        &["-R".as_ref(), both.as_os_str()],
    );
    assert_eq!(run.status.code(), Some(2), "{}", stderr_of(&run));
    assert!(stderr_of(&run).contains("cannot mix post-quantum"));
    assert!(entries(&out).is_empty());
}

#[test]
fn require_pq_refuses_classic_recipients_from_flag_spec_and_config() {
    let w = world();
    let (d, case, clerk, pq) = (w.w.path(), &w.case, &w.clerk, &w.pq);
    let out = w.folder("out");
    let spec = d.join("spec.toml");
    fs::write(&spec, "require_pq = true\n").expect("write spec");
    // A classic bundle, made before anything requires post-quantum.
    pack(&[case], &d.join("classic"), "c1", clerk, &[clerk], &[]);

    let attempt = |recipient: &str, extra: Option<&OsStr>, config: bool| {
        let home = common::test_home();
        fs::create_dir_all(&home).expect("home");
        let config_path = home.join("config.toml");
        if config {
            fs::write(&config_path, "require_pq = true\n").expect("write config");
        } else {
            let _ = fs::remove_file(&config_path);
        }
        let mut args = vec![OsStr::new("-r"), OsStr::new(recipient)];
        args.extend(extra);
        pack_with(case, &out, &clerk.secret, &args)
    };
    let flag = OsStr::new("--require-pq");
    let spec_arg = OsString::from(format!("--spec={}", spec.display()));
    for (what, extra, config) in [
        ("flag", Some(flag), false),
        ("spec", Some(spec_arg.as_os_str()), false),
        ("config", None, true),
    ] {
        let run = attempt(&clerk.recipient, extra, config);
        assert_eq!(run.status.code(), Some(2), "{what}: {}", stderr_of(&run));
        let err = stderr_of(&run);
        assert!(
            err.contains("post-quantum recipients are required"),
            "{what}: {err}"
        );
        assert!(entries(&out).is_empty(), "{what}: nothing written");
    }
    // With a post-quantum recipient each of them lets a bundle through.
    for (n, (what, extra, config)) in [
        ("flag", Some(flag), false),
        ("spec", Some(spec_arg.as_os_str()), false),
        ("config", None, true),
    ]
    .into_iter()
    .enumerate()
    {
        let run = attempt(&pq.recipient, extra, config);
        assert!(run.status.success(), "{what}: {}", stderr_of(&run));
        assert_eq!(entries(&out).len(), 3 * (n + 1), "{what}: a bundle");
    }

    // The config (still in place) is what config show reports.
    let show = pouch()
        .args(["config", "show", "--json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(v["require_pq"]["value"], "true", "{v}");
    let source = v["require_pq"]["source"].as_str().expect("a source");
    assert!(source.starts_with("config"), "{source}");

    // And audit takes it from the config too: the classic bundle fails.
    let report = audit(&d.join("classic"), &clerk.public, &[]);
    assert_eq!(report.status.code(), Some(1), "{}", stderr_of(&report));
    assert!(
        String::from_utf8_lossy(&report.stdout).contains("not post-quantum"),
        "{}",
        String::from_utf8_lossy(&report.stdout)
    );
}

#[test]
fn audit_flags_bundles_that_are_not_post_quantum() {
    let w = world();
    let (d, case, clerk, pq) = (w.w.path(), &w.case, &w.clerk, &w.pq);
    let stick = d.join("stick");
    pack(&[case], &stick, "classic", clerk, &[clerk], &[]);
    pack(&[case], &stick, "quantum", clerk, &[pq], &[]);

    // Without the flag both pass, and the table says which is which.
    let plain = audit(&stick, &clerk.public, &[]);
    assert!(plain.status.success(), "{}", stderr_of(&plain));
    let table = String::from_utf8_lossy(&plain.stdout).into_owned();
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .to_string()
    };
    assert!(line("classic").contains(" no "), "{table}");
    assert!(line("quantum").contains(" yes "), "{table}");

    // With it the classic bundle fails, and only that one.
    let strict = audit(&stick, &clerk.public, &["--require-pq", "--json"]);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr_of(&strict));
    let v: serde_json::Value = serde_json::from_slice(&strict.stdout).expect("JSON");
    let bundles = v["bundles"].as_array().expect("bundles");
    let row = |name: &str| {
        bundles
            .iter()
            .find(|b| b["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(row("classic")["post_quantum"], false);
    assert_eq!(row("classic")["verdict"], "failed");
    assert!(row("classic")["problems"][0]
        .as_str()
        .expect("a problem")
        .contains("not post-quantum"));
    assert_eq!(row("quantum")["post_quantum"], true);
    assert_eq!(row("quantum")["verdict"], "ok");
    assert_eq!(v["failed"], 1);
}

#[test]
fn a_low_order_share_in_a_signed_bundle_is_refused_and_dest_stays_as_it_was() {
    let w = world();
    let m = pack(
        &[&w.case],
        &w.path("orig"),
        "b1",
        &w.clerk,
        &[&w.pq],
        &["--seal-names"],
    );
    let manifest =
        pouch::format::manifest::Manifest::parse(&fs::read(&m).expect("read"), &m).expect("parse");
    // Replace the X25519 part of the stanza's encapsulated key (its last 32
    // bytes) with the identity point, whose shared secret is all zeros, and
    // have the clerk's key sign the result: only the age layer can refuse it.
    let payload = fs::read(m.with_extension("age")).expect("payload");
    let text = String::from_utf8_lossy(&payload[..4096]).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("-> mlkem768x25519 "))
        .expect("a post-quantum stanza");
    let enc = line.trim_start_matches("-> mlkem768x25519 ");
    let mut raw = base64_decode(enc);
    let n = raw.len();
    raw[n - 32..].fill(0);
    let evil_line = format!("-> mlkem768x25519 {}", base64_encode(&raw));
    let start = payload
        .windows(line.len())
        .position(|x| x == line.as_bytes())
        .expect("found");
    let evil = [
        &payload[..start],
        evil_line.as_bytes(),
        &payload[start + line.len()..],
    ]
    .concat();
    let forged = w.folder("forged");
    let m2 = forge::bundle_from_payload(
        &forged,
        "b1",
        &evil,
        manifest.contents.clone(),
        &w.pq.recipient,
        &w.clerk.secret,
    );
    let dest = w.path("inbox");
    let out = unpack(&m2, &w.pq.identity, &w.clerk.public, &dest, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("age: "), "{}", stderr_of(&out));
    // Not "Header MAC is invalid": the stanza is refused before the MAC.
    assert!(
        stderr_of(&out).contains("Header is invalid"),
        "{}",
        stderr_of(&out)
    );
    assert!(entries(&dest).is_empty(), "DEST as it was");
    let out = verify(&m2, &w.clerk.public, Some(&w.pq.identity));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::prelude::BASE64_STANDARD_NO_PAD
        .decode(s)
        .expect("base64")
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::prelude::BASE64_STANDARD_NO_PAD.encode(b)
}

#[test]
fn a_manifest_that_claims_post_quantum_for_a_classic_payload_fails_without_a_key() {
    let w = World::new();
    let d = w.path();
    let case = rich_tree(d);
    let clerk = w.keys("clerk");
    let stick = d.join("stick");
    let m = pack(&[&case], &stick, "liar", &clerk, &[&clerk], &[]);
    // The clerk's key signs a manifest that says post-quantum, around a
    // payload sealed to an X25519 recipient.
    let text = fs::read_to_string(&m)
        .expect("manifest")
        .replace("kind = \"x25519\"", KIND_PQ);
    let manifest =
        pouch::format::manifest::Manifest::parse(text.as_bytes(), &m).expect("still valid");
    assert!(manifest.is_post_quantum());
    forge::signed_manifest(
        &stick,
        "liar",
        text.as_bytes(),
        &manifest.bundle_id,
        &forge::key(&clerk.secret),
    );

    let out = verify(&m, &clerk.public, None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains(
            "seals the file key to [x25519], but the signed manifest lists [mlkem768x25519]"
        ),
        "{err}"
    );
    let report = audit(&stick, &clerk.public, &["--json"]);
    assert_eq!(report.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert_eq!(v["bundles"][0]["verdict"], "failed");
}

#[test]
fn a_keyring_party_can_hold_a_post_quantum_recipient() {
    let w = World::new();
    let d = w.path();
    let case = rich_tree(d);
    let clerk = w.keys("clerk");
    let pq = w.keys_pq("fedpol");
    pouch()
        .args(["keyring", "add", "fedpol-ic", "--recipient", &pq.recipient])
        .assert()
        .success();
    let list = pouch()
        .args(["keyring", "list", "--json"])
        .output()
        .expect("runs");
    assert!(list.status.success(), "{}", stderr_of(&list));
    let parties: serde_json::Value = serde_json::from_slice(&list.stdout).expect("JSON");
    assert_eq!(parties[0]["name"], "fedpol-ic", "{parties}");
    assert_eq!(parties[0]["recipients"][0], pq.recipient.as_str());

    // The party's post-quantum key and a classic -r do not mix either.
    let out = d.join("refused");
    fs::create_dir(&out).expect("mkdir");
    let args = ["--to", "fedpol-ic", "-r", &clerk.recipient].map(OsStr::new);
    let run = pack_with(&case, &out, &clerk.secret, &args);
    assert_eq!(run.status.code(), Some(2), "{}", stderr_of(&run));
    assert!(stderr_of(&run).contains("cannot mix post-quantum"));
    assert!(entries(&out).is_empty());

    let m = w.pack(
        &[&case],
        "b1",
        &clerk,
        &[],
        &["--to", "fedpol-ic", "--require-pq"],
    );
    let text = fs::read_to_string(&m).expect("manifest");
    assert_eq!(text.matches(KIND_PQ).count(), 1, "{text}");
}

// ---------------------------------------------------------------------------
// typage

/// `tests/typage/typage.mjs`, with typage installed beside it.
fn typage() -> Command {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    let dir = READY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/typage");
        common::require("node", "nodejs");
        let version = Command::new("node")
            .arg("--version")
            .output()
            .expect("node runs");
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let mut numbers = version
            .trim_start_matches('v')
            .split('.')
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        assert!(
            (major, minor) >= (20, 19),
            "typage needs Node.js 20.19 or later, found {version}"
        );
        // Installed, at the pinned version (a stale node_modules is redone).
        let json = |p: PathBuf| -> Option<serde_json::Value> {
            serde_json::from_str(&fs::read_to_string(p).ok()?).ok()
        };
        let wanted = json(dir.join("package.json")).expect("tests/typage/package.json");
        let installed = json(dir.join("node_modules/age-encryption/package.json"));
        let current =
            installed.is_some_and(|v| v["version"] == wanted["dependencies"]["age-encryption"]);
        if !current {
            let npm = common::require("npm", "npm");
            let out = Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .output()
                .expect("npm runs");
            assert!(
                out.status.success(),
                "npm ci in tests/typage failed (it needs the npm registry): {}",
                stderr_of(&out)
            );
        }
        dir
    });
    let mut c = Command::new("node");
    c.arg(dir.join("typage.mjs"));
    c
}

#[test]
fn typage_opens_a_payload_pouch_sealed_to_a_typage_key() {
    let w = World::new();
    let d = w.path();
    let case = rich_tree(d);
    let clerk = w.keys("clerk");
    let (identity, recipients) = (d.join("typage.identity"), d.join("typage.recipient"));
    let mut c = typage();
    c.arg("keygen").arg(&identity).arg(&recipients);
    ok("typage keygen", run(c));
    let recipient = fs::read_to_string(&recipients).expect("recipient");
    assert!(recipient.starts_with("age1pq1"), "{recipient}");

    let out = d.join("out");
    fs::create_dir(&out).expect("mkdir");
    let mut args = ["--name", "for-typage", "--require-pq", "-R"]
        .map(OsStr::new)
        .to_vec();
    args.push(recipients.as_os_str());
    ok("pack", pack_with(&case, &out, &clerk.secret, &args));

    // typage decrypts; the stock zstd and tar do the rest.
    let plain = d.join("payload.tar.zst");
    let mut c = typage();
    c.arg("decrypt")
        .arg(&identity)
        .arg(out.join("for-typage.age"))
        .arg(&plain);
    ok("typage decrypt", run(c));
    let x = d.join("x");
    fs::create_dir(&x).expect("mkdir");
    let mut c = Command::new(common::require("bash", "bash"));
    c.arg("-c")
        .arg(r#"set -o pipefail; "$1" -dc "$2" | "$3" -x -C "$4""#)
        .arg("open")
        .arg(common::require("zstd", "zstd"))
        .arg(&plain)
        .arg(common::require("tar", "tar"))
        .arg(&x);
    ok("zstd -dc | tar -x", run(c));
    fs::remove_file(x.join(".pouch-manifest.toml")).expect("the inner manifest is there");
    assert_same_tree(&case, &x.join("case 0142"));

    // pouch reads typage's identity file too.
    let m = out.join("for-typage.toml");
    ok(
        "verify -i typage",
        verify(&m, &clerk.public, Some(&identity)),
    );
}

#[test]
fn pouch_unpacks_a_payload_typage_sealed_to_a_pouch_key() {
    let w = World::new();
    let d = w.path();
    let case = rich_tree(d);
    let clerk = w.keys("clerk");
    let me = w.keys_pq("me");

    // A genuine bundle gives the plaintext (zstd of the tar) and the
    // contents (names sealed, as in the manifests forge writes).
    let m = pack(
        &[&case],
        &d.join("orig"),
        "b1",
        &clerk,
        &[&me],
        &["--seal-names"],
    );
    let manifest =
        pouch::format::manifest::Manifest::parse(&fs::read(&m).expect("read"), &m).expect("parse");
    let identities = pouch::payload::crypto::read_identity_file(&me.identity).expect("identity");
    let payload = fs::read(m.with_extension("age")).expect("payload");
    let mut reader = pouch::payload::crypto::open(payload.as_slice(), &identities).expect("opens");
    let mut plaintext = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut plaintext).expect("decrypts");

    // typage seals that plaintext to my post-quantum recipient.
    let (plain_path, sealed) = (d.join("plain"), d.join("sealed.age"));
    fs::write(&plain_path, &plaintext).expect("write");
    let mut c = typage();
    c.arg("encrypt")
        .arg(&me.recipient_file)
        .arg(&plain_path)
        .arg(&sealed);
    ok("typage encrypt", run(c));
    let typage_payload = fs::read(&sealed).expect("read");

    // typage reads the identity file pouch keygen --pq wrote, too.
    let back = d.join("back");
    let mut c = typage();
    c.arg("decrypt").arg(&me.identity).arg(&sealed).arg(&back);
    ok("typage decrypt with a pouch identity file", run(c));
    assert_eq!(fs::read(&back).expect("read"), plaintext);
    assert!(typage_payload.starts_with(b"age-encryption.org/v1\n-> mlkem768x25519 "));
    assert_ne!(typage_payload, payload);

    // The clerk signs a bundle around typage's payload; pouch unpacks it.
    let forged = d.join("typage");
    fs::create_dir(&forged).expect("mkdir");
    let m2 = forge::bundle_from_payload(
        &forged,
        "b2",
        &typage_payload,
        manifest.contents.clone(),
        &me.recipient,
        &clerk.secret,
    );
    let dest = d.join("inbox");
    ok(
        "unpack",
        unpack(&m2, &me.identity, &clerk.public, &dest, &[]),
    );
    assert_same_tree(&case, &dest.join("b2/case 0142"));
}
