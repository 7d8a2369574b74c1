//! The events evalgate acts on, as small structs of the fields it reads. The action is read
//! first: an event or action evalgate does not handle becomes [`Event::Ignored`] without its
//! body being decoded further, so new actions GitHub adds never make a delivery fail.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// `owner/name` of a repository, as GitHub spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
pub struct RepoName(pub String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum PrAction {
    Opened,
    Synchronize,
    Reopened,
    Edited,
    ReadyForReview,
    /// Closed, merged or not: its running evaluations are cancelled.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum MergeGroupAction {
    ChecksRequested,
    Destroyed,
}

/// What one delivery asks evalgate to do.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub enum Event {
    Ping,
    PullRequest {
        installation: u64,
        repo: RepoName,
        number: u64,
        action: PrAction,
        head_sha: String,
        sender: String,
    },
    /// A check run's "Re-run" (`rerequested`) or one of its buttons (`requested_action`).
    CheckRun {
        installation: u64,
        repo: RepoName,
        check_run_id: u64,
        name: String,
        head_sha: String,
        /// Empty for pull requests from forks: GitHub leaves them out of check payloads.
        pull_requests: Vec<u64>,
        requested_action: Option<String>,
        sender: String,
    },
    /// "Re-run all checks" of a check suite.
    CheckSuite {
        installation: u64,
        repo: RepoName,
        head_sha: String,
        pull_requests: Vec<u64>,
        sender: String,
    },
    /// A comment on a pull request, new or edited (comments on plain issues are ignored). An
    /// edit carries the body before it, so that only the commands it adds run.
    PrComment {
        installation: u64,
        repo: RepoName,
        number: u64,
        comment_id: u64,
        body: String,
        previous_body: Option<String>,
        author: String,
        author_is_bot: bool,
        /// Who made this event happen (created or edited the comment): the actor.
        sender: String,
    },
    /// A merge-queue group: `checks_requested` asks for the required checks on the group's
    /// head, `destroyed` (merged, or taken out of the queue) cancels what still runs.
    MergeGroup {
        installation: u64,
        repo: RepoName,
        action: MergeGroupAction,
        head_sha: String,
        base_sha: String,
        head_ref: String,
    },
    /// The App was installed on repositories, or removed from them.
    Installation {
        installation: u64,
        added: Vec<RepoName>,
        removed: Vec<RepoName>,
    },
    /// Acknowledged and not acted on, with the reason (for logs and metrics).
    Ignored(String),
}

impl Event {
    /// Whether acting on the event needs a job (ping and ignored events do not).
    pub fn needs_work(&self) -> bool {
        !matches!(self, Event::Ping | Event::Ignored(_))
    }

    /// The pull request the event is about, when the payload names one.
    pub fn pr_number(&self) -> Option<u64> {
        match self {
            Event::PullRequest { number, .. } | Event::PrComment { number, .. } => Some(*number),
            Event::CheckRun { pull_requests, .. } | Event::CheckSuite { pull_requests, .. } => {
                pull_requests.first().copied()
            }
            _ => None,
        }
    }

    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Event::PullRequest { repo, .. }
            | Event::CheckRun { repo, .. }
            | Event::CheckSuite { repo, .. }
            | Event::PrComment { repo, .. }
            | Event::MergeGroup { repo, .. } => Some(repo),
            Event::Ping | Event::Installation { .. } | Event::Ignored(_) => None,
        }
    }
}

/// A payload that is JSON but not the shape GitHub documents for its event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event} payload: {reason}")]
pub struct PayloadError {
    pub event: String,
    pub reason: String,
}

