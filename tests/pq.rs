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

#[macro_use]
mod common;

use common::{assert_same_tree, exited, forge, names, ok, output, pack, passes};
use common::{rich_tree, run, stderr_of, stdout_of, verify, Keys, World};

use pouch::format::manifest::Manifest;

const KIND_PQ: &str = "kind = \"mlkem768x25519\"";

/// What every test starts from: a world with a case tree and a clerk
/// (classic age key, signing key).
struct Setup {
    w: World,
    case: PathBuf,
    clerk: Keys,
}

fn world() -> Setup {
    let w = World::new();
    let case = rich_tree(w.path());
    let clerk = w.keys("clerk");
    Setup { w, case, clerk }
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

    /// The post-quantum keys of party `name`.
    fn pq(&self, name: &str) -> Keys {
        self.w.keys_pq(name)
    }

    /// Bundle `name` in the new folder `folder` around `payload`, with the
    /// contents of the genuine `manifest`, for `to` and signed with the
    /// clerk's key; returns its manifest.
    fn forge(
        &self,
        folder: &str,
        name: &str,
        payload: &[u8],
        manifest: &Manifest,
        to: &Keys,
    ) -> PathBuf {
        let (contents, key) = (manifest.contents.clone(), &self.clerk.secret);
        forge::bundle_from_payload(
            &self.folder(folder),
            name,
            payload,
            contents,
            &to.recipient,
            key,
        )
    }

    /// A genuine bundle `b1` of the case tree in `orig/`, for `to`, with
    /// sealed names (as in the manifests forge writes): its payload and its
    /// signed manifest.
    fn genuine(&self, to: &Keys) -> (Vec<u8>, Manifest) {
        let m = self.pack("orig", "b1", &[to], &["--seal-names"]);
        let manifest = Manifest::parse(&fs::read(&m).expect("read"), &m).expect("parse");
        (
            fs::read(m.with_extension("age")).expect("payload"),
            manifest,
        )
    }

    /// Packs the case tree into folder `out` as bundle `name`, signed by the
    /// clerk for `to`; returns the manifest.
    fn pack(&self, out: &str, name: &str, to: &[&Keys], extra: &[&str]) -> PathBuf {
        pack(&[&self.case], &self.path(out), name, &self.clerk, to, extra)
    }
}

/// `pouch unpack M -i IDENTITY --trust PUB -d DEST EXTRA...` into a new DEST.
fn unpack(m: &Path, identity: &Path, trust: &Path, dest: &Path, extra: &[&str]) -> Output {
    fs::create_dir(dest).expect("mkdir");
    let mut c = pouch!("unpack", m, "-i", identity, "--trust", trust, "-d", dest);
    c.args(extra);
    output(c)
}

/// `pouch pack SOURCE -o OUT -s KEY ARGS...`, for refusals.
fn pack_with(source: &Path, out: &Path, key: &Path, args: &[&OsStr]) -> Output {
    let mut c = pouch!("pack", source, "-o", out, "-s", key);
    c.args(args);
    output(c)
}

/// `pouch audit STICK --trust PUB EXTRA...`.
fn audit(stick: &Path, trust: &Path, extra: &[&str]) -> Output {
    let mut c = pouch!("audit", stick, "--trust", trust);
    c.args(extra);
    output(c)
}

