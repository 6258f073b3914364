//! The one strict reader for the TOML files pouch reads: manifests, receipts,
//! keyrings, the config and pack specs.
//!
//! Every such file is hostile or at least fallible until checked, so each goes
//! through the same steps, in bytes, before serde sees it: at most `max`
//! bytes, no byte order mark, valid UTF-8, then TOML into the caller's type
//! (whose `deny_unknown_fields` makes unknown keys an error). Errors are one
//! line, so a file cannot lay out the terminal with its own line breaks; the
//! caller wraps them in the error that names the file and what it is.

use serde::de::DeserializeOwned;

/// The most TOML items (keys, array elements, tables) [`parse`] reads from
/// a file that no signature vouches for. The TOML parser costs up to about
/// 1 KiB of memory an item whatever the file's size, so this keeps a hostile
/// file's cost under 64 MiB; a manifest whose signature was checked first
/// goes through [`parse_vouched`].
pub const MAX_ITEMS: usize = 40_000;

/// The largest file [`parse`] reads when no signature vouches for it.
pub const MAX_UNVOUCHED_BYTES: u64 = 4 << 20;

/// Parses `bytes`, which no signature vouches for, as a `T`: at most `max`
/// bytes (and [`MAX_UNVOUCHED_BYTES`]) and [`MAX_ITEMS`] items. The error
/// says what is wrong, in one line.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], max: u64) -> Result<T, String> {
    let text = text(bytes, max.min(MAX_UNVOUCHED_BYTES))?;
    if count_items(text) > MAX_ITEMS {
        return Err(format!(
            "holds more than {MAX_ITEMS} TOML items, more than pouch reads from a file no signature vouches for"
        ));
    }
    toml::from_str(text).map_err(|e| one_line(&e.to_string()))
}

/// Parses `bytes` whose signature was checked by a trusted key before, as a
/// `T`, at most `max` bytes; the error says what is wrong, in one line.
pub fn parse_vouched<T: DeserializeOwned>(bytes: &[u8], max: u64) -> Result<T, String> {
    toml::from_str(text(bytes, max)?).map_err(|e| one_line(&e.to_string()))
}

/// An upper bound of the items in a TOML text: every `=`, `,`, `[`, `{`
/// and `.` (each part of a dotted key is a table of its own), inside
/// strings and comments too (so that no quoting can hide one).
pub fn count_items(text: &str) -> usize {
    text.bytes()
        .filter(|b| matches!(b, b'=' | b',' | b'[' | b'{' | b'.'))
        .count()
}

/// `bytes` as text, if they are at most `max` bytes of UTF-8 without a byte
/// order mark.
pub fn text(bytes: &[u8], max: u64) -> Result<&str, String> {
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err("starts with a byte order mark".into());
    }
    std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())
}

/// The reason given for a file over its cap of `max` bytes.
pub fn too_large(max: u64) -> String {
    if max >= 1 << 20 {
        format!("larger than {} MiB", max >> 20)
    } else {
        format!("larger than {} KiB", max >> 10)
    }
}

/// Checks a file's `format_version` against the one this pouch reads.
pub fn check_version(found: u32, supported: u32) -> Result<(), String> {
    if found == supported {
        Ok(())
    } else {
        Err(format!("format_version {found} is not supported"))
    }
}

/// The longest parser message shown; the parser quotes the offending line,
/// which a hostile file can make megabytes long.
const MAX_MESSAGE_CHARS: usize = 300;

/// `s` on one line, runs of white space folded to one space, cut to
/// 300 characters, control and bidi characters escaped.
pub fn one_line(s: &str) -> String {
    let folded = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = folded.chars().take(MAX_MESSAGE_CHARS).collect();
    if cut.len() < folded.len() {
        cut.push('\u{2026}');
    }
    crate::format::names::escape(&cut)
}

/// Checks that field `what` is a sha256: 64 lowercase hex digits.
pub(crate) fn check_sha256(what: &str, s: &str) -> Result<(), String> {
    if s.len() == 64 && is_lower_hex(s) {
        Ok(())
    } else {
        Err(format!("{what} must be 64 lowercase hex digits"))
    }
}

/// Whether `s` is lowercase hex digits only.
pub(crate) fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        format_version: u32,
    }

    #[test]
    fn reads_a_plain_document() {
        let d: Doc = parse(b"format_version = 1\n", 64).expect("parses");
        assert_eq!(d.format_version, 1);
        assert!(check_version(d.format_version, 1).is_ok());
        assert!(check_version(2, 1).is_err());
    }

    #[test]
    fn refuses_what_is_not_strict_toml() {
        let too_big = parse::<Doc>(b"format_version = 1\n", 8).unwrap_err();
        assert!(too_big.contains("larger than"), "{too_big}");
        let bom = parse::<Doc>(b"\xEF\xBB\xBFformat_version = 1\n", 64).unwrap_err();
        assert!(bom.contains("byte order mark"), "{bom}");
        let utf8 = parse::<Doc>(b"format_version = \"\xff\"\n", 64).unwrap_err();
        assert_eq!(utf8, "not UTF-8");
        let unknown = parse::<Doc>(b"format_version = 1\nx = 2\n", 64).unwrap_err();
        assert!(!unknown.contains('\n'), "one line: {unknown}");
        assert!(unknown.contains("unknown field"), "{unknown}");
    }
}
