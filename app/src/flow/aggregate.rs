//! The `evalgate` check: one check on every pull-request head and merge-queue group, always, so
//! a team can mark it required. It sums up the evalgate checks of that head — failure when any
//! failed, action_required when any waits for a person, success when all succeeded or were
//! approved, or "no bundle touched" — and follows every change of them: it is recomputed from
//! the database after each decision is published and whenever a run is started again, and its
//! body is kept in `check_states`, published like any other decision.

use super::checks::{GOLDEN_SET, PRE_REGISTRATION, bundle_check};
use super::{Ctx, JobError};
use crate::github::check::{CheckBody, Conclusion, Status};
use crate::store::gate_runs::{GateRun, RunState};
use crate::store::head_syncs::{AGGREGATE_CHECK, Read, Subject};

/// The name of the check to mark required.
pub const EVALGATE: &str = AGGREGATE_CHECK;

/// What one summed-up check shows, as the aggregate reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Pending,
    Done(Conclusion),
}

/// One row of the aggregate's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub part: Part,
    pub title: String,
    pub link: Option<String>,
}

/// A subject (a pull request, or a merge group: `MERGE_GROUP`) starts reading its head against `base`:
/// the check is created before anything is read, so a required check never waits on nothing,
/// and goes back to pending when the base moved, so an earlier read's success never shows for a
/// pair not yet read. The store marks the check with the change.
pub async fn begin(ctx: &Ctx, s: Subject<'_>, base: &str) -> Result<(), JobError> {
    if ctx.store.begin_head_sync(s, base).await? {
        ctx.publish_wake.notify_one();
    }
    Ok(())
}

/// The subject read its head against `base`: `touched` bundles, every run of them recorded.
pub async fn read(ctx: &Ctx, s: Subject<'_>, base: &str, touched: u64) -> Result<(), JobError> {
    ctx.store.set_head_sync(s, base, touched).await?;
    ctx.publish_wake.notify_one();
    Ok(())
}

/// The subject no longer has its head to merge (closed, destroyed), or its read gave up
/// (`failed`: the check fails rather than waiting forever).
pub async fn end(ctx: &Ctx, s: Subject<'_>, failed: bool) -> Result<(), JobError> {
    ctx.store.end_head_sync(s, failed).await?;
    ctx.publish_wake.notify_one();
    Ok(())
}

/// A pull request closed (every head it has open is closed), or a read of its gave up for good
/// (`failed`: every head it was still reading fails, whichever head the delivery named).
pub async fn end_subject(ctx: &Ctx, installation: u64, repo: &str, subject: u64, failed: bool) -> Result<(), JobError> {
    for head in ctx.store.open_heads_of(repo, subject, failed).await? {
        end(ctx, Subject { repo, head_sha: &head, subject, installation_id: installation }, failed).await?;
    }
    Ok(())
}

/// Something the check on `head` sums up changed (committed before this call): the publisher
/// works the check out again from the database and brings GitHub in line. Working it out at
/// publication, under the publication's lease, means two changes at once can never leave an
/// older sum showing.
pub async fn refresh(ctx: &Ctx, installation: u64, repo: &str, head: &str) -> Result<(), JobError> {
    ctx.store.mark_check_state(repo, head, EVALGATE, installation).await?;
    ctx.publish_wake.notify_one();
    Ok(())
}

