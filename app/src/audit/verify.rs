//! Offline verification of an evidence zip ([`super::export`]): needs nothing but the file.
//!
//! It checks the chain first, because a chain error names the entry an auditor should look at:
//! every line of `entries.jsonl` must be an entry whose `sha256` is the hash of its content, whose
//! `seq` is one more than the line before's, whose `prev_sha256` is the line before's `sha256` —
//! the first line's the MANIFEST anchor — and the last line's `sha256` must be the MANIFEST head,
//! with as many lines as the MANIFEST counts. Then every file against its MANIFEST hash: one
//! missing, added or changed fails, named.
//!
//! A zip is untrusted input: at most [`MAX_FILES`] files, each read through a bound of
//! [`MAX_FILE_BYTES`] whatever its header claims, and every malformed byte is an error, never a
//! panic. Members are hashed as they stream; only one line of `entries.jsonl` is held at a time.

use super::entry::Entry;
use super::export::{ENTRIES, FORMAT, Header, MANIFEST, MAX_FILE_BYTES, MAX_FILES, NONE, Period, hex};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Seek};

/// Why an export does not verify. The message names the first bad entry or file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("not a zip file: {0}")]
    NotAZip(String),
    #[error("the zip holds {0} files, more than the {MAX_FILES} an export can have")]
    TooManyFiles(usize),
    #[error("`{0}` is larger than {MAX_FILE_BYTES} bytes uncompressed, more than an export can hold")]
    FileTooLarge(String),
    #[error("cannot read `{file}` in the zip: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("the zip has no MANIFEST")]
    NoManifest,
    #[error("MANIFEST line {line}: {reason}")]
    Manifest { line: usize, reason: String },
    #[error("MANIFEST lists `{0}`, which is not in the zip (removed)")]
    Missing(String),
    #[error("`{0}` is in the zip but not in MANIFEST (added)")]
    Extra(String),
    #[error("`{0}` does not match its sha256 in MANIFEST (changed)")]
    Changed(String),
    #[error("entries.jsonl line {line}{}: {problem}", seq_part(.seq))]
    Entry { line: usize, seq: Option<i64>, problem: Problem },
    #[error("entries.jsonl holds {found} entries, MANIFEST says {expected} (entries removed or added)")]
    Count { found: usize, expected: usize },
}

fn seq_part(seq: &Option<i64>) -> String {
    seq.map(|s| format!(" (seq {s})")).unwrap_or_default()
}

/// What is wrong with one line of `entries.jsonl`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Problem {
    #[error("empty line")]
    EmptyLine,
    #[error("not an audit entry: {0}")]
    NotAnEntry(String),
    #[error("sha256 does not match its content (changed)")]
    Hash,
    #[error("prev_sha256 does not match the entry before it (removed or reordered)")]
    Prev,
    #[error("prev_sha256 is not the MANIFEST anchor (entries removed or reordered at the start)")]
    Anchor,
    #[error("seq should be {0} (removed, inserted or reordered)")]
    Seq(i64),
    #[error("sha256 is not the MANIFEST head (entries removed or added at the end)")]
    Head,
    #[error("belongs to repository `{0}`, not the MANIFEST's")]
    Repo(String),
    #[error("at_ms {0} is outside the MANIFEST's period")]
    OutsidePeriod(i64),
}

/// A verified export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub header: Header,
    /// Files besides the MANIFEST.
    pub files: usize,
}

/// The nine fields of an entry, exactly: a line with another field was not written by an export.
const FIELDS: [&str; 9] = ["repo", "seq", "at_ms", "kind", "actor", "pr_number", "data", "prev_sha256", "sha256"];

pub fn verify_bytes(bytes: &[u8]) -> Result<Verified, VerifyError> {
    verify(std::io::Cursor::new(bytes))
}

