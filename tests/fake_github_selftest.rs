#[path = "support/fake_github.rs"]
mod fake_github;

// Self-tests of the fake GitHub: each proves one behaviour over real HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_github::{Failure, FakeGitHub, PrSpec, blob_sha};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 77;
const REPO: &str = "acme/agents";
const PRIVATE_KEY: &str = include_str!("support/keys/test-app-private.pem");
const PUBLIC_KEY: &str = include_str!("support/keys/test-app-public.pem");

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn jwt(iat: i64, exp: i64, iss: Value) -> String {
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).expect("private key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &json!({ "iat": iat, "exp": exp, "iss": iss }), &key)
        .expect("sign")
}

fn good_jwt() -> String {
    jwt(now() - 60, now() + 540, json!(APP_ID))
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(method: &str, url: &str, auth: Option<&str>, body: Option<Value>) -> Reply {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, url).header("accept", "application/vnd.github+json");
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, json }
}

/// A fake with one repo, a base and head commit and PR #1 between them.
async fn fake() -> FakeGitHub {
    let gh = FakeGitHub::start(APP_ID, PUBLIC_KEY).await;
    gh.add_repo(REPO, INSTALLATION);
    let files = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
        pairs.iter().map(|(p, c)| (p.to_string(), c.as_bytes().to_vec())).collect()
    };
    gh.add_commit(REPO, &"a".repeat(40), files(&[("README.md", "hello\n"), ("bundles/demo/prompt.md", "v1\n")]));
    gh.add_commit(REPO, &"b".repeat(40), files(&[("README.md", "hello\n"), ("bundles/demo/prompt.md", "v2\n")]));
    gh.open_pr(
        REPO,
        PrSpec {
            number: 1,
            base_sha: "a".repeat(40),
            head_sha: "b".repeat(40),
            base_ref: "main".into(),
            head_ref: "change".into(),
            body: None,
            author: "alice".into(),
            fork: false,
        },
    );
    gh
}

async fn token(gh: &FakeGitHub) -> String {
    let url = format!("{}/app/installations/{INSTALLATION}/access_tokens", gh.url());
    let r = send("POST", &url, Some(&format!("Bearer {}", good_jwt())), None).await;
    assert_eq!(r.status, 201, "{}", r.json);
    format!("token {}", r.json["token"].as_str().expect("token"))
}

async fn create_run(gh: &FakeGitHub, auth: &str, body: Value) -> Reply {
    send("POST", &format!("{}/repos/{REPO}/check-runs", gh.url()), Some(auth), Some(body)).await
}

fn annotation(i: usize) -> Value {
    json!({ "path": "bundles/demo/prompt.md", "start_line": 1, "end_line": 1, "annotation_level": "warning",
            "message": format!("finding {i}") })
}

#[tokio::test]
async fn token_exchange_rejects_a_malformed_jwt() {
    let gh = fake().await;
    let url = format!("{}/app/installations/{INSTALLATION}/access_tokens", gh.url());
    let mut tampered = good_jwt();
    tampered.push('x');
    for auth in ["Bearer not-a-jwt".to_string(), format!("Bearer {tampered}")] {
        let r = send("POST", &url, Some(&auth), None).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json["message"], "A JSON web token could not be decoded");
    }
    assert_eq!(gh.token_exchanges(), 0);
}

#[tokio::test]
async fn token_exchange_rejects_an_expired_or_too_long_jwt() {
    let gh = fake().await;
    let url = format!("{}/app/installations/{INSTALLATION}/access_tokens", gh.url());
    for token in [jwt(now() - 700, now() - 100, json!(APP_ID)), jwt(now() - 60, now() + 3600, json!(APP_ID))] {
        let r = send("POST", &url, Some(&format!("Bearer {token}")), None).await;
        assert_eq!(r.status, 401, "{}", r.json);
    }
    assert_eq!(gh.token_exchanges(), 0);
}

