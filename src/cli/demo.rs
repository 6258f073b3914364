//! `pouch demo`: a full round trip on built-in sample data, shown as the
//! commands a clerk, an auditor and a recipient would type.

use std::fs;
use std::path::{Path, PathBuf};

use pouch::error::{Error, IoContext, Result};
use pouch::payload::crypto;
use pouch::signature::{SigningKey, TrustedKey};
use pouch::verify::{Trust, VerifyOptions};
use pouch::{demo, inspect, keygen, pack, unpack, verify};

use super::render::{self, out};

fn step(n: usize, total: usize, title: &str, command: &str) {
    out("");
    out(&format!("[{n}/{total}] {title}"));
    out(&format!("$ {command}"));
}

/// What the demo's steps hand on to the next.
struct Demo {
    clerk: keygen::KeygenReport,
    recipient: keygen::KeygenReport,
    case: PathBuf,
}

const TOTAL: usize = 9;

/// Runs the demo in `dir` (or a new temporary folder, kept afterwards).
pub fn run(dir: Option<PathBuf>) -> Result<u8> {
    let dir = demo_dir(dir)?;
    std::env::set_current_dir(&dir).doing("entering", &dir)?;
    out(&format!(
        "pouch demo in {} (paths below are relative to it)",
        dir.display()
    ));
    let case = demo::write_sample(Path::new("sample"))?;
    out(&format!(
        "sample data: {} ({} files and an empty folder; all fictitious)",
        case.display(),
        demo::SAMPLE_FILES.len()
    ));
    let d = make_keys(case)?;
    let packed = seal(&d)?;
    let manifest = packed.manifest_path.clone();
    let trusted = vec![TrustedKey::load(
        &d.clerk.signing_pub_path.display().to_string(),
    )?];
    let identities = check(&d, &manifest, &trusted)?;
    unpack_and_compare(&d, &manifest, &trusted, identities)?;
    audit_outbox(&trusted)?;
    tamper(&packed, trusted)?;
    let m = manifest.display().to_string();
    out("");
    out("Without pouch, the stock tools recover and check the same bundle");
    out("(post-quantum keys need age 1.3 or later, or typage):");
    out(&format!(
        "  age -d -i keys/recipient.age-identity {} | zstd -d | tar -xv",
        packed.payload_files[0].display()
    ));
    out(&format!("  minisign -V -m {m} -p keys/clerk.minisign.pub"));
    out("");
    out(&format!(
        "demo complete; everything is in {}",
        dir.display()
    ));
    Ok(0)
}

/// The demo's folder: `dir`, which must be new or empty, or a new
/// temporary folder that is kept.
fn demo_dir(dir: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match dir {
        Some(d) => {
            fs::create_dir_all(&d).doing("creating", &d)?;
            if fs::read_dir(&d).doing("listing", &d)?.next().is_some() {
                return Err(Error::Usage(format!(
                    "demo folder {} is not empty; pass a new or empty folder",
                    d.display()
                )));
            }
            d
        }
        None => tempfile::Builder::new()
            .prefix("pouch-demo-")
            .tempdir()
            .map_err(|e| Error::io("creating a folder in", std::env::temp_dir(), e))?
            .keep(),
    })
}

/// Steps 1 and 2: both parties make keys.
fn make_keys(case: PathBuf) -> Result<Demo> {
    step(
        1,
        TOTAL,
        "The clerk makes keys (throwaway keys: no passphrase)",
        "pouch keygen --name clerk --out keys --no-passphrase",
    );
    fs::create_dir_all("keys").doing("creating", "keys")?;
    let clerk = keygen::keygen("clerk", Path::new("keys"), None, false)?;
    out(&format!("  signing key id {}", clerk.key_id));
    step(
        2,
        TOTAL,
        "The recipient makes keys (post-quantum age key) and sends the clerk keys/recipient.age-recipient",
        "pouch keygen --name recipient --out keys --no-passphrase --pq",
    );
    let recipient = keygen::keygen("recipient", Path::new("keys"), None, true)?;
    out(&format!(
        "  recipient {}… ({} characters, fingerprint {})",
        &recipient.recipient[..24],
        recipient.recipient.len(),
        recipient.recipient_fingerprint
    ));

    Ok(Demo {
        clerk,
        recipient,
        case,
    })
}

