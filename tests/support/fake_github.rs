//! A stateful fake of GitHub's REST API (v3) on loopback, for end-to-end tests of `evalgate serve`.
//!
//! It is a fake of *GitHub*, not a mock of our own code: it speaks GitHub's wire shapes, checks App
//! JWTs (RS256, with the test public key) and installation tokens, validates check runs and
//! comments with GitHub's limits, paginates with absolute `Link` URLs, and builds webhook payloads
//! from its own state. Tests drive it in domain verbs (`open_pr`, `push`, `fail`) and observe what
//! the app did (`check_runs`, `comments`, `requests`), waiting on state changes with `wait_for`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

#[path = "fake_github_manifest.rs"]
mod manifest;

/// Largest request body GitHub's fake accepts; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Login of the App's bot user (comments made through the API are authored by it).
pub const BOT_LOGIN: &str = "evalgate[bot]";
const APP_SLUG: &str = "evalgate";
const RATE_LIMIT: u64 = 5000;
const FILES_LISTING_CAP: usize = 3000;
const TREE_ENTRIES_CAP: usize = 100_000;
const MAX_OUTPUT_CHARS: usize = 65535;
const MAX_ANNOTATIONS_PER_REQUEST: usize = 50;
const MAX_ANNOTATION_MESSAGE_BYTES: usize = 64 * 1024;
const MAX_COMMENT_CHARS: usize = 65536;
const DOCS: &str = "https://docs.github.com/rest";
const DOCS_CREATE_CHECK_RUN: &str = "https://docs.github.com/rest/checks/runs#create-a-check-run";
const DOCS_UPDATE_CHECK_RUN: &str = "https://docs.github.com/rest/checks/runs#update-a-check-run";
const CHECK_STATUSES: &[&str] = &["queued", "in_progress", "completed", "waiting", "requested", "pending"];
const CHECK_CONCLUSIONS: &[&str] =
    &["action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"];
const ANNOTATION_LEVELS: &[&str] = &["notice", "warning", "failure"];
const DOCS_CREATE_BLOB: &str = "https://docs.github.com/rest/git/blobs#create-a-blob";
const DOCS_CREATE_TREE: &str = "https://docs.github.com/rest/git/trees#create-a-tree";
const DOCS_CREATE_COMMIT: &str = "https://docs.github.com/rest/git/commits#create-a-commit";
const DOCS_GET_REF: &str = "https://docs.github.com/rest/git/refs#get-a-reference";
const DOCS_CREATE_REF: &str = "https://docs.github.com/rest/git/refs#create-a-reference";
const DOCS_UPDATE_REF: &str = "https://docs.github.com/rest/git/refs#update-a-reference";
const DOCS_DELETE_REF: &str = "https://docs.github.com/rest/git/refs#delete-a-reference";
const DOCS_CREATE_PULL: &str = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";
const DOCS_UPDATE_PULL: &str = "https://docs.github.com/rest/pulls/pulls#update-a-pull-request";
const DOCS_LIST_PULLS: &str = "https://docs.github.com/rest/pulls/pulls#list-pull-requests";

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// A pull request to open in the fake.
#[derive(Clone, Debug, Default)]
pub struct PrSpec {
    pub number: u64,
    pub base_sha: String,
    pub head_sha: String,
    pub base_ref: String,
    pub head_ref: String,
    pub body: Option<String>,
    pub author: String,
    /// Head lives in `{author}/{name}`, a fork of the base repository.
    pub fork: bool,
}

/// A check run as the fake stores it.
#[derive(Clone, Debug)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    /// `output.title`; empty when no output was sent.
    pub title: String,
    /// `output.summary`; empty when no output was sent.
    pub summary: String,
    /// `output.text`; empty when absent or null.
    pub text: String,
    /// Every annotation sent, appended across requests.
    pub annotations: Vec<Value>,
    /// Empty when never set.
    pub details_url: String,
    /// Empty when never set (GitHub answers `""` too).
    pub external_id: String,
    pub actions: Vec<Value>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub check_suite_id: u64,
    /// Number of PATCHes that changed it.
    pub updates: usize,
    /// Every status it passed through, in order (consecutive repeats collapsed).
    pub statuses_seen: Vec<String>,
    /// Every conclusion it showed, in order (consecutive repeats collapsed).
    pub conclusions_seen: Vec<String>,
}

/// An issue (PR) comment.
#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub author: String,
    /// Number of PATCHes of it.
    pub edits: usize,
    /// Reactions added through the API (`+1`, `eyes`, …).
    pub reactions: Vec<String>,
}

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path with query, as sent.
    pub path: String,
    pub status: u16,
    /// The request carried valid credentials for what it asked (a valid App JWT on `/app/...`, a
    /// live installation token on `/repos/...`).
    pub authorized: bool,
    /// The body as sent, as text (empty when there was none or it was over the limit).
    pub body: String,
}

/// A commit as the fake stores it (see [`FakeGitHub::commit_info`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub sha: String,
    pub parents: Vec<String>,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// Made through the API with an installation token (by the App), not by a test helper.
    pub by_app: bool,
}

/// A pull request as the fake stores it (see [`FakeGitHub::pulls`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullInfo {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub head_ref: String,
    pub base_ref: String,
    pub head_sha: String,
    pub base_sha: String,
    /// "open" or "closed".
    pub state: String,
    pub merged: bool,
    pub draft: bool,
    /// Login of its author (`evalgate[bot]` for pull requests opened through the API).
    pub author: String,
}

/// What an injected failure answers instead of the real handler.
#[derive(Clone, Debug)]
pub enum Failure {
    /// That status with GitHub's body for it (HTML-ish for 502/503/504, JSON otherwise).
    Status(u16),
    /// 403 with `retry-after` and GitHub's secondary-rate-limit message.
    SecondaryRateLimit { retry_after_secs: u64 },
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` that far in the future.
    PrimaryRateLimit { reset_in_secs: u64 },
    /// Wait, then answer normally.
    Delay(Duration),
    /// The ambiguous failure: the request takes effect, then the answer is lost (this status,
    /// GitHub's body for it).
    AfterApplying(u16),
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Entry {
    mode: &'static str,
    content: Vec<u8>,
}

/// A file snapshot: the tree of a commit, or a tree made with `POST git/trees` (then `meta` is
/// unused).
#[derive(Clone, Debug, Default)]
struct Commit {
    entries: BTreeMap<String, Entry>,
    /// Directory path ("" for the root) → git tree sha.
    tree_shas: BTreeMap<String, String>,
    meta: CommitMeta,
}

#[derive(Clone, Debug, Default)]
struct Person {
    name: String,
    email: String,
    /// Unix seconds.
    date: u64,
}

#[derive(Clone, Debug, Default)]
struct CommitMeta {
    parents: Vec<String>,
    message: String,
    author: Person,
    committer: Person,
    by_app: bool,
}

fn fixture_meta() -> CommitMeta {
    let who = Person { name: "Fixture".into(), email: "fixture@example.com".into(), date: now_secs() };
    CommitMeta {
        parents: Vec::new(),
        message: "Fixture commit".into(),
        author: who.clone(),
        committer: who,
        by_app: false,
    }
}

#[derive(Clone, Debug)]
struct Pr {
    spec: PrSpec,
    id: u64,
    state: &'static str,
    title: String,
    created_at: String,
    updated_at: String,
    previous_head: Option<String>,
    previous_body: Option<Option<String>>,
    /// `(ref, sha)` of the base before the last [`FakeGitHub::retarget`], for `changes.base`.
    previous_base: Option<(String, String)>,
    draft: bool,
    maintainer_can_modify: bool,
    merged: bool,
    closed_at: Option<String>,
    merged_at: Option<String>,
}

#[derive(Clone, Debug)]
struct StoredComment {
    id: u64,
    issue: u64,
    body: String,
    author: String,
    created_at: String,
    updated_at: String,
    edits: usize,
    /// Reactions' `content`, in the order they were added.
    reactions: Vec<String>,
}

#[derive(Debug)]
struct Repo {
    id: u64,
    full_name: String,
    owner: String,
    name: String,
    installation_id: u64,
    default_branch: String,
    commits: HashMap<String, Commit>,
    blobs: HashMap<String, Vec<u8>>,
    /// Tree sha → (commit sha or `snapshots` key, directory path).
    trees: HashMap<String, (String, String)>,
    /// Trees made with `POST git/trees`, by root tree sha.
    snapshots: HashMap<String, Commit>,
    /// Full ref name (`refs/heads/main`) → commit sha.
    refs: BTreeMap<String, String>,
    prs: BTreeMap<u64, Pr>,
    permissions: HashMap<String, String>,
    check_runs: Vec<CheckRun>,
    check_suites: BTreeMap<String, u64>,
    comments: Vec<StoredComment>,
}

#[derive(Debug)]
struct TokenInfo {
    installation_id: u64,
    expires_at: u64,
}

#[derive(Clone, Debug)]
struct Injected {
    method: String,
    path: String,
    remaining: usize,
    failure: Failure,
}

#[derive(Debug)]
struct State {
    base_url: String,
    app_id: u64,
    repos: BTreeMap<String, Repo>,
    installations: BTreeSet<u64>,
    tokens: HashMap<String, TokenInfo>,
    token_exchanges: usize,
    requests: Vec<Request>,
    failures: Vec<Injected>,
    files_per_page_max: usize,
    rate_used: HashMap<Option<u64>, u64>,
    rate_reset: u64,
    next_id: u64,
    manifest: manifest::Flows,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(&full_name.to_ascii_lowercase())
    }

    fn repo_mut(&mut self, full_name: &str) -> Option<&mut Repo> {
        self.repos.get_mut(&full_name.to_ascii_lowercase())
    }

    fn installation_of_token(&self, token: &str) -> Option<u64> {
        self.tokens.get(token).filter(|t| t.expires_at > now_secs()).map(|t| t.installation_id)
    }
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
    key: DecodingKey,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The fake GitHub server. Dropping it stops the server.
pub struct FakeGitHub {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Test-facing API
// ---------------------------------------------------------------------------------------------

impl FakeGitHub {
    /// Starts the fake on 127.0.0.1 with an ephemeral port. `public_key_pem` verifies App JWTs.
    pub async fn start(app_id: u64, public_key_pem: &str) -> FakeGitHub {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).expect("fake_github: invalid RSA public key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("fake_github: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake_github: local_addr");
        let url = format!("http://{addr}");
        let state = State {
            base_url: url.clone(),
            app_id,
            repos: BTreeMap::new(),
            installations: BTreeSet::new(),
            tokens: HashMap::new(),
            token_exchanges: 0,
            requests: Vec::new(),
            failures: Vec::new(),
            files_per_page_max: 100,
            rate_used: HashMap::new(),
            rate_reset: now_secs() + 3600,
            next_id: 1000,
            manifest: Default::default(),
        };
        let shared = Arc::new(Shared { state: Mutex::new(state), notify: Notify::new(), key });
        let router = axum::Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeGitHub { url, shared, task }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.shared.lock());
        self.shared.notify.notify_waiters();
        out
    }

    fn with_repo<T>(&self, repo: &str, f: impl FnOnce(&mut Repo) -> T) -> T {
        self.with_state(|s| f(s.repo_mut(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"))))
    }

    /// Adds `owner/name`, installed under `installation_id`. Its owner is an admin of it.
    pub fn add_repo(&self, full_name: &str, installation_id: u64) {
        let (owner, name) = full_name.split_once('/').expect("fake_github: repo must be owner/name");
        self.with_state(|s| {
            let id = s.next_id();
            let mut permissions = HashMap::new();
            permissions.insert(owner.to_ascii_lowercase(), "admin".to_string());
            s.installations.insert(installation_id);
            s.repos.insert(
                full_name.to_ascii_lowercase(),
                Repo {
                    id,
                    full_name: full_name.to_string(),
                    owner: owner.to_string(),
                    name: name.to_string(),
                    installation_id,
                    default_branch: "main".to_string(),
                    commits: HashMap::new(),
                    blobs: HashMap::new(),
                    trees: HashMap::new(),
                    snapshots: HashMap::new(),
                    refs: BTreeMap::new(),
                    prs: BTreeMap::new(),
                    permissions,
                    check_runs: Vec::new(),
                    check_suites: BTreeMap::new(),
                    comments: Vec::new(),
                },
            );
        });
    }

    /// Sets the full tree of commit `sha` (regular files, mode 100644). Replaces an earlier one.
    pub fn add_commit(&self, repo: &str, sha: &str, files: BTreeMap<String, Vec<u8>>) {
        self.with_repo(repo, |r| {
            let entries = files.into_iter().map(|(p, content)| (p, Entry { mode: "100644", content })).collect();
            r.commits.insert(sha.to_string(), Commit { entries, tree_shas: BTreeMap::new(), meta: fixture_meta() });
            reindex_commit(r, sha);
        });
    }

    /// Adds a symlink `path` → `target` to commit `sha` (created empty if unknown).
    pub fn add_symlink(&self, repo: &str, sha: &str, path: &str, target: &str) {
        self.set_entry(repo, sha, path, "120000", target.as_bytes().to_vec());
    }

    /// Adds an executable file (mode 100755) to commit `sha` (created empty if unknown).
    pub fn add_executable(&self, repo: &str, sha: &str, path: &str, content: &[u8]) {
        self.set_entry(repo, sha, path, "100755", content.to_vec());
    }

    fn set_entry(&self, repo: &str, sha: &str, path: &str, mode: &'static str, content: Vec<u8>) {
        self.with_repo(repo, |r| {
            let commit = r
                .commits
                .entry(sha.to_string())
                .or_insert_with(|| Commit { meta: fixture_meta(), ..Commit::default() });
            commit.entries.insert(path.to_string(), Entry { mode, content });
            reindex_commit(r, sha);
        });
    }

    /// Opens a pull request and returns its number. Its commits need not exist (a missing commit
    /// is an empty tree). `number` 0 takes the next free number (shared with pull requests opened
    /// through the API); a number already taken panics. Sets `refs/heads/{base_ref}` to
    /// `base_sha` and, unless `fork`, `refs/heads/{head_ref}` to `head_sha`.
    pub fn open_pr(&self, repo: &str, mut pr: PrSpec) -> u64 {
        self.with_state(|s| {
            let id = s.next_id();
            let now = rfc3339(now_secs());
            let r = s.repo_mut(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
            if pr.number == 0 {
                pr.number = next_pr_number(r);
            }
            assert!(!r.prs.contains_key(&pr.number), "fake_github: PR {repo}#{} already exists", pr.number);
            r.refs.insert(format!("refs/heads/{}", pr.base_ref), pr.base_sha.clone());
            if !pr.fork {
                r.refs.insert(format!("refs/heads/{}", pr.head_ref), pr.head_sha.clone());
            }
            let number = pr.number;
            // A branch off the base: a head commit the test made without parents is its child.
            adopt_parent(r, &pr.head_sha, &pr.base_sha);
            let title = format!("Change #{number}");
            r.prs.insert(number, new_pr(pr, id, title, &now));
            number
        })
    }

    /// Moves the PR's head to `new_head_sha` (a `synchronize`), and its branch with it (unless
    /// it is a fork's), so other open PRs of that branch follow.
    pub fn push(&self, repo: &str, number: u64, new_head_sha: &str) {
        self.with_repo(repo, |r| {
            let pr = r.prs.get_mut(&number).unwrap_or_else(|| panic!("fake_github: unknown PR {repo}#{number}"));
            let old = std::mem::replace(&mut pr.spec.head_sha, new_head_sha.to_string());
            pr.previous_head = Some(old.clone());
            pr.updated_at = rfc3339(now_secs());
            let fork = pr.spec.fork;
            // A push adds commits on top of the old head.
            adopt_parent(r, new_head_sha, &old);
            let Some(pr) = r.prs.get_mut(&number) else { return };
            if !fork {
                let branch = pr.spec.head_ref.clone();
                move_branch(r, &branch, new_head_sha);
            }
        });
    }

    /// Sets the parents of commit `sha` (a merge, or a branch point the test chooses).
    pub fn set_parents(&self, repo: &str, sha: &str, parents: &[&str]) {
        self.with_repo(repo, |r| {
            let c = r.commits.get_mut(sha).unwrap_or_else(|| panic!("fake_github: unknown commit {sha}"));
            c.meta.parents = parents.iter().map(|p| p.to_string()).collect();
        });
    }

    /// Changes the PR's base branch (an `edited` with `changes.base`), as the base-branch
    /// selector on GitHub does.
    pub fn retarget(&self, repo: &str, number: u64, base_ref: &str) {
        self.with_repo(repo, |r| {
            let tip = r.refs.get(&format!("refs/heads/{base_ref}")).cloned();
            let tip = tip.unwrap_or_else(|| panic!("fake_github: unknown branch {base_ref}"));
            let pr = r.prs.get_mut(&number).unwrap_or_else(|| panic!("fake_github: unknown PR {repo}#{number}"));
            let old_ref = std::mem::replace(&mut pr.spec.base_ref, base_ref.to_string());
            let old_sha = std::mem::replace(&mut pr.spec.base_sha, tip);
            pr.previous_base = Some((old_ref, old_sha));
            pr.updated_at = rfc3339(now_secs());
        });
    }

    /// Points branch `branch` at `sha` (created if missing; no fast-forward check). Open pull
    /// requests from that branch follow it.
    pub fn set_branch(&self, repo: &str, branch: &str, sha: &str) {
        self.with_repo(repo, |r| move_branch(r, branch, sha));
    }

    /// The commit `refs/heads/{branch}` points at.
    pub fn branch_head(&self, repo: &str, branch: &str) -> Option<String> {
        self.shared.lock().repo(repo).and_then(|r| r.refs.get(&format!("refs/heads/{branch}")).cloned())
    }

    /// The bytes of `path` in commit, tree or branch `sha`.
    pub fn file_at(&self, repo: &str, sha: &str, path: &str) -> Option<Vec<u8>> {
        let s = self.shared.lock();
        let r = s.repo(repo)?;
        let (snapshot, dir) = resolve_snapshot(r, sha)?;
        let full = if dir.is_empty() { path.to_string() } else { format!("{dir}/{path}") };
        snapshot.entries.get(&full).map(|e| e.content.clone())
    }

    /// A commit's parents, message, author and whether the App made it through the API.
    pub fn commit_info(&self, repo: &str, sha: &str) -> Option<CommitInfo> {
        let s = self.shared.lock();
        let c = s.repo(repo)?.commits.get(sha)?;
        Some(CommitInfo {
            sha: sha.to_string(),
            parents: c.meta.parents.clone(),
            message: c.meta.message.clone(),
            author_name: c.meta.author.name.clone(),
            author_email: c.meta.author.email.clone(),
            by_app: c.meta.by_app,
        })
    }

    /// Every pull request of `repo` (fixtures and API-made), by number.
    pub fn pulls(&self, repo: &str) -> Vec<PullInfo> {
        let s = self.shared.lock();
        let Some(r) = s.repo(repo) else { return Vec::new() };
        r.prs
            .values()
            .map(|p| PullInfo {
                number: p.spec.number,
                title: p.title.clone(),
                body: p.spec.body.clone(),
                head_ref: p.spec.head_ref.clone(),
                base_ref: p.spec.base_ref.clone(),
                head_sha: p.spec.head_sha.clone(),
                base_sha: p.spec.base_sha.clone(),
                state: p.state.to_string(),
                merged: p.merged,
                draft: p.draft,
                author: p.spec.author.clone(),
            })
            .collect()
    }

    /// Closes pull request `number`, as merged or not (merging only marks it: no branch moves).
    pub fn close_pull(&self, repo: &str, number: u64, merged: bool) {
        self.with_pr(repo, number, |pr| {
            let now = rfc3339(now_secs());
            pr.state = "closed";
            pr.closed_at = Some(now.clone());
            if merged {
                pr.merged = true;
                pr.merged_at = Some(now);
            }
        });
    }

    /// A commit by a person ("alex", not the App) on top of `branch`'s head (a root commit when
    /// the branch is missing) with `files_changed` written over its tree; moves the branch (open
    /// PRs follow) and returns the new commit's sha.
    pub fn human_push(&self, repo: &str, branch: &str, files_changed: BTreeMap<String, Vec<u8>>) -> String {
        self.with_repo(repo, |r| {
            let parent = r.refs.get(&format!("refs/heads/{branch}")).cloned();
            let mut entries =
                parent.as_ref().and_then(|p| r.commits.get(p)).map(|c| c.entries.clone()).unwrap_or_default();
            for (path, content) in files_changed {
                put_entry(&mut entries, &path, Entry { mode: "100644", content });
            }
            let who = Person { name: "alex".into(), email: "alex@example.com".into(), date: now_secs() };
            let meta = CommitMeta {
                parents: parent.into_iter().collect(),
                message: format!("Edit {branch}"),
                author: who.clone(),
                committer: who,
                by_app: false,
            };
            let sha = store_commit(r, entries, meta);
            move_branch(r, branch, &sha);
            sha
        })
    }

    /// Replaces the PR's body (an `edited`).
    pub fn edit_body(&self, repo: &str, number: u64, body: Option<&str>) {
        self.with_pr(repo, number, |pr| {
            let old = std::mem::replace(&mut pr.spec.body, body.map(str::to_string));
            pr.previous_body = Some(old);
        });
    }

    /// Sets the PR's title (default `Change #N`).
    pub fn set_title(&self, repo: &str, number: u64, title: &str) {
        self.with_pr(repo, number, |pr| pr.title = title.to_string());
    }

