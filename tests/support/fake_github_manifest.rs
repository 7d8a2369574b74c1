//! The manifest flow of the fake GitHub: the web host's "new App" pages
//! (`POST /settings/apps/new`, `POST /organizations/{org}/settings/apps/new`) and the API's
//! `POST /app-manifests/{code}/conversions`.
//!
//! GitHub shows a page where the person names the App and confirms; the fake confirms at once.
//! It checks the form as GitHub does (a `manifest` field holding JSON with `url`, a webhook URL,
//! permissions GitHub knows, every event backed by its permission, no `installation` events) and
//! answers with a 302 to the manifest's `redirect_url` with `code` and the `state` of the query.
//! A code converts once (then 404, as GitHub answers). The reply carries the fake's App id and
//! the test key pair's private key, so `evalgate serve` can sign JWTs the fake accepts.

use super::{Ctx, Reply, ReplyBody, State, now_secs, parse_query, percent_encode, random_alnum, rfc3339};
use super::{FakeGitHub, user_json};
use serde_json::{Map, Value, json};

/// The private half of the key the tests start the fake with (`tests/support/keys`).
pub const TEST_PRIVATE_KEY: &str = include_str!("keys/test-app-private.pem");

/// Permissions GitHub knows for Apps (the ones a manifest may ask for here).
const PERMISSIONS: &[&str] = &[
    "actions",
    "administration",
    "checks",
    "contents",
    "deployments",
    "environments",
    "issues",
    "merge_queues",
    "metadata",
    "packages",
    "pages",
    "pull_requests",
    "repository_hooks",
    "repository_projects",
    "secret_scanning_alerts",
    "secrets",
    "security_events",
    "statuses",
    "vulnerability_alerts",
    "workflows",
    "members",
    "organization_administration",
];

/// The permission each event needs (GitHub: "Default events are not supported by permissions").
const EVENT_PERMISSION: &[(&str, &[&str])] = &[
    ("pull_request", &["pull_requests"]),
    ("pull_request_review", &["pull_requests"]),
    ("issue_comment", &["issues"]),
    ("issues", &["issues"]),
    ("check_run", &["checks"]),
    ("check_suite", &["checks"]),
    ("merge_group", &["merge_queues"]),
    ("push", &["contents"]),
    ("status", &["statuses"]),
];

/// A manifest the fake accepted, with where it came from.
#[derive(Clone, Debug)]
pub struct ManifestPost {
    pub manifest: Value,
    pub org: Option<String>,
    pub state: Option<String>,
    pub code: String,
}

/// One conversion the fake answered with 201.
#[derive(Clone, Debug)]
pub struct ManifestConversion {
    pub code: String,
    pub app_id: u64,
    pub slug: String,
    pub webhook_secret: String,
}

#[derive(Debug, Default)]
pub struct Flows {
    posts: Vec<ManifestPost>,
    used: Vec<String>,
    conversions: Vec<ManifestConversion>,
    /// Answers the next conversion instead of the real reply (status, body).
    canned: Option<(u16, Value)>,
}

impl FakeGitHub {
    /// Every manifest posted and accepted, oldest first.
    pub fn manifest_posts(&self) -> Vec<ManifestPost> {
        self.shared.lock().manifest.posts.clone()
    }

    /// Every code converted (201), oldest first.
    pub fn manifest_conversions(&self) -> Vec<ManifestConversion> {
        self.shared.lock().manifest.conversions.clone()
    }

    /// The next conversion answers `status` with `body` (a malformed 201, say); the code is used.
    pub fn answer_next_conversion(&self, status: u16, body: Value) {
        self.with_state(|s| s.manifest.canned = Some((status, body)));
    }
}

/// The routes of the flow, or `None` for any other request.
pub fn route(s: &mut State, ctx: &Ctx, segs: &[&str]) -> Option<Reply> {
    match (ctx.method.as_str(), segs) {
        ("POST", ["settings", "apps", "new"]) => Some(new_app(s, ctx, None)),
        ("POST", ["organizations", org, "settings", "apps", "new"]) => Some(new_app(s, ctx, Some(org))),
        ("POST", ["app-manifests", code, "conversions"]) => Some(convert(s, code)),
        _ => None,
    }
}

/// GitHub's page for a manifest it cannot use.
fn invalid_page(errors: &[String]) -> Reply {
    let items: String = errors.iter().map(|e| format!("<li>Error: {}</li>", html_escape(e))).collect();
    let html = format!(
        "<!DOCTYPE html><html><body><h1>Invalid GitHub App configuration</h1>\n<p>The configuration does \
         not appear to be a valid GitHub App manifest.</p><ul>{items}</ul></body></html>\n"
    );
    Reply { body: ReplyBody::Text(html, "text/html; charset=utf-8"), ..Reply::json(422, Value::Null) }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn new_app(s: &mut State, ctx: &Ctx, org: Option<&str>) -> Reply {
    let form = parse_query(std::str::from_utf8(&ctx.body).unwrap_or(""));
    let Some((_, text)) = form.iter().find(|(k, _)| k == "manifest") else {
        return invalid_page(&["the form has no manifest field".into()]);
    };
    let manifest: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => return invalid_page(&["the manifest is not a JSON object".into()]),
    };
    let errors = validate(&manifest);
    if !errors.is_empty() {
        return invalid_page(&errors);
    }
    let code = random_alnum(20).to_ascii_lowercase();
    let state = ctx.query("state").map(str::to_owned);
    s.manifest.posts.push(ManifestPost {
        manifest: manifest.clone(),
        org: org.map(str::to_owned),
        state: state.clone(),
        code: code.clone(),
    });
    let redirect = manifest["redirect_url"].as_str().unwrap_or_default();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let mut location = format!("{redirect}{sep}code={code}");
    if let Some(state) = state {
        location.push_str(&format!("&state={}", percent_encode(&state)));
    }
    Reply { body: ReplyBody::Empty, ..Reply::json(302, Value::Null) }.header("location", location)
}