pub fn verify<R: Read + Seek>(reader: R) -> Result<Verified, VerifyError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| VerifyError::NotAZip(e.to_string()))?;
    if zip.len() > MAX_FILES {
        return Err(VerifyError::TooManyFiles(zip.len()));
    }
    let mut names = BTreeSet::new();
    for i in 0..zip.len() {
        let f = zip.by_index(i).map_err(|e| VerifyError::NotAZip(e.to_string()))?;
        if f.is_dir() {
            continue; // a re-zipped folder brings directory records; they hold no content
        }
        if f.size() > MAX_FILE_BYTES {
            return Err(VerifyError::FileTooLarge(f.name().to_owned()));
        }
        names.insert(f.name().to_owned());
    }
    if !names.contains(MANIFEST) {
        return Err(VerifyError::NoManifest);
    }
    let (header, listed) = {
        let mut text = Vec::new();
        read_member(&mut zip, MANIFEST, |r| r.read_to_end(&mut text).map(drop))?;
        let text =
            String::from_utf8(text).map_err(|_| VerifyError::Manifest { line: 0, reason: "not UTF-8 text".into() })?;
        parse_manifest(&text)?
    };
    let Some(entries_hash) = listed.get(ENTRIES) else {
        return Err(VerifyError::Manifest { line: 0, reason: format!("does not list {ENTRIES}") });
    };
    if !names.contains(ENTRIES) {
        return Err(VerifyError::Missing(ENTRIES.to_owned()));
    }
    let mut chain = Chain::new(&header);
    let actual = read_member(&mut zip, ENTRIES, |r| chain.read(r))?;
    std::mem::replace(&mut chain.result, Ok(()))?;
    chain.finish()?;
    if &actual != entries_hash {
        return Err(VerifyError::Changed(ENTRIES.to_owned()));
    }
    for (path, expected) in &listed {
        if path == ENTRIES {
            continue;
        }
        if !names.contains(path) {
            return Err(VerifyError::Missing(path.clone()));
        }
        let actual = read_member(&mut zip, path, |r| std::io::copy(r, &mut std::io::sink()).map(drop))?;
        if &actual != expected {
            return Err(VerifyError::Changed(path.clone()));
        }
    }
    if let Some(extra) = names.iter().find(|n| n.as_str() != MANIFEST && !listed.contains_key(n.as_str())) {
        return Err(VerifyError::Extra(extra.clone()));
    }
    Ok(Verified { header, files: listed.len() })
}

/// Streams one member through `f`, bounded and hashed; returns its sha256 in hex.
fn read_member<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    f: impl FnOnce(&mut dyn Read) -> std::io::Result<()>,
) -> Result<String, VerifyError> {
    let unreadable = |reason: String| VerifyError::Unreadable { file: name.to_owned(), reason };
    let file = zip.by_name(name).map_err(|e| unreadable(e.to_string()))?;
    let mut r = Hashing { inner: file.take(MAX_FILE_BYTES + 1), hash: Sha256::new(), read: 0 };
    f(&mut r).map_err(|e| unreadable(e.to_string()))?;
    // Whatever `f` left unread still counts: the hash is over the whole member.
    std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| unreadable(e.to_string()))?;
    if r.read > MAX_FILE_BYTES {
        return Err(VerifyError::FileTooLarge(name.to_owned()));
    }
    Ok(hex(&r.hash.finalize()))
}

struct Hashing<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

fn manifest_err(line: usize, reason: impl Into<String>) -> VerifyError {
    VerifyError::Manifest { line, reason: reason.into() }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The header and `path → sha256` of a MANIFEST, strictly in the export's format.
fn parse_manifest(text: &str) -> Result<(Header, BTreeMap<String, String>), VerifyError> {
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    let mut next = |want: &str| -> Result<(usize, String), VerifyError> {
        let (n, l) = lines.next().ok_or_else(|| manifest_err(0, format!("ends before `{want}`")))?;
        let value = if want == FORMAT {
            (l == FORMAT).then_some(String::new())
        } else {
            l.strip_prefix(want).and_then(|r| r.strip_prefix(": ")).map(str::to_owned)
        };
        value.map(|v| (n, v)).ok_or_else(|| manifest_err(n, format!("expected `{want}`, found `{l}`")))
    };
    next(FORMAT)?;
    let (_, repo) = next("repo")?;
    let time = |(n, v): (usize, String)| {
        chrono::DateTime::parse_from_rfc3339(&v)
            .map(|t| t.timestamp_millis())
            .map_err(|_| manifest_err(n, format!("`{v}` is not an RFC 3339 time")))
    };
    let since_ms = time(next("since")?)?;
    let until_ms = time(next("until")?)?;
    let (n, count) = next("entries")?;
    let entries: usize = count.parse().map_err(|_| manifest_err(n, format!("`{count}` is not a count")))?;
    let mut hash = |key: &str| -> Result<String, VerifyError> {
        let (n, v) = next(key)?;
        if is_sha256(&v) || v == NONE { Ok(v) } else { Err(manifest_err(n, format!("`{v}` is not a sha256"))) }
    };
    let anchor = hash("anchor")?;
    let head = hash("head")?;
    let (n, blank) = lines.next().unwrap_or((0, "?"));
    if !blank.is_empty() {
        return Err(manifest_err(n, "expected an empty line after the header"));
    }
    let mut files = BTreeMap::new();
    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        let (sum, path) =
            line.split_once("  ").ok_or_else(|| manifest_err(n, format!("expected `SHA256  PATH`, found `{line}`")))?;
        if !is_sha256(sum) || path.is_empty() || path == MANIFEST {
            return Err(manifest_err(n, format!("expected `SHA256  PATH`, found `{line}`")));
        }
        if files.insert(path.to_owned(), sum.to_owned()).is_some() {
            return Err(manifest_err(n, format!("`{path}` is listed twice")));
        }
    }
    let period = Period { since_ms, until_ms };
    Ok((Header { repo, period, entries, anchor, head }, files))
}

