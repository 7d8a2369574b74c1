//! The provider layer against a fake of the real APIs over loopback: wire shapes of both
//! formats, retries and what is not retried, timeouts, limits, record and replay, and secrets.

#[path = "../../tests/support/fake_provider.rs"]
mod fake_provider;

use evaluators::bundle::ModelParams;
use evaluators::provider::cassette::Cassette;
use evaluators::provider::{
    ChatRequest, Endpoint, Endpoints, Exchange, Limits, ModelClient, ProviderError, RetryPolicy, Secret, StopReason,
    ToolResult, ToolSpec, Turn, Usage,
};
use evaluators::snapshot::{PinPolicy, Provider};
use fake_provider::{Api, FakeProvider, Reply, SeenRequest};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ANTHROPIC_KEY: &str = "sk-ant-test-3f9a2c7d41e8b605";
const OPENAI_KEY: &str = "sk-openai-test-8b1e44c09d2a7f36";

fn endpoints(fake: &FakeProvider) -> Endpoints {
    Endpoints {
        anthropic: Endpoint { base_url: fake.anthropic_base_url(), api_key: Some(Secret::new(ANTHROPIC_KEY)) },
        openai: Endpoint { base_url: fake.openai_base_url(), api_key: Some(Secret::new(OPENAI_KEY)) },
    }
}

/// Three attempts, millisecond backoff, a generous timeout: fast tests that still retry.
fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
    }
}

fn client(fake: &FakeProvider) -> ModelClient {
    client_with(fake, fast(), Limits::default())
}

fn client_with(fake: &FakeProvider, retry: RetryPolicy, limits: Limits) -> ModelClient {
    ModelClient::live(endpoints(fake), retry, limits, None).expect("client")
}

fn model(provider: Provider) -> &'static str {
    match provider {
        Provider::Anthropic => "claude-opus-4-6",
        Provider::Openai => "gpt-4o-2024-08-06",
    }
}

fn request(provider: Provider) -> ChatRequest {
    ChatRequest {
        snapshot: PinPolicy::default().snapshot(provider, model(provider)).expect("pinned"),
        params: ModelParams {
            temperature: Some(0.0),
            max_tokens: Some(256),
            seed: Some(7),
            top_k: Some(5),
            ..ModelParams::default()
        },
        system: "You are the refund agent.".into(),
        messages: vec![Turn::User { text: "Order A1 arrived broken, refund please".into() }],
        tools: vec![ToolSpec {
            name: "lookup_order".into(),
            description: "Look up an order".into(),
            input_schema: json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
        }],
        tool_choice: None,
    }
}

/// Replies in order, the last one repeated.
fn sequence(replies: Vec<Reply>) -> impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static {
    let n = AtomicUsize::new(0);
    move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst).min(replies.len() - 1);
        replies[i].clone()
    }
}

async fn call(client: &ModelClient, provider: Provider) -> Result<Exchange, ProviderError> {
    client.complete(&request(provider), 0).await
}

// ---- wire shapes -----------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_requests_carry_system_on_top_tools_with_input_schema_and_no_seed() {
    let fake = FakeProvider::start(|_| Reply::text("Sorry to hear that.")).await;
    let x = call(&client(&fake), Provider::Anthropic).await.expect("call");
    assert_eq!(x.response.text, "Sorry to hear that.");
    assert_eq!(x.response.stop, StopReason::EndTurn);
    let seen = &fake.calls()[0];
    assert_eq!(seen.api, Api::Anthropic);
    let b = &seen.body;
    assert_eq!(b["model"], "claude-opus-4-6");
    assert_eq!(b["system"], "You are the refund agent.");
    assert_eq!(b["messages"], json!([{"role": "user", "content": "Order A1 arrived broken, refund please"}]));
    assert_eq!(b["tools"][0]["name"], "lookup_order");
    assert_eq!(b["tools"][0]["input_schema"]["required"], json!(["order_id"]));
    assert_eq!(
        (b["max_tokens"].clone(), b["temperature"].clone(), b["top_k"].clone()),
        (json!(256), json!(0.0), json!(5))
    );
    assert!(b.get("seed").is_none() && b.get("tool_choice").is_none(), "{b}");
}

