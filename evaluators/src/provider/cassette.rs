//! Record and replay of model exchanges (`evalgate eval --record FILE` / `--replay FILE`).
//!
//! An exchange is keyed by SHA-256 over a domain line, the provider, the nonce (which sample or
//! vote of otherwise identical requests this is) and the exact request body bytes. The file is
//! JSON Lines, one exchange per line, sorted by key:
//!
//! ```text
//! {"key":"<64 hex>","provider":"anthropic","model":"claude-…","nonce":0,"latency_ms":812,"body":"<raw reply>"}
//! ```
//!
//! `body` is the provider's successful reply exactly as received, so a replay reads the same
//! bytes through the same parser, and `latency_ms` is the recorded latency, so a replayed run
//! reproduces the recorded report bit for bit.

use super::{anthropic, openai};
use crate::snapshot::Provider;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The first line hashed into every key; a new key scheme gets a new line.
pub const KEY_DOMAIN: &str = "evalgate-cassette-v1";

/// The key of one exchange.
pub fn key(provider: Provider, nonce: u32, request_body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(KEY_DOMAIN.as_bytes());
    h.update(b"\n");
    h.update(provider.as_str().as_bytes());
    h.update(b"\n");
    h.update(nonce.to_string().as_bytes());
    h.update(b"\n");
    h.update(request_body);
    hex(&h.finalize())
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One recorded exchange: one line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub key: String,
    #[serde(deserialize_with = "provider_name")]
    pub provider: Provider,
    /// The snapshot id, for people reading the file.
    pub model: String,
    pub nonce: u32,
    pub latency_ms: u64,
    /// The raw successful reply body.
    pub body: String,
}

fn provider_name<'de, D: Deserializer<'de>>(d: D) -> Result<Provider, D::Error> {
    let s = String::deserialize(d)?;
    Provider::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!("unknown provider `{s}` (expected one of {:?})", Provider::NAMES))
    })
}

/// How big a cassette may be. The defaults hold tens of thousands of exchanges; the limits keep
/// a wrong path (a disk image, a log) from being read into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CassetteLimits {
    pub max_file_bytes: u64,
    pub max_line_bytes: usize,
}

