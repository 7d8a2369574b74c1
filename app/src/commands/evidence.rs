//! `evalgate evidence export` and `evalgate evidence verify`: the auditor's commands. Export
//! reads `EVALGATE_DATABASE_URL` (with or without a running server); verify needs only the zip.

use crate::audit::export::{self, Period};
use crate::audit::verify;
use crate::cli::EvidenceCommand;
use crate::exit::Outcome;
use crate::settings;
use crate::store::{self, Store};
use anyhow::{Context as _, anyhow};
use std::path::Path;

pub fn run(command: &EvidenceCommand) -> anyhow::Result<Outcome> {
    match command {
        EvidenceCommand::Export { repo, since, until, out } => export_cmd(repo, since, until, out),
        EvidenceCommand::Verify { file } => verify_cmd(file),
    }
}

/// `--since`/`--until` as a period; a bad value is a usage error naming the flag.
fn period(since: &str, until: &str) -> anyhow::Result<Period> {
    let since_ms = export::parse_date(since, false).map_err(|e| anyhow!("--since: {e}"))?;
    let until_ms = export::parse_date(until, true).map_err(|e| anyhow!("--until: {e}"))?;
    Period::new(since_ms, until_ms).map_err(|e| anyhow!("--since/--until: {e}"))
}

fn export_cmd(repo: &str, since: &str, until: &str, out: &Path) -> anyhow::Result<Outcome> {
    export::check_repo(repo).map_err(|e| anyhow!("--repo: {e}"))?;
    let period = period(since, until)?;
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    let url = settings::database_url();
    require_existing_sqlite_file(&url)?;
    let exported = rt.block_on(async {
        // `connect`, not `open`: an export reads; it never migrates the database under a
        // running server (which may be newer than this binary).
        let store = Store::connect(&url).await?;
        export::export(&store, repo, period)
            .await
            .with_context(|| format!("exporting from {} (has `evalgate migrate` run on it?)", store::redact(&url)))
    })?;
    write_atomically(out, &exported.zip)?;
    println!(
        "{}: {} entries, {} runs, {} reports of {repo} from {} to {}; anchor {}, head {}",
        out.display(),
        exported.entries,
        exported.runs,
        exported.reports,
        export::rfc3339(period.since_ms).unwrap_or_default(),
        export::rfc3339(period.until_ms).unwrap_or_default(),
        exported.anchor,
        exported.head,
    );
    // What the database holds is exported as it is; a chain that was broken in the database
    // (a row edited or deleted there) is said at once, not left for the auditor to discover.
    if let Err(e) = verify::verify_bytes(&exported.zip) {
        eprintln!("evalgate evidence export: the exported audit trail does not verify: {e}");
        eprintln!("  (database {})", store::redact(&url));
        return Ok(Outcome::Failed);
    }
    Ok(Outcome::Ok)
}

/// SQLite would create a missing file and the export would be empty: a typo in the setting must
/// not look like a quiet audit trail.
fn require_existing_sqlite_file(url: &str) -> anyhow::Result<()> {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Ok(()); // other kinds are refused by `Store::connect` with their own message
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || Path::new(path).is_file() {
        return Ok(());
    }
    anyhow::bail!(
        "EVALGATE_DATABASE_URL `{}`: there is no database file at {path}; point it at the server's database",
        store::redact(url)
    )
}

/// The zip appears whole or not at all: a temp file in the same folder, then a rename.
fn write_atomically(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes).with_context(|| format!("writing {}", out.display()))?;
    tmp.persist(out).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn verify_cmd(file: &Path) -> anyhow::Result<Outcome> {
    // Unreadable is a setup error (exit 2); a readable file that is not a valid export fails.
    let f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    match verify::verify(std::io::BufReader::new(f)) {
        Ok(v) => {
            let h = &v.header;
            println!(
                "verified: {} entries of {} from {} to {}, {} files; anchor {}, head {}",
                h.entries,
                h.repo,
                export::rfc3339(h.period.since_ms).unwrap_or_else(|| h.period.since_ms.to_string()),
                export::rfc3339(h.period.until_ms).unwrap_or_else(|| h.period.until_ms.to_string()),
                v.files,
                h.anchor,
                h.head
            );
            Ok(Outcome::Ok)
        }
        Err(e) => {
            println!("{}: verification failed: {e}", file.display());
            Ok(Outcome::Failed)
        }
    }
}
