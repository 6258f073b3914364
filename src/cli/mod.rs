//! Command-line definitions and dispatch.

pub mod bar;
pub mod demo;
pub mod render;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use pouch::error::{Error, Result};
use pouch::payload::crypto;
use pouch::signature::{SigningKey, TrustedKey};
use pouch::verify::Trust;
use pouch::{inspect, keygen, pack, unpack, verify};

/// Seal files into signed, encrypted bundles for air-gapped transfer, and
/// verify and unpack them at the other end.
#[derive(Debug, Parser)]
#[command(name = "pouch", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// The keyring (default: $POUCH_HOME/keyring.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// The ledger (default: $POUCH_HOME/ledger.jsonl).
    #[arg(long, global = true, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// No progress bars or notes on stderr (errors are still shown).
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
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
        after_help = "Examples:\n  pouch keygen --name clerk --out keys --passphrase-file pass.txt\n  pouch keygen --name fedpol --out keys --pq      (post-quantum age key)"
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
        /// Make a post-quantum age key (ML-KEM-768 + X25519: AGE-SECRET-KEY-PQ-1…, age1pq1…).
        #[arg(long)]
        pq: bool,
    },
    /// Seal files and folders into a signed, encrypted bundle.
    #[command(
        after_help = "Example:\n  pouch pack case-0142/ -o /media/stick -R fedpol.age-recipient -s clerk.minisign.key \\\n      --from bka --to fedpol --marking RESTRICTED --description \"case 0142\""
    )]
    Pack {
        /// Files and folders to pack (or `sources` in the --spec).
        #[arg(value_name = "SOURCE")]
        sources: Vec<PathBuf>,
        /// Folder to write the bundle to (default: the spec's or config's out_dir).
        #[arg(short = 'o', long = "out", value_name = "OUTDIR")]
        out_dir: Option<PathBuf>,
        /// A pack spec: sources, globs, recipients, channel, marking, media... (flags override it).
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        /// List what would be packed (paths, sizes, total, estimated parts) and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// A recipient (age1… or post-quantum age1pq1…); repeatable.
        #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
        recipients: Vec<String>,
        /// A file of recipients, one per line; repeatable.
        #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
        recipients_files: Vec<PathBuf>,
        /// The clerk's minisign secret key (default: the config's signing_key).
        #[arg(short = 's', long = "signing-key", value_name = "KEY")]
        signing_key: Option<PathBuf>,
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
        #[arg(long)]
        marking: Option<String>,
        /// Free-text description.
        #[arg(long)]
        description: Option<String>,
        /// zstd compression level, 1 (fastest) to 19 (smallest); default 3.
        #[arg(long)]
        level: Option<i32>,
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
        /// Refuse to seal unless every recipient is post-quantum (age1pq1…).
        #[arg(long)]
        require_pq: bool,
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
        /// Record the outcome in the ledger (verified or rejected).
        #[arg(long)]
        record: bool,
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
        /// Accept a bundle this ledger has accepted before.
        #[arg(long)]
        allow_replay: bool,
        /// Write a signed receipt NAME.receipt.toml into DIR (needs -s).
        #[arg(long, value_name = "DIR", requires = "signing_key")]
        receipt_out: Option<PathBuf>,
        /// The recipient's minisign secret key, to sign the receipt.
        #[arg(short = 's', long = "signing-key", value_name = "KEY")]
        signing_key: Option<PathBuf>,
        /// Read the signing key's passphrase from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Also look for payload parts in DIR (repeatable), e.g. one folder per disc.
        #[arg(long = "parts-from", value_name = "DIR")]
        parts_from: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage the keyring: named parties with their signing keys and recipients.
    #[command(subcommand)]
    Keyring(KeyringCommand),
    /// Show and check the ledger of bundles packed, accepted, rejected and delivered.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Receipts from recipients.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Check every bundle and receipt below PATH... without any decryption key.
    #[command(
        after_help = "Examples:\n  pouch audit /media/stick\n  pouch audit archive/2026-11 --ledger ledger.jsonl --json"
    )]
    Audit {
        /// Folders (or files) to search.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// More trusted signer keys, besides the keyring's.
        #[arg(long, value_name = "SIGNER_PUB")]
        trust: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Fail every bundle that is not sealed to post-quantum recipients only.
        #[arg(long)]
        require_pq: bool,
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
    /// Show the effective settings and where each comes from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = "Example:\n  pouch completions bash > /etc/bash_completion.d/pouch")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages: pouch.1 and one per subcommand (pouch-pack.1, ...).
    #[command(after_help = "Example:\n  pouch man --out /usr/local/share/man/man1")]
    Man {
        /// Folder to write them to (default: print pouch.1 to stdout).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run a full round trip on built-in sample data.
    #[command(after_help = "Example:\n  pouch demo /tmp/pouch-demo")]
    Demo {
        /// Folder to work in (default: a new temporary folder, kept for you to look at).
        dir: Option<PathBuf>,
    },
}

/// Config subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print each setting, its value and its source (flag, config file or default).
    #[command(after_help = "Example:\n  pouch config show --json")]
    Show {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Keyring subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Add a party, or add keys to one.
    #[command(
        after_help = "Example:\n  pouch keyring add fedpol-ic --sign-pub fedpol.minisign.pub --recipient age1..."
    )]
    Add {
        /// The party's name (as in --from/--to).
        name: String,
        /// Its minisign public key (.pub file or RW... key).
        #[arg(long, value_name = "FILE")]
        sign_pub: Option<String>,
        /// An age recipient of the party; repeatable.
        #[arg(long = "recipient", value_name = "RECIPIENT")]
        recipients: Vec<String>,
        /// A file of its age recipients; repeatable.
        #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
        recipients_files: Vec<PathBuf>,
    },
    /// List the parties.
    #[command(after_help = "Example:\n  pouch keyring list --json")]
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a party.
    #[command(after_help = "Example:\n  pouch keyring remove old-desk")]
    Remove {
        /// The party's name.
        name: String,
    },
}

