//! The evidence an auditor takes away: one repository's audit entries of a period, its gate runs
//! and their rendered reports, zipped with a `MANIFEST` that pins every file by sha256 and the
//! chain by its first `prev_sha256` (the anchor) and its last `sha256` (the head).
//!
//! The zip is deterministic — entries in chain order, runs oldest first, every file stamped
//! 1980-01-01 — so two exports of the same data are the same bytes, and an auditor can compare a
//! fresh export with an old one by hash alone.
//!
//! `MANIFEST` (UTF-8, `\n` line ends):
//!
//! ```text
//! evalgate evidence export v1
//! repo: acme/agents
//! since: 2026-01-01T00:00:00.000Z
//! until: 2026-01-31T23:59:59.999Z
//! entries: 3
//! anchor: <first entry's prev_sha256, or `none` without entries>
//! head: <last entry's sha256, or `none` without entries>
//!
//! <sha256 hex>  entries.jsonl
//! <sha256 hex>  runs.csv
//! <sha256 hex>  reports/<run-id>.md
//! ```
//!
//! The lines after the blank line are in `sha256sum` format, so `sha256sum -c` checks them too.
//! The MANIFEST cannot pin itself: whoever can rewrite the whole zip can rewrite it, which is why
//! `evalgate evidence export` prints the head, for the auditor to note apart from the file.

use super::entry::Entry;
use crate::store::Store;
use crate::store::gate_runs::{GateRun, RunState};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Write as _;

/// The first line of every MANIFEST; a later format changes it.
pub const FORMAT: &str = "evalgate evidence export v1";
pub const MANIFEST: &str = "MANIFEST";
pub const ENTRIES: &str = "entries.jsonl";
pub const RUNS: &str = "runs.csv";
pub const REPORTS_DIR: &str = "reports/";
/// `anchor` and `head` of an export without entries.
pub const NONE: &str = "none";

/// More entries than this in one export is a period an auditor should split.
pub const MAX_ENTRIES: usize = 1_000_000;
/// The verifier's bounds ([`super::verify`]): the export never writes what it would refuse.
pub const MAX_FILE_BYTES: u64 = 512 << 20;
pub const MAX_FILES: usize = 100_000;
/// `MANIFEST`, `entries.jsonl` and `runs.csv` besides one report per run.
pub const MAX_RUNS: usize = MAX_FILES - 3;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the period holds more than {MAX_ENTRIES} audit entries: export a shorter period")]
    TooManyEntries,
    #[error("the period holds more than {MAX_RUNS} gate runs: export a shorter period")]
    TooManyRuns,
    #[error(
        "{file} would be {bytes} bytes, more than the {MAX_FILE_BYTES} a verifier accepts: export a shorter period"
    )]
    FileTooLarge { file: String, bytes: u64 },
    #[error("{0}")]
    Period(String),
    #[error("reading the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("writing the zip: {0}")]
    Zip(String),
}

/// `[since_ms, until_ms]`, both ends included, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub since_ms: i64,
    pub until_ms: i64,
}

impl Period {
    /// A period the MANIFEST can state: non-empty and within the years RFC 3339 can write.
    pub fn new(since_ms: i64, until_ms: i64) -> Result<Period, ExportError> {
        if since_ms > until_ms {
            return Err(ExportError::Period(format!(
                "the period is empty: since {} is after until {}",
                rfc3339(since_ms).unwrap_or_else(|| since_ms.to_string()),
                rfc3339(until_ms).unwrap_or_else(|| until_ms.to_string())
            )));
        }
        for ms in [since_ms, until_ms] {
            if rfc3339(ms).is_none() {
                return Err(ExportError::Period(format!("{ms} ms is not a time an export can state")));
            }
        }
        Ok(Period { since_ms, until_ms })
    }
}

