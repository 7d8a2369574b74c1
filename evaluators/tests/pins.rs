//! Model discovery against the fake of the real APIs over loopback: both pagination shapes,
//! release times, retries, and errors that name the provider and URL but never the key.

#[path = "../../tests/support/fake_provider.rs"]
mod fake_provider;

use evaluators::pins::{self, ModelInfo, PinsError};
use evaluators::provider::{Endpoint, RetryPolicy, Secret};
use evaluators::snapshot::Provider;
use fake_provider::{Api, FakeProvider, Reply, anthropic_model, openai_model};
use serde_json::json;
use std::time::{Duration, SystemTime};

const ANTHROPIC_KEY: &str = "sk-ant-test-pins-5d1c93a0e7";
const OPENAI_KEY: &str = "sk-openai-test-pins-4b8f20c6a1";

fn anthropic(fake: &FakeProvider) -> Endpoint {
    Endpoint { base_url: fake.anthropic_base_url(), api_key: Some(Secret::new(ANTHROPIC_KEY)) }
}

fn openai(fake: &FakeProvider) -> Endpoint {
    Endpoint { base_url: fake.openai_base_url(), api_key: Some(Secret::new(OPENAI_KEY)) }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
    }
}

async fn fake() -> FakeProvider {
    FakeProvider::start(|_| Reply::text("unused")).await
}

fn now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[tokio::test]
async fn anthropic_models_are_listed_over_every_page() {
    let fake = fake().await;
    let models: Vec<_> = (1..=7)
        .map(|d| anthropic_model(&format!("claude-sonnet-4-5-2025090{d}"), &format!("2025-09-0{d}T00:00:00Z")))
        .collect();
    fake.set_models(Api::Anthropic, models);
    fake.set_models_page_size(Api::Anthropic, 3);
    let http = pins::http_client().expect("client");
    let listed = pins::list_models_with(&http, Provider::Anthropic, &anthropic(&fake), &fast()).await.expect("listed");
    assert_eq!(listed.len(), 7);
    assert_eq!(listed[0].id, "claude-sonnet-4-5-20250901");
    assert_eq!(listed[6].created, Some(1_757_203_200), "2025-09-07T00:00:00Z");
    let queries: Vec<String> = fake.model_list_requests().into_iter().map(|(_, q)| q).collect();
    assert_eq!(
        queries,
        ["limit=100", "after_id=claude-sonnet-4-5-20250903&limit=100", "after_id=claude-sonnet-4-5-20250906&limit=100"]
    );
}

#[tokio::test]
async fn openai_models_are_listed_in_one_page_or_over_has_more_pages() {
    let fake = fake().await;
    let models = vec![
        openai_model("gpt-4o-2024-08-06", 1_722_814_719),
        json!({"id": "gpt-4-0613", "object": "model", "created": 1_686_588_896, "owned_by": "openai", "shutdown_date": "2026-06-06"}),
        openai_model("gpt-4o", 1_715_367_049),
        openai_model("gpt-4o-2024-11-20", 1_731_975_040),
        openai_model("gpt-4o-mini-2024-07-18", 1_721_172_717),
    ];
    fake.set_models(Api::OpenAi, models);
    let http = pins::http_client().expect("client");
    let one = pins::list_models_with(&http, Provider::Openai, &openai(&fake), &fast()).await.expect("listed");
    assert_eq!(one.len(), 5);
    assert_eq!(
        one[1],
        ModelInfo { id: "gpt-4-0613".into(), created: Some(1_686_588_896), shutdown: Some(1_780_704_000) }
    );

    fake.set_models_page_size(Api::OpenAi, 2);
    let paged = pins::list_models_with(&http, Provider::Openai, &openai(&fake), &fast()).await.expect("listed");
    assert_eq!(paged, one);
    let queries: Vec<String> = fake.model_list_requests().into_iter().map(|(_, q)| q).collect();
    assert_eq!(queries, ["", "", "after=gpt-4-0613", "after=gpt-4o-2024-11-20"]);
}

