//! `pouch pack`: seal sources into a bundle, or say what would be sealed
//! (`--dry-run`).

use pouch::settings::config::Spec;
use pouch::settings::resolve::{self, PackFlags};

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, args: PackArgs) -> Result<u8> {
    let spec = match &args.spec {
        Some(p) => Spec::load(p)?,
        None => Spec::default(),
    };
    let switch = |on: bool| on.then_some(true);
    let flags = PackFlags {
        spec: Spec {
            sources: args.sources,
            out_dir: args.out_dir,
            from: args.sender,
            to: args.receiver,
            marking: args.marking,
            description: args.description,
            level: args.level,
            parity: args.parity,
            seal_names: switch(args.seal_names),
            require_pq: switch(args.require_pq),
            ..Spec::default()
        },
        recipients: args.recipients,
        recipients_files: args.recipients_files,
        signing_key: args.signing_key,
        passphrase_file: args.passphrase_file,
        split: args.media.split()?,
        media_given: args.media.given(),
    };
    let s = resolve::pack(flags, &spec, &ctx.config)?;
    let mut opts = pouch::pack::PackOptions {
        out_dir: s.out_dir.clone().unwrap_or_else(|| PathBuf::from(".")),
        name: args.name,
        skip_special: args.skip_special,
        source_date_epoch: resolve::source_date_epoch()?,
        verify_after_write: args.media.verify_after_write(),
        allow_unportable_names: args.allow_unportable_names,
        no_space_check: args.no_space_check,
        ledger: Some(ctx.ledger_path()?),
        progress: ctx.progress.clone(),
        zstd_workers: pouch::pack::default_zstd_workers(),
        delta: delta_request(args.delta_from, args.delta, args.rehash)?,
        ..s.pack
    };
    if s.out_dir.is_none() && !args.dry_run {
        return Err(Error::Usage(
            "no output folder: pass -o OUTDIR (or set out_dir in the spec or config)".into(),
        ));
    }
    match (&opts.sender, &opts.receiver) {
        (None, Some(_)) => render::warn(
            "warning: --to without --from: the bundle names its receiver but no sender, so it is on no channel and gets no sequence number (pass --from, or set sender in the config)",
        ),
        (Some(_), None) => render::warn(
            "warning: --from without --to: the bundle names its sender but no receiver, so it is on no channel and gets no sequence number (pass --to)",
        ),
        _ => {}
    }
    let keyring = ctx.keyring()?;
    opts.recipients = keyring.recipients_for(&s.recipients)?;
    if args.dry_run {
        let report = pouch::pack::dry_run(&opts)?;
        render::dry_run(&report, &opts);
        let refused = !report.unportable.is_empty() && !args.allow_unportable_names;
        return Ok(if refused || !report.fits() { 2 } else { 0 });
    }
    let Some(signing_key) = s.signing_key else {
        return Err(Error::Usage(
            "no signing key: pass -s KEY (or set signing_key in the config)".into(),
        ));
    };
    let key = keys::load_signing_key(&signing_key, s.passphrase_file.as_deref())?;
    // A key this keyring marks revoked makes bundles nobody accepts.
    keyring.own(key.trusted(), &signing_key)?;
    let report = pouch::pack::pack(&opts, &key)?;
    render::pack(&report);
    Ok(0)
}

/// What `--delta-from`, `--delta` and `--rehash` ask for.
fn delta_request(
    from: Option<String>,
    newest: bool,
    rehash: bool,
) -> Result<Option<pouch::delta::base::DeltaRequest>> {
    use pouch::delta::base::{BaseChoice, DeltaRequest};
    let base =
        match (from, newest) {
            (Some(f), _) => BaseChoice::From(f),
            (None, true) => BaseChoice::Newest,
            (None, false) if rehash => return Err(Error::Usage(
                "--rehash goes with --delta or --delta-from: a full bundle reads every file anyway"
                    .into(),
            )),
            (None, false) => return Ok(None),
        };
    Ok(Some(DeltaRequest { base, rehash }))
}
