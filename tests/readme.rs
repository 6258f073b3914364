//! The README's walk-through, run as written: every ` ```sh ` block of its
//! "Walk-through" section, in order, in one `bash`, with the binary under
//! test as `pouch` on PATH. So a README step that pouch does not do (a file
//! no earlier step made, a flag that does not exist, a refusal that is not
//! one) fails here, and the walk-through cannot drift from the program.
//!
//! The sandbox: a new temporary folder is both the working folder and
//! `HOME` (the walk-through's `~/ma-dgsn`, `~/be-fedpol`, `~/auditor`), and
//! the literal `/media/stick` is rewritten to a folder in it, the stick
//! every machine of the story sees. Every command must exit 0, unless its
//! comment says `exit N`: then it must exit N.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The medium the README's clerks write to and recipients read from.
const STICK: &str = "/media/stick";

/// One command of a README block: the text `bash` runs, where it starts in
/// the README (1-based line) and the exit code its comment promises.
#[derive(Debug, PartialEq)]
struct Step {
    line: usize,
    command: String,
    exit: i32,
}

/// The lines of README section `## TITLE`, up to the next `## ` heading, with
/// their line numbers in the README.
fn section<'a>(readme: &'a str, title: &str) -> Vec<(usize, &'a str)> {
    let heading = format!("## {title}");
    let mut lines = readme.lines().enumerate().map(|(i, l)| (i + 1, l));
    lines
        .by_ref()
        .find(|(_, l)| *l == heading)
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    lines.take_while(|(_, l)| !l.starts_with("## ")).collect()
}

/// The steps of every ` ```sh ` block in `lines`, in order. A fence that
/// looks like a shell block under another name (` ```bash `, ` ```console `,
/// a bare ` ``` `…) is refused, so that no walk-through step silently goes
/// unrun: a block is either `sh` (runs) or `text`/`toml`/`json` (shown only).
fn steps(lines: &[(usize, &str)]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut fence: Option<&str> = None;
    let mut pending: Option<(usize, String)> = None;
    for &(n, line) in lines {
        if let Some(info) = line.strip_prefix("```") {
            match fence {
                None => {
                    let info = info.trim();
                    assert!(
                        ["sh", "text", "toml", "json"].contains(&info),
                        "README line {n}: a walk-through block is ```sh (run by tests/readme.rs) \
                         or ```text, ```toml, ```json (shown only), not ```{info}"
                    );
                    fence = Some(if info == "sh" { "sh" } else { "shown" });
                }
                Some(_) => {
                    assert!(
                        pending.is_none(),
                        "README line {n}: block ends after a `\\`"
                    );
                    fence = None;
                }
            }
            continue;
        }
        if fence != Some("sh") {
            continue;
        }
        let (start, mut command) = pending.take().unwrap_or((n, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                command.push_str(head);
                pending = Some((start, command));
            }
            None => {
                command.push_str(line);
                let code = code_of(&command);
                if !code.trim().is_empty() {
                    steps.push(Step {
                        line: start,
                        exit: expected_exit(&command, start),
                        command,
                    });
                }
            }
        }
    }
    assert!(
        fence.is_none(),
        "README: a walk-through block is never closed"
    );
    steps
}

/// `command` without its trailing comment (a `#` after white space, outside
/// quotes).
fn code_of(command: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in command.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return &command[..i],
            _ => {}
        }
        previous = c;
    }
    command
}

/// The exit code a command's comment promises (`… exit N …`), else 0.
fn expected_exit(command: &str, line: usize) -> i32 {
    let comment = &command[code_of(command).len()..];
    let mut words = comment.split(|c: char| !c.is_ascii_alphanumeric());
    while let Some(word) = words.next() {
        if word == "exit" {
            let code = words.next().unwrap_or_default();
            return code.parse().unwrap_or_else(|_| {
                panic!("README line {line}: `exit` is not followed by a code")
            });
        }
    }
    0
}

/// The bash script that runs `steps` in order and stops at the first whose
/// exit code is not the promised one, saying which (`README-STEP i rc`).
fn script(steps: &[Step], stick: &Path, pouch: &Path) -> String {
    let mut s = String::from("set -u -o pipefail\n");
    s.push_str(&format!(
        "[ \"$(command -v pouch)\" = '{}' ] || {{ echo 'README-STEP pouch-not-on-path' >&2; exit 101; }}\n",
        pouch.display()
    ));
    for (i, step) in steps.iter().enumerate() {
        let command = step.command.replace(STICK, &stick.display().to_string());
        s.push_str(&format!(
            "{command}\nrc=$?; [ $rc -eq {} ] || {{ echo \"README-STEP {i} $rc\" >&2; exit 100; }}\n",
            step.exit
        ));
    }
    s.push_str("echo README-DONE\n");
    s
}

/// A fresh folder for the story, kept only when the test fails.
fn sandbox() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pouch-readme-")
        .tempdir()
        .expect("temporary folder")
}

