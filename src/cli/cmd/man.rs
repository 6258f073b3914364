//! `pouch man`: write or print the man pages.

use std::path::Path;

use super::*;

/// Runs the command; returns its exit code.
pub fn run(args: ManArgs) -> Result<u8> {
    let ManArgs { out } = args;
    let cmd = <Cli as clap::CommandFactory>::command();
    match out {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .map_err(|e| Error::io("writing to", "stdout", e))?;
            buf.extend_from_slice(SECTIONS.as_bytes());
            render::out(String::from_utf8_lossy(&buf).trim_end());
        }
        Some(dir) => {
            let written = write_man_pages(cmd, &dir)?;
            render::note(&format!("wrote {written} man pages to {}", dir.display()));
        }
    }
    Ok(0)
}

/// The sections every page ends with, in roff: what the exit codes mean,
/// the environment pouch reads, and the files it keeps.
const SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
0
Success.
.TP
1
The bundle failed a check: a bad or untrusted signature, a damaged or missing payload or part, a replay, a broken ledger, an audit with failures. Do not trust the bundle; the message says what failed.
.TP
2
Usage, configuration or I/O: wrong flags, a key that cannot be read, a folder to create first, a file that would be overwritten, not enough room. Nothing was done.
.TP
130
Interrupted (Ctrl\-C); nothing was left half\-written.
.SH ENVIRONMENT
.TP
POUCH_HOME
The folder of pouch's own files (default: $XDG_CONFIG_HOME/pouch, else ~/.config/pouch).
.TP
XDG_CONFIG_HOME, HOME
Where POUCH_HOME is when it is not set.
.TP
SOURCE_DATE_EPOCH
The time pack records instead of now, for reproducible bundles.
.TP
POUCH_ZSTD_WORKERS
zstd worker threads for pack besides its compressing thread (default: one per core beyond two, at most four).
.SH FILES
.TP
$POUCH_HOME/config.toml
Settings: sender, signing_key, out_dir, media, marking, require_pq, ...
.TP
$POUCH_HOME/keyring.toml
The named parties: their signing keys (current, previous and revoked) and recipients.
.TP
$POUCH_HOME/ledger.jsonl, ledger.jsonl.minisig
The hash\-chained ledger of bundles packed, accepted, rejected, receipted and refused, and its owner's signature.
.TP
NAME.toml, NAME.toml.minisig, NAME.age or NAME.age.001 ...
A bundle: its manifest, the manifest's signature, and the payload or its parts; NAME.parts.toml (and .minisig) after a re\-cut.
.TP
NAME.receipt.toml, NAME.receipt.toml.minisig
A recipient's signed receipt, or rejection, of bundle NAME.
"#;

/// Writes pouch.1 and a page per subcommand (and sub-subcommand) into `dir`.
fn write_man_pages(cmd: clap::Command, dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let mut count = 0;
    let mut stack = vec![(cmd.get_name().to_string(), cmd)];
    while let Some((name, cmd)) = stack.pop() {
        let mut buf = Vec::new();
        let page = clap_mangen::Man::new(cmd.clone().name(name.clone()));
        page.render(&mut buf)
            .map_err(|e| Error::io("writing to", dir, e))?;
        buf.extend_from_slice(SECTIONS.as_bytes());
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, buf).map_err(|e| Error::io("writing", &path, e))?;
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