    /// Closes the PR (unmerged).
    pub fn close_pr(&self, repo: &str, number: u64) {
        self.close_pull(repo, number, false);
    }

    /// Opens a closed (unmerged) pull request again.
    pub fn reopen_pr(&self, repo: &str, number: u64) {
        self.with_pr(repo, number, |pr| {
            pr.state = "open";
            pr.closed_at = None;
        });
    }

    fn with_pr(&self, repo: &str, number: u64, f: impl FnOnce(&mut Pr)) {
        self.with_repo(repo, |r| {
            let pr = r.prs.get_mut(&number).unwrap_or_else(|| panic!("fake_github: unknown PR {repo}#{number}"));
            f(pr);
            pr.updated_at = rfc3339(now_secs());
        });
    }

    /// Sets `user`'s role on the repo: admin|maintain|write|triage|read|none, or a custom role
    /// name (reported with permission "read"). Users default to "none"; the owner to "admin".
    pub fn set_permission(&self, repo: &str, user: &str, permission: &str) {
        self.with_repo(repo, |r| {
            r.permissions.insert(user.to_ascii_lowercase(), permission.to_string());
        });
    }

    /// Caps `per_page` on `pulls/{n}/files` below GitHub's 100.
    pub fn set_files_per_page_max(&self, n: usize) {
        self.with_state(|s| s.files_per_page_max = n.clamp(1, 100));
    }

    /// Makes every installation token issued so far expire now (the app must exchange again).
    pub fn expire_tokens(&self) {
        self.with_state(|s| s.tokens.values_mut().for_each(|t| t.expires_at = 0));
    }

    /// The next `times` requests whose `METHOD path` (path without query) matches `route` get
    /// `failure` instead of the real answer. In `route`, `*` matches one path segment (or any
    /// method), `**` any rest of the path, and a lone `*` path any path: `"* *"` matches all.
    pub fn fail(&self, route: &str, times: usize, failure: Failure) {
        let (method, path) = route.trim().split_once(char::is_whitespace).unwrap_or(("*", route.trim()));
        self.with_state(|s| {
            s.failures.push(Injected {
                method: method.trim().to_string(),
                path: path.trim().to_string(),
                remaining: times,
                failure,
            })
        });
    }

    /// Drops every injected failure not yet used: GitHub is healthy again.
    pub fn clear_failures(&self) {
        self.with_state(|s| s.failures.clear());
    }

    // --- webhook payloads --------------------------------------------------------------------

