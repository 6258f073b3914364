//! The one error type of the library.
//!
//! Rules the variants follow:
//! - every variant names the file, entry or key involved;
//! - every variant carries a hint: what the user can do next (see [`Error::hint`]);
//! - every variant belongs to one of two classes (see [`Error::exit_code`]): the
//!   bundle failed a check (exit 1), or the request could not be carried out
//!   because of usage, configuration or I/O (exit 2).
//!
//! Paths and entry names that come from a bundle are untrusted; the `Display`
//! implementation escapes them (see [`crate::format::names::escape`]).

use std::io;
use std::path::{Path, PathBuf};

use crate::format::names::escape;

/// A library result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pouch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the bundle failed a check (exit 1) ----
    /// The manifest is not a valid pouch manifest.
    #[error("manifest {}: {reason}", .path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The manifest's signature is missing, malformed or does not verify.
    #[error("signature {}: {reason}", .path.display())]
    BadSignature {
        /// The `.minisig` file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature is valid for a key that is not trusted.
    #[error("signature {}: made by key {key_id}, which is not among the trusted keys", .path.display())]
    UntrustedSigner {
        /// The `.minisig` file.
        path: PathBuf,
        /// The signer's key id (16 hex digits).
        key_id: String,
    },
    /// The signature was made by a key its party revoked, or such a key was
    /// given to trust or to sign with: nothing it signed is believed,
    /// whatever date it claims.
    #[error("{}: key {key_id} of party {party} is revoked in the keyring ({revoked}); nothing it signed is accepted", .path.display())]
    RevokedKey {
        /// The `.minisig` file, or the `--trust` argument that named the key.
        path: PathBuf,
        /// The key's id (16 hex digits).
        key_id: String,
        /// The party whose key it was.
        party: String,
        /// When and why it was revoked, as the keyring says.
        revoked: String,
    },
    /// The signature was made by a party's key outside the time it was that
    /// party's signing key (before its `valid_from`, or from the day the
    /// next key replaced it), by the time the signed record itself claims.
    #[error("{}: made by key {key_id} of party {party}, {reason}", .path.display())]
    KeyNotInForce {
        /// The `.minisig` file.
        path: PathBuf,
        /// The key's id (16 hex digits).
        key_id: String,
        /// The party whose key it is.
        party: String,
        /// Its validity, and the time the record claims.
        reason: String,
    },
    /// Something other than a regular file stands where pouch reads one.
    #[error("{}: is {what}, not a regular file", .path.display())]
    NotAFile {
        /// Where.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The manifest claims a channel whose sender party did not sign it.
    #[error("manifest {}: signed by {signer}, but claims channel {}", .path.display(), escape(.channel))]
    ChannelClaim {
        /// The manifest file.
        path: PathBuf,
        /// Who signed it: a keyring party, or a key no party holds.
        signer: String,
        /// The channel it claims, `SENDER:RECEIVER`, as written (untrusted).
        channel: String,
    },
    /// The payload's size or hash differs from the manifest.
    #[error("payload {}: {what} mismatch (manifest says {expected}, found {found})", .path.display())]
    PayloadMismatch {
        /// The payload file.
        path: PathBuf,
        /// `size` or `sha256`.
        what: &'static str,
        /// What the signed manifest says.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The payload file is not there.
    #[error("payload {}: missing", .path.display())]
    PayloadMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// None of the given identities can decrypt the payload.
    #[error("no identity matched: this bundle is for recipients with fingerprints {}; the given identities have {}", .bundle.join(", "), .given.join(", "))]
    NoMatchingIdentity {
        /// Fingerprints of the bundle's recipients.
        bundle: Vec<String>,
        /// Fingerprints of the identities that were tried.
        given: Vec<String>,
    },
    /// The payload could not be decrypted or decompressed: it is damaged.
    #[error("payload {}: {reason}", .path.display())]
    CorruptPayload {
        /// The payload file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The bundle was accepted before (same id, or same channel and sequence).
    #[error("replay: {bundle}: {reason}")]
    Replay {
        /// The bundle's name.
        bundle: String,
        /// What it repeats.
        reason: String,
    },
    /// The ledger's hash chain is broken.
    #[error("ledger {}: record {index}: {reason}", .path.display())]
    LedgerBroken {
        /// The ledger file.
        path: PathBuf,
        /// The first bad record, from 0.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// One or more parts of a split payload are missing, damaged or unexpected.
    #[error("{}: {}", crate::format::names::counted(.problems.len() as u64, "part problem"), first_few(.problems))]
    BadParts {
        /// One line per bad part, naming it.
        problems: Vec<String>,
    },
    /// The payload is damaged, and its PAR2 recovery files (those that
    /// match the signed manifest) say whether they can restore it.
    #[error("{damage}; {}", damage_line(*.repairable, *.lost, *.total, *.recovery, .ignored))]
    Damaged {
        /// What is damaged, as the payload check said it.
        damage: String,
        /// Whether the recovery slices at hand can restore every lost one.
        repairable: bool,
        /// Input slices lost.
        lost: u64,
        /// Input slices in all.
        total: u64,
        /// Recovery slices at hand.
        recovery: u64,
        /// PAR2 files left out (missing, damaged or forged).
        ignored: Vec<String>,
    },
    /// An entry of the archive is unsafe or disagrees with the manifest.
    #[error("entry {}: {reason}", escape(.entry))]
    BadEntry {
        /// The entry's name as found (untrusted).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The archive's contents disagree with the signed manifest as a whole.
    #[error("contents: {reason}")]
    ContentsMismatch {
        /// What disagrees.
        reason: String,
    },
    /// A delta cannot go onto the tree it was given: its base was not
    /// accepted here, or the tree is not the base's result (changed since,
    /// another bundle's, or this delta's already).
    #[error("{reason}")]
    DeltaBase {
        /// What does not fit, and what to do.
        reason: String,
    },
    /// A receipt is malformed, badly signed, or not for the bundle it names.
    #[error("receipt {}: {reason}", .path.display())]
    BadReceipt {
        /// The receipt file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    // ---- usage, configuration or I/O (exit 2) ----
    /// Reading or writing a file failed.
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// What pouch was doing: `reading`, `writing`, `renaming`, ...
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A key file could not be read or parsed.
    #[error("key {}: {reason}", .path.display())]
    BadKey {
        /// The key file (or the argument that named the key).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The passphrase of a signing key did not decrypt it.
    #[error("key {}: the passphrase does not decrypt it", .path.display())]
    WrongPassphrase {
        /// The secret key file.
        path: PathBuf,
    },
    /// A recipient given on the command line or in a file is not valid.
    #[error("recipient {recipient:?}: {reason}")]
    BadRecipient {
        /// The recipient as given.
        recipient: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A source to pack cannot be packed as it is.
    #[error("source {}: {reason}", escape(&.path.to_string_lossy()))]
    BadSource {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Names that some filesystems cannot hold.
    #[error("{} name(s) cannot be created on every filesystem:\n  {}", .problems.len(), .problems.join("\n  "))]
    Unportable {
        /// One line per offending path and reason.
        problems: Vec<String>,
    },
    /// A file read back from the medium differs from what was written.
    #[error("media fault: {}: {reason}", .path.display())]
    MediaFault {
        /// The file that read back wrong.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The filesystem has not the room for what would be written.
    #[error("{what}: needs {}, {} free on {}", crate::format::names::human_bytes(*.needed), crate::format::names::human_bytes(*.free), .path.display())]
    NoSpace {
        /// The folder written to.
        path: PathBuf,
        /// What would be written.
        what: &'static str,
        /// Bytes needed, at most.
        needed: u64,
        /// Bytes free there.
        free: u64,
    },
    /// A file would be overwritten.
    #[error("{} already exists", .path.display())]
    Exists {
        /// The file or folder that exists.
        path: PathBuf,
    },
    /// A failure after which pouch could not remove its staging folder.
    #[error("{cause}; also, the staging folder {} could not be removed ({reason}): delete it by hand", .staging.display())]
    StagingLeft {
        /// The staging folder left behind.
        staging: PathBuf,
        /// Why removing it failed.
        reason: String,
        /// The failure that stopped the unpack.
        cause: Box<Error>,
    },
    /// The user interrupted (Ctrl-C); everything was cleaned up.
    #[error("interrupted")]
    Interrupted,
    /// A config file or pack spec is malformed or names a bad value.
    #[error("{what} {}: {reason}", .path.display())]
    Config {
        /// `config` or `pack spec`.
        what: &'static str,
        /// The config file or pack spec.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The command was given the wrong kind of file or key: the message
    /// says which one to pass instead.
    #[error("{}: {problem}", .path.display())]
    WrongFile {
        /// What was given.
        path: PathBuf,
        /// What it is, and what to pass instead.
        problem: String,
        /// What the command takes.
        hint: &'static str,
    },
    /// The operator's flags are inconsistent or incomplete.
    #[error("{0}")]
    Usage(String),
    /// The request cannot be carried out as things stand (a folder that
    /// does not exist, a bundle this ledger never saw); the message says
    /// what to do first.
    #[error("{0}")]
    Refused(String),
    /// An invariant of pouch itself failed, or the system could not provide
    /// what pouch needs (randomness, a serialiser): a bug or a broken system,
    /// never the operator's or the bundle's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error: 1 when the bundle failed a check,
    /// 2 for usage, configuration or I/O problems.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadManifest { .. }
            | Error::BadSignature { .. }
            | Error::UntrustedSigner { .. }
            | Error::RevokedKey { .. }
            | Error::KeyNotInForce { .. }
            | Error::ChannelClaim { .. }
            | Error::NotAFile { .. }
            | Error::PayloadMismatch { .. }
            | Error::PayloadMissing { .. }
            | Error::NoMatchingIdentity { .. }
            | Error::CorruptPayload { .. }
            | Error::BadParts { .. }
            | Error::Damaged { .. }
            | Error::Replay { .. }
            | Error::LedgerBroken { .. }
            | Error::BadEntry { .. }
            | Error::ContentsMismatch { .. }
            | Error::DeltaBase { .. }
            | Error::BadReceipt { .. } => 1,
            Error::Io { .. }
            | Error::BadKey { .. }
            | Error::WrongPassphrase { .. }
            | Error::BadRecipient { .. }
            | Error::BadSource { .. }
            | Error::Unportable { .. }
            | Error::MediaFault { .. }
            | Error::Exists { .. }
            | Error::NoSpace { .. }
            | Error::Config { .. }
            | Error::WrongFile { .. }
            | Error::Usage(_)
            | Error::Refused(_)
            | Error::Internal(_) => 2,
            Error::StagingLeft { cause, .. } => cause.exit_code(),
            Error::Interrupted => 130,
        }
    }

    /// A stable name for the kind of error, for scripts (`--json`): the
    /// variant's name in snake case. An error that left a staging folder
    /// behind is of its cause's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadManifest { .. } => "bad_manifest",
            Error::BadSignature { .. } => "bad_signature",
            Error::UntrustedSigner { .. } => "untrusted_signer",
            Error::RevokedKey { .. } => "revoked_key",
            Error::KeyNotInForce { .. } => "key_not_in_force",
            Error::NotAFile { .. } => "not_a_file",
            Error::ChannelClaim { .. } => "channel_claim",
            Error::PayloadMismatch { .. } => "payload_mismatch",
            Error::PayloadMissing { .. } => "payload_missing",
            Error::NoMatchingIdentity { .. } => "no_matching_identity",
            Error::CorruptPayload { .. } => "corrupt_payload",
            Error::Replay { .. } => "replay",
            Error::DeltaBase { .. } => "delta_base",
            Error::LedgerBroken { .. } => "ledger_broken",
            Error::BadParts { .. } => "bad_parts",
            Error::Damaged {
                repairable: true, ..
            } => "damaged_repairable",
            Error::Damaged { .. } => "damaged_unrecoverable",
            Error::BadEntry { .. } => "bad_entry",
            Error::ContentsMismatch { .. } => "contents_mismatch",
            Error::BadReceipt { .. } => "bad_receipt",
            Error::Io { .. } => "io",
            Error::BadKey { .. } => "bad_key",
            Error::WrongPassphrase { .. } => "wrong_passphrase",
            Error::BadRecipient { .. } => "bad_recipient",
            Error::BadSource { .. } => "bad_source",
            Error::Unportable { .. } => "unportable",
            Error::MediaFault { .. } => "media_fault",
            Error::Exists { .. } => "exists",
            Error::NoSpace { .. } => "no_space",
            Error::StagingLeft { cause, .. } => cause.kind(),
            Error::Interrupted => "interrupted",
            Error::Config { .. } => "config",
            Error::WrongFile { .. } => "wrong_file",
            Error::Usage(_) => "usage",
            Error::Refused(_) => "refused",
            Error::Internal(_) => "internal",
        }
    }

    /// What the user can do next.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::BadManifest { .. } => {
                "the manifest is damaged, forged or from a newer pouch; ask the sender for a fresh copy"
            }
            Error::BadSignature { .. } => {
                "do not trust this bundle: the manifest or its .minisig was changed or damaged; ask the sender to send it again"
            }
            Error::UntrustedSigner { .. } => {
                "if you know this signer, pass their public key with --trust FILE; otherwise do not open the bundle"
            }
            Error::RevokedKey { .. } => {
                "the party revoked this key (it was lost or stolen): do not trust what it signed, whatever its date; ask the party to sign it again with its current key"
            }
            Error::KeyNotInForce { .. } => {
                "the key was not the party's signing key at the time the record claims: ask the party for a copy signed with its current key, or, if the keyring's rotation date is wrong, correct it after checking with the party by phone"
            }
            Error::DeltaBase { .. } => {
                "a delta goes only onto the unchanged result of its base, in order: apply the deltas before it first, restore the tree from its base, or ask the sender for a full bundle"
            }
            Error::NotAFile { .. } => {
                "pouch reads only regular files; a FIFO or device in a bundle's place is not a bundle: copy the real file from the sender's medium"
            }
            Error::ChannelClaim { .. } => {
                "only the sender party's own key may speak for its channel; do not accept this bundle, and tell the party it claims to come from"
            }
            Error::PayloadMismatch { .. } | Error::CorruptPayload { .. } => {
                "the payload was damaged or replaced in transit; copy it again from the medium or ask for a new copy"
            }
            Error::PayloadMissing { .. } => {
                "copy the payload (.age) from the medium next to the manifest"
            }
            Error::NoMatchingIdentity { .. } => {
                "pass the identity file (-i) of one of the bundle's recipients"
            }
            Error::BadEntry { .. } | Error::ContentsMismatch { .. } => {
                "the bundle's contents do not match what was signed; nothing was unpacked; report it to the sender"
            }
            Error::Replay { .. } => {
                "this bundle was received before; if you really need it again, pass --allow-replay"
            }
            Error::LedgerBroken { .. } => {
                "the ledger was changed or damaged after it was written; keep a copy as evidence and report it"
            }
            Error::BadParts { .. } => {
                "copy the named parts again from their medium (or pass --parts-from DIR where they are), then verify again"
            }
            Error::Damaged {
                repairable: true, ..
            } => {
                "repair it from its PAR2 files: pouch repair NAME.toml --trust SIGNER.pub (or stock par2 repair NAME.par2 in the bundle's folder; the manifest is not touched), then verify again"
            }
            Error::Damaged { .. } => {
                "the damage exceeds the recovery data: copy the named parts again from their medium (or pass --parts-from DIR), or ask the sender for the bundle again"
            }
            Error::Unportable { .. } => {
                "rename these files, or pass --allow-unportable-names if the bundle will only be unpacked on Linux"
            }
            Error::MediaFault { .. } => {
                "the medium did not keep what was written: write the bundle to another medium"
            }
            Error::Io { .. } => "check the path, its permissions and the free space",
            Error::BadKey { .. } => {
                "pass a key written by pouch keygen (or age-keygen for identities, minisign -G for signing keys)"
            }
            Error::WrongPassphrase { .. } => {
                "check the passphrase (on a terminal it is asked 3 times; with --passphrase-file, check the file's first line)"
            }
            Error::BadRecipient { .. } => {
                "recipients look like age1…; take them from NAME.age-recipient or age-keygen -y"
            }
            Error::BadSource { .. } => {
                "pack only regular files and folders (--skip-special skips the rest), and keep sources still while packing"
            }
            Error::NoSpace { .. } => {
                "nothing was written: make room there or choose a larger medium (pack's estimate assumes files that do not compress: pack --no-space-check tries anyway, and leaves nothing if the space runs out)"
            }
            Error::Exists { path } => exists_hint(path),
            Error::BadReceipt { .. } => {
                "the receipt is damaged or not for this bundle; ask the recipient for a fresh receipt of this bundle"
            }
            Error::Config { .. } => {
                "fix or remove the named setting; pouch config show lists every setting and where it came from"
            }
            Error::WrongFile { hint, .. } => hint,
            Error::Usage(_) => "see pouch COMMAND --help for its flags",
            Error::Refused(_) => "nothing was done: do what the message says, then run the command again",
            Error::Internal(_) => {
                "this is a fault in pouch or the system, not in the bundle: report it with the command that was run"
            }
            Error::StagingLeft { cause, .. } => cause.hint(),
            Error::Interrupted => "nothing was left half-written; run the command again to finish",
        }
    }

    /// An I/O error while doing `action` on `path`.
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Error {
        // An interruption carried through a reader or writer is not a
        // problem with the file it happened to be reading.
        if source.kind() == io::ErrorKind::Other && source.to_string() == INTERRUPTED {
            return Error::Interrupted;
        }
        Error::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// What to do about a file or folder that pouch will not overwrite, by
/// what it is: a key, a receipt, a report, a folder a bundle was unpacked
/// into, or a bundle's file.
fn exists_hint(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is = |suffixes: &[&str]| suffixes.iter().any(|s| name.ends_with(s));
    if is(&[
        ".minisign.key",
        ".minisign.pub",
        ".age-identity",
        ".age-recipient",
    ]) {
        "keygen never overwrites a key: choose another --name or --out folder; keep the old keys, the bundles sealed to them need them"
    } else if is(&[".receipt.toml", ".receipt.toml.minisig"]) {
        "a receipt of this bundle is there already: carry that one back, or move it away to write it again"
    } else if is(&[".html"]) {
        "choose another report file, or move the old one away"
    } else if path.is_dir() {
        "unpack never overwrites: the bundle was unpacked into this folder before; choose another -d DEST, or move that folder away"
    } else {
        "choose another --name or output folder, or move the old one away (a lone NAME.age without NAME.toml is left by an interrupted pack: delete it)"
    }
}

/// The message of the I/O error that carries an interruption through
/// readers and writers that do not know about it; [`Error::io`] turns it
/// back into [`Error::Interrupted`].
pub const INTERRUPTED: &str = "pouch: interrupted";

/// Attaches what was being done, and to which file, to I/O errors.
pub trait IoContext<T> {
    /// Turns an `io::Error` into [`Error::Io`]: `action` (`"reading"`,
    /// `"writing"`, ...) on `path`.
    fn doing(self, action: &'static str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn doing(self, action: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}

/// What the PAR2 files say of a damaged payload, in a line.
fn damage_line(
    repairable: bool,
    lost: u64,
    total: u64,
    recovery: u64,
    ignored: &[String],
) -> String {
    let mut s = match repairable {
        true => format!(
            "damaged but repairable ({lost} of {total} blocks lost, {recovery} recovery blocks available)"
        ),
        false => format!(
            "unrecoverable ({lost} of {total} blocks lost, only {recovery} recovery blocks available)"
        ),
    };
    if !ignored.is_empty() {
        s.push_str(&format!("; PAR2 files left out: {}", first_few(ignored)));
    }
    s
}

/// The first problems of a list, and how many more: a medium can hold any
/// number of stray parts, and the message must stay a line.
fn first_few(problems: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = problems
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > SHOWN {
        s.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    s
}