/// JSON on stdout of a finished command.
fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON")
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
    let s = world();
    let (a, b) = (s.pq("a"), s.pq("b"));
    for k in [&a, &b] {
        assert!(k.recipient.starts_with("age1pq1"), "{}", k.recipient);
        assert_eq!(k.recipient.len(), 1959);
        let id = fs::read_to_string(&k.identity).expect("identity");
        assert!(id.contains("\nAGE-SECRET-KEY-PQ-1"), "{id}");
        assert!(id.contains(&format!("# public key: {}", k.recipient)));
    }
    let m = s.pack("out", "pq2", &[&a, &b], &["--require-pq"]);

    let text = fs::read_to_string(&m).expect("manifest");
    assert_eq!(text.matches(KIND_PQ).count(), 2, "{text}");

    let inspect = output(pouch!("inspect", &m, "--trust", &s.clerk.public));
    assert!(inspect.status.success(), "{}", stderr_of(&inspect));
    let shown = stdout_of(&inspect);
    assert!(
        shown.contains("recipients   2 (post-quantum): mlkem768x25519 "),
        "{shown}"
    );
    let v = json(&output(pouch!("inspect", "--json", &m)));
    assert_eq!(v["post_quantum"], true);
    assert_eq!(v["manifest"]["recipients"][1]["kind"], "mlkem768x25519");

    for (who, key) in [("a", &a), ("b", &b)] {
        ok(who, verify(&m, &s.clerk.public, Some(&key.identity)));
        let dest = s.path(&format!("inbox-{who}"));
        let extra = ["--allow-replay"];
        ok(
            who,
            unpack(&m, &key.identity, &s.clerk.public, &dest, &extra),
        );
        assert_same_tree(&s.case, &dest.join("pq2/case 0142"));
    }

    // A classic identity is not one of them: exit 1, naming the recipients.
    let out = verify(&m, &s.clerk.public, Some(&s.clerk.identity));
    exited(&out, 1, &[]);

    // The cost: each post-quantum stanza is the 1,120-byte encapsulated key
    // and the 32-byte sealed file key, in base64 with the stanza's framing.
    let header = age_header(&s.path("out/pq2.age"));
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
    let s = world();
    let pq = s.pq("pq");
    let out = s.folder("out");
    let args = ["-r", &pq.recipient, "-r", &s.clerk.recipient].map(OsStr::new);
    let run = pack_with(&s.case, &out, &s.clerk.secret, &args);
    exited(&run, 2, &["cannot mix post-quantum", "pouch keygen --pq"]);
    assert!(names(&out).is_empty(), "nothing written: {:?}", names(&out));

    // The same through a recipients file holding both kinds.
    let both = format!("# two kinds\n{}\n{}\n", pq.recipient, s.clerk.recipient);
    let both = s.w.write("both.txt", both);
    let args = ["-R".as_ref(), both.as_os_str()];
    let run = pack_with(&s.case, &out, &s.clerk.secret, &args);
    exited(&run, 2, &["cannot mix post-quantum"]);
    assert!(names(&out).is_empty());
}

#[test]
fn require_pq_refuses_classic_recipients_from_flag_spec_and_config() {
    let s = world();
    let (case, clerk, pq) = (&s.case, &s.clerk, &s.pq("pq"));
    let out = s.folder("out");
    let spec = s.w.write("spec.toml", "require_pq = true\n");
    // A classic bundle, made before anything requires post-quantum.
    s.pack("classic", "c1", &[clerk], &[]);

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
    let ways = [
        ("flag", Some(flag), false),
        ("spec", Some(spec_arg.as_os_str()), false),
        ("config", None, true),
    ];
    for (what, extra, config) in ways {
        let run = attempt(&clerk.recipient, extra, config);
        assert_eq!(run.status.code(), Some(2), "{what}: {}", stderr_of(&run));
        let err = stderr_of(&run);
        assert!(
            err.contains("post-quantum recipients are required"),
            "{what}: {err}"
        );
        assert!(names(&out).is_empty(), "{what}: nothing written");
    }
    // With a post-quantum recipient each of them lets a bundle through.
    for (n, (what, extra, config)) in ways.into_iter().enumerate() {
        let run = attempt(&pq.recipient, extra, config);
        assert!(run.status.success(), "{what}: {}", stderr_of(&run));
        assert_eq!(names(&out).len(), 3 * (n + 1), "{what}: a bundle");
    }

    // The config (still in place) is what config show reports.
    let v = json(&output(pouch!("config", "show", "--json")));
    assert_eq!(v["require_pq"]["value"], "true", "{v}");
    let source = v["require_pq"]["source"].as_str().expect("a source");
    assert!(source.starts_with("config"), "{source}");

    // And audit takes it from the config too: the classic bundle fails.
    let report = audit(&s.path("classic"), &clerk.public, &[]);
    exited(&report, 1, &[]);
    let table = stdout_of(&report);
    assert!(
        table.contains("present, but fails the post-quantum policy"),
        "{table}"
    );
}

