//! `pouch config show`: every setting, its value, and where it came from.

use pouch::settings::{home, resolve};

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> Result<u8> {
    let ConfigCommand::Show { json } = cmd;
    let rows = resolve::config_rows(&resolve::Sources {
        config: &ctx.config,
        config_path: &ctx.config_path,
        home: home::home()?,
        home_from_env: std::env::var_os("POUCH_HOME").is_some(),
        keyring: (
            home::keyring_path(ctx.keyring.path.as_ref())?,
            ctx.keyring.by_flag,
        ),
        ledger: (ctx.ledger_path()?, ctx.ledger.by_flag),
    });
    let rows: Vec<(&str, Option<String>, String)> = rows
        .into_iter()
        .map(|r| (r.name, r.value, r.origin))
        .collect();
    render::config(&rows, json);
    Ok(0)
}