/// Ledger subcommands.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Show the records; packed bundles are marked delivered or outstanding.
    #[command(after_help = "Example:\n  pouch ledger show --channel bka-zd:fedpol-ic")]
    Show {
        /// Only this channel, SENDER:RECEIVER.
        #[arg(long)]
        channel: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain: names the first edited, removed, reordered or inserted record.
    #[command(after_help = "Example:\n  pouch ledger verify --ledger copy-of-ledger.jsonl")]
    Verify {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Missing sequence numbers per channel among the bundles accepted.
    #[command(after_help = "Example:\n  pouch ledger gaps")]
    Gaps {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Receipt subcommands.
#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Check a recipient's receipt and record the bundle as delivered.
    #[command(after_help = "Example:\n  pouch receipt import /media/stick/B.receipt.toml")]
    Import {
        /// The receipt (NAME.receipt.toml; its .minisig beside it).
        receipt: PathBuf,
        /// More trusted signer keys, besides the keyring's.
        #[arg(long, value_name = "SIGNER_PUB")]
        trust: Vec<String>,
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
            (Some(size), _) => pouch::disk::media::parse_size(size).map(Some),
            (None, Some(preset)) => pouch::disk::media::preset(preset),
            (None, None) => Ok(None),
        }
    }

    fn given(&self) -> bool {
        self.split.is_some() || self.media.is_some()
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
                | Command::Audit { json: true, .. }
                | Command::Config(ConfigCommand::Show { json: true })
                | Command::Keyring(KeyringCommand::List { json: true })
                | Command::Ledger(LedgerCommand::Show { json: true, .. })
                | Command::Ledger(LedgerCommand::Verify { json: true })
                | Command::Ledger(LedgerCommand::Gaps { json: true })
        )
    }
}

