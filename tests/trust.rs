//! Trust is bound to full public keys, never to 8-byte key ids: a minisign
//! key id is chosen by whoever makes the key, so a key made with a known
//! party's id must neither join the keyring beside it nor borrow its name.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{fails, names, ok, output, pack, passes, require, run, stderr_of, stdout_of};
use common::{unpack_in, verify_cmd, Keys, World};
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
    let write = |ending: &str, key: &[u8]| {
        let path = dir.join(format!("forged.minisign.{ending}"));
        let text = format!("untrusted comment: forged\n{}\n", STANDARD.encode(key));
        fs::write(&path, text).expect("write");
        path
    };
    (write("key", &sk), write("pub", &pk))
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
    w.write("report.txt", "case file\n");
    Setup {
        w,
        d,
        alice,
        bob,
        forged,
    }
}

impl Setup {
    /// `pouch` with bob's pouch home.
    fn home(&self) -> assert_cmd::Command {
        self.w.home("bob")
    }

    /// `pouch keyring add NAME --sign-pub KEY`, in bob's home.
    fn add(&self, name: &str, key: &Path) -> assert_cmd::Command {
        args!(self.home(); "keyring", "add", name, "--sign-pub", key)
    }

    /// Packs `report.txt` into folder `out` as bundle `name`, signed with
    /// `by`'s key, for bob; returns the manifest.
    fn pack(&self, out: &str, name: &str, by: &Keys) -> PathBuf {
        let src = self.d.join("report.txt");
        pack(&[&src], &self.d.join(out), name, by, &[&self.bob], &[])
    }
}

#[test]
fn a_key_with_a_known_partys_key_id_is_refused_by_keyring_add() {
    let s = setup();
    passes(s.add("alice", &s.alice.public), &[]);
    let impersonation = ["party alice's different key already has", "impersonation"];
    fails(s.add("carol", &s.forged.public), 2, &impersonation);
    // The same key under a second name is refused too.
    fails(
        s.add("alice2", &s.alice.public),
        2,
        &["already party alice's"],
    );
    // alice's genuine bundles still verify, by alice.
    let m = s.pack("out-a", "genuine", &s.alice);
    passes(args!(s.home(); "verify", &m), &["(alice)"]);
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
    let ring = s.w.write(
        "ring.toml",
        format!(
            "format_version = 1\n\n[[party]]\nname = \"alice\"\nsign_pub = \"{}\"\nrecipients = []\n\n[[party]]\nname = \"carol\"\nsign_pub = \"{}\"\nrecipients = []\n",
            pub_line(&s.alice.public),
            pub_line(&s.forged.public)
        ),
    );
    args!(s.home(); "--keyring", &ring, "keyring", "list")
        .assert()
        .failure()
        .stderr(contains("party alice's different key already has"));
}

#[test]
fn a_name_is_shown_only_for_the_full_key_that_verified() {
    let s = setup();
    passes(s.add("alice", &s.alice.public), &[]);
    // Signed by the forged key, which carries alice's key id.
    let m = s.pack("out-c", "forged", &s.forged);
    // Trusting only the keyring: alice's full key does not verify it.
    fails(
        args!(s.home(); "verify", &m),
        1,
        &["does not match the manifest"],
    );
    // Trusting the forged key as well: valid, but never "(alice)".
    let out = output(args!(s.home(); "verify", &m, "--trust", &s.forged.public));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = stdout_of(&out);
    assert!(stdout.contains("valid, by trusted key"), "{stdout}");
    assert!(
        !stdout.contains("alice"),
        "named after a key-id match: {stdout}"
    );
    // audit names the signer only by a full-key match, too.
    let out_c = s.d.join("out-c");
    let audit = output(args!(s.home(); "audit", &out_c, "--trust", &s.forged.public));
    let table = stdout_of(&audit);
    assert!(audit.status.success(), "{table}");
    assert!(!table.contains("alice"), "{table}");
    // And alice's genuine bundle, verified with both keys trusted, is alice's.
    let g = s.pack("out-a", "genuine", &s.alice);
    let verify = args!(s.home(); "verify", &g, "--trust", &s.forged.public);
    passes(verify, &["(alice)"]);
}

