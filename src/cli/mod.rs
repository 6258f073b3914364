//! Command-line definitions and dispatch.

pub mod demo;
pub mod render;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use pouch::error::{Error, Result};
use pouch::signature::{SigningKey, TrustedKey};
use pouch::verify::Trust;
use pouch::{crypto, inspect, keygen, pack, unpack, verify};

/// Seal files into signed, encrypted bundles for air-gapped transfer, and
/// verify and unpack them at the other end.
#[derive(Debug, Parser)]
#[command(name = "pouch", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  pouch demo                                  full round trip on sample data
  pouch keygen --name clerk --out keys
  pouch pack case/ -o /media/stick -R partner.age-recipient -s keys/clerk.minisign.key
  pouch verify /media/stick/NAME.toml --trust clerk.minisign.pub
  pouch unpack /media/stick/NAME.toml -i me.age-identity --trust clerk.minisign.pub -d inbox

Exit codes: 0 success, 1 the bundle failed a check, 2 usage, configuration or I/O error.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make an age identity and a minisign signing key pair.
    #[command(
        after_help = "Example:\n  pouch keygen --name clerk --out keys --passphrase-file pass.txt"
    )]
    Keygen {
        /// Base name of the four key files.
        #[arg(long)]
        name: String,
        /// Folder to write them to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Leave the signing key unencrypted.
        #[arg(long, conflicts_with = "passphrase_file")]
        no_passphrase: bool,
        /// Read the signing key's passphrase from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Seal files and folders into a signed, encrypted bundle.
    #[command(
        after_help = "Example:\n  pouch pack case-0142/ -o /media/stick -R fedpol.age-recipient -s clerk.minisign.key \\\n      --from bka --to fedpol --marking RESTRICTED --description \"case 0142\""
    )]
    Pack {
        /// Files and folders to pack.
        #[arg(required = true, value_name = "SOURCE")]
        sources: Vec<PathBuf>,
        /// Folder to write the bundle to.
        #[arg(short = 'o', long = "out", value_name = "OUTDIR")]
        out_dir: PathBuf,
        /// A recipient (age1…); repeatable.
        #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
        recipients: Vec<String>,
        /// A file of recipients, one per line; repeatable.
        #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
        recipients_files: Vec<PathBuf>,
        /// The clerk's minisign secret key.
        #[arg(short = 's', long = "signing-key", value_name = "KEY")]
        signing_key: PathBuf,
        /// Read the signing key's passphrase from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Bundle name (default: date, time and part of the bundle id).
        #[arg(long)]
        name: Option<String>,
        /// Sending party.
        #[arg(long = "from", value_name = "SENDER")]
        sender: Option<String>,
        /// Receiving party.
        #[arg(long = "to", value_name = "RECEIVER")]
        receiver: Option<String>,
        /// Security marking, e.g. RESTRICTED.
        #[arg(long, default_value = "")]
        marking: String,
        /// Free-text description.
        #[arg(long, default_value = "")]
        description: String,
        /// zstd compression level, 1 (fastest) to 19 (smallest).
        #[arg(long, default_value_t = pack::DEFAULT_LEVEL)]
        level: i32,
        /// Keep file names out of the outer manifest (only counts and a digest remain).
        #[arg(long)]
        seal_names: bool,
        /// Skip symlinks, FIFOs, sockets and devices (with a warning) instead of refusing.
        #[arg(long)]
        skip_special: bool,
        #[command(flatten)]
        media: MediaArgs,
        /// Pack names that Windows or FAT/exFAT cannot hold (reserved names, <>:"|?*\, trailing dot or space).
        #[arg(long)]
        allow_unportable_names: bool,
    },
    /// Check a bundle's signature and payload; with -i also its contents.
    #[command(
        after_help = "Examples:\n  pouch verify B.toml --trust clerk.minisign.pub              (auditor: no key needed)\n  pouch verify B.toml --trust clerk.minisign.pub -i me.age-identity"
    )]
    Verify {
        /// The bundle's manifest (NAME.toml).
        manifest: PathBuf,
        /// A trusted signer's public key (.pub file or RW… key); repeatable.
        #[arg(long, value_name = "SIGNER_PUB")]
        trust: Vec<String>,
        /// An identity file; decrypts and checks every entry too. Repeatable.
        #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
        identities: Vec<PathBuf>,
        /// Proceed without a trusted signature. Unsafe.
        #[arg(long)]
        insecure_skip_signature: bool,
        /// Also look for payload parts in DIR (repeatable), e.g. one folder per disc.
        #[arg(long = "parts-from", value_name = "DIR")]
        parts_from: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a bundle and unpack it into DEST/NAME.
    #[command(
        after_help = "Example:\n  pouch unpack /media/stick/B.toml -i me.age-identity --trust clerk.minisign.pub -d inbox"
    )]
    Unpack {
        /// The bundle's manifest (NAME.toml).
        manifest: PathBuf,
        /// An identity file; repeatable.
        #[arg(
            short = 'i',
            long = "identity",
            value_name = "IDENTITY",
            required = true
        )]
        identities: Vec<PathBuf>,
        /// A trusted signer's public key (.pub file or RW… key); repeatable.
        #[arg(long, value_name = "SIGNER_PUB")]
        trust: Vec<String>,
        /// Destination folder; the bundle lands in DEST/NAME.
        #[arg(short = 'd', long = "dest", value_name = "DEST")]
        dest: PathBuf,
        /// Proceed without a trusted signature. Unsafe.
        #[arg(long)]
        insecure_skip_signature: bool,
        /// Also look for payload parts in DIR (repeatable), e.g. one folder per disc.
        #[arg(long = "parts-from", value_name = "DIR")]
        parts_from: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a bundle holds, from its manifest.
    #[command(after_help = "Example:\n  pouch inspect B.toml --trust clerk.minisign.pub")]
    Inspect {
        /// The bundle's manifest (NAME.toml).
        manifest: PathBuf,
        /// A trusted signer's public key; when given, the signature is checked.
        #[arg(long, value_name = "SIGNER_PUB")]
        trust: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-cut a bundle's payload for another medium, without re-encrypting; re-signs the manifest.
    #[command(
        after_help = "Example:\n  pouch resplit stick/B.toml --media dvd -o burn/ -s clerk.minisign.key"
    )]
    Resplit {
        /// The bundle's manifest (NAME.toml).
        manifest: PathBuf,
        /// Folder for the re-cut bundle (not the one holding it now).
        #[arg(short = 'o', long = "out", value_name = "OUTDIR")]
        out_dir: PathBuf,
        /// The clerk's minisign secret key (the manifest is signed again).
        #[arg(short = 's', long = "signing-key", value_name = "KEY")]
        signing_key: PathBuf,
        /// Read the signing key's passphrase from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Signer keys trusted for the existing bundle (default: the -s key's own public key).
        #[arg(long, value_name = "SIGNER_PUB")]
        trust: Vec<String>,
        /// Also look for the existing parts in DIR (repeatable).
        #[arg(long = "parts-from", value_name = "DIR")]
        parts_from: Vec<PathBuf>,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Run a full round trip on built-in sample data.
    Demo {
        /// Folder to work in (default: a new temporary folder, kept for you to look at).
        dir: Option<PathBuf>,
    },
}

