//! The retrying HTTP sender: one reqwest client for every call, one request at a time per
//! attempt, under the provider's [`Limiter`].
//!
//! What is retried, and why:
//! - 408, 429, 529 and 5xx: the provider is busy or broken for a moment. The wait is the
//!   provider's `retry-after-ms` / `retry-after` when it sends one (capped at
//!   [`RetryPolicy::max_retry_after`]), else exponential backoff with full jitter, so many calls
//!   failing together do not come back together.
//! - timeouts and connection errors: the network, not the request.
//! - a 2xx whose body cannot be read: a truncated or garbled reply, which the next attempt
//!   usually does not repeat.
//!
//! What is not: a 429 saying a spend limit or quota was reached (it lasts until someone pays;
//! retrying only delays the error), and every other 4xx (the request itself is wrong).
//!
//! The API key travels only in a header marked sensitive; every message that goes into an error
//! or a log line is scrubbed of it, in case a server echoes it back.

use super::limiter::Limiter;
use super::{ChatResponse, ProviderError, RetryPolicy, Secret};
use crate::snapshot::Provider;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// A reply larger than this is not read further (the biggest real replies are a few hundred KiB).
pub const MAX_REPLY_BYTES: usize = 32 << 20;

/// Error messages are cut to this many characters: enough to say what went wrong, not a page.
const SNIPPET_CHARS: usize = 300;

/// How one wire format reads replies: [`super::anthropic`] or [`super::openai`].
#[derive(Clone, Copy)]
pub struct Format {
    pub parse: fn(&[u8]) -> Result<ChatResponse, String>,
    pub error_message: fn(&[u8]) -> String,
}

/// One request, sent as is on every attempt.
pub struct Call<'a> {
    pub provider: Provider,
    pub url: &'a str,
    /// Every header, the key's marked sensitive.
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Only to scrub it from messages.
    pub secret: &'a Secret,
}

/// A successful call: the reply as read, the exact bytes it was read from, and what it took.
#[derive(Debug)]
pub struct Delivered {
    pub response: ChatResponse,
    pub body: String,
    pub latency_ms: u64,
    pub attempts: u32,
}

/// Sends calls with retries. One per client: it holds the connection pool.
#[derive(Debug)]
pub struct Sender {
    client: reqwest::Client,
    policy: RetryPolicy,
    attempts: AtomicU64,
}

/// Why one attempt did not succeed, when another may.
#[derive(Debug)]
enum Failure {
    Status { status: u16, message: String },
    Timeout,
    Connect(String),
    Malformed(String),
}

/// The outcome of one attempt.
enum Attempt {
    Done(ChatResponse, String),
    Retry(Failure, Option<Duration>),
    Fail(ProviderError),
}

/// A reply as it came off the wire.
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    truncated: bool,
}

impl Sender {
    /// Redirects are not followed: reqwest would carry `x-api-key` to wherever one points.
    pub fn new(policy: RetryPolicy) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("evalgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender { client, policy, attempts: AtomicU64::new(0) })
    }

