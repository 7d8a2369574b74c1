//! Listing a provider's models, with their release and retirement times.
//!
//! - Anthropic: `GET {base}/v1/models?limit=100` (`x-api-key`, `anthropic-version`), pages
//!   followed through `has_more` / `last_id` as `after_id=`; `created_at` is RFC 3339.
//! - OpenAI-compatible: `GET {base}/models` (the base ends in `/v1`, `Authorization: Bearer`);
//!   `created` is unix seconds; `shutdown_date`, when present, a `YYYY-MM-DD` date, an RFC 3339
//!   time or unix seconds. OpenAI answers in one page; a server that pages with `has_more` is
//!   followed through `last_id` (else the last id of the page) as `after=`.
//!
//! Bounded: at most [`MAX_PAGES`] pages, [`MAX_MODELS`] models and [`MAX_PAGE_BYTES`] per page;
//! past a bound the listing fails rather than being silently cut. 408, 429 and 5xx, timeouts,
//! connection errors and a 2xx that does not parse are retried as the provider client retries
//! (the policy's attempts, `retry-after-ms` / `retry-after` capped at `max_retry_after`, else
//! exponential backoff with full jitter); other statuses fail at once. Errors name the provider
//! and the URL; the key travels only in a sensitive header and is scrubbed from messages.
//!
//! Release times that mean nothing are dropped: when every model's `created` lies within a day
//! of now, or all are the same instant (self-hosted servers report the time of the request or of
//! start-up), every `created` becomes `None`, so lags are "unknown" rather than wrong.

use crate::provider::http::{backoff, error_chain, is_retryable, redact, retry_after, snippet};
use crate::provider::{Endpoint, RetryPolicy, Secret, anthropic, openai};
use crate::snapshot::Provider;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

pub const MAX_PAGES: usize = 100;
pub const MAX_MODELS: usize = 10_000;
pub const MAX_PAGE_BYTES: usize = 16 << 20;
/// Anthropic's page size asked for.
pub const ANTHROPIC_PAGE_LIMIT: u32 = 100;
const DAY: i64 = 86_400;

/// One model as a provider lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    pub id: String,
    /// Release time, unix seconds; `None` when the server gives none that means anything.
    pub created: Option<i64>,
    /// Retirement time (OpenAI's `shutdown_date`), unix seconds.
    pub shutdown: Option<i64>,
}

