//! `evalgate serve` under test: the real binary, started against a fake GitHub and a fake model
//! provider on loopback, with its own SQLite file. Tests speak in domain verbs: open a pull
//! request, push, edit its body, press a button, restart the server, and read GitHub's state.
#![allow(dead_code)]

use crate::fake_github::{FakeGitHub, PrSpec};
use crate::support::fake_provider::FakeProvider;
use crate::support::scenario::{self, Script, Spec};
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const APP_ID: u64 = 4242;
pub const INSTALLATION: u64 = 77;
pub const REPO: &str = "acme/agents";
pub const SECRET: &str = "test-webhook-secret";
pub const PUBLIC_KEY: &str = include_str!("keys/test-app-public.pem");
/// Long enough for a debug build on a loaded 2-core machine; tests finish far sooner.
pub const WAIT: Duration = Duration::from_secs(120);

pub const PRE_REGISTRATION: &str = "\
### What changed
Reworded the demo prompt.
### Expected to move
demo: c03 may regress, c04 should be fixed.
### Success threshold
max_regression_rate: 50%
";

fn key_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/keys/test-app-private.pem")
}

/// `X-Hub-Signature-256` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The files of a scenario repository, as two commits: `base` has the base bundle at
/// `agent/`, `head` the head bundle there. Both share tools, rubric and golden set.
pub struct Commits {
    pub base: BTreeMap<String, Vec<u8>>,
    pub head: BTreeMap<String, Vec<u8>>,
}

fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("inside").to_string_lossy().replace('\\', "/");
            if rel == ".git" || rel.ends_with(".db") || rel.contains(".db-") || rel == "report.json" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

impl Commits {
    pub fn of(spec: &Spec) -> Commits {
        Commits::from_repo(&scenario::repo(spec))
    }

    pub fn from_repo(repo: &crate::support::Repo) -> Commits {
        let all = files_under(repo.path());
        let side = |from: &str| {
            let mut files = BTreeMap::new();
            for (path, bytes) in &all {
                if path.starts_with("base/") || path.starts_with("agent/") {
                    if let Some(rest) = path.strip_prefix(&format!("{from}/")) {
                        files.insert(format!("agent/{rest}"), bytes.clone());
                    }
                } else {
                    files.insert(path.clone(), bytes.clone());
                }
            }
            files
        };
        Commits { base: side("base"), head: side("agent") }
    }
}

/// A running `evalgate serve`.
pub struct Server {
    child: tokio::process::Child,
    pub url: String,
    log: PathBuf,
}

impl Server {
    /// Sends SIGTERM, as a container runtime does, and waits for the exit code.
    pub async fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id()? as i32;
        // SAFETY: kill(2) with a pid of our own child and a valid signal number.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await.ok()?.ok()?;
        status.code()
    }

    /// Kills the server at once, as a crash would (no graceful shutdown).
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Everything one test needs.
pub struct Harness {
    pub github: FakeGitHub,
    pub provider: FakeProvider,
    pub server: Server,
    dir: tempfile::TempDir,
    deliveries: std::sync::atomic::AtomicU64,
    http: reqwest::Client,
    extra_env: Vec<(String, String)>,
}

impl Harness {
    pub async fn start(script: Arc<Script>) -> Harness {
        Harness::start_with(script, &[]).await
    }

    /// A provider that answers every call only after `delay`.
    pub async fn start_slow(script: Arc<Script>, delay: Duration) -> Harness {
        Harness::start_slow_with(script, delay, &[]).await
    }

    /// `start_slow` with extra settings.
    pub async fn start_slow_with(script: Arc<Script>, delay: Duration, env: &[(&str, &str)]) -> Harness {
        let provider = FakeProvider::start(move |req| script.reply(req).after(delay)).await;
        Harness::start_on(provider, env).await
    }

    pub async fn start_with(script: Arc<Script>, env: &[(&str, &str)]) -> Harness {
        Harness::start_on(scenario::provider(script).await, env).await
    }

    async fn start_on(provider: FakeProvider, env: &[(&str, &str)]) -> Harness {
        let github = FakeGitHub::start(APP_ID, PUBLIC_KEY).await;
        github.add_repo(REPO, INSTALLATION);
        let dir = tempfile::tempdir().expect("temp dir");
        let extra_env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let server = spawn(&github, &provider, dir.path(), &extra_env, 0).await;
        Harness { github, provider, server, dir, deliveries: 0.into(), http: reqwest::Client::new(), extra_env }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("evalgate.db")
    }

