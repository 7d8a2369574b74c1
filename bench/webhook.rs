//! The webhook benchmark: `cargo bench -p evalgate --bench webhook`.
//!
//! The real `evalgate serve` against the fake GitHub and the fake model provider on loopback,
//! started by the harness of `tests/github_app.rs`. Two measurements:
//!
//! 1. Ack latency under load: 10,000 signed `pull_request` `opened` deliveries, each with its own
//!    `X-GitHub-Delivery` id, paced at 500 per second (send `i` at `t0 + i × 2 ms`, at most 64 in
//!    flight, one keep-alive client), for pull requests whose change touches no bundle (the head
//!    only adds `docs/readme.md`): each queued job reads the pull request, its files and both
//!    trees from the fake GitHub and finds nothing to evaluate. The deliveries go round-robin to
//!    50 repositories, each under its own installation, because the fake GitHub enforces
//!    GitHub's 5,000 requests per installation and hour. Prints p50, p90, p99 and max from send
//!    to response, the achieved rate, non-2xx answers and failed requests, and how long the queue
//!    took to drain (`evalgate_jobs_pending 0` on `/metrics`) after the last answer.
//! 2. Delivery → check run: 20 pull requests that touch the bundle, each with its own head sha and
//!    a valid pre-registration, against a provider that answers at once. From sending `opened`
//!    until the `evalgate/demo` check run on that head shows `in_progress`, and until it is
//!    `completed`. The bundle is the same in all of them, so model results are cached after the
//!    first pull request; the model call count says so.
//! 3. Load table: pure webhook ingestion at 250, 500, 1,000 and 2,000 deliveries per second, five
//!    seconds each (paced as in 1, at most 128 in flight), on SQLite and on PostgreSQL, each on a
//!    fresh database. The deliveries are signed `ping` events, each with its own id: stored like
//!    every verified delivery but queueing no job, so the queue never grows with GitHub work. After
//!    the last rate the server is killed (no graceful shutdown) and the `deliveries` table is
//!    read directly: every acknowledged id must be there. PostgreSQL is the local server
//!    (`postgres://postgres@127.0.0.1:5432/postgres`, `EVALGATE_TEST_POSTGRES_URL` overrides); its
//!    database is created and migrated with `evalgate migrate` as in `tests/postgres.rs`, and
//!    dropped at the end. If it does not answer, its rows are not measured and the output says so.
//!    Printed as a markdown table for the README.
//!
//! `EVALGATE_BENCH=load` runs only 3.
//!
//! Figures only: nothing here asserts a time.

#[path = "../tests/support/fake_github.rs"]
mod fake_github;
#[path = "../tests/support/github_app.rs"]
mod github_app;
#[path = "../tests/support/mod.rs"]
mod support;

use fake_github::PrSpec;
use github_app::{Commits, Harness, PRE_REGISTRATION, REPO, SECRET};
use sqlx::Connection as _;
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::scenario::{Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const NOOP_HEAD: &str = "2222222222222222222222222222222222222222";
const DEMO: &str = "evalgate/demo";

const DELIVERIES: usize = 10_000;
const PACE: Duration = Duration::from_millis(2);
const IN_FLIGHT: usize = 64;
/// Repositories (one installation each) the load is spread over.
const LOAD_REPOS: usize = 50;
const FIRST_LOAD_INSTALLATION: u64 = 1000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

const GATE_PRS: u64 = 20;
const FIRST_GATE_PR: u64 = 101;
const GATE_WAIT: Duration = Duration::from_secs(20);
const GATE_BUDGET: Duration = Duration::from_secs(100);

const LOAD_RATES: [u32; 4] = [250, 500, 1000, 2000];
const LOAD_STEP: Duration = Duration::from_secs(5);
const LOAD_IN_FLIGHT: usize = 128;
const LOAD_EVENT: &str = "ping";
/// Between two rates, so one step's tail does not overlap the next.
const LOAD_SETTLE: Duration = Duration::from_secs(1);

fn load_repo(k: usize) -> String {
    format!("acme/load-{k:02}")
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The value of `name` in a Prometheus text page.
fn metric(page: &str, name: &str) -> Option<i64> {
    page.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// One webhook request: (status, or the transport error; time from send to response).
async fn post(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    id: String,
    body: Arc<Vec<u8>>,
    sig: &str,
) -> (Result<u16, String>, Duration) {
    let started = Instant::now();
    let sent = http
        .post(url)
        .header("x-github-event", event)
        .header("x-github-delivery", id)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sig)
        .body(body.as_ref().clone())
        .send()
        .await;
    let status = match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            Ok(status)
        }
        Err(e) => Err(if e.is_timeout() {
            "timeout".to_owned()
        } else if e.is_connect() {
            "connect".to_owned()
        } else {
            format!("{e:?}").chars().take(160).collect()
        }),
    };
    (status, started.elapsed())
}