    /// A `pull_request` payload for the PR as it is now.
    pub fn pull_request_event(&self, repo: &str, number: u64, action: &str) -> Value {
        let s = self.shared.lock();
        let r = s.repo(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
        let pr = r.prs.get(&number).unwrap_or_else(|| panic!("fake_github: unknown PR {repo}#{number}"));
        let mut v = json!({
            "action": action,
            "number": number,
            "pull_request": pr_json(&s, r, pr),
            "repository": repo_json(&s.base_url, r),
            "installation": installation_json(r.installation_id),
            "sender": user_json(&pr.spec.author),
        });
        if action == "synchronize" {
            v["before"] = json!(pr.previous_head.clone().unwrap_or_else(|| pr.spec.base_sha.clone()));
            v["after"] = json!(pr.spec.head_sha);
        }
        if let (Some(old), "edited") = (&pr.previous_body, action) {
            v["changes"] = json!({ "body": { "from": old } });
        }
        if let (Some((old_ref, old_sha)), "edited") = (&pr.previous_base, action) {
            v["changes"] = json!({ "base": { "ref": { "from": old_ref }, "sha": { "from": old_sha } } });
        }
        v
    }

    /// A `check_run` payload for a stored check run. `pull_requests` is empty for fork PRs.
    pub fn check_run_event(
        &self,
        repo: &str,
        check_run_id: u64,
        action: &str,
        requested_action: Option<&str>,
        sender: &str,
    ) -> Value {
        let s = self.shared.lock();
        let r = s.repo(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
        let run = r
            .check_runs
            .iter()
            .find(|c| c.id == check_run_id)
            .unwrap_or_else(|| panic!("fake_github: unknown check run {check_run_id} in {repo}"));
        let mut v = json!({
            "action": action,
            "check_run": check_run_json(&s, r, run),
            "repository": repo_json(&s.base_url, r),
            "installation": installation_json(r.installation_id),
            "sender": user_json(sender),
        });
        if let Some(identifier) = requested_action {
            v["requested_action"] = json!({ "identifier": identifier });
        }
        v
    }

    /// A `merge_group` payload (`checks_requested` or `destroyed`) for a group whose head
    /// commit `head_sha` is queued onto `base_sha` of `base_ref`, as GitHub sends it.
    pub fn merge_group_event(&self, repo: &str, action: &str, head_sha: &str, base_sha: &str, pr: u64) -> Value {
        let s = self.shared.lock();
        let r = s.repo(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
        let mut v = json!({
            "action": action,
            "merge_group": {
                "head_sha": head_sha,
                "head_ref": format!("refs/heads/gh-readonly-queue/main/pr-{pr}-{base_sha}"),
                "base_sha": base_sha,
                "base_ref": "refs/heads/main",
                "head_commit": { "id": head_sha, "tree_id": head_sha, "message": format!("Merge pull request #{pr}"),
                    "timestamp": "2026-12-02T00:00:00Z", "author": { "name": "octocat", "email": "octocat@github.com" },
                    "committer": { "name": "GitHub", "email": "noreply@github.com" } },
            },
            "repository": repo_json(&s.base_url, r),
            "installation": installation_json(r.installation_id),
            "sender": user_json("octocat"),
        });
        if action == "destroyed" {
            v["reason"] = json!("dequeued");
        }
        v
    }

    /// A `check_suite` payload for `head_sha`. `pull_requests` is empty for fork PRs.
    pub fn check_suite_event(&self, repo: &str, head_sha: &str, action: &str, sender: &str) -> Value {
        let mut s = self.shared.lock();
        let suite_id = suite_id(&mut s, repo, head_sha);
        let r = s.repo(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
        let suite = check_suite_json(&s, r, head_sha, suite_id);
        json!({
            "action": action,
            "check_suite": suite,
            "repository": repo_json(&s.base_url, r),
            "installation": installation_json(r.installation_id),
            "sender": user_json(sender),
        })
    }

    /// Stores a comment by `author` on PR `number` and returns its `issue_comment` `created`
    /// payload.
    pub fn issue_comment_event(&self, repo: &str, number: u64, body: &str, author: &str) -> Value {
        let v = {
            let mut s = self.shared.lock();
            let id = s.next_id();
            let now = rfc3339(now_secs());
            let base_url = s.base_url.clone();
            let r = s.repo_mut(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
            let comment = StoredComment {
                id,
                issue: number,
                body: body.to_string(),
                author: author.to_string(),
                created_at: now.clone(),
                updated_at: now,
                edits: 0,
                reactions: Vec::new(),
            };
            r.comments.push(comment.clone());
            let r = s.repo(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
            let pr = r.prs.get(&number).unwrap_or_else(|| panic!("fake_github: unknown PR {repo}#{number}"));
            json!({
                "action": "created",
                "issue": issue_json(&base_url, r, pr),
                "comment": comment_json(&base_url, r, &comment),
                "repository": repo_json(&base_url, r),
                "installation": installation_json(r.installation_id),
                "sender": user_json(author),
            })
        };
        self.shared.notify.notify_waiters();
        v
    }

    /// Edits comment `comment_id` to `body` and returns its `issue_comment` `edited` payload,
    /// with the old body under `changes.body.from` as GitHub sends it.
    pub fn issue_comment_edited_event(&self, repo: &str, number: u64, comment_id: u64, body: &str) -> Value {
        self.issue_comment_edited_by(repo, number, comment_id, body, None)
    }

    /// The same edit made by `editor` (a maintainer may edit anyone's comment): `sender` is the
    /// editor, `comment.user` stays the comment's author.
    pub fn issue_comment_edited_by(
        &self,
        repo: &str,
        number: u64,
        comment_id: u64,
        body: &str,
        editor: Option<&str>,
    ) -> Value {
        let v = {
            let mut s = self.shared.lock();
            let base_url = s.base_url.clone();
            let r = s.repo_mut(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
            let c = r
                .comments
                .iter_mut()
                .find(|c| c.id == comment_id)
                .unwrap_or_else(|| panic!("fake_github: unknown comment {comment_id}"));
            let old = std::mem::replace(&mut c.body, body.to_string());
            c.edits += 1;
            let comment = c.clone();
            let r = s.repo(repo).unwrap_or_else(|| panic!("fake_github: unknown repo {repo}"));
            let pr = r.prs.get(&number).unwrap_or_else(|| panic!("fake_github: unknown PR {repo}#{number}"));
            json!({
                "action": "edited",
                "changes": { "body": { "from": old } },
                "issue": issue_json(&base_url, r, pr),
                "comment": comment_json(&base_url, r, &comment),
                "repository": repo_json(&base_url, r),
                "installation": installation_json(r.installation_id),
                "sender": user_json(editor.unwrap_or(&comment.author)),
            })
        };
        self.shared.notify.notify_waiters();
        v
    }

    // --- observations ------------------------------------------------------------------------

    /// Check runs of `repo`, in creation order.
    pub fn check_runs(&self, repo: &str) -> Vec<CheckRun> {
        self.shared.lock().repo(repo).map(|r| r.check_runs.clone()).unwrap_or_default()
    }

    /// Comments on issue/PR `number`, in creation order.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<Comment> {
        let s = self.shared.lock();
        let Some(r) = s.repo(repo) else { return Vec::new() };
        r.comments
            .iter()
            .filter(|c| c.issue == number)
            .map(|c| Comment {
                id: c.id,
                body: c.body.clone(),
                author: c.author.clone(),
                edits: c.edits,
                reactions: c.reactions.clone(),
            })
            .collect()
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// Successful `POST /app/installations/{id}/access_tokens`.
    pub fn token_exchanges(&self) -> usize {
        self.shared.lock().token_exchanges
    }

    /// Re-evaluates `f` on every state change (and every 50 ms) until it returns `Some` or
    /// `timeout` passes.
    pub async fn wait_for<T>(&self, timeout: Duration, f: impl Fn(&FakeGitHub) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = f(self) {
                return Some(v);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            let wake = deadline.min(now + Duration::from_millis(50));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

enum ReplyBody {
    Json(Value),
    Text(String, &'static str),
    Empty,
}

struct Reply {
    status: u16,
    body: ReplyBody,
    headers: Vec<(String, String)>,
    installation: Option<u64>,
    authorized: bool,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: ReplyBody::Json(body), headers: Vec::new(), installation: None, authorized: false }
    }

    fn error(status: u16, message: &str, documentation_url: &str) -> Reply {
        Reply::json(status, json!({ "message": message, "documentation_url": documentation_url }))
    }

    fn not_found() -> Reply {
        Reply::error(404, "Not Found", DOCS)
    }

    fn bad_credentials() -> Reply {
        Reply::error(401, "Bad credentials", DOCS)
    }

    fn invalid(detail: &str, doc: &str) -> Reply {
        Reply::error(422, &format!("Invalid request.\n\n{detail}"), doc)
    }

    fn validation_failed(errors: Value, doc: &str) -> Reply {
        Reply::json(422, json!({ "message": "Validation Failed", "errors": errors, "documentation_url": doc }))
    }

    fn no_content() -> Reply {
        Reply { body: ReplyBody::Empty, ..Reply::json(204, Value::Null) }
    }

    /// 201 with `body` and a `Location` header pointing at `body.url`.
    fn created(body: Value) -> Reply {
        let location = body.get("url").and_then(Value::as_str).map(str::to_string);
        let reply = Reply::json(201, body);
        match location {
            Some(l) => reply.header("location", l),
            None => reply,
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn auth(mut self, installation: Option<u64>, authorized: bool) -> Reply {
        self.installation = installation;
        self.authorized = authorized;
        self
    }
}

struct Ctx {
    method: String,
    /// Percent-decoded path segments.
    segs: Vec<String>,
    raw_path: String,
    query: Vec<(String, String)>,
    token: Option<String>,
    body: Vec<u8>,
}

impl Ctx {
    fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The request body as a JSON object (an empty body is `{}`).
    fn json_object(&self) -> Result<Map<String, Value>, Reply> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Reply::error(400, "Body should be a JSON object", DOCS)),
            Err(_) => Err(Reply::error(400, "Problems parsing JSON", DOCS)),
        }
    }
}

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let raw_path = parts.uri.path().to_string();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| raw_path.clone());
    let token = auth_token(&parts.headers);
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => Some(b.to_vec()),
        Err(_) => None,
    };
    let recorded = body.as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();

    // Injected failures come first: the real handler does not run for them.
    let injected = {
        let mut s = shared.lock();
        let hit = s.failures.iter_mut().find(|f| f.remaining > 0 && route_matches(f, &method, &raw_path));
        hit.map(|f| {
            f.remaining -= 1;
            f.failure.clone()
        })
    };
    let reply = match (injected, body) {
        (Some(Failure::Delay(d)), body) => {
            tokio::time::sleep(d).await;
            real_reply(&shared, method.clone(), raw_path.clone(), &parts.uri, token, body)
        }
        (Some(Failure::AfterApplying(code)), body) => {
            let applied = real_reply(&shared, method.clone(), raw_path.clone(), &parts.uri, token, body);
            failure_reply(&Failure::Status(code), applied.installation).auth(applied.installation, applied.authorized)
        }
        (Some(failure), _) => {
            let s = shared.lock();
            let installation = token.as_deref().and_then(|t| s.installation_of_token(t));
            let authorized =
                installation.is_some() || token.as_deref().is_some_and(|t| verify_jwt(&shared, &s, t).is_ok());
            failure_reply(&failure, installation).auth(installation, authorized)
        }
        (None, body) => real_reply(&shared, method.clone(), raw_path.clone(), &parts.uri, token, body),
    };

    let response = {
        let mut s = shared.lock();
        let used = {
            let counter = s.rate_used.entry(reply.installation).or_insert(0);
            *counter += 1;
            *counter
        };
        let reset = s.rate_reset;
        s.requests.push(Request {
            method,
            path: path_and_query,
            status: reply.status,
            authorized: reply.authorized,
            body: recorded,
        });
        build_response(reply, used, reset)
    };
    shared.notify.notify_waiters();
    response
}

fn real_reply(
    shared: &Shared,
    method: String,
    raw_path: String,
    uri: &axum::http::Uri,
    token: Option<String>,
    body: Option<Vec<u8>>,
) -> Reply {
    let Some(body) = body else {
        return Reply::error(413, "Request body too large: the limit is 1 MiB", DOCS);
    };
    let segs = raw_path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let query = parse_query(uri.query().unwrap_or(""));
    let ctx = Ctx { method, segs, raw_path, query, token, body };
    let mut s = shared.lock();
    dispatch(shared, &mut s, &ctx)
}

fn build_response(reply: Reply, used: u64, reset: u64) -> Response {
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.insert(n, v);
        }
    };
    put("x-ratelimit-limit", &RATE_LIMIT.to_string());
    put("x-ratelimit-remaining", &RATE_LIMIT.saturating_sub(used).to_string());
    put("x-ratelimit-reset", &reset.to_string());
    put("x-ratelimit-used", &used.min(RATE_LIMIT).to_string());
    put("x-ratelimit-resource", "core");
    put("x-github-request-id", &request_id());
    put("x-github-api-version-selected", "2022-11-28");
    let (content_type, bytes) = match &reply.body {
        ReplyBody::Json(v) => (Some("application/json; charset=utf-8"), serde_json::to_vec(v).unwrap_or_default()),
        ReplyBody::Text(t, ct) => (Some(*ct), t.clone().into_bytes()),
        ReplyBody::Empty => (None, Vec::new()),
    };
    if let Some(content_type) = content_type {
        put("content-type", content_type);
    }
    for (name, value) in &reply.headers {
        put(name, value);
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *response.headers_mut() = headers;
    response
}

fn failure_reply(failure: &Failure, installation: Option<u64>) -> Reply {
    match failure {
        Failure::Status(code) => match code {
            502..=504 => {
                let reason =
                    StatusCode::from_u16(*code).ok().and_then(|c| c.canonical_reason()).unwrap_or("Server Error");
                let html = format!(
                    "<html><body><h1>{code} {reason}</h1>\nThe server is having a problem. Please try again.\n\
                     </body></html>\n"
                );
                Reply { body: ReplyBody::Text(html, "text/html; charset=utf-8"), ..Reply::json(*code, Value::Null) }
            }
            401 => Reply::bad_credentials(),
            404 => Reply::not_found(),
            422 => Reply::validation_failed(json!([]), DOCS),
            code => {
                let reason = StatusCode::from_u16(*code).ok().and_then(|c| c.canonical_reason()).unwrap_or("Error");
                let message = if *code >= 500 { "Server Error" } else { reason };
                Reply::error(*code, message, DOCS)
            }
        },
        Failure::SecondaryRateLimit { retry_after_secs } => Reply::error(
            403,
            &format!(
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you \
                 reach out to GitHub Support for help, please include the request ID {}.",
                request_id()
            ),
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        )
        .header("retry-after", retry_after_secs.to_string()),
        Failure::PrimaryRateLimit { reset_in_secs } => {
            let who = match installation {
                Some(id) => format!("installation ID {id}"),
                None => "127.0.0.1".to_string(),
            };
            Reply::error(
                403,
                &format!(
                    "API rate limit exceeded for {who}. If you reach out to GitHub Support for help, please include \
                     the request ID {}.",
                    request_id()
                ),
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits",
            )
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-used", RATE_LIMIT.to_string())
            .header("x-ratelimit-reset", (now_secs() + reset_in_secs).to_string())
        }
        Failure::Delay(_) => Reply::error(500, "Server Error", DOCS),
        Failure::AfterApplying(code) => failure_reply(&Failure::Status(*code), installation),
    }
}

fn route_matches(f: &Injected, method: &str, path: &str) -> bool {
    if f.method != "*" && !f.method.eq_ignore_ascii_case(method) {
        return false;
    }
    if f.path == "*" || f.path == "**" {
        return true;
    }
    let pattern: Vec<&str> = f.path.split('/').filter(|s| !s.is_empty()).collect();
    let actual: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut i = 0;
    for p in &pattern {
        if *p == "**" {
            return true;
        }
        match actual.get(i) {
            Some(a) if *p == "*" || p == a => i += 1,
            _ => return false,
        }
    }
    i == actual.len()
}

fn auth_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        Some(token.trim().to_string())
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

fn dispatch(shared: &Shared, s: &mut State, ctx: &Ctx) -> Reply {
    let segs: Vec<&str> = ctx.segs.iter().map(String::as_str).collect();
    match (ctx.method.as_str(), segs.as_slice()) {
        ("POST", ["app", "installations", id, "access_tokens"]) => create_token(shared, s, ctx, id),
        ("GET", ["app"]) => match verify_jwt(shared, s, ctx.token.as_deref().unwrap_or("")) {
            Ok(()) => Reply::json(200, app_json(s.app_id)).auth(None, true),
            Err(msg) => Reply::error(401, msg, DOCS),
        },
        (_, ["repos", owner, name, rest @ ..]) => repo_route(shared, s, ctx, &format!("{owner}/{name}"), rest),
        _ => manifest::route(s, ctx, &segs).unwrap_or_else(Reply::not_found),
    }
}

fn create_token(shared: &Shared, s: &mut State, ctx: &Ctx, id: &str) -> Reply {
    if let Err(msg) = verify_jwt(shared, s, ctx.token.as_deref().unwrap_or("")) {
        return Reply::error(401, msg, DOCS);
    }
    let Some(installation) = id.parse::<u64>().ok().filter(|i| s.installations.contains(i)) else {
        return Reply::not_found().auth(None, true);
    };
    if let Err(reply) = ctx.json_object() {
        return reply.auth(None, true);
    }
    let token = format!("ghs_{}", random_alnum(36));
    let expires_at = now_secs() + 3600;
    s.tokens.insert(token.clone(), TokenInfo { installation_id: installation, expires_at });
    s.token_exchanges += 1;
    Reply::json(
        201,
        json!({
            "token": token,
            "expires_at": rfc3339(expires_at),
            "permissions": {
                "checks": "write",
                "contents": "write",
                "issues": "write",
                "metadata": "read",
                "pull_requests": "write",
                "members": "read",
            },
            "repository_selection": "all",
        }),
    )
    .auth(None, true)
}

/// Verifies an App JWT as GitHub does; the error is GitHub's message.
fn verify_jwt(shared: &Shared, s: &State, token: &str) -> Result<(), &'static str> {
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &shared.key, &validation).map_err(|_| UNDECODABLE)?;
    let claims = data.claims;
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")?;
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the \
         assertion expires",
    )?;
    let iss_ok = match claims.get("iss") {
        Some(Value::Number(n)) => n.as_u64() == Some(s.app_id),
        Some(Value::String(v)) => v.trim().parse::<u64>().ok() == Some(s.app_id),
        _ => false,
    };
    if !iss_ok {
        return Err(UNDECODABLE);
    }
    let now = now_secs() as i64;
    if iat > now + 60 {
        return Err("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued");
    }
    if exp <= now {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the \
             assertion expires",
        );
    }
    if exp - iat > 660 || exp > now + 660 {
        return Err("'Expiration time' claim ('exp') is too far in the future");
    }
    Ok(())
}

fn repo_route(shared: &Shared, s: &mut State, ctx: &Ctx, full_name: &str, rest: &[&str]) -> Reply {
    // `GET /repos/{o}/{r}/installation` is the one repo route that takes the App JWT.
    if ctx.method == "GET" && rest == ["installation"] {
        if let Err(msg) = verify_jwt(shared, s, ctx.token.as_deref().unwrap_or("")) {
            return Reply::error(401, msg, DOCS);
        }
        return match s.repo(full_name) {
            Some(r) => Reply::json(
                200,
                json!({
                    "id": r.installation_id,
                    "app_id": s.app_id,
                    "app_slug": APP_SLUG,
                    "account": user_json(&r.owner),
                    "repository_selection": "all",
                    "target_type": "User",
                }),
            ),
            None => Reply::not_found(),
        }
        .auth(None, true);
    }
    let Some(installation) = ctx.token.as_deref().and_then(|t| s.installation_of_token(t)) else {
        return Reply::bad_credentials();
    };
    let visible = s.repo(full_name).is_some_and(|r| r.installation_id == installation);
    if !visible {
        return Reply::not_found().auth(Some(installation), false);
    }
    let used = s.rate_used.get(&Some(installation)).copied().unwrap_or(0);
    if used >= RATE_LIMIT {
        let reset_in_secs = s.rate_reset.saturating_sub(now_secs());
        return failure_reply(&Failure::PrimaryRateLimit { reset_in_secs }, Some(installation))
            .auth(Some(installation), true);
    }
    let reply = match (ctx.method.as_str(), rest) {
        ("GET", []) => on_repo(s, full_name, |s, r| Reply::json(200, repo_json(&s.base_url, r))),
        ("GET", ["pulls", n]) => match (s.repo(full_name), n.parse::<u64>()) {
            (Some(r), Ok(n)) => match r.prs.get(&n) {
                Some(pr) => Reply::json(200, pr_json(s, r, pr)),
                None => Reply::not_found(),
            },
            _ => Reply::not_found(),
        },
        ("GET", ["pulls", n, "files"]) => pr_files(s, ctx, full_name, n),
        ("GET", ["pulls"]) => settle(list_pulls(s, ctx, full_name)),
        ("POST", ["pulls"]) => settle(create_pull(s, ctx, full_name)),
        ("PATCH", ["pulls", n]) => settle(update_pull(s, ctx, full_name, n)),
        ("GET", ["git", "trees", sha]) => git_tree(s, ctx, full_name, sha),
        ("GET", ["compare", spec @ ..]) if !spec.is_empty() => compare(s, full_name, &spec.join("/")),
        ("POST", ["git", "trees"]) => settle(create_tree(s, ctx, full_name)),
        ("GET", ["git", "blobs", sha]) => git_blob(s, full_name, sha),
        ("POST", ["git", "blobs"]) => settle(create_blob(s, ctx, full_name)),
        ("GET", ["git", "commits", sha]) => on_repo(s, full_name, |s, r| match r.commits.get(*sha) {
            Some(c) => Reply::json(200, commit_json(&s.base_url, r, sha, c)),
            None => Reply::not_found(),
        }),
        ("POST", ["git", "commits"]) => settle(create_commit(s, ctx, full_name)),
        ("GET", ["git", "ref", name @ ..]) if !name.is_empty() => get_ref(s, full_name, &name.join("/")),
        ("GET", ["git", "refs", prefix @ ..]) => legacy_refs(s, full_name, &prefix.join("/")),
        ("GET", ["git", "matching-refs", ..]) => matching_refs(s, ctx, full_name),
        ("POST", ["git", "refs"]) => settle(create_ref(s, ctx, full_name)),
        ("PATCH", ["git", "refs", name @ ..]) if !name.is_empty() => {
            settle(update_ref(s, ctx, full_name, &name.join("/")))
        }
        ("DELETE", ["git", "refs", name @ ..]) if !name.is_empty() => delete_ref(s, full_name, &name.join("/")),
        ("POST", ["check-runs"]) => create_check_run(s, ctx, full_name),
        ("GET", ["check-runs", id]) => match find_check_run(s, full_name, id) {
            Some(idx) => on_repo(s, full_name, |s, r| Reply::json(200, check_run_json(s, r, &r.check_runs[idx]))),
            None => Reply::not_found(),
        },
        ("PATCH", ["check-runs", id]) => update_check_run(s, ctx, full_name, id),
        ("GET", ["check-runs", id, "annotations"]) => match find_check_run(s, full_name, id) {
            Some(idx) => {
                let all = s.repo(full_name).map(|r| r.check_runs[idx].annotations.clone()).unwrap_or_default();
                paginated(s, ctx, all, 30, 100)
            }
            None => Reply::not_found(),
        },
        ("GET", ["commits", sha, "pulls"]) => match s.repo(full_name) {
            // The pull requests that contain the commit: here, those whose head it is.
            Some(r) => {
                let items = r.prs.values().filter(|p| p.spec.head_sha == *sha).map(|p| pr_json(s, r, p)).collect();
                paginated(s, ctx, items, 30, 100)
            }
            None => Reply::not_found(),
        },
        ("GET", ["commits", reference @ .., "check-runs"]) if !reference.is_empty() => {
            list_check_runs(s, ctx, full_name, &reference.join("/"))
        }
        ("GET", ["issues", n, "comments"]) => list_comments(s, ctx, full_name, n),
        ("POST", ["issues", n, "comments"]) => create_comment(s, ctx, full_name, n),
        ("GET", ["issues", "comments", id]) => match id.parse::<u64>() {
            Ok(id) => on_repo(s, full_name, |s, r| match r.comments.iter().find(|c| c.id == id) {
                Some(c) => Reply::json(200, comment_json(&s.base_url, r, c)),
                None => Reply::not_found(),
            }),
            Err(_) => Reply::not_found(),
        },
        ("PATCH", ["issues", "comments", id]) => update_comment(s, ctx, full_name, id),
        ("POST", ["issues", "comments", id, "reactions"]) => add_reaction(s, ctx, full_name, id),
        ("GET", ["collaborators", user, "permission"]) => {
            on_repo(s, full_name, |_, r| Reply::json(200, permission_json(r, user)))
        }
        _ => Reply::not_found(),
    };
    reply.auth(Some(installation), true)
}

