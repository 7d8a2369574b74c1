//! `evalgate check [PATH]`: every problem in every bundle and golden set, one per line as
//! `path:line:col: error: message`; exit 1 if there is any.

use crate::exit::Outcome;
use anyhow::anyhow;
use evaluators::workspace;
use std::io::Write;
use std::path::Path;

pub fn run(path: &Path) -> anyhow::Result<Outcome> {
    let report = workspace::check_path(path).map_err(|e| anyhow!(e))?;
    let mut out = std::io::stdout().lock();
    for d in &report.diagnostics {
        writeln!(out, "{d}")?;
    }
    for b in &report.bundles {
        writeln!(
            out,
            "ok: bundle {} ({}) {} — golden set {} ({} cases) pinned {}",
            b.bundle.name,
            b.bundle.manifest,
            b.bundle.hash,
            b.golden.dir,
            b.golden.cases.len(),
            b.golden.pin
        )?;
    }
    for g in &report.golden_sets {
        writeln!(out, "ok: golden set {} ({} cases) {}", g.dir, g.cases.len(), g.pin)?;
    }
    let errors = report.diagnostics.len();
    if errors > 0 {
        writeln!(
            out,
            "{errors} error{} in {} bundle{} checked",
            if errors == 1 { "" } else { "s" },
            report.bundles_found,
            if report.bundles_found == 1 { "" } else { "s" }
        )?;
        return Ok(Outcome::Failed);
    }
    Ok(Outcome::Ok)
}