impl Default for CassetteLimits {
    fn default() -> Self {
        CassetteLimits { max_file_bytes: 512 << 20, max_line_bytes: 64 << 20 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: the cassette is larger than its limit of {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}:{line}: {message}", path.display())]
    Line { path: PathBuf, line: usize, message: String },
    #[error("{}:{line}: key {key} is already recorded at line {first} with a different reply", path.display())]
    Duplicate { path: PathBuf, line: usize, first: usize, key: String },
}

/// A loaded cassette: every entry checked, by key.
#[derive(Debug, Clone)]
pub struct Cassette {
    entries: HashMap<String, Entry>,
    /// SHA-256 of the file's bytes as read: which cassette answered (see [`Cassette::sha256`]).
    sha256: String,
}

impl Default for Cassette {
    /// No entries, as loaded from an empty file.
    fn default() -> Self {
        Cassette { entries: HashMap::new(), sha256: hex(&Sha256::digest(b"")) }
    }
}

impl Cassette {
    /// Loads `path` within the default limits.
    pub fn load(path: &Path) -> Result<Cassette, CassetteError> {
        Cassette::load_with(path, CassetteLimits::default())
    }

    /// Loads `path`, checking every line: a valid entry whose body the provider's parser reads.
    /// The first problem is the error, with its file and line.
    pub fn load_with(path: &Path, limits: CassetteLimits) -> Result<Cassette, CassetteError> {
        let io = |source| CassetteError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() > limits.max_file_bytes {
            return Err(CassetteError::TooLarge { path: path.to_owned(), limit: limits.max_file_bytes });
        }
        // Bounded again while reading: the file may grow after the size was checked.
        let mut reader = BufReader::new(file.take(limits.max_file_bytes.saturating_add(1)));
        let mut loader = Loader { path, entries: HashMap::new(), first_line: HashMap::new(), read: 0 };
        let mut file_hash = Sha256::new();
        let mut buf = Vec::new();
        for line in 1.. {
            buf.clear();
            let n = (&mut reader).take(limits.max_line_bytes as u64 + 1).read_until(b'\n', &mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            loader.read += n as u64;
            file_hash.update(&buf);
            if loader.read > limits.max_file_bytes {
                return Err(CassetteError::TooLarge { path: path.to_owned(), limit: limits.max_file_bytes });
            }
            let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content.len() > limits.max_line_bytes {
                return Err(loader.line_error(line, format!("line is longer than {} bytes", limits.max_line_bytes)));
            }
            loader.add(line, content)?;
        }
        Ok(Cassette { entries: loader.entries, sha256: hex(&file_hash.finalize()) })
    }

    /// The lowercase hex SHA-256 of the cassette file's bytes: answers it gives are evidence of
    /// this file, and are cached under it.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn lookup(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

struct Loader<'a> {
    path: &'a Path,
    entries: HashMap<String, Entry>,
    first_line: HashMap<String, usize>,
    read: u64,
}

impl Loader<'_> {
    fn line_error(&self, line: usize, message: String) -> CassetteError {
        CassetteError::Line { path: self.path.to_owned(), line, message }
    }

    fn add(&mut self, line: usize, content: &[u8]) -> Result<(), CassetteError> {
        if content.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let entry: Entry =
            serde_json::from_slice(content).map_err(|e| self.line_error(line, format!("not a cassette entry: {e}")))?;
        check_entry(&entry).map_err(|m| self.line_error(line, m))?;
        if let Some(first) = self.entries.get(&entry.key) {
            if first.body != entry.body {
                let first = self.first_line.get(&entry.key).copied().unwrap_or(0);
                return Err(CassetteError::Duplicate { path: self.path.to_owned(), line, first, key: entry.key });
            }
            return Ok(());
        }
        self.first_line.insert(entry.key.clone(), line);
        self.entries.insert(entry.key.clone(), entry);
        Ok(())
    }
}

/// A well-formed key, and a body the provider's own parser reads, so a replay cannot fail
/// half-way through a run on a bad entry.
fn check_entry(e: &Entry) -> Result<(), String> {
    if e.key.len() != 64 || !e.key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("`key` must be 64 lowercase hex digits, found `{}`", e.key));
    }
    parse_body(e.provider, &e.body)
        .map(|_| ())
        .map_err(|d| format!("`body` is not a readable {} reply: {d}", e.provider))
}

/// Reads a recorded body with the provider's parser.
pub fn parse_body(provider: Provider, body: &str) -> Result<super::ChatResponse, String> {
    match provider {
        Provider::Anthropic => anthropic::parse_response(body.as_bytes()),
        Provider::Openai => openai::parse_response(body.as_bytes()),
    }
}

