//! Reading a bundle as it was at a git revision (the base of `evalgate eval`), through the
//! `git` command, with the same limits and confinement as the working tree.

use anyhow::{Context as _, bail};
use evaluators::repo::{ReadError, RepoFs, RepoPath};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Symlinks followed inside a commit before giving up (a loop, or a chain too long to trust).
const MAX_LINK_HOPS: usize = 8;

/// The files of one commit.
pub struct GitTree {
    root: PathBuf,
    commit: String,
}

impl GitTree {
    /// The commit that `rev` names in the repository at `root`.
    pub fn at(root: &Path, rev: &str) -> anyhow::Result<GitTree> {
        if rev.starts_with('-') {
            bail!("`{rev}` is not a git revision");
        }
        let commit = git(root, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
            .with_context(|| format!("`{rev}` does not name a commit in {}", root.display()))?;
        Ok(GitTree { root: root.to_owned(), commit: commit.trim().to_owned() })
    }

    /// Whether the commit has a file (or symlink) at `path`.
    pub fn entry_exists(&self, path: &RepoPath) -> anyhow::Result<bool> {
        Ok(self.entry(path).map_err(|e| anyhow::anyhow!("reading {path} at {}: {e}", self.commit))?.is_some())
    }

    /// `(mode, object id, size)` of the entry at `path`, or `None` when the commit has none.
    fn entry(&self, path: &RepoPath) -> Result<Option<(String, String, Option<u64>)>, ReadError> {
        let out = git(&self.root, &["ls-tree", "-l", "-z", &self.commit, "--", path.as_str()])
            .map_err(|e| ReadError::Io(e.to_string()))?;
        let Some(line) = out.split('\0').find(|l| !l.is_empty()) else { return Ok(None) };
        let (meta, name) =
            line.split_once('\t').ok_or_else(|| ReadError::Io(format!("unexpected ls-tree line {line:?}")))?;
        if name != path.as_str() {
            return Ok(None);
        }
        let f: Vec<&str> = meta.split_whitespace().collect();
        match f.as_slice() {
            [mode, _kind, oid, size] => Ok(Some(((*mode).to_owned(), (*oid).to_owned(), size.parse().ok()))),
            _ => Err(ReadError::Io(format!("unexpected ls-tree line {line:?}"))),
        }
    }

    fn blob(&self, oid: &str) -> Result<Vec<u8>, ReadError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["cat-file", "blob", oid])
            .output()
            .map_err(|e| ReadError::Io(e.to_string()))?;
        if !out.status.success() {
            return Err(ReadError::Io(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
        }
        Ok(out.stdout)
    }
}

impl RepoFs for GitTree {
    fn open(&self, path: &RepoPath, max_bytes: u64) -> Result<Box<dyn Read + '_>, ReadError> {
        let mut path = path.clone();
        for _ in 0..=MAX_LINK_HOPS {
            let Some((mode, oid, size)) = self.entry(&path)? else { return Err(ReadError::NotFound) };
            match mode.as_str() {
                "120000" => {
                    let target = String::from_utf8(self.blob(&oid)?).map_err(|_| ReadError::NotUtf8)?;
                    path = path.parent().join(&target).map_err(|_| ReadError::OutsideRepo)?;
                }
                "100644" | "100755" => {
                    let size = size.unwrap_or(0);
                    if size > max_bytes {
                        return Err(ReadError::TooLarge { size, limit: max_bytes });
                    }
                    return Ok(Box::new(std::io::Cursor::new(self.blob(&oid)?)));
                }
                _ => return Err(ReadError::NotAFile),
            }
        }
        Err(ReadError::Io(format!("more than {MAX_LINK_HOPS} symlinks in a row")))
    }
}

/// The merge-base of HEAD with the default branch: `origin/HEAD` when the clone knows it,
/// else the first of `origin/main`, `origin/master`, `main`, `master` that exists.
pub fn default_base(root: &Path) -> anyhow::Result<String> {
    let mut candidates = Vec::new();
    if let Ok(r) = git(root, &["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"]) {
        candidates.push(r.trim().to_owned());
    }
    candidates.extend(["origin/main", "origin/master", "main", "master"].map(String::from));
    for c in &candidates {
        if git(root, &["rev-parse", "--verify", "--quiet", &format!("{c}^{{commit}}")]).is_ok() {
            let base =
                git(root, &["merge-base", "HEAD", c]).with_context(|| format!("no merge-base between HEAD and {c}"))?;
            return Ok(base.trim().to_owned());
        }
    }
    bail!(
        "cannot find the default branch (tried origin/HEAD, origin/main, origin/master, main, master): pass --base-ref REF"
    )
}

/// The path `manifest` had at `rev` when the change since then moved it there (git's rename
/// detection between `rev` and the working tree), if it did.
pub fn renamed_from(root: &Path, rev: &str, manifest: &RepoPath) -> anyhow::Result<Option<RepoPath>> {
    let out = git(root, &["diff", "--name-status", "--find-renames", "-z", rev, "--"])?;
    let mut fields = out.split('\0');
    while let Some(status) = fields.next() {
        if status.starts_with('R') || status.starts_with('C') {
            let (Some(old), Some(new)) = (fields.next(), fields.next()) else { break };
            if status.starts_with('R') && new == manifest.as_str() {
                return Ok(RepoPath::parse(old).ok());
            }
        } else if fields.next().is_none() {
            break;
        }
    }
    Ok(None)
}

fn git(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git").arg("-C").arg(root).args(args).output().context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    String::from_utf8(out.stdout).context("git printed something that is not UTF-8")
}
