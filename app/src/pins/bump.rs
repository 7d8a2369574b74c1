//! One bump pull request per bundle, on `evalgate/pin-bump/<bundle>`: created through the git
//! data API (blob → tree → commit → ref → pull request) with only the snapshot ids changed in
//! `bundle.yaml`; updated in place when a newer snapshot appears; left alone once a person has
//! pushed to its branch; when closed without merging, its snapshots are skipped (durably) until
//! a strictly newer one exists. evalgate never merges.

use super::Change;
use crate::github::Installation;
use crate::jobs::{Ctx, JobError};
use crate::store::pins::PinBump;
use evaluators::gate::Key;
use evaluators::repo::RepoPath;
use evaluators::snapshot_writer;
use serde_json::{Value, json};

/// The bundle a bump is for, at the default branch's head.
pub struct Target<'a> {
    pub repo: &'a str,
    pub default: &'a str,
    pub base_sha: &'a str,
    pub bundle: &'a str,
    pub manifest: &'a RepoPath,
    pub text: &'a str,
}

pub fn branch_of(bundle: &str) -> String {
    format!("evalgate/pin-bump/{bundle}")
}

/// What a bump proposes, as stored: `[{"role", "from", "to"}]`.
fn proposed(changes: &[Change]) -> String {
    json!(changes.iter().map(|c| json!({ "role": c.role.as_str(), "from": c.from, "to": c.to })).collect::<Vec<_>>())
        .to_string()
}

