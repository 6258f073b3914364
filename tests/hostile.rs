//! Hostile bundles, swept by one test. Each case builds a bundle the way an
//! attacker could (most are correctly signed and encrypted, as with a stolen
//! signing key, so they reach the layer under test) and states the outcome it
//! must have. For every case, `unpack` and `verify -i` must both exit with the
//! stated code and name the check; DEST must be left exactly as it was, with
//! no staging folder; nothing may appear outside DEST.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::forge::{self, Member};
use common::{names, passes, unpack_cmd, Keys, World};
use pouch::format::manifest::{Contents, Entry, InnerManifest};
use pouch::payload::hashing::sha256_hex;

struct Ctx {
    clerk: Keys,
    stranger: Keys,
}

type Build = Box<dyn Fn(&Ctx, &Path) -> PathBuf>;

struct Case {
    name: &'static str,
    build: Build,
    /// Exit code both commands must give.
    code: i32,
    /// Text the error must contain.
    expect: &'static str,
}

impl Case {
    /// A case that `build` makes, and that must fail with exit code 1 and an
    /// error containing `expect`.
    fn new(
        name: &'static str,
        expect: &'static str,
        build: impl Fn(&Ctx, &Path) -> PathBuf + 'static,
    ) -> Case {
        Case {
            name,
            build: Box::new(build),
            code: 1,
            expect,
        }
    }
}

/// Generous signed counts for sealed-names bundles, so that the check under
/// test, not the counts, decides.
fn counts() -> Contents {
    Contents {
        files: 8,
        folders: 8,
        total_bytes: 4096,
        entries_sha256: "0".repeat(64),
        sealed_names: true,
    }
}

/// Bundle `evil` in `dir` of the archive `tar`, with [`counts`], sealed to
/// `to` and signed with `by`'s key.
fn evil(dir: &Path, tar: &[u8], to: &Keys, by: &Keys) -> PathBuf {
    forge::bundle(dir, "evil", tar, counts(), &to.recipient, &by.secret)
}

/// The archive of one file `a` holding `x`.
fn one_file() -> Vec<u8> {
    forge::tar(&[Member::file("a", b"x")])
}

/// The signed entry of file `path` holding `data`.
fn entry(path: &str, data: &[u8], executable: bool) -> Entry {
    Entry::file(path.into(), data.len() as u64, sha256_hex(data), executable)
}

/// A case whose archive is the given members (with the end marker).
fn members(name: &'static str, m: Vec<Member>, expect: &'static str) -> Case {
    let tar = forge::tar(&m);
    raw_tar(name, tar, expect)
}

/// A case whose archive is the given raw bytes.
fn raw_tar(name: &'static str, tar: Vec<u8>, expect: &'static str) -> Case {
    Case::new(name, expect, move |c, dir| {
        evil(dir, &tar, &c.clerk, &c.clerk)
    })
}

/// Counts for a payload of up to 1 MiB.
fn mib_counts() -> Contents {
    Contents {
        total_bytes: 1 << 20,
        ..counts()
    }
}

/// A case whose age plaintext (normally zstd of a tar) is the given bytes.
fn plaintext(name: &'static str, bytes: Vec<u8>, expect: &'static str) -> Case {
    Case::new(name, expect, move |c, dir| {
        let (to, key) = (&c.clerk.recipient, &c.clerk.secret);
        forge::bundle_from_plaintext(dir, "evil", &bytes, mib_counts(), to, key)
    })
}

/// A case whose payload (the age file) is made from a valid one by `edit`,
/// and then signed as it is.
fn payload(name: &'static str, edit: fn(Vec<u8>) -> Vec<u8>, expect: &'static str) -> Case {
    Case::new(name, expect, move |c, dir| {
        let (to, key) = (&c.clerk.recipient, &c.clerk.secret);
        let zstd = zstd::encode_all(&forge::tar(&big_members())[..], 1).expect("zstd");
        let bad = edit(forge::encrypt(&zstd, to));
        forge::bundle_from_payload(dir, "evil", &bad, mib_counts(), to, key)
    })
}