/// `2026-01-31T23:59:59.999Z`, or `None` outside chrono's (and RFC 3339's) range.
pub fn rfc3339(ms: i64) -> Option<String> {
    let t = DateTime::<Utc>::from_timestamp_millis(ms)?;
    use chrono::Datelike as _;
    (0..=9999).contains(&t.year()).then(|| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A `--since`/`--until` (or `since=`/`until=`) value: `YYYY-MM-DD` in UTC — its first
/// millisecond, or its last when `end_of_day`, so both named days are included — or an RFC 3339
/// time, taken as it is. The error says what was expected, for the caller to prefix with the
/// parameter's name.
pub fn parse_date(s: &str, end_of_day: bool) -> Result<i64, String> {
    let s = s.trim();
    let bad = || format!("expected YYYY-MM-DD or an RFC 3339 time (2026-01-31T12:00:00Z), found `{s}`");
    if s.len() == 10 {
        let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
        let t = if end_of_day { day.and_hms_milli_opt(23, 59, 59, 999) } else { day.and_hms_milli_opt(0, 0, 0, 0) };
        return t.map(|t| t.and_utc().timestamp_millis()).ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()).map_err(|_| bad())
}

/// `OWNER/NAME` as GitHub spells repositories; anything else is a typo worth naming.
pub fn check_repo(repo: &str) -> Result<(), String> {
    let ok_part = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    match repo.split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(()),
        _ => Err(format!("expected OWNER/NAME, found `{repo}`")),
    }
}

/// The MANIFEST's statements besides the file hashes; [`super::verify`] parses the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub repo: String,
    pub period: Period,
    pub entries: usize,
    pub anchor: String,
    pub head: String,
}

impl Header {
    fn of(repo: &str, period: Period, entries: &[Entry]) -> Header {
        Header {
            repo: repo.to_owned(),
            period,
            entries: entries.len(),
            anchor: entries.first().map(|e| e.prev_sha256.clone()).unwrap_or_else(|| NONE.to_owned()),
            head: entries.last().map(|e| e.sha256.clone()).unwrap_or_else(|| NONE.to_owned()),
        }
    }
}

