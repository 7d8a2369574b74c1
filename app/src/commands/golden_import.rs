//! `evalgate golden import EVENTS... --out GOLDEN_DIR [--bundle BUNDLE_DIR] [--conversation ID]...
//! [--rubric TEXT] [--redact]`: recorded production conversations become golden cases (SPEC,
//! "Golden cases from production"; the reading and the cases are `evaluators::golden_import`).
//!
//! Everything is read and checked before anything is written: an input problem (exit 1) or a
//! usage problem (exit 2) leaves the golden set folder as it was. Then `cases.jsonl` is written
//! beside itself and renamed over the old one, `golden.yaml` is created when missing, and with
//! `--bundle` the bundle's pin is rewritten as `evalgate golden pin` does.

use super::golden_pin;
use crate::cli::GoldenImportArgs;
use crate::exit::Outcome;
use anyhow::{Context, anyhow, bail};
use evaluators::diagnostic::Diagnostics;
use evaluators::golden::{CASES_NAME, META_NAME};
use evaluators::golden_import::merge::{self, MergeError, Merged};
use evaluators::golden_import::{ImportedCase, Importer, InputError, Options};
use evaluators::ids::Sha256;
use evaluators::limits::{MAX_IMPORT_FILE_BYTES, MAX_YAML_FILE_BYTES};
use evaluators::repo::{ReadError, RepoFs, RepoPath, WorkTree, find_root};
use evaluators::tools::ToolDef;
use evaluators::{bundle, config, pin_writer};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

pub fn run(args: &GoldenImportArgs) -> anyhow::Result<Outcome> {
    if args.rubric.as_deref().is_some_and(|r| r.trim().is_empty()) {
        bail!("--rubric must not be empty: say what the right behaviour is");
    }
    if args.conversations.iter().any(|c| c.is_empty()) {
        bail!("--conversation needs a conversation id");
    }
    if args.events.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!("`-` (standard input) can be read only once");
    }
    if args.out.exists() && !args.out.is_dir() {
        bail!("--out {} is not a folder", args.out.display());
    }
    let bundle = match &args.bundle {
        Some(dir) => Some(bundle_for(dir, &args.out)?),
        None => None,
    };
    let opts = Options {
        conversations: args.conversations.clone(),
        rubric: args.rubric.clone(),
        redact: args.redact,
        tools: bundle.as_ref().map(|b| b.tools.clone()),
        judge: bundle.as_ref().map(|b| b.judge),
    };

    let mut importer = Importer::new(opts);
    let mut errors: Vec<InputError> = Vec::new();
    for path in &args.events {
        let name = path.display().to_string();
        let read = if path.as_os_str() == "-" {
            importer.read("-", &mut std::io::stdin().lock())
        } else {
            let meta = std::fs::metadata(path).with_context(|| name.clone())?;
            if !meta.is_file() {
                bail!("{name} is not a file");
            }
            if meta.len() > MAX_IMPORT_FILE_BYTES {
                errors.push(whole(
                    &name,
                    format!("is {} bytes, over the limit of {MAX_IMPORT_FILE_BYTES} bytes", meta.len()),
                ));
                continue;
            }
            let file = std::fs::File::open(path).with_context(|| name.clone())?;
            importer.read(&name, &mut BufReader::with_capacity(1 << 20, file))
        };
        if let Err(e) = read {
            errors.push(whole(&name, format!("cannot be read: {e}")));
        }
    }
    let imported = match importer.finish() {
        Ok(i) if errors.is_empty() => i,
        Ok(_) => return Ok(failed(&errors, 0)),
        Err(f) => {
            errors.extend(f.errors);
            return Ok(failed(&errors, f.more));
        }
    };

    let mut err = std::io::stderr().lock();
    for s in &imported.skipped {
        writeln!(err, "evalgate: warning: {s}")?;
    }
    for d in &imported.drift {
        writeln!(err, "evalgate: {d}")?;
    }
    if let Some(summary) = &imported.redacted {
        writeln!(err, "evalgate: {summary}")?;
    }
    drop(err);
    if imported.cases.is_empty() {
        eprintln!("evalgate: error: no conversation in the input gave a case; nothing written");
        return Ok(Outcome::Failed);
    }

    let merged = match write_golden_set(&args.out, &imported.cases)? {
        Ok(m) => m,
        Err(e) => return Ok(failed(&[e], 0)),
    };
    println!(
        "{}: {} imported case(s): {} added, {} updated, {} unchanged; {} other line(s) kept",
        args.out.join(CASES_NAME).display(),
        imported.cases.len(),
        merged.added,
        merged.updated,
        merged.unchanged,
        merged.kept
    );
    if let Some(dir) = &args.bundle {
        let outcome = golden_pin::run(dir)?;
        if outcome != Outcome::Ok {
            return Ok(outcome);
        }
    }
    Ok(Outcome::Ok)
}

fn whole(file: &str, message: String) -> InputError {
    InputError { file: file.to_owned(), line: None, col: None, message }
}

fn failed(errors: &[InputError], more: u64) -> Outcome {
    let mut err = std::io::stderr().lock();
    for e in errors {
        let _ = writeln!(err, "{e}");
    }
    if more > 0 {
        let _ = writeln!(err, "… and {more} more error(s)");
    }
    let n = errors.len() as u64 + more;
    let _ = writeln!(err, "{n} error{} in the input; nothing written", if n == 1 { "" } else { "s" });
    Outcome::Failed
}

/// What `--bundle` contributes: its tools and its judge.
struct BundleInfo {
    tools: Vec<ToolDef>,
    judge: Option<bool>,
}