#[derive(Deserialize)]
struct Head {
    action: Option<String>,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct PrPayload {
    installation: Option<Installation>,
    repository: Repository,
    number: u64,
    pull_request: PrBody,
    sender: User,
}

#[derive(Deserialize)]
struct PrBody {
    head: PrHead,
}

#[derive(Deserialize)]
struct PrHead {
    sha: String,
}

#[derive(Deserialize)]
struct PrRef {
    number: u64,
}

#[derive(Deserialize)]
struct CheckRunPayload {
    installation: Option<Installation>,
    repository: Repository,
    check_run: CheckRunBody,
    requested_action: Option<RequestedAction>,
    sender: User,
}

#[derive(Deserialize)]
struct CheckRunBody {
    id: u64,
    name: String,
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<PrRef>,
}

#[derive(Deserialize)]
struct RequestedAction {
    identifier: String,
}

#[derive(Deserialize)]
struct CheckSuitePayload {
    installation: Option<Installation>,
    repository: Repository,
    check_suite: CheckSuiteBody,
    sender: User,
}

#[derive(Deserialize)]
struct CheckSuiteBody {
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<PrRef>,
}

#[derive(Deserialize)]
struct CommentPayload {
    installation: Option<Installation>,
    sender: User,
    #[serde(default)]
    changes: Option<Changes>,
    repository: Repository,
    issue: Issue,
    comment: Comment,
}

#[derive(Deserialize)]
struct MergeGroupPayload {
    installation: Option<Installation>,
    repository: Repository,
    merge_group: MergeGroupBody,
}

#[derive(Deserialize)]
struct MergeGroupBody {
    head_sha: String,
    head_ref: String,
    base_sha: String,
}

#[derive(Deserialize)]
struct InstallationPayload {
    installation: Installation,
    #[serde(default)]
    repositories: Vec<Repository>,
    #[serde(default)]
    repositories_added: Vec<Repository>,
    #[serde(default)]
    repositories_removed: Vec<Repository>,
}

#[derive(Deserialize)]
struct Changes {
    body: Option<Change>,
}

#[derive(Deserialize)]
struct Change {
    from: Option<String>,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    /// `null` when the author's account was deleted ("ghost").
    #[serde(default)]
    user: Option<User>,
}

fn decode<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, PayloadError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        PayloadError { event: event.to_owned(), reason: format!("at `{path}`: {}", e.inner()) }
    })
}

/// Without an installation there is no token to act with: such deliveries (a webhook set up
/// by hand rather than through the App) are acknowledged and ignored.
fn installation_of(i: Option<Installation>) -> Option<u64> {
    i.map(|i| i.id)
}

fn no_installation() -> Result<Event, PayloadError> {
    Ok(Event::Ignored("no installation in the payload".into()))
}

/// Reads a delivery of `event` (the `X-GitHub-Event` header).
pub fn parse_event(event: &str, body: &[u8]) -> Result<Event, PayloadError> {
    parse_delivery(event, body).map(|(_, e)| e)
}

/// Reads a delivery: its `action` (empty when it has none) and the event.
pub fn parse_delivery(event: &str, body: &[u8]) -> Result<(String, Event), PayloadError> {
    let head: Head = decode(event, body)?;
    let action = head.action.unwrap_or_default();
    let parsed = parse_action(event, &action, body)?;
    Ok((action, parsed))
}

