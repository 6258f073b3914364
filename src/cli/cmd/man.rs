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
            render::out(String::from_utf8_lossy(&buf).trim_end());
        }
        Some(dir) => {
            let written = write_man_pages(cmd, &dir)?;
            render::note(&format!("wrote {written} man pages to {}", dir.display()));
        }
    }
    Ok(0)
}

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
