//! A commit's files as GitHub serves them, behind the same [`RepoFs`] the loaders read the
//! working tree through. The tree listing (paths, modes, sizes) is fetched once; blobs are
//! fetched when a loader first asks for them. Loaders are synchronous, so a read of a blob not
//! yet fetched fails and is remembered; [`CommitTree::load`] fetches what was missed and runs
//! the loader again, until a run misses nothing. Sizes are checked against the listing before
//! anything is fetched, and symlinks are resolved inside the repository only.

use super::client::{GitHubError, Installation};
use evaluators::repo::{ReadError, RepoFs, RepoPath};
use futures_util::StreamExt as _;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};

/// Symlinks followed before giving up (a loop, or a chain too long to trust).
const MAX_LINK_HOPS: usize = 8;
/// Loader runs before giving up: each run can only discover files the previous one named.
const MAX_ROUNDS: usize = 8;
/// Blobs fetched at once.
const FETCH_CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
struct Entry {
    mode: String,
    sha: String,
    size: Option<u64>,
    is_tree: bool,
}

/// One commit of one repository.
pub struct CommitTree {
    repo: String,
    sha: String,
    entries: HashMap<String, Entry>,
    blobs: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    misses: Mutex<BTreeSet<String>>,
}

/// Marks reads that failed only because the blob was not fetched yet.
const NOT_FETCHED: &str = "not fetched yet";

impl CommitTree {
    pub async fn fetch(gh: &Installation, repo: &str, sha: &str) -> Result<CommitTree, GitHubError> {
        let listing = gh.tree(repo, sha).await?;
        let entries = listing
            .into_iter()
            .map(|e| {
                let entry = Entry { is_tree: e.kind == "tree", mode: e.mode, sha: e.sha, size: e.size };
                (e.path, entry)
            })
            .collect();
        Ok(CommitTree {
            repo: repo.to_owned(),
            sha: sha.to_owned(),
            entries,
            blobs: Mutex::default(),
            misses: Mutex::default(),
        })
    }

    /// Every file path of the commit (not folders).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter(|(_, e)| !e.is_tree).map(|(p, _)| p.as_str())
    }

    /// The files that differ between `self` (the older commit) and `newer`: content or mode
    /// changed, added or removed, as a pull request's file list would name them (no renames).
    /// Read from both listings, so no file cap applies.
    pub fn changed_files(&self, newer: &CommitTree) -> Vec<super::api::PrFile> {
        let differs = |p: &str, e: &Entry| match newer.entries.get(p) {
            Some(n) => n.is_tree != e.is_tree || n.sha != e.sha || n.mode != e.mode,
            None => true,
        };
        let mut out: BTreeSet<&str> =
            self.entries.iter().filter(|(p, e)| !e.is_tree && differs(p, e)).map(|(p, _)| p.as_str()).collect();
        out.extend(
            newer.entries.iter().filter(|(p, e)| !e.is_tree && !self.entries.contains_key(*p)).map(|(p, _)| p.as_str()),
        );
        out.into_iter().map(|p| super::api::PrFile { filename: p.to_owned(), previous_filename: None }).collect()
    }

    /// Runs `f` over the tree, fetching the blobs it asks for, until it needs nothing more.
    pub async fn load<T>(&self, gh: &Installation, f: impl Fn(&CommitTree) -> T) -> Result<T, GitHubError> {
        for _ in 0..MAX_ROUNDS {
            let out = f(self);
            let misses = std::mem::take(&mut *self.misses.lock().unwrap_or_else(|p| p.into_inner()));
            if misses.is_empty() {
                return Ok(out);
            }
            let fetched: Vec<_> = futures_util::stream::iter(misses)
                .map(|sha| async move { gh.blob(&self.repo, &sha).await.map(|b| (sha, b)) })
                .buffer_unordered(FETCH_CONCURRENCY)
                .collect()
                .await;
            let mut blobs = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
            for r in fetched {
                let (sha, bytes) = r?;
                blobs.insert(sha, Arc::new(bytes));
            }
        }
        Err(GitHubError::Setup(format!(
            "reading {} at {}: the files kept naming new files after {MAX_ROUNDS} rounds",
            self.repo, self.sha
        )))
    }

    fn blob(&self, sha: &str) -> Result<Arc<Vec<u8>>, ReadError> {
        if let Some(b) = self.blobs.lock().unwrap_or_else(|p| p.into_inner()).get(sha) {
            return Ok(b.clone());
        }
        self.misses.lock().unwrap_or_else(|p| p.into_inner()).insert(sha.to_owned());
        Err(ReadError::Io(NOT_FETCHED.into()))
    }
}

impl RepoFs for CommitTree {
    fn open(&self, path: &RepoPath, max_bytes: u64) -> Result<Box<dyn Read + '_>, ReadError> {
        let mut current = path.clone();
        for _ in 0..=MAX_LINK_HOPS {
            let entry = self.entries.get(current.as_str()).ok_or(ReadError::NotFound)?;
            if entry.is_tree {
                return Err(ReadError::NotAFile);
            }
            if entry.mode == "120000" {
                let target = self.blob(&entry.sha)?;
                let target = std::str::from_utf8(&target).map_err(|_| ReadError::OutsideRepo)?;
                if target.starts_with('/') {
                    return Err(ReadError::OutsideRepo);
                }
                current = current.parent().join(target).map_err(|_| ReadError::OutsideRepo)?;
                continue;
            }
            if entry.mode == "160000" {
                // A submodule: its files are in another repository.
                return Err(ReadError::NotAFile);
            }
            if let Some(size) = entry.size {
                if size > max_bytes {
                    return Err(ReadError::TooLarge { size, limit: max_bytes });
                }
            }
            let bytes = self.blob(&entry.sha)?;
            if bytes.len() as u64 > max_bytes {
                return Err(ReadError::TooLarge { size: bytes.len() as u64, limit: max_bytes });
            }
            return Ok(Box::new(std::io::Cursor::new(SharedBytes(bytes))));
        }
        Err(ReadError::Io(format!("more than {MAX_LINK_HOPS} symlinks in a row")))
    }
}

struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
