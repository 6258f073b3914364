//! Naming a key given in the wrong place.
//!
//! pouch takes four kinds of key: a minisign secret key (`-s`), a minisign
//! public key (`--trust`, `--sign-pub`), an age identity (`-i`) and an age
//! recipient (`-r`, `-R`). Given one where another belongs, the parser of
//! the right kind fails with its own words ("invalid Bech32"), which say
//! nothing to a clerk. These functions recognise what was given instead and
//! say what to pass. A secret key is never echoed: only where it was given.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// What a piece of key text is, as far as its shape tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyText {
    /// A minisign public key (`RW…`, 42 bytes of base64), bare or in a `.pub` file.
    MinisignPublic,
    /// A minisign secret key (158 bytes of base64), in a `.key` file.
    MinisignSecret,
    /// An age identity (`AGE-SECRET-KEY-…`, or a post-quantum one).
    AgeIdentity,
    /// An age recipient (`age1…`).
    AgeRecipient,
    /// An OpenSSH public key (`ssh-ed25519 …`, `ssh-rsa …`).
    Ssh,
    /// An age plugin recipient (`age1yubikey1…`, `age1NAME1…`).
    AgePlugin,
}

/// Recognises `text` (a key given as text, or a key file's contents).
pub fn sniff(text: &str) -> Option<KeyText> {
    use ct_codecs::{Base64, Decoder};
    let lines = || {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    };
    if lines().any(|l| l.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-")) {
        return Some(KeyText::AgeIdentity);
    }
    // The first line that is not a comment says what the text is.
    if let Some(line) = lines().find(|l| !l.starts_with("untrusted comment:")) {
        if line.starts_with("ssh-")
            || line.starts_with("ecdsa-sha2-")
            || line.starts_with("sk-ssh-")
        {
            return Some(KeyText::Ssh);
        }
        if let Some(rest) = line.strip_prefix("age1") {
            // age1<plugin>1<data>: a plugin name is lowercase letters and
            // digits; a native recipient has no second "1" before its data
            // (bech32 data never holds '1'), except age1pq1.
            return Some(match rest.split_once('1') {
                Some(("pq", _)) | None => KeyText::AgeRecipient,
                Some((plugin, _)) if !plugin.is_empty() => KeyText::AgePlugin,
                Some(_) => KeyText::AgeRecipient,
            });
        }
        match Base64::decode_to_vec(line, None).map(|b| b.len()) {
            Ok(42) => return Some(KeyText::MinisignPublic),
            Ok(158) => return Some(KeyText::MinisignSecret),
            _ => {}
        }
    }
    None
}

/// Where a key was given, for a message that must not repeat it: the file,
/// or the words "the key given as text".
fn place(path: Option<&Path>) -> PathBuf {
    path.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("(the key given as text)"))
}

/// What is wrong with `text` (read from `path`) given as a signing key
/// (`-s`), when it is another kind of key.
pub fn as_signing_key(path: &Path, text: &str) -> Option<Error> {
    let problem = match sniff(text)? {
        KeyText::MinisignSecret => return None,
        KeyText::MinisignPublic => format!("this is the public key; pass {}", secret_name(path)),
        KeyText::AgeIdentity => "this is an age identity (it decrypts, with -i), not a signing key; pass NAME.minisign.key".into(),
        _ => "this is a recipient or public key, not a signing key; pass NAME.minisign.key".into(),
    };
    Some(Error::WrongFile {
        path: path.to_path_buf(),
        problem,
        hint: "-s takes the minisign secret key that signs (NAME.minisign.key from pouch keygen, or minisign -G's minisign.key); its .pub half goes to the other side",
    })
}

/// `NAME.minisign.key` for `NAME.minisign.pub` (or `x.key` for `x.pub`).
fn secret_name(public: &Path) -> String {
    let name = public
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(".pub") {
        Some(stem) => format!("{stem}.key"),
        None => "NAME.minisign.key".into(),
    }
}

/// What is wrong with a key given to `--trust` or `--sign-pub`: the text
/// itself, or the contents of the file `path`, when it is a secret key.
pub fn as_public_key(path: Option<&Path>, text: &str) -> Option<Error> {
    let problem = match sniff(text)? {
        KeyText::MinisignSecret => "this is a SECRET key; never hand it around: pass its public half, NAME.minisign.pub",
        KeyText::AgeIdentity => "this is a SECRET key; never hand it around (an age identity): --trust and --sign-pub take a signer's minisign public key, NAME.minisign.pub",
        KeyText::AgeRecipient | KeyText::AgePlugin | KeyText::Ssh => {
            "this is an encryption recipient, not a signer's key: pass the signer's NAME.minisign.pub"
        }
        KeyText::MinisignPublic => return None,
    };
    Some(Error::WrongFile {
        path: place(path),
        problem: problem.into(),
        hint: "a signer's public key is the .pub file of minisign -G or pouch keygen (NAME.minisign.pub); whoever saw a secret key should have it replaced",
    })
}

