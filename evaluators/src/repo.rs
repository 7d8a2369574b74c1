//! Paths inside a customer's repository, and reading files without leaving it.
//!
//! Every file evalgate reads is named by a [`RepoPath`]: relative to the repository root,
//! `/`-separated, with no `.` or `..` segments. Joining a reference such as
//! `../../golden-sets/refund` is done lexically and fails if it climbs above the root; reading
//! through [`WorkTree`] resolves symlinks and fails if the real file lies outside the root.
//! The same `RepoPath` is what diagnostics print and what GitHub annotations need.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

impl RepoPath {
    /// The repository root itself.
    pub fn root() -> Self {
        RepoPath(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A repository-relative path from its `/`-separated text.
    pub fn parse(s: &str) -> Result<Self, String> {
        RepoPath::root().join(s)
    }

    /// `rel` taken from this folder, lexically: `.` is dropped, `..` climbs, and climbing above
    /// the repository root is an error, as are absolute paths and `\` separators.
    pub fn join(&self, rel: &str) -> Result<Self, String> {
        if rel.is_empty() {
            return Err("the path is empty".into());
        }
        if rel.starts_with('/') || rel.contains('\\') || rel.get(1..2) == Some(":") || rel.chars().any(char::is_control)
        {
            return Err(format!("`{rel}` must be a relative path with `/` separators"));
        }
        let mut parts: Vec<&str> = if self.0.is_empty() { Vec::new() } else { self.0.split('/').collect() };
        for seg in rel.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(format!("`{rel}` leads outside the repository"));
                    }
                }
                s => parts.push(s),
            }
        }
        Ok(RepoPath(parts.join("/")))
    }

    /// The folder holding this path (the root's parent is the root).
    pub fn parent(&self) -> RepoPath {
        match self.0.rfind('/') {
            Some(i) => RepoPath(self.0[..i].to_owned()),
            None => RepoPath::root(),
        }
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// This path as seen from folder `dir`, `/`-separated, with leading `..` where needed.
    /// Used by the canonical hashes so that moving a whole bundle keeps its hash.
    pub fn relative_to(&self, dir: &RepoPath) -> String {
        let to: Vec<&str> = self.0.split('/').filter(|s| !s.is_empty()).collect();
        let from: Vec<&str> = dir.0.split('/').filter(|s| !s.is_empty()).collect();
        let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
        let mut out: Vec<&str> = vec![".."; from.len() - common];
        out.extend(&to[common..]);
        out.join("/")
    }

    /// Is this path at or below `dir`?
    pub fn starts_with(&self, dir: &RepoPath) -> bool {
        dir.0.is_empty() || self.0 == dir.0 || self.0.strip_prefix(&dir.0).is_some_and(|r| r.starts_with('/'))
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str(".") } else { f.write_str(&self.0) }
    }
}

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not found")]
    NotFound,
    #[error("is not a regular file")]
    NotAFile,
    #[error("is a symlink that leads outside the repository")]
    OutsideRepo,
    #[error("is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("is not UTF-8 text")]
    NotUtf8,
    #[error("cannot be read: {0}")]
    Io(String),
}

/// A source of repository files: the working tree today; a commit of a git tree or GitHub's
/// contents API later. Implementations enforce the size limit before reading everything.
pub trait RepoFs {
    /// A reader over the file's bytes, after checking it exists, is a file inside the
    /// repository and is at most `max_bytes` long.
    fn open(&self, path: &RepoPath, max_bytes: u64) -> Result<Box<dyn Read + '_>, ReadError>;

    fn read(&self, path: &RepoPath, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
        let mut out = Vec::new();
        self.open(path, max_bytes)?
            .take(max_bytes + 1)
            .read_to_end(&mut out)
            .map_err(|e| ReadError::Io(e.to_string()))?;
        if out.len() as u64 > max_bytes {
            return Err(ReadError::TooLarge { size: out.len() as u64, limit: max_bytes });
        }
        Ok(out)
    }

    fn read_text(&self, path: &RepoPath, max_bytes: u64) -> Result<String, ReadError> {
        String::from_utf8(self.read(path, max_bytes)?).map_err(|_| ReadError::NotUtf8)
    }
}

/// The files of a checkout on disk.
#[derive(Debug, Clone)]
pub struct WorkTree {
    root: PathBuf,
}

