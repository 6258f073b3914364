//! `pouch completions`: print a shell completion script.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(args: CompletionsArgs) -> Result<u8> {
    let CompletionsArgs { shell } = args;
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pouch", &mut buf);
    render::out(String::from_utf8_lossy(&buf).trim_end());
    Ok(0)
}
