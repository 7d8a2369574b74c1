//! `evalgate pins`: the real binary on the demo repository, against the fake providers' model
//! lists (paged): the lag from release times, the soak, unknown release times, `--json`, and
//! the exit codes of a missing key and of a provider that cannot be reached.

mod support;

use serde_json::{Value, json};
use support::Repo;
use support::fake_provider::{Api, FakeProvider, Reply, anthropic_model, openai_model};

const ANTHROPIC_KEY: &str = "sk-ant-test-pins-cli-77c1e0";
const OPENAI_KEY: &str = "sk-openai-test-pins-cli-2a9d41";

/// The Anthropic list: the demo's model pin has a successor 63 days younger and one still
/// soaking; its judge pin has none (only an alias and another family are newer).
async fn fake() -> FakeProvider {
    let fake = FakeProvider::start(|_| Reply::text("unused")).await;
    let soaking = chrono::Utc::now() - chrono::Duration::days(2);
    let soaking_id = format!("claude-sonnet-4-5-{}", soaking.format("%Y%m%d"));
    let soaking_at = soaking.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    fake.set_models(
        Api::Anthropic,
        vec![
            anthropic_model(&soaking_id, &soaking_at),
            anthropic_model("claude-opus-4-6", "2026-02-05T00:00:00Z"),
            anthropic_model("claude-sonnet-4-5-20251201", "2025-12-01T00:00:00Z"),
            anthropic_model("claude-haiku-4-5", "2025-12-20T00:00:00Z"),
            anthropic_model("claude-haiku-4-5-20251001", "2025-10-15T00:00:00Z"),
            anthropic_model("claude-sonnet-4-5-20250929", "2025-09-29T00:00:00Z"),
        ],
    );
    fake.set_models_page_size(Api::Anthropic, 2);
    fake
}

/// `evalgate pins ARGS` in `repo` with the fake's URLs and the given keys, none of the caller's.
async fn pins(repo: &Repo, fake: Option<&FakeProvider>, keys: &[(&str, &str)], args: &[&str]) -> support::Run {
    let mut cmd = support::command(repo);
    cmd.arg("pins").args(args);
    for var in ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "EVALGATE_ANTHROPIC_BASE_URL", "EVALGATE_OPENAI_BASE_URL"] {
        cmd.env_remove(var);
    }
    if let Some(f) = fake {
        cmd.env("EVALGATE_ANTHROPIC_BASE_URL", f.anthropic_base_url())
            .env("EVALGATE_OPENAI_BASE_URL", f.openai_base_url());
    }
    for (k, v) in keys {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run evalgate")).await.expect("join").into()
}

