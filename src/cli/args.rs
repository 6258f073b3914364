//! The command line's grammar: every command, flag and help text, as clap
//! types. Nothing here decides anything; `cmd/` turns these into library calls.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use pouch::error::Result;

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
    /// The ledger (default: $POUCH_HOME/ledger.jsonl); audit takes several
    /// (the sender's and the receiver's) to reconcile them.
    #[arg(long, global = true, value_name = "FILE", action = clap::ArgAction::Append)]
    pub ledger: Vec<PathBuf>,
    /// No progress bars or notes on stderr (errors are still shown).
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
}

const EXAMPLES: &str = "\
Examples:
  pouch demo                                  the story, on sample data
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
    Keygen(KeygenArgs),
    /// Seal files and folders into a signed, encrypted bundle.
    #[command(
        after_help = "Example:\n  pouch pack case-0142/ -o /media/stick -R fedpol.age-recipient -s clerk.minisign.key \\\n      --from bka --to fedpol --marking RESTRICTED --description \"case 0142\""
    )]
    Pack(PackArgs),
    /// Check a bundle's signature and payload; with -i also its contents.
    #[command(
        after_help = "Examples:\n  pouch verify B.toml --trust clerk.minisign.pub              (auditor: no key needed)\n  pouch verify B.toml --trust clerk.minisign.pub -i me.age-identity"
    )]
    Verify(VerifyArgs),
    /// Verify a bundle and unpack it into DEST/NAME.
    #[command(
        after_help = "Example:\n  pouch unpack /media/stick/B.toml -i me.age-identity --trust clerk.minisign.pub -d inbox"
    )]
    Unpack(UnpackArgs),
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
        after_help = "Examples:\n  pouch audit /media/stick\n  pouch audit archive/2026-11 --ledger ledger.jsonl --json\n  pouch audit /media/stick --ledger bka-ledger.jsonl --ledger fedpol-ledger.jsonl --html report.html"
    )]
    Audit(AuditArgs),
    /// Show what a bundle holds, from its manifest.
    #[command(after_help = "Example:\n  pouch inspect B.toml --trust clerk.minisign.pub")]
    Inspect(InspectArgs),
    /// Re-cut a bundle's payload for another medium, without re-encrypting; re-signs the manifest.
    #[command(
        after_help = "Example:\n  pouch resplit stick/B.toml --media dvd -o burn/ -s clerk.minisign.key"
    )]
    Resplit(ResplitArgs),
    /// Repair damaged or lost payload parts from the bundle's PAR2 recovery files (no par2 needed).
    #[command(
        after_help = "Examples:\n  pouch repair stick/B.toml --trust clerk.minisign.pub\n  pouch repair disc1/B.toml --parts-from /media/disc2 -o fixed/ --trust clerk.minisign.pub"
    )]
    Repair(RepairArgs),
    /// Show the effective settings and where each comes from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = "Example:\n  pouch completions bash > /etc/bash_completion.d/pouch")]
    Completions(CompletionsArgs),
    /// Write man pages: pouch.1 and one per subcommand (pouch-pack.1, ...).
    #[command(after_help = "Example:\n  pouch man --out /usr/local/share/man/man1")]
    Man(ManArgs),
    /// Run the story on built-in sample data: two agencies, receipts, a replay, a gap, a delta, an audit.
    #[command(after_help = "Example:\n  pouch demo /tmp/pouch-demo")]
    Demo(DemoArgs),
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
    /// Rotate a party's signing key: the new key counts from --valid-from,
    /// the old one stays for what it signed before.
    #[command(
        after_help = "Example:\n  pouch keyring rotate fedpol-ic --sign-pub fedpol-2027.minisign.pub --valid-from 2027-01-01"
    )]
    Rotate {
        /// The party's name.
        name: String,
        /// Its new minisign public key (.pub file or RW... key).
        #[arg(long, value_name = "FILE")]
        sign_pub: String,
        /// From when the new key signs: a date (2027-01-01) or an RFC 3339 UTC time (default: now).
        #[arg(long, value_name = "TIME")]
        valid_from: Option<String>,
    },
    /// Revoke a signing key (lost or stolen): nothing it signed is accepted any more.
    #[command(
        after_help = "Example:\n  pouch keyring revoke fedpol-ic --reason \"laptop stolen 2026-12-03\""
    )]
    Revoke {
        /// The party's name.
        name: String,
        /// The key to revoke (default: the party's current signing key).
        #[arg(long, value_name = "FILE")]
        sign_pub: Option<String>,
        /// Why, for the record.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Remove a party, or only some of its keys.
    #[command(
        after_help = "Examples:\n  pouch keyring remove old-desk\n  pouch keyring remove fedpol-ic --recipient age1..."
    )]
    Remove {
        /// The party's name.
        name: String,
        /// Remove only this recipient of the party; repeatable.
        #[arg(long = "recipient", value_name = "RECIPIENT")]
        recipients: Vec<String>,
        /// Remove only this signing key (current or previous) of the party; repeatable.
        #[arg(long = "sign-pub", value_name = "FILE")]
        sign_pubs: Vec<String>,
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
    /// Check the hash chain: names the first edited, removed, reordered or inserted record;
    /// with --trust, also that the ledger's owner signed it.
    #[command(
        after_help = "Examples:\n  pouch ledger verify --ledger copy-of-ledger.jsonl\n  pouch ledger verify --ledger their-ledger.jsonl --trust owner.minisign.pub"
    )]
    Verify {
        /// The owner's public key (.pub file or RW… key): check the ledger's
        /// signature (LEDGER.minisig) too; repeatable.
        #[arg(long, value_name = "OWNER_PUB")]
        trust: Vec<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign the ledger as it stands with the owner's key (pack -s does after each bundle).
    #[command(after_help = "Example:\n  pouch ledger sign -s clerk.minisign.key")]
    Sign {
        /// The owner's key.
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Missing sequence numbers per channel (accepted here, or packed here); exit 1 when any.
    #[command(after_help = "Example:\n  pouch ledger gaps")]
    Gaps {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a cut-off last record aside and settle what interrupted commands left open.
    #[command(after_help = "Example:\n  pouch ledger repair")]
    Repair {
        /// Record as abandoned the interrupted commands whose folder cannot be reached
        /// (a medium gone for good).
        #[arg(long)]
        abandon_unreachable: bool,
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
    /// Write the signed receipt of a bundle this ledger accepted or rejected (when unpack did not), or reject one.
    #[command(
        after_help = "Examples:\n  pouch receipt make /media/stick/B.toml -s fedpol.minisign.key -o /media/stick\n  pouch receipt make /media/stick/B.toml -s fedpol.minisign.key -o /media/stick --reject \"marked SECRET, not covered by the agreement\""
    )]
    Make {
        /// The bundle's manifest (NAME.toml).
        manifest: PathBuf,
        /// Folder to write NAME.receipt.toml into.
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out_dir: PathBuf,
        /// The recipient's key: it signs the receipt.
        #[command(flatten)]
        key: KeyArgs,
        /// More trusted signer keys for the bundle, besides the keyring's.
        #[arg(long, value_name = "SIGNER_PUB")]
        trust: Vec<String>,
        /// Refuse the bundle, for this reason: records the rejection in the
        /// ledger and writes a receipt that says so.
        #[arg(long, value_name = "REASON")]
        reject: Option<String>,
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
    pub fn split(&self) -> Result<Option<u64>> {
        match (&self.split, &self.media) {
            (Some(size), _) => pouch::disk::media::parse_size(size).map(Some),
            (None, Some(preset)) => pouch::disk::media::preset(preset),
            (None, None) => Ok(None),
        }
    }

    pub fn given(&self) -> bool {
        self.split.is_some() || self.media.is_some()
    }

    pub fn verify_after_write(&self) -> Option<bool> {
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
            Command::Verify(VerifyArgs { json: true, .. })
                | Command::Unpack(UnpackArgs { json: true, .. })
                | Command::Inspect(InspectArgs { json: true, .. })
                | Command::Audit(AuditArgs { json: true, .. })
                | Command::Config(ConfigCommand::Show { json: true })
                | Command::Keyring(KeyringCommand::List { json: true })
                | Command::Ledger(LedgerCommand::Show { json: true, .. })
                | Command::Ledger(LedgerCommand::Verify { json: true, .. })
                | Command::Ledger(LedgerCommand::Gaps { json: true })
        )
    }
}

/// The flags of `pouch keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Base name of the four key files.
    #[arg(long)]
    pub name: String,
    /// Folder to write them to.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Leave the signing key unencrypted.
    #[arg(long, conflicts_with = "passphrase_file")]
    pub no_passphrase: bool,
    /// Read the signing key's passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Make a post-quantum age key (ML-KEM-768 + X25519: AGE-SECRET-KEY-PQ-1…, age1pq1…).
    #[arg(long)]
    pub pq: bool,
}