/// The chain check, one line at a time.
struct Chain<'a> {
    header: &'a Header,
    line: usize,
    last: Option<Entry>,
    count: usize,
    /// The first problem; reading stops there but the member is still hashed to its end.
    result: Result<(), VerifyError>,
}

impl<'a> Chain<'a> {
    fn new(header: &'a Header) -> Chain<'a> {
        Chain { header, line: 0, last: None, count: 0, result: Ok(()) }
    }

    fn read(&mut self, r: &mut dyn Read) -> std::io::Result<()> {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            self.line += 1;
            let ends_file = buf.last() != Some(&b'\n') || r.fill_buf()?.is_empty();
            let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
            if let Err(e) = self.check(text, ends_file) {
                self.result = Err(e);
                return Ok(());
            }
        }
    }

    fn bad(&self, seq: Option<i64>, problem: Problem) -> VerifyError {
        VerifyError::Entry { line: self.line, seq, problem }
    }

    fn check(&mut self, text: &[u8], ends_file: bool) -> Result<(), VerifyError> {
        if text.is_empty() {
            return Err(self.bad(None, Problem::EmptyLine));
        }
        let value: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| self.bad(None, Problem::NotAnEntry(e.to_string())))?;
        let seq = value.get("seq").and_then(serde_json::Value::as_i64);
        let fields: Option<BTreeSet<&str>> = value.as_object().map(|o| o.keys().map(String::as_str).collect());
        if fields != Some(FIELDS.into_iter().collect()) {
            return Err(
                self.bad(seq, Problem::NotAnEntry(format!("expected exactly the fields {}", FIELDS.join(", "))))
            );
        }
        let e: Entry =
            serde_json::from_value(value).map_err(|err| self.bad(seq, Problem::NotAnEntry(err.to_string())))?;
        let seq = Some(e.seq);
        if e.sha256 != e.compute_sha256() {
            return Err(self.bad(seq, Problem::Hash));
        }
        match &self.last {
            None if e.prev_sha256 != self.header.anchor => return Err(self.bad(seq, Problem::Anchor)),
            Some(prev) if e.prev_sha256 != prev.sha256 => return Err(self.bad(seq, Problem::Prev)),
            Some(prev) if Some(e.seq) != prev.seq.checked_add(1) => {
                return Err(self.bad(seq, Problem::Seq(prev.seq.saturating_add(1))));
            }
            _ => {}
        }
        if e.repo != self.header.repo {
            return Err(self.bad(seq, Problem::Repo(e.repo.clone())));
        }
        let p = self.header.period;
        if e.at_ms < p.since_ms || e.at_ms > p.until_ms {
            return Err(self.bad(seq, Problem::OutsidePeriod(e.at_ms)));
        }
        self.count += 1;
        if ends_file && e.sha256 != self.header.head {
            return Err(self.bad(seq, Problem::Head));
        }
        self.last = Some(e);
        Ok(())
    }

    /// After the last line: the count, and the head of an export without lines.
    fn finish(&self) -> Result<(), VerifyError> {
        if self.count != self.header.entries {
            return Err(VerifyError::Count { found: self.count, expected: self.header.entries });
        }
        if self.count == 0 && (self.header.anchor != NONE || self.header.head != NONE) {
            return Err(manifest_err(0, format!("states an anchor and a head but {ENTRIES} is empty")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::super::export::{self, Evidence, manifest, write_zip};
    use super::*;
    use crate::store::Store;
    use crate::store::gate_runs::{NewGateRun, RunState};
    const REPO: &str = "acme/agents";

    /// A store with five chained entries and one completed run, and its export.
    async fn exported() -> (tempfile::TempDir, Evidence, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("e.db").display())).await.expect("open");
        for i in 0..5 {
            store
                .audit(REPO, Kind::Command, "jordan", Some(7), serde_json::json!({ "command": "rerun", "i": i }))
                .await
                .expect("append");
        }
        store.audit("acme/other", Kind::Override, "x", None, serde_json::json!({})).await.expect("append");
        let (run, _) = store
            .gate_run_for(&NewGateRun {
                repo: REPO,
                pr_number: 7,
                head_sha: "h",
                base_sha: "b",
                bundle: "demo",
                manifest: "agent/bundle.yaml",
                base_manifest: None,
                kind: crate::store::gate_runs::RunKind::Added,
                state: RunState::Queued,
            })
            .await
            .expect("run");
        let decided = crate::store::gate_runs::Decision {
            run_id: &run.id,
            guard: crate::store::gate_runs::Guard::NotCancelled,
            state: RunState::Completed,
            conclusion: "success",
            title: "gate passed: 1 regression, 1 fix",
            summary: "## demo\npassed, \"really\"\n",
            report: None,
            annotations: None,
            override_by: None,
            audit: None,
        };
        assert!(store.decide(&decided).await.expect("decide"));
        let period = export::Period::new(0, export::parse_date("2999-12-31", true).expect("date")).expect("period");
        let evidence = export::collect(&store, REPO, period).await.expect("collect");
        let zip = evidence.to_zip().expect("zip").zip;
        (dir, evidence, zip)
    }

    fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
        (0..zip.len())
            .map(|i| {
                let mut f = zip.by_index(i).expect("member");
                let mut b = Vec::new();
                f.read_to_end(&mut b).expect("read");
                (f.name().to_owned(), b)
            })
            .collect()
    }

    fn file<'a>(files: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
        &mut files.iter_mut().find(|(n, _)| n == name).expect("file in zip").1
    }

    /// Rezips with the MANIFEST's hashes recomputed (its header kept), as a forger would.
    fn rezip_resealed(evidence: &Evidence, mut files: Vec<(String, Vec<u8>)>) -> Vec<u8> {
        files.retain(|(n, _)| n != MANIFEST);
        let m = manifest(&evidence.header(), &files);
        files.insert(0, (MANIFEST.to_owned(), m.into_bytes()));
        write_zip(&files).expect("zip")
    }

    fn lines(files: &mut [(String, Vec<u8>)]) -> Vec<String> {
        String::from_utf8(file(files, ENTRIES).clone()).expect("utf8").lines().map(str::to_owned).collect()
    }

    fn set_lines(files: &mut [(String, Vec<u8>)], lines: &[String]) {
        *file(files, ENTRIES) = lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes();
    }

    #[tokio::test]
    async fn an_export_verifies_and_holds_what_spec_lists() {
        let (_dir, evidence, zip) = exported().await;
        let v = verify_bytes(&zip).expect("verifies");
        assert_eq!(v.header.entries, 5);
        assert_eq!(v.header.anchor, super::super::GENESIS);
        assert_eq!(v.header.head, evidence.entries[4].sha256);
        let mut files = unzip(&zip);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let report = format!("reports/{}.md", evidence.runs[0].id);
        assert_eq!(names, [MANIFEST, ENTRIES, "runs.csv", report.as_str()]);
        let csv = String::from_utf8(file(&mut files, "runs.csv").clone()).expect("utf8");
        assert!(csv.starts_with("id,pr_number,head_sha,base_sha,bundle,state,conclusion,title\r\n"), "{csv}");
        assert!(csv.contains(",7,h,b,demo,completed,success,\"gate passed: 1 regression, 1 fix\"\r\n"), "{csv}");
        assert_eq!(file(&mut files, &report), b"## demo\npassed, \"really\"\n");
        let m = String::from_utf8(file(&mut files, MANIFEST).clone()).expect("utf8");
        assert!(
            m.starts_with("evalgate evidence export v1\nrepo: acme/agents\nsince: 1970-01-01T00:00:00.000Z\n"),
            "{m}"
        );
        assert_eq!(lines(&mut files).len(), 5, "acme/other's entry is not exported");
        assert_eq!(evidence.to_zip().expect("zip").zip, zip, "the same data gives the same bytes");
    }

    #[tokio::test]
    async fn a_changed_field_fails_the_chain_even_with_a_resealed_manifest() {
        let (_dir, evidence, zip) = exported().await;
        let mut files = unzip(&zip);
        let mut l = lines(&mut files);
        l[2] = l[2].replace("\"actor\":\"jordan\"", "\"actor\":\"mallory\"");
        set_lines(&mut files, &l);
        let err = verify_bytes(&rezip_resealed(&evidence, files)).expect_err("tampered");
        assert_eq!(err.to_string(), "entries.jsonl line 3 (seq 3): sha256 does not match its content (changed)");
    }

    #[tokio::test]
    async fn a_changed_field_with_its_hash_recomputed_breaks_the_next_link() {
        let (_dir, evidence, zip) = exported().await;
        let mut files = unzip(&zip);
        let mut l = lines(&mut files);
        let mut e: Entry = serde_json::from_str(&l[1]).expect("entry");
        e.data["command"] = "override".into();
        e.sha256 = e.compute_sha256();
        l[1] = serde_json::to_string(&e).expect("json");
        set_lines(&mut files, &l);
        let err = verify_bytes(&rezip_resealed(&evidence, files)).expect_err("tampered");
        assert_eq!(
            err.to_string(),
            "entries.jsonl line 3 (seq 3): prev_sha256 does not match the entry before it (removed or reordered)"
        );
    }

    #[tokio::test]
    async fn a_removed_entry_fails() {
        let (_dir, evidence, zip) = exported().await;
        for (remove, want) in [
            (2, "entries.jsonl line 3 (seq 4): prev_sha256 does not match the entry before it (removed or reordered)"),
            (0, "entries.jsonl line 1 (seq 2): prev_sha256 is not the MANIFEST anchor"),
            (4, "entries.jsonl line 4 (seq 4): sha256 is not the MANIFEST head"),
        ] {
            let mut files = unzip(&zip);
            let mut l = lines(&mut files);
            l.remove(remove);
            set_lines(&mut files, &l);
            // Unsealed: the chain names the entry before the file hash would.
            let err = verify_bytes(&write_zip(&files).expect("zip")).expect_err("tampered");
            assert!(err.to_string().starts_with(want), "{err}");
            let err = verify_bytes(&rezip_resealed(&evidence, files)).expect_err("tampered");
            assert!(err.to_string().starts_with(want), "{err}");
        }
    }

    #[tokio::test]
    async fn swapped_entries_fail() {
        let (_dir, evidence, zip) = exported().await;
        let mut files = unzip(&zip);
        let mut l = lines(&mut files);
        l.swap(1, 2);
        set_lines(&mut files, &l);
        let err = verify_bytes(&rezip_resealed(&evidence, files)).expect_err("tampered");
        assert_eq!(
            err.to_string(),
            "entries.jsonl line 2 (seq 3): prev_sha256 does not match the entry before it (removed or reordered)"
        );
    }

    #[tokio::test]
    async fn an_inserted_entry_fails() {
        let (_dir, evidence, zip) = exported().await;
        let mut files = unzip(&zip);
        let mut l = lines(&mut files);
        let dup = l[1].clone();
        l.insert(2, dup);
        set_lines(&mut files, &l);
        let err = verify_bytes(&rezip_resealed(&evidence, files)).expect_err("tampered");
        assert!(err.to_string().starts_with("entries.jsonl line 3 (seq 2): prev_sha256"), "{err}");
    }

    type Edit = Box<dyn Fn(String) -> String>;

    #[tokio::test]
    async fn an_edited_manifest_fails() {
        let (_dir, evidence, zip) = exported().await;
        let report = format!("reports/{}.md", evidence.runs[0].id);
        let head = evidence.entries[4].sha256.clone();
        let cases: Vec<(Edit, String)> = vec![
            (
                Box::new(|m: String| {
                    let (a, b) = m.split_once("  runs.csv").expect("listed");
                    format!("{}{}  runs.csv{b}", &a[..a.len() - 64], "0".repeat(64))
                }),
                "`runs.csv` does not match its sha256 in MANIFEST (changed)".into(),
            ),
            (
                Box::new(|m: String| m.replace("entries: 5", "entries: 6")),
                "entries.jsonl holds 5 entries, MANIFEST says 6 (entries removed or added)".into(),
            ),
            (
                Box::new(move |m: String| m.replace(&format!("head: {head}"), &format!("head: {}", "a".repeat(64)))),
                "entries.jsonl line 5 (seq 5): sha256 is not the MANIFEST head (entries removed or added at the end)"
                    .into(),
            ),
            (
                Box::new(|m: String| m.replace("repo: acme/agents", "repo: acme/other")),
                "entries.jsonl line 1 (seq 1): belongs to repository `acme/agents`, not the MANIFEST's".into(),
            ),
            (
                Box::new(move |m: String| {
                    m.lines().filter(|l| !l.ends_with(&report)).map(|l| format!("{l}\n")).collect()
                }),
                format!("`reports/{}.md` is in the zip but not in MANIFEST (added)", evidence.runs[0].id),
            ),
            (
                Box::new(|m: String| m.replacen("repo", "rep", 1)),
                "MANIFEST line 2: expected `repo`, found `rep: acme/agents`".into(),
            ),
        ];
        for (edit, want) in cases {
            let mut files = unzip(&zip);
            let m = String::from_utf8(file(&mut files, MANIFEST).clone()).expect("utf8");
            *file(&mut files, MANIFEST) = edit(m).into_bytes();
            let err = verify_bytes(&write_zip(&files).expect("zip")).expect_err("tampered");
            assert_eq!(err.to_string(), want);
        }
    }

    #[tokio::test]
    async fn a_changed_removed_or_added_file_is_named() {
        let (_dir, evidence, zip) = exported().await;
        let report = format!("reports/{}.md", evidence.runs[0].id);
        let mut files = unzip(&zip);
        file(&mut files, &report).extend_from_slice(b"(and it was fine)");
        let err = verify_bytes(&write_zip(&files).expect("zip")).expect_err("tampered");
        assert_eq!(err, VerifyError::Changed(report.clone()));

        let mut files = unzip(&zip);
        files.retain(|(n, _)| n != &report);
        assert_eq!(verify_bytes(&write_zip(&files).expect("zip")), Err(VerifyError::Missing(report)));

        let mut files = unzip(&zip);
        files.push(("reports/forged.md".into(), b"x".to_vec()));
        assert_eq!(verify_bytes(&write_zip(&files).expect("zip")), Err(VerifyError::Extra("reports/forged.md".into())));

        let mut files = unzip(&zip);
        file(&mut files, ENTRIES).extend_from_slice(b"\n");
        let err = verify_bytes(&write_zip(&files).expect("zip")).expect_err("tampered");
        assert!(err.to_string().starts_with("entries.jsonl line 6: empty line"), "{err}");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(matches!(verify_bytes(b"not a zip"), Err(VerifyError::NotAZip(_))));
        assert!(matches!(verify_bytes(&[]), Err(VerifyError::NotAZip(_))));
        let only = |files: &[(&str, &[u8])]| {
            let files: Vec<(String, Vec<u8>)> = files.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect();
            verify_bytes(&write_zip(&files).expect("zip"))
        };
        assert_eq!(only(&[("x", b"y")]), Err(VerifyError::NoManifest));
        assert!(matches!(only(&[(MANIFEST, b"\xff\xfe")]), Err(VerifyError::Manifest { .. })));
        assert!(matches!(only(&[(MANIFEST, b"")]), Err(VerifyError::Manifest { line: 1, .. })));
        let header = "evalgate evidence export v1\nrepo: a/b\nsince: 2026-01-01T00:00:00.000Z\nuntil: 2026-01-02T00:00:00.000Z\nentries: 1\nanchor: none\nhead: none\n\n";
        for body in [&b"{"[..], b"[1,2]", b"{\"repo\":\"a/b\"}", b"\"x\"\n", b"{\"seq\":\"one\"}"] {
            let m = format!("{header}{}  {ENTRIES}\n", export::sha256_hex(body));
            let err = only(&[(MANIFEST, m.as_bytes()), (ENTRIES, body)]).expect_err("malformed");
            assert!(err.to_string().starts_with("entries.jsonl line 1"), "{err}");
        }
        // Every single corrupted byte of a small export is an error or (a harmless byte such as
        // a name's case) a result, never a panic.
        let m = format!("{header}{}  {ENTRIES}\n", export::sha256_hex(b""));
        let files = vec![(MANIFEST.to_owned(), m.into_bytes()), (ENTRIES.to_owned(), Vec::new())];
        let good = write_zip(&files).expect("zip");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            let _ = verify_bytes(&bad);
            let _ = verify_bytes(&good[..i]);
        }
    }

    #[test]
    fn an_empty_export_verifies() {
        let evidence = Evidence {
            repo: REPO.into(),
            period: export::Period::new(0, 1).expect("period"),
            entries: vec![],
            runs: vec![],
        };
        let v = verify_bytes(&evidence.to_zip().expect("zip").zip).expect("verifies");
        assert_eq!((v.header.entries, v.header.anchor.as_str(), v.files), (0, NONE, 2));
    }
}
