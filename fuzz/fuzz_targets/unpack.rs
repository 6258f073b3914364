//! `pouch::unpack::unpack` on a hostile tar stream inside a correctly signed,
//! correctly encrypted bundle: the insider-with-a-stolen-key case.
//!
//! The input is a raw tar stream. It is zstd-compressed (level 1),
//! age-encrypted to a fixed test identity and described by a sealed-names
//! manifest signed with a fixed test minisign key, then unpacked into a
//! fresh, empty `sandbox/dest`. Afterwards:
//! - nothing exists in `sandbox` except `dest`;
//! - nothing below `dest` is a symlink, device, FIFO or socket, and modes
//!   are the documented 0644/0755 files and 0755 folders;
//! - on error, `dest` is empty (staging removed);
//! - on success, `dest` holds exactly `NAME/`, and its tree equals the
//!   entries of the tar stream (paths, kinds, contents).
//!
//! Signed contents: when the stream reads cleanly as files and folders (a
//! pre-pass with `strict_tar`) and its length is a multiple of 512, the
//! manifest states the exact counts and entry digest, so a well-formed
//! stream can unpack successfully. Otherwise (appending one zero byte to a
//! stream is enough) it states generous counts (64 files, 64 folders,
//! 1 MiB) and an arbitrary digest, so every per-entry check is reachable.
//!
//! The keys below are test keys generated once for this harness
//! (`pouch keygen --no-passphrase`); they protect nothing.

#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pouch::format::manifest::{
    entries_digest, Channel, Contents, Entry, EntryKind, Manifest, Payload, RecipientInfo, Signer,
    FORMAT_VERSION, INNER_MANIFEST_NAME,
};
use pouch::signature::{SigningKey, TrustedKey};
use pouch::payload::strict_tar::TarReader;
use pouch::unpack::{unpack, UnpackOptions};
use pouch::verify::Trust;

/// Test-only age identity (recipient
/// age1quaptf8n05kpxlqcxe6xlzarw6wwyrqey8zc8vsdx24zdc8zjqqqthwntu).
const AGE_IDENTITY: &str =
    "AGE-SECRET-KEY-1Z9ZMU0J9F976WEZGXM3VGCUDZSSWRKJSC3YM60AG9C56GDYNFRQQZ6GTLY";

/// Test-only, unprotected minisign secret key (key id 7E201B56A7C91790),
/// as written by `pouch::signature::generate(None)`.
const MINISIGN_SECRET: &str = "untrusted comment: pouch signing key 7E201B56A7C91790
RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAkBfJp1YbIH75iXx8pIiwSTcfvl9jwxB8AMAAejaqDuRPd1T/eoJQYzj7u/iCz8YxSXS5jAk9dFHgwwlBt/w9igPstlbnWs/qRLHObsb1JPKmCaNtFBpUF8m9p6yQeET/K+sGcCWfWes=
";

/// Its public key.
const MINISIGN_PUBLIC: &str = "RWSQF8mnVhsgfjj7u/iCz8YxSXS5jAk9dFHgwwlBt/w9igPstlbnWs/q";

const NAME: &str = "fuzz";
const BUNDLE_ID: &str = "00112233445566778899aabbccddeeff";

struct Fixture {
    /// Kept alive for the process; removed at the next start if left over.
    root: PathBuf,
    bundle_dir: PathBuf,
    sandbox: PathBuf,
    identity: pouch::payload::crypto::Identity,
    recipient: pouch::payload::crypto::Recipient,
    key: SigningKey,
    trusted: TrustedKey,
}

/// Removes work folders of earlier fuzzing processes that are gone.
fn remove_stale(parent: &Path) {
    let Ok(list) = fs::read_dir(parent) else {
        return;
    };
    for e in list.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("pouch-fuzz-unpack-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // tmpfs by default: unpack calls syncfs, which is free there.
        let parent = std::env::var_os("POUCH_FUZZ_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let shm = Path::new("/dev/shm");
                if shm.is_dir() {
                    shm.to_path_buf()
                } else {
                    std::env::temp_dir()
                }
            });
        remove_stale(&parent);
        let root = parent.join(format!("pouch-fuzz-unpack-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("work folder");
        let bundle_dir = root.join("bundle");
        fs::create_dir(&bundle_dir).expect("bundle folder");
        let key_path = root.join("fuzz.minisign.key");
        fs::write(&key_path, MINISIGN_SECRET).expect("key file");
        let key = SigningKey::load(&key_path, &mut || panic!("the test key has no passphrase"))
            .expect("test signing key");
        let trusted = TrustedKey::load(MINISIGN_PUBLIC).expect("test public key");
        assert_eq!(key.key_id, trusted.key_id);
        let identity: age::x25519::Identity = AGE_IDENTITY.parse().expect("test identity");
        let recipient = pouch::payload::crypto::Recipient::X25519(identity.to_public());
        let identity = pouch::payload::crypto::Identity::X25519(identity);
        Fixture {
            sandbox: root.join("sandbox"),
            root,
            bundle_dir,
            identity,
            recipient,
            key,
            trusted,
        }
    })
}

