//! The entry list as pouch writes it: `[[entries]]` tables at the end of a
//! manifest, written and read line by line.
//!
//! A manifest's entry list grows with the bundle (a phone extraction holds
//! millions of files), so it does not go through the TOML crate's document
//! model, which costs about fifteen times the text in memory. pouch writes
//! the tables exactly as the TOML crate would (a test holds the two to the
//! same bytes), so any TOML reader still reads the file; pouch reads them
//! back with [`EntryLines`], one line at a time, as strictly as before:
//! only `[[entries]]` tables of the five known keys, each once, of the right
//! types. A line in a form pouch never writes but TOML allows (a comment
//! after a value, an escape in a string) is handed to the TOML parser on
//! its own, so both read the same value.

use std::fmt::Write as _;
use std::io::BufRead;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::manifest::{Entry, EntryKind};
use super::names::{self, Clash, NameSet};
use super::strict_toml::check_sha256;

/// The header line of one entry's table.
pub const HEADER: &str = "[[entries]]";

/// Appends `e` as one `[[entries]]` table, preceded by the blank line that
/// separates it from what comes before, as the TOML crate writes it.
pub fn write(out: &mut String, e: &Entry) {
    out.push('\n');
    out.push_str(HEADER);
    out.push_str("\npath = ");
    write_string(out, &e.path);
    out.push_str(match e.kind {
        EntryKind::File => "\nkind = \"file\"\n",
        EntryKind::Folder => "\nkind = \"folder\"\n",
    });
    if let Some(size) = e.size {
        let _ = writeln!(out, "size = {size}");
    }
    if let Some(sha) = &e.sha256 {
        out.push_str("sha256 = ");
        write_string(out, sha);
        out.push('\n');
    }
    out.push_str("mode = ");
    write_string(out, &e.mode);
    out.push('\n');
}

/// A text's first part followed by the `[[entries]]` tables of a list, read
/// as a stream: what [`write`] makes of the list, one entry in memory at a
/// time.
pub struct Rendered<'a> {
    entries: std::slice::Iter<'a, Entry>,
    buf: String,
    pos: usize,
}

impl<'a> Rendered<'a> {
    /// `head`, then the tables of `entries`.
    pub fn new(head: String, entries: &'a [Entry]) -> Self {
        Rendered {
            entries: entries.iter(),
            buf: head,
            pos: 0,
        }
    }

    /// How many bytes the stream holds.
    pub fn len(head: &str, entries: &[Entry]) -> u64 {
        entries
            .iter()
            .fold(head.len() as u64, |n, e| n + written_len(e) as u64)
    }
}

impl std::io::Read for Rendered<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(e) = self.entries.next() else {
                return Ok(0);
            };
            self.buf.clear();
            self.pos = 0;
            write(&mut self.buf, e);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf.as_bytes()[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// How many bytes [`write`] appends for `e`, counted without writing them.
pub fn written_len(e: &Entry) -> usize {
    let string_len = |s: &str| match plain(s) {
        true => s.len() + 2,
        false => {
            let mut out = String::new();
            write_string(&mut out, s);
            out.len()
        }
    };
    let kind = match e.kind {
        EntryKind::File => "\nkind = \"file\"\n".len(),
        EntryKind::Folder => "\nkind = \"folder\"\n".len(),
    };
    let size = e.size.map_or(0, |n| "size = \n".len() + decimal_digits(n));
    let sha = e
        .sha256
        .as_deref()
        .map_or(0, |h| "sha256 = \n".len() + string_len(h));
    "\n[[entries]]\npath = ".len()
        + string_len(&e.path)
        + kind
        + size
        + sha
        + "mode = \n".len()
        + string_len(&e.mode)
}

fn decimal_digits(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// Whether `s` is written as a basic string as it is: nothing in it needs
/// an escape.
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
}

/// A TOML string as the TOML crate writes it: a basic string when nothing in
/// it needs escaping (the case for every name without a double quote), else
/// whatever form the crate's writer chooses.
pub(crate) fn write_string(out: &mut String, s: &str) {
    if plain(s) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        let _ = write!(
            out,
            "{}",
            toml_writer::ToTomlValue::to_toml_value(
                &toml_writer::TomlStringBuilder::new(s).as_default()
            )
        );
    }
}