fn on_repo(s: &State, full_name: &str, f: impl FnOnce(&State, &Repo) -> Reply) -> Reply {
    match s.repo(full_name) {
        Some(r) => f(s, r),
        None => Reply::not_found(),
    }
}

// --- files, trees, blobs ---------------------------------------------------------------------

fn pr_files(s: &State, ctx: &Ctx, full_name: &str, n: &str) -> Reply {
    let Some(r) = s.repo(full_name) else { return Reply::not_found() };
    let Some(pr) = n.parse::<u64>().ok().and_then(|n| r.prs.get(&n)) else { return Reply::not_found() };
    let empty = Commit::default();
    let base = r.commits.get(&pr.spec.base_sha).unwrap_or(&empty);
    let head = r.commits.get(&pr.spec.head_sha).unwrap_or(&empty);
    let mut files = diff_files(&s.base_url, r, base, head, &pr.spec.head_sha);
    files.truncate(FILES_LISTING_CAP);
    let max = s.files_per_page_max;
    paginated(s, ctx, files, 30.min(max), max)
}

fn diff_files(base_url: &str, r: &Repo, base: &Commit, head: &Commit, head_sha: &str) -> Vec<Value> {
    let mut removed: Vec<(&String, &Entry)> =
        base.entries.iter().filter(|(p, _)| !head.entries.contains_key(*p)).collect();
    let mut out: Vec<(String, Value)> = Vec::new();
    let file_json = |path: &str, sha: &str, status: &str, adds: usize, dels: usize| {
        let blob_url = format!("https://github.com/{}/blob/{head_sha}/{path}", r.full_name);
        let raw_url = format!("https://github.com/{}/raw/{head_sha}/{path}", r.full_name);
        let contents_url = format!("{base_url}/repos/{}/contents/{path}?ref={head_sha}", r.full_name);
        json!({
            "sha": sha,
            "filename": path,
            "status": status,
            "additions": adds,
            "deletions": dels,
            "changes": adds + dels,
            "blob_url": blob_url,
            "raw_url": raw_url,
            "contents_url": contents_url,
        })
    };
    for (path, entry) in &head.entries {
        let sha = blob_sha(&entry.content);
        match base.entries.get(path) {
            None => {
                // An added file with the exact content of a removed one is a rename.
                if let Some(pos) = removed.iter().position(|(_, old)| old.content == entry.content) {
                    let (old_path, _) = removed.remove(pos);
                    let mut v = file_json(path, &sha, "renamed", 0, 0);
                    v["previous_filename"] = json!(old_path);
                    out.push((path.clone(), v));
                } else {
                    let (adds, _) = line_changes(&[], &entry.content);
                    out.push((path.clone(), file_json(path, &sha, "added", adds, 0)));
                }
            }
            Some(old) if old.content != entry.content => {
                let (adds, dels) = line_changes(&old.content, &entry.content);
                out.push((path.clone(), file_json(path, &sha, "modified", adds, dels)));
            }
            Some(old) if old.mode != entry.mode => out.push((path.clone(), file_json(path, &sha, "changed", 0, 0))),
            Some(_) => {}
        }
    }
    for (path, entry) in removed {
        let (_, dels) = line_changes(&entry.content, &[]);
        out.push((path.clone(), file_json(path, &blob_sha(&entry.content), "removed", 0, dels)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

/// (additions, deletions) by lines, as a multiset difference; binary content counts 0.
fn line_changes(old: &[u8], new: &[u8]) -> (usize, usize) {
    if old.contains(&0) || new.contains(&0) {
        return (0, 0);
    }
    let lines = |b: &[u8]| -> HashMap<Vec<u8>, usize> {
        let mut m = HashMap::new();
        if !b.is_empty() {
            let b = b.strip_suffix(b"\n").unwrap_or(b);
            for line in b.split(|c| *c == b'\n') {
                *m.entry(line.to_vec()).or_insert(0) += 1;
            }
        }
        m
    };
    let (o, n) = (lines(old), lines(new));
    let adds = n.iter().map(|(l, c)| c.saturating_sub(o.get(l).copied().unwrap_or(0))).sum();
    let dels = o.iter().map(|(l, c)| c.saturating_sub(n.get(l).copied().unwrap_or(0))).sum();
    (adds, dels)
}

fn git_tree(s: &State, ctx: &Ctx, full_name: &str, sha: &str) -> Reply {
    let Some(r) = s.repo(full_name) else { return Reply::not_found() };
    // A commit sha, a tree sha, or a branch name.
    let Some((snapshot, dir)) = resolve_snapshot(r, sha) else { return Reply::not_found() };
    Reply::json(200, tree_json(&s.base_url, r, snapshot, &dir, ctx.query("recursive").is_some()))
}

fn tree_json(base_url: &str, r: &Repo, snapshot: &Commit, dir: &str, recursive: bool) -> Value {
    let base = format!("{base_url}/repos/{}/git", r.full_name);
    let mut tree = Vec::new();
    list_tree(snapshot, dir, "", recursive, &base, &mut tree);
    let truncated = tree.len() > TREE_ENTRIES_CAP;
    tree.truncate(TREE_ENTRIES_CAP);
    let tree_sha = snapshot.tree_shas.get(dir).cloned().unwrap_or_default();
    json!({ "sha": tree_sha, "url": format!("{base}/trees/{tree_sha}"), "tree": tree, "truncated": truncated })
}

/// The snapshot and directory a commit sha, tree sha or branch/tag name names.
fn resolve_snapshot<'a>(r: &'a Repo, name: &str) -> Option<(&'a Commit, String)> {
    if let Some(c) = r.commits.get(name) {
        return Some((c, String::new()));
    }
    if let Some((key, dir)) = r.trees.get(name) {
        let snapshot = r.commits.get(key).or_else(|| r.snapshots.get(key))?;
        return Some((snapshot, dir.clone()));
    }
    let sha = resolve_ref(r, name)?;
    r.commits.get(&sha).map(|c| (c, String::new()))
}

/// Appends the entries of directory `dir` of `commit`, with paths prefixed by `rel_prefix`.
fn list_tree(commit: &Commit, dir: &str, rel_prefix: &str, recursive: bool, base: &str, out: &mut Vec<Value>) {
    for (name, is_dir) in children(&commit.entries, dir) {
        let full = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
        let rel = format!("{rel_prefix}{name}");
        if is_dir {
            let sha = commit.tree_shas.get(&full).cloned().unwrap_or_default();
            let url = format!("{base}/trees/{sha}");
            out.push(json!({ "path": rel, "mode": "040000", "type": "tree", "sha": sha, "url": url }));
            if recursive {
                list_tree(commit, &full, &format!("{rel}/"), recursive, base, out);
            }
        } else if let Some(entry) = commit.entries.get(&full) {
            let sha = blob_sha(&entry.content);
            out.push(json!({
                "path": rel,
                "mode": entry.mode,
                "type": "blob",
                "sha": sha,
                "size": entry.content.len(),
                "url": format!("{base}/blobs/{sha}"),
            }));
        }
    }
}

/// Direct children of `dir` as (name, is_dir), in git's tree order.
fn children(entries: &BTreeMap<String, Entry>, dir: &str) -> Vec<(String, bool)> {
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let mut names: BTreeMap<Vec<u8>, (String, bool)> = BTreeMap::new();
    for path in entries.keys() {
        let Some(rest) = path.strip_prefix(&prefix) else { continue };
        let (name, is_dir) = match rest.split_once('/') {
            Some((d, _)) => (d, true),
            None => (rest, false),
        };
        let mut key = name.as_bytes().to_vec();
        if is_dir {
            key.push(b'/');
        }
        names.insert(key, (name.to_string(), is_dir));
    }
    names.into_values().collect()
}

/// Recomputes the tree shas and blob index of commit `sha`.
fn reindex_commit(r: &mut Repo, sha: &str) {
    let Some(commit) = r.commits.get_mut(sha) else { return };
    for entry in commit.entries.values() {
        r.blobs.insert(blob_sha(&entry.content), entry.content.clone());
    }
    commit.tree_shas = tree_shas_of(&commit.entries);
    for (dir, tree_sha) in &commit.tree_shas {
        r.trees.insert(tree_sha.clone(), (sha.to_string(), dir.clone()));
    }
}

/// Directory path ("" for the root) → git tree sha, for a set of files.
fn tree_shas_of(entries: &BTreeMap<String, Entry>) -> BTreeMap<String, String> {
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    dirs.insert(String::new());
    for path in entries.keys() {
        let mut cur = path.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            dirs.insert(parent.to_string());
            cur = parent;
        }
    }
    // Deepest first, so children's shas exist when a parent is hashed.
    let mut ordered: Vec<String> = dirs.into_iter().collect();
    ordered.sort_by_key(|d| std::cmp::Reverse(if d.is_empty() { 0 } else { d.matches('/').count() + 1 }));
    let mut shas: BTreeMap<String, String> = BTreeMap::new();
    for dir in ordered {
        let mut object = Vec::new();
        for (name, is_dir) in children(entries, &dir) {
            let full = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
            let (mode, hex) = match (is_dir, entries.get(&full)) {
                (false, Some(e)) => (e.mode, blob_sha(&e.content)),
                _ => ("40000", shas.get(&full).cloned().unwrap_or_default()),
            };
            object.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            object.extend_from_slice(&hex_decode(&hex));
        }
        shas.insert(dir, git_object_sha("tree", &object));
    }
    shas
}

/// A commit sha, or the commit a branch/tag (`main`, `heads/main`, `refs/heads/main`) points at.
fn resolve_ref(r: &Repo, reference: &str) -> Option<String> {
    if r.commits.contains_key(reference) {
        return Some(reference.to_string());
    }
    let candidates = if reference.starts_with("refs/") {
        vec![reference.to_string()]
    } else if reference.starts_with("heads/") || reference.starts_with("tags/") {
        vec![format!("refs/{reference}")]
    } else {
        vec![format!("refs/heads/{reference}"), format!("refs/tags/{reference}")]
    };
    candidates.iter().find_map(|c| r.refs.get(c).cloned())
}

fn git_blob(s: &State, full_name: &str, sha: &str) -> Reply {
    let Some(r) = s.repo(full_name) else { return Reply::not_found() };
    let Some(content) = r.blobs.get(sha) else { return Reply::not_found() };
    Reply::json(
        200,
        json!({
            "sha": sha,
            "node_id": format!("B_{sha}"),
            "size": content.len(),
            "url": format!("{}/repos/{}/git/blobs/{sha}", s.base_url, r.full_name),
            "content": github_base64(content),
            "encoding": "base64",
        }),
    )
}

/// Base64 as GitHub sends it (Ruby's `encode64`): a newline after every 60 characters.
pub fn github_base64(bytes: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 60 + 1);
    for chunk in flat.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

// --- git data: blobs, trees, commits, refs ---------------------------------------------------

/// Handlers that bail out early with `?` return `Result<Reply, Reply>`; both sides are answers.
fn settle(result: Result<Reply, Reply>) -> Reply {
    result.unwrap_or_else(|reply| reply)
}

fn opt_bool(obj: &Map<String, Value>, key: &str, doc: &str) -> Result<Option<bool>, Reply> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Reply::invalid(&format!("For 'properties/{key}', {other} is not a boolean."), doc)),
    }
}

/// The string values of `keys`, all required (GitHub names every missing one at once).
fn required_strings(obj: &Map<String, Value>, keys: &[&str], doc: &str) -> Result<Vec<String>, Reply> {
    let mut values = Vec::new();
    let mut absent = Vec::new();
    for key in keys {
        match opt_string(obj, key, key, doc)? {
            Some(v) => values.push(v),
            None => absent.push(*key),
        }
    }
    if absent.is_empty() { Ok(values) } else { Err(missing(&absent, doc)) }
}

/// `(commit or snapshot, dir)` of tree `sha`.
fn tree_snapshot<'a>(r: &'a Repo, sha: &str) -> Option<(&'a Commit, &'a str)> {
    let (key, dir) = r.trees.get(sha)?;
    let snapshot = r.commits.get(key).or_else(|| r.snapshots.get(key))?;
    Some((snapshot, dir.as_str()))
}

/// The files under `dir` of `snapshot`, with paths relative to `dir`.
fn subtree_entries(snapshot: &Commit, dir: &str) -> BTreeMap<String, Entry> {
    if dir.is_empty() {
        return snapshot.entries.clone();
    }
    let prefix = format!("{dir}/");
    snapshot.entries.iter().filter_map(|(p, e)| Some((p.strip_prefix(&prefix)?.to_string(), e.clone()))).collect()
}

/// Removes `path` and everything under it.
fn remove_path(entries: &mut BTreeMap<String, Entry>, path: &str) {
    let prefix = format!("{path}/");
    entries.retain(|p, _| p != path && !p.starts_with(&prefix));
}

/// Makes room for something at `path`: removes it, what is under it, and files where its
/// parent directories go.
fn clear_for(entries: &mut BTreeMap<String, Entry>, path: &str) {
    remove_path(entries, path);
    let mut cur = path;
    while let Some((parent, _)) = cur.rsplit_once('/') {
        entries.remove(parent);
        cur = parent;
    }
}

fn put_entry(entries: &mut BTreeMap<String, Entry>, path: &str, entry: Entry) {
    clear_for(entries, path);
    entries.insert(path.to_string(), entry);
}

/// Stores a commit of `entries` with `meta`; its sha is git's for that commit object.
fn store_commit(r: &mut Repo, entries: BTreeMap<String, Entry>, meta: CommitMeta) -> String {
    let tree = tree_shas_of(&entries).get("").cloned().unwrap_or_default();
    let mut text = format!("tree {tree}\n");
    for p in &meta.parents {
        text.push_str(&format!("parent {p}\n"));
    }
    for (role, who) in [("author", &meta.author), ("committer", &meta.committer)] {
        text.push_str(&format!("{role} {} <{}> {} +0000\n", who.name, who.email, who.date));
    }
    text.push('\n');
    text.push_str(&meta.message);
    let sha = git_object_sha("commit", text.as_bytes());
    r.commits.insert(sha.clone(), Commit { entries, tree_shas: BTreeMap::new(), meta });
    reindex_commit(r, &sha);
    sha
}

/// A commit the test made without parents becomes a child of `parent` (never of itself, and
/// never making a cycle).
fn adopt_parent(r: &mut Repo, child: &str, parent: &str) {
    if child == parent || ancestors(r, parent).contains(child) {
        return;
    }
    if let Some(c) = r.commits.get_mut(child) {
        if c.meta.parents.is_empty() && !c.meta.by_app {
            c.meta.parents = vec![parent.to_string()];
        }
    }
}

