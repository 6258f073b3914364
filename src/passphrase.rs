//! Asking for passphrases again when they were mistyped, as ssh and
//! minisign do: three tries at a signing key's passphrase, three at typing
//! a new one twice alike. The asking itself is a closure the caller gives
//! (the binary reads the terminal; the library never does), so the loops
//! are tested without one.

use crate::error::{Error, Result};

/// How often a person is asked before pouch gives up.
pub const TRIES: u32 = 3;

/// Runs `attempt` until it succeeds, at most `tries` times, again only
/// while it fails with a wrong passphrase; the last error is returned.
pub fn retry<T>(tries: u32, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut left = tries.max(1);
    loop {
        left -= 1;
        match attempt() {
            Err(Error::WrongPassphrase { .. }) if left > 0 => {}
            done => return done,
        }
    }
}

/// The prompts of a new signing key's passphrase: the first entry, and the
/// second that must match it.
pub const NEW_PROMPT: &str = "Passphrase for the new signing key: ";
/// The second prompt.
pub const AGAIN_PROMPT: &str = "Same passphrase again: ";
/// The first prompt after two entries differed.
pub const DIFFER_PROMPT: &str =
    "The two passphrases differ; try again.\nPassphrase for the new signing key: ";

/// A new passphrase, typed twice alike: `ask(prompt)` reads one entry.
/// Entries that differ are asked for again, [`TRIES`] times in all.
pub fn new_passphrase(ask: &mut dyn FnMut(&str) -> Result<String>) -> Result<String> {
    let mut prompt = NEW_PROMPT;
    for _ in 0..TRIES {
        let first = ask(prompt)?;
        let second = ask(AGAIN_PROMPT)?;
        if first != second {
            prompt = DIFFER_PROMPT;
            continue;
        }
        if first.is_empty() {
            return Err(Error::Usage(
                "empty passphrase; use --no-passphrase if you really want an unprotected key"
                    .into(),
            ));
        }
        return Ok(first);
    }
    Err(Error::Usage(format!(
        "the two passphrases differed {TRIES} times; run keygen again"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn wrong() -> Error {
        Error::WrongPassphrase {
            path: PathBuf::from("k.key"),
        }
    }

    #[test]
    fn a_wrong_passphrase_is_asked_again_up_to_three_times() {
        let mut asked = 0;
        let got = retry(TRIES, || {
            asked += 1;
            if asked < 3 {
                Err(wrong())
            } else {
                Ok(asked)
            }
        });
        assert_eq!((got.ok(), asked), (Some(3), 3));
        let mut asked = 0;
        let got: Result<()> = retry(TRIES, || {
            asked += 1;
            Err(wrong())
        });
        assert_eq!(asked, 3);
        let e = got.err().map(|e| e.hint()).unwrap_or_default();
        assert!(e.contains("check the passphrase"), "{e}");
    }

    #[test]
    fn one_try_and_other_errors_are_not_retried() {
        // --passphrase-file: one try.
        let mut asked = 0;
        let _ = retry::<()>(1, || {
            asked += 1;
            Err(wrong())
        });
        assert_eq!(asked, 1);
        let mut asked = 0;
        let got = retry::<()>(TRIES, || {
            asked += 1;
            Err(Error::Usage("no terminal".into()))
        });
        assert_eq!(asked, 1);
        assert!(matches!(got, Err(Error::Usage(_))));
    }

    fn scripted(entries: &[&str]) -> (Result<String>, Vec<String>) {
        let mut prompts = Vec::new();
        let mut it = entries.iter();
        let got = new_passphrase(&mut |p| {
            prompts.push(p.to_string());
            Ok(it.next().map(|s| s.to_string()).unwrap_or_default())
        });
        (got, prompts)
    }

    #[test]
    fn keygen_asks_again_when_the_two_entries_differ() {
        let (got, prompts) = scripted(&["one", "two", "same", "same"]);
        assert_eq!(got.ok().as_deref(), Some("same"));
        assert_eq!(
            prompts,
            [NEW_PROMPT, AGAIN_PROMPT, DIFFER_PROMPT, AGAIN_PROMPT]
        );
        let (got, prompts) = scripted(&["a", "b", "c", "d", "e", "f", "g", "g"]);
        assert_eq!(prompts.len(), 6, "three tries, then no more");
        let e = got.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("differed 3 times"), "{e}");
    }
}
