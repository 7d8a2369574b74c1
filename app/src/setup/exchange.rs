//! The code GitHub hands back, exchanged for the App's credentials:
//! `POST /app-manifests/{code}/conversions`, unauthenticated (the code is the credential, valid
//! once and for an hour).

use super::SetupError;
use evaluators::provider::Secret;
use serde::Deserialize;
use std::time::Duration;

/// How long the exchange may take before it counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Longest code accepted (GitHub's are 20 characters or so).
const MAX_CODE: usize = 256;

/// What GitHub returns for a converted manifest. The secrets are [`Secret`]s, so no log line or
/// error can print them; the OAuth client id and secret are dropped (evalgate uses no OAuth).
pub struct Conversion {
    pub id: u64,
    pub slug: String,
    pub html_url: String,
    pub owner: Option<String>,
    pub pem: Secret,
    pub webhook_secret: Secret,
}

impl std::fmt::Debug for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversion")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("html_url", &self.html_url)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Conversion {
    /// Where the App is installed on repositories.
    pub fn install_url(&self) -> String {
        format!("{}/installations/new", self.html_url.trim_end_matches('/'))
    }
}

/// The reply's wire shape (GitHub's "GitHub app" schema, plus the credentials). Not `Debug`: it
/// holds the secrets as plain strings.
#[derive(Deserialize)]
struct Wire {
    id: u64,
    slug: String,
    html_url: String,
    #[serde(default)]
    owner: Option<Owner>,
    pem: String,
    webhook_secret: Option<String>,
}

#[derive(Deserialize)]
struct Owner {
    login: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// A code as GitHub issues them: letters, digits, `-` and `_`. Anything else never goes into a
/// URL path.
pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Exchanges `code` on `api_url` (`EVALGATE_GITHUB_API_URL`).
pub async fn exchange(api_url: &str, code: &str) -> Result<Conversion, SetupError> {
    if !valid_code(code) {
        return Err(SetupError::BadCode);
    }
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("evalgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SetupError::Exchange(format!("cannot build an HTTP client: {e}")))?;
    let url = format!("{}/app-manifests/{code}/conversions", api_url.trim_end_matches('/'));
    let reply = client
        .post(url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .send()
        .await
        .map_err(|e| transport(&e))?;
    let status = reply.status();
    let body = reply.bytes().await.map_err(|e| transport(&e))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.message)
            .map(|m| m.chars().filter(|c| !c.is_control()).take(300).collect::<String>())
            .unwrap_or_default();
        return Err(SetupError::ExchangeRefused { status: status.as_u16(), message });
    }
    parse(&body)
}

fn transport(e: &reqwest::Error) -> SetupError {
    if e.is_timeout() {
        SetupError::ExchangeTimeout(TIMEOUT.as_secs())
    } else {
        // Without the URL: it holds the code.
        SetupError::Exchange(reqwest_message(e))
    }
}

fn reqwest_message(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The reply, checked: what `evalgate serve` needs is there and usable. The error names the
/// field, never a value (a value could be a secret).
pub fn parse(body: &[u8]) -> Result<Conversion, SetupError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let wire: Wire = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let what = if !inner.is_data() {
            "it is not JSON".to_owned()
        } else if let Some(field) = inner.to_string().strip_prefix("missing field ") {
            format!("{} is missing", field.split(" at ").next().unwrap_or(field))
        } else {
            format!("`{path}` is not of the expected type")
        };
        SetupError::Malformed(what)
    })?;
    if wire.id == 0 {
        return Err(SetupError::Malformed("`id` is 0".into()));
    }
    if wire.slug.trim().is_empty() {
        return Err(SetupError::Malformed("`slug` is empty".into()));
    }
    if !(wire.html_url.starts_with("https://") || wire.html_url.starts_with("http://"))
        || wire.html_url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>')
    {
        return Err(SetupError::Malformed("`html_url` is not a web address".into()));
    }
    let Some(webhook_secret) = wire.webhook_secret.filter(|s| !s.trim().is_empty()) else {
        return Err(SetupError::Malformed("`webhook_secret` is missing".into()));
    };
    if webhook_secret.contains(',') || webhook_secret.chars().any(char::is_control) {
        // `EVALGATE_WEBHOOK_SECRET` is a comma-separated list: such a secret could not be read back.
        return Err(SetupError::Malformed("`webhook_secret` holds a comma or a control character".into()));
    }
    if octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(wire.pem.as_bytes()).is_err() {
        return Err(SetupError::Malformed("`pem` is not an RSA private key in PEM".into()));
    }
    Ok(Conversion {
        id: wire.id,
        slug: wire.slug,
        html_url: wire.html_url,
        owner: wire.owner.and_then(|o| o.login),
        pem: Secret::new(wire.pem),
        webhook_secret: Secret::new(webhook_secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../../tests/support/keys/test-app-private.pem");

    fn reply(patch: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v = serde_json::json!({
            "id": 42, "slug": "evalgate-acme", "html_url": "https://github.com/apps/evalgate-acme",
            "owner": { "login": "acme" }, "client_id": "Iv1.abc", "client_secret": "cs-secret",
            "webhook_secret": "whsec-secret", "pem": KEY,
        });
        patch(&mut v);
        serde_json::to_vec(&v).expect("json")
    }

    #[test]
    fn a_reply_gives_the_install_link_and_hides_the_secrets() {
        let c = parse(&reply(|_| {})).expect("valid");
        assert_eq!((c.id, c.slug.as_str(), c.owner.as_deref()), (42, "evalgate-acme", Some("acme")));
        assert_eq!(c.install_url(), "https://github.com/apps/evalgate-acme/installations/new");
        let debug = format!("{c:?}");
        assert!(!debug.contains("whsec-secret") && !debug.contains("PRIVATE KEY"), "{debug}");
    }

    #[test]
    fn a_malformed_reply_names_the_field_and_never_a_value() {
        for (patch, field) in [
            (
                Box::new(|v: &mut serde_json::Value| drop(v.as_object_mut().map(|o| o.remove("pem"))))
                    as Box<dyn FnOnce(&mut serde_json::Value)>,
                "pem",
            ),
            (Box::new(|v: &mut serde_json::Value| v["pem"] = "not a key whsec".into()), "pem"),
            (Box::new(|v: &mut serde_json::Value| v["webhook_secret"] = serde_json::Value::Null), "webhook_secret"),
            (Box::new(|v: &mut serde_json::Value| v["id"] = "whsec-secret".into()), "id"),
            (Box::new(|v: &mut serde_json::Value| v["html_url"] = "javascript:alert(1)".into()), "html_url"),
        ] {
            let e = parse(&reply(patch)).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
            assert!(!e.contains("whsec"), "{e}");
        }
        assert!(parse(b"<html>").unwrap_err().to_string().contains("not JSON"));
    }

    #[test]
    fn only_plain_codes_go_into_the_path() {
        assert!(valid_code("a1B2-c_3"));
        for bad in ["", "../app", "a/b", "a?b", "a%2fb", &"x".repeat(300)] {
            assert!(!valid_code(bad), "{bad}");
        }
    }
}
