//! `pouch demo` tells the story pouch is for, and its "without pouch"
//! recipe works: run here, line by line, with Debian's stock `age`, `zstd`,
//! `tar` and `minisign`.
#![allow(clippy::expect_used, clippy::panic)] // tests fail by panicking

#[macro_use]
mod common;

use std::process::Command;

use common::{assert_same_tree, describe, passes, require, run, stdout_of, World};

/// Words the demo's output must never hold: the placeholders of help texts.
const PLACEHOLDERS: [&str; 8] = [
    "NAME", "KEY", "FILE", "DIR", "DEST", "SIGNER", "PARTY", "IDENTITY",
];

#[test]
fn demo_tells_the_channel_story_and_its_stock_tool_recipe_runs() {
    for (tool, package) in [
        ("age", "age"),
        ("zstd", "zstd"),
        ("tar", "tar"),
        ("minisign", "minisign"),
        ("sha256sum", "coreutils"),
    ] {
        require(tool, package);
    }
    let w = World::new();
    let dir = w.join("demo");
    let out = passes(
        pouch!("demo", &dir),
        &[
            // Two parties, each with its own home.
            "$ export POUCH_HOME=$PWD/ma-dgsn/pouch",
            "$ export POUCH_HOME=$PWD/be-fedpol/pouch",
            // A FAT-sized split, small enough for the sample.
            "--split 4K stands in for --media fat32",
            "MA-BE-001.age.001  MA-BE-001.age.002",
            "be-fedpol/inbox/MA-BE-001 identical to the source: yes",
            // The replay refused.
            "error: replay: MA-BE-001",
            "refused, exit code 1, as it must be",
            // The receipt carried back and imported.
            "MA-BE-001: delivered; receipt signed by BE-FEDPOL",
            // The gap named, then filled.
            "warning: gap in the channel: sequence numbers [2] have not arrived",
            "MA-DGSN:BE-FEDPOL: missing [2]",
            "MA-DGSN:BE-FEDPOL: no gaps",
            // A delta on bundle 1, applied onto the tree bundle 1 made.
            "a delta on bundle",
            "1 file new or changed, 1 path deleted",
            "--onto be-fedpol/inbox/MA-BE-001",
            "be-fedpol/inbox/MA-BE-001 identical to the changed source: yes",
            "(bundle MA-BE-001)",
            // Both ledgers audited by a party with no decryption key.
            "$ export POUCH_HOME=$PWD/auditor/pouch",
            "ledger ma-dgsn/pouch/ledger.jsonl: OK",
            "ledger be-fedpol/pouch/ledger.jsonl: OK",
            "reconciled MA-DGSN:BE-FEDPOL",
            "report written: audit.html",
            "channel MA-DGSN:BE-FEDPOL: sequences [1, 2, 3, 4], no gaps",
            "summary: 4 bundles, 4 receipts, 0 failed",
            "error: payload tampered/MA-BE-003.age: sha256 mismatch",
        ],
    )
    .get_output()
    .clone();
    let text = stdout_of(&out);
    for word in text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
        assert!(
            !PLACEHOLDERS.contains(&word),
            "the demo shows a placeholder, {word}:\n{text}"
        );
    }
    assert!(dir.join("ma-dgsn/pouch/ledger.jsonl").is_file());
    assert!(dir.join("be-fedpol/pouch/ledger.jsonl").is_file());
    assert!(
        !dir.join("auditor/keys").exists(),
        "the auditor holds no key"
    );

    // The recipe: every `$ ` line after "Without pouch", run as shown.
    let recipe: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("Without pouch"))
        .skip_while(|l| !l.starts_with("Recovered and checked with Debian's stock"))
        .filter_map(|l| l.strip_prefix("$ "))
        .collect();
    let joined = recipe.join("\n");
    for tool in ["age -d", "zstd -d", "tar -x", "minisign -V", "sha256sum"] {
        assert!(
            joined.contains(tool),
            "the recipe has no `{tool}`:\n{joined}"
        );
    }
    for line in &recipe {
        let mut bash = Command::new("bash");
        bash.args(["-c", &format!("set -eo pipefail; {line}")])
            .current_dir(&dir);
        let done = run(bash);
        assert!(done.status.success(), "{}", describe(line, &done));
    }
    assert_same_tree(
        &dir.join("sample/case-2026-0142"),
        &dir.join("recovered/case-2026-0142"),
    );
}