/// Why a listing failed. Never carries the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PinsError {
    #[error("{variable} is not set: the {provider} API key is needed to list its models")]
    MissingKey { provider: Provider, variable: &'static str },
    #[error("{variable} is not a valid URL (`{url}`): {reason}")]
    BaseUrl { provider: Provider, variable: &'static str, url: String, reason: String },
    #[error("could not set up the HTTP client: {0}")]
    Http(String),
    #[error("{provider} rejected GET {url} (HTTP {status}): {message}")]
    Rejected { provider: Provider, url: String, status: u16, message: String },
    #[error("{provider} unavailable after {attempts} attempts at GET {url}: last HTTP {status}: {message}")]
    Unavailable { provider: Provider, url: String, status: u16, attempts: u32, message: String },
    #[error("{provider} timed out after {attempts} attempts at GET {url} ({timeout:?} each)")]
    Timeout { provider: Provider, url: String, attempts: u32, timeout: Duration },
    #[error("{provider} could not be reached after {attempts} attempts at GET {url}: {detail}")]
    Connect { provider: Provider, url: String, attempts: u32, detail: String },
    #[error("{provider} sent a model list evalgate cannot read (GET {url}): {detail}")]
    Malformed { provider: Provider, url: String, detail: String },
    #[error("{provider} model list too large (GET {url}): {detail}")]
    TooLarge { provider: Provider, url: String, detail: String },
}

impl PinsError {
    /// A problem of the set-up (a key or URL to fix; exit 2), rather than of the provider
    /// being unavailable or broken (exit 3).
    pub fn is_setup(&self) -> bool {
        match self {
            PinsError::MissingKey { .. } | PinsError::BaseUrl { .. } | PinsError::Http(_) => true,
            PinsError::Rejected { status, .. } => matches!(status, 401 | 403),
            _ => false,
        }
    }
}

/// A client fit for [`list_models`]: redirects are not followed (reqwest would carry the key to
/// wherever one points), and evalgate's user agent.
pub fn http_client() -> Result<reqwest::Client, PinsError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("evalgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| PinsError::Http(e.to_string()))
}

/// Every model of `provider` at `endpoint`, in the order listed, each id once, with the
/// default [`RetryPolicy`]. Build `http` with [`http_client`].
pub async fn list_models(
    http: &reqwest::Client,
    provider: Provider,
    endpoint: &Endpoint,
) -> Result<Vec<ModelInfo>, PinsError> {
    list_models_with(http, provider, endpoint, &RetryPolicy::default()).await
}

/// [`list_models`] with a retry policy of the caller's.
pub async fn list_models_with(
    http: &reqwest::Client,
    provider: Provider,
    endpoint: &Endpoint,
    policy: &RetryPolicy,
) -> Result<Vec<ModelInfo>, PinsError> {
    let (key_var, url_var, path) = match provider {
        Provider::Anthropic => ("ANTHROPIC_API_KEY", "EVALGATE_ANTHROPIC_BASE_URL", "v1/models"),
        Provider::Openai => ("OPENAI_API_KEY", "EVALGATE_OPENAI_BASE_URL", "models"),
    };
    let Some(secret) = &endpoint.api_key else {
        return Err(PinsError::MissingKey { provider, variable: key_var });
    };
    let base = list_url(provider, &endpoint.base_url, path, url_var)?;
    let headers = crate::provider::client::auth_headers(provider, secret);
    let mut models = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = base.clone();
        match provider {
            Provider::Anthropic => {
                url.query_pairs_mut().append_pair("limit", &ANTHROPIC_PAGE_LIMIT.to_string());
                if let Some(c) = &cursor {
                    url.query_pairs_mut().append_pair("after_id", c);
                }
            }
            Provider::Openai => {
                if let Some(c) = &cursor {
                    url.query_pairs_mut().append_pair("after", c);
                }
            }
        }
        let page = fetch(http, provider, url.as_str(), &headers, secret, policy).await?;
        for m in page.models {
            if seen.insert(m.id.clone()) {
                models.push(m);
            }
        }
        if models.len() > MAX_MODELS {
            let detail = format!("more than {MAX_MODELS} models (limit)");
            return Err(PinsError::TooLarge { provider, url: url.to_string(), detail });
        }
        match page.next {
            None => {
                let now = unix_now();
                if !release_times_meaningful(&models, now) {
                    for m in &mut models {
                        m.created = None;
                    }
                }
                return Ok(models);
            }
            Some(next) if cursor.as_ref() == Some(&next) => {
                let detail = format!("`has_more` is true but the cursor did not move past `{next}`");
                return Err(PinsError::Malformed { provider, url: url.to_string(), detail });
            }
            Some(next) => cursor = Some(next),
        }
    }
    let detail = format!("more than {MAX_PAGES} pages (limit)");
    Err(PinsError::TooLarge { provider, url: base.to_string(), detail })
}

/// Whether the `created` times of a listing say when models were released: not when every one
/// lies within a day of `now_secs`, nor when two or more and all the same (servers that report
/// the time of the request or of start-up). `false` when none is known.
pub fn release_times_meaningful(models: &[ModelInfo], now_secs: i64) -> bool {
    let known: Vec<i64> = models.iter().filter_map(|m| m.created).collect();
    let Some(first) = known.first() else { return false };
    let all_recent = known.iter().all(|c| c.saturating_sub(now_secs).abs() <= DAY);
    let all_same = known.len() >= 2 && known.iter().all(|c| c == first);
    !(all_recent || all_same)
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

fn list_url(provider: Provider, base: &str, path: &str, variable: &'static str) -> Result<reqwest::Url, PinsError> {
    let joined = format!("{}/{path}", base.trim_end_matches('/'));
    let bad = |reason: String| PinsError::BaseUrl { provider, variable, url: base.to_owned(), reason };
    let url = reqwest::Url::parse(&joined).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http and https are supported".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a base URL has no query or fragment".into()));
    }
    Ok(url)
}