/// sha256 of the canonical encoding of an entry list, fed one entry at a
/// time (see [`super::manifest::entries_digest`] for the encoding).
#[derive(Clone)]
pub struct Digest {
    hash: Sha256,
    line: String,
}

impl Default for Digest {
    fn default() -> Self {
        let mut hash = Sha256::new();
        hash.update(b"pouch-entries-v1\n");
        Digest {
            hash,
            line: String::with_capacity(128),
        }
    }
}

impl Digest {
    /// Adds the next entry.
    pub fn update(&mut self, e: &Entry) {
        let kind = match e.kind {
            EntryKind::File => 'f',
            EntryKind::Folder => 'd',
        };
        let sha = e.sha256.as_deref().unwrap_or("-");
        self.line.clear();
        let _ = write!(
            self.line,
            "{kind} {} {} {sha} {}:",
            e.mode,
            e.file_size(),
            e.path.len()
        );
        self.hash.update(self.line.as_bytes());
        self.hash.update(e.path.as_bytes());
        self.hash.update(b"\n");
    }

    /// The digest, lowercase hex.
    pub fn finish(self) -> String {
        hex::encode(self.hash.finalize())
    }
}

/// Splits a manifest's text into what comes before its first
/// `[[entries]]` line and the entry list from that line on (`None` without
/// one). A `[[entries]]` line inside a multi-line string of the first part
/// leaves that part unterminated, so the TOML parser refuses it: the split
/// never changes what the text means.
pub fn split(text: &str) -> (&str, Option<&str>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end_matches(['\n', '\r']) == HEADER {
            return (&text[..at], Some(&text[at..]));
        }
        at += line.len();
    }
    (text, None)
}

/// Reads `[[entries]]` tables, one entry at a time, from the text that
/// [`split`] found after the first part of a manifest: in memory or in a
/// file, a line at a time, each at most [`MAX_LINE`] bytes.
pub struct EntryLines<R: BufRead> {
    input: R,
    peeked: Option<String>,
    line_no: usize,
    failed: bool,
}

/// The longest line read: far more than the longest name, escaped, needs.
pub const MAX_LINE: usize = 64 * 1024;

impl<R: BufRead> EntryLines<R> {
    /// Reads the entry list from `input`, which starts with its first header
    /// line; `first_line` is that line's number in the file, for errors.
    pub fn new(input: R, first_line: usize) -> Self {
        EntryLines {
            input,
            peeked: None,
            line_no: first_line.saturating_sub(1),
            failed: false,
        }
    }

    /// The next line, without its line break, left to be read again.
    fn peek(&mut self) -> Result<Option<&str>, String> {
        if self.peeked.is_none() {
            self.peeked = self.read_line()?;
        }
        Ok(self.peeked.as_deref())
    }

    /// The next line, read.
    fn next_line(&mut self) -> Result<Option<String>, String> {
        let line = match self.peeked.take() {
            Some(line) => Some(line),
            None => self.read_line()?,
        };
        if line.is_some() {
            self.line_no += 1;
        }
        Ok(line)
    }

    fn read_line(&mut self) -> Result<Option<String>, String> {
        let mut buf = Vec::new();
        let at = self.line_no + 1;
        let n = std::io::Read::take(&mut self.input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("line {at}: cannot be read ({e})"))?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        } else if buf.len() > MAX_LINE {
            return Err(format!("line {at}: longer than {MAX_LINE} bytes"));
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| format!("line {at}: not UTF-8"))
    }

    fn next_entry(&mut self) -> Result<Option<Entry>, String> {
        // Blank and comment lines may stand between tables.
        while self.peek()?.is_some_and(is_blank) {
            self.next_line()?;
        }
        let Some(header) = self.next_line()? else {
            return Ok(None);
        };
        if header.trim() != HEADER {
            return Err(self.at("only [[entries]] tables may follow the entry list's first one"));
        }
        let mut fields = Fields::default();
        while self
            .peek()?
            .is_some_and(|l| !l.trim_start().starts_with('['))
        {
            let Some(line) = self.next_line()? else {
                break;
            };
            if is_blank(&line) {
                continue;
            }
            let (key, value) = key_value(&line).map_err(|e| self.at(&e))?;
            fields.set(key, value).map_err(|e| self.at(&e))?;
        }
        fields.entry().map(Some).map_err(|e| self.at(&e))
    }

    fn at(&self, what: &str) -> String {
        format!("line {}: {what}", self.line_no)
    }
}