#[test]
fn every_walk_through_block_runs_as_written() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let steps = steps(&section(&readme, "Walk-through"));
    assert!(
        steps.len() >= 40,
        "the walk-through has only {} commands: is the section or the fence gone?",
        steps.len()
    );
    let promised_failures = steps.iter().filter(|s| s.exit != 0).count();
    assert!(
        promised_failures >= 2,
        "the replay and the gap must be shown failing"
    );

    let dir = sandbox();
    let stick = dir.path().join("media-stick");
    fs::create_dir(&stick).expect("the stick");
    let pouch = PathBuf::from(env!("CARGO_BIN_EXE_pouch"));
    let bin = pouch.parent().expect("the binary's folder");
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let out = Command::new("bash")
        .args([
            "--noprofile",
            "--norc",
            "-c",
            &script(&steps, &stick, &pouch),
        ])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("PATH", path)
        .env_remove("POUCH_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(failed) = stderr.lines().find_map(|l| l.strip_prefix("README-STEP ")) {
        let mut words = failed.split(' ');
        let which = words.next().and_then(|i| i.parse::<usize>().ok());
        let (line, command, promised) = match which.map(|i| &steps[i]) {
            Some(s) => (s.line, s.command.as_str(), s.exit),
            None => (0, "pouch on PATH is the binary under test", 0),
        };
        let rc = words.next().unwrap_or("?");
        let kept = dir.keep();
        panic!(
            "README line {line}: `{command}`\nexited {rc}, the README promises {promised}\n\
             (the story so far is kept in {})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            kept.display()
        );
    }
    assert!(
        out.status.success() && stdout.ends_with("README-DONE\n"),
        "the walk-through did not run to its end: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );

    // What the story says happened is there: the first bundle unpacked at
    // BE-FEDPOL, its receipt on the stick, the replay and the gap refused and
    // reported in the receiver's ledger, all three bundles delivered.
    let home = dir.path();
    assert!(home
        .join("be-fedpol/inbox/MA-BE-001/case-2026-0142/request.txt")
        .is_file());
    assert!(stick.join("MA-BE-001.receipt.toml.minisig").is_file());
    let receiver = fs::read_to_string(home.join("be-fedpol/pouch/ledger.jsonl")).expect("ledger");
    assert!(receiver.contains("\"event\":\"rejected\"") && receiver.contains("replay"));
    assert!(receiver.contains("missing sequence numbers: [2]"));
    let sender = fs::read_to_string(home.join("ma-dgsn/pouch/ledger.jsonl")).expect("ledger");
    assert_eq!(
        sender.matches("\"event\":\"receipt\"").count(),
        3,
        "{sender}"
    );
    assert!(
        !home.join("auditor/keys").exists(),
        "the auditor holds no key"
    );
}

#[test]
fn blocks_are_split_into_commands_with_their_promised_exit_codes() {
    let readme = "## Walk-through\n\
                  ```sh\n\
                  # a comment line\n\
                  pouch pack a \\\n    -o b   # packs\n\
                  \n\
                  echo 'not # a comment' # exit 3: refused\n\
                  ```\n\
                  ```text\n\
                  pouch not-run\n\
                  ```\n\
                  ## Next\n\
                  ```sh\n\
                  pouch elsewhere\n\
                  ```\n";
    let got = steps(&section(readme, "Walk-through"));
    let want = vec![
        Step {
            line: 4,
            command: "pouch pack a     -o b   # packs".into(),
            exit: 0,
        },
        Step {
            line: 7,
            command: "echo 'not # a comment' # exit 3: refused".into(),
            exit: 3,
        },
    ];
    assert_eq!(got, want);
}

#[test]
#[should_panic(expected = "not ```console")]
fn a_shell_block_under_another_fence_is_refused() {
    steps(&section(
        "## Walk-through\n```console\n$ pouch demo\n```\n",
        "Walk-through",
    ));
}

/// The Debian packages `tests/run` installs (its `packages=(…)` line).
fn installed_by_tests_run(script: &str) -> Vec<String> {
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("packages=("))
        .expect("tests/run lists its packages as packages=(…)");
    line.trim_end_matches(')')
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The Debian package of every call of `require` with a tool and a package
/// in `source` (or a tool alone, whose package is named after it).
fn required_packages(source: &str) -> Vec<String> {
    let mut packages = Vec::new();
    for call in source.split("require(\"").skip(1) {
        let args: Vec<&str> = call
            .split(')')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(|a| a.trim().trim_matches('"'))
            .collect();
        let package = match args.as_slice() {
            [_, package] if !package.contains(' ') => *package,
            ["age-keygen"] => "age",
            [tool] => *tool,
            _ => continue,
        };
        packages.push(package.to_string());
    }
    packages
}

#[test]
fn the_readmes_test_command_installs_every_tool_a_test_requires() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |rel: &str| fs::read_to_string(root.join(rel)).expect(rel);
    let (readme, script, ci) = (read("README.md"), read("tests/run"), read(".ci/run"));
    assert!(
        readme.contains("\nbash tests/run  "),
        "the README's test command"
    );
    assert!(
        ci.lines().any(|l| l == "bash tests/run"),
        ".ci/run calls it"
    );
    assert!(
        script.contains("apt-get install") && script.contains("dpkg-query"),
        "tests/run installs what is missing with apt-get"
    );
    let installed = installed_by_tests_run(&script);
    // Node.js and npm are installed by their commands' absence, bash is
    // essential; a test of `require` itself names a tool that cannot exist.
    let besides = ["nodejs", "npm", "bash", "no-such-tool"];
    let mut missing = Vec::new();
    let mut sources: Vec<PathBuf> = Vec::new();
    for dir in ["tests", "tests/common"] {
        for entry in fs::read_dir(root.join(dir)).expect(dir) {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                sources.push(path);
            }
        }
    }
    for path in &sources {
        let source = fs::read_to_string(path).expect("test source");
        for package in required_packages(&source) {
            if !installed.contains(&package) && !besides.contains(&package.as_str()) {
                missing.push(format!("{}: {package}", path.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "tests require Debian packages that tests/run does not install: {missing:?}"
    );
    assert!(
        sources.len() > 10 && installed.contains(&"age".to_string()),
        "the scan saw the tests and the package list"
    );
}