#[tokio::test]
async fn token_exchange_rejects_a_jwt_for_another_app() {
    let gh = fake().await;
    let url = format!("{}/app/installations/{INSTALLATION}/access_tokens", gh.url());
    let r = send("POST", &url, Some(&format!("Bearer {}", jwt(now() - 60, now() + 540, json!(1)))), None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn token_exchange_accepts_a_good_jwt_with_numeric_or_string_iss() {
    let gh = fake().await;
    let url = format!("{}/app/installations/{INSTALLATION}/access_tokens", gh.url());
    for iss in [json!(APP_ID), json!(APP_ID.to_string())] {
        let r = send("POST", &url, Some(&format!("Bearer {}", jwt(now() - 60, now() + 540, iss))), None).await;
        assert_eq!(r.status, 201, "{}", r.json);
        assert!(r.json["token"].as_str().is_some_and(|t| t.starts_with("ghs_")));
        assert!(r.json["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(r.json["repository_selection"], "all");
    }
    assert_eq!(gh.token_exchanges(), 2);
}

#[tokio::test]
async fn token_exchange_for_an_unknown_installation_is_not_found() {
    let gh = fake().await;
    let url = format!("{}/app/installations/999/access_tokens", gh.url());
    let r = send("POST", &url, Some(&format!("Bearer {}", good_jwt())), None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn repo_routes_reject_a_missing_token() {
    let gh = fake().await;
    let url = format!("{}/repos/{REPO}/pulls/1", gh.url());
    let r = send("GET", &url, None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["message"], "Bad credentials");
    assert_eq!(r.header("x-ratelimit-limit"), Some("5000"));
    assert!(r.header("x-github-request-id").is_some());
    let r = send("GET", &url, Some("token ghs_forged"), None).await;
    assert_eq!(r.status, 401);
    assert!(gh.requests().iter().all(|q| !q.authorized));
}

#[tokio::test]
async fn repo_routes_accept_bearer_and_token_schemes() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let bearer = auth.replacen("token ", "Bearer ", 1);
    for a in [&auth, &bearer] {
        let r = send("GET", &format!("{}/repos/{REPO}/pulls/1", gh.url()), Some(a), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json["head"]["sha"], "b".repeat(40));
        assert_eq!(r.json["body"], Value::Null);
        assert_eq!(r.json["head"]["repo"]["fork"], false);
    }
}

#[tokio::test]
async fn expired_installation_tokens_are_bad_credentials() {
    let gh = fake().await;
    let auth = token(&gh).await;
    gh.expire_tokens();
    let r = send("GET", &format!("{}/repos/{REPO}/pulls/1", gh.url()), Some(&auth), None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn pr_files_paginate_with_absolute_next_links_until_the_last_page() {
    let gh = fake().await;
    let head: BTreeMap<String, Vec<u8>> = (0..5).map(|i| (format!("f{i}.txt"), b"x\n".to_vec())).collect();
    gh.add_commit(REPO, &"c".repeat(40), head);
    gh.push(REPO, 1, &"c".repeat(40));
    let auth = token(&gh).await;
    let mut url = format!("{}/repos/{REPO}/pulls/1/files?per_page=2", gh.url());
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let r = send("GET", &url, Some(&auth), None).await;
        assert_eq!(r.status, 200);
        pages += 1;
        names
            .extend(r.json.as_array().expect("array").iter().map(|f| f["filename"].as_str().unwrap_or("").to_string()));
        let link = r.header("link").unwrap_or("").to_string();
        let next =
            link.split(", ").find(|l| l.ends_with("rel=\"next\"")).map(|l| l[1..l.find('>').unwrap_or(1)].to_string());
        match next {
            Some(n) => {
                assert!(n.starts_with(&gh.url()), "absolute next link: {n}");
                assert!(
                    link.contains(&format!(
                        "<{}/repos/{REPO}/pulls/1/files?per_page=2&page=4>; rel=\"last\"",
                        gh.url()
                    ))
                );
                url = n;
            }
            None => {
                assert!(link.contains("rel=\"prev\"") && link.contains("rel=\"first\""), "{link}");
                break;
            }
        }
    }
    assert_eq!(pages, 4);
    // README.md and prompt.md removed, f0..f4 added.
    assert_eq!(names.len(), 7);
    assert!(names.contains(&"bundles/demo/prompt.md".to_string()));
}

#[tokio::test]
async fn pr_files_report_status_and_line_counts() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let r = send("GET", &format!("{}/repos/{REPO}/pulls/1/files", gh.url()), Some(&auth), None).await;
    let files = r.json.as_array().expect("array");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["filename"], "bundles/demo/prompt.md");
    assert_eq!(files[0]["status"], "modified");
    assert_eq!((files[0]["additions"].as_u64(), files[0]["deletions"].as_u64()), (Some(1), Some(1)));
    assert!(r.header("link").is_none());
}

#[tokio::test]
async fn trees_and_blobs_use_git_hashes_and_githubs_base64() {
    let gh = fake().await;
    let content = "y".repeat(100);
    let files = BTreeMap::from([("a/b.txt".to_string(), content.clone().into_bytes()), ("empty".to_string(), vec![])]);
    gh.add_commit(REPO, &"d".repeat(40), files);
    gh.add_symlink(REPO, &"d".repeat(40), "link", "a/b.txt");
    let auth = token(&gh).await;
    let r =
        send("GET", &format!("{}/repos/{REPO}/git/trees/{}?recursive=1", gh.url(), "d".repeat(40)), Some(&auth), None)
            .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["truncated"], false);
    // The same tree built by `git write-tree`.
    assert_eq!(r.json["sha"], "ef866f32e122b1e299a0906818d32cf8ac7d8f02");
    let tree = r.json["tree"].as_array().expect("tree");
    let paths: Vec<&str> = tree.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, ["a", "a/b.txt", "empty", "link"]);
    assert_eq!(tree[0]["type"], "tree");
    assert_eq!(tree[0]["mode"], "040000");
    assert_eq!(tree[2]["sha"], "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", "git's empty blob");
    assert_eq!(tree[1]["sha"], "d987d5826fb4d7b87335b2c404790e113a6f1b9e");
    assert_eq!(tree[3]["mode"], "120000");
    assert_eq!(tree[3]["sha"], "fb8889aa0e875da9d29cbb51155974586b8a64c5");
    let blob = send("GET", tree[1]["url"].as_str().expect("url"), Some(&auth), None).await;
    assert_eq!(blob.json["encoding"], "base64");
    let encoded = blob.json["content"].as_str().expect("content");
    assert!(encoded.lines().all(|l| l.len() <= 60) && encoded.ends_with('\n') && encoded.lines().count() == 3);
    let link = send("GET", tree[3]["url"].as_str().expect("url"), Some(&auth), None).await;
    assert_eq!(link.json["size"], 7);
}

#[tokio::test]
async fn check_run_validation_rejects_51_annotations() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let annotations: Vec<Value> = (0..51).map(annotation).collect();
    let r = create_run(
        &gh,
        &auth,
        json!({ "name": "evalgate", "head_sha": "b".repeat(40),
        "output": { "title": "t", "summary": "s", "annotations": annotations } }),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.json["message"].as_str().unwrap_or("").contains("No more than 50 items"), "{}", r.json);
    assert!(gh.check_runs(REPO).is_empty());
}

#[tokio::test]
async fn check_run_validation_rejects_a_65536_char_summary() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let ok = create_run(
        &gh,
        &auth,
        json!({ "name": "evalgate", "head_sha": "b".repeat(40),
        "output": { "title": "t", "summary": "s".repeat(65535) } }),
    )
    .await;
    assert_eq!(ok.status, 201);
    let r = create_run(
        &gh,
        &auth,
        json!({ "name": "evalgate", "head_sha": "b".repeat(40),
        "output": { "title": "t", "summary": "s".repeat(65536) } }),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.json["message"].as_str().unwrap_or("").contains("Only 65535 characters are allowed"));
    // GitHub also counts bytes: 20,000 four-byte characters are too many.
    let r = create_run(
        &gh,
        &auth,
        json!({ "name": "evalgate", "head_sha": "b".repeat(40),
        "output": { "title": "t", "summary": "🙂".repeat(20_000) } }),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["message"], "Validation Failed");
}