#[tokio::test]
async fn anthropic_max_tokens_defaults_to_1024_because_the_api_requires_it() {
    let fake = FakeProvider::start(|_| Reply::text("ok")).await;
    let mut req = request(Provider::Anthropic);
    req.params = ModelParams::default();
    client(&fake).complete(&req, 0).await.expect("call");
    assert_eq!(fake.calls()[0].body["max_tokens"], 1024);
}

#[tokio::test]
async fn openai_requests_lead_with_a_system_message_send_tools_as_functions_and_no_top_k() {
    let fake = FakeProvider::start(|_| Reply::text("Sorry to hear that.")).await;
    let x = call(&client(&fake), Provider::Openai).await.expect("call");
    assert_eq!(x.response.text, "Sorry to hear that.");
    assert_eq!(x.response.stop, StopReason::EndTurn);
    let seen = &fake.calls()[0];
    assert_eq!(seen.api, Api::OpenAi);
    let b = &seen.body;
    assert_eq!(b["messages"][0], json!({"role": "system", "content": "You are the refund agent."}));
    assert_eq!(b["messages"][1], json!({"role": "user", "content": "Order A1 arrived broken, refund please"}));
    assert_eq!(b["tools"][0]["type"], "function");
    assert_eq!(b["tools"][0]["function"]["name"], "lookup_order");
    assert_eq!(b["tools"][0]["function"]["parameters"]["required"], json!(["order_id"]));
    assert_eq!((b["max_tokens"].clone(), b["seed"].clone()), (json!(256), json!(7)));
    assert!(b.get("top_k").is_none() && b.get("system").is_none(), "{b}");
}

#[tokio::test]
async fn a_forced_tool_is_named_in_each_apis_tool_choice_shape() {
    let fake = FakeProvider::start(|_| Reply::tool("lookup_order", json!({"order_id": "A1"}))).await;
    let c = client(&fake);
    for provider in [Provider::Anthropic, Provider::Openai] {
        let mut req = request(provider);
        req.tool_choice = Some("lookup_order".into());
        c.complete(&req, 0).await.expect("call");
    }
    let calls = fake.calls();
    assert_eq!(calls[0].body["tool_choice"], json!({"type": "tool", "name": "lookup_order"}));
    assert_eq!(calls[1].body["tool_choice"], json!({"type": "function", "function": {"name": "lookup_order"}}));
    assert!(calls.iter().all(|c| c.tool_choice.as_deref() == Some("lookup_order")));
}

