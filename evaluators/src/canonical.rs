//! The canonical forms behind the bundle hash and the golden-set pin.
//!
//! Both are the SHA-256 of a small manifest text, in the style of `sha256sum`'s output:
//!
//! ```text
//! evalgate-bundle-v1                       (or evalgate-golden-set-v1)
//! <sha256 hex of file 1's bytes>  <path 1>
//! <sha256 hex of file 2's bytes>  <path 2>
//! ```
//!
//! - Each line ends in `\n`; the hex is lowercase; two spaces separate hash and path.
//! - Paths are relative to the bundle's (or golden set's) folder, `/`-separated, without `.`
//!   segments; a file outside the folder starts with `..` segments (`../shared/rubric.md`).
//!   So the hash does not depend on the OS, the checkout location or where the folder sits.
//! - Lines are sorted by path, comparing bytes; a file referenced twice appears once.
//! - File bytes are hashed exactly as stored: no line-ending or encoding normalisation, so any
//!   change to any referenced byte changes the hash.
//!
//! Which files: for a bundle, `bundle.yaml`, its prompt, its tools file and its judge rubric
//! (the golden set enters through the pin inside `bundle.yaml`); for a golden set,
//! `golden.yaml` and `cases.jsonl`. Anyone can recompute either with `sha256sum`:
//! `{ echo evalgate-bundle-v1; sha256sum bundle.yaml prompts/system.md rubric.md tools.yaml; } | sha256sum`
//! (files listed in byte order of their paths).

use crate::ids::Sha256;
use crate::repo::RepoPath;
use std::collections::BTreeMap;

pub const BUNDLE_DOMAIN: &str = "evalgate-bundle-v1";
pub const GOLDEN_SET_DOMAIN: &str = "evalgate-golden-set-v1";

/// Accumulates files (already hashed) and produces the canonical hash.
#[derive(Debug, Clone)]
pub struct CanonicalHasher {
    domain: &'static str,
    base: RepoPath,
    files: BTreeMap<String, Sha256>,
}

impl CanonicalHasher {
    pub fn new(domain: &'static str, base: &RepoPath) -> Self {
        CanonicalHasher { domain, base: base.clone(), files: BTreeMap::new() }
    }

    pub fn add(&mut self, path: &RepoPath, file_sha256: Sha256) {
        self.files.insert(path.relative_to(&self.base), file_sha256);
    }

    pub fn add_bytes(&mut self, path: &RepoPath, bytes: &[u8]) {
        self.add(path, Sha256::digest(bytes));
    }

    /// The manifest text whose SHA-256 is the hash (shown by `--explain`-style tooling and
    /// tests; it is what an auditor recomputes).
    pub fn manifest(&self) -> String {
        let mut out = format!("{}\n", self.domain);
        for (path, sha) in &self.files {
            out.push_str(&format!("{}  {}\n", sha.hex(), path));
        }
        out
    }

    pub fn finish(&self) -> Sha256 {
        Sha256::digest(self.manifest().as_bytes())
    }
}

/// A reader that hashes what passes through it, so a large file is hashed while it is parsed.
pub struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        use sha2::Digest;
        HashingReader { inner, hasher: sha2::Sha256::new() }
    }

    pub fn finish(self) -> Sha256 {
        use sha2::Digest;
        Sha256::from_bytes(self.hasher.finalize().into())
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_sorted_relative_and_sha256sum_shaped() {
        let base = RepoPath::parse("agents/refund").unwrap();
        let mut h = CanonicalHasher::new(BUNDLE_DOMAIN, &base);
        h.add_bytes(&base.join("tools.yaml").unwrap(), b"t");
        h.add_bytes(&base.join("bundle.yaml").unwrap(), b"b");
        h.add_bytes(&base.join("../shared/rubric.md").unwrap(), b"r");
        let m = h.manifest();
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[0], "evalgate-bundle-v1");
        assert!(lines[1].ends_with("  ../shared/rubric.md"));
        assert!(lines[2].ends_with("  bundle.yaml"));
        assert!(lines[3].ends_with("  tools.yaml"));
        assert_eq!(&lines[2][..64], Sha256::digest(b"b").hex());
    }

    #[test]
    fn the_same_folder_elsewhere_hashes_the_same() {
        let a = RepoPath::parse("a/x").unwrap();
        let b = RepoPath::parse("deep/er/x").unwrap();
        let mut ha = CanonicalHasher::new(BUNDLE_DOMAIN, &a);
        let mut hb = CanonicalHasher::new(BUNDLE_DOMAIN, &b);
        ha.add_bytes(&a.join("bundle.yaml").unwrap(), b"same");
        hb.add_bytes(&b.join("bundle.yaml").unwrap(), b"same");
        assert_eq!(ha.finish(), hb.finish());
    }

    #[test]
    fn domains_separate_bundle_and_golden_hashes() {
        let base = RepoPath::parse("x").unwrap();
        let mut a = CanonicalHasher::new(BUNDLE_DOMAIN, &base);
        let mut b = CanonicalHasher::new(GOLDEN_SET_DOMAIN, &base);
        a.add_bytes(&base.join("f").unwrap(), b"1");
        b.add_bytes(&base.join("f").unwrap(), b"1");
        assert_ne!(a.finish(), b.finish());
    }
}

/// A key for content-addressed results: SHA-256 over parts, each preceded by its length, so
/// no two different part lists hash alike (`["ab","c"]` ≠ `["a","bc"]`). The first part is a
/// domain string that versions the key's layout.
pub fn key_of(parts: &[&str]) -> Sha256 {
    let mut buf = Vec::new();
    for p in parts {
        buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
        buf.extend_from_slice(p.as_bytes());
    }
    Sha256::digest(&buf)
}

#[cfg(test)]
mod key_tests {
    use super::key_of;

    #[test]
    fn parts_are_length_delimited() {
        assert_ne!(key_of(&["ab", "c"]), key_of(&["a", "bc"]));
        assert_eq!(key_of(&["a", "b"]), key_of(&["a", "b"]));
    }
}