#[tokio::test]
async fn check_run_validation_rejects_completed_without_conclusion() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let r =
        create_run(&gh, &auth, json!({ "name": "evalgate", "head_sha": "b".repeat(40), "status": "completed" })).await;
    assert_eq!(r.status, 422);
    assert!(r.json["message"].as_str().unwrap_or("").contains("\"conclusion\" wasn't supplied"), "{}", r.json);
}

#[tokio::test]
async fn check_run_validation_rejects_an_unknown_conclusion() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let r =
        create_run(&gh, &auth, json!({ "name": "evalgate", "head_sha": "b".repeat(40), "conclusion": "passed" })).await;
    assert_eq!(r.status, 422);
    assert!(r.json["message"].as_str().unwrap_or("").starts_with("Invalid request."));
}

#[tokio::test]
async fn check_run_validation_rejects_missing_name_and_unknown_sha() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let r = create_run(&gh, &auth, json!({ "head_sha": "b".repeat(40) })).await;
    assert_eq!(r.status, 422);
    let r = create_run(&gh, &auth, json!({ "name": "evalgate", "head_sha": "f".repeat(40) })).await;
    assert_eq!(r.status, 422);
    assert!(r.json["message"].as_str().unwrap_or("").starts_with("No commit found for SHA"));
}

#[tokio::test]
async fn malformed_json_is_a_400_and_a_huge_body_a_413() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let client = reqwest::Client::new();
    let url = format!("{}/repos/{REPO}/check-runs", gh.url());
    let r = client.post(&url).header("authorization", &auth).body("{not json").send().await.expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
    assert_eq!(body["message"], "Problems parsing JSON");
    let r =
        client.post(&url).header("authorization", &auth).body(vec![b' '; (1 << 20) + 1]).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 413);
}

#[tokio::test]
async fn annotations_append_across_patch() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let first: Vec<Value> = (0..50).map(annotation).collect();
    let r = create_run(
        &gh,
        &auth,
        json!({ "name": "evalgate", "head_sha": "b".repeat(40), "status": "in_progress",
        "output": { "title": "Running", "summary": "1/2", "annotations": first } }),
    )
    .await;
    assert_eq!(r.status, 201);
    let id = r.json["id"].as_u64().expect("id");
    let second: Vec<Value> = (50..60).map(annotation).collect();
    let url = format!("{}/repos/{REPO}/check-runs/{id}", gh.url());
    let r = send(
        "PATCH",
        &url,
        Some(&auth),
        Some(json!({ "conclusion": "success",
        "output": { "title": "Done", "summary": "2/2", "annotations": second } })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["output"]["annotations_count"], 60);
    assert_eq!(r.json["status"], "completed");
    let run = &gh.check_runs(REPO)[0];
    assert_eq!(run.annotations.len(), 60);
    assert_eq!(run.annotations[59]["message"], "finding 59");
    assert_eq!((run.title.as_str(), run.summary.as_str()), ("Done", "2/2"));
    assert_eq!(run.statuses_seen, ["in_progress", "completed"]);
    assert_eq!(run.updates, 1);
}

#[tokio::test]
async fn failure_injection_returns_502_then_recovers() {
    let gh = fake().await;
    let auth = token(&gh).await;
    gh.fail("POST /repos/*/*/check-runs", 1, Failure::Status(502));
    let body = json!({ "name": "evalgate", "head_sha": "b".repeat(40) });
    let r = create_run(&gh, &auth, body.clone()).await;
    assert_eq!(r.status, 502);
    assert!(gh.check_runs(REPO).is_empty(), "the real handler did not run");
    let r = create_run(&gh, &auth, body).await;
    assert_eq!(r.status, 201);
    assert_eq!(gh.check_runs(REPO).len(), 1);
    let statuses: Vec<u16> =
        gh.requests().iter().filter(|q| q.path.ends_with("/check-runs")).map(|q| q.status).collect();
    assert_eq!(statuses, [502, 201]);
}

