//! Where a cached answer came from decides who may read it: answers replayed from a cassette
//! are evidence of the cassette, never served to a live run, and a live endpoint's answers are
//! reused only by runs against that same endpoint.

mod support;

use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use support::Run;
use support::fake_provider::{FakeProvider, Reply};
use support::scenario::{self, Script, Spec};

const QUICK_START: &[&str] =
    &["eval", "examples/refund-agent", "--base-dir", "examples/refund-agent-v1.4", "--json", "report.json"];
const DEMO_CASSETTE: &str = "examples/refund-agent/demo/cassette.jsonl";

fn workspace() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The quick start's files (settings, example bundles, golden set) in a repository of their own.
fn quick_start_repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = workspace();
    std::fs::create_dir(tmp.path().join(".git")).expect("mkdir .git");
    std::fs::copy(root.join(".evalgate.yml"), tmp.path().join(".evalgate.yml")).expect("copy settings");
    copy_dir(&root.join("examples"), &tmp.path().join("examples"));
    copy_dir(&root.join("golden-sets"), &tmp.path().join("golden-sets"));
    tmp
}

/// Runs `evalgate` in `dir` on the SQLite file `dir/evalgate.db`; `anthropic` is the base URL
/// and key of a live run (none: no key, and no provider to reach).
async fn evalgate(dir: &Path, args: &[&str], anthropic: Option<(&str, &str)>) -> (Run, Value) {
    let report = dir.join("report.json");
    let _ = std::fs::remove_file(&report);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_evalgate"));
    cmd.args(args)
        .current_dir(dir)
        .env("EVALGATE_DATABASE_URL", format!("sqlite://{}", dir.join("evalgate.db").display()))
        .env_remove("OPENAI_API_KEY")
        .env("EVALGATE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .env_remove("EVALGATE_RPM")
        .env_remove("EVALGATE_CONCURRENCY")
        .env_remove("RUST_LOG");
    match anthropic {
        Some((url, key)) => cmd.env("EVALGATE_ANTHROPIC_BASE_URL", url).env("ANTHROPIC_API_KEY", key),
        None => cmd.env("EVALGATE_ANTHROPIC_BASE_URL", "http://127.0.0.1:9").env_remove("ANTHROPIC_API_KEY"),
    };
    let run: Run = cmd.output().await.expect("run evalgate").into();
    let json = std::fs::read_to_string(&report).ok().and_then(|t| serde_json::from_str(&t).ok());
    (run, json.unwrap_or(Value::Null))
}

fn with(args: &[&str], more: &[&'static str]) -> Vec<String> {
    args.iter().chain(more).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn estimated_calls(run: &Run) -> u64 {
    run.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("model calls: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no call count in {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_replayed_from_the_demo_cassette_are_never_served_to_a_live_run() {
    let repo = quick_start_repo();
    let dir = repo.path();
    let replay = with(QUICK_START, &["--replay", DEMO_CASSETTE]);

    let (first, r1) = evalgate(dir, &strs(&replay), None).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert!(first.stdout.contains("gate passed: 1 regression, 5 fixes"), "{}", first.stdout);
    assert!(r1["calls"]["model_calls"].as_u64().is_some_and(|n| n > 0), "{}", r1["calls"]);
    // The quick start's second run is still answered from the cache.
    let (second, r2) = evalgate(dir, &strs(&replay), None).await;
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert_eq!(r2["calls"]["model_calls"], 0, "{}", second.stdout);
    assert!(second.stdout.contains(" 0 model calls; "), "{}", second.stdout);
    assert_eq!(r1["regressions"], r2["regressions"]);
    assert_eq!(r1["fixes"], r2["fixes"]);

    // A live run with a key the provider refuses.
    let fake = FakeProvider::start(|_| Reply::status(401)).await;
    let url = fake.anthropic_base_url();
    let live = Some((url.as_str(), "sk-ant-refused"));

    let (est, _) = evalgate(dir, &strs(&with(QUICK_START, &["--estimate"])), live).await;
    assert_eq!(est.code, 0, "{}{}", est.stdout, est.stderr);
    assert!(est.stdout.contains("cache hits: 0 of "), "the cassette's answers counted as live: {}", est.stdout);
    assert!(estimated_calls(&est) > 0, "{}", est.stdout);
    let (est_replay, _) = evalgate(dir, &strs(&with(&strs(&replay), &["--estimate"])), None).await;
    assert_eq!(
        estimated_calls(&est_replay),
        0,
        "a replay's estimate sees its own cached answers: {}",
        est_replay.stdout
    );
    assert_eq!(fake.call_count(), 0, "an estimate calls no model");

    let (run, r) = evalgate(dir, QUICK_START, live).await;
    assert!(fake.call_count() >= 1, "the live run never asked the provider: {}{}", run.stdout, run.stderr);
    assert!(matches!(run.code, 2 | 3), "exit {}: {}{}", run.code, run.stdout, run.stderr);
    assert!(!run.stdout.contains("gate passed"), "{}", run.stdout);
    assert!(r.is_null() || r["gate"]["passed"] == false, "{}", r["gate"]);
    if !r.is_null() {
        assert_eq!(r["calls"]["cached_transcripts"], 0, "{}", r["calls"]);
        assert_eq!(r["calls"]["cached_votes"], 0, "{}", r["calls"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn live_answers_are_reused_only_by_runs_against_the_same_endpoint() {
    let spec = Spec { judged: std::collections::BTreeSet::from([1, 2]), ..Spec::new(4) };
    let repo = scenario::repo(&spec);
    let db = repo.file("evalgate.db");
    let script = Arc::new(Script::new());
    let here = scenario::provider(script.clone()).await;
    let elsewhere = scenario::provider(script).await;

    // Answers a recording run got are live answers.
    let (first, r1) = scenario::eval(&repo, Some(&here), &db, &["--record", "cassette.jsonl"]).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let calls = here.call_count();
    assert!(calls > 0);
    assert_eq!(r1["calls"]["model_calls"], calls as u64);

    let (second, r2) = scenario::eval(&repo, Some(&here), &db, &[]).await;
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert_eq!(here.call_count(), calls, "the second run against the same endpoint called a model");
    assert_eq!(r2["calls"]["model_calls"], 0);
    assert_eq!(r2["calls"]["cached_transcripts"], 8, "4 cases x 2 sides");
    assert_eq!(r2["calls"]["cached_votes"], 12, "2 judged cases x 3 votes x 2 sides");

    let (third, r3) = scenario::eval(&repo, Some(&elsewhere), &db, &[]).await;
    assert_eq!(third.code, 0, "{}{}", third.stdout, third.stderr);
    assert_eq!(elsewhere.call_count(), calls, "another endpoint was served the first endpoint's answers");
    assert_eq!(r3["calls"]["model_calls"], calls as u64);
    assert_eq!(r3["calls"]["cached_transcripts"], 0);
    assert_eq!(r3["calls"]["cached_votes"], 0);
    assert_eq!(here.call_count(), calls);

    // The cassette of that run answers a replay from itself, not from the live cache.
    let (replayed, r4) = scenario::eval(&repo, None, &db, &["--replay", "cassette.jsonl"]).await;
    assert_eq!(replayed.code, 0, "{}{}", replayed.stdout, replayed.stderr);
    assert_eq!(r4["calls"]["model_calls"], calls as u64);
    assert_eq!(r4["calls"]["cached_transcripts"], 0);
    assert_eq!(r1["regressions"], r4["regressions"]);
}
