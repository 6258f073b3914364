//! Trust is bound to full public keys, never to 8-byte key ids: a minisign
//! key id is chosen by whoever makes the key, so a key made with a known
//! party's id must neither join the keyring beside it nor borrow its name.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{pack, pouch, Keys, World};
use predicates::str::contains;

/// Rewrites `thief`'s unencrypted minisign key pair so that it carries
/// `victim`'s key id: what anyone can do with `minisign -G` and a hex editor.
/// Returns the forged secret and public key files.
fn forge_key_id(dir: &Path, thief: &Keys, victim: &Keys) -> (PathBuf, PathBuf) {
    let second_line = |p: &Path| {
        let text = fs::read_to_string(p).expect("key file");
        STANDARD
            .decode(text.lines().nth(1).expect("two lines").trim())
            .expect("base64")
    };
    let victim_pub = second_line(&victim.public);
    let keynum = &victim_pub[2..10];
    // sig_alg(2) kdf_alg(2) chk_alg(2) salt(32) ops(8) mem(8) keynum(8) sk(64) chk(32)
    let mut sk = second_line(&thief.secret);
    assert_eq!(sk.len(), 158, "an unencrypted minisign secret key");
    sk[54..62].copy_from_slice(keynum);
    sk[126..].fill(0); // an unprotected key without checksum, as minisign -G -W writes
    let mut pk = b"Ed".to_vec();
    pk.extend_from_slice(keynum);
    pk.extend_from_slice(&sk[62 + 32..62 + 64]);
    let secret = dir.join("forged.minisign.key");
    let public = dir.join("forged.minisign.pub");
    fs::write(
        &secret,
        format!("untrusted comment: forged\n{}\n", STANDARD.encode(&sk)),
    )
    .expect("write");
    fs::write(
        &public,
        format!("untrusted comment: forged\n{}\n", STANDARD.encode(&pk)),
    )
    .expect("write");
    (secret, public)
}

struct Setup {
    w: World,
    d: PathBuf,
    alice: Keys,
    bob: Keys,
    forged: Keys,
}

fn setup() -> Setup {
    let w = World::new();
    let d = w.path().to_path_buf();
    let alice = w.keys("alice");
    let bob = w.keys("bob");
    let carol = w.keys("carol");
    let (secret, public) = forge_key_id(&d, &carol, &alice);
    let forged = Keys {
        secret,
        public,
        ..carol
    };
    fs::write(d.join("report.txt"), "case file\n").expect("write");
    Setup {
        w,
        d,
        alice,
        bob,
        forged,
    }
}

fn home(s: &Setup) -> assert_cmd::Command {
    s.w.home("bob")
}

#[test]
fn a_key_with_a_known_partys_key_id_is_refused_by_keyring_add() {
    let s = setup();
    home(&s)
        .args(["keyring", "add", "alice", "--sign-pub"])
        .arg(&s.alice.public)
        .assert()
        .success();
    home(&s)
        .args(["keyring", "add", "carol", "--sign-pub"])
        .arg(&s.forged.public)
        .assert()
        .code(2)
        .stderr(contains("party alice's different key already has"))
        .stderr(contains("impersonation"));
    // The same key under a second name is refused too.
    home(&s)
        .args(["keyring", "add", "alice2", "--sign-pub"])
        .arg(&s.alice.public)
        .assert()
        .code(2)
        .stderr(contains("already party alice's"));
    // alice's genuine bundles still verify, by alice.
    let src = s.d.join("report.txt");
    let m = pack(
        &[&src],
        &s.d.join("out-a"),
        "genuine",
        &s.alice,
        &[&s.bob],
        &[],
    );
    home(&s)
        .arg("verify")
        .arg(&m)
        .assert()
        .success()
        .stdout(contains("(alice)"));
}

#[test]
fn a_hand_edited_keyring_with_two_parties_on_one_key_id_is_refused() {
    let s = setup();
    let pub_line = |p: &Path| {
        fs::read_to_string(p)
            .expect("pub")
            .lines()
            .nth(1)
            .expect("key line")
            .to_string()
    };
    let ring = s.d.join("ring.toml");
    fs::write(
        &ring,
        format!(
            "format_version = 1\n\n[[party]]\nname = \"alice\"\nsign_pub = \"{}\"\nrecipients = []\n\n[[party]]\nname = \"carol\"\nsign_pub = \"{}\"\nrecipients = []\n",
            pub_line(&s.alice.public),
            pub_line(&s.forged.public)
        ),
    )
    .expect("write");
    home(&s)
        .arg("--keyring")
        .arg(&ring)
        .args(["keyring", "list"])
        .assert()
        .failure()
        .stderr(contains("party alice's different key already has"));
}