#[test]
fn audit_flags_bundles_that_are_not_post_quantum() {
    let s = world();
    let (clerk, pq) = (&s.clerk, &s.pq("pq"));
    s.pack("stick", "classic", &[clerk], &[]);
    s.pack("stick", "quantum", &[pq], &[]);
    let stick = s.path("stick");

    // Without the flag both pass, and the table says which is which.
    let plain = audit(&stick, &clerk.public, &[]);
    assert!(plain.status.success(), "{}", stderr_of(&plain));
    let table = stdout_of(&plain);
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
    exited(&strict, 1, &[]);
    let v = json(&strict);
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
        .contains("present, but fails the post-quantum policy"));
    assert_eq!(row("quantum")["post_quantum"], true);
    assert_eq!(row("quantum")["verdict"], "ok");
    assert_eq!(v["failed"], 1);
}

#[test]
fn a_low_order_share_in_a_signed_bundle_is_refused_and_dest_stays_as_it_was() {
    let s = world();
    let pq = s.pq("pq");
    let (payload, manifest) = s.genuine(&pq);
    // Replace the X25519 part of the stanza's encapsulated key (its last 32
    // bytes) with the identity point, whose shared secret is all zeros, and
    // have the clerk's key sign the result: only the age layer can refuse it.
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
    let m2 = s.forge("forged", "b1", &evil, &manifest, &pq);
    let dest = s.path("inbox");
    let out = unpack(&m2, &pq.identity, &s.clerk.public, &dest, &[]);
    // Not "Header MAC is invalid": the stanza is refused before the MAC.
    exited(&out, 1, &["age: ", "Header is invalid"]);
    assert!(names(&dest).is_empty(), "DEST as it was");
    let out = verify(&m2, &s.clerk.public, Some(&pq.identity));
    exited(&out, 1, &[]);
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
    let s = world();
    let clerk = &s.clerk;
    let m = s.pack("stick", "liar", &[clerk], &[]);
    // The clerk's key signs a manifest that says post-quantum, around a
    // payload sealed to an X25519 recipient.
    let text = fs::read_to_string(&m)
        .expect("manifest")
        .replace("kind = \"x25519\"", KIND_PQ);
    let manifest = Manifest::parse(text.as_bytes(), &m).expect("still valid");
    assert!(manifest.is_post_quantum());
    let key = forge::key(&clerk.secret);
    let stick = s.path("stick");
    forge::signed_manifest(&stick, "liar", text.as_bytes(), &manifest.bundle_id, &key);

    let out = verify(&m, &clerk.public, None);
    let lie = "seals the file key to [x25519], but the signed manifest lists [mlkem768x25519]";
    exited(&out, 1, &[lie]);
    let report = audit(&stick, &clerk.public, &["--json"]);
    assert_eq!(report.status.code(), Some(1));
    assert_eq!(json(&report)["bundles"][0]["verdict"], "failed");
}

