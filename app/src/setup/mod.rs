//! `evalgate setup`: GitHub's manifest flow (SPEC "Setting up the App").
//!
//! One page on `EVALGATE_BIND` holds a form that posts the App manifest ([`manifest`], from
//! `app.yml`) to `$EVALGATE_GITHUB_URL/settings/apps/new?state=…` (or the organization's). The
//! state is 32 bytes from the operating system's CSPRNG, valid once. GitHub sends the browser
//! back to `$EVALGATE_PUBLIC_URL/setup/callback?code=…&state=…`; the first callback decides the
//! run: a state that does not match (compared in constant time) ends it with an error, a matching
//! one is used up and its code exchanged ([`exchange`]), and the credentials are written
//! ([`files`]). Any callback after that is refused as a reused state. The server then stops.

pub mod exchange;
pub mod files;
pub mod manifest;
pub mod page;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use exchange::Conversion;
use files::Written;
use manifest::{CALLBACK_PATH, Manifest};
use page::Page;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq as _;
use tokio::sync::{Notify, oneshot};

/// Why setup stopped without writing the credentials. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("`{}` already exists: evalgate setup never overwrites it; move it away, or run setup in another folder", .0.display())]
    Exists(PathBuf),
    #[error("--org `{0}` is not a GitHub organization name (letters, digits and single hyphens, at most 39)")]
    BadOrg(String),
    #[error("EVALGATE_BIND {0}: cannot listen: {1}")]
    Bind(String, std::io::Error),
    #[error("the operating system gave no random bytes for the state: {0}")]
    Random(String),
    #[error("the callback's state does not match this setup's: the page was not this run's, or the request was forged")]
    StateMismatch,
    #[error("the callback's state was already used: each setup exchanges one code")]
    StateReused,
    #[error("the callback has no code: GitHub sends one when the App was created")]
    MissingCode,
    #[error("the callback's code is not one GitHub issues")]
    BadCode,
    #[error("GitHub refused to exchange the code (HTTP {status}){}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    ExchangeRefused { status: u16, message: String },
    #[error("exchanging the code with GitHub took longer than {0} s")]
    ExchangeTimeout(u64),
    #[error("exchanging the code with GitHub failed: {0}")]
    Exchange(String),
    #[error("GitHub's answer to the exchange is not usable: {0}")]
    Malformed(String),
    #[error("cannot write `{path}`: {error}", path = .0.display(), error = .1)]
    Write(PathBuf, std::io::Error),
    #[error("setup was interrupted before GitHub sent the browser back")]
    Interrupted,
    #[error("{0}")]
    Internal(String),
}

impl SetupError {
    /// What to do next, for the page.
    pub fn hint(&self) -> &'static str {
        match self {
            SetupError::StateReused => {
                "This page was opened twice; the first one decides. Look at the terminal that runs evalgate setup."
            }
            SetupError::ExchangeRefused { .. }
            | SetupError::ExchangeTimeout(_)
            | SetupError::Exchange(_)
            | SetupError::Malformed(_) => {
                "Nothing was written. The App may exist on GitHub without its key: delete it in GitHub's settings (Developer settings → GitHub Apps), then run evalgate setup again."
            }
            _ => "Nothing was written. Run evalgate setup again and press the button on its page.",
        }
    }
}

/// Where and what `evalgate setup` runs against.
pub struct Options {
    /// `EVALGATE_BIND`.
    pub bind: String,
    /// `EVALGATE_PUBLIC_URL`, no trailing slash.
    pub public_url: String,
    /// `EVALGATE_GITHUB_URL`, the web host of the flow, no trailing slash.
    pub github_url: String,
    /// `EVALGATE_GITHUB_API_URL`, where the code is exchanged, no trailing slash.
    pub github_api_url: String,
    /// `--org`: register the App under this organization instead of the user.
    pub org: Option<String>,
    /// Where the files are written (the current folder).
    pub dir: PathBuf,
}

/// A registered App and where its credentials went.
#[derive(Debug)]
pub struct Registered {
    pub conversion: Conversion,
    pub written: Written,
}

/// A GitHub organization login: letters, digits, single inner hyphens, at most 39 characters.
pub fn valid_org(org: &str) -> bool {
    !org.is_empty()
        && org.len() <= 39
        && org.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !org.starts_with('-')
        && !org.ends_with('-')
        && !org.contains("--")
}

/// 32 bytes from the operating system's CSPRNG, as hex.
fn random_state() -> Result<String, SetupError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| SetupError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Where the form posts: GitHub's "new App" page of the user, or of `org`.
pub fn new_app_url(github_url: &str, org: Option<&str>, state: &str) -> String {
    let base = github_url.trim_end_matches('/');
    match org {
        Some(org) => format!("{base}/organizations/{org}/settings/apps/new?state={state}"),
        None => format!("{base}/settings/apps/new?state={state}"),
    }
}

enum Phase {
    /// No callback yet: the state is still good.
    Waiting,
    /// A callback used the state (or failed): nothing else is taken.
    Taken,
}

struct Flow {
    state: String,
    phase: Mutex<Phase>,
    page: Page,
    start_page: String,
    api_url: String,
    public_url: String,
    dir: PathBuf,
    outcome: Mutex<Option<oneshot::Sender<Result<Registered, SetupError>>>>,
}

impl Flow {
    fn finish(&self, result: Result<Registered, SetupError>) {
        if let Some(tx) = self.outcome.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(result);
        }
    }
}