/// Model asks for a tool, the result goes back, model answers: the fake refuses (400, as the
/// real APIs do) any result that does not answer the call it follows.
async fn tool_round_trip(provider: Provider) {
    let fake = FakeProvider::start(|req| match req.turn() {
        0 => Reply::TextAndToolCalls("Let me look.".into(), vec![("lookup_order".into(), json!({"order_id": "A1"}))]),
        _ => Reply::text(format!(
            "Refund sent; the tool said {}",
            req.messages.last().map(|m| m.tool_results[0].0.clone()).unwrap_or_default()
        )),
    })
    .await;
    let c = client(&fake);
    let mut req = request(provider);
    let first = c.complete(&req, 0).await.expect("first call");
    assert_eq!(first.response.stop, StopReason::ToolUse);
    assert_eq!(first.response.text, "Let me look.");
    let call = &first.response.tool_calls[0];
    assert_eq!((call.name.as_str(), &call.args), ("lookup_order", &json!({"order_id": "A1"})));
    req.messages
        .push(Turn::Assistant { text: first.response.text.clone(), tool_calls: first.response.tool_calls.clone() });
    req.messages.push(Turn::ToolResults {
        results: vec![ToolResult {
            call_id: call.id.clone(),
            content: r#"{"status":"delivered"}"#.into(),
            is_error: false,
        }],
    });
    let second = c.complete(&req, 0).await.expect("second call");
    assert_eq!(second.response.stop, StopReason::EndTurn);
    assert_eq!(second.response.text, r#"Refund sent; the tool said {"status":"delivered"}"#);
    let seen = &fake.calls()[1];
    assert_eq!(seen.tool_results_so_far(), 1);
    assert_eq!(seen.messages[1].tool_calls, vec![("lookup_order".to_owned(), json!({"order_id": "A1"}))]);
}

#[tokio::test]
async fn anthropic_tool_use_round_trips_with_the_result_in_a_user_message() {
    tool_round_trip(Provider::Anthropic).await;
}

#[tokio::test]
async fn openai_tool_calls_round_trip_with_a_tool_message() {
    tool_round_trip(Provider::Openai).await;
}

#[tokio::test]
async fn tool_results_are_sent_in_each_apis_shape() {
    let fake = FakeProvider::start(|_| Reply::text("ok")).await;
    let c = client(&fake);
    for (provider, id) in [(Provider::Anthropic, "toolu_1"), (Provider::Openai, "call_1")] {
        let mut req = request(provider);
        let call = evaluators::provider::ToolCall {
            id: id.into(),
            name: "lookup_order".into(),
            args: json!({"order_id": "A1"}),
        };
        req.messages.push(Turn::Assistant { text: String::new(), tool_calls: vec![call] });
        req.messages.push(Turn::ToolResults {
            results: vec![ToolResult { call_id: id.into(), content: "no such order".into(), is_error: true }],
        });
        c.complete(&req, 0).await.expect("call");
    }
    let calls = fake.calls();
    let a = &calls[0].body["messages"];
    assert_eq!(
        a[1],
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {"order_id": "A1"}}]})
    );
    assert_eq!(
        a[2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "no such order", "is_error": true}]})
    );
    let o = &calls[1].body["messages"];
    assert_eq!(
        o[2],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": "{\"order_id\":\"A1\"}"}}]})
    );
    assert_eq!(o[3], json!({"role": "tool", "tool_call_id": "call_1", "content": "no such order"}));
    assert_eq!(calls[0].messages[2].tool_results, vec![("no such order".to_owned(), true)]);
}

#[tokio::test]
async fn usage_tokens_are_read_from_both_apis() {
    let fake = FakeProvider::start(|_| Reply::text("ok").with_usage(1234, 56)).await;
    let c = client(&fake);
    for provider in [Provider::Anthropic, Provider::Openai] {
        let x = call(&c, provider).await.expect("call");
        assert_eq!(x.response.usage, Usage { input_tokens: 1234, output_tokens: 56 }, "{provider}");
    }
}

#[tokio::test]
async fn stop_reasons_max_tokens_and_refusal_are_read_from_both_apis() {
    let anthropic = |stop: &str| {
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", "text": "cut"}],
            "stop_reason": stop, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 4}})
        .to_string()
    };
    let openai = |finish: &str| {
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "cut"}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
        .to_string()
    };
    let cases = [
        (Provider::Anthropic, anthropic("max_tokens"), StopReason::MaxTokens),
        (Provider::Anthropic, anthropic("refusal"), StopReason::Refusal),
        (Provider::Anthropic, anthropic("stop_sequence"), StopReason::StopSequence),
        (Provider::Openai, openai("length"), StopReason::MaxTokens),
        (Provider::Openai, openai("content_filter"), StopReason::Refusal),
    ];
    for (provider, body, stop) in cases {
        let fake = FakeProvider::start(move |_| Reply::Malformed(body.clone())).await;
        let x = call(&client(&fake), provider).await.expect("call");
        assert_eq!(x.response.stop, stop);
        assert_eq!(x.response.text, "cut");
    }
}

