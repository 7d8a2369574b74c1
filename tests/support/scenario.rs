//! A repository built so the answer is known: a base and a head bundle, `n` cases, and a fake
//! provider whose replies follow a per-case plan. The gate's verdict is then predictable to the
//! case id, which is what the engine tests assert.
#![allow(dead_code)]

use super::fake_provider::{FakeProvider, Reply, SeenRequest};
use super::{Repo, Run};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// How the fake agent answers one case on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Pass,
    Fail,
    /// Alternates pass, fail, pass … per call, so samples disagree.
    Flaky,
    /// Alternates fail, pass, fail … per call: fails when run once, "flaky" when run thrice.
    FlakyFailingFirst,
}

/// How the fake judge answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JudgeMode {
    /// A `record_verdict` call: pass when the answer says `ANSWER-OK`.
    Honest,
    /// Prose, never a verdict.
    Prose,
}

pub struct Spec {
    pub cases: usize,
    pub samples: u32,
    /// Cases (1-based) with a judge check.
    pub judged: BTreeSet<usize>,
    pub critical: BTreeSet<usize>,
    pub gate: &'static str,
    pub budget: &'static str,
    pub provider: &'static str,
}

impl Spec {
    pub fn new(cases: usize) -> Spec {
        Spec {
            cases,
            samples: 1,
            judged: BTreeSet::new(),
            critical: BTreeSet::new(),
            gate: "{ max_regression_rate: 0.0 }",
            budget: "{ max_usd: 100.0 }",
            provider: "anthropic",
        }
    }
}

pub fn case_id(i: usize) -> String {
    format!("c{i:02}")
}

/// Even cases call `lookup_order` first (two model calls), odd ones answer at once.
pub fn uses_tool(i: usize) -> bool {
    i % 2 == 0
}

fn bundle_yaml(spec: &Spec, version: &str) -> String {
    let (agent, judge) = match spec.provider {
        "openai" => ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"),
        _ => ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"),
    };
    format!(
        "bundle: demo\nversion: \"{version}\"\nmodel:\n  provider: {p}\n  snapshot: {agent}\n  params: {{ temperature: 0, max_tokens: 256 }}\nprompt: prompt.md\ntools: ../tools.yaml\nrunner: {{ max_turns: 4 }}\neval:\n  golden_set: ../golden\n  golden_set_sha256: \"PIN\"\n  samples: {s}\n  judge:\n    provider: {p}\n    snapshot: {judge}\n    rubric: ../rubric.md\n    samples: 3\n  gate: {gate}\n  budget: {budget}\n",
        p = spec.provider,
        s = spec.samples,
        gate = spec.gate,
        budget = spec.budget,
    )
}

fn prompt(version: &str) -> String {
    format!("# Demo agent\nVersion: {version}\n## Policy\nLook up the order with lookup_order(order_id) first.\n")
}

const TOOLS: &str = "\
- name: lookup_order
  description: Look up an order
  input_schema:
    type: object
    properties: { order_id: { type: string } }
    required: [order_id]
";

fn cases_jsonl(spec: &Spec) -> String {
    let mut out = String::new();
    for i in 1..=spec.cases {
        let mut checks = vec![json!({"type": "contains", "value": "ANSWER-OK"})];
        if spec.judged.contains(&i) {
            checks.push(json!({"type": "judge"}));
        }
        let mut case = json!({
            "id": case_id(i),
            "input": {"messages": [{"role": "user", "content": format!("case {}", case_id(i))}]},
            "checks": checks,
        });
        if uses_tool(i) {
            case["tool_results"] = json!({"lookup_order": {"order_id": case_id(i), "status": "delivered"}});
        }
        if spec.critical.contains(&i) {
            case["tags"] = json!(["critical"]);
        }
        out.push_str(&case.to_string());
        out.push('\n');
    }
    out
}

/// The repository: `base/` and `agent/` (head) bundles sharing tools, rubric and golden set.
pub fn repo(spec: &Spec) -> Repo {
    let repo = Repo::empty();
    repo.write(".evalgate.yml", "lint: { required_sections: [\"## Policy\"] }\n");
    repo.write("tools.yaml", TOOLS);
    repo.write("rubric.md", "Says ANSWER-OK.\n");
    repo.write("golden/golden.yaml", "name: demo\nversion: 1\n");
    repo.write("golden/cases.jsonl", cases_jsonl(spec));
    for (dir, version) in [("base", "base"), ("agent", "head")] {
        repo.write(&format!("{dir}/bundle.yaml"), bundle_yaml(spec, version));
        repo.write(&format!("{dir}/prompt.md"), prompt(version));
        let run = repo.evalgate(&["golden", "pin", dir]);
        assert_eq!(run.code, 0, "golden pin {dir}: {}{}", run.stdout, run.stderr);
    }
    repo
}

