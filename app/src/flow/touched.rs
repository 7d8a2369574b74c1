//! Which bundles a pull request touches, and how each head bundle pairs with its base.
//!
//! A bundle is identified by the path of its `bundle.yaml` (SPEC, "Bundle identity"). Both
//! sides are discovered with the **base** branch's `.evalgate.yml`, so a pull request cannot
//! hide its bundle by narrowing the globs. Head and base pair by manifest path; a manifest the
//! pull request moves (a rename in its file list) pairs with its old path. A name used by two
//! manifests at head is a duplicate: neither is evaluated, and the check fails naming both.

use crate::github::api::PrFile;
use crate::github::tree::CommitTree;
use crate::github::{GitHubError, Installation};
use crate::store::gate_runs::RunKind;
use evaluators::config::{self, RepoConfig};
use evaluators::diagnostic::Diagnostics;
use evaluators::ids::{BundleName, Sha256};
use evaluators::repo::RepoPath;
use evaluators::workspace::{self, References};
use std::collections::{BTreeMap, BTreeSet};

/// GitHub lists at most this many files of a pull request, without saying it stopped.
const MAX_LISTED_FILES: usize = 3_000;

/// One touched bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Touched {
    pub name: String,
    /// Its identity: the manifest at head, or at base for a removed bundle.
    pub manifest: RepoPath,
    pub head: Option<RepoPath>,
    pub base: Option<RepoPath>,
    /// For a duplicate name: the error naming every manifest that uses it.
    pub duplicate: Option<String>,
}

impl Touched {
    pub fn kind(&self) -> RunKind {
        match (&self.duplicate, &self.head, &self.base) {
            (Some(_), _, _) => RunKind::Duplicate,
            (None, Some(_), Some(_)) => RunKind::Paired,
            (None, Some(_), None) => RunKind::Added,
            (None, None, _) => RunKind::Removed,
        }
    }
}

/// `.evalgate.yml` of one side; an invalid one gives the defaults plus its problems.
pub async fn config_of(gh: &Installation, tree: &CommitTree) -> Result<(RepoConfig, Diagnostics), GitHubError> {
    tree.load(gh, |t| {
        let mut d = Diagnostics::new();
        let cfg = config::load(t, &mut d);
        (cfg, d)
    })
    .await
}

pub async fn find(
    gh: &Installation,
    base: &CommitTree,
    head: &CommitTree,
    files: &[PrFile],
) -> Result<Vec<Touched>, GitHubError> {
    // The base's globs decide discovery on both sides.
    let (cfg, _) = config_of(gh, base).await?;
    let base_manifests = workspace::match_bundles(&cfg, base.paths()).map_err(GitHubError::Setup)?;
    let head_manifests = workspace::match_bundles(&cfg, head.paths()).map_err(GitHubError::Setup)?;
    let refs = |tree: &CommitTree, manifests: &[RepoPath]| {
        manifests
            .iter()
            .map(|m| (m.clone(), workspace::references(tree, m)))
            .collect::<BTreeMap<RepoPath, References>>()
    };
    let base_refs = base.load(gh, |t| refs(t, &base_manifests)).await?;
    let (head_refs, duplicates) =
        head.load(gh, |t| (refs(t, &head_manifests), workspace::duplicate_names(t, &head_manifests))).await?;
    let changed: Vec<&str> =
        files.iter().flat_map(|f| std::iter::once(f.filename.as_str()).chain(f.previous_filename.as_deref())).collect();
    let renamed_from: BTreeMap<&str, &str> =
        files.iter().filter_map(|f| Some((f.filename.as_str(), f.previous_filename.as_deref()?))).collect();
    // A change to `.evalgate.yml` (lints, prices, pinned ids) can change any bundle's result, and
    // a file list at GitHub's cap (3,000 files) may be missing the path that matters: either way
    // every bundle counts as touched.
    let everything = changed.contains(&config::FILE_NAME) || files.len() >= MAX_LISTED_FILES;
    let touches = |r: Option<&References>| everything || r.is_some_and(|r| changed.iter().any(|p| r.touched_by(p)));
    // The name a check is given: the manifest's `bundle:` (or its folder's name), when it is a
    // valid name. Anything else — a reserved name (`golden-set`), a long or odd string — would
    // name a check run as the pull request wishes, so it becomes a name no valid bundle can
    // clash with; the bundle fails as invalid under it.
    let name_of = |m: &RepoPath, r: Option<&References>| {
        let given = r.and_then(|r| r.name.clone()).unwrap_or_else(|| m.parent().file_name().to_owned());
        match BundleName::parse(&given) {
            Ok(_) => given,
            // `.` is in no valid name, so this never equals one.
            Err(_) => format!("invalid.{}", &Sha256::digest(m.as_str().as_bytes()).hex()[..12]),
        }
    };

    let mut out: Vec<Touched> = Vec::new();
    let mut paired_bases = BTreeSet::new();
    let mut touched_names = BTreeSet::new();
    for m in &head_manifests {
        let base_path = if base_refs.contains_key(m) {
            Some(m.clone())
        } else {
            renamed_from
                .get(m.as_str())
                .and_then(|old| RepoPath::parse(old).ok())
                .filter(|old| base_refs.contains_key(old) && !head_refs.contains_key(old))
        };
        if let Some(b) = &base_path {
            paired_bases.insert(b.clone());
        }
        let h = head_refs.get(m);
        let touched = touches(h) || touches(base_path.as_ref().and_then(|b| base_refs.get(b)));
        let name = name_of(m, h);
        if touched {
            touched_names.insert(name.clone());
        }
        out.push(Touched { name, manifest: m.clone(), head: Some(m.clone()), base: base_path, duplicate: None });
    }
    // A duplicate name fails every manifest that gives it, once any of them is touched (a
    // decoy the pull request adds names the bundle it shadows).
    for d in &duplicates {
        for (m, _) in &d.manifests {
            if let Some(t) = out.iter_mut().find(|t| t.manifest == *m) {
                t.duplicate = Some(d.message_for(m));
            }
        }
    }
    let mut out: Vec<Touched> = out.into_iter().filter(|t| touched_names.contains(&t.name)).collect();
    // A base manifest nothing at head pairs with is removed (gone, or moved out of the globs)…
    let mut removed: Vec<Touched> = base_refs
        .iter()
        .filter(|(m, r)| !paired_bases.contains(*m) && touches(Some(r)))
        .map(|(m, r)| Touched {
            name: name_of(m, Some(r)),
            manifest: m.clone(),
            head: None,
            base: Some(m.clone()),
            duplicate: None,
        })
        .collect();
    // …unless the pull request moved it and changed it too (GitHub reports no rename then): a
    // removed and an added manifest with one name are that bundle, paired, never two checks of
    // one name where the removal's `neutral` could stand for the new one's result.
    for t in out.iter_mut().filter(|t| t.base.is_none() && t.duplicate.is_none()) {
        let same: Vec<usize> = removed.iter().enumerate().filter(|(_, r)| r.name == t.name).map(|(i, _)| i).collect();
        if let [i] = same[..] {
            t.base = removed.remove(i).base;
        }
    }
    out.extend(removed);
    out.sort_by(|a, b| (&a.name, &a.manifest).cmp(&(&b.name, &b.manifest)));
    Ok(out)
}