/// `GET /repos/{o}/{r}/compare/{base}...{head}`: the merge base and how far apart they are.
/// Each side is a branch name or a commit sha.
fn compare(s: &State, full_name: &str, spec: &str) -> Reply {
    let Some(r) = s.repo(full_name) else { return Reply::not_found() };
    let Some((base, head)) = spec.split_once("...") else { return Reply::not_found() };
    let resolve = |x: &str| match r.refs.get(&format!("refs/heads/{x}")) {
        Some(sha) => Some(sha.clone()),
        None => r.commits.contains_key(x).then(|| x.to_string()),
    };
    let (Some(base_sha), Some(head_sha)) = (resolve(base), resolve(head)) else { return Reply::not_found() };
    let base_anc = ancestors(r, &base_sha);
    let head_anc = ancestors(r, &head_sha);
    // Breadth first from head: the nearest commit that base also reaches.
    let mut queue = std::collections::VecDeque::from([head_sha.clone()]);
    let mut seen = BTreeSet::new();
    let mut merge_base = None;
    while let Some(cur) = queue.pop_front() {
        if !seen.insert(cur.clone()) {
            continue;
        }
        if base_anc.contains(&cur) {
            merge_base = Some(cur);
            break;
        }
        if let Some(c) = r.commits.get(&cur) {
            queue.extend(c.meta.parents.iter().cloned());
        }
    }
    let Some(mb) = merge_base else {
        return Reply::error(404, &format!("No common ancestor between {base} and {head}."), DOCS);
    };
    let ahead = head_anc.difference(&base_anc).count();
    let behind = base_anc.difference(&head_anc).count();
    let status = match (ahead, behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let commit = |sha: &str| match r.commits.get(sha) {
        Some(c) => commit_json(&s.base_url, r, sha, c),
        None => json!({ "sha": sha }),
    };
    Reply::json(
        200,
        json!({
            "url": format!("{}/repos/{full_name}/compare/{spec}", s.base_url),
            "status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": ahead,
            "base_commit": commit(&base_sha), "merge_base_commit": commit(&mb),
            "commits": [], "files": [],
        }),
    )
}

/// `sha` and every commit reachable from it through parents.
fn ancestors(r: &Repo, sha: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![sha.to_string()];
    while let Some(cur) = todo.pop() {
        if let Some(c) = r.commits.get(&cur) {
            todo.extend(c.meta.parents.iter().filter(|p| !seen.contains(*p)).cloned());
        }
        seen.insert(cur);
    }
    seen
}

fn is_ancestor(r: &Repo, ancestor: &str, of: &str) -> bool {
    ancestors(r, of).contains(ancestor)
}

/// Points `refs/heads/{branch}` at `sha`; open same-repo PRs from that branch follow it.
fn move_branch(r: &mut Repo, branch: &str, sha: &str) {
    r.refs.insert(format!("refs/heads/{branch}"), sha.to_string());
    let now = rfc3339(now_secs());
    for pr in r.prs.values_mut() {
        if pr.state == "open" && !pr.spec.fork && pr.spec.head_ref == branch && pr.spec.head_sha != sha {
            let old = std::mem::replace(&mut pr.spec.head_sha, sha.to_string());
            pr.previous_head = Some(old);
            pr.updated_at = now.clone();
        }
    }
}

fn valid_tree_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != ".." && !c.eq_ignore_ascii_case(".git"))
}

/// `git check-ref-format` for a full ref name.
fn valid_ref_name(name: &str) -> bool {
    if name.ends_with('/') || name.ends_with('.') || name.contains("..") || name.contains("@{") || name == "@" {
        return false;
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b)) {
        return false;
    }
    name.split('/').all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of an ISO 8601 timestamp (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
fn parse_timestamp(v: &str) -> Option<u64> {
    if !is_timestamp(v) {
        return None;
    }
    let num = |s: &str, r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(v, 0..4)?, num(v, 5..7)?, num(v, 8..10)?);
    let (h, mi, sec) = (num(v, 11..13)?, num(v, 14..16)?, num(v, 17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = v.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (num(rest, 1..3)? * 3600 + num(rest, 4..6)? * 60)
        }
    };
    u64::try_from(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset).ok()
}

fn create_blob(s: &mut State, ctx: &Ctx, full_name: &str) -> Result<Reply, Reply> {
    let doc = DOCS_CREATE_BLOB;
    let obj = ctx.json_object()?;
    let content = required_strings(&obj, &["content"], doc)?.remove(0);
    let encoding = one_of(opt_string(&obj, "encoding", "encoding", doc)?, &["utf-8", "base64"], "encoding", doc)?;
    let bytes = if encoding.as_deref() == Some("base64") {
        let compact: String = content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| Reply::error(422, "content is not valid Base64", doc))?
    } else {
        content.into_bytes()
    };
    let sha = blob_sha(&bytes);
    let base_url = s.base_url.clone();
    let r = s.repo_mut(full_name).ok_or_else(Reply::not_found)?;
    r.blobs.insert(sha.clone(), bytes);
    Ok(Reply::created(json!({ "url": format!("{base_url}/repos/{}/git/blobs/{sha}", r.full_name), "sha": sha })))
}

/// One item of `POST git/trees`' `tree`.
enum TreeChange {
    Delete(String),
    Blob(String, Entry),
    Tree(String, BTreeMap<String, Entry>),
}

fn parse_tree_item(r: &Repo, item: &Value, doc: &str) -> Result<TreeChange, Reply> {
    const MODES: &[&str] = &["100644", "100755", "040000", "160000", "120000"];
    let Some(obj) = item.as_object() else {
        return Err(Reply::invalid(&format!("For 'items', {item} is not an object."), doc));
    };
    let path = opt_string(obj, "path", "path", doc)?;
    let mode = one_of(opt_string(obj, "mode", "mode", doc)?, MODES, "mode", doc)?;
    let kind = one_of(opt_string(obj, "type", "type", doc)?, &["blob", "tree", "commit"], "type", doc)?;
    let content = opt_string(obj, "content", "content", doc)?;
    let (Some(path), Some(mode)) = (path.clone(), mode.clone()) else {
        let absent: Vec<&str> =
            [("path", path.is_none()), ("mode", mode.is_none())].iter().filter(|(_, a)| *a).map(|(k, _)| *k).collect();
        return Err(missing(&absent, doc));
    };
    if !valid_tree_path(&path) {
        return Err(Reply::error(422, "tree.path contains a malformed path component", doc));
    }
    let implied = match mode.as_str() {
        "040000" => "tree",
        "160000" => "commit",
        _ => "blob",
    };
    let kind = kind.unwrap_or_else(|| implied.to_string());
    if kind != implied {
        return Err(Reply::error(422, &format!("tree.mode {mode} does not match tree.type {kind}"), doc));
    }
    if kind == "commit" {
        return Err(Reply::error(422, "The fake GitHub does not model submodules (mode 160000)", doc));
    }
    // Absent, null (delete) or a sha.
    let sha = match obj.get("sha") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(v)) => Some(Some(v.clone())),
        Some(other) => {
            return Err(Reply::invalid(&format!("For 'properties/sha', {other} is not a string or null."), doc));
        }
    };
    let mode: &'static str = MODES.iter().find(|m| **m == mode).copied().unwrap_or("100644");
    match (sha, content) {
        (Some(_), Some(_)) => Err(Reply::error(422, "Only one of tree.sha and tree.content may be supplied", doc)),
        (None, None) => Err(Reply::error(422, "Must supply either tree.sha or tree.content", doc)),
        (Some(None), None) => Ok(TreeChange::Delete(path)),
        (None, Some(_)) if kind == "tree" => Err(Reply::error(422, "tree.content is only allowed for blobs", doc)),
        (None, Some(content)) => Ok(TreeChange::Blob(path, Entry { mode, content: content.into_bytes() })),
        (Some(Some(sha)), None) if kind == "tree" => match tree_snapshot(r, &sha) {
            Some((snapshot, dir)) => Ok(TreeChange::Tree(path, subtree_entries(snapshot, dir))),
            None => Err(Reply::error(422, &format!("tree.sha {sha} is not a valid tree"), doc)),
        },
        (Some(Some(sha)), None) => match r.blobs.get(&sha) {
            Some(content) => Ok(TreeChange::Blob(path, Entry { mode, content: content.clone() })),
            None => Err(Reply::error(422, &format!("tree.sha {sha} is not a valid blob"), doc)),
        },
    }
}

fn create_tree(s: &mut State, ctx: &Ctx, full_name: &str) -> Result<Reply, Reply> {
    let doc = DOCS_CREATE_TREE;
    let obj = ctx.json_object()?;
    let items = match obj.get("tree") {
        None | Some(Value::Null) => return Err(missing(&["tree"], doc)),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => return Err(Reply::invalid(&format!("For 'properties/tree', {other} is not an array."), doc)),
    };
    let base_tree = opt_string(&obj, "base_tree", "base_tree", doc)?;
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    let mut entries = match &base_tree {
        None => BTreeMap::new(),
        // A tree sha; a commit sha stands for its root tree.
        Some(sha) => match tree_snapshot(r, sha).or_else(|| r.commits.get(sha).map(|c| (c, ""))) {
            Some((snapshot, dir)) => subtree_entries(snapshot, dir),
            None => return Err(Reply::error(422, "base_tree is not a valid tree oid", doc)),
        },
    };
    for item in &items {
        match parse_tree_item(r, item, doc)? {
            TreeChange::Delete(path) => remove_path(&mut entries, &path),
            TreeChange::Blob(path, entry) => put_entry(&mut entries, &path, entry),
            TreeChange::Tree(path, sub) => {
                clear_for(&mut entries, &path);
                entries.extend(sub.into_iter().map(|(p, e)| (format!("{path}/{p}"), e)));
            }
        }
    }
    let tree_shas = tree_shas_of(&entries);
    let root = tree_shas.get("").cloned().unwrap_or_default();
    let base_url = s.base_url.clone();
    let r = s.repo_mut(full_name).ok_or_else(Reply::not_found)?;
    for entry in entries.values() {
        r.blobs.entry(blob_sha(&entry.content)).or_insert_with(|| entry.content.clone());
    }
    for (dir, sha) in &tree_shas {
        r.trees.entry(sha.clone()).or_insert_with(|| (root.clone(), dir.clone()));
    }
    let snapshot = Commit { entries, tree_shas, meta: CommitMeta::default() };
    let body = tree_json(&base_url, r, &snapshot, "", false);
    r.snapshots.insert(root, snapshot);
    Ok(Reply::created(body))
}

fn person(obj: &Map<String, Value>, key: &str, doc: &str) -> Result<Option<Person>, Reply> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(p)) => {
            let mut v = required_strings(p, &["name", "email"], doc)?;
            let date = match opt_string(p, "date", "date", doc)? {
                None => now_secs(),
                Some(d) => parse_timestamp(&d).ok_or_else(|| {
                    Reply::invalid(&format!("For 'properties/date', \"{d}\" is not a date-time."), doc)
                })?,
            };
            let email = v.remove(1);
            Ok(Some(Person { name: v.remove(0), email, date }))
        }
        Some(other) => Err(Reply::invalid(&format!("For 'properties/{key}', {other} is not an object."), doc)),
    }
}

/// The App's bot as git author: what GitHub uses when a commit made with an installation token
/// names no author.
fn bot_person(date: u64) -> Person {
    Person {
        name: BOT_LOGIN.into(),
        email: format!("{}+{BOT_LOGIN}@users.noreply.github.com", user_id(BOT_LOGIN)),
        date,
    }
}

fn create_commit(s: &mut State, ctx: &Ctx, full_name: &str) -> Result<Reply, Reply> {
    let doc = DOCS_CREATE_COMMIT;
    let obj = ctx.json_object()?;
    let mut v = required_strings(&obj, &["message", "tree"], doc)?;
    let tree = v.remove(1);
    let message = v.remove(0);
    let parents: Vec<String> = match obj.get("parents") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Reply::invalid(&format!("For 'items', {p} is not a string."), doc))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(Reply::invalid(&format!("For 'properties/parents', {other} is not an array."), doc)),
    };
    let author = person(&obj, "author", doc)?.unwrap_or_else(|| bot_person(now_secs()));
    let committer = person(&obj, "committer", doc)?.unwrap_or_else(|| author.clone());
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    let Some((snapshot, dir)) = tree_snapshot(r, &tree) else {
        return Err(Reply::error(422, "Tree SHA does not exist", doc));
    };
    if parents.iter().any(|p| !r.commits.contains_key(p)) {
        return Err(Reply::error(422, "Parent SHA does not exist or is not a commit object", doc));
    }
    let entries = subtree_entries(snapshot, dir);
    let meta = CommitMeta { parents, message, author, committer, by_app: true };
    let base_url = s.base_url.clone();
    let r = s.repo_mut(full_name).ok_or_else(Reply::not_found)?;
    let sha = store_commit(r, entries, meta);
    let commit = r.commits.get(&sha).ok_or_else(Reply::not_found)?;
    Ok(Reply::created(commit_json(&base_url, r, &sha, commit)))
}

fn commit_json(base_url: &str, r: &Repo, sha: &str, c: &Commit) -> Value {
    let api = format!("{base_url}/repos/{}/git", r.full_name);
    let html = format!("https://github.com/{}/commit", r.full_name);
    let person = |p: &Person| json!({ "name": p.name, "email": p.email, "date": rfc3339(p.date) });
    let tree = c.tree_shas.get("").cloned().unwrap_or_default();
    // GitHub signs the commits it makes for a bot that is their committer.
    let verified = c.meta.by_app && c.meta.committer.name == BOT_LOGIN;
    let parents: Vec<Value> = c
        .meta
        .parents
        .iter()
        .map(|p| json!({ "sha": p, "url": format!("{api}/commits/{p}"), "html_url": format!("{html}/{p}") }))
        .collect();
    json!({
        "sha": sha,
        "node_id": format!("C_{sha}"),
        "url": format!("{api}/commits/{sha}"),
        "html_url": format!("{html}/{sha}"),
        "author": person(&c.meta.author),
        "committer": person(&c.meta.committer),
        "tree": { "sha": tree, "url": format!("{api}/trees/{tree}") },
        "message": c.meta.message,
        "parents": parents,
        "verification": {
            "verified": verified,
            "reason": if verified { "valid" } else { "unsigned" },
            "signature": Value::Null,
            "payload": Value::Null,
            "verified_at": Value::Null,
        },
    })
}

fn ref_json(base_url: &str, r: &Repo, name: &str, sha: &str) -> Value {
    let api = format!("{base_url}/repos/{}/git", r.full_name);
    let node = blob_sha(name.as_bytes());
    json!({
        "ref": name,
        "node_id": format!("REF_{}", node.get(..16).unwrap_or_default()),
        "url": format!("{api}/{name}"),
        "object": { "sha": sha, "type": "commit", "url": format!("{api}/commits/{sha}") },
    })
}

/// `GET git/ref/{heads/x|tags/x}`: exactly that ref.
fn get_ref(s: &State, full_name: &str, name: &str) -> Reply {
    on_repo(s, full_name, |s, r| {
        let full = format!("refs/{name}");
        match r.refs.get(&full) {
            Some(sha) => Reply::json(200, ref_json(&s.base_url, r, &full, sha)),
            None => Reply::error(404, "Not Found", DOCS_GET_REF),
        }
    })
}

/// The older `GET git/refs[/{prefix}]`: the ref itself when it exists, else the refs under it.
fn legacy_refs(s: &State, full_name: &str, prefix: &str) -> Reply {
    on_repo(s, full_name, |s, r| {
        let full = if prefix.is_empty() { "refs".to_string() } else { format!("refs/{prefix}") };
        if let Some(sha) = r.refs.get(&full) {
            return Reply::json(200, ref_json(&s.base_url, r, &full, sha));
        }
        let under = format!("{full}/");
        let list: Vec<Value> = r
            .refs
            .iter()
            .filter(|(n, _)| n.starts_with(&under))
            .map(|(n, sha)| ref_json(&s.base_url, r, n, sha))
            .collect();
        if list.is_empty() { Reply::not_found() } else { Reply::json(200, Value::Array(list)) }
    })
}

