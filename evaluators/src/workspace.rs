//! A repository's bundles and golden sets: finding them, and loading a bundle together with
//! its golden set (checking the pin). `evalgate check` and `evalgate eval` both start here.

use crate::bundle::{self, Bundle};
use crate::config::{self, RepoConfig};
use crate::diagnostic::{Diagnostic, Diagnostics, FileDiags, Pos};
use crate::golden::{self, GoldenContext, GoldenSet};
use crate::ids::Sha256;
use crate::limits::MAX_BUNDLES;
use crate::parse;
use crate::repo::{RepoFs, RepoPath, WorkTree};
use crate::tools::ToolDef;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A valid bundle with its valid, correctly pinned golden set.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedBundle {
    pub bundle: Bundle,
    pub golden: GoldenSet,
}

/// Loads the bundle at `manifest` and its golden set, reporting every problem in either. The
/// golden set is checked against what could be read of the bundle even when the bundle itself
/// has errors, so one run shows them all.
pub fn load_bundle(
    fs: &dyn RepoFs,
    cfg: &RepoConfig,
    manifest: &RepoPath,
    diags: &mut Diagnostics,
) -> Option<LoadedBundle> {
    let before = diags.len();
    let bundle = bundle::load(fs, cfg, manifest, diags);
    let refs = match &bundle {
        Some(b) => GoldenRef {
            dir: Some(b.eval.golden_set.clone()),
            pin: Some((b.eval.golden_set_sha256, b.eval.pin_pos)),
            tools: Some(b.tools.clone()),
            judge: Some(b.eval.judge.as_ref().map(|j| j.rubric.is_some())),
        },
        None => GoldenRef::salvage(fs, manifest),
    };
    let dir = refs.dir?;
    let ctx = GoldenContext::new(refs.tools.as_deref(), refs.judge);
    let golden = golden::load(fs, &dir, Some(&ctx), diags);
    if let (Some(g), Some((pinned, pos))) = (&golden, refs.pin) {
        if g.pin != pinned {
            diags.at(
                manifest.as_str(),
                pos,
                format!(
                    "golden set `{dir}` does not match its pin: pinned {pinned}, content hashes to {}; if the change is intended, run `evalgate golden pin {}`",
                    g.pin,
                    manifest.parent()
                ),
            );
        }
    }
    if diags.len() != before {
        return None;
    }
    Some(LoadedBundle { bundle: bundle?, golden: golden? })
}

/// What the golden-set check needs from a bundle, read leniently from a bundle with errors.
struct GoldenRef {
    dir: Option<RepoPath>,
    pin: Option<(Sha256, Pos)>,
    tools: Option<Vec<ToolDef>>,
    judge: Option<Option<bool>>,
}

impl GoldenRef {
    fn salvage(fs: &dyn RepoFs, manifest: &RepoPath) -> GoldenRef {
        let none = GoldenRef { dir: None, pin: None, tools: None, judge: None };
        let dir = manifest.parent();
        let Ok(text) = fs.read_text(manifest, crate::limits::MAX_YAML_FILE_BYTES) else { return none };
        let Ok(root) = parse::yaml::parse(&text) else { return none };
        let Some(eval) = root.get("eval") else { return none };
        let golden_dir = eval.get("golden_set").and_then(|n| n.as_str()).and_then(|s| dir.join(s).ok());
        let pin = eval.get("golden_set_sha256").and_then(|n| Some((Sha256::parse(n.as_str()?).ok()?, n.pos)));
        // Tools: only when the file reads cleanly; otherwise tool names go unchecked.
        let tools = root.get("tools").and_then(|n| n.as_str()).and_then(|s| dir.join(s).ok()).and_then(|p| {
            let text = fs.read_text(&p, crate::limits::MAX_YAML_FILE_BYTES).ok()?;
            let node = parse::yaml::parse(&text).ok()?;
            let mut scratch = Diagnostics::new();
            let defs = crate::tools::decode(&mut FileDiags::new(p.as_str(), &mut scratch), &node);
            scratch.is_empty().then_some(defs)
        });
        let tools = if root.get("tools").is_none() { Some(Vec::new()) } else { tools };
        // A judge configured at all is enough to accept `judge` checks here; the bundle's own
        // errors are reported by the bundle loader.
        let judge = eval.get("judge").map_or(Some(None), |j| Some(Some(j.get("rubric").is_some())));
        GoldenRef { dir: golden_dir, pin, tools, judge }
    }
}

