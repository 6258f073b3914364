//! Keys given in the wrong place named as such, and passphrases.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{fails, passes, require, stderr_of, stdout_of, World};
use predicates::prelude::*;
use predicates::str::contains;

/// A minisign key pair made by the stock `minisign -G -W` in `dir`.
fn stock_minisign(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let minisign = require("minisign", "minisign");
    let (public, secret) = (
        dir.join(format!("{name}.pub")),
        dir.join(format!("{name}.key")),
    );
    let gen = args!(std::process::Command::new(minisign); "-G", "-W", "-p", &public, "-s", &secret);
    common::ok("minisign -G -W", common::run(gen));
    (public, secret)
}

/// The base64 key line of a `.pub` file.
fn key_line(public: &Path) -> String {
    let text = fs::read_to_string(public).expect("pub");
    text.lines().nth(1).expect("key line").trim().to_string()
}

#[test]
fn keys_given_in_the_wrong_place_are_named() {
    let w = World::new();
    let (public, secret) = stock_minisign(w.path(), "stock");
    let k = w.keys("k");
    let f = w.write("src/f.txt", "f\n");
    let out = w.dir("out");
    let pack = |extra: &[&std::ffi::OsStr]| {
        let mut c = args!(common::pouch(); "pack", &f, "-o", &out);
        c.args(extra);
        c
    };
    // The public key to -s.
    fails(
        pack(&[
            "-r".as_ref(),
            k.recipient.as_ref(),
            "-s".as_ref(),
            public.as_os_str(),
        ]),
        2,
        &["this is the public key; pass stock.key"],
    );
    // A file, a minisign key, ssh and plugin recipients to -r.
    let r = |given: &str, want: &[&str]| {
        fails(
            pack(&[
                "-s".as_ref(),
                k.secret.as_os_str(),
                "-r".as_ref(),
                given.as_ref(),
            ]),
            2,
            want,
        )
        .stderr(contains("Bech32").not());
    };
    r(
        k.recipient_file.to_str().expect("utf8"),
        &["looks like a file: use -R FILE"],
    );
    r(
        &key_line(&public),
        &["minisign signing key", "not an age recipient"],
    );
    r("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host", &["ssh recipients are not supported yet", "age1pq1"]);
    r(
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC user@host",
        &["ssh recipients are not supported yet"],
    );
    r(
        "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t",
        &["age plugin recipients (age-plugin-yubikey) are not supported yet"],
    );
    // Secret keys to --trust: named, never echoed.
    let m = common::pack(&[&f], &w.join("b"), "b", &k, &[&k], &[]);
    let secret_line = fs::read_to_string(&secret)
        .expect("key")
        .lines()
        .nth(1)
        .expect("line")
        .to_string();
    let out = fails(
        args!(common::pouch(); "verify", &m, "--trust", &secret),
        2,
        &["this is a SECRET key; never hand it around"],
    );
    assert!(!stderr_of(out.get_output()).contains(&secret_line[..20]));
    let age_keygen = require("age-keygen", "age");
    let identity = w.join("id.txt");
    common::ok(
        "age-keygen",
        common::run(args!(std::process::Command::new(age_keygen); "-o", &identity)),
    );
    let id_text = fs::read_to_string(&identity).expect("identity");
    let id_line = id_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("secret line");
    for given in [identity.to_string_lossy().into_owned(), id_line.to_string()] {
        let out = fails(
            args!(common::pouch(); "verify", &m, "--trust", &given, "--json"),
            2,
            &[],
        );
        let text = format!(
            "{}{}",
            stdout_of(out.get_output()),
            stderr_of(out.get_output())
        );
        assert!(
            text.contains("SECRET key; never hand it around") && text.contains("wrong_file"),
            "{text}"
        );
        assert!(
            !text.contains(&id_line[15..]),
            "the secret is echoed: {text}"
        );
    }
}

#[test]
fn a_wrong_passphrase_from_a_file_is_not_retried_and_says_check_the_passphrase() {
    let w = World::new();
    let right = w.write("right.txt", "correct horse\n");
    let wrong = w.write("wrong.txt", "battery staple\n");
    passes(
        args!(common::pouch(); "keygen", "--name", "p", "--out", w.path(), "--passphrase-file", &right),
        &[],
    );
    let k = w.join("p.minisign.key");
    let f = w.write("src/f.txt", "f\n");
    let r = fs::read_to_string(w.join("p.age-recipient")).expect("recipient");
    let pack = |pass: &Path| args!(common::pouch(); "pack", &f, "-o", w.dir("out"), "-s", &k, "--passphrase-file", pass, "-r", r.trim());
    let out = fails(
        pack(&wrong),
        2,
        &[
            "the passphrase does not decrypt it",
            "hint: check the passphrase",
        ],
    );
    assert!(!stderr_of(out.get_output()).contains("try again"));
    passes(pack(&right), &[]);
}