/// What GitHub checks in a manifest; each problem in GitHub's words where known.
fn validate(m: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let url_ok = |v: &Value| v.as_str().is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
    if !url_ok(&m["url"]) {
        errors.push("Url can't be blank".into());
    }
    if !url_ok(&m["redirect_url"]) {
        errors.push("Redirect url is not a valid URL".into());
    }
    match m.get("hook_attributes") {
        None => {}
        Some(h) if url_ok(&h["url"]) => {}
        Some(_) => errors.push("Hook url cannot be blank".into()),
    }
    if m.get("name").is_some_and(|n| !n.as_str().is_some_and(|n| !n.trim().is_empty() && n.len() <= 34)) {
        errors.push("Name is too long (maximum is 34 characters) or blank".into());
    }
    if let Some(urls) = m.get("callback_urls") {
        match urls.as_array() {
            Some(list) if list.len() <= 10 && list.iter().all(url_ok) => {}
            _ => errors.push("Callback urls must be at most 10 valid URLs".into()),
        }
    }
    if m.get("public").is_some_and(|p| !p.is_boolean()) {
        errors.push("Public must be true or false".into());
    }
    let empty = Map::new();
    let permissions = match m.get("default_permissions") {
        None => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => {
            errors.push("Default permissions must be an object".into());
            &empty
        }
    };
    for (name, level) in permissions {
        if !PERMISSIONS.contains(&name.as_str()) {
            errors.push(format!("Default permission records resource is not included in the list: {name}"));
        }
        if !matches!(level.as_str(), Some("read" | "write" | "admin")) {
            errors.push(format!("Default permission records action is not included in the list: {name}"));
        }
    }
    let events: Vec<&str> = match m.get("default_events") {
        None => Vec::new(),
        Some(Value::Array(e)) if e.iter().all(Value::is_string) => e.iter().filter_map(Value::as_str).collect(),
        Some(_) => {
            errors.push("Default events must be a list of event names".into());
            Vec::new()
        }
    };
    let unsupported: Vec<&str> = events.iter().copied().filter(|e| e.starts_with("installation")).collect();
    if !unsupported.is_empty() {
        errors.push(format!("Default events unsupported: {}", unsupported.join(" and ")));
    }
    let unbacked: Vec<&str> = events
        .iter()
        .copied()
        .filter(|e| match EVENT_PERMISSION.iter().find(|(name, _)| name == e) {
            Some((_, needs)) => !needs.iter().any(|p| permissions.contains_key(*p)),
            None => true,
        })
        .collect();
    if !unbacked.is_empty() {
        errors.push(format!("Default events are not supported by permissions: {}", unbacked.join(" and ")));
    }
    errors
}

fn convert(s: &mut State, code: &str) -> Reply {
    if s.manifest.used.iter().any(|c| c == code) {
        return Reply::not_found();
    }
    let Some(post) = s.manifest.posts.iter().find(|p| p.code == code).cloned() else {
        return Reply::not_found();
    };
    s.manifest.used.push(code.to_owned());
    if let Some((status, body)) = s.manifest.canned.take() {
        return Reply::json(status, body);
    }
    let m = &post.manifest;
    let name = m["name"].as_str().unwrap_or("evalgate").to_owned();
    let slug: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_owned();
    let webhook_secret = random_alnum(40).to_ascii_lowercase();
    let owner_login = post.org.clone().unwrap_or_else(|| "octocat".into());
    let mut owner = user_json(&owner_login);
    if post.org.is_some() {
        owner["type"] = "Organization".into();
    }
    let mut permissions = m["default_permissions"].as_object().cloned().unwrap_or_default();
    permissions.entry("metadata").or_insert_with(|| "read".into());
    let now = rfc3339(now_secs());
    let id = s.app_id;
    s.manifest.conversions.push(ManifestConversion {
        code: code.to_owned(),
        app_id: id,
        slug: slug.clone(),
        webhook_secret: webhook_secret.clone(),
    });
    Reply::json(
        201,
        json!({
            "id": id,
            "slug": slug,
            "node_id": format!("A_kwDO{id}"),
            "client_id": format!("Iv23li{}", random_alnum(14)),
            "owner": owner,
            "name": name,
            "description": m.get("description").cloned().unwrap_or(Value::Null),
            "external_url": m["url"],
            "html_url": format!("{}/apps/{slug}", s.base_url),
            "created_at": now,
            "updated_at": now,
            "permissions": permissions,
            "events": m["default_events"].as_array().cloned().unwrap_or_default(),
            "installations_count": 0,
            "client_secret": random_alnum(40).to_ascii_lowercase(),
            "webhook_secret": webhook_secret,
            "pem": TEST_PRIVATE_KEY,
        }),
    )
}