    /// HTTP attempts made so far by this sender.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Sends `call` until it succeeds, fails for good, or the policy's attempts are used up.
    /// A [`Limiter`] permit is held for each attempt only, never across a retry wait.
    pub async fn send(&self, limiter: &Limiter, call: &Call<'_>, format: Format) -> Result<Delivered, ProviderError> {
        let max = self.policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = limiter.acquire(call.provider).await;
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let raw = tokio::time::timeout(self.policy.timeout, self.once(call)).await;
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            drop(permit);
            let (failure, retry_after) = match judge(call, format, raw) {
                Attempt::Done(response, body) => {
                    tracing::debug!(provider = %call.provider, attempt, latency_ms, "model call succeeded");
                    return Ok(Delivered { response, body, latency_ms, attempts: attempt });
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(failure, retry_after) => (failure, retry_after),
            };
            if attempt >= max {
                return Err(self.give_up(call.provider, attempt, failure));
            }
            let wait = match retry_after {
                Some(d) => d.min(self.policy.max_retry_after),
                None => backoff(&self.policy, attempt),
            };
            tracing::warn!(
                provider = %call.provider,
                attempt,
                max_attempts = max,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                reason = %describe(&failure),
                "model call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt: the request and the whole reply body, bounded in size.
    async fn once(&self, call: &Call<'_>) -> Result<Raw, reqwest::Error> {
        let mut resp = self.client.post(call.url).headers(call.headers.clone()).body(call.body.clone()).send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_REPLY_BYTES {
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Raw { status, headers, body, truncated })
    }

    fn give_up(&self, provider: Provider, attempts: u32, last: Failure) -> ProviderError {
        match last {
            Failure::Status { status, message } => ProviderError::Unavailable { provider, status, attempts, message },
            Failure::Timeout => ProviderError::Timeout { provider, attempts, timeout: self.policy.timeout },
            Failure::Connect(detail) => ProviderError::Connect { provider, attempts, detail },
            Failure::Malformed(detail) => ProviderError::Malformed { provider, attempts, detail },
        }
    }
}

/// What one attempt's outcome means: done, worth another attempt (and when), or final.
fn judge(
    call: &Call<'_>,
    format: Format,
    raw: Result<Result<Raw, reqwest::Error>, tokio::time::error::Elapsed>,
) -> Attempt {
    let raw = match raw {
        Err(_) => return Attempt::Retry(Failure::Timeout, None),
        Ok(Err(e)) => return Attempt::Retry(Failure::Connect(redact(&error_chain(&e), call.secret)), None),
        Ok(Ok(raw)) => raw,
    };
    if raw.status.is_success() {
        return read_success(raw, format, call.secret);
    }
    let status = raw.status.as_u16();
    let message = redact(&(format.error_message)(&raw.body), call.secret);
    if status == 429 && is_spend_limit(&raw.body) {
        return Attempt::Fail(ProviderError::SpendLimit { provider: call.provider, message });
    }
    if is_retryable(status) {
        return Attempt::Retry(Failure::Status { status, message }, retry_after(&raw.headers, SystemTime::now()));
    }
    Attempt::Fail(ProviderError::Rejected { provider: call.provider, status, message })
}

fn read_success(raw: Raw, format: Format, secret: &Secret) -> Attempt {
    if raw.truncated {
        let detail = format!("the reply is larger than {MAX_REPLY_BYTES} bytes");
        return Attempt::Retry(Failure::Malformed(detail), None);
    }
    let response = match (format.parse)(&raw.body) {
        Ok(r) => r,
        Err(detail) => return Attempt::Retry(Failure::Malformed(redact(&detail, secret)), None),
    };
    // A body that parsed is UTF-8; kept as text so a cassette replays the very same bytes.
    match String::from_utf8(raw.body) {
        Ok(body) => Attempt::Done(response, body),
        Err(_) => Attempt::Retry(Failure::Malformed("the reply is not UTF-8".into()), None),
    }
}

fn describe(f: &Failure) -> String {
    match f {
        Failure::Status { status, message } => format!("HTTP {status}: {message}"),
        Failure::Timeout => "timed out".into(),
        Failure::Connect(d) => format!("connection failed: {d}"),
        Failure::Malformed(d) => format!("unreadable reply: {d}"),
    }
}

/// 408 request timeout, 429 rate limited, 5xx (529 is Anthropic's "overloaded").
pub(crate) fn is_retryable(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// A 429 that will not go away by waiting: OpenAI's `insufficient_quota`, Anthropic's
/// `enforced_spend_limit_reached`, or any message about a spend limit, quota or credit balance.
fn is_spend_limit(body: &[u8]) -> bool {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(e) => ["/type", "/code", "/message", "/details/error_code"]
            .iter()
            .filter_map(|p| e.pointer(p).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        None => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.to_lowercase();
    ["spend limit", "spend_limit", "spending limit", "quota", "credit balance", "usage limit"]
        .iter()
        .any(|k| text.contains(k))
}

/// The wait a reply asks for: `retry-after-ms` (milliseconds), else `retry-after` in seconds or
/// as an HTTP-date. Unreadable values are ignored (backoff applies).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Ok(d) = Duration::try_from_secs_f64(ms / 1000.0) {
            return Some(d);
        }
    }
    let v = header("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Full jitter: uniform in `[0, min(max_delay, base_delay × 2^(retry − 1))]`.
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    let cap = policy.base_delay.saturating_mul(factor).min(policy.max_delay);
    let cap_us = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(fastrand::u64(0..=cap_us))
}

/// The error and its causes on one line (reqwest's own Display stops at the outermost).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    snippet(out.as_bytes())
}

/// Removes the key from a message, in case a server or proxy echoes it back.
pub(crate) fn redact(message: &str, secret: &Secret) -> String {
    let key = secret.expose();
    if key.is_empty() { message.to_owned() } else { message.replace(key, "***") }
}

/// A short, one-line piece of `bytes` for an error message.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= SNIPPET_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(SNIPPET_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    #[test]
    fn retry_after_is_read_in_milliseconds_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(&headers(&[("retry-after-ms", "250")]), now), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(&headers(&[("retry-after", "2")]), now), Some(Duration::from_secs(2)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&[("retry-after", &date)]), now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&[("retry-after", &past)]), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_stays_under_its_exponential_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            ..RetryPolicy::default()
        };
        for _ in 0..200 {
            assert!(backoff(&p, 1) <= Duration::from_millis(100));
            assert!(backoff(&p, 2) <= Duration::from_millis(200));
            assert!(backoff(&p, 30) <= Duration::from_millis(300));
        }
    }

    #[test]
    fn spend_limits_are_told_from_rate_limits() {
        let openai = br#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        let anthropic = br#"{"type":"error","error":{"type":"rate_limit_error","message":"Spend cap reached","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
        let rate = br#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50 requests per minute."}}"#;
        assert!(is_spend_limit(openai));
        assert!(is_spend_limit(anthropic));
        assert!(is_spend_limit(b"Your credit balance is too low"));
        assert!(!is_spend_limit(rate));
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(snippet(b"  a\n b\t c "), "a b c");
        let long = snippet("é".repeat(1000).as_bytes());
        assert_eq!(long.chars().count(), SNIPPET_CHARS + 1);
    }

    #[test]
    fn the_key_is_scrubbed_from_messages() {
        let s = Secret::new("sk-123456789");
        assert_eq!(redact("bad key sk-123456789 given", &s), "bad key *** given");
    }
}