/// Part sizes and read-back, shared by pack and resplit.
#[derive(Debug, clap::Args)]
pub struct MediaArgs {
    /// Split the payload into parts of at most SIZE (bytes, or K/M/G/T = x1024, KB/MB/GB/TB = x1000).
    #[arg(long, value_name = "SIZE", conflicts_with = "media")]
    split: Option<String>,
    /// Split for a medium: fat32, exfat, dvd, dvd-dl, bd25, bd50.
    #[arg(long, value_name = "PRESET")]
    media: Option<String>,
    /// Read every file back from the device after writing (default: on for removable media).
    #[arg(long, overrides_with = "no_verify_after_write")]
    verify_after_write: bool,
    /// Do not read files back after writing.
    #[arg(long)]
    no_verify_after_write: bool,
}

impl MediaArgs {
    fn split(&self) -> Result<Option<u64>> {
        match (&self.split, &self.media) {
            (Some(size), _) => pouch::media::parse_size(size).map(Some),
            (None, Some(preset)) => pouch::media::preset(preset),
            (None, None) => Ok(None),
        }
    }

    fn verify_after_write(&self) -> Option<bool> {
        if self.verify_after_write {
            Some(true)
        } else if self.no_verify_after_write {
            Some(false)
        } else {
            None
        }
    }
}