/// Runs a parsed command; returns the exit code on success paths.
pub fn run(cli: Cli) -> Result<u8> {
    // Without a home (no POUCH_HOME, no HOME) there is no config: commands
    // that need the keyring or the ledger say so themselves.
    let config_path = pouch::settings::config::config_path()
        .unwrap_or_else(|_| PathBuf::from("(no home: set POUCH_HOME)"));
    let config = if config_path.is_absolute() || config_path.exists() {
        pouch::settings::config::Config::load(&config_path)?
    } else {
        pouch::settings::config::Config::default()
    };
    let keyring_arg = cli.keyring.clone().or(config.keyring.clone());
    let ledger_arg = cli.ledger.clone().or(config.ledger.clone());
    let ledger_path = || pouch::settings::home::ledger_path(ledger_arg.as_ref());
    let keyring = || pouch::custody::keyring::open(keyring_arg.as_ref()).map(|(k, _)| k);
    let progress = bar::handle(cli.quiet);
    render::set_quiet(cli.quiet);
    match cli.command {
        Command::Keygen {
            name,
            out,
            no_passphrase,
            passphrase_file,
            pq,
        } => {
            let passphrase = if no_passphrase {
                None
            } else if let Some(f) = passphrase_file {
                Some(read_passphrase_file(&f)?)
            } else {
                Some(prompt_new_passphrase()?)
            };
            let report = keygen::keygen(&name, &out, passphrase, pq)?;
            render::keygen(&report);
            Ok(0)
        }
        Command::Pack {
            sources,
            out_dir,
            spec,
            dry_run,
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
            require_pq,
        } => {
            // Flags override the spec, the spec overrides the config.
            let spec = match &spec {
                Some(p) => pouch::settings::config::Spec::load(p)?,
                None => pouch::settings::config::Spec::default(),
            };
            let sources = if sources.is_empty() {
                spec.sources.clone()
            } else {
                sources
            };
            if sources.is_empty() {
                return Err(Error::Usage(
                    "nothing to pack: name files or folders, or give a --spec with sources".into(),
                ));
            }
            let receiver = receiver.or(spec.to.clone());
            let sender = sender.or(spec.from.clone()).or(config.sender.clone());
            let split = match (media.split()?, &spec.split, &spec.media, &config.media) {
                (Some(s), ..) => Some(s),
                (None, Some(s), _, _) => Some(pouch::disk::media::parse_size(s)?),
                (None, None, Some(m), _) => pouch::disk::media::preset(m)?,
                (None, None, None, Some(m)) if !media.given() => pouch::disk::media::preset(m)?,
                _ => None,
            };
            let filter = pouch::settings::config::Filter::new(&spec.include, &spec.exclude)
                .map_err(Error::Usage)?;
            let out_dir = out_dir.or(spec.out_dir.clone()).or(config.out_dir.clone());
            let mut opts = pack::PackOptions {
                sources,
                out_dir: out_dir.clone().unwrap_or_else(|| PathBuf::from(".")),
                recipients: Vec::new(),
                require_pq: require_pq
                    || spec.require_pq.unwrap_or(false)
                    || config.require_pq.unwrap_or(false),
                name,
                sender,
                receiver: receiver.clone(),
                marking: marking
                    .or(spec.marking.clone())
                    .or(config.marking.clone())
                    .unwrap_or_default(),
                description: description.or(spec.description.clone()).unwrap_or_default(),
                level: level
                    .or(spec.level)
                    .or(config.level)
                    .unwrap_or(pack::DEFAULT_LEVEL),
                seal_names: seal_names || spec.seal_names.unwrap_or(false),
                skip_special,
                source_date_epoch: source_date_epoch()?,
                split,
                verify_after_write: media.verify_after_write(),
                allow_unportable_names,
                ledger: Some(ledger_path()?),
                progress: progress.clone(),
                filter,
                zstd_workers: pack::default_zstd_workers(),
            };
            if dry_run {
                let report = pack::dry_run(&opts)?;
                render::dry_run(&report, &opts);
                return Ok(if report.unportable.is_empty() || allow_unportable_names {
                    0
                } else {
                    2
                });
            }
            if out_dir.is_none() {
                return Err(Error::Usage(
                    "no output folder: pass -o OUTDIR (or set out_dir in the spec or config)"
                        .into(),
                ));
            }
            let ring = keyring()?;
            let mut all = Vec::new();
            for r in &recipients {
                all.push(crypto::parse_recipient(r)?);
            }
            for f in &recipients_files {
                all.extend(crypto::read_recipients_file(f)?);
            }
            // The spec's recipients must be in the keyring; the receiver
            // (--to) contributes its recipients when it is there.
            for n in &spec.recipients {
                if ring.get(n).is_none() {
                    return Err(Error::Usage(format!(
                        "recipient {n} of the spec is not in the keyring; pouch keyring add {n} --recipient age1..."
                    )));
                }
            }
            let parties = spec
                .recipients
                .iter()
                .chain(receiver.iter())
                .filter_map(|n| ring.get(n));
            for r in parties.flat_map(|p| p.recipients.iter()) {
                let r = crypto::parse_recipient(r)?;
                if !all.contains(&r) {
                    all.push(r);
                }
            }
            if all.is_empty() {
                return Err(Error::Usage(match &receiver {
                    Some(to) => format!(
                        "no recipients: {to} has none in the keyring; pass -r age1... or -R FILE, or pouch keyring add {to} --recipient age1..."
                    ),
                    None => "no recipients: pass -r age1..., -R FILE, or --to NAME of a keyring party".into(),
                }));
            }
            opts.recipients = all;
            let Some(signing_key) = signing_key.or(config.signing_key.clone()) else {
                return Err(Error::Usage(
                    "no signing key: pass -s KEY (or set signing_key in the config)".into(),
                ));
            };
            let passphrase_file = passphrase_file.or(config.passphrase_file.clone());
            let key = load_signing_key(&signing_key, passphrase_file.as_deref())?;
            let report = pack::pack(&opts, &key)?;
            render::pack(&report);
            Ok(0)
        }
        Command::Verify {
            manifest,
            trust,
            identities,
            insecure_skip_signature,
            record,
            parts_from,
            json,
        } => {
            let keys = keyring()?;
            let opts = verify::VerifyOptions {
                manifest: manifest.clone(),
                trust: trust_policy(&trust, insecure_skip_signature, &keys)?,
                identities: load_identities(&identities)?,
                parts_from,
                progress: progress.clone(),
            };
            let result = verify::verify(&opts);
            if record {
                record_verify(&ledger_path()?, &manifest, &result)?;
            }
            let report = result?;
            render::verify(&report, &keys, json);
            Ok(0)
        }
        Command::Unpack {
            manifest,
            identities,
            trust,
            dest,
            insecure_skip_signature,
            allow_replay,
            receipt_out,
            signing_key,
            passphrase_file,
            parts_from,
            json,
        } => {
            let keys = keyring()?;
            // Load the receipt key first: a wrong passphrase must not come
            // after the bundle was accepted.
            let receipt_key = match &signing_key {
                Some(k) => Some(load_signing_key(k, passphrase_file.as_deref())?),
                None => None,
            };
            let opts = unpack::UnpackOptions {
                manifest: manifest.clone(),
                trust: trust_policy(&trust, insecure_skip_signature, &keys)?,
                identities: load_identities(&identities)?,
                dest,
                parts_from,
                ledger: Some(ledger_path()?),
                allow_replay,
                progress: progress.clone(),
            };
            let report = unpack::unpack(&opts)?;
            let receipt = match (&receipt_out, &receipt_key) {
                (Some(dir), Some(key)) => Some(pouch::custody::receipt::write(
                    dir,
                    &report.manifest,
                    &report.manifest_sha256,
                    key,
                )?),
                _ => None,
            };
            render::unpack(&report, receipt.as_deref(), json);
            Ok(0)
        }
        Command::Inspect {
            manifest,
            trust,
            json,
        } => {
            let keys = load_trusted(&trust, &keyring()?)?;
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
                Trust::Keys(load_trusted(&trust, &Default::default())?)
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
        Command::Keyring(cmd) => {
            let (mut ring, path) = pouch::custody::keyring::open(keyring_arg.as_ref())?;
            match cmd {
                KeyringCommand::Add {
                    name,
                    sign_pub,
                    mut recipients,
                    recipients_files,
                } => {
                    for f in &recipients_files {
                        recipients.extend(
                            crypto::read_recipients_file(f)?
                                .iter()
                                .map(|r| r.to_string()),
                        );
                    }
                    ring.add(&name, sign_pub.as_deref(), &recipients)?;
                    ring.save(&path)?;
                    render::warn(&format!("{} updated: {name}", path.display()));
                }
                KeyringCommand::List { json } => render::keyring(&ring, json),
                KeyringCommand::Remove { name } => {
                    ring.remove(&name)?;
                    ring.save(&path)?;
                    render::warn(&format!("{} updated: {name} removed", path.display()));
                }
            }
            Ok(0)
        }
        Command::Ledger(cmd) => {
            let path = ledger_path()?;
            match cmd {
                LedgerCommand::Show { channel, json } => {
                    let records = pouch::custody::ledger::read(&path)?;
                    render::ledger_show(&records, channel.as_deref(), json);
                }
                LedgerCommand::Verify { json } => {
                    let n = pouch::custody::ledger::verify(&path)?;
                    render::ledger_verify(&path, n, json);
                }
                LedgerCommand::Gaps { json } => {
                    let records = pouch::custody::ledger::read(&path)?;
                    render::ledger_gaps(&pouch::custody::ledger::gaps(&records), json);
                }
            }
            Ok(0)
        }
        Command::Receipt(ReceiptCommand::Import { receipt, trust }) => {
            let keys = load_trusted(&trust, &keyring()?)?;
            if keys.is_empty() {
                return Err(Error::Usage(
                    "no trusted keys: add the recipient with pouch keyring add NAME --sign-pub FILE, or pass --trust".into(),
                ));
            }
            let imported = pouch::custody::receipt::import(&receipt, &keys, &ledger_path()?)?;
            render::receipt(&imported);
            Ok(0)
        }
        Command::Audit {
            paths,
            trust,
            json,
            require_pq,
        } => {
            let keys = load_trusted(&trust, &keyring()?)?;
            let opts = pouch::audit::AuditOptions {
                paths,
                trusted: keys,
                ledger: ledger_arg.clone(),
                require_pq: require_pq || config.require_pq.unwrap_or(false),
            };
            let report = pouch::audit::audit(&opts)?;
            render::audit(&report, json);
            Ok(if report.failed > 0 { 1 } else { 0 })
        }
        Command::Config(ConfigCommand::Show { json }) => {
            let origin = |flag: bool, conf: bool| {
                if flag {
                    "flag".to_string()
                } else if conf {
                    format!("config {}", config_path.display())
                } else {
                    "default".to_string()
                }
            };
            let show = |v: &Option<PathBuf>| v.as_ref().map(|p| p.display().to_string());
            let rows: Vec<(&str, Option<String>, String)> = vec![
                (
                    "home",
                    Some(pouch::settings::home::home()?.display().to_string()),
                    if std::env::var_os("POUCH_HOME").is_some() {
                        "environment POUCH_HOME".into()
                    } else {
                        "default".into()
                    },
                ),
                (
                    "config_file",
                    Some(config_path.display().to_string()),
                    "default".into(),
                ),
                (
                    "sender",
                    config.sender.clone(),
                    origin(false, config.sender.is_some()),
                ),
                (
                    "signing_key",
                    show(&config.signing_key),
                    origin(false, config.signing_key.is_some()),
                ),
                (
                    "passphrase_file",
                    show(&config.passphrase_file),
                    origin(false, config.passphrase_file.is_some()),
                ),
                (
                    "keyring",
                    Some(
                        pouch::settings::home::keyring_path(keyring_arg.as_ref())?
                            .display()
                            .to_string(),
                    ),
                    origin(cli.keyring.is_some(), config.keyring.is_some()),
                ),
                (
                    "ledger",
                    Some(ledger_path()?.display().to_string()),
                    origin(cli.ledger.is_some(), config.ledger.is_some()),
                ),
                (
                    "marking",
                    config.marking.clone(),
                    origin(false, config.marking.is_some()),
                ),
                (
                    "level",
                    Some(config.level.unwrap_or(pack::DEFAULT_LEVEL).to_string()),
                    origin(false, config.level.is_some()),
                ),
                (
                    "media",
                    config.media.clone(),
                    origin(false, config.media.is_some()),
                ),
                (
                    "out_dir",
                    show(&config.out_dir),
                    origin(false, config.out_dir.is_some()),
                ),
                (
                    "require_pq",
                    Some(config.require_pq.unwrap_or(false).to_string()),
                    origin(false, config.require_pq.is_some()),
                ),
            ];
            render::config(&rows, json);
            Ok(0)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "pouch", &mut buf);
            render::out(String::from_utf8_lossy(&buf).trim_end());
            Ok(0)
        }
        Command::Man { out } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match out {
                None => {
                    let mut buf = Vec::new();
                    clap_mangen::Man::new(cmd)
                        .render(&mut buf)
                        .map_err(|e| Error::io("stdout", e))?;
                    render::out(String::from_utf8_lossy(&buf).trim_end());
                }
                Some(dir) => {
                    let written = write_man_pages(cmd, &dir)?;
                    render::note(&format!("wrote {written} man pages to {}", dir.display()));
                }
            }
            Ok(0)
        }
        Command::Demo { dir } => demo::run(dir),
    }
}