#[tokio::test]
async fn secondary_rate_limit_carries_retry_after() {
    let gh = fake().await;
    let auth = token(&gh).await;
    gh.fail("* *", 1, Failure::SecondaryRateLimit { retry_after_secs: 7 });
    let r = send("GET", &format!("{}/repos/{REPO}/pulls/1", gh.url()), Some(&auth), None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert!(r.json["message"].as_str().unwrap_or("").starts_with("You have exceeded a secondary rate limit"));
    assert_ne!(r.header("x-ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn primary_rate_limit_has_zero_remaining_and_a_reset() {
    let gh = fake().await;
    let auth = token(&gh).await;
    gh.fail("GET /repos/**", 1, Failure::PrimaryRateLimit { reset_in_secs: 30 });
    let r = send("GET", &format!("{}/repos/{REPO}/pulls/1", gh.url()), Some(&auth), None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let reset: i64 = r.header("x-ratelimit-reset").and_then(|v| v.parse().ok()).expect("reset");
    assert!((reset - now() - 30).abs() <= 2);
    assert!(r.json["message"].as_str().unwrap_or("").contains(&format!("installation ID {INSTALLATION}")));
}

#[tokio::test]
async fn wait_for_wakes_on_a_state_change() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let url = format!("{}/repos/{REPO}/issues/1/comments", gh.url());
    let poster = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send("POST", &url, Some(&auth), Some(json!({ "body": "evalgate: 3 regressions" }))).await.status
    });
    let started = Instant::now();
    let comment = gh.wait_for(Duration::from_secs(10), |g| g.comments(REPO, 1).into_iter().next()).await;
    let comment = comment.expect("woken by the new comment");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(comment.author, "evalgate[bot]");
    assert_eq!(poster.await.expect("join"), 201);
    assert!(gh.wait_for(Duration::from_millis(100), |g| (g.comments(REPO, 1).len() > 1).then_some(())).await.is_none());
}

#[tokio::test]
async fn comments_paginate_and_edits_are_counted() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let url = format!("{}/repos/{REPO}/issues/1/comments", gh.url());
    let mut id = 0;
    for i in 0..3 {
        let r = send("POST", &url, Some(&auth), Some(json!({ "body": format!("c{i}") }))).await;
        assert_eq!(r.status, 201);
        assert_eq!(r.json["user"]["type"], "Bot");
        id = r.json["id"].as_u64().expect("id");
    }
    let r = send("GET", &format!("{url}?per_page=2&page=2"), Some(&auth), None).await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(1));
    let edit = format!("{}/repos/{REPO}/issues/comments/{id}", gh.url());
    let r = send("PATCH", &edit, Some(&auth), Some(json!({ "body": "c2 edited" }))).await;
    assert_eq!(r.status, 200);
    let too_long = send("POST", &url, Some(&auth), Some(json!({ "body": "x".repeat(65537) }))).await;
    assert_eq!(too_long.status, 422);
    let last = gh.comments(REPO, 1).pop().expect("comment");
    assert_eq!((last.body.as_str(), last.edits), ("c2 edited", 1));
}

#[tokio::test]
async fn permission_maps_roles_like_github() {
    let gh = fake().await;
    gh.set_permission(REPO, "bob", "maintain");
    gh.set_permission(REPO, "carol", "triage");
    let auth = token(&gh).await;
    for (user, permission, role) in [
        ("bob", "write", "maintain"),
        ("carol", "read", "triage"),
        ("mallory", "none", "none"),
        ("acme", "admin", "admin"),
    ] {
        let r =
            send("GET", &format!("{}/repos/{REPO}/collaborators/{user}/permission", gh.url()), Some(&auth), None).await;
        assert_eq!((r.json["permission"].as_str(), r.json["role_name"].as_str()), (Some(permission), Some(role)));
    }
}

#[tokio::test]
async fn check_payloads_list_no_pull_requests_for_forks() {
    let gh = fake().await;
    gh.add_commit(REPO, &"e".repeat(40), BTreeMap::new());
    gh.open_pr(
        REPO,
        PrSpec {
            number: 2,
            base_sha: "a".repeat(40),
            head_sha: "e".repeat(40),
            base_ref: "main".into(),
            head_ref: "main".into(),
            body: Some("from a fork".into()),
            author: "mallory".into(),
            fork: true,
        },
    );
    let auth = token(&gh).await;
    let mut ids = Vec::new();
    for sha in ["b".repeat(40), "e".repeat(40)] {
        let r = create_run(&gh, &auth, json!({ "name": "evalgate", "head_sha": sha })).await;
        ids.push(r.json["id"].as_u64().expect("id"));
    }
    let own = gh.check_run_event(REPO, ids[0], "requested_action", Some("override"), "alice");
    assert_eq!(own["check_run"]["pull_requests"][0]["number"], 1);
    assert_eq!(own["requested_action"]["identifier"], "override");
    assert_eq!(own["installation"]["id"], INSTALLATION);
    let fork = gh.check_run_event(REPO, ids[1], "rerequested", None, "mallory");
    assert_eq!(fork["check_run"]["pull_requests"], json!([]));
    let suite = gh.check_suite_event(REPO, &"e".repeat(40), "rerequested", "mallory");
    assert_eq!(suite["check_suite"]["pull_requests"], json!([]));
    let pr = gh.pull_request_event(REPO, 2, "opened");
    assert_eq!(pr["pull_request"]["head"]["repo"]["full_name"], "mallory/agents");
    assert_eq!(pr["pull_request"]["head"]["repo"]["fork"], true);
    let comment = gh.issue_comment_event(REPO, 2, "/evalgate rerun", "mallory");
    assert_eq!(comment["issue"]["pull_request"]["url"], format!("{}/repos/{REPO}/pulls/2", gh.url()));
    assert_eq!(gh.comments(REPO, 2).len(), 1);
}