/// Step 3: the clerk seals the sample case.
fn seal(d: &Demo) -> Result<pack::PackReport> {
    let (clerk, recipient, case) = (&d.clerk, &d.recipient, &d.case);
    step(
        3,
        TOTAL,
        "The clerk seals the case folder for the recipient and signs it",
        "pouch pack sample/case-2026-0142 -o outbox -R keys/recipient.age-recipient -s keys/clerk.minisign.key --require-pq \\\n    --from bka-demo --to fedpol-demo --marking \"RESTRICTED (DEMO)\" --description \"Case 2026/0142, fictitious\"",
    );
    fs::create_dir_all("outbox").doing("creating", "outbox")?;
    let key = SigningKey::load(&clerk.signing_key_path, &mut || {
        Err(Error::Usage("demo key has no passphrase".into()))
    })?;
    let packed = pack::pack(
        &pack::PackOptions {
            sources: vec![case.clone()],
            out_dir: PathBuf::from("outbox"),
            recipients: crypto::read_recipients_file(&recipient.recipient_path)?,
            require_pq: true,
            sender: Some("bka-demo".into()),
            receiver: Some("fedpol-demo".into()),
            marking: "RESTRICTED (DEMO)".into(),
            description: "Case 2026/0142, fictitious".into(),
            level: pack::DEFAULT_LEVEL,
            ledger: Some(PathBuf::from("clerk-ledger.jsonl")),
            ..Default::default()
        },
        &key,
    )?;
    out(&format!(
        "  wrote {}, {}, {}",
        packed.payload_files[0].display(),
        packed.manifest_path.display(),
        packed.signature_path.display()
    ));

    Ok(packed)
}

/// Steps 4 to 6: inspect, verify without a key, verify every entry; returns
/// the recipient's identities.
fn check(d: &Demo, manifest: &Path, trusted: &[TrustedKey]) -> Result<Vec<crypto::Identity>> {
    let clerk = &d.clerk;
    let m = manifest.display().to_string();
    step(
        4,
        TOTAL,
        "Anyone reads the outer manifest; with --trust the signature is checked",
        &format!("pouch inspect {m} --trust keys/clerk.minisign.pub"),
    );
    let report = inspect::inspect(manifest, trusted)?;
    for line in render::inspect_lines(&report) {
        out(&format!("  {line}"));
    }

    step(
        5,
        TOTAL,
        "The auditor checks signature and payload without any decryption key",
        &format!("pouch verify {m} --trust keys/clerk.minisign.pub"),
    );
    let v = verify_with(manifest, trusted, Vec::new())?;
    out(&format!(
        "  OK: signature by {}, payload sha256 {}",
        clerk.key_id, v.payload_sha256
    ));

    let identities = crypto::read_identity_file(&d.recipient.identity_path)?;
    step(
        6,
        TOTAL,
        "The recipient checks every entry without writing anything",
        &format!("pouch verify {m} --trust keys/clerk.minisign.pub -i keys/recipient.age-identity"),
    );
    let v = verify_with(manifest, trusted, identities.clone())?;
    out(&format!(
        "  OK: {} files and {} folders match the signed manifest",
        v.files, v.folders
    ));

    Ok(identities)
}

/// `pouch verify MANIFEST --trust … [-i …]`, as the demo runs it.
fn verify_with(
    manifest: &Path,
    trusted: &[TrustedKey],
    identities: Vec<crypto::Identity>,
) -> Result<verify::VerifyReport> {
    verify::verify(&VerifyOptions {
        manifest: manifest.to_path_buf(),
        trust: Trust::Keys(trusted.to_vec()),
        identities,
        parts_from: Vec::new(),
        progress: Default::default(),
    })
}