/// Per (side, case) plans and the fake's behaviour, shared with the fake's script.
pub struct Script {
    pub base: HashMap<usize, Plan>,
    pub head: HashMap<usize, Plan>,
    pub judge: JudgeMode,
    counters: Mutex<HashMap<(bool, usize), usize>>,
}

impl Script {
    /// Every case passes on both sides unless said otherwise.
    pub fn new() -> Script {
        Script {
            base: HashMap::new(),
            head: HashMap::new(),
            judge: JudgeMode::Honest,
            counters: Mutex::new(HashMap::new()),
        }
    }

    pub fn base(mut self, i: usize, p: Plan) -> Script {
        self.base.insert(i, p);
        self
    }

    pub fn head(mut self, i: usize, p: Plan) -> Script {
        self.head.insert(i, p);
        self
    }

    pub fn judge(mut self, mode: JudgeMode) -> Script {
        self.judge = mode;
        self
    }

    /// The reply to one request, as the scripted provider gives it.
    pub fn reply(&self, req: &SeenRequest) -> Reply {
        if req.tool_choice.as_deref() == Some("record_verdict") {
            let text = req.last_user_text();
            let answer = text.split("## Answer to grade").nth(1).unwrap_or_default();
            return match self.judge {
                JudgeMode::Honest => {
                    let pass = answer.contains("ANSWER-OK");
                    Reply::tool(
                        "record_verdict",
                        json!({"pass": pass, "score": if pass { 1.0 } else { 0.0 }, "reason": if pass { "says it" } else { "does not say it" }}),
                    )
                }
                JudgeMode::Prose => Reply::text("I think this answer is quite good overall."),
            };
        }
        let head = req.system.contains("Version: head");
        let first = req.messages.iter().find(|m| m.role == "user").map(|m| m.text.clone()).unwrap_or_default();
        let Some(i) = first.strip_prefix("case c").and_then(|n| n.trim().parse::<usize>().ok()) else {
            return Reply::Status { status: 400, retry_after: None, retry_after_ms: None, body: "unknown case".into() };
        };
        if uses_tool(i) && req.tool_results_so_far() == 0 {
            return Reply::tool("lookup_order", json!({"order_id": case_id(i)}));
        }
        let plan = *(if head { &self.head } else { &self.base }).get(&i).unwrap_or(&Plan::Pass);
        let pass = match plan {
            Plan::Pass => true,
            Plan::Fail => false,
            Plan::Flaky | Plan::FlakyFailingFirst => {
                let mut c = self.counters.lock().expect("counter lock");
                let n = c.entry((head, i)).or_insert(0);
                *n += 1;
                (*n % 2 == 1) == (plan == Plan::Flaky)
            }
        };
        // The answer names the side, as two different prompts give two different answers.
        let side = if head { "head" } else { "base" };
        Reply::text(if pass {
            format!("ANSWER-OK for {} ({side})", case_id(i))
        } else {
            format!("sorry, no for {} ({side})", case_id(i))
        })
    }
}

/// Starts a fake provider that follows `script`.
pub async fn provider(script: Arc<Script>) -> FakeProvider {
    FakeProvider::start(move |req| script.reply(req)).await
}

/// Runs `evalgate` with the settings pointing at `fake` and at `db`, without blocking the
/// runtime the fake serves on.
pub async fn evalgate(repo: &Repo, fake: Option<&FakeProvider>, db: &std::path::Path, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_evalgate"));
    cmd.args(args)
        .current_dir(repo.path())
        .env("EVALGATE_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env_remove("EVALGATE_RPM")
        .env_remove("EVALGATE_CONCURRENCY")
        .env_remove("RUST_LOG");
    match fake {
        Some(f) => {
            cmd.env("ANTHROPIC_API_KEY", "sk-ant-test-secret-key")
                .env("OPENAI_API_KEY", "sk-openai-test-secret-key")
                .env("EVALGATE_ANTHROPIC_BASE_URL", f.anthropic_base_url())
                .env("EVALGATE_OPENAI_BASE_URL", f.openai_base_url());
        }
        None => {
            cmd.env_remove("ANTHROPIC_API_KEY")
                .env_remove("OPENAI_API_KEY")
                .env("EVALGATE_ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
                .env("EVALGATE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
        }
    }
    cmd.output().await.expect("run evalgate").into()
}

/// `agent/` against `base/`, with `--json report.json` and the extra args.
pub async fn eval(
    repo: &Repo,
    fake: Option<&FakeProvider>,
    db: &std::path::Path,
    extra: &[&str],
) -> (Run, serde_json::Value) {
    let report = repo.file("report.json");
    let _ = std::fs::remove_file(&report);
    let mut args = vec!["eval", "agent", "--base-dir", "base", "--json", "report.json"];
    args.extend_from_slice(extra);
    let run = evalgate(repo, fake, db, &args).await;
    let json = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (run, json)
}

pub fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
}