// --- git data, refs and pull requests ------------------------------------------------------------

const PROMPT: &str = "bundles/demo/prompt.md";

async fn api(gh: &FakeGitHub, auth: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    send(method, &format!("{}/repos/{REPO}/{path}", gh.url()), Some(auth), body).await
}

/// Blob → tree on `parent`'s tree → commit on `parent`, all through the API; returns the commit.
async fn api_commit(gh: &FakeGitHub, auth: &str, parent: &str, path: &str, content: &str) -> String {
    let blob = api(gh, auth, "POST", "git/blobs", Some(json!({ "content": content, "encoding": "utf-8" }))).await;
    assert_eq!(blob.status, 201, "{}", blob.json);
    let base = api(gh, auth, "GET", &format!("git/commits/{parent}"), None).await;
    assert_eq!(base.status, 200, "{}", base.json);
    let tree = api(
        gh,
        auth,
        "POST",
        "git/trees",
        Some(json!({ "base_tree": base.json["tree"]["sha"],
                     "tree": [{ "path": path, "mode": "100644", "type": "blob", "sha": blob.json["sha"] }] })),
    )
    .await;
    assert_eq!(tree.status, 201, "{}", tree.json);
    let commit = api(
        gh,
        auth,
        "POST",
        "git/commits",
        Some(json!({ "message": format!("Bump {path}"), "tree": tree.json["sha"], "parents": [parent] })),
    )
    .await;
    assert_eq!(commit.status, 201, "{}", commit.json);
    commit.json["sha"].as_str().expect("sha").to_string()
}

/// A branch `evalgate/pin-bump/{name}` off main with one API commit, and a PR from it.
async fn pin_bump_pr(gh: &FakeGitHub, auth: &str, name: &str) -> (u64, String) {
    let sha = api_commit(gh, auth, &"a".repeat(40), PROMPT, &format!("pinned {name}\n")).await;
    let branch = format!("evalgate/pin-bump/{name}");
    let r = api(gh, auth, "POST", "git/refs", Some(json!({ "ref": format!("refs/heads/{branch}"), "sha": sha }))).await;
    assert_eq!(r.status, 201, "{}", r.json);
    let r = api(
        gh,
        auth,
        "POST",
        "pulls",
        Some(json!({ "title": format!("Bump {name}"), "head": branch, "base": "main", "body": "pins" })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
    (r.json["number"].as_u64().expect("number"), sha)
}

#[tokio::test]
async fn blob_tree_commit_ref_and_pr_round_trip() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let main = "a".repeat(40);
    let repo = api(&gh, &auth, "GET", "", None).await;
    assert_eq!(repo.json["default_branch"], "main");
    let head = api(&gh, &auth, "GET", "git/ref/heads/main", None).await;
    assert_eq!((head.status, head.json["object"]["sha"].as_str()), (200, Some(main.as_str())));
    assert_eq!(head.json["ref"], "refs/heads/main");

    let blob = api(&gh, &auth, "POST", "git/blobs", Some(json!({ "content": "djMK", "encoding": "base64" }))).await;
    assert_eq!((blob.status, blob.json["sha"].as_str()), (201, Some(blob_sha(b"v3\n").as_str())));
    let base = api(&gh, &auth, "GET", &format!("git/commits/{main}"), None).await;
    let tree = api(
        &gh,
        &auth,
        "POST",
        "git/trees",
        Some(json!({ "base_tree": base.json["tree"]["sha"],
                     "tree": [{ "path": PROMPT, "mode": "100644", "type": "blob", "sha": blob.json["sha"] }] })),
    )
    .await;
    assert_eq!((tree.status, tree.json["truncated"].as_bool()), (201, Some(false)));
    let commit = api(
        &gh,
        &auth,
        "POST",
        "git/commits",
        Some(json!({ "message": "Bump demo", "tree": tree.json["sha"], "parents": [main],
                     "author": { "name": "evalgate", "email": "bot@example.com", "date": "2025-01-02T03:04:05Z" } })),
    )
    .await;
    assert_eq!(commit.status, 201, "{}", commit.json);
    assert_eq!(commit.json["parents"][0]["sha"], main);
    assert_eq!(commit.json["tree"]["sha"], tree.json["sha"]);
    assert_eq!(commit.json["author"]["date"], "2025-01-02T03:04:05Z");
    let sha = commit.json["sha"].as_str().expect("sha").to_string();
    let again = api(&gh, &auth, "GET", &format!("git/commits/{sha}"), None).await;
    assert_eq!((again.status, &again.json["message"]), (200, &json!("Bump demo")));

    let r =
        api(&gh, &auth, "POST", "git/refs", Some(json!({ "ref": "refs/heads/evalgate/pin-bump/demo", "sha": sha })))
            .await;
    assert_eq!((r.status, r.json["object"]["sha"].as_str()), (201, Some(sha.as_str())));
    let pr = api(
        &gh,
        &auth,
        "POST",
        "pulls",
        Some(json!({ "title": "Bump demo", "head": "acme:evalgate/pin-bump/demo", "base": "main", "body": "why",
                     "draft": false, "maintainer_can_modify": true })),
    )
    .await;
    assert_eq!(pr.status, 201, "{}", pr.json);
    assert_eq!(pr.json["number"], 2, "numbering continues after the fixture PR #1");
    assert_eq!((pr.json["state"].as_str(), pr.json["merged"].as_bool()), (Some("open"), Some(false)));
    assert_eq!(
        (pr.json["head"]["ref"].as_str(), pr.json["head"]["sha"].as_str()),
        (Some("evalgate/pin-bump/demo"), Some(sha.as_str()))
    );
    assert_eq!((pr.json["base"]["ref"].as_str(), pr.json["base"]["sha"].as_str()), (Some("main"), Some(main.as_str())));
    assert_eq!(pr.json["user"]["login"], "evalgate[bot]");
    assert_eq!(pr.json["html_url"], format!("https://github.com/{REPO}/pull/2"));
    let files = api(&gh, &auth, "GET", "pulls/2/files", None).await;
    let names: Vec<&str> =
        files.json.as_array().expect("files").iter().filter_map(|f| f["filename"].as_str()).collect();
    assert_eq!(names, [PROMPT]);
    let run = create_run(&gh, &auth, json!({ "name": "evalgate", "head_sha": sha })).await;
    assert_eq!(run.status, 201, "check runs work on API commits");
    let info = gh.commit_info(REPO, &sha).expect("commit");
    assert!(info.by_app);
    assert_eq!((info.author_name.as_str(), info.parents.clone()), ("evalgate", vec![main.clone()]));
    assert_eq!(gh.file_at(REPO, &sha, PROMPT), Some(b"v3\n".to_vec()));
    assert_eq!(gh.branch_head(REPO, "evalgate/pin-bump/demo"), Some(sha));
    let pulls = gh.pulls(REPO);
    assert_eq!(
        (pulls[1].number, pulls[1].body.as_deref(), pulls[1].author.as_str()),
        (2, Some("why"), "evalgate[bot]")
    );
}

#[tokio::test]
async fn a_second_pull_request_for_the_same_head_is_422() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let (number, _) = pin_bump_pr(&gh, &auth, "x").await;
    let body = json!({ "title": "again", "head": "evalgate/pin-bump/x", "base": "main" });
    let r = api(&gh, &auth, "POST", "pulls", Some(body)).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["message"], "Validation Failed");
    assert_eq!(
        r.json["errors"],
        json!([{ "resource": "PullRequest", "code": "custom",
                 "message": "A pull request already exists for acme:evalgate/pin-bump/x." }])
    );
    assert_eq!(gh.pulls(REPO).len(), 2);
    // Once it is closed, a new one may be opened.
    let r = api(&gh, &auth, "PATCH", &format!("pulls/{number}"), Some(json!({ "state": "closed" }))).await;
    assert_eq!((r.status, r.json["state"].as_str()), (200, Some("closed")));
    let r =
        api(&gh, &auth, "POST", "pulls", Some(json!({ "title": "t", "head": "evalgate/pin-bump/x", "base": "main" })))
            .await;
    assert_eq!(r.status, 201, "{}", r.json);
}

