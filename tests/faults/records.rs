//! The records are as durable as the files: pouch killed at every write,
//! rename and fsync of pack, unpack, receipt import, keyring add and resplit
//! (strace fault injection), the ledger's disk filled, interruptions during a
//! flush. After each, the ledger and the disk agree, or the next run makes
//! them agree by itself: a sequence number is never given twice, a
//! committed bundle or acceptance is always recorded, nothing is left
//! behind, and a receipt can always be had.

use super::*;

use serde_json::Value;

/// `strace` running `cmd` with `syscall` faulted as `how` (strace's
/// `inject=SYSCALL:HOW`).
fn under_strace(cmd: &Command, syscall: &str, how: &str) -> Command {
    let mut c = Command::new(common::require("strace", "strace"));
    c.args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:{how}"))
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// `cmd` under strace: SIGKILL at the `n`th call of `syscall`.
fn killed_at(cmd: &Command, syscall: &str, n: usize) -> Command {
    under_strace(cmd, syscall, &format!("signal=SIGKILL:when={n}"))
}

/// Runs `cmd` killed at each call of each of `syscalls` in turn, from the
/// first until it runs through; calls `after` with a label after each kill.
/// Returns the number of kills.
fn kill_at_every_call(
    syscalls: &[&str],
    mut cmd: impl FnMut(&str) -> Command,
    mut after: impl FnMut(&str),
) -> usize {
    let mut kills = 0;
    for syscall in syscalls {
        for n in 1..=60 {
            let label = format!("{syscall}{n}");
            let o = run(killed_at(&cmd(&label), syscall, n));
            if o.status.code().is_some() && !o.status.success() && o.status.code() != Some(137) {
                panic!("{label}: failed without being killed: {}", describe(&o));
            }
            let killed = !o.status.success();
            if killed {
                kills += 1;
            }
            after(&label);
            if !killed {
                break;
            }
        }
    }
    kills
}

/// `cmd` with the pouch home `home`.
fn at(home: &Path, mut cmd: Command) -> Command {
    cmd.env("POUCH_HOME", home);
    cmd
}

/// The records of a ledger.
fn records(ledger: &Path) -> Vec<Value> {
    fs::read_to_string(ledger)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

fn with_event<'a>(records: &'a [Value], event: &str) -> impl Iterator<Item = &'a Value> {
    let event = event.to_string();
    records.iter().filter(move |r| r["event"] == event.as_str())
}

#[track_caller]
fn assert_ledger_intact(home: &Path, label: &str) {
    let o = run(at(home, args!(pouch_process(); "ledger", "verify")));
    assert_ok(&o, &format!("{label}: ledger verify"));
}

/// The `.tmp` files and staging folders in `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".tmp") || n.starts_with(".pouch-staging-"))
        .collect()
}

/// A field of a manifest's text (`key = value`), unquoted.
fn manifest_field(text: &str, key: &str) -> Option<String> {
    common::field(text, key)
}

/// A clerk packing a small file into `out` on channel bka -> fedpol.
struct Clerk {
    w: World,
    keys: Keys,
}

impl Clerk {
    fn new() -> Clerk {
        let w = World::new();
        let keys = w.keys("clerk");
        w.write("case/report.txt", "report\n");
        for d in ["clerk-home", "out"] {
            w.dir(d);
        }
        Clerk { w, keys }
    }

    fn home(&self) -> PathBuf {
        self.w.join("clerk-home")
    }

    fn out(&self) -> PathBuf {
        self.w.join("out")
    }

    /// `pouch pack` of the file as bundle `name`.
    fn pack(&self, name: &str) -> Command {
        let src = self.w.join("case/report.txt");
        let mut c = pack_cmd(&[&src], &self.out(), name, &self.keys);
        c.env("POUCH_HOME", self.home());
        args!(c; "--from", "bka", "--to", "fedpol")
    }
}

