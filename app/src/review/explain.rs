//! `/evalgate explain <case-id>`: one case on both sides, from the stored reports at the head —
//! its input, each side's answer, tool calls, checks and judge reasons.

use crate::store::gate_runs::GateRun;
use serde_json::Value;
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

fn side(out: &mut String, case: &Value, which: &str) {
    let run = &case[which];
    let _ = writeln!(out, "#### {which}: {}", run["verdict"].as_str().unwrap_or("?"));
    for (i, sample) in run["samples"].as_array().into_iter().flatten().enumerate() {
        if run["samples"].as_array().map_or(0, Vec::len) > 1 {
            let _ = writeln!(out, "Sample {}: {}", i + 1, sample["verdict"].as_str().unwrap_or("?"));
        }
        if let Some(err) = sample["error"].as_str() {
            let _ = writeln!(out, "Could not run: {err}");
        }
        let t = &sample["transcript"];
        for e in t["events"].as_array().into_iter().flatten().filter(|e| e["kind"] == "tool") {
            let call = &e["call"];
            let _ = writeln!(
                out,
                "- tool `{}({})` → {}",
                call["name"].as_str().unwrap_or("?"),
                clip(&call["args"].to_string(), 300),
                clip(e["result"].as_str().unwrap_or(""), 300)
            );
        }
        if let Some(answer) = t["final_text"].as_str() {
            out.push_str("Answer:\n");
            out.push_str(&fenced(&clip(answer, 4_000)));
        }
        for c in sample["checks"].as_array().into_iter().flatten() {
            let mark = if c["passed"].as_bool() == Some(true) { "pass" } else { "FAIL" };
            let _ = writeln!(
                out,
                "- {mark} `{}`: {}",
                c["type"].as_str().unwrap_or("?"),
                clip(c["detail"].as_str().unwrap_or(""), 500)
            );
        }
        for j in sample["judge"].as_array().into_iter().flatten() {
            let state = j["state"].as_str().unwrap_or("?");
            let verdict = match (state, j["pass"].as_bool()) {
                ("decided", Some(true)) => "pass".to_owned(),
                ("decided", Some(false)) => "FAIL".to_owned(),
                _ => format!("judge error: {}", j["reason"].as_str().unwrap_or("")),
            };
            let _ = writeln!(out, "- judge {verdict}");
            for v in j["votes"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "  - vote {} ({}): {}",
                    if v["pass"].as_bool() == Some(true) { "pass" } else { "fail" },
                    v["score"],
                    clip(v["reason"].as_str().unwrap_or(""), 500)
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
        let Some(report) = run.report.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()) else { continue };
        let cases = report["cases"].as_array().cloned().unwrap_or_default();
        let Some(case) = cases.iter().find(|c| c["id"] == case_id) else {
            known.extend(cases.iter().take(20).filter_map(|c| c["id"].as_str().map(str::to_owned)));
            continue;
        };
        let _ =
            writeln!(out, "### `{case_id}` in `evalgate/{}`: {}\n", run.bundle, case["change"].as_str().unwrap_or(""));
        out.push_str("Input:\n");
        for m in case["input"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "- **{}**: {}",
                m["role"].as_str().unwrap_or("?"),
                clip(m["content"].as_str().unwrap_or(""), 2_000)
            );
        }
        out.push('\n');
        side(&mut out, case, "base");
        side(&mut out, case, "head");
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