#[tokio::test]
async fn pull_requests_need_an_existing_branch_with_commits_ahead() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let main = "a".repeat(40);
    let r = api(&gh, &auth, "POST", "git/refs", Some(json!({ "ref": "refs/heads/empty", "sha": main }))).await;
    assert_eq!(r.status, 201);
    let r = api(&gh, &auth, "POST", "pulls", Some(json!({ "title": "t", "head": "empty", "base": "main" }))).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["errors"][0]["message"], "No commits between main and empty");
    let r = api(&gh, &auth, "POST", "pulls", Some(json!({ "title": "t", "head": "nope", "base": "main" }))).await;
    assert_eq!((r.status, &r.json["errors"][0]["field"]), (422, &json!("head")));
    let r = api(&gh, &auth, "POST", "pulls", Some(json!({ "title": "t", "head": "empty" }))).await;
    assert_eq!(r.status, 422);
    assert!(r.json["message"].as_str().unwrap_or("").contains("\"base\" wasn't supplied"), "{}", r.json);
    assert_eq!(gh.pulls(REPO).len(), 1);
}

#[tokio::test]
async fn ref_updates_must_fast_forward_unless_forced_and_the_pr_follows() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let (number, first) = pin_bump_pr(&gh, &auth, "y").await;
    // A sibling of `first` (both on main): not a fast-forward.
    let sibling = api_commit(&gh, &auth, &"a".repeat(40), PROMPT, "other\n").await;
    let path = "git/refs/heads/evalgate/pin-bump/y";
    let r = api(&gh, &auth, "PATCH", path, Some(json!({ "sha": sibling }))).await;
    assert_eq!((r.status, &r.json["message"]), (422, &json!("Update is not a fast forward")));
    let r = api(&gh, &auth, "PATCH", path, Some(json!({ "sha": sibling, "force": false }))).await;
    assert_eq!(r.status, 422);
    assert_eq!(gh.branch_head(REPO, "evalgate/pin-bump/y").as_deref(), Some(first.as_str()));
    let r = api(&gh, &auth, "PATCH", path, Some(json!({ "sha": sibling, "force": true }))).await;
    assert_eq!((r.status, r.json["object"]["sha"].as_str()), (200, Some(sibling.as_str())));
    let pr = api(&gh, &auth, "GET", &format!("pulls/{number}"), None).await;
    assert_eq!(pr.json["head"]["sha"], sibling);
    let event = gh.pull_request_event(REPO, number, "synchronize");
    assert_eq!((event["before"].as_str(), event["after"].as_str()), (Some(first.as_str()), Some(sibling.as_str())));
    // A child of the head is a fast-forward.
    let child = api_commit(&gh, &auth, &sibling, "README.md", "more\n").await;
    let r = api(&gh, &auth, "PATCH", path, Some(json!({ "sha": child }))).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(gh.pulls(REPO)[1].head_sha, child);
}