/// The `evalgate` check on `head`, worked out from the database: every open subject of the
/// head, each with its runs against its own base, the failures and waits of closed ones, and
/// the head's pre-registration and golden-set checks. When every subject is closed, what they
/// last were (cancelled runs).
/// `None` when no subject has begun reading it.
pub async fn compute(ctx: &Ctx, repo: &str, head: &str) -> Result<Option<CheckBody>, JobError> {
    let syncs = ctx.store.head_syncs(repo, head).await?;
    if syncs.is_empty() {
        return Ok(None);
    }
    let open: Vec<_> = syncs.iter().filter(|s| s.read != Read::Closed).collect();
    let all_closed = open.is_empty();
    let mut rows = Vec::new();
    for (name, body) in ctx.store.check_states_at(repo, head).await? {
        if name != PRE_REGISTRATION && name != GOLDEN_SET {
            continue;
        }
        let b = serde_json::from_str::<CheckBody>(&body)
            .map_err(|e| JobError::Fatal(format!("stored `{name}` check on {head}: {e}")))?;
        let part = b.conclusion().map_or(Part::Pending, Part::Done);
        rows.push(Row { name, part, title: b.title, link: None });
    }
    let (mut touched, mut reading) = (0, false);
    for sync in &syncs {
        if sync.read == Read::Closed && !all_closed {
            // A closed pull request's failures and waits still count — its head is this head,
            // and reopening it must not show another's success meanwhile — but nothing of it can
            // make the check pass or stand in for another subject's missing run.
            for run in ctx.store.runs_at_pair(repo, sync.subject, head, &sync.base_sha).await? {
                let row = row_of_run(ctx, &run);
                let worse = [Conclusion::Failure, Conclusion::TimedOut, Conclusion::ActionRequired];
                if worse.iter().any(|c| row.part == Part::Done(*c)) {
                    rows.push(row);
                }
            }
            continue;
        }
        match sync.read {
            Read::Reading => reading = true,
            Read::Touched(n) => touched += n,
            Read::Failed => rows.push(Row {
                name: EVALGATE.to_owned(),
                part: Part::Done(Conclusion::Failure),
                title: "what this commit changes could not be read; re-run the check".to_owned(),
                link: None,
            }),
            Read::Closed => {}
        }
        for run in ctx.store.runs_at_pair(repo, sync.subject, head, &sync.base_sha).await? {
            rows.push(row_of_run(ctx, &run));
        }
    }
    Ok(Some(sum(touched, reading, &rows)))
}

fn row_of_run(ctx: &Ctx, run: &GateRun) -> Row {
    let part = match run.state {
        RunState::Completed => {
            Part::Done(run.conclusion.as_deref().and_then(Conclusion::parse).unwrap_or(Conclusion::Failure))
        }
        RunState::Cancelled => Part::Done(Conclusion::Cancelled),
        RunState::AwaitingApproval => Part::Done(Conclusion::ActionRequired),
        RunState::AwaitingPreRegistration | RunState::Queued | RunState::InProgress => Part::Pending,
    };
    let title = match (&run.title, run.state) {
        (Some(t), RunState::Completed | RunState::Cancelled) => t.clone(),
        (_, RunState::AwaitingApproval) => "awaiting a writer's approval".to_owned(),
        (_, RunState::AwaitingPreRegistration) => "waiting for the pre-registration".to_owned(),
        (_, RunState::Queued) => "queued".to_owned(),
        _ => "evaluating".to_owned(),
    };
    Row { name: bundle_check(&run.bundle), part, title, link: Some(ctx.details_url(&run.id)) }
}