#[test]
fn pack_killed_anywhere_never_gives_a_sequence_number_twice_nor_loses_a_bundle() {
    let clerk = Clerk::new();
    let (keys, home, out) = (&clerk.keys, &clerk.home(), &clerk.out());
    let pack = |name: &str| clerk.pack(name);
    let ledger = home.join("ledger.jsonl");
    let kills = kill_at_every_call(
        &["write", "fsync", "renameat2", "renameat"],
        |label| pack(&format!("k-{label}")),
        |label| {
            // The next pack settles what the killed one left.
            assert_ok(
                &run(pack(&format!("n-{label}"))),
                &format!("{label}: next pack"),
            );
            assert_ledger_intact(home, label);
            assert_eq!(leftovers(out), Vec::<String>::new(), "{label}: leftovers");
        },
    );
    assert!(kills >= 10, "pack was killed at only {kills} calls");

    let recs = records(&ledger);
    let mut sequences = BTreeSet::new();
    for name in names(out).into_iter().filter(|n| n.ends_with(".toml")) {
        let manifest = out.join(&name);
        let text = fs::read_to_string(&manifest).expect("manifest");
        assert_ok(&verify_ok(&manifest, keys), &format!("{name} verifies"));
        let sha = pouch::payload::hashing::sha256_hex(text.as_bytes());
        assert!(
            with_event(&recs, "packed").any(|r| r["manifest_sha256"] == sha.as_str()),
            "{name} is in OUTDIR but not recorded as packed"
        );
        let seq = manifest_field(&text, "sequence").expect("a sequence");
        assert!(sequences.insert(seq.clone()), "sequence {seq} given twice");
    }
    // Every intent is settled, and every payload file has its manifest.
    let settled: BTreeSet<u64> = recs.iter().filter_map(|r| r["intent"].as_u64()).collect();
    for r in with_event(&recs, "reserved") {
        let i = r["index"].as_u64().expect("index");
        assert!(settled.contains(&i), "intent {i} left open: {r}");
    }
    for name in names(out).into_iter().filter(|n| n.contains(".age")) {
        let bundle = name.split(".age").next().expect("name").to_string();
        assert!(
            out.join(format!("{bundle}.toml")).is_file(),
            "{name} without its manifest"
        );
    }
}

/// A sender (clerk) and a recipient with the clerk in its keyring.
struct Exchange {
    w: World,
    clerk: Keys,
    recipient: Keys,
}

impl Exchange {
    /// The stick, the sender's home and the recipient's.
    fn stick(&self) -> PathBuf {
        self.w.join("stick")
    }

    fn sender(&self) -> PathBuf {
        self.w.join("sender-home")
    }

    fn receiver(&self) -> PathBuf {
        self.w.join("receiver-home")
    }

    fn new() -> Exchange {
        let w = World::new();
        let [clerk, recipient] = ["clerk", "recipient"].map(|n| w.keys(n));
        for d in ["stick", "sender-home", "receiver-home"] {
            w.dir(d);
        }
        let x = Exchange {
            w,
            clerk,
            recipient,
        };
        let add = args!(pouch_process(); "keyring", "add", "bka", "--sign-pub", &x.clerk.public);
        assert_ok(
            &run(at(
                &x.receiver(),
                args!(add; "--ledger", x.receiver().join("ledger.jsonl")),
            )),
            "keyring",
        );
        let add =
            args!(pouch_process(); "keyring", "add", "fedpol", "--sign-pub", &x.recipient.public);
        assert_ok(
            &run(at(
                &x.sender(),
                args!(add; "--recipient", &x.recipient.recipient),
            )),
            "keyring",
        );
        x
    }

    /// Packs bundle `name` on channel bka -> fedpol; returns its manifest.
    fn pack(&self, name: &str) -> PathBuf {
        let src = self.w.write(format!("src/{name}/a.txt"), name);
        let c = args!(pouch_process(); "pack", &src, "-o", &self.stick(), "--name", name, "-s", &self.clerk.secret);
        let c = args!(c; "--from", "bka", "--to", "fedpol");
        assert_ok(&run(at(&self.sender(), c)), "pack");
        self.stick().join(format!("{name}.toml"))
    }

    fn unpack(&self, manifest: &Path, dest: &Path) -> Command {
        let id = &self.recipient.identity;
        let mut c = args!(pouch_process(); "unpack", manifest, "-i", id, "-d", dest);
        c.env("POUCH_HOME", self.receiver());
        c
    }
}

