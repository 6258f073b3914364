//! Where each setting comes from: flag > pack spec > config > default, in
//! one typed step.
//!
//! The command line gives what its flags said ([`PackFlags`]); together with
//! the spec and the config that yields a [`PackSettings`], in which every
//! value is decided. The same rules answer `pouch config show`
//! ([`config_rows`]), so what it shows is what a command would use.

use std::path::{Path, PathBuf};

use crate::custody::keyring::RecipientRequest;
use crate::disk::media;
use crate::error::{Error, Result};
use crate::pack::{PackOptions, DEFAULT_LEVEL};
use crate::settings::config::{Config, Filter, Spec};

/// What pack's flags said; `None` and empty mean "not given".
#[derive(Debug, Clone, Default)]
pub struct PackFlags {
    /// The flags that a pack spec can say too, said as a spec: the sources
    /// named on the command line, `-o`, `--from`, `--to`, `--marking`,
    /// `--description`, `--level`, and `--seal-names` and `--require-pq` as
    /// `Some(true)`. Its `split` and `media` are unused: see `split`.
    pub spec: Spec,
    /// `-r`.
    pub recipients: Vec<String>,
    /// `-R`.
    pub recipients_files: Vec<PathBuf>,
    /// `-s`.
    pub signing_key: Option<PathBuf>,
    /// `--passphrase-file`.
    pub passphrase_file: Option<PathBuf>,
    /// `--split` or `--media`, already parsed.
    pub split: Option<u64>,
    /// Whether `--split`, `--media` or `--no-split` was given at all (then
    /// the config's media preset does not apply).
    pub media_given: bool,
}

/// Every pack setting, decided: the options of the pack itself, and what
/// the caller still turns into them (the output folder, recipients and
/// signing key, which need the filesystem or the keyring).
#[derive(Debug, Clone)]
pub struct PackSettings {
    /// The pack's options, as far as settings decide them.
    pub pack: PackOptions,
    /// Where to write the bundle, if anyone said.
    pub out_dir: Option<PathBuf>,
    /// Who the bundle is sealed to, as asked.
    pub recipients: RecipientRequest,
    /// The signing key, if anyone said.
    pub signing_key: Option<PathBuf>,
    /// The signing key's passphrase file.
    pub passphrase_file: Option<PathBuf>,
}

/// Whether a switch that may only be turned on is on: by any of the
/// places that can set it (flag, spec, config).
pub fn switched_on(places: &[Option<bool>]) -> bool {
    places.iter().any(|v| v.unwrap_or(false))
}

/// Decides pack's settings: flag > spec > config > default.
pub fn pack(flags: PackFlags, spec: &Spec, config: &Config) -> Result<PackSettings> {
    let given = flags.spec;
    let sources = if given.sources.is_empty() {
        spec.sources.clone()
    } else {
        given.sources
    };
    if sources.is_empty() {
        return Err(Error::Usage(
            "nothing to pack: name files or folders, or give a --spec with sources".into(),
        ));
    }
    let split = match (flags.split, &spec.split, &spec.media, &config.media) {
        (Some(s), ..) => Some(s),
        (None, Some(s), _, _) => Some(media::parse_size(s)?),
        (None, None, Some(m), _) => media::preset(m)?,
        (None, None, None, Some(m)) if !flags.media_given => media::preset(m)?,
        _ => None,
    };
    let filter = Filter::new(&spec.include, &spec.exclude).map_err(Error::Usage)?;
    let receiver = given.to.or(spec.to.clone());
    let pack = PackOptions {
        sources,
        sender: given.from.or(spec.from.clone()).or(config.sender.clone()),
        receiver: receiver.clone(),
        marking: given
            .marking
            .or(spec.marking.clone())
            .or(config.marking.clone())
            .unwrap_or_default(),
        description: given
            .description
            .or(spec.description.clone())
            .unwrap_or_default(),
        level: given
            .level
            .or(spec.level)
            .or(config.level)
            .unwrap_or(DEFAULT_LEVEL),
        seal_names: switched_on(&[given.seal_names, spec.seal_names]),
        require_pq: switched_on(&[given.require_pq, spec.require_pq, config.require_pq]),
        split,
        filter,
        parity: (given
            .parity
            .or(spec.parity.clone())
            .or(config.parity.clone()))
        .map(|p| crate::parity::parse_percent(&p))
        .transpose()?,
        ..PackOptions::default()
    };
    Ok(PackSettings {
        pack,
        out_dir: given
            .out_dir
            .or(spec.out_dir.clone())
            .or(config.out_dir.clone()),
        recipients: RecipientRequest {
            recipients: flags.recipients,
            files: flags.recipients_files,
            parties: spec.recipients.clone(),
            receiver,
        },
        signing_key: flags.signing_key.or(config.signing_key.clone()),
        passphrase_file: flags.passphrase_file.or(config.passphrase_file.clone()),
    })
}