/// `GET git/matching-refs/{prefix}`: refs whose name starts with `refs/{prefix}` (maybe none).
fn matching_refs(s: &State, ctx: &Ctx, full_name: &str) -> Reply {
    let raw = ctx.raw_path.split_once("/git/matching-refs").map(|(_, rest)| rest).unwrap_or("");
    let prefix = format!("refs/{}", percent_decode(raw.trim_start_matches('/')));
    on_repo(s, full_name, |s, r| {
        let list: Vec<Value> = r
            .refs
            .iter()
            .filter(|(n, _)| n.starts_with(&prefix))
            .map(|(n, sha)| ref_json(&s.base_url, r, n, sha))
            .collect();
        Reply::json(200, Value::Array(list))
    })
}

fn create_ref(s: &mut State, ctx: &Ctx, full_name: &str) -> Result<Reply, Reply> {
    let doc = DOCS_CREATE_REF;
    let obj = ctx.json_object()?;
    let mut v = required_strings(&obj, &["ref", "sha"], doc)?;
    let sha = v.remove(1);
    let name = v.remove(0);
    if !name.starts_with("refs/") || name.matches('/').count() < 2 {
        return Err(Reply::error(422, "Reference name must contain at least three slash-separated components.", doc));
    }
    if !valid_ref_name(&name) {
        return Err(Reply::error(422, &format!("{name} is not a valid ref name."), doc));
    }
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    if !r.commits.contains_key(&sha) {
        return Err(Reply::error(422, "Object does not exist", doc));
    }
    if r.refs.contains_key(&name) {
        return Err(Reply::error(422, "Reference already exists", doc));
    }
    // Git cannot hold both `refs/heads/a` and `refs/heads/a/b`.
    if r.refs.keys().any(|k| k.starts_with(&format!("{name}/")) || name.starts_with(&format!("{k}/"))) {
        return Err(Reply::error(422, "Reference update failed", doc));
    }
    let base_url = s.base_url.clone();
    let r = s.repo_mut(full_name).ok_or_else(Reply::not_found)?;
    match name.strip_prefix("refs/heads/") {
        Some(branch) => move_branch(r, branch, &sha),
        None => {
            r.refs.insert(name.clone(), sha.clone());
        }
    }
    Ok(Reply::created(ref_json(&base_url, r, &name, &sha)))
}

fn update_ref(s: &mut State, ctx: &Ctx, full_name: &str, name: &str) -> Result<Reply, Reply> {
    let doc = DOCS_UPDATE_REF;
    let obj = ctx.json_object()?;
    let sha = required_strings(&obj, &["sha"], doc)?.remove(0);
    let force = opt_bool(&obj, "force", doc)?.unwrap_or(false);
    let full = format!("refs/{name}");
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    let Some(old) = r.refs.get(&full).cloned() else {
        return Err(Reply::error(422, "Reference does not exist", doc));
    };
    if !r.commits.contains_key(&sha) {
        return Err(Reply::error(422, "Object does not exist", doc));
    }
    if !force && !is_ancestor(r, &old, &sha) {
        return Err(Reply::error(422, "Update is not a fast forward", doc));
    }
    let base_url = s.base_url.clone();
    let r = s.repo_mut(full_name).ok_or_else(Reply::not_found)?;
    match full.strip_prefix("refs/heads/") {
        Some(branch) => move_branch(r, branch, &sha),
        None => {
            r.refs.insert(full.clone(), sha.clone());
        }
    }
    Ok(Reply::json(200, ref_json(&base_url, r, &full, &sha)))
}

/// Deleting a branch closes the open pull requests from or into it, as GitHub does.
fn delete_ref(s: &mut State, full_name: &str, name: &str) -> Reply {
    let full = format!("refs/{name}");
    let Some(r) = s.repo_mut(full_name) else { return Reply::not_found() };
    if r.refs.remove(&full).is_none() {
        return Reply::error(422, "Reference does not exist", DOCS_DELETE_REF);
    }
    if let Some(branch) = full.strip_prefix("refs/heads/") {
        let now = rfc3339(now_secs());
        for pr in r.prs.values_mut() {
            let from = !pr.spec.fork && pr.spec.head_ref == branch;
            if pr.state == "open" && (from || pr.spec.base_ref == branch) {
                pr.state = "closed";
                pr.closed_at = Some(now.clone());
                pr.updated_at = now.clone();
            }
        }
    }
    Reply::no_content()
}

// --- pull requests ---------------------------------------------------------------------------

fn next_pr_number(r: &Repo) -> u64 {
    r.prs.keys().next_back().map_or(1, |n| n + 1)
}

fn new_pr(spec: PrSpec, id: u64, title: String, now: &str) -> Pr {
    Pr {
        spec,
        id,
        state: "open",
        title,
        created_at: now.to_string(),
        updated_at: now.to_string(),
        previous_head: None,
        previous_body: None,
        previous_base: None,
        draft: false,
        maintainer_can_modify: false,
        merged: false,
        closed_at: None,
        merged_at: None,
    }
}

fn pr_error(field: Option<&str>, code: &str, message: Option<&str>, doc: &str) -> Reply {
    let mut e = json!({ "resource": "PullRequest", "code": code });
    if let Some(field) = field {
        e["field"] = json!(field);
    }
    if let Some(message) = message {
        e["message"] = json!(message);
    }
    Reply::validation_failed(json!([e]), doc)
}

fn already_exists(owner: &str, head_ref: &str, doc: &str) -> Reply {
    pr_error(None, "custom", Some(&format!("A pull request already exists for {owner}:{head_ref}.")), doc)
}

fn create_pull(s: &mut State, ctx: &Ctx, full_name: &str) -> Result<Reply, Reply> {
    let doc = DOCS_CREATE_PULL;
    let obj = ctx.json_object()?;
    let mut v = required_strings(&obj, &["head", "base"], doc)?;
    let base_arg = v.remove(1);
    let head_arg = v.remove(0);
    let title = opt_string(&obj, "title", "title", doc)?;
    let body = opt_string(&obj, "body", "body", doc)?;
    let draft = opt_bool(&obj, "draft", doc)?.unwrap_or(false);
    let maintainer_can_modify = opt_bool(&obj, "maintainer_can_modify", doc)?.unwrap_or(true);
    let Some(title) = title.filter(|t| !t.trim().is_empty()) else {
        return Err(Reply::validation_failed(
            json!([{ "resource": "Issue", "code": "missing_field", "field": "title" }]),
            doc,
        ));
    };
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    let (head_owner, head_ref) = match head_arg.split_once(':') {
        Some((o, b)) => (o.to_string(), b.to_string()),
        None => (r.owner.clone(), head_arg.clone()),
    };
    // Heads in forks are not modelled: another owner's branch does not exist here.
    let head_sha = r.refs.get(&format!("refs/heads/{head_ref}")).filter(|_| head_owner.eq_ignore_ascii_case(&r.owner));
    let Some(head_sha) = head_sha.cloned() else { return Err(pr_error(Some("head"), "invalid", None, doc)) };
    let Some(base_sha) = r.refs.get(&format!("refs/heads/{base_arg}")).cloned() else {
        return Err(pr_error(Some("base"), "invalid", None, doc));
    };
    let open_twin = r
        .prs
        .values()
        .any(|p| p.state == "open" && !p.spec.fork && p.spec.head_ref == head_ref && p.spec.base_ref == base_arg);
    if open_twin {
        return Err(already_exists(&r.owner, &head_ref, doc));
    }
    if is_ancestor(r, &head_sha, &base_sha) {
        let message = format!("No commits between {base_arg} and {head_arg}");
        return Err(pr_error(None, "custom", Some(&message), doc));
    }
    let id = s.next_id();
    let now = rfc3339(now_secs());
    let r = s.repo_mut(full_name).ok_or_else(Reply::not_found)?;
    let number = next_pr_number(r);
    let spec = PrSpec {
        number,
        base_sha,
        head_sha,
        base_ref: base_arg,
        head_ref,
        body,
        author: BOT_LOGIN.to_string(),
        fork: false,
    };
    let mut pr = new_pr(spec, id, title, &now);
    pr.draft = draft;
    pr.maintainer_can_modify = maintainer_can_modify;
    r.prs.insert(number, pr);
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    let pr = r.prs.get(&number).ok_or_else(Reply::not_found)?;
    Ok(Reply::created(pr_json(s, r, pr)))
}

fn list_pulls(s: &State, ctx: &Ctx, full_name: &str) -> Result<Reply, Reply> {
    let doc = DOCS_LIST_PULLS;
    let state =
        one_of(Some(ctx.query("state").unwrap_or("open").to_string()), &["open", "closed", "all"], "state", doc)?
            .unwrap_or_default();
    let sort = one_of(
        Some(ctx.query("sort").unwrap_or("created").to_string()),
        &["created", "updated", "popularity", "long-running"],
        "sort",
        doc,
    )?
    .unwrap_or_default();
    let default_direction = if sort == "created" { "desc" } else { "asc" };
    let direction = one_of(
        Some(ctx.query("direction").unwrap_or(default_direction).to_string()),
        &["asc", "desc"],
        "direction",
        doc,
    )?
    .unwrap_or_default();
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    let mut prs: Vec<&Pr> = r.prs.values().filter(|p| state == "all" || p.state == state).collect();
    if let Some(head) = ctx.query("head") {
        // `owner:branch`; a bare `owner` matches every branch of that owner.
        let (owner, branch) = match head.split_once(':') {
            Some((o, b)) => (o, Some(b)),
            None => (head, None),
        };
        prs.retain(|p| {
            let head_owner = if p.spec.fork { p.spec.author.as_str() } else { r.owner.as_str() };
            head_owner.eq_ignore_ascii_case(owner) && branch.is_none_or(|b| p.spec.head_ref == b)
        });
    }
    if let Some(base) = ctx.query("base") {
        prs.retain(|p| p.spec.base_ref == base);
    }
    if sort == "updated" {
        prs.sort_by(|a, b| (&a.updated_at, a.spec.number).cmp(&(&b.updated_at, b.spec.number)));
    } else {
        prs.sort_by(|a, b| (&a.created_at, a.spec.number).cmp(&(&b.created_at, b.spec.number)));
    }
    if direction == "desc" {
        prs.reverse();
    }
    let items: Vec<Value> = prs.iter().map(|p| pr_json(s, r, p)).collect();
    Ok(paginated(s, ctx, items, 30, 100))
}

fn update_pull(s: &mut State, ctx: &Ctx, full_name: &str, n: &str) -> Result<Reply, Reply> {
    let doc = DOCS_UPDATE_PULL;
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    let number = n.parse::<u64>().ok().filter(|n| r.prs.contains_key(n)).ok_or_else(Reply::not_found)?;
    let obj = ctx.json_object()?;
    let title = opt_string(&obj, "title", "title", doc)?;
    let body = opt_string(&obj, "body", "body", doc)?;
    let state = one_of(opt_string(&obj, "state", "state", doc)?, &["open", "closed"], "state", doc)?;
    let base = opt_string(&obj, "base", "base", doc)?;
    let maintainer_can_modify = opt_bool(&obj, "maintainer_can_modify", doc)?;
    if title.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(Reply::validation_failed(
            json!([{ "resource": "Issue", "code": "missing_field", "field": "title" }]),
            doc,
        ));
    }
    let pr = r.prs.get(&number).ok_or_else(Reply::not_found)?;
    let new_base = match &base {
        Some(b) => match r.refs.get(&format!("refs/heads/{b}")) {
            Some(sha) => Some((b.clone(), sha.clone())),
            None => return Err(pr_error(Some("base"), "invalid", None, doc)),
        },
        None => None,
    };
    let reopen = state.as_deref() == Some("open") && pr.state == "closed";
    let mut reopened_head = None;
    if reopen {
        let cannot = || {
            pr_error(
                Some("state"),
                "custom",
                Some("state cannot be changed. The pull request cannot be reopened."),
                doc,
            )
        };
        if pr.merged {
            return Err(cannot());
        }
        if !pr.spec.fork {
            let Some(head) = r.refs.get(&format!("refs/heads/{}", pr.spec.head_ref)) else { return Err(cannot()) };
            let base_ref = new_base.as_ref().map_or(pr.spec.base_ref.as_str(), |(b, _)| b.as_str());
            let twin = r.prs.values().any(|p| {
                p.spec.number != number
                    && p.state == "open"
                    && !p.spec.fork
                    && p.spec.head_ref == pr.spec.head_ref
                    && p.spec.base_ref == base_ref
            });
            if twin {
                return Err(already_exists(&r.owner, &pr.spec.head_ref, doc));
            }
            reopened_head = Some(head.clone());
        }
    }
    let now = rfc3339(now_secs());
    let r = s.repo_mut(full_name).ok_or_else(Reply::not_found)?;
    let pr = r.prs.get_mut(&number).ok_or_else(Reply::not_found)?;
    if let Some(title) = title {
        pr.title = title;
    }
    if obj.contains_key("body") {
        let old = std::mem::replace(&mut pr.spec.body, body);
        pr.previous_body = Some(old);
    }
    if let Some((base_ref, base_sha)) = new_base {
        pr.spec.base_ref = base_ref;
        pr.spec.base_sha = base_sha;
    }
    if let Some(m) = maintainer_can_modify {
        pr.maintainer_can_modify = m;
    }
    match state.as_deref() {
        Some("closed") if pr.state == "open" => {
            pr.state = "closed";
            pr.closed_at = Some(now.clone());
        }
        Some("open") if reopen => {
            pr.state = "open";
            pr.closed_at = None;
            if let Some(head) = reopened_head.filter(|h| *h != pr.spec.head_sha) {
                pr.previous_head = Some(std::mem::replace(&mut pr.spec.head_sha, head));
            }
        }
        _ => {}
    }
    pr.updated_at = now;
    let r = s.repo(full_name).ok_or_else(Reply::not_found)?;
    let pr = r.prs.get(&number).ok_or_else(Reply::not_found)?;
    Ok(Reply::json(200, pr_json(s, r, pr)))
}

// --- pagination ------------------------------------------------------------------------------

fn paginated(s: &State, ctx: &Ctx, items: Vec<Value>, default_per_page: usize, max_per_page: usize) -> Reply {
    let (page_items, link) = paginate(s, ctx, items, default_per_page, max_per_page);
    let reply = Reply::json(200, Value::Array(page_items));
    match link {
        Some(link) => reply.header("link", link),
        None => reply,
    }
}

fn page_params(ctx: &Ctx, default_per_page: usize, max_per_page: usize) -> (usize, usize) {
    let per_page = ctx
        .query("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default_per_page)
        .min(max_per_page)
        .max(1);
    let page = ctx.query("page").and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(1);
    (per_page, page)
}

/// One page of `items` and the `Link` header (absolute URLs on the fake's own base url).
fn paginate<T>(
    s: &State,
    ctx: &Ctx,
    items: Vec<T>,
    default_per_page: usize,
    max_per_page: usize,
) -> (Vec<T>, Option<String>) {
    let (per_page, page) = page_params(ctx, default_per_page, max_per_page);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let link = link_header(s, ctx, page, last);
    let page_items = items.into_iter().skip((page - 1).saturating_mul(per_page)).take(per_page).collect();
    (page_items, link)
}

fn link_header(s: &State, ctx: &Ctx, page: usize, last: usize) -> Option<String> {
    let url = |p: usize| {
        let mut parts: Vec<String> =
            ctx.query.iter().filter(|(k, _)| k != "page").map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
        parts.push(format!("page={p}"));
        format!("{}{}?{}", s.base_url, ctx.raw_path, parts.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", url(1)));
    }
    if links.is_empty() { None } else { Some(links.join(", ")) }
}

// --- check runs ------------------------------------------------------------------------------

#[derive(Default)]
struct CheckRunInput {
    name: Option<String>,
    head_sha: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    details_url: Option<String>,
    external_id: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    output: Option<(String, String, Option<String>, Vec<Value>)>,
    actions: Option<Vec<Value>>,
}

fn opt_string(obj: &Map<String, Value>, key: &str, path: &str, doc: &str) -> Result<Option<String>, Reply> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) => Ok(Some(v.clone())),
        Some(other) => Err(Reply::invalid(&format!("For 'properties/{path}', {other} is not a string."), doc)),
    }
}

