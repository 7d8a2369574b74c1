//! `/evalgate explain <case-id>`: one case on both sides, from the stored reports at the head —
//! its input, each side's answer, tool calls, checks and judge reasons.

use crate::store::gate_runs::GateRun;
use evaluators::engine::CaseRun;
use evaluators::engine::judge::JudgeOutcome;
use evaluators::engine::runner::Event;
use evaluators::golden::Role;
use evaluators::report::Report;
use std::fmt::Write as _;

/// The text of one value for a comment, cut so one case cannot flood the thread.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// A fenced block that cannot be closed early by backticks inside it.
fn fenced(s: &str) -> String {
    let ticks = "`".repeat(3.max(longest_backtick_run(s) + 1));
    format!("{ticks}\n{s}\n{ticks}\n")
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

fn side(out: &mut String, run: &CaseRun, which: &str) {
    let _ = writeln!(out, "#### {which}: {}", run.verdict.as_str());
    for (i, sample) in run.samples.iter().enumerate() {
        if run.samples.len() > 1 {
            let _ = writeln!(out, "Sample {}: {}", i + 1, sample.verdict.as_str());
        }
        if let Some(err) = &sample.error {
            let _ = writeln!(out, "Could not run: {err}");
        }
        if let Some(t) = &sample.transcript {
            for e in &t.events {
                if let Event::Tool { call, result, .. } = e {
                    let _ = writeln!(
                        out,
                        "- tool `{}({})` → {}",
                        call.name,
                        clip(&call.args.to_string(), 300),
                        clip(result, 300)
                    );
                }
            }
            out.push_str("Answer:\n");
            out.push_str(&fenced(&clip(&t.final_text, 4_000)));
        }
        for c in &sample.checks {
            let mark = if c.passed { "pass" } else { "FAIL" };
            let _ = writeln!(out, "- {mark} `{}`: {}", c.check_type, clip(&c.detail, 500));
        }
        for j in &sample.judge {
            let (verdict, votes) = match &j.outcome {
                JudgeOutcome::Decided { pass: true, votes } => ("pass".to_owned(), votes),
                JudgeOutcome::Decided { pass: false, votes } => ("FAIL".to_owned(), votes),
                JudgeOutcome::Error { reason, votes } => (format!("judge error: {reason}"), votes),
            };
            let _ = writeln!(out, "- judge {verdict}");
            for v in votes {
                let _ = writeln!(
                    out,
                    "  - vote {} ({}): {}",
                    if v.pass { "pass" } else { "fail" },
                    v.score,
                    clip(&v.reason, 500)
                );
            }
        }
    }
    out.push('\n');
}

pub fn render(runs: &[GateRun], case_id: &str) -> String {
    let mut out = String::new();
    let mut known: Vec<String> = Vec::new();
    for run in runs {
        let Some(text) = run.report.as_deref() else { continue };
        let report: Report = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(
                    out,
                    "The stored report of `evalgate/{}` cannot be read by this version: {e}\n",
                    run.bundle
                );
                continue;
            }
        };
        let Some(case) = report.cases.iter().find(|c| c.id == case_id) else {
            known.extend(report.cases.iter().take(20).map(|c| c.id.clone()));
            continue;
        };
        let change =
            serde_json::to_value(case.change).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let _ = writeln!(out, "### `{case_id}` in `evalgate/{}`: {}\n", run.bundle, change.replace('_', " "));
        out.push_str("Input:\n");
        for m in &case.input {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let _ = writeln!(out, "- **{role}**: {}", clip(&m.content, 2_000));
        }
        out.push('\n');
        match &case.base {
            Some(b) => side(&mut out, b, "base"),
            None => out.push_str("#### base: none (a new bundle, evaluated on head alone)\n\n"),
        }
        side(&mut out, &case.head, "head");
    }
    if out.is_empty() {
        let hint = if known.is_empty() {
            "no evaluation at this head has finished yet".to_owned()
        } else {
            format!("cases include {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
        };
        return format!("No case `{case_id}` in the reports at this head ({hint}).");
    }
    out
}