#[tokio::test]
async fn listing_pulls_filters_by_head_and_state() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let (x, _) = pin_bump_pr(&gh, &auth, "x").await;
    let (y, _) = pin_bump_pr(&gh, &auth, "y").await;
    gh.close_pull(REPO, y, false);
    let numbers = |r: &Reply| -> Vec<u64> {
        r.json.as_array().expect("array").iter().filter_map(|p| p["number"].as_u64()).collect()
    };
    let open = api(&gh, &auth, "GET", "pulls", None).await;
    assert_eq!(numbers(&open), [x, 1], "open by default, newest first");
    let closed = api(&gh, &auth, "GET", "pulls?state=closed", None).await;
    assert_eq!(numbers(&closed), [y]);
    let head = api(&gh, &auth, "GET", "pulls?state=all&head=acme:evalgate/pin-bump/y&base=main", None).await;
    assert_eq!(numbers(&head), [y]);
    let none = api(&gh, &auth, "GET", "pulls?state=open&head=acme:evalgate/pin-bump/y", None).await;
    assert_eq!(numbers(&none), Vec::<u64>::new());
    let page = api(&gh, &auth, "GET", "pulls?state=all&per_page=1&page=2", None).await;
    assert_eq!(numbers(&page), [x]);
    assert!(page.header("link").unwrap_or("").contains("rel=\"next\""));
    let bad = api(&gh, &auth, "GET", "pulls?state=merged", None).await;
    assert_eq!(bad.status, 422);
    // Fixture PRs opened with number 0 take the next free number.
    let n = gh.open_pr(
        REPO,
        PrSpec {
            base_sha: "a".repeat(40),
            head_sha: "b".repeat(40),
            head_ref: "later".into(),
            base_ref: "main".into(),
            ..PrSpec::default()
        },
    );
    assert_eq!(n, y + 1);
}

#[tokio::test]
async fn a_human_push_is_not_by_the_app_and_moves_the_pr() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let (number, bot_sha) = pin_bump_pr(&gh, &auth, "z").await;
    let files = BTreeMap::from([("NOTES.md".to_string(), b"mine\n".to_vec())]);
    let sha = gh.human_push(REPO, "evalgate/pin-bump/z", files);
    let info = gh.commit_info(REPO, &sha).expect("commit");
    assert!(!info.by_app);
    assert_eq!((info.author_name.as_str(), info.parents.clone()), ("alex", vec![bot_sha.clone()]));
    assert!(gh.commit_info(REPO, &bot_sha).expect("bot commit").by_app);
    assert_eq!(gh.file_at(REPO, &sha, "NOTES.md"), Some(b"mine\n".to_vec()));
    assert_eq!(gh.file_at(REPO, &sha, PROMPT), Some(b"pinned z\n".to_vec()), "the rest of the tree is kept");
    let pr = api(&gh, &auth, "GET", &format!("pulls/{number}"), None).await;
    assert_eq!(pr.json["head"]["sha"], sha);
    let commit = api(&gh, &auth, "GET", &format!("git/commits/{sha}"), None).await;
    assert_eq!(commit.json["author"]["name"], "alex");
    assert_eq!(commit.json["verification"]["verified"], false);
}

#[tokio::test]
async fn a_tree_on_a_base_tree_keeps_other_files_byte_for_byte() {
    let gh = fake().await;
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 13, 10]).collect();
    let base = "c".repeat(40);
    let files = BTreeMap::from([
        ("bin/data.bin".to_string(), binary.clone()),
        ("docs/a/deep.md".to_string(), b"deep\r\n".to_vec()),
        ("old.txt".to_string(), b"gone\n".to_vec()),
        ("keep.txt".to_string(), b"keep\n".to_vec()),
    ]);
    gh.add_commit(REPO, &base, files.clone());
    gh.add_executable(REPO, &base, "run.sh", b"#!/bin/sh\n");
    gh.add_symlink(REPO, &base, "link", "keep.txt");
    let auth = token(&gh).await;
    let before = api(&gh, &auth, "GET", &format!("git/trees/{base}?recursive=1"), None).await;
    let r = api(
        &gh,
        &auth,
        "POST",
        "git/trees",
        Some(json!({ "base_tree": before.json["sha"], "tree": [
            { "path": "keep.txt", "mode": "100644", "type": "blob", "content": "changed\n" },
            { "path": "old.txt", "mode": "100644", "type": "blob", "sha": null },
        ] })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let top: Vec<&str> = r.json["tree"].as_array().expect("tree").iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(top, ["bin", "docs", "keep.txt", "link", "run.sh"]);
    let after =
        api(&gh, &auth, "GET", &format!("git/trees/{}?recursive=1", r.json["sha"].as_str().expect("sha")), None).await;
    assert_eq!(after.status, 200);
    let entry = |tree: &Value, path: &str| -> Value {
        tree["tree"].as_array().expect("tree").iter().find(|e| e["path"] == path).cloned().unwrap_or(Value::Null)
    };
    for path in ["bin", "bin/data.bin", "docs", "docs/a/deep.md", "run.sh", "link"] {
        let (old, new) = (entry(&before.json, path), entry(&after.json, path));
        assert_eq!((&old["sha"], &old["mode"]), (&new["sha"], &new["mode"]), "{path}");
    }
    assert_eq!(entry(&after.json, "old.txt"), Value::Null);
    let blob = send("GET", entry(&after.json, "bin/data.bin")["url"].as_str().expect("url"), Some(&auth), None).await;
    let content: String = blob.json["content"].as_str().expect("content").split_whitespace().collect();
    assert_eq!(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, content).expect("b64"), binary);
    // The same files built by `add_commit` hash to the same tree.
    let mut expected = files;
    expected.remove("old.txt");
    expected.insert("keep.txt".into(), b"changed\n".to_vec());
    gh.add_commit(REPO, &"d".repeat(40), expected);
    gh.add_executable(REPO, &"d".repeat(40), "run.sh", b"#!/bin/sh\n");
    gh.add_symlink(REPO, &"d".repeat(40), "link", "keep.txt");
    let same = api(&gh, &auth, "GET", &format!("git/trees/{}", "d".repeat(40)), None).await;
    assert_eq!(same.json["sha"], r.json["sha"]);
}

