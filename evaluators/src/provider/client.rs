//! [`ModelClient`]: the one way the engine calls a model, live (optionally recording) or from a
//! cassette, decided when the client is built.

use super::cassette::{self, Cassette, CassetteError, Entry, Recorder};
use super::http::{Call, Format, Sender};
use super::limiter::Limiter;
use super::{
    ChatRequest, Endpoint, Endpoints, Exchange, Limits, ProviderError, RetryPolicy, Secret, anthropic, openai,
};
use crate::snapshot::Provider;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use std::path::{Path, PathBuf};

/// Where answers come from.
#[derive(Debug)]
pub enum Transport {
    /// Over HTTP, each exchange also kept for the cassette when recording.
    Live(Live),
    /// From a cassette only; the network is never used.
    Replay(Cassette),
}

/// The live transport: one HTTP sender for both providers, their endpoints, and the recorder.
#[derive(Debug)]
pub struct Live {
    sender: Sender,
    anthropic: Target,
    openai: Target,
    record: Option<(PathBuf, Recorder)>,
}

/// A provider's full request URL and key.
#[derive(Debug)]
struct Target {
    url: String,
    /// `url[..base_len]` is the base URL, without a trailing `/`.
    base_len: usize,
    key: Option<Secret>,
}

/// Why a live client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{variable} is not a valid URL (`{url}`): {reason}")]
    BaseUrl { variable: &'static str, url: String, reason: String },
    #[error("could not set up the HTTP client: {0}")]
    Http(String),
    #[error("cannot record to {}: {reason}", path.display())]
    Record { path: PathBuf, reason: String },
}

/// Calls models. `Send + Sync`, meant to be shared through an `Arc` by every task of a run.
#[derive(Debug)]
pub struct ModelClient {
    transport: Transport,
    limiter: Limiter,
}

impl ModelClient {
    /// Calls providers over HTTP; with `record = Some(path)` every successful exchange is kept
    /// for [`ModelClient::finish`]. Base URLs are checked here, so a typo stops the run before
    /// any call; a missing key only fails calls to that provider.
    pub fn live(
        endpoints: Endpoints,
        retry: RetryPolicy,
        limits: Limits,
        record: Option<PathBuf>,
    ) -> Result<Self, ClientError> {
        let anthropic = target(&endpoints.anthropic, "v1/messages", "EVALGATE_ANTHROPIC_BASE_URL")?;
        let openai = target(&endpoints.openai, "chat/completions", "EVALGATE_OPENAI_BASE_URL")?;
        let sender = Sender::new(retry).map_err(|e| ClientError::Http(e.to_string()))?;
        if let Some(path) = &record {
            check_record_path(path)?;
        }
        let record = record.map(|p| (p, Recorder::new()));
        Ok(ModelClient {
            transport: Transport::Live(Live { sender, anthropic, openai, record }),
            limiter: Limiter::new(limits),
        })
    }