/// The aggregate of `rows` for a head that touches `touched` bundles; `reading` while a subject
/// is still reading what the head changes.
pub fn sum(touched: u64, reading: bool, rows: &[Row]) -> CheckBody {
    if reading && rows.is_empty() {
        return CheckBody::new(
            Status::Queued,
            "reading what changed",
            "evalgate is reading which bundles this commit touches.",
        );
    }
    if touched == 0 && rows.is_empty() {
        return CheckBody::new(
            Status::Completed(Conclusion::Success),
            "no bundle touched",
            "This commit touches no evalgate bundle, so there is nothing to evaluate.",
        );
    }
    let count = |c: Conclusion| rows.iter().filter(|r| r.part == Part::Done(c)).count();
    let pending = rows.iter().filter(|r| r.part == Part::Pending).count();
    let failed = count(Conclusion::Failure) + count(Conclusion::TimedOut);
    let waiting = count(Conclusion::ActionRequired);
    let cancelled = count(Conclusion::Cancelled);
    let n = rows.len();
    let runs = rows.iter().filter(|r| r.name != PRE_REGISTRATION && r.name != GOLDEN_SET && r.name != EVALGATE).count();
    let (status, title) = if failed > 0 {
        (Status::Completed(Conclusion::Failure), format!("{failed} of {n} evalgate checks failed"))
    } else if reading || pending > 0 || runs < touched as usize {
        (Status::InProgress, format!("{} of {n} evalgate checks finished", n - pending))
    } else if waiting > 0 {
        (Status::Completed(Conclusion::ActionRequired), format!("{waiting} of {n} evalgate checks await a person"))
    } else if cancelled > 0 {
        // A superseded head, a closed pull request, a destroyed merge group: nothing to merge.
        (Status::Completed(Conclusion::Cancelled), format!("{cancelled} of {n} evalgate checks cancelled"))
    } else {
        (Status::Completed(Conclusion::Success), format!("all {n} evalgate checks passed or were approved"))
    };
    CheckBody::new(status, title, table(rows))
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from("| check | result | |\n|---|---|---|\n");
    for r in rows {
        let result = match &r.part {
            Part::Pending => "pending",
            Part::Done(c) => c.as_str(),
        };
        let title = r.title.replace('|', "\\|").replace(['\r', '\n'], " ");
        let link = r.link.as_deref().map(|l| format!("[report]({l})")).unwrap_or_default();
        out.push_str(&format!("| `{}` | {result}: {title} | {link} |\n", r.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, part: Part) -> Row {
        Row { name: name.into(), part, title: "t".into(), link: None }
    }

    #[test]
    fn nothing_touched_is_success() {
        assert_eq!(sum(0, false, &[]).conclusion(), Some(Conclusion::Success));
        assert_eq!(sum(0, false, &[]).title, "no bundle touched");
    }

    #[test]
    fn a_touched_head_without_its_checks_yet_is_in_progress_never_success() {
        assert_eq!(sum(2, false, &[]).status, Status::InProgress);
        let one = [
            row("evalgate/a", Part::Done(Conclusion::Success)),
            row(PRE_REGISTRATION, Part::Done(Conclusion::Success)),
        ];
        assert_eq!(sum(2, false, &one).status, Status::InProgress, "the second bundle's check is not there yet");
    }

    #[test]
    fn a_head_still_being_read_is_pending_whatever_else_is_known() {
        assert_eq!(sum(0, true, &[]).status, Status::Queued);
        let passed = [row(PRE_REGISTRATION, Part::Done(Conclusion::Success))];
        assert_eq!(sum(0, true, &passed).status, Status::InProgress, "one subject is not read yet");
        assert_eq!(sum(0, false, &passed).conclusion(), Some(Conclusion::Success));
    }

    #[test]
    fn any_failure_fails_even_while_others_run() {
        let rows = [row("a", Part::Pending), row("b", Part::Done(Conclusion::Failure))];
        assert_eq!(sum(2, false, &rows).conclusion(), Some(Conclusion::Failure));
    }

    #[test]
    fn a_check_waiting_for_a_person_makes_it_action_required_once_the_rest_finished() {
        let rows = [row("a", Part::Done(Conclusion::ActionRequired)), row("b", Part::Pending)];
        assert_eq!(sum(2, false, &rows).status, Status::InProgress);
        let rows = [row("a", Part::Done(Conclusion::ActionRequired)), row("b", Part::Done(Conclusion::Success))];
        assert_eq!(sum(2, false, &rows).conclusion(), Some(Conclusion::ActionRequired));
    }

    #[test]
    fn approved_removals_and_passes_are_success() {
        let rows = [row("a", Part::Done(Conclusion::Neutral)), row("b", Part::Done(Conclusion::Success))];
        assert_eq!(sum(2, false, &rows).conclusion(), Some(Conclusion::Success));
    }

    #[test]
    fn a_cancelled_check_is_never_success() {
        let rows = [row("a", Part::Done(Conclusion::Cancelled)), row("b", Part::Done(Conclusion::Success))];
        assert_eq!(sum(2, false, &rows).conclusion(), Some(Conclusion::Cancelled));
    }

    #[test]
    fn the_summary_has_one_row_per_check_that_no_title_can_break() {
        let mut r = row("evalgate/a", Part::Done(Conclusion::Failure));
        r.title = "x | y\nz".into();
        r.link = Some("http://e/runs/1?token=t".into());
        let s = sum(1, false, &[r]).summary;
        assert!(s.contains("| `evalgate/a` | failure: x \\| y z | [report](http://e/runs/1?token=t) |"), "{s}");
    }
}