/// The flags of `pouch pack`.
#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// Files and folders to pack (or `sources` in the --spec).
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Folder to write the bundle to (default: the spec's or config's out_dir).
    #[arg(short = 'o', long = "out", value_name = "OUTDIR")]
    pub out_dir: Option<PathBuf>,
    /// A pack spec: sources, globs, recipients, channel, marking, media... (flags override it).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Check everything a pack checks and say what it would do (files, room, recipients, channel and sequence number), writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A recipient (age1… or post-quantum age1pq1…); repeatable.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// A file of recipients, one per line; repeatable.
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
    /// The clerk's minisign secret key (default: the config's signing_key).
    #[arg(short = 's', long = "signing-key", value_name = "KEY")]
    pub signing_key: Option<PathBuf>,
    /// Read the signing key's passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Bundle name (default: date, time and part of the bundle id).
    #[arg(long)]
    pub name: Option<String>,
    /// Sending party.
    #[arg(long = "from", value_name = "SENDER")]
    pub sender: Option<String>,
    /// Receiving party.
    #[arg(long = "to", value_name = "RECEIVER")]
    pub receiver: Option<String>,
    /// Security marking, e.g. RESTRICTED.
    #[arg(long)]
    pub marking: Option<String>,
    /// Free-text description.
    #[arg(long)]
    pub description: Option<String>,
    /// zstd compression level, 1 (fastest) to 19 (smallest); default 3.
    #[arg(long)]
    pub level: Option<i32>,
    /// Also write PAR2 recovery files of PCT of the payload (e.g. 10%), which
    /// stock par2 can repair damaged or lost parts from.
    #[arg(long, value_name = "PCT")]
    pub parity: Option<String>,
    /// Keep file names out of the outer manifest (only counts and a digest remain).
    #[arg(long)]
    pub seal_names: bool,
    /// Pack a delta on BASE (an earlier bundle of the channel: its manifest
    /// file or bundle id): only new and changed files, and the deleted paths.
    #[arg(long, value_name = "BASE", conflicts_with = "delta")]
    pub delta_from: Option<String>,
    /// Pack a delta on the channel's newest bundle whose receipt came back.
    #[arg(long)]
    pub delta: bool,
    /// With --delta or --delta-from: hash every file to find what changed,
    /// instead of trusting unchanged size, times and inode.
    #[arg(long)]
    pub rehash: bool,
    /// Skip symlinks, FIFOs, sockets and devices (with a warning) instead of refusing.
    #[arg(long)]
    pub skip_special: bool,
    #[command(flatten)]
    pub media: MediaArgs,
    /// Pack names that Windows or FAT/exFAT cannot hold (reserved names, <>:"|?*\, trailing dot or space).
    #[arg(long)]
    pub allow_unportable_names: bool,
    /// Pack even when OUTDIR might not have the room (the check takes the files as incompressible).
    #[arg(long)]
    pub no_space_check: bool,
    /// Refuse to seal unless every recipient is post-quantum (age1pq1…).
    #[arg(long)]
    pub require_pq: bool,
}