fn parse_action(event: &str, action: &str, body: &[u8]) -> Result<Event, PayloadError> {
    let action = action.to_owned();
    let ignored = || Ok(Event::Ignored(format!("{event}.{action} is not handled")));
    match event {
        "ping" => Ok(Event::Ping),
        "pull_request" => {
            let action = match action.as_str() {
                "opened" => PrAction::Opened,
                "synchronize" => PrAction::Synchronize,
                "reopened" => PrAction::Reopened,
                "edited" => PrAction::Edited,
                "ready_for_review" => PrAction::ReadyForReview,
                "closed" => PrAction::Closed,
                _ => return ignored(),
            };
            let p: PrPayload = decode(event, body)?;
            let Some(installation) = installation_of(p.installation) else { return no_installation() };
            Ok(Event::PullRequest {
                installation,
                repo: RepoName(p.repository.full_name),
                number: p.number,
                action,
                head_sha: p.pull_request.head.sha,
                sender: p.sender.login,
            })
        }
        "check_run" if matches!(action.as_str(), "rerequested" | "requested_action") => {
            let p: CheckRunPayload = decode(event, body)?;
            let Some(installation) = installation_of(p.installation) else { return no_installation() };
            if action == "requested_action" && p.requested_action.is_none() {
                return Err(PayloadError {
                    event: event.into(),
                    reason: "a requested_action delivery without `requested_action`".into(),
                });
            }
            Ok(Event::CheckRun {
                installation,
                repo: RepoName(p.repository.full_name),
                check_run_id: p.check_run.id,
                name: p.check_run.name,
                head_sha: p.check_run.head_sha,
                pull_requests: p.check_run.pull_requests.iter().map(|r| r.number).collect(),
                requested_action: p.requested_action.map(|a| a.identifier),
                sender: p.sender.login,
            })
        }
        "check_suite" if action == "rerequested" => {
            let p: CheckSuitePayload = decode(event, body)?;
            let Some(installation) = installation_of(p.installation) else { return no_installation() };
            Ok(Event::CheckSuite {
                installation,
                repo: RepoName(p.repository.full_name),
                head_sha: p.check_suite.head_sha,
                pull_requests: p.check_suite.pull_requests.iter().map(|r| r.number).collect(),
                sender: p.sender.login,
            })
        }
        "issue_comment" if matches!(action.as_str(), "created" | "edited") => {
            let p: CommentPayload = decode(event, body)?;
            if p.issue.pull_request.is_none() {
                return Ok(Event::Ignored("a comment on an issue, not a pull request".into()));
            }
            let Some(installation) = installation_of(p.installation) else { return no_installation() };
            Ok(Event::PrComment {
                installation,
                repo: RepoName(p.repository.full_name),
                number: p.issue.number,
                comment_id: p.comment.id,
                body: p.comment.body.unwrap_or_default(),
                // An edit without the old body (GitHub sends `changes` only when the body changed).
                previous_body: if action == "edited" {
                    Some(p.changes.and_then(|c| c.body).and_then(|b| b.from).unwrap_or_default())
                } else {
                    None
                },
                author_is_bot: p
                    .comment
                    .user
                    .as_ref()
                    .is_some_and(|u| u.kind.as_deref() == Some("Bot") || u.login.ends_with("[bot]")),
                author: p.comment.user.map_or_else(|| "ghost".to_owned(), |u| u.login),
                sender: p.sender.login,
            })
        }
        "merge_group" => {
            let action = match action.as_str() {
                "checks_requested" => MergeGroupAction::ChecksRequested,
                "destroyed" => MergeGroupAction::Destroyed,
                _ => return ignored(),
            };
            let p: MergeGroupPayload = decode(event, body)?;
            let Some(installation) = installation_of(p.installation) else { return no_installation() };
            Ok(Event::MergeGroup {
                installation,
                repo: RepoName(p.repository.full_name),
                action,
                head_sha: p.merge_group.head_sha,
                base_sha: p.merge_group.base_sha,
                head_ref: p.merge_group.head_ref,
            })
        }
        "installation" | "installation_repositories" => {
            let p: InstallationPayload = decode(event, body)?;
            let names = |v: Vec<Repository>| v.into_iter().map(|r| RepoName(r.full_name)).collect::<Vec<_>>();
            let (added, removed) = match (event, action.as_str()) {
                ("installation", "created" | "new_permissions_accepted" | "unsuspend") => {
                    (names(p.repositories), vec![])
                }
                ("installation", "deleted" | "suspend") => (vec![], names(p.repositories)),
                ("installation_repositories", "added" | "removed") => {
                    (names(p.repositories_added), names(p.repositories_removed))
                }
                _ => return ignored(),
            };
            Ok(Event::Installation { installation: p.installation.id, added, removed })
        }
        _ => ignored(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_action_is_ignored_without_decoding_the_rest() {
        let e = parse_event("pull_request", br#"{"action":"milestoned"}"#);
        assert!(matches!(e, Ok(Event::Ignored(_))), "{e:?}");
    }

    #[test]
    fn an_unknown_event_is_ignored() {
        assert!(matches!(parse_event("star", b"{}"), Ok(Event::Ignored(_))));
    }

    #[test]
    fn a_handled_action_with_a_wrong_shape_names_the_field() {
        let err = parse_event("pull_request", br#"{"action":"opened","number":"seven"}"#).unwrap_err();
        assert!(err.to_string().contains("pull_request payload"), "{err}");
    }

    #[test]
    fn a_merge_group_asks_for_checks_on_its_head_against_its_base() {
        let body = br#"{"action":"checks_requested","installation":{"id":3},"repository":{"full_name":"o/r"},
            "merge_group":{"head_sha":"aaa","head_ref":"refs/heads/gh-readonly-queue/main/pr-7-bbb","base_sha":"ccc","base_ref":"refs/heads/main"}}"#;
        let e = parse_event("merge_group", body).expect("parses");
        assert_eq!(
            e,
            Event::MergeGroup {
                installation: 3,
                repo: RepoName("o/r".into()),
                action: MergeGroupAction::ChecksRequested,
                head_sha: "aaa".into(),
                base_sha: "ccc".into(),
                head_ref: "refs/heads/gh-readonly-queue/main/pr-7-bbb".into(),
            }
        );
        let missing =
            br#"{"action":"destroyed","installation":{"id":3},"repository":{"full_name":"o/r"},"merge_group":{}}"#;
        assert!(parse_event("merge_group", missing).unwrap_err().to_string().contains("merge_group"));
    }

    #[test]
    fn not_json_is_an_error() {
        assert!(parse_event("pull_request", b"<html>").is_err());
    }

    /// GitHub's own example payloads (../shared/github-webhook-examples beside the repository;
    /// `.ci/run` runs this with `--ignored`) parse, and the handled ones into the event they are.
    #[test]
    #[ignore = "needs ../shared/github-webhook-examples"]
    fn githubs_example_payloads_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/github-webhook-examples");
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!("{}: {e}: GitHub's example payloads belong at ../shared beside the repository", dir.display())
        });
        let mut parsed = std::collections::BTreeMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            let event = name.split('.').next().unwrap_or_default();
            let body = std::fs::read(entry.path()).expect("readable example");
            match parse_event(event, &body) {
                Ok(e) => {
                    parsed.insert(name, e);
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        let get = |n: &str| parsed.get(n).unwrap_or_else(|| panic!("{n} missing from the examples"));
        assert!(matches!(
            get("pull_request.opened.payload.json"),
            Event::PullRequest { action: PrAction::Opened, installation: 1, .. }
        ));
        assert!(matches!(
            get("pull_request.synchronize.payload.json"),
            Event::PullRequest { action: PrAction::Synchronize, .. }
        ));
        assert!(matches!(get("pull_request.closed.payload.json"), Event::PullRequest { action: PrAction::Closed, .. }));
        assert!(matches!(get("ping.payload.json"), Event::Ping));
        match get("check_run.requested_action.payload.json") {
            Event::CheckRun { requested_action: Some(id), pull_requests, .. } => {
                assert_eq!(id, "lgtm|26764");
                assert_eq!(pull_requests, &vec![26764]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(get("check_suite.rerequested.payload.json"), Event::CheckSuite { .. }));
        assert!(matches!(
            get("issue_comment.created.with-installation.payload.json"),
            Event::PrComment { .. } | Event::Ignored(_)
        ));
        // Sent without an installation: nothing to act with.
        assert!(matches!(get("issue_comment.created.payload.json"), Event::Ignored(_)));
    }
}