/// One page as read: its models, and the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    pub models: Vec<ModelInfo>,
    pub next: Option<String>,
}

/// Why one attempt failed, when another may succeed.
enum Failure {
    Status(u16, String),
    Timeout,
    Connect(String),
    Malformed(String),
}

/// Gets one page, retrying as the policy allows.
async fn fetch(
    http: &reqwest::Client,
    provider: Provider,
    url: &str,
    headers: &HeaderMap,
    secret: &Secret,
    policy: &RetryPolicy,
) -> Result<Page, PinsError> {
    let max = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (failure, wait) = match tokio::time::timeout(policy.timeout, once(http, url, headers)).await {
            Err(_) => (Failure::Timeout, None),
            Ok(Err(e)) => (Failure::Connect(redact(&error_chain(&e), secret)), None),
            Ok(Ok(Raw::TooLarge)) => {
                let detail = format!("a page larger than {} MiB", MAX_PAGE_BYTES >> 20);
                return Err(PinsError::TooLarge { provider, url: url.to_owned(), detail });
            }
            Ok(Ok(Raw::Body { status, headers: reply_headers, body })) => {
                if (200..300).contains(&status) {
                    match parse_page(provider, &body) {
                        Ok(page) => return Ok(page),
                        Err(detail) => (Failure::Malformed(redact(&detail, secret)), None),
                    }
                } else {
                    let message = redact(&error_message(provider, &body), secret);
                    if !is_retryable(status) {
                        return Err(PinsError::Rejected { provider, url: url.to_owned(), status, message });
                    }
                    (Failure::Status(status, message), retry_after(&reply_headers, SystemTime::now()))
                }
            }
        };
        if attempt >= max {
            let url = url.to_owned();
            return Err(match failure {
                Failure::Status(status, message) => {
                    PinsError::Unavailable { provider, url, status, attempts: attempt, message }
                }
                Failure::Timeout => PinsError::Timeout { provider, url, attempts: attempt, timeout: policy.timeout },
                Failure::Connect(detail) => PinsError::Connect { provider, url, attempts: attempt, detail },
                Failure::Malformed(detail) => PinsError::Malformed { provider, url, detail },
            });
        }
        let wait = match wait {
            Some(d) => d.min(policy.max_retry_after),
            None => backoff(policy, attempt),
        };
        tracing::warn!(%provider, attempt, max_attempts = max, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "listing models failed; retrying");
        tokio::time::sleep(wait).await;
    }
}

enum Raw {
    Body { status: u16, headers: HeaderMap, body: Vec<u8> },
    TooLarge,
}

async fn once(http: &reqwest::Client, url: &str, headers: &HeaderMap) -> Result<Raw, reqwest::Error> {
    let mut resp = http.get(url).headers(headers.clone()).send().await?;
    let status = resp.status().as_u16();
    let reply_headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Ok(Raw::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Raw::Body { status, headers: reply_headers, body })
}

fn error_message(provider: Provider, body: &[u8]) -> String {
    match provider {
        Provider::Anthropic => anthropic::error_message(body),
        Provider::Openai => openai::error_message(body),
    }
}

// ---- pages -----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct AnthropicPage {
    data: Vec<AnthropicModel>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct AnthropicModel {
    id: String,
    #[serde(default)]
    created_at: Option<Value>,
}