fn json_of(run: &support::Run) -> Vec<Value> {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_table_shows_each_pin_its_newest_snapshot_and_the_lag_in_days() {
    let repo = Repo::valid();
    let fake = fake().await;
    let run = pins(&repo, Some(&fake), &[("ANTHROPIC_API_KEY", ANTHROPIC_KEY)], &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let lines: Vec<Vec<&str>> = run.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert_eq!(lines[0], ["BUNDLE", "ROLE", "PROVIDER", "PINNED", "NEWEST", "LAG", "(DAYS)", "RETIREMENT"]);
    assert_eq!(
        lines[1],
        ["demo", "model", "anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20251201", "63", "-"]
    );
    assert_eq!(lines[2], ["demo", "judge", "anthropic", "claude-haiku-4-5-20251001", "-", "0", "-"]);
    // Six models, two a page: three requests, the key never in a query.
    let requests = fake.model_list_requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(requests.iter().all(|(api, q)| *api == Api::Anthropic && !q.contains(ANTHROPIC_KEY)));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_has_every_field_and_the_soak_comes_from_the_repository() {
    let repo = Repo::valid();
    repo.write(".evalgate.yml", format!("{}pins: {{ soak_days: 0 }}\n", support::EVALGATE_YML));
    let fake = fake().await;
    let run = pins(&repo, Some(&fake), &[("ANTHROPIC_API_KEY", ANTHROPIC_KEY)], &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json_of(&run);
    assert_eq!(rows.len(), 2);
    let model = &rows[0];
    for key in [
        "bundle",
        "manifest",
        "role",
        "provider",
        "pinned",
        "family",
        "listed",
        "newest",
        "pinned_released",
        "newest_released",
        "lag_days",
        "retirement",
        "retires_in_days",
        "urgent",
    ] {
        assert!(model.get(key).is_some(), "no `{key}` in {model}");
    }
    assert_eq!(model["bundle"], "demo");
    assert_eq!(model["manifest"], "agent/bundle.yaml");
    assert_eq!(model["role"], "model");
    assert_eq!(model["provider"], "anthropic");
    assert_eq!(model["pinned"], "claude-sonnet-4-5-20250929");
    assert_eq!(model["pinned_released"], "2025-09-29T00:00:00Z");
    // With no soak, the snapshot released two days ago is the newest.
    let newest = model["newest"].as_str().expect("a newest snapshot");
    assert!(newest.starts_with("claude-sonnet-4-5-") && newest != "claude-sonnet-4-5-20251201", "{newest}");
    assert!(model["lag_days"].as_i64().expect("a lag") > 63);
    assert_eq!((&model["retirement"], &model["urgent"], &model["listed"]), (&Value::Null, &json!(false), &json!(true)));
    assert_eq!(rows[1]["role"], "judge");
    assert_eq!(rows[1]["newest"], Value::Null);
    assert_eq!(rows[1]["lag_days"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_hosted_server_without_release_times_gives_an_unknown_lag() {
    let repo = Repo::valid();
    repo.patch(
        "agent/bundle.yaml",
        "    provider: anthropic\n    snapshot: claude-haiku-4-5-20251001",
        "    provider: openai\n    snapshot: gpt-4o-2024-08-06",
    );
    let fake = fake().await;
    let now = chrono::Utc::now().timestamp();
    let retiring = chrono::Utc::now() + chrono::Duration::days(12);
    let mut pinned = openai_model("gpt-4o-2024-08-06", now);
    pinned["shutdown_date"] = json!(retiring.format("%Y-%m-%d").to_string());
    fake.set_models(Api::OpenAi, vec![pinned, openai_model("gpt-4o-2024-11-20", now)]);
    let keys = [("ANTHROPIC_API_KEY", ANTHROPIC_KEY), ("OPENAI_API_KEY", OPENAI_KEY)];
    let run = pins(&repo, Some(&fake), &keys, &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json_of(&run);
    let judge = &rows[1];
    assert_eq!((&judge["provider"], &judge["pinned"]), (&json!("openai"), &json!("gpt-4o-2024-08-06")));
    assert_eq!(judge["lag_days"], Value::Null, "release times of `now` mean nothing: {judge}");
    assert_eq!(judge["newest"], Value::Null);
    assert_eq!(judge["retirement"], retiring.format("%Y-%m-%d").to_string());
    assert_eq!(judge["urgent"], true);
    assert!(matches!(judge["retires_in_days"].as_i64(), Some(11 | 12)), "{judge}");

    let table = pins(&repo, Some(&fake), &keys, &[]).await;
    let line = table.stdout.lines().find(|l| l.contains("gpt-4o-2024-08-06")).expect("the judge's row");
    assert!(line.contains("unknown") && line.contains("urgent"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_is_a_setup_error_naming_the_variable() {
    let repo = Repo::valid();
    let fake = fake().await;
    let run = pins(&repo, Some(&fake), &[("OPENAI_API_KEY", OPENAI_KEY)], &[]).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("ANTHROPIC_API_KEY is not set"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(fake.model_list_requests().is_empty(), "nothing is sent before every key is there");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_cannot_be_reached_exits_3_and_a_refused_key_exits_2() {
    let repo = Repo::valid();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut cmd_env = vec![("ANTHROPIC_API_KEY", ANTHROPIC_KEY)];
    let url = format!("http://127.0.0.1:{port}");
    cmd_env.push(("EVALGATE_ANTHROPIC_BASE_URL", &url));
    let run = pins(&repo, None, &cmd_env, &[]).await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("anthropic") && run.stderr.contains(&url), "{}", run.stderr);
    assert!(!run.stderr.contains(ANTHROPIC_KEY));

    let fake = fake().await;
    fake.fail_model_lists(Api::Anthropic, vec![Reply::status(401)]);
    let run = pins(&repo, Some(&fake), &[("ANTHROPIC_API_KEY", ANTHROPIC_KEY)], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_that_does_not_load_is_reported_and_exits_1() {
    let repo = Repo::valid();
    repo.write(
        "other/bundle.yaml",
        support::BUNDLE_YAML
            .replace("bundle: demo", "bundle: other")
            .replace("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    );
    let fake = fake().await;
    let run = pins(&repo, Some(&fake), &[("ANTHROPIC_API_KEY", ANTHROPIC_KEY)], &[]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("other/bundle.yaml"), "{}", run.stderr);
    assert!(run.stdout.contains("claude-sonnet-4-5-20250929"), "the demo bundle is still listed: {}", run.stdout);
}
