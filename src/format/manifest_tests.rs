//! Tests of the manifests' parsing and validation.

use super::*;

fn sample() -> Manifest {
    let entries = vec![
        Entry::folder("case".into()),
        Entry::file("case/a.txt".into(), 3, "a".repeat(64), false),
        Entry::file("case/run.sh".into(), 0, "b".repeat(64), true),
    ];
    Manifest {
        format_version: FORMAT_VERSION,
        bundle_id: "0123456789abcdef0123456789abcdef".into(),
        name: "20261129-091403-01234567".into(),
        created: "2026-11-29T09:14:03Z".into(),
        tool: "pouch 0.1.0".into(),
        marking: "RESTRICTED".into(),
        description: "test".into(),
        channel: Channel::default(),
        signer: Signer {
            key_id: "0123456789ABCDEF".into(),
        },
        recipients: vec![RecipientInfo {
            kind: "x25519".into(),
            fingerprint: "0123456789abcdef".into(),
        }],
        payload: Payload {
            file: "20261129-091403-01234567.age".into(),
            size: 10,
            sha256: "c".repeat(64),
            layers: "age+zstd+tar".into(),
            parts: Vec::new(),
            parity: None,
        },
        contents: Contents {
            files: 2,
            folders: 1,
            total_bytes: 3,
            entries_sha256: entries_digest(&entries),
            sealed_names: false,
        },
        delta: None,
        entries,
    }
}

#[test]
fn round_trips_through_toml() {
    let m = sample();
    let text = m.to_toml();
    let back = Manifest::parse(text.as_bytes(), Path::new("m.toml")).expect("parses");
    assert_eq!(m, back);
}

#[test]
fn digest_is_injective_on_path_boundaries() {
    let a = vec![Entry::file("a 1:b".into(), 1, "a".repeat(64), false)];
    let b = vec![Entry::file("a".into(), 1, "a".repeat(64), false)];
    assert_ne!(entries_digest(&a), entries_digest(&b));
}

#[test]
fn refuses_bad_manifests() {
    type Edit = Box<dyn Fn(&mut Manifest)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("format_version", Box::new(|m| m.format_version = 2)),
        ("bundle_id", Box::new(|m| m.bundle_id = "XYZ".into())),
        ("created", Box::new(|m| m.created = "yesterday".into())),
        (
            "payload.sha256",
            Box::new(|m| m.payload.sha256 = "zz".into()),
        ),
        (
            "entries_sha256",
            Box::new(|m| m.entries[1].sha256 = Some("d".repeat(64))),
        ),
        (
            "listed twice",
            Box::new(|m| {
                let e = m.entries[1].clone();
                m.entries.push(e);
            }),
        ),
        ("..", Box::new(|m| m.entries[1].path = "case/../x".into())),
        ("mode", Box::new(|m| m.entries[1].mode = "4755".into())),
        (
            "not listed before",
            Box::new(|m| m.entries[1].path = "other/a.txt".into()),
        ),
        (
            "unknown kind",
            Box::new(|m| m.recipients[0].kind = "scrypt".into()),
        ),
        (
            "mixed",
            Box::new(|m| {
                m.recipients.push(RecipientInfo {
                    kind: KIND_PQ.into(),
                    fingerprint: "fedcba9876543210".into(),
                })
            }),
        ),
    ];
    for (what, edit) in cases {
        let mut m = sample();
        edit(&mut m);
        let err = m.validate().expect_err(what);
        assert!(err.contains(what), "case {what}: error was {err}");
    }
}

#[test]
fn refuses_unknown_keys_and_bom() {
    let text = sample()
        .to_toml()
        .replace("marking =", "colour = \"red\"\nmarking =");
    let err = Manifest::parse(text.as_bytes(), Path::new("m.toml")).expect_err("unknown key");
    assert!(err.to_string().contains("colour"), "{err}");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(sample().to_toml().as_bytes());
    assert!(Manifest::parse(&bom, Path::new("m.toml")).is_err());
}
