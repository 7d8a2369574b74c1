//! `evalgate setup` (SPEC "Setting up the App") against the fake GitHub, which plays both
//! github.com (the "new App" form, answered with the redirect back) and the API (the code's
//! conversion). The happy path runs twice: posted as a browser posts the form (in the normal
//! suite), and pressed in headless Chromium (ignored by default: `.ci/run` installs Chromium and
//! runs it). Then `evalgate serve`, started from the files setup wrote and a provider key, takes
//! a webhook signed with the new secret, refuses another, and signs App JWTs the fake accepts.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use fake_github::{Failure, FakeGitHub, PrSpec};
use futures_util::{SinkExt as _, StreamExt as _};
use github_app::{APP_ID, PUBLIC_KEY, sign};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio_tungstenite::tungstenite::Message;

const KEY_FILE: &str = "evalgate-private-key.pem";
const WAIT: Duration = Duration::from_secs(120);

/// What no output of setup may hold: the key's armour and its body's first line.
fn key_markers() -> Vec<String> {
    let pem = include_str!("support/keys/test-app-private.pem");
    let body = pem.lines().nth(1).expect("a key body").to_owned();
    vec!["PRIVATE KEY".into(), body]
}

/// `evalgate` with no setting from this process's environment.
fn evalgate(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_evalgate"));
    c.current_dir(dir).kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("EVALGATE_") || k.ends_with("_API_KEY") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<String>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut s = into.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    })
}

/// A running `evalgate setup`.
struct Setup {
    child: tokio::process::Child,
    /// Where its page is.
    url: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

/// How one run of setup ended.
struct Ended {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ended {
    fn assert_no_key_printed(&self) {
        for marker in key_markers() {
            assert!(!self.stdout.contains(&marker) && !self.stderr.contains(&marker), "the key was printed");
        }
    }
}

impl Setup {
    async fn start(github: &FakeGitHub, dir: &Path, args: &[&str]) -> Setup {
        let port = free_port();
        let mut cmd = evalgate(dir);
        cmd.arg("setup")
            .args(args)
            .env("EVALGATE_BIND", format!("127.0.0.1:{port}"))
            .env("EVALGATE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("EVALGATE_GITHUB_URL", github.url())
            .env("EVALGATE_GITHUB_API_URL", github.url())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("start evalgate setup");
        let (stdout, stderr) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let line = stdout.lock().unwrap().lines().next().map(str::to_owned);
                if let Some(url) = line.and_then(|l| l.strip_prefix("evalgate setup listening on ").map(str::to_owned))
                {
                    return url;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!("evalgate setup did not start: {}{}", stdout.lock().unwrap(), stderr.lock().unwrap())
        });
        Setup { child, url, stdout, stderr, readers }
    }