#[test]
fn an_oversized_signature_on_the_medium_fails_the_bundle_not_the_operator() {
    let s = setup();
    let m = s.pack("out", "padded", &s.alice);
    let sig = s.d.join("out/padded.toml.minisig");
    let text = fs::read_to_string(&sig).expect("sig");
    let padded = text.replacen(
        "untrusted comment:",
        &format!("untrusted comment: {}", "x".repeat(17 * 1024)),
        1,
    );
    fs::write(&sig, padded).expect("write");
    let oversized = ["signature", "larger than 16384 bytes"];
    fails(verify_cmd(&m, &s.alice), 1, &oversized);
}

/// A payload that stock `age` seals to bob (listed) and to mallory's
/// ssh-ed25519 key (not listed), in a correctly signed bundle.
fn bundle_with_an_unlisted_stanza(s: &Setup) -> (PathBuf, PathBuf) {
    use common::forge::{self, Member};
    let ssh = s.d.join("mallory_ssh");
    let keygen = Command::new(require("ssh-keygen", "openssh-client"));
    let keygen = args!(keygen; "-q", "-t", "ed25519", "-N", "", "-f", &ssh);
    ok("ssh-keygen", run(keygen));
    let data = b"watch-list entry\n";
    let tar = forge::tar(&[Member::file("a.txt", data)]);
    let compressed = zstd::encode_all(tar.as_slice(), 3).expect("zstd");
    let plain = s.w.write("plain.zst", &compressed);
    let payload = s.d.join("payload.age");
    let age = Command::new(require("age", "age"));
    let (to_bob, to_mallory) = (&s.bob.recipient, ssh.with_extension("pub"));
    let age = args!(age; "-r", to_bob, "-R", to_mallory, "-o", &payload, &plain);
    ok("age", run(age));
    let entries = vec![pouch::format::manifest::Entry::file(
        "a.txt".into(),
        data.len() as u64,
        pouch::payload::hashing::sha256_hex(data),
        false,
    )];
    let out = s.w.dir("stick");
    let m = forge::bundle_from_payload(
        &out,
        "b",
        &fs::read(&payload).expect("payload"),
        forge::contents_of(&entries, true),
        &s.bob.recipient,
        &s.alice.secret,
    );
    // The attack is real: stock age opens the payload with mallory's key.
    let opened = args!(Command::new("age"); "-d", "-i", &ssh, out.join("b.age"));
    ok("age -d with mallory's key", run(opened));
    (m, out)
}

#[test]
fn a_stanza_the_manifest_does_not_list_fails_verify_unpack_and_audit() {
    let s = setup();
    let (m, stick) = bundle_with_an_unlisted_stanza(&s);
    let unlisted = "the payload can be opened by a recipient the manifest does not list";
    fails(verify_cmd(&m, &s.alice), 1, &[unlisted, "ssh-ed25519"]);
    let verify_all = args!(verify_cmd(&m, &s.alice); "-i", &s.bob.identity);
    fails(verify_all, 1, &[unlisted]);
    let dest = s.w.dir("inbox");
    fails(
        unpack_in(s.home(), &m, &s.alice, &s.bob, &dest),
        1,
        &[unlisted],
    );
    assert_eq!(names(&dest).len(), 0, "DEST untouched");
    let audit = args!(s.home(); "audit", &stick, "--trust", &s.alice.public);
    fails(audit, 1, &[])
        .stdout(contains("FAILED"))
        .stdout(contains(unlisted));
    // inspect shows the recipient set read from the header, not only the
    // manifest's claim, with or without a key.
    for trust in [true, false] {
        let mut c = args!(common::pouch(); "inspect", &m);
        if trust {
            c.arg("--trust").arg(&s.alice.public);
        }
        fails(c, 1, &[unlisted])
            .stdout(contains("header       X25519, ssh-ed25519"))
            .stdout(contains(
                "\u{2717} the payload can be opened by a recipient",
            ));
    }
}