/// The bundle in `bundle_dir`, read with a placeholder pin (the import is what will make its
/// pin right), after checking that `out` is its golden set.
fn bundle_for(bundle_dir: &Path, out: &Path) -> anyhow::Result<BundleInfo> {
    let root = find_root(bundle_dir).with_context(|| format!("{}", bundle_dir.display()))?;
    let fs = WorkTree::new(&root)?;
    let dir = std::fs::canonicalize(bundle_dir).with_context(|| format!("{}", bundle_dir.display()))?;
    let dir = fs.repo_path(&dir).ok_or_else(|| anyhow!("{} is outside the repository", bundle_dir.display()))?;
    let manifest = dir.join(bundle::MANIFEST_NAME).map_err(|e| anyhow!(e))?;
    let text = fs.read_text(&manifest, MAX_YAML_FILE_BYTES).map_err(|e| anyhow!("{manifest} {e}"))?;
    let placeholder = Sha256::digest(b"evalgate golden import: the pin is written after the import");
    let patched = pin_writer::write_pin(&text, &placeholder).map_err(|e| anyhow!("{manifest}: {e}"))?;
    let overlay = Overlay { inner: &fs, path: manifest.clone(), text: patched };
    let mut diags = Diagnostics::new();
    let cfg = config::load(&fs, &mut diags);
    let loaded = bundle::load(&overlay, &cfg, &manifest, &mut diags);
    let Some(b) = loaded.filter(|_| diags.is_empty()) else {
        let lines: Vec<String> = diags.into_sorted().iter().map(ToString::to_string).collect();
        bail!("the bundle {manifest} has errors; fix them first:\n{}", lines.join("\n"));
    };
    let out_path = repo_path_of(&fs, out)?;
    if out_path != b.eval.golden_set {
        bail!(
            "--out {} is not the golden set of {manifest} (`eval.golden_set` is {}): import into that folder, or leave out --bundle",
            out.display(),
            b.eval.golden_set
        );
    }
    Ok(BundleInfo { tools: b.tools, judge: b.eval.judge.as_ref().map(|j| j.rubric.is_some()) })
}

/// The repository path of a folder that may not exist yet.
fn repo_path_of(fs: &WorkTree, p: &Path) -> anyhow::Result<RepoPath> {
    let abs = if p.exists() {
        std::fs::canonicalize(p)?
    } else {
        let name = p.file_name().ok_or_else(|| anyhow!("--out {} names no folder", p.display()))?;
        let parent = match p.parent() {
            Some(par) if !par.as_os_str().is_empty() => par.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::canonicalize(&parent).with_context(|| format!("{}", parent.display()))?.join(name)
    };
    fs.repo_path(&abs).ok_or_else(|| anyhow!("--out {} is outside the bundle's repository", p.display()))
}

/// The work tree with `bundle.yaml` as given in memory.
struct Overlay<'a> {
    inner: &'a WorkTree,
    path: RepoPath,
    text: String,
}

impl RepoFs for Overlay<'_> {
    fn open(&self, path: &RepoPath, max_bytes: u64) -> Result<Box<dyn Read + '_>, ReadError> {
        if *path == self.path {
            if self.text.len() as u64 > max_bytes {
                return Err(ReadError::TooLarge { size: self.text.len() as u64, limit: max_bytes });
            }
            return Ok(Box::new(self.text.as_bytes()));
        }
        self.inner.open(path, max_bytes)
    }
}

/// Writes the merged `cases.jsonl` beside the old one and renames it over it, and creates
/// `golden.yaml` when missing. An existing line that cannot be read leaves everything as it was.
fn write_golden_set(out: &Path, cases: &[ImportedCase]) -> anyhow::Result<Result<Merged, InputError>> {
    let created = !out.exists();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let undo = |tmp: &Path| {
        let _ = std::fs::remove_file(tmp);
        if created {
            let _ = std::fs::remove_dir(out);
        }
    };
    let cases_path = out.join(CASES_NAME);
    let tmp = out.join(format!(".{CASES_NAME}.evalgate-tmp-{}", std::process::id()));
    let existing = match std::fs::File::open(&cases_path) {
        Ok(f) => Some(BufReader::with_capacity(1 << 20, f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            undo(&tmp);
            return Err(anyhow!("{}: {e}", cases_path.display()));
        }
    };
    let file = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let name = cases_path.display().to_string();
    let had_cases = existing.is_some();
    let mut existing = existing;
    let res = merge::merge(existing.as_mut().map(|r| r as &mut dyn BufRead), &name, cases, &mut w);
    let merged = match res {
        Ok(m) => m,
        Err(MergeError::Input(e)) => {
            drop(w);
            undo(&tmp);
            return Ok(Err(e));
        }
        Err(MergeError::Io(e)) => {
            drop(w);
            undo(&tmp);
            return Err(anyhow!("writing {}: {e}", tmp.display()));
        }
    };
    let file = w.into_inner().map_err(|e| anyhow!("writing {}: {}", tmp.display(), e.error()))?;
    file.sync_all()?;
    drop(file);
    let meta_path = out.join(META_NAME);
    if !meta_path.exists() {
        let name = out
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "imported".to_owned());
        let yaml = format!(
            "# Created by `evalgate golden import`: cases made from recorded production conversations.\nname: {}\nversion: 1\ndescription: Imported from production conversations\n",
            serde_json::Value::String(name)
        );
        write_atomically(&meta_path, yaml.as_bytes()).inspect_err(|_| undo(&tmp))?;
    }
    if had_cases && merged.added == 0 && merged.updated == 0 {
        // Nothing changed: the file stays as it is, untouched.
        let _ = std::fs::remove_file(&tmp);
        return Ok(Ok(merged));
    }
    if let Ok(meta) = std::fs::metadata(&cases_path) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, &cases_path).with_context(|| format!("replacing {}", cases_path.display()))?;
    Ok(Ok(merged))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("yaml.evalgate-tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
