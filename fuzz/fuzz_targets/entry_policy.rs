//! The entry policy and the strict tar reader, on arbitrary bytes.
//!
//! 1. `check_path(data)`: when it accepts a name, the name must be relative,
//!    have no empty, `.` or `..` components, and joining it to a base folder
//!    must stay below that folder (checked lexically).
//! 2. The same bytes as a tar stream through `strict_tar::TarReader`: every
//!    header and all data are read; it must not panic, must stop, must never
//!    hand out more data than the input holds, and its per-header memory
//!    (the path) stays within the documented bounds.

#![no_main]

use std::path::{Component, Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use pouch::format::names::{check_path, MAX_COMPONENT_BYTES, MAX_DEPTH, MAX_PATH_BYTES};
use pouch::payload::strict_tar::{TarReader, MAX_LONG_NAME};

const BASE: &str = "/base/dest";

/// Lexical normalisation, as a naive extractor would do it: `..` pops, `.`
/// is dropped, a root or prefix restarts the path.
fn lexical_normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => {
                out = PathBuf::from(c.as_os_str());
            }
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

fn check_policy(data: &[u8]) {
    if check_path(data).is_err() {
        return;
    }
    let s = std::str::from_utf8(data).expect("an accepted path is UTF-8");
    assert!(!s.is_empty(), "empty path accepted");
    assert!(data.len() <= MAX_PATH_BYTES, "over-long path accepted");
    assert!(!s.contains('\0'), "NUL accepted: {s:?}");
    assert!(!s.contains('\\'), "backslash accepted: {s:?}");
    let path = Path::new(s);
    assert!(path.is_relative(), "absolute path accepted: {s:?}");
    assert!(!path.has_root(), "rooted path accepted: {s:?}");

    let parts: Vec<&str> = s.split('/').collect();
    assert!(parts.len() <= MAX_DEPTH, "too deep path accepted: {s:?}");
    for part in &parts {
        assert!(!part.is_empty(), "empty component accepted: {s:?}");
        assert!(
            *part != "." && *part != "..",
            "dot component accepted: {s:?}"
        );
        assert!(part.len() <= MAX_COMPONENT_BYTES, "long component accepted");
        assert!(
            !part.chars().any(char::is_control),
            "control char accepted: {s:?}"
        );
    }
    // std's view of the components agrees: all normal, same count.
    let comps: Vec<Component> = path.components().collect();
    assert!(
        comps.iter().all(|c| matches!(c, Component::Normal(_))),
        "non-normal component accepted: {s:?} -> {comps:?}"
    );
    assert_eq!(comps.len(), parts.len(), "components differ: {s:?}");

    // Joining never escapes the base, lexically.
    let base = Path::new(BASE);
    let joined = base.join(path);
    assert!(
        joined.starts_with(base),
        "join escapes: {s:?} -> {joined:?}"
    );
    let norm = lexical_normalise(&joined);
    assert!(
        norm.starts_with(base) && norm != base,
        "join escapes after normalisation: {s:?} -> {norm:?}"
    );
    // Every prefix (each folder the entry lives in) stays below the base too.
    let mut prefix = base.to_path_buf();
    for part in &parts {
        prefix.push(part);
        assert!(
            lexical_normalise(&prefix).starts_with(base),
            "prefix escapes: {s:?}"
        );
    }
}

fn check_tar(data: &[u8]) {
    let mut input = data;
    let mut reader = TarReader::new(&mut input);
    let mut buf = [0u8; 4096];
    let mut total_data: u64 = 0;
    let mut headers: usize = 0;
    loop {
        match reader.next_header() {
            Ok(Some(h)) => {
                headers += 1;
                // Each header takes at least one 512-byte block.
                assert!(headers * 512 <= data.len(), "more headers than blocks");
                // name (100) + '/' + ustar prefix (155), or a long-name record.
                assert!(
                    h.path.len() as u64 <= MAX_LONG_NAME.max(256),
                    "header path of {} bytes",
                    h.path.len()
                );
                assert!(h.mode <= 0o7777);
                let _ = check_path(&h.path);
                let mut got: u64 = 0;
                loop {
                    match reader.read_data(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            assert!(n <= buf.len());
                            got += n as u64;
                            assert!(got <= h.size, "more data than the header's size");
                        }
                        Err(_) => return,
                    }
                }
                total_data += got;
                assert!(total_data <= data.len() as u64, "more data than input");
            }
            Ok(None) => return,
            Err(_) => return,
        }
    }
}

/// The same stream, but each entry's data left unread so `next_header`
/// must skip it.
fn check_tar_skipping(data: &[u8]) {
    let mut input = data;
    let mut reader = TarReader::new(&mut input);
    let mut headers = 0usize;
    while let Ok(Some(_)) = reader.next_header() {
        headers += 1;
        assert!(headers * 512 <= data.len(), "more headers than blocks");
    }
}

fuzz_target!(|data: &[u8]| {
    check_policy(data);
    check_tar(data);
    check_tar_skipping(data);
});