#[test]
fn unpack_killed_anywhere_is_accepted_once_or_not_at_all_and_a_receipt_can_be_had() {
    let x = Exchange::new();
    let inbox = x.w.dir("inbox");
    let receipts = x.w.dir("receipts");
    let ledger = x.receiver().join("ledger.jsonl");
    let kills = kill_at_every_call(
        &["write", "fsync", "syncfs", "mkdir", "renameat2"],
        |label| x.unpack(&x.pack(&format!("b-{label}")), &inbox),
        |label| {
            let m = x.stick().join(format!("b-{label}.toml"));
            let name = m.file_stem().expect("name").to_string_lossy().into_owned();
            let again = run(x.unpack(&m, &inbox));
            match again.status.code() {
                Some(0) => {}
                Some(1) => assert!(
                    stderr(&again).contains("already accepted"),
                    "{label}: {}",
                    describe(&again)
                ),
                _ => panic!(
                    "{label}: the rerun neither accepts nor refuses a replay: {}",
                    describe(&again)
                ),
            }
            assert_eq!(
                leftovers(&inbox),
                Vec::<String>::new(),
                "{label}: leftovers in DEST"
            );
            let text = fs::read_to_string(&m).expect("manifest");
            let id = manifest_field(&text, "bundle_id").expect("id");
            let recs = records(&ledger);
            let accepted = with_event(&recs, "accepted")
                .filter(|r| r["bundle_id"] == id.as_str())
                .count();
            assert_eq!(accepted, 1, "{label}: accepted once");
            assert!(inbox.join(&name).is_dir(), "{label}: DEST/NAME is there");
            assert_ledger_intact(&x.receiver(), label);
            // A receipt without --allow-replay, whatever happened.
            let key = &x.recipient.secret;
            let make = args!(pouch_process(); "receipt", "make", &m, "-s", key, "-o", &receipts);
            assert_ok(
                &run(at(&x.receiver(), make)),
                &format!("{label}: receipt make"),
            );
        },
    );
    assert!(kills >= 8, "unpack was killed at only {kills} calls");
}

#[test]
fn receipt_import_and_keyring_add_killed_anywhere_leave_whole_records() {
    let x = Exchange::new();
    let receipts = x.w.dir("receipts");
    let inbox = x.w.dir("inbox");
    // A fresh bundle and receipt for each kill: an import done is not
    // done again.
    let import = |label: &str| {
        let receipt = receipts.join(format!("b-{label}.receipt.toml"));
        let mut c = args!(pouch_process(); "receipt", "import", &receipt);
        c.env("POUCH_HOME", x.sender());
        c
    };
    let ledger = x.sender().join("ledger.jsonl");
    let kills = kill_at_every_call(
        &["write", "fsync"],
        |label| {
            let m = x.pack(&format!("b-{label}"));
            let key = &x.recipient.secret;
            let unpack = args!(x.unpack(&m, &inbox); "--receipt-out", &receipts, "-s", key);
            assert_ok(&run(unpack), "unpack");
            import(label)
        },
        |label| {
            assert_ok(&run(import(label)), &format!("{label}: rerun"));
            assert_ledger_intact(&x.sender(), label);
            let recs = records(&ledger);
            let name = format!("b-{label}");
            let receipts = with_event(&recs, "receipt").filter(|r| r["name"] == name.as_str());
            assert_eq!(receipts.count(), 1, "{label}: one receipt record");
        },
    );
    assert!(
        kills >= 2,
        "receipt import was killed at only {kills} calls"
    );

    let mut added = Vec::new();
    let add = |label: &str| {
        let mut c = args!(pouch_process(); "keyring", "add", format!("p-{label}"), "--recipient", &x.recipient.recipient);
        c.env("POUCH_HOME", x.sender());
        c
    };
    let kills = kill_at_every_call(&["write", "fsync", "renameat"], add, |label| {
        let o = run(at(
            &x.sender(),
            args!(pouch_process(); "keyring", "list", "--json"),
        ));
        assert_ok(&o, &format!("{label}: the keyring parses"));
        added.push((
            label.to_string(),
            String::from_utf8_lossy(&o.stdout).contains(&format!("p-{label}")),
        ));
    });
    assert!(kills >= 3, "keyring add was killed at only {kills} calls");
    // Each add either landed whole or not at all, and the last one landed.
    assert!(added.last().is_some_and(|(_, there)| *there), "{added:?}");
}