/// `SOURCE_DATE_EPOCH`, when set: the time to record instead of now, for
/// reproducible bundles.
pub fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse::<u64>().map(Some).map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        }),
        _ => Ok(None),
    }
}

/// One line of `pouch config show`: a setting, its value, and where the
/// value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The setting's name, as in the config file.
    pub name: &'static str,
    /// Its value, if it has one.
    pub value: Option<String>,
    /// `flag`, `config PATH`, `environment POUCH_HOME` or `default`.
    pub origin: String,
}

/// The places the global settings were taken from, for [`config_rows`].
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    /// The config as loaded.
    pub config: &'a Config,
    /// Its path.
    pub config_path: &'a Path,
    /// pouch's home folder.
    pub home: PathBuf,
    /// Whether `POUCH_HOME` set the home.
    pub home_from_env: bool,
    /// The keyring in use, and whether `--keyring` named it.
    pub keyring: (PathBuf, bool),
    /// The ledger in use, and whether `--ledger` named it.
    pub ledger: (PathBuf, bool),
}

/// Every setting with its value and origin, as `pouch config show` lists them.
pub fn config_rows(s: &Sources) -> Vec<Row> {
    let c = s.config;
    let from_config = format!("config {}", s.config_path.display());
    let origin = |flag: bool, conf: bool| match (flag, conf) {
        (true, _) => "flag".to_string(),
        (false, true) => from_config.clone(),
        _ => "default".to_string(),
    };
    let path = |v: &Option<PathBuf>| v.as_ref().map(|p| p.display().to_string());
    let row = |name, value, origin| Row {
        name,
        value,
        origin,
    };
    // A setting only the config sets: from it, else the default.
    let conf = |name, value: Option<String>, set: bool| row(name, value, origin(false, set));
    let home_origin = if s.home_from_env {
        "environment POUCH_HOME".to_string()
    } else {
        "default".to_string()
    };
    let shown = |p: &Path| Some(p.display().to_string());
    vec![
        row("home", shown(&s.home), home_origin),
        row("config_file", shown(s.config_path), "default".into()),
        conf("sender", c.sender.clone(), c.sender.is_some()),
        conf("signing_key", path(&c.signing_key), c.signing_key.is_some()),
        conf(
            "passphrase_file",
            path(&c.passphrase_file),
            c.passphrase_file.is_some(),
        ),
        row(
            "keyring",
            shown(&s.keyring.0),
            origin(s.keyring.1, c.keyring.is_some()),
        ),
        row(
            "ledger",
            shown(&s.ledger.0),
            origin(s.ledger.1, c.ledger.is_some()),
        ),
        conf("marking", c.marking.clone(), c.marking.is_some()),
        conf(
            "level",
            Some(c.level.unwrap_or(DEFAULT_LEVEL).to_string()),
            c.level.is_some(),
        ),
        conf("media", c.media.clone(), c.media.is_some()),
        conf("parity", c.parity.clone(), c.parity.is_some()),
        conf("out_dir", path(&c.out_dir), c.out_dir.is_some()),
        conf(
            "require_pq",
            Some(c.require_pq.unwrap_or(false).to_string()),
            c.require_pq.is_some(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> PackFlags {
        PackFlags {
            spec: Spec {
                sources: vec!["case".into()],
                ..Spec::default()
            },
            ..PackFlags::default()
        }
    }

    #[test]
    fn a_flag_beats_the_spec_which_beats_the_config() {
        let spec = Spec {
            marking: Some("spec".into()),
            level: Some(5),
            ..Spec::default()
        };
        let config = Config {
            marking: Some("config".into()),
            level: Some(7),
            sender: Some("config-sender".into()),
            ..Config::default()
        };
        let s = pack(flags(), &spec, &config).unwrap();
        assert_eq!((s.pack.marking.as_str(), s.pack.level), ("spec", 5));
        assert_eq!(s.pack.sender.as_deref(), Some("config-sender"));
        let mut f = flags();
        f.spec.marking = Some("flag".into());
        f.spec.level = Some(1);
        let s = pack(f, &spec, &config).unwrap();
        assert_eq!((s.pack.marking.as_str(), s.pack.level), ("flag", 1));
        let s = pack(flags(), &Spec::default(), &Config::default()).unwrap();
        assert_eq!((s.pack.marking.as_str(), s.pack.level), ("", DEFAULT_LEVEL));
    }

    #[test]
    fn require_pq_can_only_be_switched_on() {
        let on = Config {
            require_pq: Some(true),
            ..Config::default()
        };
        let spec_off = Spec {
            require_pq: Some(false),
            ..Spec::default()
        };
        assert!(pack(flags(), &spec_off, &on).unwrap().pack.require_pq);
        assert!(
            !pack(flags(), &spec_off, &Config::default())
                .unwrap()
                .pack
                .require_pq
        );
        assert!(switched_on(&[Some(true), Some(false)]));
        assert!(!switched_on(&[None, Some(false)]));
    }

    #[test]
    fn the_config_media_applies_only_when_no_media_flag_was_given() {
        let config = Config {
            media: Some("fat32".into()),
            ..Config::default()
        };
        let s = pack(flags(), &Spec::default(), &config).unwrap();
        assert!(s.pack.split.is_some());
        let f = PackFlags {
            media_given: true,
            ..flags()
        };
        assert_eq!(pack(f, &Spec::default(), &config).unwrap().pack.split, None);
    }

    #[test]
    fn sources_come_from_the_spec_when_none_are_named() {
        let spec = Spec {
            sources: vec!["from-spec".into()],
            ..Spec::default()
        };
        let s = pack(PackFlags::default(), &spec, &Config::default()).unwrap();
        assert_eq!(s.pack.sources, vec![PathBuf::from("from-spec")]);
        let e = pack(PackFlags::default(), &Spec::default(), &Config::default()).unwrap_err();
        assert!(e.to_string().contains("nothing to pack"), "{e}");
    }

    #[test]
    fn config_show_names_where_each_value_came_from() {
        let config = Config {
            marking: Some("RESTRICTED".into()),
            ..Config::default()
        };
        let rows = config_rows(&Sources {
            config: &config,
            config_path: Path::new("/h/config.toml"),
            home: "/h".into(),
            home_from_env: true,
            keyring: ("/k.toml".into(), true),
            ledger: ("/h/ledger.jsonl".into(), false),
        });
        let get = |n: &str| rows.iter().find(|r| r.name == n).unwrap().clone();
        assert_eq!(get("home").origin, "environment POUCH_HOME");
        assert_eq!(get("marking").origin, "config /h/config.toml");
        assert_eq!(get("keyring").origin, "flag");
        assert_eq!(get("ledger").origin, "default");
        assert_eq!(get("level").value.as_deref(), Some("3"));
    }
}