impl<R: BufRead> Iterator for EntryLines<R> {
    type Item = Result<Entry, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_entry().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// A value of one of an entry's keys.
#[derive(Deserialize)]
#[serde(untagged)]
enum Value {
    Int(i64),
    Text(String),
}

/// One `key = value` line. The form pouch writes (a bare key, a basic
/// string without escapes or a plain decimal) is read here; any other line
/// goes to the TOML parser whole, so that it means what TOML says.
fn key_value(line: &str) -> Result<(&'static str, Value), String> {
    // The first `=` (a one-character search, cheaper than one for " = ")
    // ends the key in the form pouch writes; a key never holds one.
    let Some((key, value)) = line.find('=').and_then(|i| {
        Some((
            line[..i].strip_suffix(' ')?,
            line[i + 1..].strip_prefix(' ')?,
        ))
    }) else {
        return toml_line(line);
    };
    let Some(key) = KEYS.iter().copied().find(|k| *k == key) else {
        return toml_line(line);
    };
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        if plain(inner) {
            return Ok((key, Value::Text(inner.to_string())));
        }
    } else if !value.is_empty()
        && value.len() <= 18
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'))
    {
        let n = value
            .parse()
            .map_err(|_| "a number out of range".to_string())?;
        return Ok((key, Value::Int(n)));
    }
    toml_line(line)
}

/// A line read by the TOML parser: exactly one key with a string or an
/// integer value.
fn toml_line(line: &str) -> Result<(&'static str, Value), String> {
    // The TOML parser costs memory by the item; a line of an entry has a
    // few, or as many as a name of dots and commas holds.
    if super::strict_toml::count_items(line) > LINE_ITEMS {
        return Err("a line with more items than an entry's key and value".into());
    }
    let table: toml::Table =
        toml::from_str(line).map_err(|e| super::strict_toml::one_line(&e.to_string()))?;
    let mut items = table.into_iter();
    let (Some((key, value)), None) = (items.next(), items.next()) else {
        return Err("expected one `key = value`".into());
    };
    let key = KEYS
        .iter()
        .find(|k| **k == key)
        .ok_or_else(|| format!("unknown key {key:?} in an entry"))?;
    let value = match value {
        toml::Value::String(s) => Value::Text(s),
        toml::Value::Integer(n) => Value::Int(n),
        _ => return Err(format!("{key} must be a string or a number")),
    };
    Ok((key, value))
}

/// The most TOML items [`toml_line`] reads from one line: more than a
/// name of the longest kind can hold.
const LINE_ITEMS: usize = crate::format::names::MAX_PATH_BYTES + 16;

const KEYS: [&str; 5] = ["path", "kind", "size", "sha256", "mode"];

/// The keys of one table so far.
#[derive(Default)]
struct Fields {
    path: Option<String>,
    kind: Option<EntryKind>,
    size: Option<u64>,
    sha256: Option<String>,
    mode: Option<String>,
}

impl Fields {
    fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        let twice = || format!("{key} is given twice in one entry");
        let text = |v: Value| match v {
            Value::Text(s) => Ok(s),
            Value::Int(_) => Err(format!("{key} must be a string")),
        };
        match key {
            "path" if self.path.is_none() => self.path = Some(text(value)?),
            "kind" if self.kind.is_none() => {
                self.kind = Some(match text(value)?.as_str() {
                    "file" => EntryKind::File,
                    "folder" => EntryKind::Folder,
                    other => return Err(format!("unknown kind {other:?}")),
                })
            }
            "size" if self.size.is_none() => match value {
                Value::Int(n) => {
                    self.size = Some(u64::try_from(n).map_err(|_| "size is negative")?)
                }
                Value::Text(_) => return Err("size must be a number".into()),
            },
            "sha256" if self.sha256.is_none() => self.sha256 = Some(text(value)?),
            "mode" if self.mode.is_none() => self.mode = Some(text(value)?),
            k if KEYS.contains(&k) => return Err(twice()),
            other => return Err(format!("unknown key {other:?} in an entry")),
        }
        Ok(())
    }

    fn entry(self) -> Result<Entry, String> {
        Ok(Entry {
            path: self.path.ok_or("an entry without a path")?,
            kind: self.kind.ok_or("an entry without a kind")?,
            size: self.size,
            sha256: self.sha256,
            mode: self.mode.ok_or("an entry without a mode")?,
        })
    }
}