#[tokio::test]
async fn release_times_of_a_self_hosted_server_are_unknown() {
    let fake = fake().await;
    let t = now();
    fake.set_models(Api::OpenAi, vec![openai_model("qwen-2024-09-19", t), openai_model("qwen-2025-01-01", t - 2)]);
    let http = pins::http_client().expect("client");
    let listed = pins::list_models_with(&http, Provider::Openai, &openai(&fake), &fast()).await.expect("listed");
    assert!(listed.iter().all(|m| m.created.is_none()), "{listed:?}");
    let a = pins::assess(Provider::Openai, "qwen-2024-09-19", &listed, t, 7);
    assert_eq!((a.lag_days, a.newest), (None, None));
}

#[tokio::test]
async fn busy_servers_are_retried_and_honoured() {
    let fake = fake().await;
    fake.set_models(Api::Anthropic, vec![anthropic_model("claude-opus-4-6", "2026-02-05T00:00:00Z")]);
    fake.fail_model_lists(Api::Anthropic, vec![Reply::status_429(0), Reply::overloaded_529()]);
    let http = pins::http_client().expect("client");
    let listed = pins::list_models_with(&http, Provider::Anthropic, &anthropic(&fake), &fast()).await.expect("listed");
    assert_eq!(listed.len(), 1);
    assert_eq!(fake.model_list_requests().len(), 3);

    fake.fail_model_lists(Api::Anthropic, vec![Reply::server_error_500(); 3]);
    let e = pins::list_models_with(&http, Provider::Anthropic, &anthropic(&fake), &fast()).await.unwrap_err();
    assert!(matches!(e, PinsError::Unavailable { status: 500, attempts: 3, .. }), "{e:?}");
    assert!(!e.is_setup());
    let text = e.to_string();
    assert!(text.contains("anthropic") && text.contains(&fake.anthropic_base_url()), "{text}");
}

#[tokio::test]
async fn a_bad_key_is_rejected_at_once_and_never_printed() {
    let fake = fake().await;
    fake.fail_model_lists(
        Api::OpenAi,
        vec![Reply::Status {
            status: 401,
            retry_after: None,
            retry_after_ms: None,
            body: fake_provider::openai_error_body(
                "invalid_request_error",
                Some("invalid_api_key"),
                &format!("Incorrect API key provided: {OPENAI_KEY}"),
            ),
        }],
    );
    let http = pins::http_client().expect("client");
    let e = pins::list_models_with(&http, Provider::Openai, &openai(&fake), &fast()).await.unwrap_err();
    assert!(matches!(e, PinsError::Rejected { status: 401, .. }), "{e:?}");
    assert!(e.is_setup());
    let text = format!("{e} {e:?}");
    assert!(!text.contains(OPENAI_KEY), "the key leaked: {text}");
    assert!(text.contains("/v1/models"), "{text}");
    assert_eq!(fake.model_list_requests().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn a_missing_key_or_a_garbled_list_is_an_error() {
    let fake = fake().await;
    let http = pins::http_client().expect("client");
    let keyless = Endpoint { base_url: fake.anthropic_base_url(), api_key: None };
    let e = pins::list_models(&http, Provider::Anthropic, &keyless).await.unwrap_err();
    assert_eq!(e, PinsError::MissingKey { provider: Provider::Anthropic, variable: "ANTHROPIC_API_KEY" });
    assert!(fake.model_list_requests().is_empty(), "nothing is sent without a key");

    fake.fail_model_lists(Api::OpenAi, vec![Reply::Malformed("<html>".into()); 3]);
    let e = pins::list_models_with(&http, Provider::Openai, &openai(&fake), &fast()).await.unwrap_err();
    assert!(matches!(e, PinsError::Malformed { .. }), "{e:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let endpoint = Endpoint { base_url: format!("http://127.0.0.1:{port}/v1"), api_key: Some(Secret::new(OPENAI_KEY)) };
    let http = pins::http_client().expect("client");
    let e = pins::list_models_with(&http, Provider::Openai, &endpoint, &fast()).await.unwrap_err();
    assert!(matches!(e, PinsError::Connect { attempts: 3, .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}/v1/models")), "{e}");
}