#[test]
fn a_full_disk_under_the_ledger_never_leaves_part_of_a_record() {
    let w = World::new();
    let keys = w.keys("clerk");
    let src = w.write("case/a.txt", "a\n");
    let mut refused = 0;
    for spare in [0u64, 200, 600, 2_000, 40_000, 70_000] {
        let home = w.dir(format!("home{spare}"));
        let _mount = Mount::tmpfs(&home, "size=1m");
        let out = w.dir(format!("out{spare}"));
        let pack = || {
            let mut c = pack_cmd(&[&src], &out, &format!("b{}", names(&out).len()), &keys);
            c.env("POUCH_HOME", &home)
                .args(["--from", "bka", "--to", "fedpol"]);
            c
        };
        assert_ok(&run(pack()), "a first pack");
        let ledger = home.join("ledger.jsonl");
        let before = fs::read(&ledger).expect("ledger");
        let (free, bsize) = free_blocks(&home);
        let filler = home.join("filler");
        let fill = (free * bsize).saturating_sub(spare);
        let _ = fs::write(&filler, vec![0u8; fill as usize]);
        let o = run(pack());
        match o.status.code() {
            Some(0) => {}
            Some(2) => {
                refused += 1;
                assert_eq!(
                    fs::read(&ledger).expect("ledger"),
                    before,
                    "spare {spare}: ledger changed"
                );
                assert!(
                    stderr(&o).contains("free"),
                    "spare {spare}: says the disk is full: {}",
                    describe(&o)
                );
                assert_eq!(
                    names(&out).len(),
                    3,
                    "spare {spare}: only the first bundle in OUTDIR"
                );
            }
            _ => panic!("spare {spare}: {}", describe(&o)),
        }
        fs::remove_file(&filler).expect("free the space");
        assert_ledger_intact(&home, &format!("spare {spare}"));
        assert_ok(
            &run(pack()),
            &format!("spare {spare}: pack after freeing space"),
        );
        let recs = records(&ledger);
        let seqs: Vec<_> = with_event(&recs, "reserved")
            .map(|r| r["sequence"].clone())
            .collect();
        let unique: BTreeSet<String> = seqs.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            seqs.len(),
            unique.len(),
            "spare {spare}: a sequence reserved twice"
        );
    }
    assert!(
        refused >= 2,
        "the disk was too full for a record only {refused} times"
    );
}

/// Runs `cmd` with every `syscall` slowed by `delay_us` and sends `signal`
/// to pouch (not strace) while it waits in the first one.
fn interrupted_in(cmd: &Command, syscall: &str, signal: &str) -> Output {
    let mut c = under_strace(cmd, syscall, "delay_enter=1500000");
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("strace runs");
    thread::sleep(Duration::from_millis(700));
    let kids = run(args!(Command::new("pgrep"); "-P", child.id().to_string()));
    let pid = String::from_utf8_lossy(&kids.stdout).trim().to_string();
    assert!(!pid.is_empty(), "pouch is running under strace");
    run(args!(Command::new("kill"); format!("-{signal}"), &pid));
    child.wait_with_output().expect("waits")
}

#[test]
fn an_interruption_during_a_flush_rolls_back_with_130() {
    let x = Exchange::new();
    let src = x.w.write("big/a.bin", vec![7u8; 64 * 1024]);
    for signal in ["INT", "TERM"] {
        let out = x.w.dir(format!("out-{signal}"));
        let mut c = pack_cmd(&[&src], &out, "b", &x.clerk);
        c.env("POUCH_HOME", x.sender());
        let o = interrupted_in(&c, "fsync", signal);
        assert_code(&o, 130, &format!("pack, SIG{signal} during fsync"));
        assert_eq!(
            names(&out),
            BTreeSet::new(),
            "SIG{signal}: OUTDIR as it was"
        );
    }
    let m = x.pack("b1");
    let inbox = x.w.dir("inbox");
    let o = interrupted_in(&x.unpack(&m, &inbox), "syncfs", "INT");
    assert_code(&o, 130, "unpack, SIGINT during syncfs");
    assert_eq!(names(&inbox), BTreeSet::new(), "DEST as it was");
    let recs = records(&x.receiver().join("ledger.jsonl"));
    assert_eq!(with_event(&recs, "accepted").count(), 0, "nothing accepted");
    assert_ok(&run(x.unpack(&m, &inbox)), "the rerun accepts");

    let re = x.w.dir("recut");
    let c =
        args!(pouch_process(); "resplit", &m, "-o", &re, "-s", &x.clerk.secret, "--split", "4K");
    let o = interrupted_in(&at(&x.sender(), c), "fsync", "INT");
    assert_code(&o, 130, "resplit, SIGINT during fsync");
    assert!(
        !stderr(&o).contains(".age:"),
        "names no file: {}",
        describe(&o)
    );
    assert_eq!(
        leftovers(&re),
        Vec::<String>::new(),
        "resplit leaves nothing"
    );
}