// ---- retries ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_seconds() {
    let fake = FakeProvider::start(sequence(vec![Reply::status_429(1), Reply::text("ok")])).await;
    let c = client(&fake);
    let started = Instant::now();
    let x = call(&c, Provider::Anthropic).await.expect("succeeds on the second attempt");
    assert!(started.elapsed() >= Duration::from_secs(1), "retry-after was not honoured: {:?}", started.elapsed());
    assert_eq!((x.attempts, fake.call_count(), c.attempts()), (2, 2, 2));
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_ms() {
    let wait = Reply::Status { status: 429, retry_after: None, retry_after_ms: Some(300), body: String::new() };
    let fake = FakeProvider::start(sequence(vec![wait, Reply::text("ok")])).await;
    let started = Instant::now();
    let x = call(&client(&fake), Provider::Openai).await.expect("succeeds on the second attempt");
    assert!(started.elapsed() >= Duration::from_millis(300), "retry-after-ms was not honoured");
    assert_eq!(x.attempts, 2);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_is_cut_to_it() {
    let fake = FakeProvider::start(sequence(vec![Reply::status_429(3600), Reply::text("ok")])).await;
    let retry = RetryPolicy { max_retry_after: Duration::from_millis(50), ..fast() };
    let started = Instant::now();
    client_with(&fake, retry, Limits::default()).complete(&request(Provider::Anthropic), 0).await.expect("call");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_529_and_a_500_are_retried_then_the_call_succeeds() {
    let fake =
        FakeProvider::start(sequence(vec![Reply::overloaded_529(), Reply::server_error_500(), Reply::text("ok")]))
            .await;
    let x = call(&client(&fake), Provider::Anthropic).await.expect("third attempt succeeds");
    assert_eq!((x.response.text.as_str(), x.attempts, fake.call_count()), ("ok", 3, 3));
}

#[tokio::test]
async fn attempts_are_bounded_and_then_the_provider_is_unavailable() {
    let fake = FakeProvider::start(|_| Reply::status(503)).await;
    let e = call(&client(&fake), Provider::Openai).await.unwrap_err();
    match &e {
        ProviderError::Unavailable { status: 503, attempts: 3, message, .. } => {
            assert!(message.contains("overloaded"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(fake.call_count(), 3);
}

#[tokio::test]
async fn a_spend_limit_429_is_not_retried() {
    for (provider, body) in [
        (Provider::Anthropic, fake_provider::anthropic_spend_limit_body()),
        (Provider::Openai, fake_provider::openai_quota_body()),
    ] {
        let fake = FakeProvider::start(move |_| Reply::Status {
            status: 429,
            retry_after: Some("1".into()),
            retry_after_ms: None,
            body: body.clone(),
        })
        .await;
        let e = call(&client(&fake), provider).await.unwrap_err();
        assert!(matches!(e, ProviderError::SpendLimit { .. }), "{e:?}");
        assert_eq!(fake.call_count(), 1, "{provider}: a spend limit was retried");
    }
}

#[tokio::test]
async fn a_400_is_rejected_at_once_with_the_providers_message() {
    let fake = FakeProvider::start(|_| Reply::Status {
        status: 400,
        retry_after: None,
        retry_after_ms: None,
        body: fake_provider::anthropic_error_body("invalid_request_error", "messages.0.content: field required"),
    })
    .await;
    let e = call(&client(&fake), Provider::Anthropic).await.unwrap_err();
    assert_eq!(
        e,
        ProviderError::Rejected {
            provider: Provider::Anthropic,
            status: 400,
            message: "invalid_request_error: messages.0.content: field required".into()
        }
    );
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn malformed_json_is_retried_then_reported_as_malformed() {
    let fake = FakeProvider::start(|_| Reply::Malformed(r#"{"content": [{"type": "te"#.into())).await;
    let e = call(&client(&fake), Provider::Anthropic).await.unwrap_err();
    assert!(matches!(&e, ProviderError::Malformed { attempts: 3, detail, .. } if detail.contains("not JSON")), "{e:?}");
    assert_eq!(fake.call_count(), 3);

    let fake = FakeProvider::start(sequence(vec![Reply::Malformed("{}".into()), Reply::text("ok")])).await;
    let x = call(&client(&fake), Provider::Openai).await.expect("second attempt reads");
    assert_eq!(x.attempts, 2);
}

#[tokio::test]
async fn a_slow_reply_times_out_per_attempt() {
    let fake = FakeProvider::start(|_| Reply::text("late").after(Duration::from_secs(2))).await;
    let retry = RetryPolicy { max_attempts: 2, timeout: Duration::from_millis(150), ..fast() };
    let started = Instant::now();
    let e = client_with(&fake, retry, Limits::default()).complete(&request(Provider::Anthropic), 0).await.unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { attempts: 2, .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "the timeout did not cut the attempt");
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connection_error_after_retries() {
    let endpoints = Endpoints {
        anthropic: Endpoint { base_url: "http://127.0.0.1:9".into(), api_key: Some(Secret::new(ANTHROPIC_KEY)) },
        openai: Endpoint { base_url: "http://127.0.0.1:9/v1".into(), api_key: Some(Secret::new(OPENAI_KEY)) },
    };
    let c = ModelClient::live(endpoints, fast(), Limits::default(), None).expect("client");
    let e = c.complete(&request(Provider::Openai), 0).await.unwrap_err();
    assert!(matches!(e, ProviderError::Connect { attempts: 3, .. }), "{e:?}");
}

#[tokio::test]
async fn a_missing_key_fails_without_any_network_call() {
    let fake = FakeProvider::start(|_| Reply::text("ok")).await;
    let mut e = endpoints(&fake);
    e.anthropic.api_key = None;
    e.openai.api_key = None;
    let c = ModelClient::live(e, fast(), Limits::default(), None).expect("client");
    for (provider, variable) in [(Provider::Anthropic, "ANTHROPIC_API_KEY"), (Provider::Openai, "OPENAI_API_KEY")] {
        let err = call(&c, provider).await.unwrap_err();
        assert!(matches!(&err, ProviderError::MissingKey { variable: v, .. } if *v == variable), "{err:?}");
        assert!(err.to_string().starts_with(variable), "{err}");
    }
    assert_eq!((fake.call_count(), c.attempts()), (0, 0));
}

// ---- limits ----------------------------------------------------------------------------------

#[tokio::test]
async fn calls_in_flight_never_exceed_the_concurrency_limit() {
    let fake = FakeProvider::start(|_| Reply::text("ok").after(Duration::from_millis(40))).await;
    let c = Arc::new(client_with(&fake, fast(), Limits { concurrency: 3, rpm: None }));
    let calls = (0..12u32).map(|nonce| {
        let c = Arc::clone(&c);
        async move { c.complete(&request(Provider::Anthropic), nonce).await }
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(fake.call_count(), 12);
    assert!(fake.max_in_flight() <= 3, "{} in flight", fake.max_in_flight());
    assert!(fake.max_in_flight() >= 2, "calls did not overlap");
}

#[tokio::test]
async fn rpm_spaces_request_starts_evenly() {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&starts);
    let fake = FakeProvider::start(move |_| {
        seen.lock().expect("lock").push(Instant::now());
        Reply::text("ok")
    })
    .await;
    let c = client_with(&fake, fast(), Limits { concurrency: 8, rpm: Some(600) });
    let req = request(Provider::Openai);
    let calls = (0..4u32).map(|nonce| c.complete(&req, nonce));
    assert!(futures_util::future::join_all(calls).await.iter().all(Result::is_ok));
    let starts = starts.lock().expect("lock").clone();
    for pair in starts.windows(2) {
        // 600 rpm is one start per 100 ms; a little slack for loopback jitter.
        assert!(pair[1] - pair[0] >= Duration::from_millis(90), "starts {:?} apart", pair[1] - pair[0]);
    }
}

// ---- record and replay -----------------------------------------------------------------------

#[tokio::test]
async fn a_recorded_run_replays_identically_without_the_network() {
    let n = AtomicUsize::new(0);
    let fake = FakeProvider::start(move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        Reply::TextAndToolCalls(format!("answer {i}"), vec![("lookup_order".into(), json!({"n": i}))])
            .after(Duration::from_millis(20))
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cassette.jsonl");
    let live = ModelClient::live(endpoints(&fake), fast(), Limits::default(), Some(path.clone())).expect("client");
    let calls = [(Provider::Anthropic, 0), (Provider::Anthropic, 1), (Provider::Openai, 0)];
    let mut recorded = Vec::new();
    for (provider, nonce) in calls {
        recorded.push(live.complete(&request(provider), nonce).await.expect("live call"));
    }
    live.finish().expect("cassette written");
    let before = fake.call_count();

    let replay = ModelClient::replay(Cassette::load(&path).expect("cassette loads"), Limits::default());
    for ((provider, nonce), live) in calls.into_iter().zip(&recorded) {
        let x = replay.complete(&request(provider), nonce).await.expect("replayed");
        assert_eq!(x.response, live.response);
        assert_eq!(x.latency_ms, live.latency_ms);
        assert_eq!(x.attempts, 0);
    }
    assert_eq!(fake.call_count(), before, "the replay went to the network");
    assert_eq!(replay.attempts(), 0);
    assert_ne!(recorded[0].response, recorded[1].response, "the nonce did not separate the samples");
}

#[tokio::test]
async fn a_call_missing_from_the_cassette_is_not_in_cassette() {
    let fake = FakeProvider::start(|_| Reply::text("ok")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cassette.jsonl");
    let live = ModelClient::live(endpoints(&fake), fast(), Limits::default(), Some(path.clone())).expect("client");
    call(&live, Provider::Anthropic).await.expect("live call");
    live.finish().expect("written");
    let replay = ModelClient::replay(Cassette::load(&path).expect("loads"), Limits::default());
    let e = replay.complete(&request(Provider::Anthropic), 1).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::NotInCassette { model, key } if model.contains("claude-opus-4-6") && key.len() == 64),
        "{e:?}"
    );
    let mut changed = request(Provider::Anthropic);
    changed.system.push('!');
    assert!(matches!(replay.complete(&changed, 0).await, Err(ProviderError::NotInCassette { .. })));
}

#[tokio::test]
async fn a_cassette_with_a_bad_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.jsonl");
    let good = json!({"key": "a".repeat(64), "provider": "openai", "model": "gpt-4o-2024-08-06", "nonce": 0, "latency_ms": 3,
        "body": json!({"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).to_string()});
    std::fs::write(&path, format!("{good}\n{{\"key\": \"abc\"\n")).expect("write");
    let e = Cassette::load(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:2: ", path.display())), "{e}");
}

// ---- secrets ---------------------------------------------------------------------------------

/// A failure of each kind whose body echoes back the key the request carried.
fn echoing(kind: usize, key: &str) -> Reply {
    let echo = format!("bad key {key} given");
    let status = |status: u16, body: String| Reply::Status { status, retry_after: None, retry_after_ms: Some(1), body };
    match kind {
        0 => status(401, fake_provider::anthropic_error_body("authentication_error", &echo)),
        1 => status(401, fake_provider::openai_error_body("invalid_request_error", Some("invalid_api_key"), &echo)),
        2 => status(500, echo),
        3 => status(429, format!("quota reached for {key}")),
        _ => Reply::Malformed(echo),
    }
}

#[tokio::test]
async fn the_api_key_never_appears_in_an_error() {
    let mut errors = Vec::new();
    for kind in 0..5 {
        let fake = FakeProvider::start(move |req| {
            echoing(kind, if req.api == Api::Anthropic { ANTHROPIC_KEY } else { OPENAI_KEY })
        })
        .await;
        let c = client(&fake);
        for provider in [Provider::Anthropic, Provider::Openai] {
            errors.push(call(&c, provider).await.unwrap_err());
        }
        let debug = format!("{c:?}");
        assert!(!debug.contains(ANTHROPIC_KEY) && !debug.contains(OPENAI_KEY), "{debug}");
    }
    for e in &errors {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(ANTHROPIC_KEY) && !text.contains(OPENAI_KEY), "the key leaked: {text}");
        }
    }
    assert!(errors.iter().any(|e| e.to_string().contains("bad key *** given")), "{errors:?}");
}

// ---- the fake itself speaks like the real APIs ------------------------------------------------

#[tokio::test]
async fn the_fake_refuses_a_tool_result_that_answers_no_call() {
    let fake = FakeProvider::start(|_| Reply::text("ok")).await;
    let c = client(&fake);
    for provider in [Provider::Anthropic, Provider::Openai] {
        let mut req = request(provider);
        req.messages.push(Turn::ToolResults {
            results: vec![ToolResult { call_id: "toolu_nowhere".into(), content: "{}".into(), is_error: false }],
        });
        let e = c.complete(&req, 0).await.unwrap_err();
        assert!(matches!(e, ProviderError::Rejected { status: 400, .. }), "{e:?}");
    }
}