impl Command {
    /// Whether the user asked for JSON output.
    pub fn json(&self) -> bool {
        matches!(
            self,
            Command::Verify { json: true, .. }
                | Command::Unpack { json: true, .. }
                | Command::Inspect { json: true, .. }
        )
    }
}

/// Runs a parsed command; returns the exit code on success paths.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Keygen {
            name,
            out,
            no_passphrase,
            passphrase_file,
        } => {
            let passphrase = if no_passphrase {
                None
            } else if let Some(f) = passphrase_file {
                Some(read_passphrase_file(&f)?)
            } else {
                Some(prompt_new_passphrase()?)
            };
            let report = keygen::keygen(&name, &out, passphrase)?;
            render::keygen(&report);
            Ok(0)
        }
        Command::Pack {
            sources,
            out_dir,
            recipients,
            recipients_files,
            signing_key,
            passphrase_file,
            name,
            sender,
            receiver,
            marking,
            description,
            level,
            seal_names,
            skip_special,
            media,
            allow_unportable_names,
        } => {
            let mut all = Vec::new();
            for r in &recipients {
                all.push(crypto::parse_recipient(r)?);
            }
            for f in &recipients_files {
                all.extend(crypto::read_recipients_file(f)?);
            }
            let key = load_signing_key(&signing_key, passphrase_file.as_deref())?;
            let opts = pack::PackOptions {
                sources,
                out_dir,
                recipients: all,
                name,
                sender,
                receiver,
                marking,
                description,
                level,
                seal_names,
                skip_special,
                source_date_epoch: source_date_epoch()?,
                split: media.split()?,
                verify_after_write: media.verify_after_write(),
                allow_unportable_names,
            };
            let report = pack::pack(&opts, &key)?;
            render::pack(&report);
            Ok(0)
        }
        Command::Verify {
            manifest,
            trust,
            identities,
            insecure_skip_signature,
            parts_from,
            json,
        } => {
            let opts = verify::VerifyOptions {
                manifest,
                trust: trust_policy(&trust, insecure_skip_signature)?,
                identities: load_identities(&identities)?,
                parts_from,
            };
            let report = verify::verify(&opts)?;
            render::verify(&report, json);
            Ok(0)
        }
        Command::Unpack {
            manifest,
            identities,
            trust,
            dest,
            insecure_skip_signature,
            parts_from,
            json,
        } => {
            let opts = unpack::UnpackOptions {
                manifest,
                trust: trust_policy(&trust, insecure_skip_signature)?,
                identities: load_identities(&identities)?,
                dest,
                parts_from,
            };
            let report = unpack::unpack(&opts)?;
            render::unpack(&report, json);
            Ok(0)
        }
        Command::Inspect {
            manifest,
            trust,
            json,
        } => {
            let keys = load_trusted(&trust)?;
            let report = inspect::inspect(&manifest, &keys)?;
            render::inspect(&report, json);
            match &report.signature {
                inspect::SignatureCheck::Failed { reason } => {
                    render::warn(&format!(
                        "error: signature check failed: {reason}\n  hint: do not rely on anything this manifest says"
                    ));
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
        Command::Resplit {
            manifest,
            out_dir,
            signing_key,
            passphrase_file,
            trust,
            parts_from,
            media,
        } => {
            let key = load_signing_key(&signing_key, passphrase_file.as_deref())?;
            let trust = if trust.is_empty() {
                Trust::Keys(vec![key.trusted()])
            } else {
                Trust::Keys(load_trusted(&trust)?)
            };
            let opts = pouch::resplit::ResplitOptions {
                manifest,
                trust,
                parts_from,
                split: media.split()?,
                out_dir,
                verify_after_write: media.verify_after_write(),
            };
            let report = pouch::resplit::resplit(&opts, &key)?;
            render::pack(&report);
            Ok(0)
        }
        Command::Demo { dir } => demo::run(dir),
    }
}

/// Loads trusted keys, or the explicit opt-out.
pub fn trust_policy(trust: &[String], insecure_skip: bool) -> Result<Trust> {
    if insecure_skip {
        if !trust.is_empty() {
            return Err(Error::Usage(
                "--trust and --insecure-skip-signature contradict each other; drop one".into(),
            ));
        }
        render::warn("WARNING: --insecure-skip-signature: the signature is NOT checked; anyone could have made this bundle");
        return Ok(Trust::InsecureSkip);
    }
    if trust.is_empty() {
        return Err(Error::Usage(
            "no trusted signer: pass --trust SIGNER.minisign.pub (the sender's public key)".into(),
        ));
    }
    Ok(Trust::Keys(load_trusted(trust)?))
}

/// Loads `--trust` arguments.
pub fn load_trusted(trust: &[String]) -> Result<Vec<TrustedKey>> {
    trust.iter().map(|t| TrustedKey::load(t)).collect()
}

/// Loads `-i` identity files.
pub fn load_identities(paths: &[PathBuf]) -> Result<Vec<age::x25519::Identity>> {
    let mut ids = Vec::new();
    for p in paths {
        ids.extend(crypto::read_identity_file(p)?);
    }
    Ok(ids)
}

/// Loads a signing key, asking for its passphrase if needed.
pub fn load_signing_key(path: &Path, passphrase_file: Option<&Path>) -> Result<SigningKey> {
    SigningKey::load(path, &mut || match passphrase_file {
        Some(f) => read_passphrase_file(f),
        None => prompt_passphrase(&format!("Passphrase for {}: ", path.display()), path),
    })
}

fn read_passphrase_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(Error::BadKey {
            path: path.to_path_buf(),
            reason: "the passphrase file's first line is empty".into(),
        });
    }
    Ok(line)
}

fn prompt_passphrase(prompt: &str, key: &Path) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::BadKey {
            path: key.to_path_buf(),
            reason: "the key is passphrase-protected and there is no terminal to ask on: pass --passphrase-file FILE".into(),
        });
    }
    rpassword::prompt_password(prompt).map_err(|e| Error::io("/dev/tty", e))
}

fn prompt_new_passphrase() -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "the signing key needs a passphrase and there is no terminal to ask on: pass --passphrase-file FILE or --no-passphrase".into(),
        ));
    }
    let first = rpassword::prompt_password("Passphrase for the new signing key: ")
        .map_err(|e| Error::io("/dev/tty", e))?;
    let second = rpassword::prompt_password("Same passphrase again: ")
        .map_err(|e| Error::io("/dev/tty", e))?;
    if first != second {
        return Err(Error::Usage(
            "the two passphrases differ; run keygen again".into(),
        ));
    }
    if first.is_empty() {
        return Err(Error::Usage(
            "empty passphrase; use --no-passphrase if you really want an unprotected key".into(),
        ));
    }
    Ok(first)
}

fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse::<u64>().map(Some).map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        }),
        _ => Ok(None),
    }
}
