//! `pouch audit`: check bundles, receipts and ledgers without a key.

use super::*;

/// Runs the command; returns its exit code.
pub fn run(ctx: &Ctx, args: AuditArgs) -> Result<u8> {
    let AuditArgs {
        paths,
        trust,
        json,
        require_pq,
        html,
    } = args;
    let keys = ctx.keyring()?.trusted_with(&trust)?;
    let opts = pouch::audit::AuditOptions {
        paths,
        trusted: keys,
        ledgers: match ctx.ledgers.is_empty() {
            true => ctx.ledger.path.iter().cloned().collect(),
            false => ctx.ledgers.clone(),
        },
        require_pq: require_pq || ctx.config.require_pq.unwrap_or(false),
    };
    let report = pouch::audit::audit(&opts)?;
    render_custody::audit(&report, json);
    if let Some(file) = &html {
        let now = pouch::format::manifest::format_time(time::OffsetDateTime::now_utc());
        let page = super::super::render_html::report(&report, &now);
        pouch::disk::durable::write_new(file, page.as_bytes(), 0o644)?;
        render::note(&format!("report written: {}", file.display()));
    }
    if report.bundles.is_empty() && report.receipts.is_empty() {
        // An empty or unmounted folder is not a clean audit.
        let places: Vec<String> = opts.paths.iter().map(|p| p.display().to_string()).collect();
        render::warn(&format!(
            "error: no bundles or receipts found in {}; is the medium mounted?",
            places.join(", ")
        ));
        return Ok(1);
    }
    Ok(if report.failed > 0 { 1 } else { 0 })
}