fn one_of(value: Option<String>, allowed: &[&str], key: &str, doc: &str) -> Result<Option<String>, Reply> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => {
            let list = allowed.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
            Err(Reply::invalid(&format!("For 'properties/{key}', \"{v}\" is not one of [{list}]."), doc))
        }
        v => Ok(v),
    }
}

fn check_length(field: &str, value: &str, doc: &str) -> Result<(), Reply> {
    let chars = value.chars().count();
    if chars > MAX_OUTPUT_CHARS {
        return Err(Reply::invalid(
            &format!("Only {MAX_OUTPUT_CHARS} characters are allowed; {chars} were supplied."),
            doc,
        ));
    }
    if value.len() > MAX_OUTPUT_CHARS {
        return Err(Reply::validation_failed(
            json!([{
                "resource": "CheckRun",
                "code": "custom",
                "field": field,
                "message": format!("{field} exceeds a maximum bytesize of {MAX_OUTPUT_CHARS}"),
            }]),
            doc,
        ));
    }
    Ok(())
}

fn missing(keys: &[&str], doc: &str) -> Reply {
    let quoted = keys.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ");
    let verb = if keys.len() == 1 { "wasn't" } else { "weren't" };
    Reply::invalid(&format!("{quoted} {verb} supplied."), doc)
}

fn invalid_field(field: &str, doc: &str) -> Reply {
    Reply::validation_failed(json!([{ "resource": "CheckRun", "code": "invalid", "field": field }]), doc)
}

fn is_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'-') && digits(8..10)) {
        return false;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return false;
    }
    if !(digits(11..13) && b.get(13) == Some(&b':') && digits(14..16) && b.get(16) == Some(&b':') && digits(17..19)) {
        return false;
    }
    let mut rest = &v[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    let rb = rest.as_bytes();
    matches!(rest, "Z" | "z")
        || (rb.len() == 6
            && matches!(rb[0], b'+' | b'-')
            && rb[3] == b':'
            && rb[1..3].iter().chain(&rb[4..6]).all(u8::is_ascii_digit))
}

fn parse_check_run(obj: &Map<String, Value>, creating: bool) -> Result<CheckRunInput, Reply> {
    let doc = if creating { DOCS_CREATE_CHECK_RUN } else { DOCS_UPDATE_CHECK_RUN };
    let mut input = CheckRunInput {
        name: opt_string(obj, "name", "name", doc)?,
        head_sha: opt_string(obj, "head_sha", "head_sha", doc)?,
        details_url: opt_string(obj, "details_url", "details_url", doc)?,
        external_id: opt_string(obj, "external_id", "external_id", doc)?,
        started_at: opt_string(obj, "started_at", "started_at", doc)?,
        completed_at: opt_string(obj, "completed_at", "completed_at", doc)?,
        ..CheckRunInput::default()
    };
    if creating {
        let absent: Vec<&str> = [("name", &input.name), ("head_sha", &input.head_sha)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        if !absent.is_empty() {
            return Err(missing(&absent, doc));
        }
    }
    if input.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(invalid_field("name", doc));
    }
    input.status = one_of(opt_string(obj, "status", "status", doc)?, CHECK_STATUSES, "status", doc)?;
    input.conclusion = one_of(opt_string(obj, "conclusion", "conclusion", doc)?, CHECK_CONCLUSIONS, "conclusion", doc)?;
    if input.conclusion.is_none() && (input.status.as_deref() == Some("completed") || input.completed_at.is_some()) {
        return Err(missing(&["conclusion"], doc));
    }
    for (key, value) in [("started_at", &input.started_at), ("completed_at", &input.completed_at)] {
        match value {
            Some(v) if !is_timestamp(v) => {
                return Err(Reply::invalid(&format!("For 'properties/{key}', \"{v}\" is not a date-time."), doc));
            }
            _ => {}
        }
    }
    if input.details_url.as_deref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
        return Err(invalid_field("details_url", doc));
    }
    match obj.get("output") {
        None | Some(Value::Null) => {}
        Some(Value::Object(out)) => input.output = Some(parse_output(out, doc)?),
        Some(other) => return Err(Reply::invalid(&format!("For 'properties/output', {other} is not an object."), doc)),
    }
    match obj.get("actions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(actions)) => input.actions = Some(parse_actions(actions, doc)?),
        Some(other) => return Err(Reply::invalid(&format!("For 'properties/actions', {other} is not an array."), doc)),
    }
    Ok(input)
}

fn parse_output(out: &Map<String, Value>, doc: &str) -> Result<(String, String, Option<String>, Vec<Value>), Reply> {
    let title = opt_string(out, "title", "title", doc)?;
    let summary = opt_string(out, "summary", "summary", doc)?;
    let text = opt_string(out, "text", "text", doc)?;
    let absent: Vec<&str> =
        [("title", &title), ("summary", &summary)].iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
    if !absent.is_empty() {
        return Err(missing(&absent, doc));
    }
    let (title, summary) = (title.unwrap_or_default(), summary.unwrap_or_default());
    check_length("summary", &summary, doc)?;
    if let Some(text) = &text {
        check_length("text", text, doc)?;
    }
    let annotations = match out.get("annotations") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => {
            return Err(Reply::invalid(&format!("For 'properties/annotations', {other} is not an array."), doc));
        }
    };
    if annotations.len() > MAX_ANNOTATIONS_PER_REQUEST {
        return Err(Reply::invalid(
            &format!(
                "No more than {MAX_ANNOTATIONS_PER_REQUEST} items are allowed; {} were supplied.",
                annotations.len()
            ),
            doc,
        ));
    }
    for a in &annotations {
        validate_annotation(a, doc)?;
    }
    Ok((title, summary, text, annotations))
}

fn validate_annotation(a: &Value, doc: &str) -> Result<(), Reply> {
    let Some(obj) = a.as_object() else {
        return Err(Reply::invalid(&format!("For 'items', {a} is not an object."), doc));
    };
    let required = ["path", "start_line", "end_line", "annotation_level", "message"];
    let absent: Vec<&str> = required.iter().copied().filter(|k| obj.get(*k).is_none_or(Value::is_null)).collect();
    if !absent.is_empty() {
        return Err(missing(&absent, doc));
    }
    let path_ok = obj.get("path").and_then(Value::as_str).is_some_and(|p| !p.is_empty());
    let line = |k: &str| obj.get(k).and_then(Value::as_u64);
    let (Some(start), Some(end)) = (line("start_line"), line("end_line")) else {
        return Err(invalid_field("annotations", doc));
    };
    let level_ok = obj.get("annotation_level").and_then(Value::as_str).is_some_and(|l| ANNOTATION_LEVELS.contains(&l));
    let message = obj.get("message").and_then(Value::as_str);
    let message_ok = message.is_some_and(|m| m.len() <= MAX_ANNOTATION_MESSAGE_BYTES);
    let raw_ok =
        obj.get("raw_details").is_none_or(|r| r.as_str().is_some_and(|r| r.len() <= MAX_ANNOTATION_MESSAGE_BYTES));
    let title_ok = obj.get("title").is_none_or(|t| t.is_null() || t.as_str().is_some_and(|t| t.chars().count() <= 255));
    let has_columns = ["start_column", "end_column"].iter().any(|k| obj.get(*k).is_some_and(|v| !v.is_null()));
    let columns_ok = !has_columns || start == end;
    if !(path_ok && level_ok && message_ok && raw_ok && title_ok && columns_ok && start >= 1 && end >= start) {
        return Err(invalid_field("annotations", doc));
    }
    Ok(())
}

fn parse_actions(actions: &[Value], doc: &str) -> Result<Vec<Value>, Reply> {
    if actions.len() > 3 {
        return Err(Reply::invalid(
            &format!("No more than 3 items are allowed; {} were supplied.", actions.len()),
            doc,
        ));
    }
    for a in actions {
        let Some(obj) = a.as_object() else {
            return Err(Reply::invalid(&format!("For 'items', {a} is not an object."), doc));
        };
        let absent: Vec<&str> = ["label", "description", "identifier"]
            .into_iter()
            .filter(|k| obj.get(*k).and_then(Value::as_str).is_none())
            .collect();
        if !absent.is_empty() {
            return Err(missing(&absent, doc));
        }
        for (key, max) in [("label", 20), ("description", 40), ("identifier", 20)] {
            let len = obj.get(key).and_then(Value::as_str).map(|v| v.chars().count()).unwrap_or(0);
            if len > max {
                return Err(Reply::invalid(
                    &format!("For 'properties/{key}', the value is too long (maximum is {max} characters)."),
                    doc,
                ));
            }
        }
    }
    Ok(actions.to_vec())
}

fn apply_check_run(run: &mut CheckRun, input: CheckRunInput, now: &str) {
    let was_completed = run.status == "completed" && !run.statuses_seen.is_empty();
    if let Some(name) = input.name {
        run.name = name;
    }
    if let Some(v) = input.details_url {
        run.details_url = v;
    }
    if let Some(v) = input.external_id {
        run.external_id = v;
    }
    if let Some(v) = input.started_at {
        run.started_at = Some(v);
    }
    if let Some(status) = input.status {
        run.status = status;
    }
    if let Some(conclusion) = input.conclusion {
        run.conclusion = Some(conclusion);
        run.status = "completed".to_string();
    }
    if run.status == "completed" {
        if let Some(at) = input.completed_at {
            run.completed_at = Some(at);
        } else if !was_completed {
            run.completed_at = Some(now.to_string());
        }
    } else {
        run.conclusion = None;
        run.completed_at = None;
    }
    if let Some((title, summary, text, annotations)) = input.output {
        run.title = title;
        run.summary = summary;
        run.text = text.unwrap_or_default();
        run.annotations.extend(annotations);
    }
    if let Some(actions) = input.actions {
        run.actions = actions;
    }
    if run.statuses_seen.last() != Some(&run.status) {
        run.statuses_seen.push(run.status.clone());
    }
    if let Some(c) = run.conclusion.clone().filter(|c| run.conclusions_seen.last() != Some(c)) {
        run.conclusions_seen.push(c);
    }
}