/// Collects exchanges as a run makes them (from many tasks at once) and writes them as one
/// cassette at the end. The first exchange recorded for a key is kept.
#[derive(Debug, Default)]
pub struct Recorder {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder::default()
    }

    pub fn record(&self, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.entry(entry.key.clone()).or_insert(entry);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every entry, sorted by key, to a temporary file beside `path`, then renames it
    /// over `path`: a reader never sees half a cassette, and the same exchanges always give
    /// the same bytes.
    pub fn write(&self, path: &Path) -> Result<(), CassetteError> {
        let text = self.render();
        let limit = CassetteLimits::default().max_file_bytes;
        if text.len() as u64 > limit {
            return Err(CassetteError::TooLarge { path: path.to_owned(), limit });
        }
        let io = |source| CassetteError::Io { path: path.to_owned(), source };
        let tmp = temp_path(path);
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(())
    }

    fn render(&self) -> String {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for entry in entries.values() {
            // An Entry is strings and integers: serialising it cannot fail.
            if let Ok(line) = serde_json::to_string(entry) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

/// `dir/.name.tmp-PID` beside `path`, so the rename stays on one file system.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "cassette".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;

    fn entry(key: &str, body: &str) -> Entry {
        Entry {
            key: key.to_owned(),
            provider: Provider::Anthropic,
            model: "claude-opus-4-6".into(),
            nonce: 0,
            latency_ms: 5,
            body: body.into(),
        }
    }

    fn line(e: &Entry) -> String {
        serde_json::to_string(e).expect("entry serialises")
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn keys_depend_on_provider_nonce_and_every_body_byte() {
        let k = key(Provider::Anthropic, 0, b"{}");
        assert_eq!(k.len(), 64);
        assert_ne!(k, key(Provider::Openai, 0, b"{}"));
        assert_ne!(k, key(Provider::Anthropic, 1, b"{}"));
        assert_ne!(k, key(Provider::Anthropic, 0, b"{ }"));
        assert_eq!(k, key(Provider::Anthropic, 0, b"{}"));
    }

    #[test]
    fn recorded_entries_load_back_and_are_written_sorted() {
        let r = Recorder::new();
        r.record(entry(&"b".repeat(64), BODY));
        r.record(entry(&"a".repeat(64), BODY));
        r.record(entry(&"a".repeat(64), "ignored: the first is kept"));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.jsonl");
        r.write(&path).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with(r#"{"key":"aaaa"#), "{text}");
        assert_eq!(text.lines().count(), 2);
        let c = Cassette::load(&path).expect("load");
        assert_eq!(c.lookup(&"a".repeat(64)), Some(&entry(&"a".repeat(64), BODY)));
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1, "temp file left behind");
    }

    #[test]
    fn a_duplicate_key_with_another_reply_names_both_lines() {
        let k = "c".repeat(64);
        let other = BODY.replace("hi", "ho");
        let (_d, path) = write(&format!("{}\n\n{}\n", line(&entry(&k, BODY)), line(&entry(&k, &other))));
        let e = Cassette::load(&path).unwrap_err().to_string();
        assert!(
            e.ends_with(&format!("c.jsonl:3: key {k} is already recorded at line 1 with a different reply")),
            "{e}"
        );
    }

    #[test]
    fn bad_entries_are_named_by_line() {
        let good = line(&entry(&"d".repeat(64), BODY));
        for (bad, says) in [
            ("{\"key\":1}".to_owned(), "not a cassette entry"),
            (line(&entry("short", BODY)), "`key` must be 64 lowercase hex digits"),
            (line(&entry(&"e".repeat(64), "{}")), "`body` is not a readable anthropic reply: `content` is missing"),
            (good.replace("anthropic", "mistral"), "unknown provider `mistral`"),
        ] {
            let (_d, path) = write(&format!("{good}\n{bad}\n"));
            let e = Cassette::load(&path).unwrap_err().to_string();
            assert!(e.contains("c.jsonl:2: ") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn size_limits_hold_for_the_file_and_for_each_line() {
        let good = line(&entry(&"d".repeat(64), BODY));
        let (_d, path) = write(&format!("{good}\n{good}\n"));
        let small_file = CassetteLimits { max_file_bytes: good.len() as u64, max_line_bytes: 1 << 20 };
        assert!(matches!(Cassette::load_with(&path, small_file), Err(CassetteError::TooLarge { .. })));
        let short_lines = CassetteLimits { max_file_bytes: 1 << 20, max_line_bytes: good.len() - 1 };
        let e = Cassette::load_with(&path, short_lines).unwrap_err().to_string();
        assert!(e.contains("c.jsonl:1: line is longer than"), "{e}");
        let exact = CassetteLimits { max_file_bytes: 1 << 20, max_line_bytes: good.len() };
        assert_eq!(Cassette::load_with(&path, exact).expect("fits").len(), 1);
    }

    #[test]
    fn the_hash_is_over_the_files_bytes_as_read() {
        let text = format!("{}\n", line(&entry(&"d".repeat(64), BODY)));
        let (_d, path) = write(&text);
        let c = Cassette::load(&path).expect("loads");
        assert_eq!(c.sha256(), hex(&Sha256::digest(text.as_bytes())));
        // The same entries in other bytes are another cassette.
        let (_d2, other) = write(&format!("\n{text}"));
        assert_ne!(Cassette::load(&other).expect("loads").sha256(), c.sha256());
        assert_eq!(Cassette::default().sha256(), hex(&Sha256::digest(b"")));
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let e = Cassette::load(Path::new("/nonexistent/c.jsonl")).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/c.jsonl: "), "{e}");
    }
}
