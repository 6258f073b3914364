//! The one policy for entry names: what a name in a bundle may be, when two
//! names are one file on the recipient's disk, which names every filesystem
//! can hold, and how a name is shown to a person.
//!
//! pack, the manifest check and the archive reader all go through this module,
//! so a rule added here holds everywhere:
//! - [`check_path`]: relative, `/`-separated UTF-8 with no `.`, `..`, empty,
//!   drive-letter or `~` components, no control characters, within the length
//!   and depth limits;
//! - [`NameSet`]: each name once, never pouch's own [`INNER_MANIFEST_NAME`],
//!   no two names equal under [`fold`] (NTFS, exFAT, FAT and APFS would make
//!   them one file), and every entry's folder before it;
//! - [`unportable`]: names some filesystem cannot create (reserved device
//!   names, forbidden characters, trailing dots or spaces, long components);
//!   pack refuses them unless the clerk allows them;
//! - [`nfc`]: names are stored in Unicode normalisation form C;
//! - [`escape`]: a bundle's names are chosen by whoever made the bundle.
//!   Printed raw, a name could move the cursor, recolour the screen, or (with
//!   bidirectional overrides) make `invoice.exe` look like `exe.eciovni`, so
//!   every name from a bundle goes through [`escape`] before it is shown.

use std::collections::HashMap;

/// The name of the inner manifest, the archive's last member; no entry may
/// have it.
pub const INNER_MANIFEST_NAME: &str = ".pouch-manifest.toml";

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Deepest nesting accepted, in path components.
pub const MAX_DEPTH: usize = 128;
/// Longest path component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Checks that a path from an archive or manifest is safe to create below a
/// destination folder. Returns what is wrong otherwise.
///
/// ```
/// use pouch::format::names::check_path;
/// assert!(check_path(b"case/report.pdf").is_ok());
/// assert!(check_path(b"../etc/passwd").is_err());
/// assert!(check_path(b"/etc/passwd").is_err());
/// ```
pub fn check_path(path: &[u8]) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty name".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("name longer than {MAX_PATH_BYTES} bytes"));
    }
    let path = std::str::from_utf8(path).map_err(|_| "name is not UTF-8".to_string())?;
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!("name holds control character U+{:04X}", c as u32));
    }
    if path.contains('\\') {
        return Err("name holds a backslash".into());
    }
    if path.starts_with('/') {
        return Err("absolute path".into());
    }
    if path.split('/').count() > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    for (i, part) in path.split('/').enumerate() {
        match part {
            "" => return Err("empty path component".into()),
            "." | ".." => return Err(format!("{part:?} component")),
            _ => {}
        }
        if part.len() > MAX_COMPONENT_BYTES {
            return Err(format!("component longer than {MAX_COMPONENT_BYTES} bytes"));
        }
        if i == 0 {
            let b = part.as_bytes();
            if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
                return Err("drive-letter path".into());
            }
            if part.starts_with('~') {
                return Err("home-folder path (~)".into());
            }
        }
    }
    Ok(())
}

/// The key under which two names collide on case-insensitive or
/// normalising filesystems (NTFS, exFAT, FAT, APFS).
///
/// Full Unicode case folding (unicase, from Unicode's CaseFolding.txt) of the
/// name in NFC, normalised again: σ and ς, µ and μ, s and ſ, K and the Kelvin
/// sign K all fold to one key, where lower-casing would keep them apart.
pub fn fold(path: &str) -> String {
    // ASCII is in NFC already, and folds to its lower case.
    if path.is_ascii() {
        return path.to_ascii_lowercase();
    }
    nfc(&unicase::UniCase::unicode(nfc(path)).to_folded_case())
}

/// Why a name cannot join the names before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    /// The name is the inner manifest's.
    Reserved,
    /// The same name came before.
    Twice,
    /// This earlier name is the same file where case or Unicode
    /// normalisation is ignored.
    Collides(String),
    /// The name's folder did not come before it, or other entries came
    /// between the folder's own (a bundle lists each folder's entries
    /// together, right after it, as a walk of the tree does).
    NoFolder,
}