/// What is wrong with `s` given as an age recipient (`-r`, a recipients
/// file, the keyring), when it is not one this pouch can seal to.
pub fn as_recipient(s: &str) -> Option<Error> {
    let supported = "pouch seals to age1… (X25519) and age1pq1… (post-quantum) recipients";
    let unsupported = |what: &str, shown: String| Error::BadRecipient {
        recipient: shown,
        reason: format!("{what} are not supported yet; {supported}"),
    };
    match sniff(s) {
        Some(KeyText::Ssh) => {
            let kind = s.split_whitespace().next().unwrap_or("ssh").to_string();
            return Some(unsupported("ssh recipients", format!("{kind} …")));
        }
        Some(KeyText::AgePlugin) => {
            let plugin = s.trim().split('1').nth(1).unwrap_or("").to_string();
            return Some(unsupported(
                &format!("age plugin recipients (age-plugin-{plugin})"),
                format!("age1{plugin}1…"),
            ));
        }
        Some(KeyText::MinisignPublic) => {
            return Some(Error::BadRecipient {
                recipient: s.chars().take(24).collect::<String>() + "…",
                reason: "this is a minisign signing key (it checks signatures), not an age recipient; \
                         give it to --trust or keyring add --sign-pub, and -r the age1… line of NAME.age-recipient"
                    .into(),
            })
        }
        _ => {}
    }
    let path = Path::new(s.trim());
    let looks_like_path = s.contains('/')
        || s.ends_with(".pub")
        || s.ends_with(".key")
        || s.ends_with("recipient")
        || s.ends_with(".txt");
    if looks_like_path || path.is_file() {
        return Some(Error::WrongFile {
            path: path.to_path_buf(),
            problem: "looks like a file: use -R FILE".into(),
            hint: "-r takes a recipient itself (age1…); -R FILE reads the recipients of a file, one a line",
        });
    }
    None
}

/// What is wrong with the file `path` given as a file of recipients (`-R`),
/// when it is a signing key's file.
pub fn as_recipients_file(path: &Path, text: &str) -> Option<Error> {
    let problem = match sniff(text)? {
        KeyText::MinisignPublic => {
            "this is a minisign public key (it checks signatures), not a file of age recipients: give it to --trust or keyring add --sign-pub"
        }
        KeyText::MinisignSecret => "this is a SECRET signing key; never hand it around",
        _ => return None,
    };
    Some(Error::WrongFile {
        path: path.to_path_buf(),
        problem: problem.into(),
        hint: "-R takes a file of age recipients, one a line: NAME.age-recipient from pouch keygen, or age-keygen -y's output",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_apart_by_shape() {
        let cases = [
            (
                "RWQRsVhr9jVIRhtxuAvEWUGckMScTeBBq6VrgjflNz4EuZpeC9+Mvvun",
                Some(KeyText::MinisignPublic),
            ),
            (
                "age1dd34c667u8z6hv0l0h39wth6h8tlk9whld3e0e36et08mpsled0qpmd8dv",
                Some(KeyText::AgeRecipient),
            ),
            ("age1pq1qqqq", Some(KeyText::AgeRecipient)),
            ("age1yubikey1qwerty", Some(KeyText::AgePlugin)),
            ("age1tpm1qwerty", Some(KeyText::AgePlugin)),
            ("ssh-ed25519 AAAAC3Nza user@host", Some(KeyText::Ssh)),
            ("ssh-rsa AAAAB3Nza user@host", Some(KeyText::Ssh)),
            (
                "# created: now\nAGE-SECRET-KEY-1QQQ",
                Some(KeyText::AgeIdentity),
            ),
            ("hello", None),
        ];
        for (text, want) in cases {
            assert_eq!(sniff(text), want, "{text}");
        }
    }

    #[test]
    fn a_secret_key_given_as_trust_is_named_and_never_echoed() {
        let secret = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS";
        let e = as_public_key(None, secret)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("SECRET key; never hand it around"), "{e}");
        assert!(!e.contains("QYQSZQGP"), "{e}");
    }
}