fn date(secs: Option<i64>) -> String {
    secs.and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn title(bundle: &str, changes: &[Change]) -> String {
    match changes {
        [c] => format!("Bump {bundle} {} snapshot: {} → {}", c.role.as_str(), c.from, c.to),
        _ => format!("Bump {bundle} pinned snapshots ({} changes)", changes.len()),
    }
}

/// The base bundle's own gate, pre-registered as it stands, so the gate runs at once and the
/// bump is held to exactly the bar the bundle already sets.
fn thresholds(text: &str) -> Vec<String> {
    let Ok(root) = evaluators::parse::yaml::parse(text) else { return vec!["max_regression_rate: 0%".into()] };
    let gate = root.get("eval").and_then(|e| e.get("gate"));
    let mut lines = Vec::new();
    for key in Key::ALL {
        let value = gate.and_then(|g| g.get(key.as_str())).and_then(|n| match &n.kind {
            evaluators::tree::Kind::Int(i) => Some(*i as f64),
            evaluators::tree::Kind::Float(f) => Some(*f),
            _ => None,
        });
        // Written as the bundle writes it (a fraction, or milliseconds): exact, no rounding.
        if let Some(v) = value {
            lines.push(format!("{}: {v}", key.as_str()));
        }
    }
    if lines.is_empty() {
        lines.push("max_regression_rate: 0%".into());
    }
    lines
}

fn body(ctx: &Ctx, t: &Target<'_>, changes: &[Change]) -> Result<String, JobError> {
    let rows: Vec<Value> = changes
        .iter()
        .map(|c| {
            json!({
                "role": c.role.as_str(), "provider": c.provider, "from": c.from, "to": c.to,
                "from_released": date(c.from_released), "to_released": date(c.to_released),
                "lag": c.lag_days.map(|d| format!("{d} days")).unwrap_or_else(|| "unknown".into()),
                "retires": c.retires_in_days.map(|d| format!("in {d} days")).unwrap_or_else(|| "–".into()),
            })
        })
        .collect();
    let data = json!({ "bundle": t.bundle, "manifest": t.manifest.as_str(), "changes": rows,
        "plural": changes.len() > 1, "thresholds": thresholds(t.text) });
    ctx.templates.markdown("pin-bump", &data).map_err(|e| JobError::Fatal(format!("{e:#}")))
}

async fn commit(gh: &Installation, t: &Target<'_>, changes: &[Change]) -> Result<String, JobError> {
    let edits: Vec<_> = changes.iter().map(|c| (c.role, c.to.clone())).collect();
    let text = snapshot_writer::write_snapshots(t.text, &edits).map_err(JobError::Fatal)?;
    let list: String = changes.iter().map(|c| format!("- {}: {} → {}\n", c.role.as_str(), c.from, c.to)).collect();
    let message = format!("evalgate: bump pinned snapshots of {}\n\n{list}", t.bundle);
    Ok(gh.commit_file(t.repo, t.base_sha, t.manifest.as_str(), text.as_bytes(), &message).await?)
}

pub async fn propose(ctx: &Ctx, gh: &Installation, t: &Target<'_>, mut changes: Vec<Change>) -> Result<(), JobError> {
    let branch = branch_of(t.bundle);
    let saved = ctx.store.pin_bump(t.repo, t.bundle).await?;
    let pulls = gh.pulls_from(t.repo, &branch).await?;
    if let Some(open) = pulls.iter().find(|p| p.state == "open") {
        let head = gh.branch_head(t.repo, &branch).await?;
        let ours = saved.as_ref().is_some_and(|s| head.as_deref() == Some(s.commit_sha.as_str()));
        if !ours {
            tracing::info!(pr = open.number, %branch, "a person pushed to the bump branch: left alone");
            return Ok(());
        }
        if saved.as_ref().is_some_and(|s| s.proposed == proposed(&changes)) {
            return Ok(()); // already proposes exactly this
        }
        let sha = commit(gh, t, &changes).await?;
        gh.force_branch(t.repo, &branch, &sha).await?;
        gh.update_pull(t.repo, open.number, &title(t.bundle, &changes), &body(ctx, t, &changes)?).await?;
        let bump = PinBump { branch, pr_number: open.number, proposed: proposed(&changes), commit_sha: sha };
        ctx.store.save_pin_bump(t.repo, t.bundle, &bump).await?;
        tracing::info!(pr = open.number, "bump pull request updated in place");
        return Ok(());
    }
    // The last bump was closed without merging: its snapshots are not wanted.
    if let (Some(last), Some(s)) = (pulls.first(), &saved) {
        if last.number == s.pr_number && last.state == "closed" && last.merged_at.is_none() {
            let skipped: Vec<Value> = serde_json::from_str(&s.proposed).unwrap_or_default();
            for p in skipped {
                if let Some(to) = p["to"].as_str() {
                    ctx.store.skip_snapshot(t.repo, t.bundle, to).await?;
                }
            }
            let mut kept = Vec::new();
            for c in changes {
                if !ctx.store.is_skipped(t.repo, t.bundle, &c.to).await? {
                    kept.push(c);
                }
            }
            changes = kept;
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let sha = commit(gh, t, &changes).await?;
    if gh.branch_head(t.repo, &branch).await?.is_some() {
        // Left over from a closed bump: evalgate's to reuse.
        gh.force_branch(t.repo, &branch, &sha).await?;
    } else {
        gh.create_branch(t.repo, &branch, &sha).await?;
    }
    let number =
        gh.create_pull(t.repo, &title(t.bundle, &changes), &branch, t.default, &body(ctx, t, &changes)?).await?;
    let bump = PinBump { branch, pr_number: number, proposed: proposed(&changes), commit_sha: sha };
    ctx.store.save_pin_bump(t.repo, t.bundle, &bump).await?;
    tracing::info!(pr = number, "bump pull request opened");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundles_own_gate_is_pre_registered() {
        let text = "eval:\n  gate:\n    max_regression_rate: 0.02\n    max_p95_latency_increase_ms: 500\n";
        assert_eq!(thresholds(text), vec!["max_regression_rate: 0.02", "max_p95_latency_increase_ms: 500"]);
        assert_eq!(thresholds("eval: {}\n"), vec!["max_regression_rate: 0%"]);
    }

    #[test]
    fn a_pre_registration_of_the_bundles_gate_parses() {
        let text = "eval:\n  gate:\n    max_regression_rate: 0.02\n    min_pass_rate: 0.9\n";
        let body = format!(
            "### What changed\nx\n### Expected to move\ny\n### Success threshold\n{}\n",
            thresholds(text).join("\n")
        );
        let p = evaluators::preregistration::parse(Some(&body)).expect("a valid pre-registration");
        assert_eq!(evaluators::preregistration::thresholds_of(&p).len(), 2);
    }
}