/// What a correct unpacker would produce from this stream, if it reads as
/// plain files and folders: the entry list (in order) and file contents.
fn pre_pass(tar: &[u8]) -> Option<(Vec<Entry>, BTreeMap<String, Vec<u8>>)> {
    let mut input = tar;
    let mut r = TarReader::new(&mut input);
    let mut entries = Vec::new();
    let mut data_of = BTreeMap::new();
    let mut buf = [0u8; 8192];
    while let Some(h) = r.next_header().ok()? {
        let mut data = Vec::new();
        loop {
            let n = r.read_data(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        let kind = match h.kind {
            b'0' | b'\0' | b'7' => EntryKind::File,
            b'5' => EntryKind::Folder,
            _ => return None,
        };
        let mut path: &[u8] = &h.path;
        if kind == EntryKind::Folder {
            path = path.strip_suffix(b"/").unwrap_or(path);
        }
        let path = String::from_utf8(path.to_vec()).ok()?;
        if path == INNER_MANIFEST_NAME {
            continue;
        }
        match kind {
            EntryKind::Folder => entries.push(Entry::folder(path)),
            EntryKind::File => {
                let sha = pouch::payload::hashing::sha256_hex(&data);
                entries.push(Entry::file(
                    path.clone(),
                    data.len() as u64,
                    sha,
                    h.mode & 0o111 != 0,
                ));
                data_of.insert(path, data);
            }
        }
    }
    Some((entries, data_of))
}

fn generous() -> Contents {
    Contents {
        files: 64,
        folders: 64,
        total_bytes: 1 << 20,
        entries_sha256: "ab".repeat(32),
        sealed_names: true,
    }
}

/// Writes NAME.age, NAME.toml and NAME.toml.minisig for `tar` into the bundle folder.
fn write_bundle(f: &Fixture, tar: &[u8], contents: Contents) -> PathBuf {
    let compressed = zstd::encode_all(tar, 1).expect("zstd");
    let mut payload = Vec::new();
    let mut w =
        pouch::payload::crypto::encrypt(std::slice::from_ref(&f.recipient), &mut payload).expect("encrypt");
    w.write_all(&compressed).expect("encrypt write");
    w.finish().expect("encrypt finish");
    let m = Manifest {
        format_version: FORMAT_VERSION,
        bundle_id: BUNDLE_ID.into(),
        name: NAME.into(),
        created: "2026-11-29T00:00:00Z".into(),
        tool: "fuzz".into(),
        marking: String::new(),
        description: String::new(),
        channel: Channel::default(),
        signer: Signer {
            key_id: f.key.key_id.clone(),
        },
        recipients: vec![RecipientInfo {
            kind: "x25519".into(),
            fingerprint: pouch::payload::crypto::fingerprint(&f.recipient),
        }],
        payload: Payload {
            file: format!("{NAME}.age"),
            size: payload.len() as u64,
            sha256: pouch::payload::hashing::sha256_hex(&payload),
            layers: "age+zstd+tar".into(),
            parts: Vec::new(),
        },
        contents,
        entries: Vec::new(),
    };
    let text = m.to_toml();
    let sig = f
        .key
        .sign_manifest(text.as_bytes(), BUNDLE_ID, NAME)
        .expect("sign");
    fs::write(f.bundle_dir.join(format!("{NAME}.age")), &payload).expect("write payload");
    let manifest = f.bundle_dir.join(format!("{NAME}.toml"));
    fs::write(&manifest, text).expect("write manifest");
    fs::write(f.bundle_dir.join(format!("{NAME}.toml.minisig")), sig).expect("write sig");
    manifest
}

/// Walks `dir` without following links; returns relative path -> Some(data)
/// for files, None for folders. Panics on anything else.
fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
    for e in fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("dir entry");
        let path = e.path();
        let name = e.file_name().into_string().expect("non-UTF-8 name written");
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&path).expect("lstat");
        let ft = meta.file_type();
        let mode = meta.permissions().mode() & 0o7777;
        assert!(!ft.is_symlink(), "symlink written: {path:?}");
        assert!(
            !ft.is_block_device() && !ft.is_char_device() && !ft.is_fifo() && !ft.is_socket(),
            "special file written: {path:?}"
        );
        if ft.is_dir() {
            assert_eq!(mode, 0o755, "folder {path:?} has mode {mode:o}");
            out.insert(rel.clone(), None);
            walk(&path, &rel, out);
        } else {
            assert!(ft.is_file(), "unknown file type: {path:?}");
            assert!(
                mode == 0o644 || mode == 0o755,
                "file {path:?} has mode {mode:o}"
            );
            out.insert(rel, Some(fs::read(&path).expect("read")));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let plan = pre_pass(data).filter(|(e, _)| data.len() % 512 == 0 && e.len() <= 1024);
    let contents = match &plan {
        Some((entries, _)) => {
            let (files, folders, total_bytes) = pouch::format::manifest::count(entries);
            Contents {
                files,
                folders,
                total_bytes,
                entries_sha256: entries_digest(entries),
                sealed_names: true,
            }
        }
        None => generous(),
    };
    let manifest = write_bundle(f, data, contents);

    // A fresh sandbox/dest for every run.
    let _ = fs::remove_dir_all(&f.sandbox);
    let dest = f.sandbox.join("dest");
    fs::create_dir_all(&dest).expect("sandbox/dest");

    let result = unpack(&UnpackOptions {
        manifest,
        trust: Trust::Keys(vec![f.trusted.clone()]),
        identities: vec![f.identity.clone()],
        dest: dest.clone(),
        parts_from: Vec::new(),
        ledger: None,
        allow_replay: false,
        progress: Default::default(),
    });

    if std::env::var_os("POUCH_FUZZ_DEBUG").is_some() {
        eprintln!(
            "pre-pass: {:?}; unpack: {:?}",
            plan.as_ref().map(|p| p.0.len()),
            result
        );
    }

    // Nothing in sandbox but dest, and dest is a real folder.
    let names: Vec<_> = fs::read_dir(&f.sandbox)
        .expect("read sandbox")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("dest")],
        "sandbox holds {names:?}"
    );
    let dm = fs::symlink_metadata(&dest).expect("dest");
    assert!(dm.is_dir() && !dm.file_type().is_symlink(), "dest replaced");

    let mut tree = BTreeMap::new();
    walk(&dest, "", &mut tree);
    match result {
        Err(e) => {
            assert!(
                tree.is_empty(),
                "unpack failed ({e}) but dest holds {:?}",
                tree.keys()
            );
        }
        Ok(report) => {
            assert_eq!(report.output, dest.join(NAME));
            let (entries, data_of) =
                plan.expect("unpack succeeded although the signed digest was arbitrary");
            assert_eq!(tree.remove(NAME), Some(None), "dest/{NAME} is not a folder");
            assert!(
                tree.keys().all(|k| k.starts_with(&format!("{NAME}/"))),
                "{:?}",
                tree.keys()
            );
            let mut want = BTreeMap::new();
            for e in &entries {
                let data = match e.kind {
                    EntryKind::Folder => None,
                    EntryKind::File => Some(data_of[&e.path].clone()),
                };
                want.insert(format!("{NAME}/{}", e.path), data);
            }
            assert_eq!(
                tree.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>()
            );
            assert!(tree == want, "unpacked contents differ from the archive");
            let (files, folders, bytes) = pouch::format::manifest::count(&entries);
            assert_eq!(
                (report.files, report.folders, report.total_bytes),
                (files, folders, bytes)
            );
            // Executable bits as the archive said.
            for e in &entries {
                let p = dest.join(NAME).join(&e.path);
                let mode = fs::symlink_metadata(&p)
                    .expect("lstat")
                    .permissions()
                    .mode()
                    & 0o777;
                let want_mode = if e.executable() || e.kind == EntryKind::Folder {
                    0o755
                } else {
                    0o644
                };
                assert_eq!(mode, want_mode, "{p:?}");
            }
        }
    }
    let _ = fs::remove_dir_all(&f.sandbox);
    let _ = &f.root;
});