impl WorkTree {
    /// A work tree rooted at `root` (resolved to its real path, so symlink checks compare real
    /// paths on both sides).
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(WorkTree { root: fs::canonicalize(root)? })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn disk_path(&self, path: &RepoPath) -> PathBuf {
        if path.as_str().is_empty() { self.root.clone() } else { self.root.join(path.as_str()) }
    }

    /// The repository path of a file on disk under the root.
    pub fn repo_path(&self, disk: &Path) -> Option<RepoPath> {
        let rel = disk.strip_prefix(&self.root).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        RepoPath::parse(&parts?.join("/")).ok().or_else(|| rel.as_os_str().is_empty().then(RepoPath::root))
    }

    /// Resolves symlinks and checks the real path stays under the root.
    fn resolve(&self, path: &RepoPath) -> Result<PathBuf, ReadError> {
        let real = fs::canonicalize(self.disk_path(path)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                // A dangling symlink is "not found" to canonicalize; say where it points if it
                // points outside.
                match fs::read_link(self.disk_path(path)) {
                    Ok(target)
                        if !self
                            .disk_path(path)
                            .parent()
                            .unwrap_or(&self.root)
                            .join(&target)
                            .starts_with(&self.root) =>
                    {
                        ReadError::OutsideRepo
                    }
                    _ => ReadError::NotFound,
                }
            }
            _ => ReadError::Io(e.to_string()),
        })?;
        if !real.starts_with(&self.root) {
            return Err(ReadError::OutsideRepo);
        }
        Ok(real)
    }
}

impl RepoFs for WorkTree {
    fn open(&self, path: &RepoPath, max_bytes: u64) -> Result<Box<dyn Read + '_>, ReadError> {
        let real = self.resolve(path)?;
        let meta = fs::metadata(&real).map_err(|e| ReadError::Io(e.to_string()))?;
        if !meta.is_file() {
            return Err(ReadError::NotAFile);
        }
        if meta.len() > max_bytes {
            return Err(ReadError::TooLarge { size: meta.len(), limit: max_bytes });
        }
        let file = fs::File::open(&real).map_err(|e| ReadError::Io(e.to_string()))?;
        Ok(Box::new(file))
    }
}

/// The repository root for a path given on the command line: the nearest folder at or above
/// it that holds `.git` or `.evalgate.yml`; the path itself when there is none.
pub fn find_root(start: &Path) -> std::io::Result<PathBuf> {
    let start = fs::canonicalize(start)?;
    let mut dir =
        if start.is_dir() { start.clone() } else { start.parent().map(Path::to_path_buf).unwrap_or(start.clone()) };
    let first = dir.clone();
    loop {
        if dir.join(".git").exists() || dir.join(".evalgate.yml").exists() {
            return Ok(dir);
        }
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => return Ok(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_normalises_lexically() {
        let dir = RepoPath::parse("agents/refund").unwrap();
        assert_eq!(dir.join("./prompts//system.md").unwrap().as_str(), "agents/refund/prompts/system.md");
        assert_eq!(dir.join("../../golden-sets/refund").unwrap().as_str(), "golden-sets/refund");
    }

    #[test]
    fn join_rejects_escapes_and_absolute_paths() {
        let dir = RepoPath::parse("agents/refund").unwrap();
        assert!(dir.join("../../../etc/passwd").unwrap_err().contains("outside the repository"));
        assert!(dir.join("/etc/passwd").is_err());
        assert!(dir.join("prompts\\system.md").is_err());
        assert!(dir.join("C:/x").is_err());
    }

    #[test]
    fn relative_to_climbs_with_dotdot() {
        let f = RepoPath::parse("golden-sets/refund/cases.jsonl").unwrap();
        assert_eq!(f.relative_to(&RepoPath::parse("agents/refund").unwrap()), "../../golden-sets/refund/cases.jsonl");
        assert_eq!(f.relative_to(&RepoPath::parse("golden-sets/refund").unwrap()), "cases.jsonl");
        assert_eq!(f.relative_to(&RepoPath::root()), "golden-sets/refund/cases.jsonl");
    }

    #[test]
    fn starts_with_respects_segment_boundaries() {
        let p = RepoPath::parse("agents/refund-2/x").unwrap();
        assert!(!p.starts_with(&RepoPath::parse("agents/refund").unwrap()));
        assert!(p.starts_with(&RepoPath::parse("agents").unwrap()));
        assert!(p.starts_with(&RepoPath::root()));
    }
}
