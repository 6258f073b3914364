//! Names that every filesystem a bundle may be unpacked on can hold.
//!
//! Bundles are unpacked on Linux, Windows and macOS machines, onto NTFS,
//! exFAT, FAT32, APFS and ext4. A name that one of them cannot create
//! (reserved device names, forbidden characters, trailing dots or spaces,
//! components over 255 UTF-16 units) would fail there, or worse, be silently
//! changed. pack refuses such names, listing every offending path, unless the
//! clerk says `--allow-unportable-names`. Names that collide when case or
//! Unicode normalisation is ignored are refused by [`crate::payload::archive::fold`]
//! checks at pack and unpack time.

/// Windows' reserved device names; reserved with any extension too.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters NTFS, exFAT and FAT forbid in names.
const FORBIDDEN: &[char] = &['<', '>', ':', '"', '|', '?', '*', '\\'];

/// What makes `path` unportable, one reason per offending component; empty
/// when it is portable.
pub fn problems(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('/') {
        let stem = part.split('.').next().unwrap_or(part).trim_end_matches(' ');
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
            out.push(format!("{part:?} is a reserved device name on Windows"));
        }
        if let Some(c) = part
            .chars()
            .find(|c| FORBIDDEN.contains(c) || c.is_control())
        {
            out.push(format!(
                "{part:?} holds {c:?}, which Windows and FAT/exFAT forbid"
            ));
        }
        if part.ends_with('.') || part.ends_with(' ') {
            out.push(format!(
                "{part:?} ends in a dot or space, which Windows drops"
            ));
        }
        if part.encode_utf16().count() > 255 {
            out.push(format!("{part:?} is longer than 255 UTF-16 units"));
        }
    }
    out
}

/// `s` in Unicode normalisation form C, as names are stored in bundles.
pub fn nfc(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_portable() {
        for p in [
            "case/report.pdf",
            "Zeugenaussage Müller.txt",
            "a.b.c",
            "console.txt",
            "COM10",
            "漢字/ß",
        ] {
            assert!(problems(p).is_empty(), "{p}: {:?}", problems(p));
        }
    }

    #[test]
    fn each_forbidden_form_is_reported() {
        let cases = [
            ("CON", "reserved"),
            ("a/nul.txt", "reserved"),
            ("Com1.log", "reserved"),
            ("lpt9", "reserved"),
            ("a<b", "forbid"),
            ("a>b", "forbid"),
            ("a:b", "forbid"),
            ("a\"b", "forbid"),
            ("a|b", "forbid"),
            ("a?b", "forbid"),
            ("a*b", "forbid"),
            ("trailing.", "dot or space"),
            ("trailing ", "dot or space"),
        ];
        for (p, why) in cases {
            let found = problems(p);
            assert!(found.iter().any(|f| f.contains(why)), "{p}: {found:?}");
        }
        assert!(!problems(&"é".repeat(256)).is_empty());
        assert!(problems(&"é".repeat(255)).is_empty());
    }

    #[test]
    fn names_are_stored_in_nfc() {
        assert_eq!(nfc("cafe\u{301}"), "caf\u{e9}");
    }
}
