//! The `pouch` command: parses arguments, calls the library, renders reports,
//! and maps errors to exit codes (0 success, 1 a bundle failed a check,
//! 2 usage, configuration or I/O error).

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let json = args.command.json();
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            cli::render::error(&e, json);
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