/// The MANIFEST text for `header` and `files` (every file of the zip but the MANIFEST).
pub fn manifest(header: &Header, files: &[(String, Vec<u8>)]) -> String {
    let time = |ms| rfc3339(ms).unwrap_or_else(|| ms.to_string());
    let mut m = format!(
        "{FORMAT}\nrepo: {}\nsince: {}\nuntil: {}\nentries: {}\nanchor: {}\nhead: {}\n\n",
        header.repo,
        time(header.period.since_ms),
        time(header.period.until_ms),
        header.entries,
        header.anchor,
        header.head
    );
    for (path, bytes) in files {
        let _ = writeln!(m, "{}  {path}", sha256_hex(bytes));
    }
    m
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The zip of `files`, MANIFEST first when present, in the given order, deflated, every file
/// stamped 1980-01-01 so the bytes depend on the content alone.
pub fn write_zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, ExportError> {
    let zerr = |e: zip::result::ZipError| ExportError::Zip(e.to_string());
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let ordered = files.iter().filter(|(p, _)| p == MANIFEST).chain(files.iter().filter(|(p, _)| p != MANIFEST));
    for (path, bytes) in ordered {
        zip.start_file(path.as_str(), options).map_err(zerr)?;
        zip.write_all(bytes).map_err(|e| ExportError::Zip(e.to_string()))?;
    }
    Ok(zip.finish().map_err(zerr)?.into_inner())
}

/// What one export holds, read from the store.
pub struct Evidence {
    pub repo: String,
    pub period: Period,
    /// Chain order.
    pub entries: Vec<Entry>,
    /// Oldest first.
    pub runs: Vec<GateRun>,
}

/// What [`Evidence::to_zip`] made.
#[derive(Debug)]
pub struct Exported {
    pub zip: Vec<u8>,
    pub entries: usize,
    pub runs: usize,
    pub reports: usize,
    pub anchor: String,
    pub head: String,
}

/// Reads the repository's entries and runs of the period.
pub async fn collect(store: &Store, repo: &str, period: Period) -> Result<Evidence, ExportError> {
    // The store reads the whole period at once; the bound is checked on what came back.
    let entries = store.audit_entries(repo, period.since_ms, period.until_ms).await?;
    if entries.len() > MAX_ENTRIES {
        return Err(ExportError::TooManyEntries);
    }
    let runs = store.gate_runs_between(repo, period.since_ms, period.until_ms, MAX_RUNS as i64 + 1).await?;
    if runs.len() > MAX_RUNS {
        return Err(ExportError::TooManyRuns);
    }
    Ok(Evidence { repo: repo.to_owned(), period, entries, runs })
}

/// Reads and zips: the compression runs off the async workers.
pub async fn export(store: &Store, repo: &str, period: Period) -> Result<Exported, ExportError> {
    let evidence = collect(store, repo, period).await?;
    tokio::task::spawn_blocking(move || evidence.to_zip())
        .await
        .map_err(|e| ExportError::Zip(format!("the export task failed: {e}")))?
}

/// One CSV field, quoted (RFC 4180) when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// A run id as a file name: ids are hex, but a stored id is not trusted to be a safe path.
fn report_name(id: &str) -> String {
    let safe: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("{REPORTS_DIR}{safe}.md")
}

impl Evidence {
    /// Every file of the zip but the MANIFEST, in zip order.
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
        let mut jsonl = Vec::new();
        for e in &self.entries {
            serde_json::to_writer(&mut jsonl, e).map_err(|e| ExportError::Zip(e.to_string()))?;
            jsonl.push(b'\n');
        }
        let mut csv = String::from("id,pr_number,head_sha,base_sha,bundle,state,conclusion,title\r\n");
        for r in &self.runs {
            let row = [
                r.id.clone(),
                r.pr_number.to_string(),
                r.head_sha.clone(),
                r.base_sha.clone(),
                r.bundle.clone(),
                r.state.as_str().to_owned(),
                r.conclusion.clone().unwrap_or_default(),
                r.title.clone().unwrap_or_default(),
            ];
            csv.push_str(&row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            csv.push_str("\r\n");
        }
        let mut files = vec![(ENTRIES.to_owned(), jsonl), (RUNS.to_owned(), csv.into_bytes())];
        let mut seen = std::collections::BTreeSet::new();
        for r in self.runs.iter().filter(|r| r.state == RunState::Completed) {
            if let Some(summary) = &r.summary {
                let name = report_name(&r.id);
                if seen.insert(name.clone()) {
                    files.push((name, summary.clone().into_bytes()));
                }
            }
        }
        for (path, bytes) in &files {
            if bytes.len() as u64 > MAX_FILE_BYTES {
                return Err(ExportError::FileTooLarge { file: path.clone(), bytes: bytes.len() as u64 });
            }
        }
        Ok(files)
    }

    pub fn header(&self) -> Header {
        Header::of(&self.repo, self.period, &self.entries)
    }

    pub fn to_zip(&self) -> Result<Exported, ExportError> {
        let mut files = self.files()?;
        let header = self.header();
        let reports = files.len() - 2;
        let manifest = manifest(&header, &files);
        files.insert(0, (MANIFEST.to_owned(), manifest.into_bytes()));
        Ok(Exported {
            zip: write_zip(&files)?,
            entries: self.entries.len(),
            runs: self.runs.len(),
            reports,
            anchor: header.anchor,
            head: header.head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_include_both_named_days() {
        assert_eq!(parse_date("2026-01-01", false), Ok(1_767_225_600_000));
        assert_eq!(parse_date("2026-01-01", true), Ok(1_767_225_600_000 + 86_400_000 - 1));
        assert_eq!(parse_date("2026-01-01T01:00:00+01:00", true), Ok(1_767_225_600_000));
        assert!(parse_date("yesterday", false).unwrap_err().contains("`yesterday`"));
        assert!(parse_date("2026-13-01", false).is_err());
    }

    #[test]
    fn repositories_are_owner_slash_name() {
        assert!(check_repo("acme/agents").is_ok());
        for bad in ["acme", "acme/", "/x", "a/b/c", "a b/c"] {
            assert!(check_repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("gate passed"), "gate passed");
        assert_eq!(csv_field("a, \"b\"\nc"), "\"a, \"\"b\"\"\nc\"");
    }

    #[test]
    fn a_period_ends_after_it_starts() {
        assert!(Period::new(2, 1).is_err());
        assert!(Period::new(0, i64::MAX).is_err(), "beyond year 9999");
        assert!(Period::new(1, 1).is_ok());
    }
}