fn create_check_run(s: &mut State, ctx: &Ctx, full_name: &str) -> Reply {
    let obj = match ctx.json_object() {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    let input = match parse_check_run(&obj, true) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    let head_sha = input.head_sha.clone().unwrap_or_default();
    let known = s.repo(full_name).is_some_and(|r| r.commits.contains_key(&head_sha) || pr_with_head(r, &head_sha));
    if !known {
        return Reply::error(422, &format!("No commit found for SHA: {head_sha}"), DOCS_CREATE_CHECK_RUN);
    }
    let id = s.next_id();
    let suite = suite_id(s, full_name, &head_sha);
    let now = rfc3339(now_secs());
    let mut run = CheckRun {
        id,
        name: String::new(),
        head_sha,
        status: "queued".to_string(),
        conclusion: None,
        title: String::new(),
        summary: String::new(),
        text: String::new(),
        annotations: Vec::new(),
        details_url: String::new(),
        external_id: String::new(),
        actions: Vec::new(),
        started_at: Some(now.clone()),
        completed_at: None,
        check_suite_id: suite,
        updates: 0,
        statuses_seen: Vec::new(),
        conclusions_seen: Vec::new(),
    };
    apply_check_run(&mut run, input, &now);
    let Some(r) = s.repo_mut(full_name) else { return Reply::not_found() };
    r.check_runs.push(run);
    let r = &s.repos[&full_name.to_ascii_lowercase()];
    Reply::json(201, check_run_json(s, r, &r.check_runs[r.check_runs.len() - 1]))
}

fn find_check_run(s: &State, full_name: &str, id: &str) -> Option<usize> {
    let id = id.parse::<u64>().ok()?;
    s.repo(full_name)?.check_runs.iter().position(|c| c.id == id)
}

fn update_check_run(s: &mut State, ctx: &Ctx, full_name: &str, id: &str) -> Reply {
    let Some(idx) = find_check_run(s, full_name, id) else { return Reply::not_found() };
    let obj = match ctx.json_object() {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    let mut input = match parse_check_run(&obj, false) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    input.head_sha = None;
    let now = rfc3339(now_secs());
    let Some(r) = s.repo_mut(full_name) else { return Reply::not_found() };
    let run = &mut r.check_runs[idx];
    apply_check_run(run, input, &now);
    run.updates += 1;
    let r = &s.repos[&full_name.to_ascii_lowercase()];
    Reply::json(200, check_run_json(s, r, &r.check_runs[idx]))
}

fn list_check_runs(s: &State, ctx: &Ctx, full_name: &str, reference: &str) -> Reply {
    let Some(r) = s.repo(full_name) else { return Reply::not_found() };
    let sha = if r.commits.contains_key(reference) || pr_with_head(r, reference) {
        reference.to_string()
    } else if let Some(sha) = resolve_ref(r, reference) {
        sha
    } else {
        return Reply::error(422, &format!("No commit found for SHA: {reference}"), DOCS);
    };
    let mut runs: Vec<&CheckRun> = r.check_runs.iter().filter(|c| c.head_sha == sha).collect();
    if let Some(name) = ctx.query("check_name") {
        runs.retain(|c| c.name == name);
    }
    if let Some(status) = ctx.query("status") {
        runs.retain(|c| c.status == status);
    }
    // Every check run here is the one App's.
    if ctx.query("app_id").is_some_and(|a| a != s.app_id.to_string()) {
        runs.clear();
    }
    if ctx.query("filter") != Some("all") {
        // "latest": the most recent run of each name.
        let mut seen = BTreeSet::new();
        let mut latest: Vec<&CheckRun> = runs.iter().rev().filter(|c| seen.insert(c.name.clone())).copied().collect();
        latest.reverse();
        runs = latest;
    }
    runs.reverse();
    let total = runs.len();
    let items: Vec<Value> = runs.into_iter().map(|c| check_run_json(s, r, c)).collect();
    let (page, link) = paginate(s, ctx, items, 30, 100);
    let reply = Reply::json(200, json!({ "total_count": total, "check_runs": page }));
    match link {
        Some(link) => reply.header("link", link),
        None => reply,
    }
}

fn pr_with_head(r: &Repo, sha: &str) -> bool {
    r.prs.values().any(|p| p.spec.head_sha == sha || p.spec.base_sha == sha)
}

fn suite_id(s: &mut State, full_name: &str, head_sha: &str) -> u64 {
    if let Some(id) = s.repo(full_name).and_then(|r| r.check_suites.get(head_sha).copied()) {
        return id;
    }
    let id = s.next_id();
    if let Some(r) = s.repo_mut(full_name) {
        r.check_suites.insert(head_sha.to_string(), id);
    }
    id
}

// --- comments --------------------------------------------------------------------------------

fn comment_body(ctx: &Ctx) -> Result<String, Reply> {
    const DOC: &str = "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
    let obj = ctx.json_object()?;
    let body = match obj.get("body") {
        None | Some(Value::Null) => return Err(missing(&["body"], DOC)),
        Some(Value::String(b)) => b.clone(),
        Some(other) => return Err(Reply::invalid(&format!("For 'properties/body', {other} is not a string."), DOC)),
    };
    let error = |message: &str| {
        Reply::validation_failed(
            json!([{ "resource": "IssueComment", "code": "unprocessable", "field": "data", "message": message }]),
            DOC,
        )
    };
    if body.trim().is_empty() {
        return Err(error("Body cannot be blank"));
    }
    if body.chars().count() > MAX_COMMENT_CHARS {
        return Err(error(&format!("Body is too long (maximum is {MAX_COMMENT_CHARS} characters)")));
    }
    Ok(body)
}

fn list_comments(s: &State, ctx: &Ctx, full_name: &str, n: &str) -> Reply {
    let Some(r) = s.repo(full_name) else { return Reply::not_found() };
    let Some(n) = n.parse::<u64>().ok().filter(|n| r.prs.contains_key(n)) else { return Reply::not_found() };
    let items: Vec<Value> =
        r.comments.iter().filter(|c| c.issue == n).map(|c| comment_json(&s.base_url, r, c)).collect();
    paginated(s, ctx, items, 30, 100)
}

fn create_comment(s: &mut State, ctx: &Ctx, full_name: &str, n: &str) -> Reply {
    let exists = s.repo(full_name).zip(n.parse::<u64>().ok()).filter(|(r, n)| r.prs.contains_key(n)).map(|(_, n)| n);
    let Some(n) = exists else { return Reply::not_found() };
    let body = match comment_body(ctx) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let id = s.next_id();
    let now = rfc3339(now_secs());
    let comment = StoredComment {
        id,
        issue: n,
        body,
        author: BOT_LOGIN.to_string(),
        created_at: now.clone(),
        updated_at: now,
        edits: 0,
        reactions: Vec::new(),
    };
    let base_url = s.base_url.clone();
    let Some(r) = s.repo_mut(full_name) else { return Reply::not_found() };
    r.comments.push(comment.clone());
    Reply::json(201, comment_json(&base_url, r, &comment))
}

/// `POST /repos/{o}/{r}/issues/comments/{id}/reactions`: GitHub's eight reactions only.
fn add_reaction(s: &mut State, ctx: &Ctx, full_name: &str, id: &str) -> Reply {
    const CONTENTS: [&str; 8] = ["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];
    let Ok(id) = id.parse::<u64>() else { return Reply::not_found() };
    let content = serde_json::from_slice::<Value>(&ctx.body)
        .ok()
        .and_then(|v| v.get("content").and_then(Value::as_str).map(str::to_owned));
    let Some(content) = content.filter(|c| CONTENTS.contains(&c.as_str())) else {
        return Reply::json(
            422,
            json!({ "message": "Validation Failed", "errors": [{ "resource": "Reaction", "code": "invalid", "field": "content" }] }),
        );
    };
    let reaction_id = s.next_id();
    let Some(r) = s.repo_mut(full_name) else { return Reply::not_found() };
    let Some(c) = r.comments.iter_mut().find(|c| c.id == id) else { return Reply::not_found() };
    c.reactions.push(content.clone());
    Reply::json(201, json!({ "id": reaction_id, "content": content, "user": user_json(BOT_LOGIN) }))
}

fn update_comment(s: &mut State, ctx: &Ctx, full_name: &str, id: &str) -> Reply {
    let Ok(id) = id.parse::<u64>() else { return Reply::not_found() };
    if !s.repo(full_name).is_some_and(|r| r.comments.iter().any(|c| c.id == id)) {
        return Reply::not_found();
    }
    let body = match comment_body(ctx) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let base_url = s.base_url.clone();
    let Some(r) = s.repo_mut(full_name) else { return Reply::not_found() };
    let Some(c) = r.comments.iter_mut().find(|c| c.id == id) else { return Reply::not_found() };
    c.body = body;
    c.edits += 1;
    c.updated_at = rfc3339(now_secs());
    let c = c.clone();
    Reply::json(200, comment_json(&base_url, r, &c))
}

// ---------------------------------------------------------------------------------------------
// JSON shapes
// ---------------------------------------------------------------------------------------------

fn user_id(login: &str) -> u64 {
    // Stable per login: FNV-1a, kept in a plausible id range.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in login.to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    1_000_000 + h % 90_000_000
}

fn user_json(login: &str) -> Value {
    let kind = if login.ends_with("[bot]") { "Bot" } else { "User" };
    json!({
        "login": login,
        "id": user_id(login),
        "node_id": format!("U_{}", user_id(login)),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", user_id(login)),
        "html_url": format!("https://github.com/{login}"),
        "type": kind,
        "site_admin": false,
    })
}

fn installation_json(id: u64) -> Value {
    json!({ "id": id, "node_id": format!("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{id}") })
}

fn app_json(app_id: u64) -> Value {
    json!({
        "id": app_id,
        "slug": APP_SLUG,
        "node_id": format!("A_{app_id}"),
        "name": APP_SLUG,
        "owner": user_json("evalgate-org"),
        "external_url": "https://example.invalid/evalgate",
        "html_url": format!("https://github.com/apps/{APP_SLUG}"),
    })
}

fn repo_json(base_url: &str, r: &Repo) -> Value {
    json!({
        "id": r.id,
        "node_id": format!("R_{}", r.id),
        "name": r.name,
        "full_name": r.full_name,
        "private": false,
        "owner": user_json(&r.owner),
        "html_url": format!("https://github.com/{}", r.full_name),
        "url": format!("{base_url}/repos/{}", r.full_name),
        "fork": false,
        "default_branch": r.default_branch,
        "visibility": "public",
    })
}

fn head_repo_json(base_url: &str, r: &Repo, pr: &Pr) -> Value {
    if !pr.spec.fork {
        return repo_json(base_url, r);
    }
    let full_name = format!("{}/{}", pr.spec.author, r.name);
    let id = user_id(&full_name);
    json!({
        "id": id,
        "node_id": format!("R_{id}"),
        "name": r.name,
        "full_name": full_name,
        "private": false,
        "owner": user_json(&pr.spec.author),
        "html_url": format!("https://github.com/{full_name}"),
        "url": format!("{base_url}/repos/{full_name}"),
        "fork": true,
        "default_branch": r.default_branch,
        "visibility": "public",
    })
}

/// Commits on `head` that `base` lacks (at least 1, as fixtures have no history).
fn commits_between(r: &Repo, base: &str, head: &str) -> usize {
    let base = ancestors(r, base);
    ancestors(r, head).difference(&base).count().max(1)
}

fn author_association(r: &Repo, login: &str) -> &'static str {
    if login.ends_with("[bot]") {
        return "NONE";
    }
    if login.eq_ignore_ascii_case(&r.owner) {
        return "OWNER";
    }
    match r.permissions.get(&login.to_ascii_lowercase()).map(String::as_str) {
        None | Some("none") => "CONTRIBUTOR",
        Some(_) => "COLLABORATOR",
    }
}

fn pr_json(s: &State, r: &Repo, pr: &Pr) -> Value {
    let n = pr.spec.number;
    let api = format!("{}/repos/{}", s.base_url, r.full_name);
    let html = format!("https://github.com/{}/pull/{n}", r.full_name);
    let empty = Commit::default();
    let base = r.commits.get(&pr.spec.base_sha).unwrap_or(&empty);
    let head = r.commits.get(&pr.spec.head_sha).unwrap_or(&empty);
    let files = diff_files(&s.base_url, r, base, head, &pr.spec.head_sha);
    let sum = |k: &str| files.iter().filter_map(|f| f[k].as_u64()).sum::<u64>();
    let head_owner = if pr.spec.fork { pr.spec.author.as_str() } else { r.owner.as_str() };
    json!({
        "url": format!("{api}/pulls/{n}"),
        "id": pr.id,
        "node_id": format!("PR_{}", pr.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": format!("{api}/issues/{n}"),
        "comments_url": format!("{api}/issues/{n}/comments"),
        "statuses_url": format!("{api}/statuses/{}", pr.spec.head_sha),
        "number": n,
        "state": pr.state,
        "locked": false,
        "title": pr.title,
        "user": user_json(&pr.spec.author),
        "body": pr.spec.body,
        "labels": [],
        "created_at": pr.created_at,
        "updated_at": pr.updated_at,
        "closed_at": pr.closed_at,
        "merged_at": pr.merged_at,
        "merge_commit_sha": Value::Null,
        "draft": pr.draft,
        "head": {
            "label": format!("{head_owner}:{}", pr.spec.head_ref),
            "ref": pr.spec.head_ref,
            "sha": pr.spec.head_sha,
            "user": user_json(head_owner),
            "repo": head_repo_json(&s.base_url, r, pr),
        },
        "base": {
            "label": format!("{}:{}", r.owner, pr.spec.base_ref),
            "ref": pr.spec.base_ref,
            "sha": pr.spec.base_sha,
            "user": user_json(&r.owner),
            "repo": repo_json(&s.base_url, r),
        },
        "author_association": author_association(r, &pr.spec.author),
        "merged": pr.merged,
        "mergeable": Value::Null,
        "mergeable_state": "unknown",
        "comments": r.comments.iter().filter(|c| c.issue == n).count(),
        "commits": commits_between(r, &pr.spec.base_sha, &pr.spec.head_sha),
        "additions": sum("additions"),
        "deletions": sum("deletions"),
        "changed_files": files.len(),
        // GitHub reports it only for heads in forks.
        "maintainer_can_modify": pr.maintainer_can_modify && pr.spec.fork,
    })
}

/// The short PR form inside check payloads; empty for fork PRs, as GitHub does.
fn check_pull_requests(s: &State, r: &Repo, head_sha: &str) -> Vec<Value> {
    r.prs
        .values()
        .filter(|p| p.state == "open" && !p.spec.fork && p.spec.head_sha == head_sha)
        .map(|p| {
            let repo_min =
                json!({ "id": r.id, "url": format!("{}/repos/{}", s.base_url, r.full_name), "name": r.name });
            json!({
                "url": format!("{}/repos/{}/pulls/{}", s.base_url, r.full_name, p.spec.number),
                "id": p.id,
                "number": p.spec.number,
                "head": { "ref": p.spec.head_ref, "sha": p.spec.head_sha, "repo": repo_min },
                "base": { "ref": p.spec.base_ref, "sha": p.spec.base_sha, "repo": repo_min },
            })
        })
        .collect()
}

fn check_suite_json(s: &State, r: &Repo, head_sha: &str, suite_id: u64) -> Value {
    let runs: Vec<&CheckRun> = r.check_runs.iter().filter(|c| c.head_sha == head_sha).collect();
    let (status, conclusion) = if !runs.is_empty() && runs.iter().all(|c| c.status == "completed") {
        let worst = ["action_required", "failure", "timed_out", "cancelled", "stale", "neutral", "success", "skipped"]
            .iter()
            .find(|k| runs.iter().any(|c| c.conclusion.as_deref() == Some(**k)))
            .copied();
        ("completed", worst)
    } else if runs.is_empty() {
        ("queued", None)
    } else {
        ("in_progress", None)
    };
    let head_branch = r.prs.values().rev().find(|p| p.spec.head_sha == head_sha).map(|p| p.spec.head_ref.clone());
    let before = r.prs.values().rev().find(|p| p.spec.head_sha == head_sha).and_then(|p| p.previous_head.clone());
    json!({
        "id": suite_id,
        "node_id": format!("CS_{suite_id}"),
        "head_branch": head_branch,
        "head_sha": head_sha,
        "status": status,
        "conclusion": conclusion,
        "url": format!("{}/repos/{}/check-suites/{suite_id}", s.base_url, r.full_name),
        "before": before.unwrap_or_else(|| "0".repeat(40)),
        "after": head_sha,
        "pull_requests": check_pull_requests(s, r, head_sha),
        "app": app_json(s.app_id),
        "latest_check_runs_count": runs.len(),
        "check_runs_url": format!("{}/repos/{}/check-suites/{suite_id}/check-runs", s.base_url, r.full_name),
    })
}

fn check_run_json(s: &State, r: &Repo, c: &CheckRun) -> Value {
    let api = format!("{}/repos/{}/check-runs/{}", s.base_url, r.full_name, c.id);
    let html = format!("https://github.com/{}/runs/{}", r.full_name, c.id);
    let opt = |v: &str| if v.is_empty() { Value::Null } else { json!(v) };
    let output = json!({
        "title": opt(&c.title),
        "summary": opt(&c.summary),
        "text": opt(&c.text),
        "annotations_count": c.annotations.len(),
        "annotations_url": format!("{api}/annotations"),
    });
    let mut suite = check_suite_json(s, r, &c.head_sha, c.check_suite_id);
    if let Some(m) = suite.as_object_mut() {
        m.remove("app");
    }
    json!({
        "id": c.id,
        "node_id": format!("CR_{}", c.id),
        "head_sha": c.head_sha,
        "external_id": c.external_id,
        "url": api,
        "html_url": html,
        "details_url": if c.details_url.is_empty() { json!(html) } else { json!(c.details_url) },
        "status": c.status,
        "conclusion": c.conclusion,
        "started_at": c.started_at,
        "completed_at": c.completed_at,
        "output": output,
        "name": c.name,
        "check_suite": suite,
        "app": app_json(s.app_id),
        "actions": c.actions,
        "pull_requests": check_pull_requests(s, r, &c.head_sha),
    })
}

fn issue_json(base_url: &str, r: &Repo, pr: &Pr) -> Value {
    let n = pr.spec.number;
    let api = format!("{base_url}/repos/{}", r.full_name);
    let html = format!("https://github.com/{}/pull/{n}", r.full_name);
    json!({
        "url": format!("{api}/issues/{n}"),
        "comments_url": format!("{api}/issues/{n}/comments"),
        "html_url": html,
        "id": pr.id,
        "node_id": format!("I_{}", pr.id),
        "number": n,
        "title": pr.title,
        "user": user_json(&pr.spec.author),
        "labels": [],
        "state": pr.state,
        "locked": false,
        "comments": r.comments.iter().filter(|c| c.issue == n).count(),
        "created_at": pr.created_at,
        "updated_at": pr.updated_at,
        "closed_at": pr.closed_at,
        "author_association": author_association(r, &pr.spec.author),
        "body": pr.spec.body,
        "pull_request": {
            "url": format!("{api}/pulls/{n}"),
            "html_url": html,
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "merged_at": pr.merged_at,
        },
    })
}

fn comment_json(base_url: &str, r: &Repo, c: &StoredComment) -> Value {
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("{base_url}/repos/{}/issues/comments/{}", r.full_name, c.id),
        "html_url": format!("https://github.com/{}/pull/{}#issuecomment-{}", r.full_name, c.issue, c.id),
        "issue_url": format!("{base_url}/repos/{}/issues/{}", r.full_name, c.issue),
        "body": c.body,
        "user": user_json(&c.author),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "author_association": if c.author.ends_with("[bot]") { "NONE" } else { author_association(r, &c.author) },
    })
}

fn permission_json(r: &Repo, user: &str) -> Value {
    let role = if user.eq_ignore_ascii_case(&r.owner) && !r.permissions.contains_key(&user.to_ascii_lowercase()) {
        "admin".to_string()
    } else {
        r.permissions.get(&user.to_ascii_lowercase()).cloned().unwrap_or_else(|| "none".to_string())
    };
    let permission = match role.as_str() {
        "admin" => "admin",
        "maintain" | "write" => "write",
        "none" => "none",
        _ => "read",
    };
    let rank = match role.as_str() {
        "admin" => 5,
        "maintain" => 4,
        "write" => 3,
        "triage" => 2,
        "none" => 0,
        _ => 1,
    };
    let mut user_v = user_json(user);
    user_v["permissions"] = json!({
        "admin": rank >= 5,
        "maintain": rank >= 4,
        "push": rank >= 3,
        "triage": rank >= 2,
        "pull": rank >= 1,
    });
    user_v["role_name"] = json!(role);
    json!({ "permission": permission, "role_name": role, "user": user_v })
}

// ---------------------------------------------------------------------------------------------
// Small helpers: time, hashing, encoding
// ---------------------------------------------------------------------------------------------

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a unix time.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n).map(|_| ALPHABET[(random_u64() % ALPHABET.len() as u64) as usize] as char).collect()
}

fn request_id() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:04X}:{:04X}:{:06X}:{:07X}:{:08X}",
        a & 0xffff,
        (a >> 16) & 0xffff,
        b & 0xff_ffff,
        (b >> 24) & 0xfff_ffff,
        a >> 32
    )
}

/// Git's object id: SHA-1 of `"{kind} {len}\0"` + content, in hex.
pub fn git_object_sha(kind: &str, content: &[u8]) -> String {
    let mut data = format!("{kind} {}\0", content.len()).into_bytes();
    data.extend_from_slice(content);
    sha1(&data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Git's blob sha of `content` (what `git hash-object` prints).
pub fn blob_sha(content: &[u8]) -> String {
    git_object_sha("blob", content)
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped =
            if bytes[i] == b'%' { s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) } else { None };
        if let Some(v) = escaped {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}
