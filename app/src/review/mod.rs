//! Reviewer commands from PR comments. Only users with write, maintain or admin permission on
//! the repository steer evalgate; anyone else gets a short reply and nothing changes. Every
//! command — run or refused — is an audit entry, and gets a reaction or a reply so its author
//! knows it was read. evalgate ignores comments by bots, its own included.

mod explain;
pub mod parse;

use crate::audit::Kind;
use crate::flow::checks::{self, GOLDEN_SET};
use crate::flow::pr;
use crate::github::Installation;
use crate::github::check::Conclusion;
use crate::jobs::{Ctx, JobError};
use crate::store::audit::NewEntry;
use crate::store::gate_runs::{Decision, Guard, RunState};
use parse::{Command, ParseError};
use serde_json::json;
use std::sync::Arc;

/// A comment evalgate was sent.
pub struct Comment<'a> {
    pub installation: u64,
    pub repo: &'a str,
    pub number: u64,
    pub id: u64,
    pub body: &'a str,
    /// The body before an edit: only commands the edit adds run.
    pub previous: Option<&'a str>,
    /// Who wrote the comment.
    pub comment_author: &'a str,
    /// The actor: the event's `sender`, who created or edited the comment. Everything is done,
    /// checked and recorded in their name.
    pub author: &'a str,
    pub author_is_bot: bool,
}

pub async fn on_comment(ctx: &Arc<Ctx>, c: Comment<'_>) -> Result<(), JobError> {
    if c.author_is_bot || c.author.ends_with("[bot]") {
        return Ok(());
    }
    // Someone who edits another person's comment does not act with that person's permission,
    // nor with their own: nothing in the edit runs.
    if c.previous.is_some() && c.author != c.comment_author {
        if !parse::new_commands(c.previous.unwrap_or_default(), c.body).is_empty() {
            tracing::info!(
                sender = c.author,
                author = c.comment_author,
                "commands added by another user's edit ignored"
            );
            let data = json!({ "command": null, "accepted": false, "comment_author": c.comment_author,
                "reason": "an edit of another user's comment runs nothing" });
            audit(ctx, &c, data).await?;
        }
        return Ok(());
    }
    let parsed = parse::parse(c.body);
    let commands = match c.previous {
        Some(old) => parse::new_commands(old, c.body),
        None => parsed.commands.clone(),
    };
    // On an edit, the errors of lines that were there before were answered then.
    let errors: Vec<&ParseError> = match c.previous {
        Some(old) => {
            let before: Vec<String> = parse::parse(old).errors.iter().map(|e| e.to_string()).collect();
            parsed.errors.iter().filter(|e| !before.contains(&e.to_string())).collect()
        }
        None => parsed.errors.iter().collect(),
    };
    if commands.is_empty() && errors.is_empty() {
        return Ok(());
    }
    let gh = ctx.github.installation(c.installation)?;
    if !errors.is_empty() {
        let list: String = errors.iter().map(|e| format!("- {e}\n")).collect();
        reply(&gh, &c, &format!("@{}: evalgate could not read this comment:\n\n{list}", c.author)).await?;
        let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        audit(ctx, &c, json!({ "command": null, "accepted": false, "errors": errors })).await?;
    }
    if commands.is_empty() {
        return Ok(());
    }
    let permission = gh.permission(c.repo, c.author).await?;
    if !permission.can_write() {
        let names: Vec<&str> = commands.iter().map(|(_, cmd)| cmd.name()).collect();
        reply(
            &gh,
            &c,
            &format!(
                "@{}: only users with write, maintain or admin permission on this repository can run `/evalgate {}`; nothing was changed.",
                c.author,
                names.join("`, `/evalgate ")
            ),
        )
        .await?;
        for name in names {
            audit(ctx, &c, json!({ "command": name, "accepted": false, "reason": "no write permission" })).await?;
        }
        return Ok(());
    }
    for (_, cmd) in commands {
        audit(ctx, &c, json!({ "command": cmd.name(), "accepted": true, "argument": argument(&cmd) })).await?;
        run(ctx, &gh, &c, &cmd).await?;
    }
    Ok(())
}

fn argument(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Override { reason } => Some(reason),
        Command::Explain { case_id } => Some(case_id),
        _ => None,
    }
}