    /// What the server logged so far (for failure messages).
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for i in 0..8 {
            if let Ok(s) = std::fs::read_to_string(self.dir.path().join(format!("serve-{i}.log"))) {
                all.push_str(&s);
            }
        }
        all
    }

    /// Kills the server at once (no graceful shutdown) and starts it again on the same database.
    pub async fn crash_and_restart(&mut self) {
        self.server.child.start_kill().expect("kill");
        let _ = self.server.child.wait().await;
        let n = std::fs::read_dir(self.dir.path()).map(|d| d.count()).unwrap_or(0);
        self.server = spawn(&self.github, &self.provider, self.dir.path(), &self.extra_env, n).await;
    }

    /// Another `evalgate serve` with extra settings (a replica on another database URL).
    pub async fn spawn_replica_with(&self, env: &[(&str, &str)]) -> Server {
        let n = std::fs::read_dir(self.dir.path()).map(|d| d.count()).unwrap_or(0);
        let mut extra = self.extra_env.clone();
        extra.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        spawn(&self.github, &self.provider, self.dir.path(), &extra, n).await
    }

    /// A second `evalgate serve` on the same database: a replica.
    pub async fn spawn_replica(&self) -> Server {
        let n = std::fs::read_dir(self.dir.path()).map(|d| d.count()).unwrap_or(0);
        spawn(&self.github, &self.provider, self.dir.path(), &self.extra_env, n).await
    }

    pub fn commit(&self, sha: &str, files: &BTreeMap<String, Vec<u8>>) {
        self.github.add_commit(REPO, sha, files.clone());
    }

    pub fn open_pr(&self, number: u64, base: &str, head: &str, body: Option<&str>, fork: bool) {
        self.github.open_pr(
            REPO,
            PrSpec {
                number,
                base_sha: base.into(),
                head_sha: head.into(),
                base_ref: "main".into(),
                head_ref: format!("change-{number}"),
                body: body.map(str::to_owned),
                author: "alex".into(),
                fork,
            },
        );
    }

    /// Sends a signed delivery with a fresh id; returns the status code.
    pub async fn deliver(&self, event: &str, payload: &Value) -> u16 {
        let n = self.deliveries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.deliver_as(&format!("delivery-{n}-{}", fastrand::u64(..)), event, payload).await
    }

    pub async fn deliver_as(&self, delivery_id: &str, event: &str, payload: &Value) -> u16 {
        let body = serde_json::to_vec(payload).expect("json");
        self.send(delivery_id, event, &body, Some(&sign(SECRET, &body))).await.0
    }

    /// A raw request to the webhook endpoint: (status, body).
    pub async fn send(&self, delivery_id: &str, event: &str, body: &[u8], signature: Option<&str>) -> (u16, String) {
        self.send_to(&self.server.url, delivery_id, event, body, signature).await
    }

    /// A signed delivery to the server (or replica) at `base_url`; returns the status code.
    pub async fn deliver_to(&self, base_url: &str, delivery_id: &str, event: &str, payload: &Value) -> u16 {
        let body = serde_json::to_vec(payload).expect("json");
        self.send_to(base_url, delivery_id, event, &body, Some(&sign(SECRET, &body))).await.0
    }

    async fn send_to(
        &self,
        base_url: &str,
        delivery_id: &str,
        event: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{base_url}/webhooks/github"))
            .header("x-github-event", event)
            .header("x-github-delivery", delivery_id)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        let resp = req.send().await.expect("webhook request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    pub async fn get(&self, url: &str) -> (u16, String) {
        let resp = self.http.get(url).send().await.expect("get");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// Opens the pull request on GitHub and tells evalgate, as GitHub would.
    pub async fn pr_opened(&self, number: u64) -> u16 {
        let payload = self.github.pull_request_event(REPO, number, "opened");
        self.deliver("pull_request", &payload).await
    }

    /// The check runs named `name` on `head_sha`, oldest first.
    pub fn checks(&self, head_sha: &str, name: &str) -> Vec<crate::fake_github::CheckRun> {
        self.github.check_runs(REPO).into_iter().filter(|c| c.head_sha == head_sha && c.name == name).collect()
    }

    /// Waits until the newest check run `name` on `head_sha` is completed, and returns it.
    pub async fn completed(&self, head_sha: &str, name: &str) -> crate::fake_github::CheckRun {
        let found = self
            .github
            .wait_for(WAIT, |_| self.checks(head_sha, name).into_iter().last().filter(|c| c.status == "completed"))
            .await;
        match found {
            Some(c) => c,
            None => panic!(
                "{name} on {head_sha} did not complete; check runs: {:#?}\nserver log:\n{}",
                self.github.check_runs(REPO),
                self.logs()
            ),
        }
    }

    pub async fn until<T>(&self, what: &str, f: impl Fn(&FakeGitHub) -> Option<T>) -> T {
        match self.github.wait_for(WAIT, f).await {
            Some(v) => v,
            None => panic!(
                "timed out waiting until {what}; check runs: {:#?}\nserver log:\n{}",
                self.github.check_runs(REPO),
                self.logs()
            ),
        }
    }
}

async fn spawn(
    github: &FakeGitHub,
    provider: &FakeProvider,
    dir: &Path,
    extra: &[(String, String)],
    n: usize,
) -> Server {
    let log = dir.join(format!("serve-{}.log", n.min(7)));
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_evalgate"));
    cmd.arg("serve")
        .current_dir(dir)
        .env("EVALGATE_BIND", "127.0.0.1:0")
        .env("EVALGATE_PUBLIC_URL", "http://127.0.0.1:1")
        .env("EVALGATE_GITHUB_API_URL", github.url())
        .env("EVALGATE_APP_ID", APP_ID.to_string())
        .env("EVALGATE_PRIVATE_KEY_PATH", key_path())
        .env_remove("EVALGATE_PRIVATE_KEY")
        .env("EVALGATE_WEBHOOK_SECRET", SECRET)
        .env("EVALGATE_DATABASE_URL", format!("sqlite://{}", dir.join("evalgate.db").display()))
        .env("ANTHROPIC_API_KEY", "sk-ant-test-secret-key")
        .env("OPENAI_API_KEY", "sk-openai-test-secret-key")
        .env("EVALGATE_ANTHROPIC_BASE_URL", provider.anthropic_base_url())
        .env("EVALGATE_OPENAI_BASE_URL", provider.openai_base_url())
        .env("EVALGATE_JOB_LEASE_SECS", "2")
        .env("EVALGATE_WORKERS", "2")
        .env_remove("EVALGATE_RPM")
        .env_remove("EVALGATE_CONCURRENCY")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start evalgate serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
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
    .unwrap_or_else(|| panic!("evalgate serve did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, url, log }
}