/// Runs the commands at once and waits for all; their outputs.
fn all_at_once(cmds: Vec<Command>) -> Vec<Output> {
    let children: Vec<_> = cmds
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().expect("spawns")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("waits"))
        .collect()
}

#[test]
fn each_state_changing_command_raced_against_itself_serialises() {
    let x = Exchange::new();
    // Four packs on one channel: four numbers, no two alike.
    let packs = (0..4)
        .map(|i| {
            let src = x.w.write(format!("race/{i}.txt"), format!("{i}"));
            let c = args!(pouch_process(); "pack", &src, "-o", &x.stick(), "--name", format!("r{i}"), "-s", &x.clerk.secret);
            at(&x.sender(), args!(c; "--from", "bka", "--to", "fedpol"))
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for (i, o) in all_at_once(packs).iter().enumerate() {
        assert_ok(o, &format!("pack r{i}"));
        let text = fs::read_to_string(x.stick().join(format!("r{i}.toml"))).expect("manifest");
        seqs.insert(manifest_field(&text, "sequence").expect("sequence"));
    }
    let want: BTreeSet<String> = (1..=4).map(|n| n.to_string()).collect();
    assert_eq!(seqs, want);
    // Three unpacks of one bundle into three folders: accepted once.
    let m = x.stick().join("r0.toml");
    let dests: Vec<PathBuf> = (0..3).map(|i| x.w.join(format!("in{i}"))).collect();
    let outs = all_at_once(dests.iter().map(|d| x.unpack(&m, d)).collect());
    let codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(1)).count(),
        2,
        "{codes:?}"
    );
    // Two imports of one receipt: recorded once.
    let receipts = x.w.dir("receipts");
    let m1 = x.stick().join("r1.toml");
    let key = &x.recipient.secret;
    let unpack = args!(x.unpack(&m1, &x.w.join("in-r1")); "--receipt-out", &receipts, "-s", key);
    assert_ok(&run(unpack), "unpack r1");
    let receipt = receipts.join("r1.receipt.toml");
    let import = || {
        at(
            &x.sender(),
            args!(pouch_process(); "receipt", "import", &receipt),
        )
    };
    for o in all_at_once(vec![import(), import()]) {
        assert_ok(&o, "import");
    }
    let recs = records(&x.sender().join("ledger.jsonl"));
    assert_eq!(with_event(&recs, "receipt").count(), 1);
    assert_ledger_intact(&x.sender(), "after the races");
    assert_ledger_intact(&x.receiver(), "after the races");
}

#[test]
fn an_interrupted_pack_whose_medium_is_gone_blocks_nothing_and_can_be_given_up() {
    let x = Exchange::new();
    let gone = x.w.dir("gone");
    let src = x.w.write("g/a.txt", "a");
    let pack = |out: &Path, name: &str| {
        let c =
            args!(pouch_process(); "pack", &src, "-o", out, "--name", name, "-s", &x.clerk.secret);
        at(&x.sender(), args!(c; "--from", "bka", "--to", "fedpol"))
    };
    // Killed at its first rename, after its number was reserved; then the
    // medium goes away.
    let o = run(killed_at(&pack(&gone, "lost"), "renameat2", 1));
    assert!(!o.status.success(), "killed: {}", describe(&o));
    fs::remove_dir_all(&gone).expect("the medium is gone");
    let o = run(pack(&x.stick(), "next"));
    assert_ok(&o, "a pack elsewhere goes on");
    assert!(stderr(&o).contains("is not settled"), "{}", describe(&o));
    let text = fs::read_to_string(x.stick().join("next.toml")).expect("manifest");
    assert_eq!(
        manifest_field(&text, "sequence").as_deref(),
        Some("2"),
        "1 stays taken"
    );
    let repair = || at(&x.sender(), args!(pouch_process(); "ledger", "repair"));
    assert_code(&run(repair()), 2, "repair cannot settle it");
    let o = run(args!(repair(); "--abandon-unreachable"));
    assert_ok(&o, "given up");
    assert!(
        stderr(&o).contains("given up by the operator"),
        "{}",
        describe(&o)
    );
    assert_ok(&run(repair()), "nothing left to repair");
    let o = run(pack(&x.stick(), "after"));
    assert!(!stderr(&o).contains("not settled"), "{}", describe(&o));
}

