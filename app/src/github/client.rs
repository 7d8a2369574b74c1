//! Requests with evalgate's policy: relative URIs only (octocrab attaches the token only to
//! those or to `api.github.com`, so a GitHub Enterprise or test base URL keeps its token on
//! every page), pagination that turns each absolute `next` link back into a relative one and
//! refuses links to another host, and retries of transient failures: 5xx, secondary rate limits
//! (`retry-after`), primary rate limits (`x-ratelimit-remaining: 0` → wait until
//! `x-ratelimit-reset`), timeouts and connection errors. A request that creates something is
//! retried only by its caller, who first checks whether the first attempt got through.

use http::{HeaderMap, Method, StatusCode, Uri};
use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Attempts of one request before its failure is returned.
const ATTEMPTS: u32 = 6;
/// The longest single wait evalgate accepts from GitHub before retrying.
const MAX_WAIT: Duration = Duration::from_secs(120);
/// Each attempt's deadline.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Pages followed for one listing (GitHub caps PR files at 3,000: 30 pages of 100).
const MAX_PAGES: usize = 100;
/// The largest response body read.
const MAX_BODY: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub answered {status} to {method} {path}: {message}")]
    Status { method: Method, path: String, status: StatusCode, message: String },
    #[error("{method} {path}: {reason}")]
    Transport { method: Method, path: String, reason: String },
    #[error("{method} {path}: the reply is not what GitHub documents: {reason}")]
    Malformed { method: Method, path: String, reason: String },
    #[error("{0}")]
    Setup(String),
}

impl GitHubError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the request may or may not have taken effect (a create must be checked first).
    pub fn is_ambiguous(&self) -> bool {
        match self {
            GitHubError::Transport { .. } => true,
            GitHubError::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}

/// The App: signs JWTs and hands out one client per installation.
pub struct GitHubApp {
    app: Octocrab,
    app_id: u64,
    base: String,
    installations: Mutex<HashMap<u64, Installation>>,
    /// `x-ratelimit-remaining` of the latest reply (-1 before any), for `/metrics`.
    ratelimit: Arc<std::sync::atomic::AtomicI64>,
}

impl GitHubApp {
    /// `api_url` is `EVALGATE_GITHUB_API_URL`; `key_pem` the App's RSA private key.
    pub fn new(api_url: &str, app_id: u64, key_pem: &[u8]) -> Result<GitHubApp, GitHubError> {
        let base = api_url.trim_end_matches('/').to_owned();
        let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(key_pem)
            .map_err(|e| GitHubError::Setup(format!("the App private key is not an RSA key in PEM: {e}")))?;
        let app = Octocrab::builder()
            .base_uri(base.as_str())
            .map_err(|e| GitHubError::Setup(format!("EVALGATE_GITHUB_API_URL `{base}` is not a URL: {e}")))?
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(TIMEOUT))
            .app(AppId(app_id), key)
            .build()
            .map_err(|e| GitHubError::Setup(format!("cannot build the GitHub client: {e}")))?;
        Ok(GitHubApp {
            app,
            app_id,
            base,
            installations: Mutex::new(HashMap::new()),
            ratelimit: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
        })
    }

    pub fn ratelimit_remaining(&self) -> Option<i64> {
        let v = self.ratelimit.load(std::sync::atomic::Ordering::Relaxed);
        (v >= 0).then_some(v)
    }

    /// The client of one installation; the same one (and token cache) every time.
    pub fn installation(&self, id: u64) -> Result<Installation, GitHubError> {
        let mut map = self.installations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = map.get(&id) {
            return Ok(i.clone());
        }
        let client = self
            .app
            .installation(InstallationId(id))
            .map_err(|e| GitHubError::Setup(format!("installation {id}: {e}")))?;
        let inst = Installation {
            client: Arc::new(client),
            base: Arc::from(self.base.as_str()),
            ratelimit: self.ratelimit.clone(),
            app_id: self.app_id,
        };
        map.insert(id, inst.clone());
        Ok(inst)
    }
}

/// One installation's client.
#[derive(Clone)]
pub struct Installation {
    client: Arc<Octocrab>,
    base: Arc<str>,
    ratelimit: Arc<std::sync::atomic::AtomicI64>,
    /// This App's id: a check run of another App with the same name is never adopted.
    pub(crate) app_id: u64,
}