#[test]
fn a_keyring_party_can_hold_a_post_quantum_recipient() {
    let s = world();
    let (case, clerk, pq) = (&s.case, &s.clerk, &s.pq("fedpol"));
    let add = pouch!("keyring", "add", "fedpol-ic", "--recipient", &pq.recipient);
    passes(add, &[]);
    let list = output(pouch!("keyring", "list", "--json"));
    assert!(list.status.success(), "{}", stderr_of(&list));
    let parties = json(&list);
    assert_eq!(parties[0]["name"], "fedpol-ic", "{parties}");
    assert_eq!(parties[0]["recipients"][0], pq.recipient.as_str());

    // The party's post-quantum key and a classic -r do not mix either.
    let out = s.folder("refused");
    let args = ["--to", "fedpol-ic", "-r", &clerk.recipient].map(OsStr::new);
    let run = pack_with(case, &out, &clerk.secret, &args);
    exited(&run, 2, &["cannot mix post-quantum"]);
    assert!(names(&out).is_empty());

    let extra = ["--to", "fedpol-ic", "--require-pq"];
    let m = s.w.pack(&[case], "b1", clerk, &[], &extra);
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
    let s = world();
    let (identity, recipients) = (s.path("typage.identity"), s.path("typage.recipient"));
    ok(
        "typage keygen",
        run(args!(typage(); "keygen", &identity, &recipients)),
    );
    let recipient = fs::read_to_string(&recipients).expect("recipient");
    assert!(recipient.starts_with("age1pq1"), "{recipient}");

    let out = s.folder("out");
    let mut args = ["--name", "for-typage", "--require-pq", "-R"]
        .map(OsStr::new)
        .to_vec();
    args.push(recipients.as_os_str());
    ok("pack", pack_with(&s.case, &out, &s.clerk.secret, &args));

    // typage decrypts; the stock zstd and tar do the rest.
    let plain = s.path("payload.tar.zst");
    let decrypt = args!(typage(); "decrypt", &identity, out.join("for-typage.age"), &plain);
    ok("typage decrypt", run(decrypt));
    let x = s.folder("x");
    let bash = Command::new(common::require("bash", "bash"));
    let script = r#"set -o pipefail; "$1" -dc "$2" | "$3" -x -C "$4""#;
    let (zstd, tar) = (
        common::require("zstd", "zstd"),
        common::require("tar", "tar"),
    );
    ok(
        "zstd -dc | tar -x",
        run(args!(bash; "-c", script, "open", zstd, &plain, tar, &x)),
    );
    fs::remove_file(x.join(".pouch-manifest.toml")).expect("the inner manifest is there");
    assert_same_tree(&s.case, &x.join("case 0142"));

    // pouch reads typage's identity file too.
    let m = out.join("for-typage.toml");
    let verified = verify(&m, &s.clerk.public, Some(&identity));
    ok("verify -i typage", verified);
}

#[test]
fn pouch_unpacks_a_payload_typage_sealed_to_a_pouch_key() {
    let s = world();
    let me = s.pq("me");

    // A genuine bundle gives the plaintext (zstd of the tar) and the
    // contents (names sealed, as in the manifests forge writes).
    let (payload, manifest) = s.genuine(&me);
    let identities = pouch::payload::crypto::read_identity_file(&me.identity).expect("identity");
    let mut reader = pouch::payload::crypto::open(payload.as_slice(), &identities).expect("opens");
    let mut plaintext = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut plaintext).expect("decrypts");

    // typage seals that plaintext to my post-quantum recipient.
    let (plain_path, sealed) = (s.w.write("plain", &plaintext), s.path("sealed.age"));
    let encrypt = args!(typage(); "encrypt", &me.recipient_file, &plain_path, &sealed);
    ok("typage encrypt", run(encrypt));
    let typage_payload = fs::read(&sealed).expect("read");

    // typage reads the identity file pouch keygen --pq wrote, too.
    let back = s.path("back");
    let decrypt = args!(typage(); "decrypt", &me.identity, &sealed, &back);
    ok("typage decrypt with a pouch identity file", run(decrypt));
    assert_eq!(fs::read(&back).expect("read"), plaintext);
    assert!(typage_payload.starts_with(b"age-encryption.org/v1\n-> mlkem768x25519 "));
    assert_ne!(typage_payload, payload);

    // The clerk signs a bundle around typage's payload; pouch unpacks it.
    let m2 = s.forge("typage", "b2", &typage_payload, &manifest, &me);
    let dest = s.path("inbox");
    let unpacked = unpack(&m2, &me.identity, &s.clerk.public, &dest, &[]);
    ok("unpack", unpacked);
    assert_same_tree(&s.case, &dest.join("b2/case 0142"));
}