/// Runs the flow: serves the page until the first callback decides, then stops the server.
/// `listening` is told the address once bound.
pub async fn run(opts: Options, listening: impl FnOnce(std::net::SocketAddr)) -> Result<Registered, SetupError> {
    if let Some(org) = &opts.org
        && !valid_org(org)
    {
        return Err(SetupError::BadOrg(org.clone()));
    }
    files::refuse_existing(&opts.dir)?;
    let manifest = Manifest::app_yml().map_err(SetupError::Internal)?.for_public_url(&opts.public_url);
    let state = random_state()?;
    let action = new_app_url(&opts.github_url, opts.org.as_deref(), &state);
    let page = Page::new()?;
    let start_page = page.start(&page::Start {
        action: &action,
        github_url: &opts.github_url,
        org: opts.org.as_deref(),
        manifest: &manifest,
        dir: &opts.dir.display().to_string(),
    });
    let listener =
        tokio::net::TcpListener::bind(&opts.bind).await.map_err(|e| SetupError::Bind(opts.bind.clone(), e))?;
    let addr = listener.local_addr().map_err(|e| SetupError::Bind(opts.bind.clone(), e))?;
    let (tx, rx) = oneshot::channel();
    let flow = Arc::new(Flow {
        state,
        phase: Mutex::new(Phase::Waiting),
        page,
        start_page,
        api_url: opts.github_api_url.clone(),
        public_url: opts.public_url.clone(),
        dir: opts.dir.clone(),
        outcome: Mutex::new(Some(tx)),
    });
    let router = axum::Router::new()
        .route("/", get(start))
        .route(CALLBACK_PATH, get(callback))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .with_state(flow);
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(async move { stopped.notified().await }).await
    });
    listening(addr);
    let outcome = tokio::select! {
        r = rx => r.unwrap_or(Err(SetupError::Internal("the setup server stopped without an outcome".into()))),
        _ = tokio::signal::ctrl_c() => Err(SetupError::Interrupted),
    };
    // The last page still goes out; connections left open are dropped after a moment.
    stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    outcome
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The callback's address holds the code: no link followed from the page may carry it on.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    r
}

async fn start(State(flow): State<Arc<Flow>>) -> Response {
    html(StatusCode::OK, flow.start_page.clone())
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
}

async fn callback(State(flow): State<Arc<Flow>>, query: Result<Query<Callback>, QueryRejection>) -> Response {
    let (code, state) = match query {
        Ok(Query(c)) => (c.code, c.state),
        Err(_) => (None, None),
    };
    let matches = state.as_deref().is_some_and(|s| bool::from(s.as_bytes().ct_eq(flow.state.as_bytes())));
    let first = {
        let mut phase = flow.phase.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *phase, Phase::Taken)
    };
    if let Phase::Taken = first {
        // The first callback decides; this one changes nothing.
        let e = if matches { SetupError::StateReused } else { SetupError::StateMismatch };
        tracing::warn!(error = %e, "callback refused");
        return html(StatusCode::BAD_REQUEST, flow.page.error(&e));
    }
    if !matches {
        let e = SetupError::StateMismatch;
        let page = flow.page.error(&e);
        flow.finish(Err(e));
        return html(StatusCode::BAD_REQUEST, page);
    }
    // The exchange and the writes run on their own task: a browser that goes away cannot
    // interrupt them halfway.
    let worker = flow.clone();
    let done = tokio::spawn(async move {
        let result = finish_registration(&worker, code.as_deref()).await;
        let page = match &result {
            Ok(r) => (
                StatusCode::OK,
                worker.page.done(
                    &r.conversion.slug,
                    r.conversion.id,
                    &r.conversion.install_url(),
                    &r.written.settings.display().to_string(),
                    &r.written.key.display().to_string(),
                ),
            ),
            Err(
                e @ (SetupError::ExchangeRefused { .. } | SetupError::ExchangeTimeout(_) | SetupError::Exchange(_)),
            ) => (StatusCode::BAD_GATEWAY, worker.page.error(e)),
            Err(e @ (SetupError::Write(..) | SetupError::Internal(_))) => {
                (StatusCode::INTERNAL_SERVER_ERROR, worker.page.error(e))
            }
            Err(e) => (StatusCode::BAD_REQUEST, worker.page.error(e)),
        };
        worker.finish(result);
        page
    });
    match done.await {
        Ok((status, page)) => html(status, page),
        Err(_) => {
            let e = SetupError::Internal("the exchange stopped unexpectedly".into());
            let page = flow.page.error(&e);
            flow.finish(Err(e));
            html(StatusCode::INTERNAL_SERVER_ERROR, page)
        }
    }
}

async fn finish_registration(flow: &Flow, code: Option<&str>) -> Result<Registered, SetupError> {
    let code = code.filter(|c| !c.is_empty()).ok_or(SetupError::MissingCode)?;
    let conversion = exchange::exchange(&flow.api_url, code).await?;
    let written = files::write(&flow.dir, &conversion, &flow.public_url, &flow.api_url)?;
    Ok(Registered { conversion, written })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_names_are_checked_before_they_go_into_a_path() {
        for good in ["acme", "a", "acme-corp", "A1"] {
            assert!(valid_org(good), "{good}");
        }
        for bad in ["", "-acme", "acme-", "ac--me", "acme/x", "a.b", &"a".repeat(40)] {
            assert!(!valid_org(bad), "{bad}");
        }
    }

    #[test]
    fn the_form_posts_to_the_user_or_the_organization() {
        assert_eq!(new_app_url("https://github.com/", None, "s1"), "https://github.com/settings/apps/new?state=s1");
        assert_eq!(
            new_app_url("https://ghe.test", Some("acme"), "s1"),
            "https://ghe.test/organizations/acme/settings/apps/new?state=s1"
        );
    }

    #[test]
    fn states_are_long_and_never_repeat() {
        let (a, b) = (random_state().expect("state"), random_state().expect("state"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