/// The flags of `pouch verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The bundle's manifest (NAME.toml).
    pub manifest: PathBuf,
    /// A trusted signer's public key (.pub file or RW… key); repeatable.
    #[arg(long, value_name = "SIGNER_PUB")]
    pub trust: Vec<String>,
    /// An identity file; decrypts and checks every entry too. Repeatable.
    #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
    pub identities: Vec<PathBuf>,
    /// Proceed without a trusted signature. Unsafe.
    #[arg(long)]
    pub insecure_skip_signature: bool,
    /// Record the outcome in the ledger (verified or rejected).
    #[arg(long)]
    pub record: bool,
    #[command(flatten)]
    pub parts: PartsArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The flags of `pouch repair`.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// The bundle's manifest (NAME.toml); it is never rewritten.
    pub manifest: PathBuf,
    /// A trusted signer's public key (.pub file or RW… key); repeatable. A
    /// repair always needs a trusted signature: the PAR2 files are believed
    /// only as far as the signed manifest vouches for them.
    #[arg(long, value_name = "SIGNER_PUB")]
    pub trust: Vec<String>,
    /// Write the repaired files to DIR (default: the manifest's folder).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub parts: PartsArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The flags of `pouch unpack`.
#[derive(Debug, clap::Args)]
pub struct UnpackArgs {
    /// The bundle's manifest (NAME.toml).
    pub manifest: PathBuf,
    /// An identity file; repeatable.
    #[arg(
        short = 'i',
        long = "identity",
        value_name = "IDENTITY",
        required = true
    )]
    pub identities: Vec<PathBuf>,
    /// A trusted signer's public key (.pub file or RW… key); repeatable.
    #[arg(long, value_name = "SIGNER_PUB")]
    pub trust: Vec<String>,
    /// Destination folder; the bundle lands in DEST/NAME.
    #[arg(
        short = 'd',
        long = "dest",
        value_name = "DEST",
        required_unless_present = "onto"
    )]
    pub dest: Option<PathBuf>,
    /// Apply a delta bundle onto TREE, the folder its base was unpacked to
    /// (the base's DEST/NAME): TREE is checked, then replaced by the new
    /// tree in one step.
    #[arg(long, value_name = "TREE", conflicts_with = "dest")]
    pub onto: Option<PathBuf>,
    /// With --onto: hash every file of TREE to check it, not only those whose
    /// size, times or inode changed.
    #[arg(long, requires = "onto")]
    pub rehash: bool,
    /// Proceed without a trusted signature. Unsafe.
    #[arg(long)]
    pub insecure_skip_signature: bool,
    /// Accept a bundle this ledger has accepted before.
    #[arg(long)]
    pub allow_replay: bool,
    /// Unpack onto removable media, such as the courier's stick (refused by default).
    #[arg(long)]
    pub allow_removable_dest: bool,
    /// Unpack even when DEST seems to lack the room for every file.
    #[arg(long)]
    pub no_space_check: bool,
    /// Write a signed receipt NAME.receipt.toml into DIR (needs -s).
    #[arg(long, value_name = "DIR", requires = "signing_key")]
    pub receipt_out: Option<PathBuf>,
    /// The recipient's minisign secret key, to sign the receipt.
    #[arg(short = 's', long = "signing-key", value_name = "KEY")]
    pub signing_key: Option<PathBuf>,
    /// Read the signing key's passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE", requires = "signing_key")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub parts: PartsArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The flags of `pouch audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Folders (or files) to search.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// More trusted signer keys, besides the keyring's.
    #[arg(long, value_name = "SIGNER_PUB")]
    pub trust: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Fail every bundle that is not sealed to post-quantum recipients only.
    #[arg(long)]
    pub require_pq: bool,
    /// Also write the report as one self-contained HTML file (no script,
    /// font or network), with each channel's series as a picture.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// The flags of `pouch inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The bundle's manifest (NAME.toml).
    pub manifest: PathBuf,
    /// A trusted signer's public key; when given, the signature is checked.
    #[arg(long, value_name = "SIGNER_PUB")]
    pub trust: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The flags of `pouch resplit`.