#[derive(Deserialize)]
struct OpenaiPage {
    data: Vec<OpenaiModel>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct OpenaiModel {
    id: String,
    #[serde(default)]
    created: Option<Value>,
    #[serde(default)]
    shutdown_date: Option<Value>,
}

pub(crate) fn parse_page(provider: Provider, body: &[u8]) -> Result<Page, String> {
    let read = |e: serde_json::Error| format!("{e} in {}", snippet(body));
    let (models, has_more, last_id) = match provider {
        Provider::Anthropic => {
            let p: AnthropicPage = serde_json::from_slice(body).map_err(read)?;
            let models = p
                .data
                .into_iter()
                .map(|m| ModelInfo { id: m.id, created: m.created_at.as_ref().and_then(time_of), shutdown: None })
                .collect::<Vec<_>>();
            (models, p.has_more, p.last_id)
        }
        Provider::Openai => {
            let p: OpenaiPage = serde_json::from_slice(body).map_err(read)?;
            let models = p
                .data
                .into_iter()
                .map(|m| ModelInfo {
                    id: m.id,
                    created: m.created.as_ref().and_then(time_of),
                    shutdown: m.shutdown_date.as_ref().and_then(time_of),
                })
                .collect::<Vec<_>>();
            (models, p.has_more, p.last_id)
        }
    };
    if let Some(m) = models.iter().find(|m| m.id.is_empty() || m.id.len() > 256) {
        return Err(format!("a model id `{}` that is empty or too long", snippet(m.id.as_bytes())));
    }
    let next = if has_more {
        let cursor = last_id.filter(|s| !s.is_empty()).or_else(|| models.last().map(|m| m.id.clone()));
        Some(cursor.ok_or("`has_more` is true on a page without models or `last_id`")?)
    } else {
        None
    };
    Ok(Page { models, next })
}

/// A time as providers write it: unix seconds (a number or a string of digits), an RFC 3339
/// time, or a `YYYY-MM-DD` date (midnight UTC). Zero, negative and unreadable values are `None`.
pub fn time_of(v: &Value) -> Option<i64> {
    let secs = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().ok()
            } else {
                parse_rfc3339(s).or_else(|| parse_date(s))
            }
        }
        _ => None,
    }?;
    (secs > 0).then_some(secs)
}

/// `YYYY-MM-DD` at midnight UTC.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = digits(&s[..4])?;
    let m: u32 = digits(&s[5..7])?;
    let d: u32 = digits(&s[8..])?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY)
}