/// A case whose manifest text is made from a valid one by `edit`, then signed
/// with the trusted key, so that parsing is reached.
fn manifest(name: &'static str, edit: fn(String) -> String, expect: &'static str) -> Case {
    Case::new(name, expect, move |c, dir| {
        let m = evil(dir, &one_file(), &c.clerk, &c.clerk);
        let text = edit(fs::read_to_string(&m).expect("read"));
        let key = forge::key(&c.clerk.secret);
        forge::signed_manifest(dir, "evil", text.as_bytes(), forge::BUNDLE_ID, &key)
    })
}

/// 200 KiB of incompressible data: several 64 KiB age chunks.
fn big_members() -> Vec<Member> {
    vec![Member::file("big", &common::noise(200 * 1024, 3))]
}

fn raw_member(name: &[u8], kind: u8, data: &[u8]) -> Member {
    Member {
        name: name.to_vec(),
        kind,
        data: data.to_vec(),
        link: Vec::new(),
        mode: 0o644,
    }
}

/// A consistent inner manifest for `entries`, as a tar member.
fn inner(entries: Vec<Entry>) -> Member {
    let text = InnerManifest {
        format_version: 1,
        entries,
    }
    .to_toml();
    Member::file(".pouch-manifest.toml", text.as_bytes())
}