async fn load(h: &Harness, commits: &Commits) {
    let mut noop_head = commits.base.clone();
    noop_head.insert("docs/readme.md".into(), b"# Notes\nNothing the agent reads.\n".to_vec());
    let mut bodies = Vec::new();
    for k in 0..LOAD_REPOS {
        let repo = load_repo(k);
        h.github.add_repo(&repo, FIRST_LOAD_INSTALLATION + k as u64);
        h.github.add_commit(&repo, BASE, commits.base.clone());
        h.github.add_commit(&repo, NOOP_HEAD, noop_head.clone());
        h.github.open_pr(
            &repo,
            PrSpec {
                number: 1,
                base_sha: BASE.into(),
                head_sha: NOOP_HEAD.into(),
                base_ref: "main".into(),
                head_ref: "docs".into(),
                body: None,
                author: "alex".into(),
                fork: false,
            },
        );
        let body = serde_json::to_vec(&h.github.pull_request_event(&repo, 1, "opened")).expect("json");
        let sig: Arc<str> = github_app::sign(SECRET, &body).into();
        bodies.push((Arc::new(body), sig));
    }

    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("client");
    let url: Arc<str> = format!("{}/webhooks/github", h.server.url).into();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::with_capacity(DELIVERIES);
    let mut lag_max = Duration::ZERO;
    let t0 = tokio::time::Instant::now();
    for i in 0..DELIVERIES {
        let due = t0 + PACE * i as u32;
        tokio::time::sleep_until(due).await;
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        lag_max = lag_max.max(tokio::time::Instant::now() - due);
        let (body, sig) = bodies[i % LOAD_REPOS].clone();
        let (http, url) = (http.clone(), url.clone());
        let id = format!("bench-{i}-{:016x}", fastrand::u64(..));
        tasks.push(tokio::spawn(async move {
            let out = post(&http, &url, "pull_request", id, body, &sig).await;
            drop(permit);
            out
        }));
    }
    let mut latencies = Vec::with_capacity(DELIVERIES);
    let (mut non_2xx, mut failed) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.expect("request task") {
            (Ok(s), d) if (200..300).contains(&s) => latencies.push(d),
            (Ok(s), _) => non_2xx.push(s),
            (Err(e), _) => failed.push(e),
        }
    }
    let sent_for = t0.elapsed();
    latencies.sort();

    // Drain: the queue is empty once every delivery's job is done or failed.
    let drain_started = Instant::now();
    let mut drained = None;
    let mut page = String::new();
    while drain_started.elapsed() < DRAIN_LIMIT {
        let (status, text) = h.get(&format!("{}/metrics", h.server.url)).await;
        if status == 200 {
            page = text;
            if metric(&page, "evalgate_jobs_pending") == Some(0) {
                drained = Some(drain_started.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let requests = h.github.requests();
    let load_requests: Vec<_> = requests.iter().filter(|r| r.path.starts_with("/repos/acme/load-")).collect();
    let pr_reads = load_requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.split('?').next().unwrap_or("").ends_with("/pulls/1"));
    let rate_limited = load_requests.iter().filter(|r| r.status == 403 || r.status == 429).count();
    let per_repo_max = (0..LOAD_REPOS)
        .map(|k| {
            let prefix = format!("/repos/{}/", load_repo(k));
            load_requests.iter().filter(|r| r.path.starts_with(&prefix)).count()
        })
        .max()
        .unwrap_or(0);

    println!(
        "1. webhook ack latency: {DELIVERIES} signed pull_request/opened deliveries at {} per second, \
         at most {IN_FLIGHT} in flight, over {LOAD_REPOS} repositories (one installation each)",
        1000 / PACE.as_millis()
    );
    println!("  answered 2xx:           {}", latencies.len());
    println!("  p50:                    {:.2} ms", ms(pct(&latencies, 50.0)));
    println!("  p90:                    {:.2} ms", ms(pct(&latencies, 90.0)));
    println!("  p99:                    {:.2} ms", ms(pct(&latencies, 99.0)));
    println!("  max:                    {:.2} ms", ms(latencies.last().copied().unwrap_or_default()));
    println!(
        "  achieved rate:          {:.1} per second ({DELIVERIES} in {:.2} s; latest send {:.1} ms behind schedule)",
        DELIVERIES as f64 / sent_for.as_secs_f64(),
        sent_for.as_secs_f64(),
        ms(lag_max)
    );
    let mut statuses = non_2xx.clone();
    statuses.sort_unstable();
    statuses.dedup();
    let by_status: Vec<String> =
        statuses.iter().map(|s| format!("{s} x{}", non_2xx.iter().filter(|x| *x == s).count())).collect();
    println!(
        "  errors:                 {} non-2xx{}, {} failed requests{}",
        non_2xx.len(),
        if by_status.is_empty() { String::new() } else { format!(" ({})", by_status.join(", ")) },
        failed.len(),
        failed.first().map(|e| format!(" (first: {e})")).unwrap_or_default()
    );
    match drained {
        Some(d) => println!("  queue drained:          {:.2} s after the last answer", d.as_secs_f64()),
        None => println!(
            "  queue drained:          not within {} s (evalgate_jobs_pending {:?})",
            DRAIN_LIMIT.as_secs(),
            metric(&page, "evalgate_jobs_pending")
        ),
    }
    println!(
        "  jobs (metrics):         {:?} done, {:?} retried, {:?} failed; deliveries {:?} accepted, {:?} duplicate",
        metric(&page, "evalgate_jobs_done_total"),
        metric(&page, "evalgate_jobs_retried_total"),
        metric(&page, "evalgate_jobs_failed_total"),
        metric(&page, "evalgate_deliveries_accepted_total"),
        metric(&page, "evalgate_deliveries_duplicate_total"),
    );
    println!(
        "  fake GitHub:            {} GET .../pulls/1, {} requests for the load ({:.1} per delivery), \
         {rate_limited} rate-limited, at most {per_repo_max} on one installation",
        pr_reads.count(),
        load_requests.len(),
        load_requests.len() as f64 / DELIVERIES as f64
    );
    let logs = h.logs();
    println!(
        "  server log:             {} job retries on `database is locked`, {} panics",
        logs.lines().filter(|l| l.contains("will be retried") && l.contains("database is locked")).count(),
        logs.lines().filter(|l| l.contains("panicked at")).count()
    );
}

async fn gates(h: &Harness, commits: &Commits) {
    let calls_before = h.provider.call_count();
    let budget = Instant::now();
    let (mut to_progress, mut to_done) = (Vec::new(), Vec::new());
    let (mut passed, mut timed_out) = (0, 0);
    let mut slowest = (Duration::ZERO, 0);
    for n in FIRST_GATE_PR..FIRST_GATE_PR + GATE_PRS {
        let left = GATE_BUDGET.saturating_sub(budget.elapsed());
        if left.is_zero() {
            break;
        }
        let sha = format!("{:040x}", 0xbe00_0000u64 + n);
        h.commit(&sha, &commits.head);
        h.open_pr(n, BASE, &sha, Some(PRE_REGISTRATION), false);
        let payload = h.github.pull_request_event(REPO, n, "opened");
        let started = Instant::now();
        let status = h.deliver("pull_request", &payload).await;
        if !(200..300).contains(&status) {
            println!("  PR #{n}: delivery answered {status}");
        }
        let in_progress = Cell::new(None);
        let done = h
            .github
            .wait_for(GATE_WAIT.min(left), |_| {
                let run = h.checks(&sha, DEMO).pop()?;
                if in_progress.get().is_none() && run.statuses_seen.iter().any(|s| s == "in_progress") {
                    in_progress.set(Some(started.elapsed()));
                }
                (run.status == "completed").then(|| (started.elapsed(), run.conclusion))
            })
            .await;
        match (in_progress.get(), done) {
            (Some(p), Some((d, conclusion))) => {
                to_progress.push(p);
                to_done.push(d);
                slowest = slowest.max((d, n));
                passed += usize::from(conclusion.as_deref() == Some("success"));
            }
            _ => timed_out += 1,
        }
    }
    to_progress.sort();
    to_done.sort();
    let median = |v: &[Duration]| ms(v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or_default());
    let max = |v: &[Duration]| ms(v.last().copied().unwrap_or_default());
    println!(
        "2. delivery -> {DEMO} check run: {GATE_PRS} pull requests touching the bundle, each its own head sha, \
         provider answering at once"
    );
    println!("  measured:               {} ({passed} gates passed, {timed_out} timed out)", to_done.len());
    println!("  to in_progress:         median {:.1} ms, max {:.1} ms", median(&to_progress), max(&to_progress));
    println!(
        "  to completed:           median {:.1} ms, max {:.1} ms (PR #{}, {} of {GATE_PRS})",
        median(&to_done),
        max(&to_done),
        slowest.1,
        slowest.1.saturating_sub(FIRST_GATE_PR) + 1
    );
    println!(
        "  model calls:            {} (same bundle in every pull request: cached after the first)",
        h.provider.call_count() - calls_before
    );
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// A `ping` as GitHub sends it when a hook is created: stored, answered `pong`, no job.
fn ping_payload() -> Vec<u8> {
    let payload = serde_json::json!({
        "zen": "Anything added dilutes everything else.",
        "hook_id": 109948940,
        "hook": {
            "type": "App",
            "id": 109948940,
            "name": "web",
            "active": true,
            "events": ["pull_request", "check_run", "issue_comment", "installation"],
            "config": {
                "content_type": "json",
                "url": "https://evalgate.example.com/webhooks/github",
                "insecure_ssl": "0"
            },
            "updated_at": "2019-05-15T15:20:49Z",
            "created_at": "2019-05-15T15:20:49Z",
            "app_id": github_app::APP_ID,
            "deliveries_url": "https://api.github.com/app/hook/deliveries"
        },
        "repository": {
            "id": 186853261,
            "name": "agents",
            "full_name": REPO,
            "private": false,
            "owner": { "login": "acme", "id": 38302899, "type": "Organization" },
            "default_branch": "main"
        },
        "sender": { "login": "alex", "id": 21031067, "type": "User" }
    });
    serde_json::to_vec(&payload).expect("json")
}

/// Where the deliveries are stored, read directly after the server is gone.
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Db {
    fn name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "SQLite",
            Db::Postgres(_) => "PostgreSQL",
        }
    }

    /// The ids of the load table's deliveries in the `deliveries` table.
    async fn stored_ids(&self) -> Result<HashSet<String>, String> {
        const SQL: &str = "SELECT delivery_id FROM deliveries WHERE delivery_id LIKE 'load-%'";
        let ids = match self {
            Db::Sqlite(path) => {
                let url = format!("sqlite://{}?mode=ro", path.display());
                let mut c = sqlx::sqlite::SqliteConnection::connect(&url).await.map_err(|e| e.to_string())?;
                sqlx::query_scalar::<_, String>(SQL).fetch_all(&mut c).await.map_err(|e| e.to_string())?
            }
            Db::Postgres(url) => {
                let mut c = sqlx::postgres::PgConnection::connect(url).await.map_err(|e| e.to_string())?;
                sqlx::query_scalar::<_, String>(SQL).fetch_all(&mut c).await.map_err(|e| e.to_string())?
            }
        };
        Ok(ids.into_iter().collect())
    }
}

/// One rate on one database.
struct Step {
    rate: u32,
    load_before: String,
    sent: usize,
    acked: Vec<String>,
    /// Ids sent but not acknowledged (non-2xx or failed): they may or may not be stored.
    unacked: Vec<String>,
    latencies: Vec<Duration>,
    non_2xx: Vec<u16>,
    failed: Vec<String>,
    /// From the first send to the last answer.
    elapsed: Duration,
    lag_max: Duration,
}

async fn load_step(h: &Harness, http: &reqwest::Client, rate: u32, body: &Arc<Vec<u8>>, sig: &Arc<str>) -> Step {
    let load_before = load_average();
    let count = (rate as u64 * LOAD_STEP.as_secs()) as usize;
    let interval = Duration::from_secs(1) / rate;
    let url: Arc<str> = format!("{}/webhooks/github", h.server.url).into();
    let slots = Arc::new(tokio::sync::Semaphore::new(LOAD_IN_FLIGHT));
    let mut tasks = Vec::with_capacity(count);
    let mut lag_max = Duration::ZERO;
    let t0 = tokio::time::Instant::now();
    for i in 0..count {
        let due = t0 + interval * i as u32;
        tokio::time::sleep_until(due).await;
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        lag_max = lag_max.max(tokio::time::Instant::now() - due);
        let (http, url, body, sig) = (http.clone(), url.clone(), body.clone(), sig.clone());
        let id = format!("load-{rate}-{i}-{:016x}", fastrand::u64(..));
        tasks.push(tokio::spawn(async move {
            let out = post(&http, &url, LOAD_EVENT, id.clone(), body, &sig).await;
            drop(permit);
            (id, out)
        }));
    }
    let mut step = Step {
        rate,
        load_before,
        sent: count,
        acked: Vec::with_capacity(count),
        unacked: Vec::new(),
        latencies: Vec::with_capacity(count),
        non_2xx: Vec::new(),
        failed: Vec::new(),
        elapsed: Duration::ZERO,
        lag_max: Duration::ZERO,
    };
    for t in tasks {
        let (id, (status, took)) = t.await.expect("request task");
        match status {
            Ok(s) if (200..300).contains(&s) => {
                step.acked.push(id);
                step.latencies.push(took);
            }
            Ok(s) => {
                step.non_2xx.push(s);
                step.unacked.push(id);
            }
            Err(e) => {
                step.failed.push(e);
                step.unacked.push(id);
            }
        }
    }
    step.elapsed = t0.elapsed();
    step.lag_max = lag_max;
    step.latencies.sort();
    step
}

/// The table's rows for one database, or why it was not measured.
struct Measured {
    db: &'static str,
    steps: Vec<Step>,
    stored: Result<HashSet<String>, String>,
    server_log: (usize, usize),
}

/// The rates on the harness's own SQLite file, or on the PostgreSQL database at `postgres`.
async fn load_on(postgres: Option<&str>) -> Measured {
    let env: Vec<(&str, &str)> = postgres.map(|url| ("EVALGATE_DATABASE_URL", url)).into_iter().collect();
    let mut h = Harness::start_with(Arc::new(Script::new()), &env).await;
    let db = match postgres {
        Some(url) => Db::Postgres(url.to_owned()),
        None => Db::Sqlite(h.db_path()),
    };
    let body = ping_payload();
    let sig: Arc<str> = github_app::sign(SECRET, &body).into();
    let body = Arc::new(body);
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("client");
    // One delivery first, so connection set-up and the first statement are not in the figures.
    let (warm, _) =
        post(&http, &format!("{}/webhooks/github", h.server.url), LOAD_EVENT, "warm-up".into(), body.clone(), &sig)
            .await;
    if warm != Ok(200) {
        println!("  {}: the warm-up ping was answered {warm:?}", db.name());
    }
    let mut steps = Vec::new();
    for rate in LOAD_RATES {
        steps.push(load_step(&h, &http, rate, &body, &sig).await);
        tokio::time::sleep(LOAD_SETTLE).await;
    }
    // No graceful shutdown: what was acknowledged must be in the table all the same.
    h.server.kill().await;
    let logs = h.logs();
    let server_log = (
        logs.lines().filter(|l| l.contains("cannot store a delivery")).count(),
        logs.lines().filter(|l| l.contains("panicked at")).count(),
    );
    Measured { db: db.name(), steps, stored: db.stored_ids().await, server_log }
}

fn admin_url() -> String {
    std::env::var("EVALGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, migrated database on the local PostgreSQL, or why there is none.
async fn postgres_database() -> Result<String, String> {
    let admin = admin_url();
    let mut c = tokio::time::timeout(Duration::from_secs(5), sqlx::postgres::PgConnection::connect(&admin))
        .await
        .map_err(|_| format!("{admin} did not answer within 5 s"))?
        .map_err(|e| format!("{admin}: {e}"))?;
    let db = format!("evalgate_bench_load_{:08x}", fastrand::u32(..));
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut c).await.map_err(|e| format!("create database: {e}"))?;
    let url = format!("{}/{db}", admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evalgate"))
        .arg("migrate")
        .env("EVALGATE_DATABASE_URL", &url)
        .output()
        .map_err(|e| format!("evalgate migrate: {e}"))?;
    if !out.status.success() {
        drop_postgres_database(&url).await;
        return Err(format!("evalgate migrate: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(url)
}

async fn drop_postgres_database(url: &str) {
    let Some((_, db)) = url.rsplit_once('/') else { return };
    match sqlx::postgres::PgConnection::connect(&admin_url()).await {
        Ok(mut c) => {
            if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut c).await {
                println!("  could not drop {db}: {e}");
            }
        }
        Err(e) => println!("  could not drop {db}: {e}"),
    }
}

async fn load_table() {
    let body_len = ping_payload().len();
    println!(
        "3. webhook ingestion: signed `{LOAD_EVENT}` deliveries ({body_len} bytes, each its own X-GitHub-Delivery id; \
         stored, no job queued), {} s at each rate, at most {LOAD_IN_FLIGHT} in flight, one keep-alive client; \
         `evalgate serve` with EVALGATE_WORKERS=2, a fresh database each; the load generator shares the machine \
         ({} cores, load average {})",
        LOAD_STEP.as_secs(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        load_average()
    );
    let mut measured = vec![load_on(None).await];
    let mut not_measured = None;
    match postgres_database().await {
        Ok(url) => {
            measured.push(load_on(Some(&url)).await);
            drop_postgres_database(&url).await;
        }
        Err(why) => not_measured = Some(why),
    }

    println!();
    println!(
        "| database | target/s | sent | achieved/s | ack p50 (ms) | ack p99 (ms) | non-2xx | failed | acked | stored \
         | acked, not stored | load avg (1 min) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut notes = Vec::new();
    for m in &measured {
        for s in &m.steps {
            let (stored, lost) = match &m.stored {
                Ok(ids) => {
                    let prefix = format!("load-{}-", s.rate);
                    let stored = ids.iter().filter(|id| id.starts_with(&prefix)).count();
                    let lost = s.acked.iter().filter(|id| !ids.contains(*id)).count();
                    let unacked_stored = s.unacked.iter().filter(|id| ids.contains(*id)).count();
                    if unacked_stored > 0 {
                        notes.push(format!(
                            "{} at {}/s: {unacked_stored} deliveries not acknowledged were stored all the same",
                            m.db, s.rate
                        ));
                    }
                    (stored.to_string(), lost.to_string())
                }
                Err(_) => ("?".to_owned(), "?".to_owned()),
            };
            println!(
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {stored} | {lost} | {} |",
                m.db,
                s.rate,
                s.sent,
                s.acked.len() as f64 / s.elapsed.as_secs_f64(),
                ms(pct(&s.latencies, 50.0)),
                ms(pct(&s.latencies, 99.0)),
                s.non_2xx.len(),
                s.failed.len(),
                s.acked.len(),
                s.load_before.split_whitespace().next().unwrap_or("?"),
            );
            if s.lag_max > Duration::from_millis(100) {
                notes.push(format!(
                    "{} at {}/s: the sender fell up to {:.0} ms behind schedule ({LOAD_IN_FLIGHT} in flight)",
                    m.db,
                    s.rate,
                    ms(s.lag_max)
                ));
            }
            if let Some(e) = s.failed.first() {
                notes.push(format!("{} at {}/s: first failed request: {e}", m.db, s.rate));
            }
            let mut codes = s.non_2xx.clone();
            codes.sort_unstable();
            codes.dedup();
            if !codes.is_empty() {
                let by: Vec<String> =
                    codes.iter().map(|c| format!("{c} x{}", s.non_2xx.iter().filter(|x| *x == c).count())).collect();
                notes.push(format!("{} at {}/s: non-2xx answers {}", m.db, s.rate, by.join(", ")));
            }
        }
        if let Err(e) = &m.stored {
            notes.push(format!("{}: could not read the deliveries table: {e}", m.db));
        }
        let (store_errors, panics) = m.server_log;
        if store_errors + panics > 0 {
            notes.push(format!("{}: server log: {store_errors} `cannot store a delivery`, {panics} panics", m.db));
        }
    }
    if let Some(why) = &not_measured {
        println!("| PostgreSQL | — | not measured: PostgreSQL did not answer | | | | | | | | | |");
        notes.push(format!("PostgreSQL rows not measured: {why}"));
    }
    println!();
    println!(
        "achieved/s: acknowledged (2xx) deliveries over the time from the first send to the last answer; \
         ack: send to response, 2xx only; stored: rows in `deliveries` for that rate, counted after the server \
         was killed; acked, not stored: acknowledged ids missing from the table (lost)."
    );
    for n in &notes {
        println!("- {n}");
    }
    println!("load average at the end: {}", load_average());
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    println!("load average at start: {}", load_average());
    match std::env::var("EVALGATE_BENCH").as_deref() {
        Ok("load") => return load_table().await,
        Ok("") | Err(_) => {}
        Ok(other) => panic!("EVALGATE_BENCH={other}: only `load` (the load table alone) is known"),
    }
    let h = Harness::start(Arc::new(Script::new())).await;
    let commits = Commits::of(&Spec::new(4));
    h.commit(BASE, &commits.base);
    load(&h, &commits).await;
    gates(&h, &commits).await;
    drop(h);
    load_table().await;
}