/// An RFC 3339 time (`2025-02-19T00:00:00Z`, fractions and `±HH:MM` offsets accepted), in
/// unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if s.len() < 20 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return None;
    }
    let day = parse_date(&s[..10])?;
    if !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return None;
    }
    let t = &s[11..19];
    let tb = t.as_bytes();
    if tb[2] != b':' || tb[5] != b':' {
        return None;
    }
    let (h, mi, se): (i64, i64, i64) = (digits(&t[..2])?, digits(&t[3..5])?, digits(&t[6..])?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return None;
            }
            let (oh, om): (i64, i64) = (digits(&rest[1..3])?, digits(&rest[4..])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if rb[0] == b'+' { o } else { -o }
        }
    };
    Some(day + h * 3600 + mi * 60 + se - offset)
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(p: Provider, v: Value) -> Result<Page, String> {
        parse_page(p, v.to_string().as_bytes())
    }

    #[test]
    fn anthropic_pages_give_ids_release_times_and_the_next_cursor() {
        let p = page(
            Provider::Anthropic,
            json!({"data": [
                {"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"},
                {"type": "model", "id": "claude-opus-4-6", "display_name": "Claude Opus 4.6", "created_at": "2026-02-05T12:30:00.123+01:00"}
            ], "has_more": true, "first_id": "claude-sonnet-4-5-20250929", "last_id": "claude-opus-4-6"}),
        )
        .expect("reads");
        assert_eq!(p.next.as_deref(), Some("claude-opus-4-6"));
        assert_eq!(p.models[0].created, Some(1_759_104_000));
        assert_eq!(p.models[1].created, Some(parse_date("2026-02-05").expect("date") + 11 * 3600 + 30 * 60));
        let last = page(Provider::Anthropic, json!({"data": [], "has_more": false, "first_id": null, "last_id": null}))
            .expect("reads");
        assert_eq!(last, Page { models: vec![], next: None });
    }

    #[test]
    fn openai_pages_read_created_and_shutdown_dates_in_either_form() {
        let p = page(
            Provider::Openai,
            json!({"object": "list", "data": [
                {"id": "gpt-4o-2024-08-06", "object": "model", "created": 1_722_814_719, "owned_by": "system"},
                {"id": "gpt-4-0613", "object": "model", "created": 1_686_588_896, "owned_by": "openai", "shutdown_date": "2026-06-01"},
                {"id": "gpt-4-0314", "object": "model", "created": 1_686_588_800, "shutdown_date": 1_780_000_000},
                {"id": "x", "object": "model", "created": 0, "shutdown_date": null}
            ]}),
        )
        .expect("reads");
        assert_eq!(p.next, None, "OpenAI's own list is one page");
        assert_eq!(p.models[0].created, Some(1_722_814_719));
        assert_eq!(p.models[1].shutdown, parse_date("2026-06-01"));
        assert_eq!(p.models[2].shutdown, Some(1_780_000_000));
        assert_eq!((p.models[3].created, p.models[3].shutdown), (None, None));
    }

    #[test]
    fn openai_style_paging_follows_last_id_or_the_last_model() {
        let with_last =
            json!({"object": "list", "data": [{"id": "a", "created": 5}], "has_more": true, "last_id": "a"});
        assert_eq!(page(Provider::Openai, with_last).expect("reads").next.as_deref(), Some("a"));
        let without = json!({"object": "list", "data": [{"id": "a"}, {"id": "b"}], "has_more": true});
        assert_eq!(page(Provider::Openai, without).expect("reads").next.as_deref(), Some("b"));
        let stuck = json!({"object": "list", "data": [], "has_more": true});
        assert!(page(Provider::Openai, stuck).is_err());
    }

    #[test]
    fn pages_that_are_not_model_lists_are_errors() {
        assert!(parse_page(Provider::Anthropic, b"<html>").is_err());
        assert!(page(Provider::Anthropic, json!({"models": []})).is_err());
        assert!(page(Provider::Openai, json!({"data": [{"created": 1}]})).is_err(), "an id is required");
        assert!(page(Provider::Openai, json!({"data": [{"id": ""}]})).is_err());
    }

    #[test]
    fn dates_and_times_are_read_strictly() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("2024-02-29T02:00:00+02:00"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00"), None, "an offset is required");
        assert_eq!(parse_rfc3339("2024-02-29T24:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00.Z"), None);
        assert_eq!(time_of(&json!("1700000000")), Some(1_700_000_000));
        assert_eq!(time_of(&json!("soon")), None);
        assert_eq!(time_of(&json!(-5)), None);
        assert_eq!(time_of(&json!(true)), None);
    }

    fn m(id: &str, created: Option<i64>) -> ModelInfo {
        ModelInfo { id: id.into(), created, shutdown: None }
    }

    #[test]
    fn release_times_of_now_or_all_alike_mean_nothing() {
        let now = 1_800_000_000;
        assert!(release_times_meaningful(&[m("a", Some(now - 90 * DAY)), m("b", Some(now - 3))], now));
        assert!(!release_times_meaningful(&[m("a", Some(now - 5)), m("b", Some(now - 60))], now), "all now");
        assert!(!release_times_meaningful(&[m("a", Some(now + 10))], now));
        assert!(!release_times_meaningful(&[m("a", Some(1_000)), m("b", Some(1_000))], now), "all alike");
        assert!(release_times_meaningful(&[m("a", Some(1_000))], now), "one old model is fine");
        assert!(!release_times_meaningful(&[m("a", None)], now));
    }

    #[test]
    fn base_urls_are_checked_and_joined_with_one_slash() {
        let u = list_url(Provider::Openai, "http://127.0.0.1:9/v1/", "models", "X").expect("valid");
        assert_eq!(u.as_str(), "http://127.0.0.1:9/v1/models");
        assert!(list_url(Provider::Anthropic, "api.anthropic.com", "v1/models", "X").is_err());
        assert!(list_url(Provider::Anthropic, "ftp://x", "v1/models", "X").is_err());
    }

    #[test]
    fn setup_errors_are_told_from_unavailability() {
        let a = Provider::Anthropic;
        assert!(PinsError::MissingKey { provider: a, variable: "ANTHROPIC_API_KEY" }.is_setup());
        let rejected = |status| PinsError::Rejected { provider: a, url: "u".into(), status, message: "m".into() };
        assert!(rejected(401).is_setup());
        assert!(!rejected(404).is_setup());
        let down = PinsError::Connect { provider: a, url: "u".into(), attempts: 3, detail: "refused".into() };
        assert!(!down.is_setup());
    }
}
