//! `evalgate pins [PATH] [--json]`: every pinned snapshot (bundle models and judges) of every
//! bundle under PATH, the newest snapshot of its family worth proposing, the lag in days from
//! the providers' release times, and the retirement date, as a table or a JSON array.
//!
//! Each provider's models are listed once. A missing key, or one the provider refuses, is a
//! setup error (exit 2, naming the variable); a provider that cannot be reached or keeps failing
//! is exit 3; a bundle that does not load is reported as `evalgate check` would and makes the
//! exit 1, the other bundles are still listed.

use crate::exit::Outcome;
use crate::settings;
use anyhow::{Context as _, anyhow};
use evaluators::config::{self, RepoConfig};
use evaluators::diagnostic::Diagnostics;
use evaluators::pins::{self, Assessment, ModelInfo, PinsError};
use evaluators::provider::{Endpoint, RetryPolicy};
use evaluators::repo::{self, RepoPath, WorkTree};
use evaluators::snapshot::{Provider, Snapshot};
use evaluators::{bundle, workspace};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// One pinned snapshot of one bundle.
struct Pin {
    bundle: String,
    manifest: RepoPath,
    role: &'static str,
    snapshot: Snapshot,
}

pub fn run(path: &Path, as_json: bool) -> anyhow::Result<Outcome> {
    let (found, cfg, diagnostics) = collect(path)?;
    for d in &diagnostics {
        eprintln!("{d}");
    }
    let endpoints = settings::endpoints();
    let mut needed: BTreeMap<Provider, &Endpoint> = BTreeMap::new();
    for p in &found {
        let provider = p.snapshot.provider();
        needed.insert(
            provider,
            match provider {
                Provider::Anthropic => &endpoints.anthropic,
                Provider::Openai => &endpoints.openai,
            },
        );
    }
    // Every key is checked before anything is sent.
    for (&provider, endpoint) in &needed {
        if endpoint.api_key.is_none() {
            let variable = match provider {
                Provider::Anthropic => "ANTHROPIC_API_KEY",
                Provider::Openai => "OPENAI_API_KEY",
            };
            eprintln!("evalgate pins: error: {}", PinsError::MissingKey { provider, variable });
            return Ok(Outcome::Setup);
        }
    }
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    let listed = match rt.block_on(list_all(&needed)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("evalgate pins: error: {e}");
            return Ok(if e.is_setup() { Outcome::Setup } else { Outcome::Incomplete });
        }
    };
    let now = chrono::Utc::now().timestamp();
    let rows: Vec<(&Pin, Assessment)> = found
        .iter()
        .map(|p| {
            let provider = p.snapshot.provider();
            let models = listed.get(&provider).map(Vec::as_slice).unwrap_or_default();
            (p, pins::assess(provider, p.snapshot.id(), models, now, cfg.soak_days))
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if as_json {
        let items: Vec<Value> = rows.iter().map(|(p, a)| row_json(p, a)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
    } else {
        write_table(&mut out, &rows)?;
    }
    Ok(if diagnostics.is_empty() { Outcome::Ok } else { Outcome::Failed })
}

/// The pins of every bundle under `path` that loads, the repository's configuration, and the
/// problems of those that do not.
fn collect(path: &Path) -> anyhow::Result<(Vec<Pin>, RepoConfig, Vec<evaluators::diagnostic::Diagnostic>)> {
    let root = repo::find_root(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let fs = WorkTree::new(&root).map_err(|e| anyhow!("{}: {e}", root.display()))?;
    let real = std::fs::canonicalize(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let under = fs.repo_path(&real).ok_or_else(|| anyhow!("{} is not inside {}", path.display(), root.display()))?;
    let mut diags = Diagnostics::new();
    let cfg = config::load(&fs, &mut diags);
    let manifests = workspace::discover_bundles(&fs, &cfg, &under).map_err(|e| anyhow!(e))?;
    let mut found = Vec::new();
    for m in &manifests {
        let Some(b) = bundle::load(&fs, &cfg, m, &mut diags) else { continue };
        let name = b.name.to_string();
        found.push(Pin {
            bundle: name.clone(),
            manifest: m.clone(),
            role: "model",
            snapshot: b.model.snapshot.clone(),
        });
        if let Some(j) = &b.eval.judge {
            found.push(Pin { bundle: name, manifest: m.clone(), role: "judge", snapshot: j.snapshot.clone() });
        }
    }
    if manifests.is_empty() {
        diags.push(
            &under.to_string(),
            None,
            format!("no bundle found (looked for {} under {under})", cfg.bundles.join(", ")),
        );
    }
    Ok((found, cfg, diags.into_sorted()))
}

/// Each provider's models, listed once, without the repository's declared aliases.
async fn list_all(needed: &BTreeMap<Provider, &Endpoint>) -> Result<BTreeMap<Provider, Vec<ModelInfo>>, PinsError> {
    let http = pins::http_client()?;
    // A command line waits less than the App's jobs before it says the provider is down.
    let policy = RetryPolicy { max_attempts: 3, timeout: Duration::from_secs(30), ..RetryPolicy::default() };
    let mut out = BTreeMap::new();
    for (&provider, endpoint) in needed {
        out.insert(provider, pins::list_models_with(&http, provider, endpoint, &policy).await?);
    }
    Ok(out)
}

fn date(secs: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.format("%Y-%m-%d").to_string())
}

fn time(secs: Option<i64>) -> Value {
    secs.and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or(Value::Null, |t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

fn row_json(p: &Pin, a: &Assessment) -> Value {
    json!({
        "bundle": p.bundle,
        "manifest": p.manifest.as_str(),
        "role": p.role,
        "provider": p.snapshot.provider().as_str(),
        "pinned": a.pinned,
        "family": a.family,
        "listed": a.listed,
        "newest": a.newest,
        "pinned_released": time(a.pinned_created),
        "newest_released": time(a.newest_created),
        "lag_days": a.lag_days,
        "retirement": a.retires_at.and_then(date),
        "retires_in_days": a.retires_in_days,
        "urgent": a.urgent,
    })
}

fn retirement_text(a: &Assessment) -> String {
    if !a.listed {
        return "not listed by the provider".into();
    }
    match (a.retires_at.and_then(date), a.retires_in_days) {
        (Some(d), Some(n)) if n < 0 => format!("{d} (retired {} days ago)", -n),
        (Some(d), Some(n)) => format!("{d} (in {n} days{})", if a.urgent { ", urgent" } else { "" }),
        _ => "-".into(),
    }
}

fn write_table(out: &mut impl Write, rows: &[(&Pin, Assessment)]) -> std::io::Result<()> {
    let header = ["BUNDLE", "ROLE", "PROVIDER", "PINNED", "NEWEST", "LAG (DAYS)", "RETIREMENT"].map(String::from);
    let mut lines = vec![header];
    for (p, a) in rows {
        lines.push([
            p.bundle.clone(),
            p.role.to_owned(),
            p.snapshot.provider().to_string(),
            a.pinned.clone(),
            a.newest.clone().unwrap_or_else(|| "-".into()),
            a.lag_days.map_or_else(|| "unknown".into(), |d| d.to_string()),
            retirement_text(a),
        ]);
    }
    let mut widths = [0usize; 7];
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for l in &lines {
        let mut line = String::new();
        for (i, (cell, w)) in l.iter().zip(widths).enumerate() {
            if i + 1 == l.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
