//! The command line: its grammar ([`args`]), one module per command
//! (`cmd/`), and how reports and progress are shown ([`render`], [`bar`]).
//! The library decides; this only parses flags and renders reports.

pub mod args;
pub mod bar;
mod cmd;
pub mod demo;
mod keys;
pub mod render;
pub mod render_custody;
pub mod render_html;

use std::path::PathBuf;

use pouch::custody::keyring::{self, Keyring};
use pouch::error::Result;
use pouch::settings::config::{self, Config};

pub use args::{Cli, Command};

/// What every command may need: the config and where the keyring and the
/// ledger are.
pub struct Ctx {
    /// The config, loaded once.
    pub config: Config,
    /// Where it was looked for.
    pub config_path: PathBuf,
    /// `--keyring`, else the config's.
    pub keyring: Chosen,
    /// `--ledger`, else the config's.
    pub ledger: Chosen,
    /// Every `--ledger` given (audit reconciles several).
    pub ledgers: Vec<PathBuf>,
    /// Progress reporting (silent with `-q`).
    pub progress: pouch::progress::Handle,
}

/// A path chosen by a flag, else by the config, else (`None`) the home's.
pub struct Chosen {
    /// The path, when a flag or the config named one.
    pub path: Option<PathBuf>,
    /// Whether the flag named it.
    pub by_flag: bool,
}

impl Chosen {
    fn new(flag: Option<PathBuf>, config: Option<PathBuf>) -> Chosen {
        Chosen {
            by_flag: flag.is_some(),
            path: flag.or(config),
        }
    }
}

impl Ctx {
    /// The ledger in use.
    pub fn ledger_path(&self) -> Result<PathBuf> {
        pouch::settings::home::ledger_path(self.ledger.path.as_ref())
    }

    /// The keyring in use.
    pub fn keyring(&self) -> Result<Keyring> {
        keyring::open(self.keyring.path.as_ref()).map(|(k, _)| k)
    }
}

/// Runs a parsed command; returns the exit code on success paths.
pub fn run(cli: Cli) -> Result<u8> {
    // Without a home (no POUCH_HOME, no HOME) there is no config: commands
    // that need the keyring or the ledger say so themselves.
    let config_path =
        config::config_path().unwrap_or_else(|_| PathBuf::from("(no home: set POUCH_HOME)"));
    let config = if config_path.is_absolute() || config_path.exists() {
        Config::load(&config_path)?
    } else {
        Config::default()
    };
    if cli.ledger.len() > 1 && !matches!(cli.command, Command::Audit(_)) {
        return Err(pouch::error::Error::Usage(
            "--ledger is given more than once: only audit takes several ledgers".into(),
        ));
    }
    let ctx = Ctx {
        keyring: Chosen::new(cli.keyring, config.keyring.clone()),
        ledger: Chosen::new(cli.ledger.first().cloned(), config.ledger.clone()),
        ledgers: cli.ledger,
        progress: bar::handle(cli.quiet),
        config,
        config_path,
    };
    render::set_quiet(cli.quiet);
    match cli.command {
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Pack(a) => cmd::pack::run(&ctx, a),
        Command::Verify(a) => cmd::verify::run(&ctx, a),
        Command::Unpack(a) => cmd::unpack::run(&ctx, a),
        Command::Inspect(a) => cmd::inspect::run(&ctx, a),
        Command::Resplit(a) => cmd::resplit::run(&ctx, a),
        Command::Repair(a) => cmd::repair::run(&ctx, a),
        Command::Keyring(c) => cmd::keyring::run(&ctx, c),
        Command::Ledger(c) => cmd::ledger::run(&ctx, c),
        Command::Receipt(c) => cmd::receipt::run(&ctx, c),
        Command::Audit(a) => cmd::audit::run(&ctx, a),
        Command::Config(c) => cmd::config::run(&ctx, c),
        Command::Completions(a) => cmd::completions::run(a),
        Command::Man(a) => cmd::man::run(a),
        Command::Demo(a) => demo::run(a.dir),
    }
}