/// Writes the checksum of tar header `h` anew, after an edit.
fn rechecksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// The offset just past the age header (the line ending in the MAC) plus the
/// 16-byte stream nonce: where the first 64 KiB chunk starts.
fn payload_start(age: &[u8]) -> usize {
    let mac = age
        .windows(4)
        .position(|w| w == b"\n---")
        .expect("age header");
    let end = mac
        + age[mac + 1..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("mac line")
        + 2;
    end + 16
}

const CHUNK: usize = 64 * 1024 + 16;

/// A case of one raw member: case name, member name, type, data, error.
type RawCase = (&'static str, &'static [u8], u8, &'static [u8], &'static str);

/// 1–5: names that escape or deceive, links, special files, duplicates.
fn name_cases() -> Vec<Case> {
    // Archives of one file holding `x`, by its name.
    let one: Vec<Case> = [
        ("dotdot", "../escape.txt", "\"..\" component"),
        ("absolute", "/tmp/pouch-escape.txt", "absolute path"),
        ("double-slash", "//tmp/pouch-escape.txt", "absolute path"),
        ("drive-slash", "C:/escape.txt", "drive-letter"),
        ("drive-backslash", "C:\\escape.txt", "backslash"),
        ("unc", "\\\\server\\share\\x", "backslash"),
        ("home", "~root/escape.txt", "home-folder"),
        ("control", "a\x1b[2Jb", "control character"),
        ("orphan", "nofolder/a", "folder does not come before it"),
    ]
    .into_iter()
    .map(|(name, path, expect)| members(name, vec![Member::file(path, b"x")], expect))
    .collect();
    // Archives of one member given byte for byte: name, type, data.
    let raw: [RawCase; 4] = [
        ("empty-name", b"", b'0', b"x", "empty name"),
        ("dot", b".", b'5', b"", "\".\" component"),
        ("non-utf8", b"\xff\xfe", b'0', b"x", "not UTF-8"),
        ("folder-with-data", b"d", b'5', b"data", "folder with data"),
    ];
    let raw = raw.into_iter().map(|(name, path, kind, data, expect)| {
        members(name, vec![raw_member(path, kind, data)], expect)
    });
    // Archives of one link or special file: name, type, link target.
    let special = [
        ("symlink-absolute", "link", b'2', "/etc", "symbolic link"),
        ("symlink-relative", "link", b'2', "../..", "symbolic link"),
        ("symlink-dangling", "link", b'2', "nowhere", "symbolic link"),
        ("hardlink-outside", "b", b'1', "/etc/passwd", "hard link"),
        ("fifo", "fifo", b'6', "", "FIFO"),
        ("chardev", "null", b'3', "", "character device"),
        ("blockdev", "sda", b'4', "", "block device"),
        ("unknown-type", "odd", b'Z', "", "unsupported type"),
        ("sparse", "s", b'S', "", "sparse file"),
    ]
    .into_iter()
    .map(|(name, path, kind, link, expect)| {
        members(name, vec![Member::special(path, kind, link)], expect)
    });
    // Two files (holding `x` and `y`) that one disk holds as one: by case,
    // by normalisation, and pairs that only full Unicode case folding joins
    // (NTFS, APFS and exFAT hold each pair as one file).
    let colliding = [
        ("duplicate-case", ["Report.txt", "report.txt"]),
        ("duplicate-nfc", ["caf\u{e9}", "cafe\u{301}"]),
        ("duplicate-fold-sigma", ["\u{3c3}.txt", "\u{3c2}.txt"]),
        ("duplicate-fold-micro", ["\u{b5}", "\u{3bc}"]),
        ("duplicate-fold-long-s", ["s", "\u{17f}"]),
        ("duplicate-fold-kelvin", ["k", "\u{212a}"]),
    ]
    .into_iter()
    .map(|(name, [a, b])| {
        let pair = vec![Member::file(a, b"x"), Member::file(b, b"y")];
        members(name, pair, "collides with")
    });
    let long_nul = [b"a\0b".as_slice(), &[b'c'; 120]].concat();
    let too_deep = "a/".repeat(129);
    let mut v: Vec<Case> = one.into_iter().chain(raw).chain(special).collect();
    v.extend(colliding);
    v.extend([
        members(
            "dotdot-deep",
            vec![
                Member::folder("a"),
                Member::file("a/../../escape.txt", b"x"),
            ],
            "\"..\" component",
        ),
        members(
            "nul-in-long-name",
            vec![raw_member(&long_nul, b'0', b"x")],
            "control character",
        ),
        members(
            "too-deep",
            vec![Member::file(too_deep.trim_end_matches('/'), b"x")],
            "deeper than 128",
        ),
        members(
            "symlink-then-write-through",
            vec![
                Member::special("link", b'2', "/tmp"),
                Member::file("link/x", b"x"),
            ],
            "symbolic link",
        ),
        members(
            "symlink-then-folder",
            vec![Member::special("d", b'2', "/tmp"), Member::folder("d")],
            "symbolic link",
        ),
        members(
            "hardlink",
            vec![Member::file("a", b"x"), Member::special("b", b'1', "a")],
            "hard link",
        ),
        members(
            "duplicate",
            vec![Member::file("a", b"x"), Member::file("a", b"y")],
            "appears twice",
        ),
        members(
            "folder-twice",
            vec![Member::folder("d"), Member::folder("d")],
            "appears twice",
        ),
    ]);
    v
}

/// 6: parser differentials.
fn tar_cases() -> Vec<Case> {
    let big = 1u64 << 30;
    let pax = |size| forge::header(b"././@PaxHeader", b'x', size, 0o644, b"").to_vec();
    vec![
        raw_tar(
            "missing-end-marker",
            forge::tar_body(&[Member::file("a", b"x")]),
            "end-of-archive marker",
        ),
        raw_tar(
            "half-end-marker",
            [forge::tar_body(&[Member::file("a", b"x")]), vec![0u8; 512]].concat(),
            "end-of-archive marker",
        ),
        raw_tar(
            "data-after-end",
            [one_file(), b"PAYLOAD".to_vec()].concat(),
            "data follows the end",
        ),
        raw_tar(
            "member-after-end",
            [one_file(), forge::tar(&[Member::file("b", b"y")])].concat(),
            "data follows the end",
        ),
        raw_tar(
            "pax-size",
            [
                pax(12),
                b"12 size=99\n\0".to_vec(),
                vec![0u8; 500],
                one_file(),
            ]
            .concat(),
            "PAX",
        ),
        raw_tar(
            "global-pax",
            [
                forge::header(b"pax_global", b'g', 0, 0o644, b"").to_vec(),
                forge::tar(&[]),
            ]
            .concat(),
            "PAX",
        ),
        raw_tar(
            "pax-before-long-name",
            [pax(0), forge::tar(&[raw_member(&[b'a'; 150], b'0', b"x")])].concat(),
            "PAX",
        ),
        raw_tar(
            "doubled-long-name",
            {
                let mut t = Vec::new();
                for _ in 0..2 {
                    t.extend_from_slice(&forge::header(b"././@LongLink", b'L', 4, 0o644, b""));
                    t.extend_from_slice(b"abc\0");
                    t.resize(t.len().div_ceil(512) * 512, 0);
                }
                t.extend(one_file());
                t
            },
            "two long-name records",
        ),
        raw_tar(
            "long-name-1-gib",
            [
                forge::header(b"././@LongLink", b'L', big, 0o644, b"").to_vec(),
                vec![b'a'; 4096],
            ]
            .concat(),
            "long-name record of 1073741824",
        ),
        raw_tar(
            "size-u64-max",
            {
                let mut h = forge::header(b"a", b'0', 0, 0o644, b"");
                h[124..136].copy_from_slice(&[
                    0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ]);
                rechecksum(&mut h);
                [h.to_vec(), vec![0u8; 1024]].concat()
            },
            "more bytes than the signed manifest counts",
        ),
        raw_tar(
            "bad-checksum",
            {
                let mut t = one_file();
                t[0] = b'b';
                t
            },
            "checksum",
        ),
    ]
}

/// 8: contents that disagree with what was signed.
fn inner_cases() -> Vec<Case> {
    let x = || entry("a", b"x", false);
    let a = || Member::file("a", b"x");
    let mut v = vec![
        members("no-inner-manifest", vec![a()], "no inner manifest"),
        members(
            "after-inner-manifest",
            vec![a(), inner(vec![x()]), Member::file("b", b"y")],
            "comes after the inner manifest",
        ),
        members(
            "inner-manifest-lies",
            vec![Member::file("a", b"y"), inner(vec![x()])],
            "inner manifest differs",
        ),
        members(
            "inner-manifest-short",
            vec![
                a(),
                Member::file(".pouch-manifest.toml", b"format_version = 1\n"),
            ],
            "does not list the entries",
        ),
        members(
            "counts-exceeded",
            (0..17)
                .map(|i| Member::file(&format!("f{i}"), b"x"))
                .collect(),
            "more entries than the signed manifest counts",
        ),
        members(
            "consistent-but-not-signed",
            vec![a(), inner(vec![x()])],
            "counts",
        ),
    ];
    // Entries that disagree with a signed list of names.
    let y = || entry("b", b"y", false);
    let listed: Vec<(&'static str, Vec<Member>, Vec<Entry>, &'static str)> = vec![
        (
            "listed-extra-file",
            vec![a(), Member::file("b", b"y"), inner(vec![x(), y()])],
            vec![x()],
            "is not in the signed manifest",
        ),
        (
            "listed-missing-file",
            vec![a(), inner(vec![x()])],
            vec![x(), y()],
            "listed in the signed manifest but missing",
        ),
        (
            "listed-other-size",
            vec![Member::file("a", b"xx"), inner(vec![x()])],
            vec![x()],
            "size 2 differs from the signed 1",
        ),
        (
            "listed-other-hash",
            vec![Member::file("a", b"z"), inner(vec![x()])],
            vec![x()],
            "sha256 differs from the signed manifest",
        ),
        (
            "listed-other-order",
            vec![Member::file("b", b"y"), a(), inner(vec![y(), x()])],
            vec![x(), y()],
            "the signed manifest lists \"a\"",
        ),
        (
            "listed-other-type",
            vec![Member::folder("a"), inner(vec![Entry::folder("a".into())])],
            vec![x()],
            "the signed manifest lists \"a\" (File)",
        ),
        (
            "listed-other-mode",
            vec![
                Member { mode: 0o755, ..a() },
                inner(vec![entry("a", b"x", true)]),
            ],
            vec![x()],
            "mode differs",
        ),
    ];
    for (name, members, entries, expect) in listed {
        let tar = forge::tar(&members);
        v.push(Case::new(name, expect, move |c, dir| {
            let (to, key) = (&c.clerk.recipient, &c.clerk.secret);
            forge::bundle_listed(dir, "evil", &tar, entries.clone(), to, key)
        }));
    }
    v
}

/// 9: the zstd layer.
fn zstd_cases() -> Vec<Case> {
    vec![
        plaintext(
            "zstd-huge-window",
            {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
                e.set_parameter(zstd::zstd_safe::CParameter::WindowLog(31))
                    .expect("window");
                e.long_distance_matching(true).expect("ldm");
                e.write_all(&one_file()).expect("write");
                e.finish().expect("finish")
            },
            "zstd: ",
        ),
        plaintext(
            "zstd-bomb",
            zstd::encode_all(&[one_file(), vec![0u8; 256 << 20]].concat()[..], 3).expect("zstd"),
            "larger than the signed manifest allows",
        ),
        plaintext(
            "zstd-truncated",
            {
                let z = zstd::encode_all(&forge::tar(&big_members())[..], 1).expect("zstd");
                z[..z.len() / 2].to_vec()
            },
            "zstd: ",
        ),
        plaintext(
            "zstd-trailing-garbage",
            [
                zstd::encode_all(&one_file()[..], 1).expect("zstd"),
                b"garbage!".to_vec(),
            ]
            .concat(),
            "zstd: ",
        ),
        plaintext("not-zstd", one_file(), "zstd: "),
        // pouch does not check the frames' XXH64 checksums; the payload's
        // signed sha256 is what catches a frame changed by anyone who can
        // encrypt to the recipients (here only its checksum differs).
        Case::new(
            "zstd-checksum-changed-by-a-recipient",
            "mismatch",
            |c, dir| {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd");
                e.include_checksum(true).expect("checksum");
                e.write_all(&one_file()).expect("write");
                let mut z = e.finish().expect("finish");
                let m = forge::bundle_from_plaintext(
                    dir,
                    "evil",
                    &z,
                    counts(),
                    &c.clerk.recipient,
                    &c.clerk.secret,
                );
                *z.last_mut().expect("a checksum") ^= 1;
                let swapped = forge::encrypt(&z, &c.clerk.recipient);
                fs::write(dir.join("evil.age"), swapped).expect("write");
                m
            },
        ),
    ]
}

/// 10: the age layer (the manifest is re-signed over the damaged payload).
fn age_cases() -> Vec<Case> {
    vec![
        payload(
            "age-truncated-at-chunk",
            |p| p[..payload_start(&p) + CHUNK].to_vec(),
            "age: ",
        ),
        payload(
            "age-truncated-off-chunk",
            |p| p[..payload_start(&p) + CHUNK + 1000].to_vec(),
            "age: ",
        ),
        payload(
            "age-missing-final-chunk",
            |p| {
                let s = payload_start(&p);
                let n = (p.len() - s) / CHUNK;
                p[..s + n * CHUNK].to_vec()
            },
            "age: ",
        ),
        payload(
            "age-appended-bytes",
            |p| [p, b"more".to_vec()].concat(),
            "age: ",
        ),
        payload(
            "age-flipped-bit",
            |mut p| {
                let i = p.len() / 2;
                p[i] ^= 0x04;
                p
            },
            "age: ",
        ),
        payload(
            "age-flipped-header-mac",
            |mut p| {
                let i = p.windows(4).position(|w| w == b"\n---").expect("mac") + 6;
                p[i] = if p[i] == b'A' { b'B' } else { b'A' };
                p
            },
            "age: ",
        ),
        payload(
            "age-reordered-chunks",
            |p| {
                let s = payload_start(&p);
                let mut q = p[..s].to_vec();
                q.extend_from_slice(&p[s + CHUNK..s + 2 * CHUNK]);
                q.extend_from_slice(&p[s..s + CHUNK]);
                q.extend_from_slice(&p[s + 2 * CHUNK..]);
                q
            },
            "age: ",
        ),
        payload(
            "age-passphrase-absurd-work",
            |_| {
                let pass = age::secrecy::SecretString::from("hunter2".to_string());
                let mut out = Vec::new();
                let mut w = age::Encryptor::with_user_passphrase(pass)
                    .wrap_output(&mut out)
                    .expect("wrap");
                w.write_all(b"x").expect("write");
                w.finish().expect("finish");
                // Raise the stanza's work factor to 2^40.
                let start = out
                    .windows(10)
                    .position(|w| w == b"-> scrypt ")
                    .expect("scrypt stanza");
                let eol = start + out[start..].iter().position(|&b| b == b'\n').expect("eol");
                let sp = start
                    + out[start..eol]
                        .iter()
                        .rposition(|&b| b == b' ')
                        .expect("space");
                [&out[..sp + 1], b"40".as_slice(), &out[eol..]].concat()
            },
            "passphrase-encrypted",
        ),
    ]
}

/// 11: the signature layer.
fn signature_cases() -> Vec<Case> {
    vec![
        Case::new(
            "signed-by-untrusted-key",
            "not among the trusted keys",
            |c, dir| evil(dir, &one_file(), &c.clerk, &c.stranger),
        ),
        Case::new(
            "signature-from-another-bundle",
            "does not match the manifest",
            |c, dir| {
                let other = dir.join("other");
                fs::create_dir(&other).expect("mkdir");
                let b = forge::tar(&[Member::file("b", b"y")]);
                evil(&other, &b, &c.clerk, &c.clerk);
                let m = evil(dir, &one_file(), &c.clerk, &c.stranger);
                let sig = "evil.toml.minisig";
                fs::copy(other.join(sig), dir.join(sig)).expect("copy");
                m
            },
        ),
        Case::new("edited-trusted-comment", "signature", |c, dir| {
            let m = evil(dir, &one_file(), &c.clerk, &c.clerk);
            let sig = dir.join("evil.toml.minisig");
            let text = fs::read_to_string(&sig).expect("read");
            fs::write(&sig, text.replace("name:evil", "name:good")).expect("write");
            m
        }),
        Case::new("signature-missing", "missing", |c, dir| {
            let m = evil(dir, &one_file(), &c.clerk, &c.clerk);
            fs::remove_file(dir.join("evil.toml.minisig")).expect("rm");
            m
        }),
        Case::new("for-another-recipient", "no identity matched", |c, dir| {
            evil(dir, &one_file(), &c.stranger, &c.clerk)
        }),
        Case::new("manifest-of-1-gib", "larger than", |_, dir| {
            let m = dir.join("evil.toml");
            let file = fs::File::create(&m).expect("create");
            file.set_len(1 << 30).expect("sparse");
            m
        }),
    ]
}

/// Manifest text `t` with its names no longer sealed and `entries` appended.
fn unsealed_with(t: String, entries: &str) -> String {
    let t = t.replace("sealed_names = true", "sealed_names = false");
    format!("{t}{entries}")
}

/// A manifest entry for folder `path`, as TOML.
fn folder_entry(path: &str) -> String {
    format!("\n[[entries]]\npath = \"{path}\"\nkind = \"folder\"\nmode = \"0755\"\n")
}

/// 12: the manifest layer (signed, so parsing is reached).
fn manifest_cases() -> Vec<Case> {
    vec![
        manifest(
            "manifest-not-toml",
            |_| "this is { not toml".into(),
            "manifest",
        ),
        manifest(
            "manifest-bom",
            |t| format!("\u{feff}{t}"),
            "byte order mark",
        ),
        manifest(
            "manifest-unknown-key",
            |t| t.replace("marking =", "colour = \"red\"\nmarking ="),
            "colour",
        ),
        manifest(
            "manifest-unknown-version",
            |t| t.replace("format_version = 1", "format_version = 2"),
            "format_version 2",
        ),
        manifest(
            "manifest-negative-size",
            |t| t.replacen("size = ", "size = -", 1),
            "manifest",
        ),
        manifest(
            "manifest-huge-number",
            |t| t.replacen("size = ", "size = 99999999999999999999999", 1),
            "manifest",
        ),
        manifest(
            "manifest-non-hex-hash",
            |t| t.replacen("sha256 = \"", "sha256 = \"zz", 1),
            "64 lowercase hex",
        ),
        manifest(
            "manifest-nested",
            |t| format!("{t}\nx = {}1{}\n", "[".repeat(10_000), "]".repeat(10_000)),
            "manifest",
        ),
        manifest(
            "manifest-unsafe-path",
            |t| unsealed_with(t, &folder_entry("../x")),
            "\"..\" component",
        ),
        manifest(
            "manifest-duplicate-paths",
            |t| unsealed_with(t, &folder_entry("d").repeat(2)),
            "listed twice",
        ),
    ]
}

fn cases() -> Vec<Case> {
    let mut v = name_cases();
    v.extend(tar_cases());
    v.extend(inner_cases());
    v.extend(zstd_cases());
    v.extend(age_cases());
    v.extend(signature_cases());
    v.extend(manifest_cases());
    v
}

#[test]
fn hostile_bundles_fail_safely() {
    let w = World::new();
    let d = w.path();
    let ctx = Ctx {
        clerk: w.keys("clerk"),
        stranger: w.keys("stranger"),
    };
    let k = &ctx.clerk;
    let mut failures = Vec::new();
    let all = cases();
    let mut seen = std::collections::HashSet::new();
    for case in &all {
        assert!(seen.insert(case.name), "case {} twice", case.name);
        let work = d.join(case.name);
        let bundle = w.dir(format!("{}/bundle", case.name));
        let dest = w.dir(format!("{}/dest", case.name));
        fs::write(dest.join("marker"), "was here").expect("write");
        let m = (case.build)(&ctx, &bundle);
        for verb in ["unpack", "verify"] {
            let mut cmd = pouch!(verb, &m, "-i", &k.identity, "--trust", &k.public);
            if verb == "unpack" {
                cmd.arg("-d").arg(&dest);
            }
            let out = cmd.output().expect("runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(case.code) || !stderr.contains(case.expect) {
                failures.push(format!(
                    "case {} ({verb}): exit {:?}, wanted {} and an error containing {:?}; stderr: {}",
                    case.name,
                    out.status.code(),
                    case.code,
                    case.expect,
                    stderr.trim()
                ));
            }
            if stderr.contains("panicked") {
                failures.push(format!("case {} ({verb}): panicked", case.name));
            }
        }
        let left = names(&dest);
        if left != ["marker"] {
            failures.push(format!("case {}: DEST holds {left:?}", case.name));
        }
        let around = names(&work);
        if around.len() != 2 {
            failures.push(format!("case {}: beside DEST: {around:?}", case.name));
        }
    }
    for escaped in ["/tmp/pouch-escape.txt", "/tmp/x"] {
        assert!(
            !Path::new(escaped).exists() || escaped == "/tmp/x",
            "{escaped} was created"
        );
    }
    assert!(!d.join("escape.txt").exists());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn a_replaced_untrusted_comment_does_not_matter() {
    let w = World::new();
    let clerk = w.keys("clerk");
    let f = w.write("f.txt", "f");
    let m = w.pack(&[&f], "b", &clerk, &[&clerk], &[]);
    let sig = w.join("out/b.toml.minisig");
    let text = fs::read_to_string(&sig).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[0] = "untrusted comment: anything at all, even lies";
    fs::write(&sig, lines.join("\n") + "\n").expect("write");
    let verified = common::verify(&m, &clerk.public, Some(&clerk.identity));
    common::ok("verify -i", verified);
}

#[test]
fn privileged_mode_bits_and_foreign_owners_are_dropped() {
    // A consistent, correctly signed bundle whose headers ask for setuid,
    // setgid and sticky bits and a foreign owner: the files come out 0755
    // and 0644, folders 0755, owned by whoever runs pouch.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let w = World::new();
    let d = w.path();
    let clerk = w.keys("clerk");
    let entries = vec![
        Entry::folder("d".into()),
        entry("d/suid", b"x", true),
        entry("d/plain", b"y", false),
    ];
    let with_mode = |mode, m| Member { mode, ..m };
    let mut m = vec![
        with_mode(0o1777, Member::folder("d")),
        with_mode(0o6755, Member::file("d/suid", b"x")),
        with_mode(0o2644, Member::file("d/plain", b"y")),
    ];
    m.push(inner(entries.clone()));
    let mut tar = forge::tar(&m);
    // Foreign uid/gid in every header: rewrite the owner fields and checksums.
    let mut off = 0;
    while off + 512 <= tar.len() && tar[off..off + 512].iter().any(|&b| b != 0) {
        let h = &mut tar[off..off + 512];
        h[108..116].copy_from_slice(b"0001750\0");
        h[116..124].copy_from_slice(b"0001750\0");
        rechecksum(h);
        let size = u64::from_str_radix(std::str::from_utf8(&h[124..135]).expect("ascii"), 8)
            .expect("octal");
        off += 512 + (size as usize).div_ceil(512) * 512;
    }
    let contents = forge::contents_of(&entries, true);
    let (to, key) = (&clerk.recipient, &clerk.secret);
    let manifest = forge::bundle(&w.dir("b"), "modes", &tar, contents, to, key);
    passes(unpack_cmd(&manifest, &clerk, &clerk, &d.join("in")), &[]);
    let meta = |p: &str| fs::metadata(d.join("in/modes").join(p)).expect("stat");
    assert_eq!(meta("d").permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta("d/suid").permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta("d/plain").permissions().mode() & 0o7777, 0o644);
    let me = fs::metadata(d).expect("stat").uid();
    assert_eq!(meta("d/suid").uid(), me);
}