async fn audit(ctx: &Ctx, c: &Comment<'_>, mut data: serde_json::Value) -> Result<(), JobError> {
    data["comment_id"] = json!(c.id);
    ctx.store.audit(c.repo, Kind::Command, c.author, Some(c.number), data).await?;
    Ok(())
}

/// `review.allow_self_approval` of the base's `.evalgate.yml` (a pull request cannot grant it to
/// itself).
async fn self_approval_allowed(gh: &Installation, repo: &str, base_sha: &str) -> Result<bool, JobError> {
    let tree = crate::github::tree::CommitTree::fetch(gh, repo, base_sha).await?;
    let (cfg, _) = crate::flow::touched::config_of(gh, &tree).await?;
    Ok(cfg.allow_self_approval)
}

async fn reply(gh: &Installation, c: &Comment<'_>, text: &str) -> Result<(), JobError> {
    gh.create_comment(c.repo, c.number, text).await?;
    Ok(())
}

async fn react(gh: &Installation, c: &Comment<'_>, content: &str) -> Result<(), JobError> {
    gh.react(c.repo, c.id, content).await?;
    Ok(())
}

async fn run(ctx: &Arc<Ctx>, gh: &Installation, c: &Comment<'_>, cmd: &Command) -> Result<(), JobError> {
    let Some(pr_row) = ctx.store.pr(c.repo, c.number).await? else {
        return reply(
            gh,
            c,
            &format!("@{}: evalgate has not seen a bundle change on this pull request yet.", c.author),
        )
        .await;
    };
    let head = pr_row.head_sha.clone();
    // Separation of duties: the pull request's author does not pass or approve their own change,
    // unless the base branch's `.evalgate.yml` says `review: { allow_self_approval: true }`.
    if matches!(cmd, Command::Override { .. } | Command::ApproveGolden | Command::AcceptThresholds) {
        let pr = gh.pull_request(c.repo, c.number).await?;
        if pr.user.login == c.author && !self_approval_allowed(gh, c.repo, &pr_row.base_sha).await? {
            let data = json!({ "command": cmd.name(), "accepted": false, "reason": "the pull request's own author" });
            audit(ctx, c, data).await?;
            return reply(
                gh,
                c,
                &format!(
                    "@{}: the author of a pull request cannot run `/evalgate {}` on it (separation of duties); another user with write access can. A repository allows it with `review: {{ allow_self_approval: true }}` in `.evalgate.yml`.",
                    c.author,
                    cmd.name()
                ),
            )
            .await;
        }
    }
    match cmd {
        Command::Rerun => {
            react(gh, c, "+1").await?;
            pr::rerun(ctx, c.installation, c.repo, c.number, &head, None).await
        }
        Command::Run => {
            react(gh, c, "+1").await?;
            pr::approve_fork(ctx, c.installation, c.repo, c.number, &head, c.author).await
        }
        Command::Override { reason } => override_gate(ctx, gh, c, &head, reason).await,
        Command::Explain { case_id } => {
            let runs = ctx.store.gate_runs_at(c.repo, c.number, &head).await?;
            let text = explain::render(&runs, case_id);
            reply(gh, c, &crate::render::fit(&text, crate::render::MAX_COMMENT, None)).await
        }
        Command::AcceptThresholds => accept_thresholds(ctx, gh, c, &head).await,
        Command::ApproveGolden => approve_golden(ctx, gh, c, &head).await,
    }
}