    /// Answers every call from `cassette`; a call missing from it is
    /// [`ProviderError::NotInCassette`]. Replayed exchanges report the recorded latency and
    /// zero attempts, and still pass through the limiter, so a replay orders work as a live run.
    pub fn replay(cassette: Cassette, limits: Limits) -> Self {
        ModelClient { transport: Transport::Replay(cassette), limiter: Limiter::new(limits) }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Where this client's answers from `provider` come from, for the result cache to key them
    /// by: `live:<base URL>` over HTTP (recording or not: recorded answers are live answers),
    /// `cassette:sha256:<hex of the file>` from a cassette. Answers of one origin are never
    /// served to a run of another.
    pub fn origin(&self, provider: Provider) -> String {
        match &self.transport {
            Transport::Live(live) => {
                let target = match provider {
                    Provider::Anthropic => &live.anthropic,
                    Provider::Openai => &live.openai,
                };
                format!("live:{}", &target.url[..target.base_len])
            }
            Transport::Replay(c) => format!("cassette:sha256:{}", c.sha256()),
        }
    }

    /// One model call. `nonce` tells apart identical requests that must get their own answers
    /// (the samples of a case, the votes of a judge); it is part of the cassette key.
    pub async fn complete(&self, req: &ChatRequest, nonce: u32) -> Result<Exchange, ProviderError> {
        let provider = req.snapshot.provider();
        let body = match provider {
            Provider::Anthropic => anthropic::request_body(req),
            Provider::Openai => openai::request_body(req),
        };
        // Serialised once: these exact bytes are sent and hashed into the cassette key.
        let body = body.to_string().into_bytes();
        match &self.transport {
            Transport::Replay(c) => self.replayed(c, req, nonce, &body).await,
            Transport::Live(live) => self.live_call(live, req, nonce, body).await,
        }
    }

    async fn replayed(
        &self,
        c: &Cassette,
        req: &ChatRequest,
        nonce: u32,
        body: &[u8],
    ) -> Result<Exchange, ProviderError> {
        let provider = req.snapshot.provider();
        let key = cassette::key(provider, nonce, body);
        let _permit = self.limiter.acquire(provider).await;
        let entry = c
            .lookup(&key)
            .ok_or_else(|| ProviderError::NotInCassette { model: req.snapshot.to_string(), key: key.clone() })?;
        // Checked when the cassette was loaded; a failure here means the entry was for another provider.
        let response = cassette::parse_body(provider, &entry.body).map_err(|detail| ProviderError::Malformed {
            provider,
            attempts: 0,
            detail,
        })?;
        Ok(Exchange { response, latency_ms: entry.latency_ms, attempts: 0 })
    }

    async fn live_call(
        &self,
        live: &Live,
        req: &ChatRequest,
        nonce: u32,
        body: Vec<u8>,
    ) -> Result<Exchange, ProviderError> {
        let provider = req.snapshot.provider();
        let (target, format, variable) = match provider {
            Provider::Anthropic => (&live.anthropic, ANTHROPIC, "ANTHROPIC_API_KEY"),
            Provider::Openai => (&live.openai, OPENAI, "OPENAI_API_KEY"),
        };
        let Some(secret) = &target.key else {
            return Err(ProviderError::MissingKey { provider, variable, model: req.snapshot.id().to_owned() });
        };
        let key = live.record.as_ref().map(|_| cassette::key(provider, nonce, &body));
        let call = Call { provider, url: &target.url, headers: headers(provider, secret), body, secret };
        let delivered = live.sender.send(&self.limiter, &call, format).await?;
        if let (Some((_, recorder)), Some(key)) = (&live.record, key) {
            recorder.record(Entry {
                key,
                provider,
                model: req.snapshot.id().to_owned(),
                nonce,
                latency_ms: delivered.latency_ms,
                body: delivered.body,
            });
        }
        Ok(Exchange { response: delivered.response, latency_ms: delivered.latency_ms, attempts: delivered.attempts })
    }

    /// Writes the cassette when recording (no-op otherwise).
    pub fn finish(&self) -> Result<(), CassetteError> {
        match &self.transport {
            Transport::Live(Live { record: Some((path, recorder)), .. }) => recorder.write(path),
            _ => Ok(()),
        }
    }

    /// HTTP attempts made so far (0 when replaying).
    pub fn attempts(&self) -> u64 {
        match &self.transport {
            Transport::Live(live) => live.sender.attempts(),
            Transport::Replay(_) => 0,
        }
    }
}

const ANTHROPIC: Format = Format { parse: anthropic::parse_response, error_message: anthropic::error_message };
const OPENAI: Format = Format { parse: openai::parse_response, error_message: openai::error_message };

/// `{base}/{path}`, checked as a URL once.
fn target(e: &Endpoint, path: &str, variable: &'static str) -> Result<Target, ClientError> {
    let base = e.base_url.trim_end_matches('/');
    let url = format!("{base}/{path}");
    let bad = |reason: String| ClientError::BaseUrl { variable, url: e.base_url.clone(), reason };
    let parsed = reqwest::Url::parse(&url).map_err(|err| bad(err.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http and https are supported".into()));
    }
    Ok(Target { base_len: base.len(), url, key: e.api_key.clone() })
}

/// The cassette is written at the end of the run; a directory that is not there should stop
/// the run before it spends anything, not after.
fn check_record_path(path: &Path) -> Result<(), ClientError> {
    let fail = |reason: &str| Err(ClientError::Record { path: path.to_owned(), reason: reason.into() });
    if path.file_name().is_none() {
        return fail("the path names no file");
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return fail("its directory does not exist");
    }
    if path.is_dir() {
        return fail("it is a directory");
    }
    Ok(())
}

/// The provider's headers for a JSON request.
fn headers(provider: Provider, secret: &Secret) -> HeaderMap {
    let mut h = auth_headers(provider, secret);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

/// The provider's version and key headers; the key's value is marked sensitive so no debug
/// output shows it.
pub(crate) fn auth_headers(provider: Provider, secret: &Secret) -> HeaderMap {
    let mut h = HeaderMap::new();
    let (name, value) = match provider {
        Provider::Anthropic => {
            h.insert(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(anthropic::VERSION));
            (HeaderName::from_static("x-api-key"), secret.expose().to_owned())
        }
        Provider::Openai => (AUTHORIZATION, format!("Bearer {}", secret.expose())),
    };
    // A key with bytes a header cannot carry is sent without it; the provider answers 401,
    // which names the problem without the key.
    if let Ok(mut v) = HeaderValue::from_str(&value) {
        v.set_sensitive(true);
        h.insert(name, v);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_client_can_be_shared_between_tasks() {
        assert_send_sync::<ModelClient>();
    }

    #[test]
    fn a_base_url_that_is_not_a_url_stops_set_up_naming_the_variable() {
        let endpoints = Endpoints {
            anthropic: Endpoint { base_url: "api.anthropic.com".into(), api_key: None },
            openai: Endpoint { base_url: "https://api.openai.com/v1".into(), api_key: None },
        };
        let e = ModelClient::live(endpoints, RetryPolicy::default(), Limits::default(), None).unwrap_err();
        assert!(e.to_string().starts_with("EVALGATE_ANTHROPIC_BASE_URL is not a valid URL"), "{e}");
    }

    #[test]
    fn recording_into_a_missing_directory_stops_set_up() {
        let endpoints = Endpoints {
            anthropic: Endpoint { base_url: "https://api.anthropic.com".into(), api_key: None },
            openai: Endpoint { base_url: "https://api.openai.com/v1".into(), api_key: None },
        };
        let record = Some(PathBuf::from("/nonexistent-dir/cassette.jsonl"));
        let e = ModelClient::live(endpoints.clone(), RetryPolicy::default(), Limits::default(), record).unwrap_err();
        assert_eq!(e.to_string(), "cannot record to /nonexistent-dir/cassette.jsonl: its directory does not exist");
        let here = Some(PathBuf::from("cassette.jsonl"));
        assert!(ModelClient::live(endpoints, RetryPolicy::default(), Limits::default(), here).is_ok());
    }

    #[test]
    fn the_origin_names_the_live_endpoint_or_the_cassettes_hash() {
        let endpoints = Endpoints {
            anthropic: Endpoint { base_url: "http://127.0.0.1:9/".into(), api_key: None },
            openai: Endpoint { base_url: "https://api.openai.com/v1".into(), api_key: None },
        };
        let live = ModelClient::live(endpoints.clone(), RetryPolicy::default(), Limits::default(), None).expect("live");
        assert_eq!(live.origin(Provider::Anthropic), "live:http://127.0.0.1:9");
        assert_eq!(live.origin(Provider::Openai), "live:https://api.openai.com/v1");
        let dir = tempfile::tempdir().expect("temp dir");
        let record = Some(dir.path().join("c.jsonl"));
        let recording = ModelClient::live(endpoints, RetryPolicy::default(), Limits::default(), record).expect("live");
        assert_eq!(recording.origin(Provider::Anthropic), live.origin(Provider::Anthropic));
        let replay = ModelClient::replay(Cassette::default(), Limits::default());
        let empty = "cassette:sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(replay.origin(Provider::Anthropic), empty);
        assert_eq!(replay.origin(Provider::Openai), empty);
    }

    #[test]
    fn urls_join_base_and_path_with_one_slash() {
        let e = Endpoint { base_url: "http://127.0.0.1:9/v1/".into(), api_key: None };
        assert_eq!(target(&e, "chat/completions", "X").expect("valid").url, "http://127.0.0.1:9/v1/chat/completions");
    }
}