/// Appends the outcome of a verify to the ledger.
fn record_verify(
    ledger: &Path,
    manifest: &Path,
    result: &Result<verify::VerifyReport>,
) -> Result<()> {
    use pouch::custody::ledger::{Event, Ledger, NewRecord};
    let mut l = Ledger::open(ledger)?;
    let (parsed, sha) = match result {
        Ok(r) => (Some(r.manifest.clone()), r.manifest_sha256.clone()),
        // Rejected: read again only to name what was rejected.
        Err(_) => {
            let bytes = verify::read_manifest_bytes(manifest).ok();
            let m = bytes
                .as_ref()
                .and_then(|b| pouch::format::manifest::Manifest::parse(b, manifest).ok());
            (
                m,
                bytes
                    .as_ref()
                    .map(|b| pouch::payload::hashing::sha256_hex(b))
                    .unwrap_or_default(),
            )
        }
    };
    let mut rec = match &parsed {
        Some(m) => NewRecord::about(Event::Verified, m, &sha),
        None => NewRecord {
            name: manifest
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned()),
            ..NewRecord::default()
        },
    };
    match result {
        Ok(r) => {
            rec.event = Some(Event::Verified);
            rec.notes.push(if r.contents_checked {
                "signature, payload and contents OK".into()
            } else {
                "signature and payload OK".into()
            });
        }
        Err(e) => {
            rec.event = Some(Event::Rejected);
            rec.notes.push(e.to_string());
        }
    }
    l.append(rec)?;
    Ok(())
}