    async fn ended(mut self) -> Ended {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("evalgate setup did not stop: {}", self.stdout.lock().unwrap()))
            .expect("wait");
        for r in self.readers {
            let _ = r.await;
        }
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        Ended { code: status.code().unwrap_or(-1), stdout, stderr }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// An attribute's value in `html`, unescaped as a browser would.
fn attribute(html: &str, before: &str) -> String {
    let start = html.find(before).unwrap_or_else(|| panic!("no `{before}` in {html}")) + before.len();
    let raw = &html[start..start + html[start..].find('"').expect("closing quote")];
    raw.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x60;", "`")
        .replace("&#x3D;", "=")
        .replace("&amp;", "&")
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a browser does with the page: post the form to GitHub (the fake), follow the redirect
/// back. Returns the callback's address (`None` when GitHub did not redirect: then its status and
/// page) and the status and page of the callback.
async fn post_the_form(setup: &Setup) -> (String, u16, String) {
    let http = client();
    let page = http.get(format!("{}/", setup.url)).send().await.expect("page").text().await.expect("text");
    let action = attribute(&page, "action=\"");
    let manifest = attribute(&page, "name=\"manifest\" value=\"");
    let posted = http
        .post(&action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("manifest={}", form_encode(&manifest)))
        .send()
        .await
        .expect("post the form");
    let status = posted.status().as_u16();
    let location = posted.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
    let Some(location) = location else {
        panic!("GitHub answered the form with {status}: {}", posted.text().await.unwrap_or_default());
    };
    assert_eq!(status, 302);
    let back = http.get(&location).send().await.expect("the callback");
    let status = back.status().as_u16();
    (location, status, back.text().await.unwrap_or_default())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").file_name().to_string_lossy().into()).collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// What a successful setup left: both files, private, readable by evalgate, the link printed.
fn assert_registered(github: &FakeGitHub, dir: &Path, ended: &Ended, public_url: &str) -> String {
    assert_eq!(ended.code, 0, "stdout:\n{}\nstderr:\n{}", ended.stdout, ended.stderr);
    ended.assert_no_key_printed();
    assert_eq!(files_in(dir), ["evalgate-private-key.pem", "evalgate.toml"]);
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    assert_eq!(mode(&dir.join("evalgate.toml")), 0o600);
    let conversions = github.manifest_conversions();
    assert_eq!(conversions.len(), 1, "one code exchanged");
    let c = &conversions[0];
    let toml: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("evalgate.toml")).expect("toml")).expect("TOML");
    assert_eq!(toml["EVALGATE_APP_ID"].as_integer(), Some(APP_ID as i64));
    assert_eq!(toml["EVALGATE_WEBHOOK_SECRET"].as_str(), Some(c.webhook_secret.as_str()));
    assert_eq!(toml["EVALGATE_PRIVATE_KEY_PATH"].as_str(), Some(KEY_FILE));
    assert_eq!(toml["EVALGATE_PUBLIC_URL"].as_str(), Some(public_url));
    assert_eq!(toml["EVALGATE_GITHUB_API_URL"].as_str(), Some(github.url().as_str()));
    assert_eq!(
        std::fs::read_to_string(dir.join(KEY_FILE)).expect("key"),
        include_str!("support/keys/test-app-private.pem")
    );
    let link = format!("{}/apps/{}/installations/new", github.url(), c.slug);
    assert!(ended.stdout.contains(&link), "the install link is printed: {}", ended.stdout);
    c.webhook_secret.clone()
}

/// The manifest GitHub received: app.yml's permissions and events, URLs under the public URL,
/// and the state of the form's address.
fn assert_manifest_posted(github: &FakeGitHub, public_url: &str, org: Option<&str>) {
    let posts = github.manifest_posts();
    assert_eq!(posts.len(), 1);
    let m = &posts[0].manifest;
    assert_eq!(m["url"], public_url);
    assert_eq!(m["hook_attributes"]["url"], format!("{public_url}/webhooks/github"));
    assert_eq!(m["redirect_url"], format!("{public_url}/setup/callback"));
    assert_eq!(m["public"], false);
    assert_eq!(m["default_permissions"]["merge_queues"], "read");
    assert_eq!(m["default_permissions"]["checks"], "write");
    assert!(m["default_events"].as_array().expect("events").contains(&json!("merge_group")), "{m}");
    assert_eq!(posts[0].org.as_deref(), org);
    assert_eq!(posts[0].state.as_deref().map(str::len), Some(64), "a 32-byte state");
}

/// `evalgate serve` in `dir` with nothing but the files and a model provider's key (and a free
/// port: the default 3000 may be taken).
async fn serve_from_the_files(github: &FakeGitHub, dir: &Path, secret: &str) {
    let log = dir.join("serve.log");
    let mut child = evalgate(dir)
        .arg("serve")
        .env("EVALGATE_BIND", "127.0.0.1:0")
        .env("ANTHROPIC_API_KEY", "sk-ant-test-secret-key")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start evalgate serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("evalgate listening on ") {
                return Some(url.trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        panic!("serve did not start from the files:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
    });
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let http = client();
    let deliver = |event: &'static str, body: Vec<u8>, signed_with: String, id: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(format!("{url}/webhooks/github"))
                .header("x-github-event", event)
                .header("x-github-delivery", id)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sign(&signed_with, &body))
                .body(body)
                .send()
                .await
                .expect("deliver")
                .status()
                .as_u16()
        }
    };
    let ping = serde_json::to_vec(&json!({ "zen": "Keep it logically awesome.", "hook_id": 1 })).expect("json");
    assert_eq!(deliver("ping", ping.clone(), "another-secret".into(), "d-0".into()).await, 401);
    assert_eq!(deliver("ping", ping, secret.into(), "d-1".into()).await, 200);

    // The key in the file signs App JWTs the fake accepts: the App gets an installation token.
    github.add_repo(github_app::REPO, github_app::INSTALLATION);
    let files: BTreeMap<String, Vec<u8>> = [("README.md".to_owned(), b"hello\n".to_vec())].into();
    github.add_commit(github_app::REPO, "1111111111111111111111111111111111111111", files.clone());
    github.add_commit(github_app::REPO, "2222222222222222222222222222222222222222", files);
    let number = github.open_pr(
        github_app::REPO,
        PrSpec {
            number: 1,
            base_sha: "1111111111111111111111111111111111111111".into(),
            head_sha: "2222222222222222222222222222222222222222".into(),
            base_ref: "main".into(),
            head_ref: "change".into(),
            body: None,
            author: "alex".into(),
            fork: false,
        },
    );
    let payload = github.pull_request_event(github_app::REPO, number, "opened");
    let body = serde_json::to_vec(&payload).expect("json");
    assert_eq!(deliver("pull_request", body, secret.into(), "d-2".into()).await, 202);
    let token = github
        .wait_for(WAIT, |g| {
            g.requests().into_iter().find(|r| r.path.ends_with("/access_tokens") && r.status == 201 && r.authorized)
        })
        .await;
    assert!(
        token.is_some(),
        "serve never got an installation token; requests: {:#?}\nlog:\n{}",
        github.requests(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
}

#[tokio::test]
async fn the_form_registers_the_app_and_serve_starts_from_the_files_alone() {
    let github = FakeGitHub::start(APP_ID, PUBLIC_KEY).await;
    let dir = tempfile::tempdir().expect("dir");
    let setup = Setup::start(&github, dir.path(), &[]).await;
    let public_url = setup.url.clone();
    let (callback, status, page) = post_the_form(&setup).await;
    assert!(callback.starts_with(&format!("{public_url}/setup/callback?code=")), "{callback}");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("/installations/new"), "{page}");
    let ended = setup.ended().await;
    assert_manifest_posted(&github, &public_url, None);
    let secret = assert_registered(&github, dir.path(), &ended, &public_url);
    serve_from_the_files(&github, dir.path(), &secret).await;
}

#[tokio::test]
async fn an_organization_gets_the_app() {
    let github = FakeGitHub::start(APP_ID, PUBLIC_KEY).await;
    let dir = tempfile::tempdir().expect("dir");
    let setup = Setup::start(&github, dir.path(), &["--org", "acme"]).await;
    let page = client().get(format!("{}/", setup.url)).send().await.expect("page").text().await.expect("text");
    assert!(
        attribute(&page, "action=\"")
            .starts_with(&format!("{}/organizations/acme/settings/apps/new?state=", github.url()))
    );
    let public_url = setup.url.clone();
    let (_, status, page) = post_the_form(&setup).await;
    assert_eq!(status, 200, "{page}");
    let ended = setup.ended().await;
    assert_manifest_posted(&github, &public_url, Some("acme"));
    assert_registered(&github, dir.path(), &ended, &public_url);
}

#[tokio::test]
async fn a_forged_or_missing_state_is_refused_and_writes_nothing() {
    let github = FakeGitHub::start(APP_ID, PUBLIC_KEY).await;
    for query in ["code=abc123&state=0000000000000000000000000000000000000000000000000000000000000000", "code=abc123"] {
        let dir = tempfile::tempdir().expect("dir");
        let setup = Setup::start(&github, dir.path(), &[]).await;
        let reply = client().get(format!("{}/setup/callback?{query}", setup.url)).send().await.expect("callback");
        assert_eq!(reply.status().as_u16(), 400);
        let page = reply.text().await.expect("page");
        assert!(page.contains("state does not match"), "{page}");
        let ended = setup.ended().await;
        assert_eq!(ended.code, 2, "{}", ended.stderr);
        assert!(ended.stderr.contains("state does not match"), "{}", ended.stderr);
        assert_eq!(files_in(dir.path()), Vec::<String>::new());
    }
    assert!(github.requests().iter().all(|r| !r.path.contains("app-manifests")), "no code was exchanged");
}

#[tokio::test]
async fn a_reused_state_is_refused_and_the_first_callback_decides() {
    let github = FakeGitHub::start(APP_ID, PUBLIC_KEY).await;
    let dir = tempfile::tempdir().expect("dir");
    let setup = Setup::start(&github, dir.path(), &[]).await;
    let public_url = setup.url.clone();
    // The exchange is slow, so the second callback comes while the first one holds the state.
    github.fail("POST /app-manifests/*/conversions", 1, Failure::Delay(Duration::from_secs(2)));
    let http = client();
    let page = http.get(format!("{}/", setup.url)).send().await.expect("page").text().await.expect("text");
    let posted = http
        .post(attribute(&page, "action=\""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("manifest={}", form_encode(&attribute(&page, "name=\"manifest\" value=\""))))
        .send()
        .await
        .expect("post");
    let callback = posted.headers()["location"].to_str().expect("location").to_owned();
    let first = tokio::spawn({
        let (http, callback) = (http.clone(), callback.clone());
        async move { http.get(callback).send().await.expect("first").status().as_u16() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = http.get(&callback).send().await.expect("second");
    let (second_status, second_page) = (second.status().as_u16(), second.text().await.unwrap_or_default());
    let first_status = first.await.expect("first");
    let mut statuses = [first_status, second_status];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{second_page}");
    if second_status == 400 {
        assert!(second_page.contains("already used"), "{second_page}");
    }
    let ended = setup.ended().await;
    assert_registered(&github, dir.path(), &ended, &public_url);
    let exchanges = github.requests().into_iter().filter(|r| r.path.contains("app-manifests")).count();
    assert_eq!(exchanges, 1, "a reused state exchanges nothing");
}

#[tokio::test]
async fn a_failed_exchange_is_an_error_and_writes_nothing() {
    let key = include_str!("support/keys/test-app-private.pem");
    type BreakIt = Box<dyn Fn(&FakeGitHub)>;
    let cases: Vec<(&str, BreakIt, &str)> = vec![
        ("422", Box::new(|g| g.fail("POST /app-manifests/*/conversions", 1, Failure::Status(422))), "HTTP 422"),
        ("500", Box::new(|g| g.fail("POST /app-manifests/*/conversions", 1, Failure::Status(500))), "HTTP 500"),
        ("502", Box::new(|g| g.fail("POST /app-manifests/*/conversions", 1, Failure::Status(502))), "HTTP 502"),
        (
            "no key",
            Box::new(|g| {
                g.answer_next_conversion(
                    201,
                    json!({ "id": 1, "slug": "x", "html_url": "https://github.com/apps/x", "webhook_secret": "s" }),
                )
            }),
            "pem",
        ),
        ("not JSON", Box::new(|g| g.answer_next_conversion(201, json!("<html>"))), "not usable"),
        (
            "no secret",
            Box::new(move |g| {
                g.answer_next_conversion(
                    201,
                    json!({ "id": 1, "slug": "x", "html_url": "https://github.com/apps/x", "webhook_secret": null, "pem": key }),
                )
            }),
            "webhook_secret",
        ),
    ];
    for (what, break_it, says) in cases {
        let github = FakeGitHub::start(APP_ID, PUBLIC_KEY).await;
        let dir = tempfile::tempdir().expect("dir");
        let setup = Setup::start(&github, dir.path(), &[]).await;
        break_it(&github);
        let (_, status, page) = post_the_form(&setup).await;
        assert!(status == 400 || status == 502, "{what}: {status} {page}");
        assert!(page.contains(says), "{what}: {page}");
        let ended = setup.ended().await;
        assert_eq!(ended.code, 2, "{what}: {}", ended.stderr);
        assert!(ended.stderr.contains(says), "{what}: {}", ended.stderr);
        ended.assert_no_key_printed();
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{what}");
    }
}

#[tokio::test]
async fn existing_credentials_are_never_overwritten() {
    for name in ["evalgate.toml", KEY_FILE] {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(name), "# mine\n").expect("write");
        let out = evalgate(dir.path()).arg("setup").env("EVALGATE_BIND", "127.0.0.1:0").output().await.expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(name) && stderr.contains("never overwrites"), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "setup did not start");
        assert_eq!(std::fs::read_to_string(dir.path().join(name)).expect("read"), "# mine\n");
        assert_eq!(files_in(dir.path()).len(), 1);
    }
}

#[tokio::test]
async fn an_organization_name_that_is_not_one_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("dir");
    let out = evalgate(dir.path())
        .args(["setup", "--org", "acme/../x"])
        .env("EVALGATE_BIND", "127.0.0.1:0")
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--org"));
}

// --- in a real browser --------------------------------------------------------------------------

fn chromium() -> Option<std::path::PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
    })
}

/// One page of a headless Chromium, spoken to over its DevTools websocket.
struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
}

impl Browser {
    async fn start(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = tokio::process::Command::new(binary)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            .args(["--no-first-run", "--disable-extensions", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let browser_ws = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("chromium printed its DevTools address");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let port = browser_ws.split(':').nth(2).and_then(|p| p.split('/').next()).expect("a port").to_owned();
        let list: Value = serde_json::from_str(
            &reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
                .await
                .expect("targets")
                .text()
                .await
                .expect("text"),
        )
        .expect("targets JSON");
        let page = list
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (ws, _) = tokio_tungstenite::connect_async(page).await.expect("connect to the page");
        let mut b = Browser { _child: child, _profile: profile, ws, next_id: 0 };
        b.call("Page.enable", json!({})).await;
        b
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(Message::Text(msg.into())).await.expect("send");
        loop {
            let Some(Ok(Message::Text(text))) = self.ws.next().await else { panic!("the browser went away") };
            let v: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn wait_for_load(&mut self) {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let Some(Ok(Message::Text(text))) = self.ws.next().await else { panic!("the browser went away") };
                let v: Value = serde_json::from_str(&text).expect("DevTools JSON");
                if v["method"] == "Page.loadEventFired" {
                    return;
                }
            }
        })
        .await
        .expect("the page loaded");
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true })).await;
        r["result"]["value"].clone()
    }
}

#[tokio::test]
#[ignore = "needs Chromium (.ci/run installs it)"]
async fn pressing_the_button_in_a_real_browser_registers_the_app() {
    let binary = chromium().unwrap_or_else(|| {
        panic!("no chromium, chromium-browser or google-chrome on PATH: install Debian's `chromium` (.ci/run does)")
    });
    let github = FakeGitHub::start(APP_ID, PUBLIC_KEY).await;
    let dir = tempfile::tempdir().expect("dir");
    let setup = Setup::start(&github, dir.path(), &[]).await;
    let public_url = setup.url.clone();

    let mut b = Browser::start(&binary).await;
    b.call("Page.navigate", json!({ "url": format!("{}/", setup.url) })).await;
    b.wait_for_load().await;
    assert_eq!(b.eval("document.querySelector('#create').textContent").await, "Create the GitHub App");
    b.eval("document.querySelector('#create').click()").await;
    // The form goes to GitHub, which sends the browser back to the callback.
    b.wait_for_load().await;
    let shown = b.eval("JSON.stringify({ url: location.href, install: document.querySelector('#install')?.href, text: document.body.innerText })").await;
    let shown: Value = serde_json::from_str(shown.as_str().expect("a string")).expect("json");
    assert!(
        shown["url"].as_str().is_some_and(|u| u.starts_with(&format!("{public_url}/setup/callback?code="))),
        "{shown}"
    );
    assert!(shown["text"].as_str().is_some_and(|t| t.contains("evalgate is registered")), "{shown}");
    let ended = setup.ended().await;
    assert_manifest_posted(&github, &public_url, None);
    let secret = assert_registered(&github, dir.path(), &ended, &public_url);
    let slug = &github.manifest_conversions()[0].slug;
    assert_eq!(shown["install"], format!("{}/apps/{slug}/installations/new", github.url()));
    serve_from_the_files(&github, dir.path(), &secret).await;
}