/// The bundle manifests under `under` that match the repository's globs, in path order.
pub fn discover_bundles(fs: &WorkTree, cfg: &RepoConfig, under: &RepoPath) -> Result<Vec<RepoPath>, String> {
    let set = bundle_globs(cfg)?;
    let found = walk(fs, under, |p| set.is_match(p.as_str()))?;
    if found.len() > MAX_BUNDLES {
        return Err(format!("more than {MAX_BUNDLES} bundles under {under} (limit)"));
    }
    Ok(found)
}

/// The bundle manifests among `paths` (a commit's file list, as GitHub gives it), in path order.
pub fn match_bundles<'a>(cfg: &RepoConfig, paths: impl IntoIterator<Item = &'a str>) -> Result<Vec<RepoPath>, String> {
    let set = bundle_globs(cfg)?;
    let mut found = BTreeSet::new();
    for p in paths {
        if set.is_match(p) {
            found.insert(RepoPath::parse(p)?);
        }
    }
    if found.len() > MAX_BUNDLES {
        return Err(format!("more than {MAX_BUNDLES} bundles in the repository (limit)"));
    }
    Ok(found.into_iter().collect())
}

fn bundle_globs(cfg: &RepoConfig) -> Result<globset::GlobSet, String> {
    let mut set = globset::GlobSetBuilder::new();
    for g in &cfg.bundles {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("bundle glob `{g}`: {e}"))?;
        set.add(glob);
    }
    set.build().map_err(|e| e.to_string())
}

/// Folders under `under` holding a `golden.yaml`.
pub fn discover_golden_sets(fs: &WorkTree, under: &RepoPath) -> Result<Vec<RepoPath>, String> {
    Ok(walk(fs, under, |p| p.file_name() == golden::META_NAME)?.into_iter().map(|p| p.parent()).collect())
}