/// Loads trusted keys (the keyring's and `--trust`), or the explicit opt-out.
pub fn trust_policy(
    trust: &[String],
    insecure_skip: bool,
    keyring: &pouch::custody::keyring::Keyring,
) -> Result<Trust> {
    if insecure_skip {
        if !trust.is_empty() {
            return Err(Error::Usage(
                "--trust and --insecure-skip-signature contradict each other; drop one".into(),
            ));
        }
        render::warn("WARNING: --insecure-skip-signature: the signature is NOT checked; anyone could have made this bundle");
        return Ok(Trust::InsecureSkip);
    }
    let keys = load_trusted(trust, keyring)?;
    if keys.is_empty() {
        return Err(Error::Usage(
            "no trusted signer: pass --trust SIGNER.minisign.pub (the sender's public key), or add the sender with pouch keyring add".into(),
        ));
    }
    Ok(Trust::Keys(keys))
}

/// The trusted signer keys: `--trust` arguments, then the keyring's.
pub fn load_trusted(
    trust: &[String],
    keyring: &pouch::custody::keyring::Keyring,
) -> Result<Vec<TrustedKey>> {
    let mut keys = trust
        .iter()
        .map(|t| TrustedKey::load(t))
        .collect::<Result<Vec<_>>>()?;
    keys.extend(keyring.trusted_keys());
    Ok(keys)
}

/// Loads `-i` identity files.
pub fn load_identities(paths: &[PathBuf]) -> Result<Vec<crypto::Identity>> {
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

/// Writes pouch.1 and a page per subcommand (and sub-subcommand) into `dir`.
fn write_man_pages(cmd: clap::Command, dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut count = 0;
    let mut stack = vec![(cmd.get_name().to_string(), cmd)];
    while let Some((name, cmd)) = stack.pop() {
        let mut buf = Vec::new();
        let page = clap_mangen::Man::new(cmd.clone().name(name.clone()));
        page.render(&mut buf).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, buf).map_err(|e| Error::io(&path, e))?;
        count += 1;
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            stack.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
    }
    Ok(count)
}