/// A reply: status, headers and the body as JSON.
pub struct Reply {
    pub headers: HeaderMap,
    pub body: Value,
}

/// How long GitHub asks us to wait before trying again, if it says.
fn wait_of(status: StatusCode, headers: &HeaderMap, body: &str) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (header("x-ratelimit-remaining") == Some("0") || body.contains("rate limit")));
    if !limited {
        return None;
    }
    if header("x-ratelimit-remaining") == Some("0") {
        if let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok()) {
            let now = chrono::Utc::now().timestamp();
            return Some(Duration::from_secs((reset - now).max(1) as u64));
        }
    }
    // A secondary limit without retry-after: GitHub asks for at least a minute.
    Some(Duration::from_secs(60))
}

fn backoff(attempt: u32) -> Duration {
    let ms = 500u64 << attempt.min(6);
    Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
}

fn message_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

impl Installation {
    /// Sends one request with the retry policy. `retry` is false for requests that create
    /// something: their transient failures are returned to the caller to check and retry.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry: bool,
    ) -> Result<Reply, GitHubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self.once(&method, path, body).await {
                Ok(reply) => return Ok(reply),
                Err((err, wait)) => {
                    let transient = wait.is_some() || err.is_ambiguous();
                    let rate_limited = wait.is_some();
                    // A rate limit means the request was not served, so even a create may repeat.
                    if attempt < ATTEMPTS && transient && (retry || rate_limited) {
                        let pause = wait.unwrap_or_else(|| backoff(attempt)).min(MAX_WAIT);
                        tracing::warn!(%method, path, attempt, wait_ms = pause.as_millis() as u64, error = %err, "retrying a GitHub request");
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    err
                }
            };
            return Err(err);
        }
    }

    async fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, (GitHubError, Option<Duration>)> {
        let transport =
            |reason: String| (GitHubError::Transport { method: method.clone(), path: path.to_owned(), reason }, None);
        let uri: Uri = Uri::builder().path_and_query(path).build().map_err(|e| transport(format!("bad path: {e}")))?;
        let mut builder = http::Request::builder().method(method.clone()).uri(uri);
        builder = builder.header(http::header::ACCEPT, "application/vnd.github+json");
        let request = self.client.build_request(builder, body).map_err(|e| transport(e.to_string()))?;
        let send = self.client.execute(request);
        let response = match tokio::time::timeout(TIMEOUT, send).await {
            Err(_) => return Err(transport(format!("no answer within {} s", TIMEOUT.as_secs()))),
            Ok(Err(e)) => return Err(transport(error_text(&e))),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(left) =
            headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
        {
            self.ratelimit.store(left, std::sync::atomic::Ordering::Relaxed);
        }
        // Read at most MAX_BODY bytes: a larger reply is refused while it streams in, never
        // held whole in memory first.
        let limited = http_body_util::Limited::new(response.into_body(), MAX_BODY);
        let bytes = match tokio::time::timeout(TIMEOUT, http_body_util::BodyExt::collect(limited)).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(transport(format!("the reply is over {MAX_BODY} bytes")));
            }
            Ok(Err(e)) => return Err(transport(format!("reading the reply: {e}"))),
            Err(_) => return Err(transport("the reply did not finish in time".into())),
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            let wait = wait_of(status, &headers, &text);
            let err = GitHubError::Status {
                method: method.clone(),
                path: path.to_owned(),
                status,
                message: message_of(&text),
            };
            return Err((err, wait));
        }
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| {
                (
                    GitHubError::Malformed {
                        method: method.clone(),
                        path: path.to_owned(),
                        reason: format!("not JSON: {e}"),
                    },
                    None,
                )
            })?
        };
        Ok(Reply { headers, body })
    }

    /// Every page of a listing. `items` picks the array out of a page (`None` for a top-level
    /// array).
    pub async fn paginate(&self, first: &str, items: Option<&str>) -> Result<Vec<Value>, GitHubError> {
        let mut out = Vec::new();
        let mut next = Some(first.to_owned());
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(GitHubError::Malformed {
                    method: Method::GET,
                    path: first.to_owned(),
                    reason: format!("more than {MAX_PAGES} pages"),
                });
            }
            let reply = self.request(Method::GET, &path, None, true).await?;
            let page = match items {
                Some(key) => reply.body.get(key).cloned().unwrap_or(Value::Null),
                None => reply.body,
            };
            match page {
                Value::Array(a) => out.extend(a),
                other => {
                    return Err(GitHubError::Malformed {
                        method: Method::GET,
                        path,
                        reason: format!("expected a list, found {}", kind_of(&other)),
                    });
                }
            }
            next = next_link(&reply.headers, &self.base).map_err(|reason| GitHubError::Malformed {
                method: Method::GET,
                path: path.clone(),
                reason,
            })?;
        }
        Ok(out)
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn error_text(e: &octocrab::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The relative path of the `rel="next"` link, if any. A link to another host than the API's
/// is refused: following it would send the installation token elsewhere.
pub fn next_link(headers: &HeaderMap, base: &str) -> Result<Option<String>, String> {
    let Some(link) = headers.get(http::header::LINK).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    for part in link.split(',') {
        let mut pieces = part.split(';');
        let Some(url) = pieces.next().map(str::trim) else { continue };
        if !pieces.any(|p| p.trim() == "rel=\"next\"") {
            continue;
        }
        let url = url.trim_start_matches('<').trim_end_matches('>');
        if url.starts_with('/') {
            return Ok(Some(url.to_owned()));
        }
        let base_uri: Uri = base.parse().map_err(|_| format!("API base `{base}` is not a URI"))?;
        let uri: Uri = url.parse().map_err(|_| format!("the next link `{url}` is not a URI"))?;
        if uri.authority() != base_uri.authority() || uri.scheme() != base_uri.scheme() {
            return Err(format!("the next link `{url}` leaves {base}"));
        }
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        // The base's own path (GitHub Enterprise's `/api/v3`) is added again by the client.
        let prefix = base_uri.path().trim_end_matches('/');
        let rel = pq.strip_prefix(prefix).filter(|r| r.starts_with('/')).unwrap_or(pq);
        return Ok(Some(rel.to_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::LINK, v.parse().expect("header"));
        h
    }

    #[test]
    fn an_absolute_next_link_becomes_relative() {
        let h = link(
            r#"<http://127.0.0.1:9/repos/o/r/pulls/1/files?page=2>; rel="next", <http://127.0.0.1:9/repos/o/r/pulls/1/files?page=3>; rel="last""#,
        );
        assert_eq!(
            next_link(&h, "http://127.0.0.1:9").expect("ok").as_deref(),
            Some("/repos/o/r/pulls/1/files?page=2")
        );
    }

    #[test]
    fn an_enterprise_base_path_is_not_doubled() {
        let h = link(r#"<https://ghe.example/api/v3/repos/o/r/issues/1/comments?page=2>; rel="next""#);
        assert_eq!(
            next_link(&h, "https://ghe.example/api/v3").expect("ok").as_deref(),
            Some("/repos/o/r/issues/1/comments?page=2")
        );
    }

    #[test]
    fn a_next_link_to_another_host_is_refused() {
        let h = link(r#"<https://evil.example/steal?page=2>; rel="next""#);
        assert!(next_link(&h, "https://api.github.com").is_err());
    }

    #[test]
    fn the_last_page_has_no_next() {
        let h = link(r#"<https://api.github.com/x?page=1>; rel="prev""#);
        assert_eq!(next_link(&h, "https://api.github.com").expect("ok"), None);
    }

    #[test]
    fn a_secondary_rate_limit_waits_for_retry_after() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().expect("header"));
        assert_eq!(wait_of(StatusCode::FORBIDDEN, &h, "secondary rate limit"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_primary_rate_limit_waits_until_the_reset() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().expect("header"));
        let reset = chrono::Utc::now().timestamp() + 30;
        h.insert("x-ratelimit-reset", reset.to_string().parse().expect("header"));
        let w = wait_of(StatusCode::FORBIDDEN, &h, "API rate limit exceeded").expect("a wait");
        assert!(w >= Duration::from_secs(28) && w <= Duration::from_secs(31), "{w:?}");
    }

    #[test]
    fn a_plain_403_is_not_a_rate_limit() {
        assert_eq!(wait_of(StatusCode::FORBIDDEN, &HeaderMap::new(), "Resource not accessible by integration"), None);
    }
}
