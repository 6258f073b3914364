//! Every error a user can meet, with its message, hint and exit code, as
//! snapshot cases in `tests/cmd/*.toml` (stdout and stderr written out, `[..]`
//! where a part varies). Each case runs in a fresh copy of `tests/cmd/world/`
//! (see `tests/cmd/make-world.sh`). After an intended change of a message,
//! `TRYCMD=overwrite cargo test --test snapshots` rewrites the snapshots.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[test]
fn error_messages_and_hints() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}