/// Turns the completed, failed gate runs at the head green, naming who and why.
async fn override_gate(
    ctx: &Arc<Ctx>,
    gh: &Installation,
    c: &Comment<'_>,
    head: &str,
    reason: &str,
) -> Result<(), JobError> {
    let runs = ctx.store.gate_runs_at(c.repo, c.number, head).await?;
    let failed: Vec<_> =
        runs.iter().filter(|r| r.state == RunState::Completed && r.conclusion.as_deref() != Some("success")).collect();
    if failed.is_empty() {
        // A retry of this very command (its decision committed, GitHub not told yet): done.
        if runs
            .iter()
            .any(|r| r.override_by.as_deref() == Some(c.author) && r.override_reason.as_deref() == Some(reason))
        {
            return react(gh, c, "+1").await;
        }
        return reply(gh, c, &format!("@{}: there is no failed gate at this head to override.", c.author)).await;
    }
    for run in failed {
        let was = run.title.clone().unwrap_or_default();
        let title = format!("gate overridden by @{}: {reason}", c.author);
        let summary = format!(
            "**Overridden by @{} on {}:** {reason}\n\nThe gate's own result was: {was} ({}).\n\n{}",
            c.author,
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            run.conclusion.as_deref().unwrap_or("unknown"),
            run.summary.clone().unwrap_or_default()
        );
        let data = json!({ "bundle": run.bundle, "manifest": run.manifest, "head_sha": head, "reason": reason, "was": was,
            "was_conclusion": run.conclusion });
        // The override and its audit entry commit together; the publisher tells GitHub.
        let d = Decision {
            run_id: &run.id,
            guard: Guard::Completed,
            state: RunState::Completed,
            conclusion: "success",
            title: &title,
            summary: &summary,
            report: None,
            annotations: None,
            override_by: Some((c.author, reason)),
            audit: Some(NewEntry {
                repo: c.repo,
                kind: Kind::Override,
                actor: c.author,
                pr_number: Some(c.number),
                data,
            }),
        };
        ctx.store.decide(&d).await?;
    }
    ctx.publish_wake.notify_one();
    react(gh, c, "+1").await
}

/// Makes the body's current thresholds the ones in force, and evaluates again under them.
async fn accept_thresholds(ctx: &Arc<Ctx>, gh: &Installation, c: &Comment<'_>, head: &str) -> Result<(), JobError> {
    let current = gh.pull_request(c.repo, c.number).await?;
    let prereg = match evaluators::preregistration::parse(current.body.as_deref()) {
        Ok(p) => p,
        Err(problems) => {
            let list: String = problems.iter().map(|p| format!("- {p}\n")).collect();
            let text =
                format!("@{}: the pull request body has no valid pre-registration to accept:\n\n{list}", c.author);
            return reply(gh, c, &text).await;
        }
    };
    let thresholds = pr::thresholds_json(&prereg);
    let before = ctx.store.pr(c.repo, c.number).await?.and_then(|p| p.thresholds);
    ctx.store.accept_thresholds(c.repo, c.number, &thresholds).await?;
    let data = json!({ "approved": "thresholds", "was": before, "now": thresholds, "head_sha": head });
    ctx.store.audit(c.repo, Kind::Approval, c.author, Some(c.number), data).await?;
    react(gh, c, "+1").await?;
    // The pre-registration check shows the accepted thresholds; the gates run again under them
    // (from the result cache: the inputs did not change).
    pr::sync(ctx, c.installation, c.repo, c.number, None).await?;
    pr::rerun(ctx, c.installation, c.repo, c.number, head, None).await
}

/// Clears `evalgate/golden-set` for the change it shows now.
async fn approve_golden(ctx: &Arc<Ctx>, gh: &Installation, c: &Comment<'_>, head: &str) -> Result<(), JobError> {
    let Some((fingerprint, title, summary)) = ctx.store.golden_change(c.repo, head).await? else {
        let text = format!(
            "@{}: this pull request changes nothing that measures it (golden set, gate, samples, budget, judge, or a bundle added or removed) at its head; nothing to approve.",
            c.author
        );
        return reply(gh, c, &text).await;
    };
    ctx.store.approve(c.repo, c.number, "golden", &fingerprint, c.author).await?;
    let data = json!({ "approved": "golden-set", "head_sha": head, "fingerprint": fingerprint, "change": title });
    ctx.store.audit(c.repo, Kind::Approval, c.author, Some(c.number), data).await?;
    let pr_url = gh.pull_request(c.repo, c.number).await?.html_url;
    let body = pr::golden_body(&pr::approved_title(&title, c.author), &summary, Conclusion::Success, &pr_url);
    checks::keep(ctx, c.installation, c.repo, head, GOLDEN_SET, &body).await?;
    // New and removed bundles wait for this approval: they show their own conclusion now.
    pr::apply_bundle_approval(ctx, gh, c.repo, c.number, head, c.author).await?;
    react(gh, c, "+1").await
}
