//! The README's quick start: `examples/refund-agent` (1.5) against `examples/refund-agent-v1.4`,
//! answered from the cassette shipped with the example. The cassette's responses are example
//! responses written for the demo (`examples/refund-agent/demo/script.jsonl`); the ignored test
//! here records them again through a fake provider that follows that script.

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use support::Run;
use support::fake_provider::{FakeProvider, Reply, SeenRequest};

const QUICK_START: &[&str] = &[
    "eval",
    "examples/refund-agent",
    "--base-dir",
    "examples/refund-agent-v1.4",
    "--replay",
    "examples/refund-agent/demo/cassette.jsonl",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

async fn evalgate(args: &[&str], db: &Path, extra_env: &[(&str, String)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_evalgate"));
    cmd.args(args)
        .current_dir(workspace())
        .env("EVALGATE_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("EVALGATE_ANTHROPIC_BASE_URL");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run evalgate").into()
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quick_start_replays_the_demo_offline_with_its_regression_and_fixes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let json = tmp.path().join("report.json");
    let mut args = QUICK_START.to_vec();
    let json_arg = json.display().to_string();
    args.extend(["--json", &json_arg]);
    let run = evalgate(&args, &tmp.path().join("demo.db"), &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    assert_eq!(ids(&r["regressions"]), ["refund-040"]);
    assert_eq!(ids(&r["fixes"]), ["refund-011", "refund-012", "refund-021", "refund-024", "refund-034"]);
    assert_eq!(r["gate"]["passed"], true);
    assert!(run.stdout.contains("gate passed: 1 regression, 5 fixes"), "{}", run.stdout);
}

/// One scripted reply sequence: a case on one side.
struct Entry {
    steps: Vec<Value>,
    judge: Option<Value>,
}

struct Demo {
    base_prompt: String,
    head_prompt: String,
    /// A case's last user message → its id.
    cases: Vec<(String, String)>,
    script: HashMap<(String, &'static str), Entry>,
}

impl Demo {
    fn load() -> Demo {
        let root = workspace();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        let cases = read("golden-sets/refund/cases.jsonl")
            .lines()
            .map(|l| {
                let c: Value = serde_json::from_str(l).expect("case");
                let last = c["input"]["messages"].as_array().and_then(|m| m.last()).expect("messages")["content"]
                    .as_str()
                    .expect("content")
                    .to_owned();
                (last, c["id"].as_str().expect("id").to_owned())
            })
            .collect();
        let mut script = HashMap::new();
        for l in read("examples/refund-agent/demo/script.jsonl").lines().filter(|l| !l.trim().is_empty()) {
            let e: Value = serde_json::from_str(l).expect("script line");
            let case = e["case"].as_str().expect("case").to_owned();
            let sides: &[&'static str] = match e["side"].as_str() {
                Some("base") => &["base"],
                Some("head") => &["head"],
                _ => &["base", "head"],
            };
            for side in sides {
                let entry =
                    Entry { steps: e["steps"].as_array().expect("steps").clone(), judge: e.get("judge").cloned() };
                script.insert((case.clone(), *side), entry);
            }
        }
        Demo {
            base_prompt: read("examples/refund-agent-v1.4/prompts/system.md"),
            head_prompt: read("examples/refund-agent/prompts/system.md"),
            cases,
            script,
        }
    }

    fn case_of(&self, text: &str) -> Option<&str> {
        self.cases.iter().find(|(last, _)| text.contains(last.as_str())).map(|(_, id)| id.as_str())
    }

    /// Deterministic "model time", so the cassette's latencies look like a real model's.
    fn latency(key: &str, lo: u64, hi: u64) -> std::time::Duration {
        let h = key.bytes().fold(1469598103934665603u64, |h, b| (h ^ u64::from(b)).wrapping_mul(1099511628211));
        std::time::Duration::from_millis(lo + h % (hi - lo))
    }

    fn reply(&self, req: &SeenRequest) -> Reply {
        if req.tool_choice.as_deref() == Some("record_verdict") {
            let text = req.last_user_text();
            let answer = text.split("## Answer to grade\n").nth(1).unwrap_or_default().trim_end();
            let case = self.case_of(&text).unwrap_or_default().to_owned();
            let verdict = ["head", "base"].iter().find_map(|side| {
                let e = self.script.get(&(case.clone(), *side))?;
                let last = e.steps.last()?["text"].as_str()?.trim_end();
                (last == answer).then(|| e.judge.clone()).flatten()
            });
            let Some(v) = verdict else { return Reply::text(format!("no scripted verdict for {case}")) };
            return Reply::Slow(
                Self::latency(&format!("judge{case}{answer}"), 300, 800),
                Box::new(Reply::tool("record_verdict", v)),
            );
        }
        let side = if req.system == self.head_prompt {
            "head"
        } else if req.system == self.base_prompt {
            "base"
        } else {
            return Reply::text("unknown system prompt");
        };
        let users: Vec<&str> = req.messages.iter().filter(|m| m.role == "user").map(|m| m.text.as_str()).collect();
        let Some(case) = users.iter().rev().find_map(|t| self.case_of(t)) else { return Reply::text("unknown case") };
        let Some(entry) = self.script.get(&(case.to_owned(), side)) else { return Reply::text("unscripted case") };
        let step = req.messages.iter().filter(|m| !m.tool_results.is_empty()).count();
        let Some(s) = entry.steps.get(step) else { return Reply::text("script ran out of steps") };
        let text = s["text"].as_str().unwrap_or_default().to_owned();
        let calls: Vec<(String, Value)> = s["tool_calls"]
            .as_array()
            .map(|a| a.iter().map(|c| (c["name"].as_str().unwrap_or_default().to_owned(), c["args"].clone())).collect())
            .unwrap_or_default();
        let reply = if calls.is_empty() { Reply::text(text) } else { Reply::TextAndToolCalls(text, calls) };
        Reply::Slow(Self::latency(&format!("{case}{side}{step}"), 700, 1900), Box::new(reply))
    }
}

/// Records `examples/refund-agent/demo/cassette.jsonl` again from the script:
/// `cargo test -p evalgate --test demo_cassette -- --ignored`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "rewrites the example cassette; run by hand after changing the demo script"]
async fn record_the_demo_cassette() {
    let demo = std::sync::Arc::new(Demo::load());
    let fake = FakeProvider::start(move |req| demo.reply(req)).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let cassette = workspace().join("examples/refund-agent/demo/cassette.jsonl");
    let cassette_arg = cassette.display().to_string();
    let args = ["eval", "examples/refund-agent", "--base-dir", "examples/refund-agent-v1.4", "--record", &cassette_arg];
    let env =
        [("ANTHROPIC_API_KEY", "demo-key".to_owned()), ("EVALGATE_ANTHROPIC_BASE_URL", fake.anthropic_base_url())];
    let run = evalgate(&args, &tmp.path().join("record.db"), &env).await;
    println!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "recording failed");
}