/// The names of a bundle so far, in order: refuses a name that would clash
/// with them on the recipient's disk (see [`Clash`]). Names must have passed
/// [`check_path`].
///
/// Two names that are one file on some filesystem are siblings: their
/// folders, listed first, would have clashed otherwise. And a folder's
/// entries come together, right after it. So only the names in the folders
/// on the way to the last entry are kept: memory follows the tree's width,
/// not its number of files.
#[derive(Debug, Default)]
pub struct NameSet {
    /// The folders open on the way to the last name, outermost first; the
    /// first is the bundle's top.
    open: Vec<Level>,
}

/// A folder still open, with the names in it so far.
#[derive(Debug, Default)]
struct Level {
    path: String,
    /// Folded name to the name as listed.
    names: HashMap<String, String>,
}

impl NameSet {
    /// Adds `path`, a folder or a file.
    pub fn insert(&mut self, path: &str, folder: bool) -> Result<(), Clash> {
        if path == INNER_MANIFEST_NAME {
            return Err(Clash::Reserved);
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        if self.open.is_empty() {
            self.open.push(Level::default());
        }
        // Close the folders this name is not in; the top stays open.
        while self.open.len() > 1 && self.open.last().is_some_and(|l| l.path != parent) {
            self.open.pop();
        }
        let Some(level) = self.open.last_mut().filter(|l| l.path == parent) else {
            return Err(Clash::NoFolder);
        };
        let key = fold(name);
        if let Some(other) = level.names.get(&key) {
            return Err(match other == name {
                true => Clash::Twice,
                false if parent.is_empty() => Clash::Collides(other.clone()),
                false => Clash::Collides(format!("{parent}/{other}")),
            });
        }
        level.names.insert(key, name.to_string());
        if folder {
            self.open.push(Level {
                path: path.to_string(),
                names: HashMap::new(),
            });
        }
        Ok(())
    }
}

/// Windows' reserved device names; reserved with any extension too.
const RESERVED: &[&str] = &[
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "COM0",
    "COM1",
    "COM2",
    "COM3",
    "COM4",
    "COM5",
    "COM6",
    "COM7",
    "COM8",
    "COM9",
    "COM\u{b9}",
    "COM\u{b2}",
    "COM\u{b3}",
    "LPT0",
    "LPT1",
    "LPT2",
    "LPT3",
    "LPT4",
    "LPT5",
    "LPT6",
    "LPT7",
    "LPT8",
    "LPT9",
    "LPT\u{b9}",
    "LPT\u{b2}",
    "LPT\u{b3}",
];

/// Characters NTFS, exFAT and FAT forbid in names.
const FORBIDDEN: &[char] = &['<', '>', ':', '"', '|', '?', '*', '\\'];

/// What makes `path` unportable, one reason per offending component; empty
/// when it is portable.
pub fn unportable(path: &str) -> Vec<String> {
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
    if s.is_ascii() {
        return s.to_string();
    }
    s.nfc().collect()
}

/// Returns `name` with control, bidirectional-formatting and other invisible
/// formatting characters replaced by `\u{…}` escapes, and backslashes doubled,
/// so that the result shows exactly one way on any terminal.
///
/// ```
/// use pouch::format::names::escape;
/// assert_eq!(escape("invoice\u{202E}fdp.exe"), "invoice\\u{202e}fdp.exe");
/// assert_eq!(escape("Zeugenaussage Müller.txt"), "Zeugenaussage Müller.txt");
/// ```
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` made safe for a terminal, as the last step before it is written:
/// every character [`escape`] escapes (control, bidi and invisible ones)
/// except the line break becomes `\u{..}`; backslashes are left as they are,
/// so text escaped before is not escaped twice.
pub fn for_terminal(text: &str) -> std::borrow::Cow<'_, str> {
    escape_with(text, |c, out| {
        out.push_str(&format!("\\u{{{:x}}}", c as u32))
    })
}

/// JSON text made safe for a terminal: the characters [`for_terminal`]
/// escapes become JSON's `\uXXXX` (in JSON text they can only stand inside
/// strings, where that escape means the same character), so the output is
/// the same JSON value.
pub fn for_terminal_json(text: &str) -> std::borrow::Cow<'_, str> {
    escape_with(text, |c, out| {
        // Outside the Basic Multilingual Plane, JSON's escape is a
        // UTF-16 surrogate pair.
        for unit in c.encode_utf16(&mut [0; 2]) {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    })
}

fn escape_with(text: &str, write: impl Fn(char, &mut String)) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c != '\n' && needs_escape(c);
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            write(c, &mut out);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Characters that change how surrounding text is shown, or are invisible.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{AD}' // soft hyphen
            | '\u{61C}' // Arabic letter mark (bidi)
            | '\u{180E}' // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width spaces and joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}' // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}' // byte order mark
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
            | '\u{1D173}'..='\u{1D17A}' // musical formatting
            | '\u{E0000}'..='\u{E007F}' // tags
        )
}

/// A bundle name is a single, portable file-name stem.
pub fn check_bundle_name(name: &str) -> Result<(), String> {
    let ok = short_name(name, 100, b"._-+") && !name.starts_with(['.', '-']);
    ok.then_some(()).ok_or_else(|| {
        format!(
            "bundle name {name:?} must be 1-100 characters of A-Z a-z 0-9 . _ - +, not starting with . or -"
        )
    })
}

/// A party (sender, receiver) name.
pub fn check_party_name(name: &str) -> Result<(), String> {
    short_name(name, 64, b"._-")
        .then_some(())
        .ok_or_else(|| format!("{name:?} must be 1-64 characters of A-Z a-z 0-9 . _ -"))
}

/// Whether `name` is 1 to `max` bytes of ASCII letters, digits and `extra`.
fn short_name(name: &str, max: usize, extra: &[u8]) -> bool {
    (1..=max).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// `n` things, in the singular for one: `1 file`, `2 files` (`thing` is
/// the singular; the plural adds an `s`).
pub fn counted(n: u64, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        n => format!("{n} {thing}s"),
    }
}

/// A size for people: `512 B`, `1.4 MiB` (powers of 1024).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_filters_keep_json_valid_and_text_readable() {
        let evil = "a\u{1b}[2J\nb\u{202e}\u{61c}\u{e0001}\\";
        assert_eq!(
            for_terminal(evil),
            "a\\u{1b}[2J\nb\\u{202e}\\u{61c}\\u{e0001}\\"
        );
        let json = serde_json::to_string(&evil).unwrap();
        let safe = for_terminal_json(&json);
        assert!(safe.contains("\\udb40\\udc01"), "{safe}");
        let back: String = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, evil, "the same JSON value");
    }

    #[test]
    fn accepts_ordinary_relative_paths() {
        for p in [
            "a",
            "case/report.pdf",
            "Zeugenaussage Müller.txt",
            "a/.hidden",
            "a/b..c",
            "..a",
        ] {
            assert!(check_path(p.as_bytes()).is_ok(), "{p}");
        }
    }

    #[test]
    fn refuses_paths_that_could_escape_or_deceive() {
        let bad: &[&[u8]] = &[
            b"",
            b"/x",
            b"//x",
            b"../x",
            b"a/../../x",
            b"a/./b",
            b"a//b",
            b"a/",
            b".",
            b"..",
            b"C:/x",
            b"C:\\x",
            b"\\\\server\\x",
            b"~user/x",
            b"a\0b",
            b"a\nb",
            b"a\x1bb",
            b"\xff\xfe",
        ];
        for p in bad {
            assert!(check_path(p).is_err(), "{:?}", String::from_utf8_lossy(p));
        }
        assert!(check_path("a".repeat(256).as_bytes()).is_err());
    }

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
            assert!(unportable(p).is_empty(), "{p}: {:?}", unportable(p));
        }
    }

    #[test]
    fn each_forbidden_form_is_reported() {
        let cases = [
            ("CON", "reserved"),
            ("a/nul.txt", "reserved"),
            ("Com1.log", "reserved"),
            ("lpt9", "reserved"),
            ("COM\u{b9}", "reserved"),
            ("lpt\u{b3}.txt", "reserved"),
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
            let found = unportable(p);
            assert!(found.iter().any(|f| f.contains(why)), "{p}: {found:?}");
        }
        assert!(!unportable(&"é".repeat(256)).is_empty());
        assert!(unportable(&"é".repeat(255)).is_empty());
    }

    #[test]
    fn names_are_stored_in_nfc() {
        assert_eq!(nfc("cafe\u{301}"), "caf\u{e9}");
    }

    #[test]
    fn plain_names_pass_unchanged() {
        assert_eq!(
            escape("case/Zeugenaussage Müller.txt"),
            "case/Zeugenaussage Müller.txt"
        );
    }

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(escape("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape("inv\u{202E}txt.exe"), "inv\\u{202e}txt.exe");
        assert_eq!(escape("line\nbreak"), "line\\u{a}break");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn a_name_set_refuses_what_would_clash_on_disk() {
        let mut set = NameSet::default();
        assert_eq!(set.insert("case", true), Ok(()));
        assert_eq!(set.insert("case/report.pdf", false), Ok(()));
        assert_eq!(set.insert("case/report.pdf", false), Err(Clash::Twice));
        assert_eq!(
            set.insert("case/Report.PDF", false),
            Err(Clash::Collides("case/report.pdf".into()))
        );
        assert_eq!(
            set.insert("cafe\u{301}", false),
            Ok(()),
            "the first spelling is fine"
        );
        assert_eq!(
            set.insert("caf\u{e9}", false),
            Err(Clash::Collides("cafe\u{301}".into())),
            "NFC-equal names are one file on APFS"
        );
        assert_eq!(
            set.insert("case/later.txt", false),
            Err(Clash::NoFolder),
            "case's entries are together"
        );
        assert_eq!(set.insert("case", true), Err(Clash::Twice));
        assert_eq!(
            set.insert("cafe\u{301}/x", false),
            Err(Clash::NoFolder),
            "a file is no folder"
        );
        assert_eq!(set.insert("b", true), Ok(()));
        assert_eq!(set.insert("b/c", true), Ok(()));
        assert_eq!(set.insert("b/c/d", false), Ok(()));
        assert_eq!(set.insert("b/e", false), Ok(()), "back up one level");
        assert_eq!(set.insert("b/C", false), Err(Clash::Collides("b/c".into())));
        for (a, b) in [
            ("\u{3c3}", "\u{3c2}"),
            ("\u{b5}", "\u{3bc}"),
            ("s", "\u{17f}"),
            ("k", "\u{212a}"),
            ("stra\u{df}e", "STRASSE"),
        ] {
            assert_eq!(fold(a), fold(b), "{a:?} and {b:?} are one file");
        }
        assert_ne!(fold("a"), fold("b"));
        assert_eq!(set.insert("other/x", false), Err(Clash::NoFolder));
        assert_eq!(
            set.insert("case/report.pdf/x", false),
            Err(Clash::NoFolder),
            "a file is no folder"
        );
        assert_eq!(set.insert(INNER_MANIFEST_NAME, false), Err(Clash::Reserved));
    }

    #[test]
    fn ascii_folds_and_normalises_as_full_unicode_does() {
        use unicode_normalization::UnicodeNormalization;
        let all: String = (0u8..128).map(char::from).collect();
        assert_eq!(nfc(&all), all.nfc().collect::<String>());
        let slow: String = unicase::UniCase::unicode(all.as_str()).to_folded_case();
        assert_eq!(fold(&all), slow.nfc().collect::<String>());
    }
}