/// Checks a list of entries on its own: safe, unique paths; each entry's parent
/// listed before it as a folder; file fields present; modes normalised.
pub fn check_entries(entries: &[Entry]) -> Result<(), String> {
    let mut check = EntryCheck::default();
    entries.iter().try_for_each(|e| check.next(e))
}

/// [`check_entries`] one entry at a time, for a list read as a stream.
#[derive(Default)]
pub struct EntryCheck {
    names: NameSet,
}

impl EntryCheck {
    /// Checks the next entry of the list.
    pub fn next(&mut self, e: &Entry) -> Result<(), String> {
        let names = &mut self.names;
        names::check_path(e.path.as_bytes()).map_err(|r| format!("entry {:?}: {r}", e.path))?;
        names
        .insert(&e.path, e.kind == EntryKind::Folder)
        .map_err(|clash| {
            let why = match clash {
                Clash::Reserved => "name is reserved".to_string(),
                Clash::Twice => "listed twice".to_string(),
                Clash::Collides(other) => format!(
                    "collides with {other:?} on filesystems that ignore case or Unicode normalisation"
                ),
                Clash::NoFolder => "its folder is not listed before it, with the folder's other entries".to_string(),
            };
            format!("entry {:?}: {why}", e.path)
        })?;
        match e.kind {
            EntryKind::File => {
                if e.size.is_none() {
                    return Err(format!("entry {:?}: a file needs a size", e.path));
                }
                match &e.sha256 {
                    Some(h) => {
                        check_sha256("sha256", h).map_err(|r| format!("entry {:?}: {r}", e.path))?
                    }
                    None => return Err(format!("entry {:?}: a file needs a sha256", e.path)),
                }
                if e.mode != "0644" && e.mode != "0755" {
                    return Err(format!("entry {:?}: mode must be 0644 or 0755", e.path));
                }
            }
            EntryKind::Folder => {
                if e.size.is_some() || e.sha256.is_some() {
                    return Err(format!(
                        "entry {:?}: a folder has no size or sha256",
                        e.path
                    ));
                }
                if e.mode != "0755" {
                    return Err(format!("entry {:?}: a folder's mode must be 0755", e.path));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::manifest::InnerManifest;
    use proptest::prelude::*;

    fn inner(entries: Vec<Entry>) -> InnerManifest {
        InnerManifest {
            format_version: 1,
            entries,
        }
    }

    fn by_hand(m: &InnerManifest) -> String {
        let mut s = String::from("format_version = 1\n");
        for e in &m.entries {
            write(&mut s, e);
        }
        s
    }

    fn read_back(text: &str) -> Result<Vec<Entry>, String> {
        let (_, tail) = split(text);
        EntryLines::new(tail.unwrap_or("").as_bytes(), 1).collect()
    }

    proptest! {
        #[test]
        fn written_as_the_toml_crate_writes_and_read_back(
            names in proptest::collection::vec("[a-z\"' é./#=\\[\\]]{1,12}", 1..6),
            size in 0u64..u64::MAX / 2,
        ) {
            let entries: Vec<Entry> = names
                .iter()
                .enumerate()
                .map(|(i, n)| if i % 2 == 0 {
                    Entry::file(n.clone(), size, "ab".repeat(32), i % 3 == 0)
                } else {
                    Entry::folder(n.clone())
                })
                .collect();
            let m = inner(entries.clone());
            let text = by_hand(&m);
            prop_assert_eq!(&text, &toml::to_string(&m).unwrap());
            prop_assert_eq!(Rendered::len("", &entries), text.len() as u64 - 19);
            prop_assert_eq!(read_back(&text).unwrap(), entries);
        }
    }

    #[test]
    fn lines_in_other_toml_forms_mean_what_toml_says() {
        let text = "[[entries]]\n  path = 'a\"b'  # quoted\n\"kind\" = \"fi\\u006Ce\"\n\
                    size = 0x10\nsha256 = \"\"\"x\"\"\"\n\n# between\nmode = \"0644\"\n";
        let got = read_back(text).unwrap();
        assert_eq!(got[0].path, "a\"b");
        assert_eq!(got[0].kind, EntryKind::File);
        assert_eq!(got[0].size, Some(16));
        assert_eq!(got[0].sha256.as_deref(), Some("x"));
    }

    #[test]
    fn anything_but_entry_tables_is_refused_with_its_line() {
        for (text, why) in [
            (
                "[[entries]]\npath = \"a\"\nkind = \"folder\"\nmode = \"0755\"\n[payload]\nsize = 1\n",
                "line 5: only [[entries]]",
            ),
            ("[[entries]]\npath = \"a\"\npath = \"b\"\n", "line 3: path is given twice"),
            ("[[entries]]\nowner = \"root\"\n", "unknown key \"owner\""),
            ("[[entries]]\npath = \"a\"\nkind = \"link\"\nmode = \"0644\"\n", "unknown kind"),
            ("[[entries]]\nsize = -1\n", "negative"),
            ("[[entries]]\nsize = 01\n", "line 2:"),
            ("[[entries]]\npath = [\"a\"]\n", "must be a string or a number"),
            ("[[entries]]\npath.x = \"a\"\n", "must be a string or a number"),
            ("[[entries]]\nkind = \"file\"\nmode = \"0644\"\n", "without a path"),
            ("[[entries]]\npath = \"a\nb\"\n", "line 2:"),
        ] {
            let err = read_back(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_line_of_many_items_is_refused_before_the_toml_parser_reads_it() {
        let line = format!("[[entries]]\n{} = 1\n", vec!["a"; 10_000].join("."));
        let err = read_back(&line).unwrap_err();
        assert!(err.contains("more items"), "{err}");
    }

    #[test]
    fn a_line_longer_than_any_entry_needs_is_refused_unread() {
        let line = format!("[[entries]]\npath = \"{}\"\n", "a".repeat(MAX_LINE * 4));
        let err = read_back(&line).unwrap_err();
        assert!(err.contains("line 2: longer than"), "{err}");
    }

    #[test]
    fn entries_in_the_first_part_and_as_tables_are_refused() {
        let m = crate::format::manifest::Manifest::parse(
            include_bytes!("../../manifests/bundle.toml"),
            std::path::Path::new("bundle.toml"),
        )
        .expect("the example parses");
        let twice = format!(
            "entries = [{{ path = \"x\", kind = \"folder\", mode = \"0755\" }}]\n{}",
            m.to_toml()
        );
        let err = crate::format::manifest::Manifest::parse(twice.as_bytes(), "b.toml".as_ref())
            .unwrap_err();
        assert!(err.to_string().contains("entries are given twice"), "{err}");
    }

    #[test]
    fn a_header_inside_a_string_does_not_split_the_meaning() {
        let text = "description = \"\"\"\n[[entries]]\npath = \"x\"\n\"\"\"\n";
        let (head, tail) = split(text);
        assert!(tail.is_some());
        assert!(toml::from_str::<toml::Table>(head).is_err());
    }

    #[test]
    fn the_digest_fed_one_entry_at_a_time_is_the_lists() {
        let list = [
            Entry::folder("a".into()),
            Entry::file("a/b".into(), 3, "cd".repeat(32), true),
        ];
        let mut d = Digest::default();
        list.iter().for_each(|e| d.update(e));
        let encoding = format!(
            "pouch-entries-v1\nd 0755 0 - 1:a\nf 0755 3 {} 3:a/b\n",
            "cd".repeat(32)
        );
        assert_eq!(d.finish(), hex::encode(Sha256::digest(encoding)));
    }
}
