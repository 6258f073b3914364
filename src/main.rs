//! The `pouch` command: parses arguments, calls the library, renders reports,
//! and maps errors to exit codes (0 success, 1 a bundle failed a check,
//! 2 usage, configuration or I/O error).

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Ctrl-C (or SIGTERM) asks the work to stop: it unwinds like any other
    // failure, removing temporary files and staging folders, and exits 130.
    // A second Ctrl-C while cleaning up ends the process at once.
    let flag = pouch::interrupt::flag();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone());
        let _ = signal_hook::flag::register(signal, flag.clone());
    }
    let args = cli::Cli::parse();
    pouch::notice::set_sink(Box::new(cli::render::warn));
    let json = args.command.json();
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            cli::render::error(&e, json);
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