#[tokio::test]
async fn deleting_a_branch_is_204_and_closes_its_pull_request() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let (number, _) = pin_bump_pr(&gh, &auth, "d").await;
    let r = api(&gh, &auth, "DELETE", "git/refs/heads/evalgate/pin-bump/d", None).await;
    assert_eq!(r.status, 204);
    assert_eq!(gh.branch_head(REPO, "evalgate/pin-bump/d"), None);
    assert_eq!(api(&gh, &auth, "GET", "git/ref/heads/evalgate/pin-bump/d", None).await.status, 404);
    assert_eq!(gh.pulls(REPO)[1].state, "closed");
    let r = api(&gh, &auth, "DELETE", "git/refs/heads/evalgate/pin-bump/d", None).await;
    assert_eq!((r.status, &r.json["message"]), (422, &json!("Reference does not exist")));
    let r = api(&gh, &auth, "PATCH", &format!("pulls/{number}"), Some(json!({ "state": "open" }))).await;
    assert_eq!(r.status, 422, "no branch to reopen from");
}

#[tokio::test]
async fn bad_git_data_requests_are_githubs_422s() {
    let gh = fake().await;
    let auth = token(&gh).await;
    let main = "a".repeat(40);
    let bad_blob = format!("tree.sha {} is not a valid blob", "f".repeat(40));
    let cases = [
        ("git/refs", json!({ "ref": "refs/heads/main", "sha": main }), "Reference already exists"),
        ("git/refs", json!({ "ref": "refs/heads/new", "sha": "f".repeat(40) }), "Object does not exist"),
        ("git/refs", json!({ "ref": "refs/heads/a..b", "sha": main }), "refs/heads/a..b is not a valid ref name."),
        (
            "git/refs",
            json!({ "ref": "main", "sha": main }),
            "Reference name must contain at least three slash-separated components.",
        ),
        ("git/commits", json!({ "message": "m", "tree": "f".repeat(40) }), "Tree SHA does not exist"),
        ("git/trees", json!({ "base_tree": "f".repeat(40), "tree": [] }), "base_tree is not a valid tree oid"),
        (
            "git/trees",
            json!({ "tree": [{ "path": "../x", "mode": "100644", "type": "blob", "content": "x" }] }),
            "tree.path contains a malformed path component",
        ),
        (
            "git/trees",
            json!({ "tree": [{ "path": "x", "mode": "100644", "type": "blob", "sha": "f".repeat(40) }] }),
            bad_blob.as_str(),
        ),
    ];
    for (path, body, message) in cases {
        let r = api(&gh, &auth, "POST", path, Some(body.clone())).await;
        assert_eq!((r.status, r.json["message"].as_str()), (422, Some(message)), "{path} {body}");
    }
    let tree = api(&gh, &auth, "POST", "git/trees", Some(json!({ "tree": [] }))).await;
    let r = api(
        &gh,
        &auth,
        "POST",
        "git/commits",
        Some(json!({ "message": "m", "tree": tree.json["sha"], "parents": ["f".repeat(40)] })),
    )
    .await;
    assert_eq!(r.json["message"], "Parent SHA does not exist or is not a commit object");
    for (method, path, body) in [
        ("POST", "git/blobs", json!({ "content": "x", "encoding": "latin1" })),
        ("POST", "git/blobs", json!({ "content": "!!!", "encoding": "base64" })),
        ("POST", "git/trees", json!({ "tree": "nope" })),
        ("POST", "git/commits", json!({ "tree": tree.json["sha"] })),
        (
            "POST",
            "git/commits",
            json!({ "message": "m", "tree": tree.json["sha"], "author": { "name": "x", "email": "y", "date": "soon" } }),
        ),
        ("PATCH", "git/refs/heads/missing", json!({ "sha": main })),
        ("PATCH", "git/refs/heads/main", json!({ "sha": main, "force": "yes" })),
        ("POST", "pulls", json!({ "head": "change", "base": "main" })),
    ] {
        let r = api(&gh, &auth, method, path, Some(body.clone())).await;
        assert_eq!(r.status, 422, "{method} {path} {body}: {}", r.json);
    }
    let r = api(&gh, &auth, "POST", "git/refs", None).await;
    assert_eq!(r.status, 422, "an empty body names the missing fields");
    let unauthenticated =
        send("POST", &format!("{}/repos/{REPO}/git/blobs", gh.url()), None, Some(json!({ "content": "x" }))).await;
    assert_eq!(unauthenticated.status, 401);
}