#[derive(Debug, clap::Args)]
pub struct ResplitArgs {
    /// The bundle's manifest (NAME.toml).
    pub manifest: PathBuf,
    /// Folder for the re-cut bundle (not the one holding it now).
    #[arg(short = 'o', long = "out", value_name = "OUTDIR")]
    pub out_dir: PathBuf,
    /// The clerk's key: the manifest is signed again.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Signer keys trusted for the existing bundle (default: the -s key's own public key).
    #[arg(long, value_name = "SIGNER_PUB")]
    pub trust: Vec<String>,
    #[command(flatten)]
    pub parts: PartsArgs,
    #[command(flatten)]
    pub media: MediaArgs,
    /// Also write PAR2 recovery files of PCT of the payload (e.g. 10%) over
    /// the new parts, listed in the signed parts list.
    #[arg(long, value_name = "PCT")]
    pub parity: Option<String>,
}

/// Where else the bundle's parts may be.
#[derive(Debug, clap::Args)]
pub struct PartsArgs {
    /// Also look for payload parts in DIR (repeatable), e.g. one folder per disc.
    #[arg(long = "parts-from", value_name = "DIR")]
    pub parts_from: Vec<PathBuf>,
}

/// A minisign secret key that a command signs with, and its passphrase.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// Your minisign secret key, to sign what this command writes (default: signing_key in the config).
    #[arg(short = 's', long = "signing-key", value_name = "KEY")]
    pub signing_key: Option<PathBuf>,
    /// Read the signing key's passphrase from the first line of FILE (default: passphrase_file in the config).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key's file: `-s`, else the config's `signing_key`.
    pub fn path(&self, config: &pouch::settings::config::Config) -> Result<PathBuf> {
        self.signing_key
            .clone()
            .or_else(|| config.signing_key.clone())
            .ok_or_else(|| {
                pouch::error::Error::Usage(
                    "no signing key: pass -s KEY (or set signing_key in the config)".into(),
                )
            })
    }

    /// Loads the key (`-s`, else the config's), asking for its passphrase
    /// when it has one.
    pub fn load(
        &self,
        config: &pouch::settings::config::Config,
    ) -> Result<pouch::signature::SigningKey> {
        let passphrase = self
            .passphrase_file
            .clone()
            .or_else(|| config.passphrase_file.clone());
        super::keys::load_signing_key(&self.path(config)?, passphrase.as_deref())
    }
}

/// The flags of `pouch completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// The flags of `pouch man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Folder to write them to (default: print pouch.1 to stdout).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The flags of `pouch demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder to work in (default: a new temporary folder, kept for you to look at).
    pub dir: Option<PathBuf>,
}