#[test]
fn a_name_is_shown_only_for_the_full_key_that_verified() {
    let s = setup();
    home(&s)
        .args(["keyring", "add", "alice", "--sign-pub"])
        .arg(&s.alice.public)
        .assert()
        .success();
    let src = s.d.join("report.txt");
    // Signed by the forged key, which carries alice's key id.
    let m = pack(
        &[&src],
        &s.d.join("out-c"),
        "forged",
        &s.forged,
        &[&s.bob],
        &[],
    );
    // Trusting only the keyring: alice's full key does not verify it.
    home(&s)
        .arg("verify")
        .arg(&m)
        .assert()
        .code(1)
        .stderr(contains("does not match the manifest"));
    // Trusting the forged key as well: valid, but never "(alice)".
    let out = home(&s)
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&s.forged.public)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("valid, by trusted key"), "{stdout}");
    assert!(
        !stdout.contains("alice"),
        "named after a key-id match: {stdout}"
    );
    // audit names the signer only by a full-key match, too.
    let audit = home(&s)
        .arg("audit")
        .arg(s.d.join("out-c"))
        .arg("--trust")
        .arg(&s.forged.public)
        .output()
        .expect("runs");
    let table = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{table}");
    assert!(!table.contains("alice"), "{table}");
    // And alice's genuine bundle, verified with both keys trusted, is alice's.
    let g = pack(
        &[&src],
        &s.d.join("out-a"),
        "genuine",
        &s.alice,
        &[&s.bob],
        &[],
    );
    home(&s)
        .arg("verify")
        .arg(&g)
        .arg("--trust")
        .arg(&s.forged.public)
        .assert()
        .success()
        .stdout(contains("(alice)"));
}

#[test]
fn an_oversized_signature_on_the_medium_fails_the_bundle_not_the_operator() {
    let s = setup();
    let src = s.d.join("report.txt");
    let m = pack(
        &[&src],
        &s.d.join("out"),
        "padded",
        &s.alice,
        &[&s.bob],
        &[],
    );
    let sig = s.d.join("out/padded.toml.minisig");
    let text = fs::read_to_string(&sig).expect("sig");
    let padded = text.replacen(
        "untrusted comment:",
        &format!("untrusted comment: {}", "x".repeat(17 * 1024)),
        1,
    );
    fs::write(&sig, padded).expect("write");
    pouch()
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&s.alice.public)
        .assert()
        .code(1)
        .stderr(contains("signature"))
        .stderr(contains("larger than 16384 bytes"));
}

/// A payload that stock `age` seals to bob (listed) and to mallory's
/// ssh-ed25519 key (not listed), in a correctly signed bundle.
fn bundle_with_an_unlisted_stanza(s: &Setup) -> (PathBuf, PathBuf) {
    use common::forge::{self, Member};
    let ssh = s.d.join("mallory_ssh");
    let keygen = std::process::Command::new(common::require("ssh-keygen", "openssh-client"))
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&ssh)
        .status()
        .expect("ssh-keygen runs");
    assert!(keygen.success());
    let data = b"watch-list entry\n";
    let tar = forge::tar(&[Member::file("a.txt", data)]);
    let compressed = zstd::encode_all(tar.as_slice(), 3).expect("zstd");
    let plain = s.d.join("plain.zst");
    fs::write(&plain, &compressed).expect("write");
    let payload = s.d.join("payload.age");
    let age = std::process::Command::new(common::require("age", "age"))
        .args(["-r", &s.bob.recipient, "-R"])
        .arg(ssh.with_extension("pub"))
        .arg("-o")
        .arg(&payload)
        .arg(&plain)
        .status()
        .expect("age runs");
    assert!(age.success());
    let entries = vec![pouch::format::manifest::Entry::file(
        "a.txt".into(),
        data.len() as u64,
        pouch::payload::hashing::sha256_hex(data),
        false,
    )];
    let out = s.d.join("stick");
    fs::create_dir_all(&out).expect("mkdir");
    let m = forge::bundle_from_payload(
        &out,
        "b",
        &fs::read(&payload).expect("payload"),
        forge::contents_of(&entries, true),
        &s.bob.recipient,
        &s.alice.secret,
    );
    // The attack is real: stock age opens the payload with mallory's key.
    let opened = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&ssh)
        .arg(out.join("b.age"))
        .output()
        .expect("age runs");
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    (m, out)
}

#[test]
fn a_stanza_the_manifest_does_not_list_fails_verify_unpack_and_audit() {
    let s = setup();
    let (m, stick) = bundle_with_an_unlisted_stanza(&s);
    let unlisted = "the payload can be opened by a recipient the manifest does not list";
    pouch()
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&s.alice.public)
        .assert()
        .code(1)
        .stderr(contains(unlisted))
        .stderr(contains("ssh-ed25519"));
    pouch()
        .arg("verify")
        .arg(&m)
        .arg("--trust")
        .arg(&s.alice.public)
        .arg("-i")
        .arg(&s.bob.identity)
        .assert()
        .code(1)
        .stderr(contains(unlisted));
    let dest = s.d.join("inbox");
    fs::create_dir(&dest).expect("mkdir");
    home(&s)
        .arg("unpack")
        .arg(&m)
        .arg("--trust")
        .arg(&s.alice.public)
        .arg("-i")
        .arg(&s.bob.identity)
        .arg("-d")
        .arg(&dest)
        .assert()
        .code(1)
        .stderr(contains(unlisted));
    assert_eq!(
        fs::read_dir(&dest).expect("ls").count(),
        0,
        "DEST untouched"
    );
    home(&s)
        .arg("audit")
        .arg(&stick)
        .arg("--trust")
        .arg(&s.alice.public)
        .assert()
        .code(1)
        .stdout(contains("FAILED"))
        .stdout(contains(unlisted));
    // inspect shows the recipient set read from the header, not only the
    // manifest's claim, with or without a key.
    for trust in [true, false] {
        let mut c = pouch();
        c.arg("inspect").arg(&m);
        if trust {
            c.arg("--trust").arg(&s.alice.public);
        }
        c.assert()
            .code(1)
            .stdout(contains("header       X25519, ssh-ed25519"))
            .stdout(contains(
                "\u{2717} the payload can be opened by a recipient",
            ))
            .stderr(contains(unlisted));
    }
}