/// Files under `under` (symlinks are not followed into folders) for which `keep` holds.
fn walk(fs: &WorkTree, under: &RepoPath, keep: impl Fn(&RepoPath) -> bool) -> Result<Vec<RepoPath>, String> {
    let mut out = BTreeSet::new();
    let walker = walkdir::WalkDir::new(fs.disk_path(under)).follow_links(false).into_iter().filter_entry(|e| {
        !(e.file_type().is_dir()
            && e.depth() > 0
            && matches!(e.file_name().to_str(), Some(".git" | "target" | "node_modules")))
    });
    for entry in walker {
        let entry = entry.map_err(|e| format!("cannot list {under}: {e}"))?;
        if entry.file_type().is_dir() {
            continue;
        }
        if let Some(p) = fs.repo_path(entry.path()) {
            if keep(&p) {
                out.insert(p);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// What `evalgate check` found.
#[derive(Debug)]
pub struct CheckReport {
    pub bundles: Vec<LoadedBundle>,
    /// Golden sets checked on their own (not referenced by a bundle under the path).
    pub golden_sets: Vec<GoldenSet>,
    pub diagnostics: Vec<Diagnostic>,
    pub bundles_found: usize,
}

/// Static checks of every bundle and golden set under `path` (SPEC: `evalgate check`).
pub fn check_path(path: &Path) -> Result<CheckReport, String> {
    let root = crate::repo::find_root(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fs = WorkTree::new(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let under = fs.repo_path(&real).ok_or_else(|| format!("{} is not inside {}", path.display(), root.display()))?;
    let mut diags = Diagnostics::new();
    let cfg = config::load(&fs, &mut diags);
    let manifests = discover_bundles(&fs, &cfg, &under)?;
    let mut bundles = Vec::new();
    let mut golden_dirs_seen = BTreeSet::new();
    for m in &manifests {
        if let Some(b) = load_bundle(&fs, &cfg, m, &mut diags) {
            golden_dirs_seen.insert(b.golden.dir.clone());
            bundles.push(b);
        } else if let Some(dir) = GoldenRef::salvage(&fs, m).dir {
            golden_dirs_seen.insert(dir);
        }
    }
    // Names are unique in the whole repository, not only under the path checked.
    let everywhere =
        if under == RepoPath::root() { manifests.clone() } else { discover_bundles(&fs, &cfg, &RepoPath::root())? };
    let duplicates = duplicate_names(&fs, &everywhere);
    for dup in &duplicates {
        dup.report(&under, &mut diags);
    }
    let clashing: BTreeSet<&RepoPath> = duplicates.iter().flat_map(|d| d.manifests.iter().map(|(m, _)| m)).collect();
    bundles.retain(|b| !clashing.contains(&b.bundle.manifest));
    let mut golden_sets = Vec::new();
    for dir in discover_golden_sets(&fs, &under)? {
        if !golden_dirs_seen.contains(&dir) {
            if let Some(g) = golden::load(&fs, &dir, None, &mut diags) {
                golden_sets.push(g);
            }
        }
    }
    if manifests.is_empty() {
        diags.push(
            &under.to_string(),
            None,
            format!("no bundle found (looked for {} under {under})", cfg.bundles.join(", ")),
        );
    }
    Ok(CheckReport { bundles, golden_sets, diagnostics: diags.into_sorted(), bundles_found: manifests.len() })
}

/// What a bundle's `bundle.yaml` names, read leniently (also from a bundle with errors), to
/// decide whether a change touches it: its name, and the files and folders it references.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct References {
    /// The `bundle:` value when it is a string.
    pub name: Option<String>,
    /// The folder of `bundle.yaml`, its prompt, tools and rubric files, and its golden-set folder.
    pub paths: Vec<RepoPath>,
}

impl References {
    /// Whether a change to `path` touches the bundle.
    pub fn touched_by(&self, path: &str) -> bool {
        let Ok(p) = RepoPath::parse(path) else { return false };
        self.paths.iter().any(|r| p == *r || p.starts_with(r))
    }
}

pub fn references(fs: &dyn RepoFs, manifest: &RepoPath) -> References {
    read_references(fs, manifest).0
}

/// [`references`], with where the `bundle:` value is when there is a name.
fn read_references(fs: &dyn RepoFs, manifest: &RepoPath) -> (References, Option<Pos>) {
    let dir = manifest.parent();
    let mut refs = References { name: None, paths: vec![dir.clone()] };
    let Ok(text) = fs.read_text(manifest, crate::limits::MAX_YAML_FILE_BYTES) else { return (refs, None) };
    let Ok(root) = parse::yaml::parse(&text) else { return (refs, None) };
    let name = root.get("bundle").and_then(|n| Some((n.as_str()?.to_owned(), n.pos)));
    let name_pos = name.as_ref().map(|(_, pos)| *pos);
    refs.name = name.map(|(name, _)| name);
    let eval = root.get("eval");
    let judge = eval.and_then(|e| e.get("judge"));
    let named = [
        root.get("prompt"),
        root.get("tools"),
        judge.and_then(|j| j.get("rubric")),
        eval.and_then(|e| e.get("golden_set")),
    ];
    for node in named.into_iter().flatten() {
        if let Some(p) = node.as_str().and_then(|s| dir.join(s).ok()) {
            refs.paths.push(p);
        }
    }
    (refs, name_pos)
}

/// One `bundle:` name given by more than one manifest (SPEC: "Bundle identity": names are
/// unique in a repository).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateName {
    pub name: String,
    /// Every manifest giving the name, in path order, with where its `bundle:` value is.
    pub manifests: Vec<(RepoPath, Pos)>,
}

impl DuplicateName {
    /// The error for `manifest`, one of [`DuplicateName::manifests`], naming all the others.
    pub fn message_for(&self, manifest: &RepoPath) -> String {
        let others: Vec<String> = self
            .manifests
            .iter()
            .filter(|(m, _)| m != manifest)
            .map(|(m, pos)| format!("{m}:{}:{}", pos.line, pos.col))
            .collect();
        format!(
            "bundle name `{}` is also used by {}; bundle names must be unique in a repository",
            self.name,
            others.join(", ")
        )
    }

    /// One diagnostic per manifest at or below `under` (the root for all), at its `bundle:` value.
    pub fn report(&self, under: &RepoPath, diags: &mut Diagnostics) {
        for (manifest, pos) in self.manifests.iter().filter(|(m, _)| m.starts_with(under)) {
            diags.at(manifest.as_str(), *pos, self.message_for(manifest));
        }
    }
}

/// The names that more than one of `manifests` gives, in name order. Names are read leniently,
/// as [`references`] reads them, so a manifest with other errors still counts; one without a
/// string `bundle:` value does not.
pub fn duplicate_names(fs: &dyn RepoFs, manifests: &[RepoPath]) -> Vec<DuplicateName> {
    let mut by_name: BTreeMap<String, BTreeMap<RepoPath, Pos>> = BTreeMap::new();
    for manifest in manifests {
        if let (References { name: Some(name), .. }, Some(pos)) = read_references(fs, manifest) {
            by_name.entry(name).or_default().insert(manifest.clone(), pos);
        }
    }
    by_name
        .into_iter()
        .filter(|(_, found)| found.len() > 1)
        .map(|(name, found)| DuplicateName { name, manifests: found.into_iter().collect() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::ReadError;
    use std::collections::HashMap;
    use std::io::Read;

    /// An in-memory repository.
    struct MemFs(HashMap<&'static str, &'static str>);

    impl RepoFs for MemFs {
        fn open(&self, path: &RepoPath, _max_bytes: u64) -> Result<Box<dyn Read + '_>, ReadError> {
            self.0.get(path.as_str()).map(|t| Box::new(t.as_bytes()) as Box<dyn Read>).ok_or(ReadError::NotFound)
        }
    }

    fn paths(ps: &[&str]) -> Vec<RepoPath> {
        ps.iter().map(|p| RepoPath::parse(p).unwrap()).collect()
    }

    #[test]
    fn names_given_twice_are_found_with_every_manifest_and_position() {
        let fs = MemFs(HashMap::from([
            ("z/bundle.yaml", "bundle: refund\n"),
            ("a/bundle.yaml", "# x\nbundle:  refund\nversion: 1.5\nunknown: [x]\n"),
            ("b/bundle.yaml", "bundle: other\n"),
            ("c/bundle.yaml", "bundle: 7\n"),
            ("d/bundle.yaml", "bundle: 7\n"),
        ]));
        let found = duplicate_names(
            &fs,
            &paths(&[
                "z/bundle.yaml",
                "a/bundle.yaml",
                "b/bundle.yaml",
                "c/bundle.yaml",
                "d/bundle.yaml",
                "e/bundle.yaml",
            ]),
        );
        assert_eq!(
            found,
            [DuplicateName {
                name: "refund".into(),
                manifests: vec![
                    (RepoPath::parse("a/bundle.yaml").unwrap(), Pos::new(2, 10)),
                    (RepoPath::parse("z/bundle.yaml").unwrap(), Pos::new(1, 9)),
                ],
            }]
        );
    }

    #[test]
    fn a_manifest_listed_twice_is_not_its_own_duplicate() {
        let fs = MemFs(HashMap::from([("a/bundle.yaml", "bundle: refund\n")]));
        assert!(duplicate_names(&fs, &paths(&["a/bundle.yaml", "a/bundle.yaml"])).is_empty());
    }

    #[test]
    fn each_manifest_is_reported_at_its_name_naming_the_others() {
        let dup = DuplicateName {
            name: "refund".into(),
            manifests: vec![
                (RepoPath::parse("a/bundle.yaml").unwrap(), Pos::new(1, 9)),
                (RepoPath::parse("b/bundle.yaml").unwrap(), Pos::new(2, 9)),
                (RepoPath::parse("c/bundle.yaml").unwrap(), Pos::new(1, 9)),
            ],
        };
        let mut diags = Diagnostics::new();
        dup.report(&RepoPath::parse("b").unwrap(), &mut diags);
        let lines: Vec<String> = diags.into_sorted().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "b/bundle.yaml:2:9: error: bundle name `refund` is also used by a/bundle.yaml:1:9, c/bundle.yaml:1:9; bundle names must be unique in a repository"
            ]
        );
        let mut diags = Diagnostics::new();
        dup.report(&RepoPath::root(), &mut diags);
        assert_eq!(diags.len(), 3);
    }
}
