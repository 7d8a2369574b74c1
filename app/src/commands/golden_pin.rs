//! `evalgate golden pin BUNDLE_DIR`: recompute the golden-set pin and write it into
//! `bundle.yaml`, whatever the field held before, leaving every other byte as it was.

use crate::exit::Outcome;
use anyhow::{Context, anyhow, bail};
use evaluators::repo::{RepoFs, WorkTree, find_root};
use evaluators::{bundle, golden, parse, pin_writer};
use std::path::Path;

pub fn run(bundle_dir: &Path) -> anyhow::Result<Outcome> {
    let root = find_root(bundle_dir).with_context(|| format!("{}", bundle_dir.display()))?;
    let fs = WorkTree::new(&root)?;
    let dir = std::fs::canonicalize(bundle_dir).with_context(|| format!("{}", bundle_dir.display()))?;
    let dir = fs.repo_path(&dir).ok_or_else(|| anyhow!("{} is outside the repository", bundle_dir.display()))?;
    let manifest = dir.join(bundle::MANIFEST_NAME).map_err(|e| anyhow!(e))?;
    let text =
        fs.read_text(&manifest, evaluators::limits::MAX_YAML_FILE_BYTES).map_err(|e| anyhow!("{manifest} {e}"))?;
    let root_node =
        parse::yaml::parse(&text).map_err(|e| anyhow!("{manifest}:{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    let Some(rel) = root_node.get("eval").and_then(|e| e.get("golden_set")).and_then(|g| g.as_str()) else {
        bail!("{manifest}: `eval.golden_set` is missing; name the golden set folder first");
    };
    let golden_dir = dir.join(rel).map_err(|e| anyhow!("{manifest}: `eval.golden_set` {e}"))?;
    let pin = golden::pin(&fs, &golden_dir).map_err(|e| anyhow!(e))?;
    let new = pin_writer::write_pin(&text, &pin).map_err(|e| anyhow!("{manifest}: {e}"))?;
    if new == text {
        println!("{manifest}: golden set {golden_dir} already pinned at {pin}");
        return Ok(Outcome::Ok);
    }
    write_atomically(&fs.disk_path(&manifest), new.as_bytes())?;
    println!("{manifest}: pinned golden set {golden_dir} at {pin}");
    Ok(Outcome::Ok)
}

/// Writes beside the file and renames over it, so a crash leaves the old or the new file,
/// never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let real = std::fs::canonicalize(path)?;
    let tmp = real.with_extension("yaml.evalgate-tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(&real) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, &real).with_context(|| format!("replacing {}", real.display()))?;
    Ok(())
}
