//! The report page in a real browser: headless Chromium, driven over the DevTools protocol,
//! loads a report that `evalgate serve` rendered, clicks the "regressions" filter and reads what
//! the page then shows; then the same page at a phone's width. It needs Chromium, so it is
//! ignored by default; `.ci/run` installs Debian's `chromium` and runs it with `--ignored`, and
//! run without Chromium it fails. With `EVALGATE_SCREENSHOT_DIR=DIR` it saves what the browser
//! showed.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use github_app::{Commits, Harness, PRE_REGISTRATION};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::scenario::{Plan, Script, Spec};
use tokio::io::AsyncBufReadExt as _;
use tokio_tungstenite::tungstenite::Message;

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";

fn chromium() -> Option<std::path::PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.is_file())
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
    async fn start(binary: &std::path::Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = tokio::process::Command::new(binary)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            .args(["--no-first-run", "--disable-extensions", "--remote-debugging-port=0", "--window-size=1200,900"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
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
        // The page target of about:blank, from the browser's own HTTP listing.
        let port = browser_ws.split(':').nth(2).and_then(|p| p.split('/').next()).expect("a port").to_owned();
        let list = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("list targets")
            .text()
            .await
            .expect("targets");
        let list: Value = serde_json::from_str(&list).expect("targets JSON");
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

    /// Sends one command and returns its result (events before it are dropped).
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

    async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for_load().await;
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true })).await;
        r["result"]["value"].clone()
    }

    async fn screenshot(&mut self, name: &str) {
        let Some(dir) = std::env::var_os("EVALGATE_SCREENSHOT_DIR") else { return };
        let r = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": false })).await;
        let png =
            base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().expect("png data")).expect("base64");
        std::fs::write(std::path::Path::new(&dir).join(name), png).expect("write screenshot");
    }
}

/// What the page shows now: the filter in force and the cases listed.
const SHOWN: &str = "JSON.stringify({ search: location.search, active: document.querySelector('nav.filters a.active').id, \
    cases: [...document.querySelectorAll('section.case')].map(s => s.dataset.case), \
    overflow: [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className) })";

#[tokio::test]
#[ignore = "needs Chromium (.ci/run installs it)"]
async fn the_regressions_filter_shows_only_the_regressed_cases_in_a_real_browser() {
    let binary = chromium().unwrap_or_else(|| {
        panic!("no chromium, chromium-browser or google-chrome on PATH: install Debian's `chromium` (.ci/run does)")
    });
    let script = Script::new().head(3, Plan::Fail).head(5, Plan::Fail).base(4, Plan::Fail);
    let h = Harness::start(Arc::new(script)).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 1.0 }", ..Spec::new(6) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, "evalgate/demo").await;
    let path = gate.details_url.strip_prefix("http://127.0.0.1:1").expect("details_url under EVALGATE_PUBLIC_URL");
    let url = format!("{}{path}", h.server.url);

    let mut b = Browser::start(&binary).await;
    b.navigate(&url).await;
    let all: Value = serde_json::from_str(b.eval(SHOWN).await.as_str().expect("a string")).expect("json");
    assert_eq!(all["active"], "filter-all");
    assert_eq!(all["cases"].as_array().map(Vec::len), Some(6), "{all}");
    assert_eq!(all["cases"][0], "c03", "regressions come first: {all}");
    b.screenshot("report-all.png").await;

    b.eval("document.querySelector('#filter-regressions').click()").await;
    b.wait_for_load().await;
    let regressions: Value = serde_json::from_str(b.eval(SHOWN).await.as_str().expect("a string")).expect("json");
    assert_eq!(regressions["active"], "filter-regressions", "{regressions}");
    assert!(regressions["search"].as_str().is_some_and(|s| s.contains("filter=regressions")));
    assert_eq!(regressions["cases"], json!(["c03", "c05"]), "{regressions}");
    let text = b.eval("document.querySelector('section.case').innerText").await;
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains("sorry, no for c03 (head)") && text.contains("ANSWER-OK for c03 (base)"), "{text}");
    assert!(text.contains("FAIL contains"), "the failed check is shown: {text}");
    b.screenshot("report-regressions.png").await;
    b.eval("document.querySelector('#cases').scrollIntoView()").await;
    b.screenshot("report-regressions-cases.png").await;

    // A phone's width: one column, nothing wider than the screen.
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
    )
    .await;
    b.navigate(&url).await;
    let phone: Value = serde_json::from_str(b.eval(SHOWN).await.as_str().expect("a string")).expect("json");
    assert_eq!(phone["overflow"], json!([]), "nothing is wider than a phone's screen: {phone}");
    b.screenshot("report-phone.png").await;
}