/// Step 7: the recipient unpacks, and the tree is compared with the source.
fn unpack_and_compare(
    d: &Demo,
    manifest: &Path,
    trusted: &[TrustedKey],
    identities: Vec<crypto::Identity>,
) -> Result<()> {
    let case = &d.case;
    let m = manifest.display().to_string();
    step(7, TOTAL, "The recipient unpacks", &format!("pouch unpack {m} -i keys/recipient.age-identity --trust keys/clerk.minisign.pub -d inbox"));
    let u = unpack::unpack(&unpack::UnpackOptions {
        manifest: manifest.to_path_buf(),
        trust: Trust::Keys(trusted.to_vec()),
        identities,
        dest: PathBuf::from("inbox"),
        parts_from: Vec::new(),
        progress: Default::default(),
        ledger: Some(PathBuf::from("recipient-ledger.jsonl")),
        allow_replay: false,
    })?;
    let unpacked = u.output.join("case-2026-0142");
    let same = same_tree(case, &unpacked)?;
    out(&format!(
        "  unpacked into {}: {} files, {} folders; identical to the source: {}",
        u.output.display(),
        u.files,
        u.folders,
        if same { "yes" } else { "NO" }
    ));
    if !same {
        return Err(Error::ContentsMismatch {
            reason: "the demo's unpacked tree differs from the source".into(),
        });
    }

    Ok(())
}

/// Step 8: the auditor checks the outbox.
fn audit_outbox(trusted: &[TrustedKey]) -> Result<()> {
    step(
        8,
        TOTAL,
        "The auditor checks everything on the outbox medium, again without a key",
        "pouch audit outbox --trust keys/clerk.minisign.pub --require-pq",
    );
    let report = pouch::audit::audit(&pouch::audit::AuditOptions {
        paths: vec![PathBuf::from("outbox")],
        trusted: trusted.to_vec(),
        ledgers: Vec::new(),
        require_pq: true,
    })?;
    super::render_custody::audit(&report, false);

    Ok(())
}

/// Step 9: a tampered copy is refused.
fn tamper(packed: &pack::PackReport, trusted: Vec<TrustedKey>) -> Result<()> {
    step(
        9,
        TOTAL,
        "A courier's stick is tampered with: one byte of a copy of the payload flipped",
        "pouch verify tampered/NAME.toml --trust keys/clerk.minisign.pub",
    );
    fs::create_dir_all("tampered").doing("creating", "tampered")?;
    for p in [
        &packed.payload_files[0],
        &packed.manifest_path,
        &packed.signature_path,
    ] {
        let to = Path::new("tampered").join(p.file_name().unwrap_or_default());
        fs::copy(p, &to).doing("copying", &to)?;
    }
    let bad_payload =
        Path::new("tampered").join(packed.payload_files[0].file_name().unwrap_or_default());
    let mut bytes = fs::read(&bad_payload).doing("reading", &bad_payload)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&bad_payload, &bytes).doing("writing", &bad_payload)?;
    let bad_manifest =
        Path::new("tampered").join(packed.manifest_path.file_name().unwrap_or_default());
    match verify::verify(&VerifyOptions {
        manifest: bad_manifest,
        trust: Trust::Keys(trusted),
        identities: Vec::new(),
        parts_from: Vec::new(),
        progress: Default::default(),
    }) {
        Err(e) if e.exit_code() == 1 => out(&format!("  refused, exit code 1, as it must be: {e}")),
        Err(e) => return Err(e),
        Ok(_) => {
            return Err(Error::ContentsMismatch {
                reason: "the demo's tampered payload was not detected".into(),
            })
        }
    }

    Ok(())
}

/// True if two trees hold the same relative paths, kinds and file contents.
fn same_tree(a: &Path, b: &Path) -> Result<bool> {
    let list = |root: &Path| -> Result<Vec<(PathBuf, Option<Vec<u8>>)>> {
        let mut v = Vec::new();
        for item in walkdir::WalkDir::new(root).sort_by_file_name() {
            let item = item.map_err(|e| Error::io("listing", root, e.into()))?;
            let rel = item
                .path()
                .strip_prefix(root)
                .unwrap_or(item.path())
                .to_path_buf();
            let content = if item.file_type().is_file() {
                Some(fs::read(item.path()).doing("reading", item.path())?)
            } else {
                None
            };
            v.push((rel, content));
        }
        Ok(v)
    };
    Ok(list(a)? == list(b)?)
}