#[test]
fn resplit_killed_anywhere_leaves_no_fragment_and_the_rerun_completes() {
    let x = Exchange::new();
    let src = x.w.write("r/a.bin", vec![3u8; 20_000]);
    let c =
        args!(pouch_process(); "pack", &src, "-o", x.stick(), "--name", "b", "-s", &x.clerk.secret);
    assert_ok(
        &run(at(&x.sender(), args!(c; "-r", &x.recipient.recipient))),
        "pack",
    );
    let m = x.stick().join("b.toml");
    let recut = |out: &Path| {
        let c = args!(pouch_process(); "resplit", &m, "-o", out, "-s", &x.clerk.secret);
        at(&x.sender(), args!(c; "--split", "8K"))
    };
    let mut n = 0;
    let kills = kill_at_every_call(
        &["write", "fsync", "renameat2"],
        |label| recut(&x.w.dir(format!("re-{label}"))),
        |label| {
            n += 1;
            let out = x.w.join(format!("re-{label}"));
            if !out.join("b.toml.minisig").exists() {
                assert_ok(&run(recut(&out)), &format!("{label}: the rerun"));
            }
            assert_eq!(leftovers(&out), Vec::<String>::new(), "{label}: leftovers");
            let verify =
                args!(pouch_process(); "verify", out.join("b.toml"), "--trust", &x.clerk.public);
            assert_ok(&run(verify), &format!("{label}: verifies"));
        },
    );
    assert!(
        kills >= 6 && n > kills,
        "resplit was killed at only {kills} calls"
    );
}

#[test]
fn an_io_error_at_any_fsync_of_pack_leaves_nothing_half_done_and_the_truth_in_the_exit_code() {
    let clerk = Clerk::new();
    let (home, out) = (&clerk.home(), &clerk.out());
    let pack = |name: &str| clerk.pack(name);
    let mut failed = 0;
    for n in 1..=40 {
        let name = format!("e{n}");
        let o = run(under_strace(
            &pack(&name),
            "fsync",
            &format!("error=EIO:when={n}"),
        ));
        let committed = out.join(format!("{name}.toml.minisig")).exists();
        match o.status.code() {
            Some(2) => {
                failed += 1;
                let left: Vec<_> = names(out)
                    .into_iter()
                    .filter(|f| f.contains(&name))
                    .collect();
                assert!(left.is_empty(), "fsync {n}: exit 2 but {left:?} left");
            }
            Some(0) => assert!(committed, "fsync {n}: exit 0 without a bundle"),
            _ => panic!("fsync {n}: {}", describe(&o)),
        }
        assert_ok(
            &run(pack(&format!("n{n}"))),
            &format!("fsync {n}: next pack"),
        );
        assert_ledger_intact(home, &format!("fsync {n}"));
        if committed {
            let sha = pouch::payload::hashing::sha256_hex(
                &fs::read(out.join(format!("{name}.toml"))).expect("manifest"),
            );
            let recs = records(&home.join("ledger.jsonl"));
            assert!(
                with_event(&recs, "packed").any(|r| r["manifest_sha256"] == sha.as_str()),
                "fsync {n}: recorded"
            );
        }
        if o.status.success() && !stderr(&o).contains("warning") {
            break;
        }
    }
    assert!(
        failed >= 3,
        "an I/O error failed the pack only {failed} times"
    );
}
