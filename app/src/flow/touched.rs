//! Which bundles a pull request touches: a changed file in the bundle's folder, a file it
//! references (prompt, tools, rubric, wherever they are), or its golden set — at base or at
//! head, so that adding, editing, moving and removing all count.

use crate::github::tree::CommitTree;
use crate::github::{GitHubError, Installation};
use evaluators::config::{self, RepoConfig};
use evaluators::diagnostic::Diagnostics;
use evaluators::repo::RepoPath;
use evaluators::workspace::{self, References};
use std::collections::BTreeMap;

/// One touched bundle: its name and where its manifest is on each side.
#[derive(Debug, Clone, PartialEq)]
pub struct Touched {
    pub name: String,
    pub head: Option<RepoPath>,
    pub base: Option<RepoPath>,
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
    changed: &[String],
) -> Result<Vec<Touched>, GitHubError> {
    let (base_cfg, _) = config_of(gh, base).await?;
    let (head_cfg, _) = config_of(gh, head).await?;
    let base_manifests = workspace::match_bundles(&base_cfg, base.paths()).map_err(GitHubError::Setup)?;
    let head_manifests = workspace::match_bundles(&head_cfg, head.paths()).map_err(GitHubError::Setup)?;
    let refs = |tree: &CommitTree, manifests: &[RepoPath]| {
        manifests.iter().map(|m| (m.clone(), workspace::references(tree, m))).collect::<Vec<(RepoPath, References)>>()
    };
    let base_refs = base.load(gh, |t| refs(t, &base_manifests)).await?;
    let head_refs = head.load(gh, |t| refs(t, &head_manifests)).await?;
    let name_of = |m: &RepoPath, r: &References| r.name.clone().unwrap_or_else(|| m.parent().file_name().to_owned());
    // By bundle name, so a bundle moved to another folder is still one bundle.
    let mut out: BTreeMap<String, Touched> = BTreeMap::new();
    for (side_is_head, list) in [(false, &base_refs), (true, &head_refs)] {
        for (manifest, r) in list {
            if !changed.iter().any(|p| r.touched_by(p)) {
                continue;
            }
            let name = name_of(manifest, r);
            let entry = out.entry(name.clone()).or_insert(Touched { name, head: None, base: None });
            if side_is_head { entry.head = Some(manifest.clone()) } else { entry.base = Some(manifest.clone()) }
        }
    }
    // A touched bundle's other side, even when that side itself did not change.
    for t in out.values_mut() {
        if t.head.is_none() {
            t.head = head_refs.iter().find(|(m, r)| name_of(m, r) == t.name).map(|(m, _)| m.clone());
        }
        if t.base.is_none() {
            t.base = base_refs.iter().find(|(m, r)| name_of(m, r) == t.name).map(|(m, _)| m.clone());
        }
    }
    Ok(out.into_values().collect())
}
