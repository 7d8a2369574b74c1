//! The REST calls evalgate makes, each reading only the fields it needs from GitHub's reply.

use super::client::{GitHubError, Installation};
use base64::Engine as _;
use http::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn decode<T: DeserializeOwned>(path: &str, v: Value) -> Result<T, GitHubError> {
    serde_path_to_error::deserialize(v).map_err(|e| GitHubError::Malformed {
        method: Method::GET,
        path: path.to_owned(),
        reason: format!("at `{}`: {}", e.path(), e.inner()),
    })
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct PullRequest {
    #[serde(default)]
    pub state: String,
    /// The pull request's page on GitHub.
    #[serde(default)]
    pub html_url: String,
    pub body: Option<String>,
    pub user: User,
    pub head: Branch,
    pub base: Branch,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct User {
    pub login: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Branch {
    pub sha: String,
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    /// `null` when a fork was deleted.
    pub repo: Option<BranchRepo>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct BranchRepo {
    pub full_name: String,
}

impl PullRequest {
    /// A pull request whose head lives in another repository than its base.
    pub fn is_fork(&self) -> bool {
        match (&self.head.repo, &self.base.repo) {
            (Some(h), Some(b)) => h.full_name != b.full_name,
            // A deleted head repository can only have been a fork.
            _ => true,
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct PrFile {
    pub filename: String,
    pub previous_filename: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct TreeEntry {
    pub path: String,
    pub mode: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub sha: String,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Tree {
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Blob {
    content: String,
    #[serde(default)]
    encoding: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    /// GitHub sends `null` for a comment whose author's account was deleted.
    #[serde(default)]
    pub user: Option<CommentUser>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct CommentUser {
    #[serde(rename = "type", default)]
    pub kind: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Created {
    id: u64,
    #[serde(default)]
    number: Option<u64>,
}

impl Created {
    /// A pull request's number (its `id` is another, global, number).
    fn id_or_number(&self) -> u64 {
        self.number.unwrap_or(self.id)
    }
}

/// A user's permission on a repository, as GitHub ranks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    /// Write, maintain or admin: who may steer evalgate.
    pub fn can_write(self) -> bool {
        self >= Permission::Write
    }
}

impl Installation {
    pub async fn pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, GitHubError> {
        let path = format!("/repos/{repo}/pulls/{number}");
        let reply = self.request(Method::GET, &path, None, true).await?;
        decode(&path, reply.body)
    }

    /// The open pull requests whose head is `sha` (`GET /repos/{o}/{r}/commits/{sha}/pulls`):
    /// how a check payload that lists none (a fork's) is mapped to its pull request when
    /// evalgate has not seen that head yet.
    pub async fn pulls_with_head(&self, repo: &str, sha: &str) -> Result<Vec<u64>, GitHubError> {
        let path = format!("/repos/{repo}/commits/{sha}/pulls?per_page=100");
        #[derive(serde::Deserialize)]
        struct Listed {
            number: u64,
            #[serde(default)]
            state: String,
            head: Branch,
        }
        let items = self.paginate(&path, None).await?;
        let mut out = Vec::new();
        for v in items {
            let p: Listed = decode(&path, v)?;
            if p.state == "open" && p.head.sha == sha {
                out.push(p.number);
            }
        }
        Ok(out)
    }

    /// The merge base of `head_sha` and the branch `base_ref`: what a pull request's change is
    /// measured against (`GET /repos/{o}/{r}/compare/{base}...{head}`).
    pub async fn merge_base(&self, repo: &str, base_ref: &str, head_sha: &str) -> Result<String, GitHubError> {
        let path = format!("/repos/{repo}/compare/{base_ref}...{head_sha}?per_page=1");
        let reply = self.request(Method::GET, &path, None, true).await?;
        #[derive(serde::Deserialize)]
        struct Compare {
            merge_base_commit: Sha,
        }
        #[derive(serde::Deserialize)]
        struct Sha {
            sha: String,
        }
        Ok(decode::<Compare>(&path, reply.body)?.merge_base_commit.sha)
    }

    /// Every file the pull request changes (all pages, 100 a page).
    pub async fn pull_request_files(&self, repo: &str, number: u64) -> Result<Vec<PrFile>, GitHubError> {
        let path = format!("/repos/{repo}/pulls/{number}/files?per_page=100");
        let items = self.paginate(&path, None).await?;
        items.into_iter().map(|v| decode(&path, v)).collect()
    }

    /// Every entry of the commit's tree.
    pub async fn tree(&self, repo: &str, sha: &str) -> Result<Vec<TreeEntry>, GitHubError> {
        let path = format!("/repos/{repo}/git/trees/{sha}?recursive=1");
        let reply = self.request(Method::GET, &path, None, true).await?;
        let tree: Tree = decode(&path, reply.body)?;
        if tree.truncated {
            return Err(GitHubError::Malformed {
                method: Method::GET,
                path,
                reason: "the repository's tree is too large for one listing (GitHub truncated it)".into(),
            });
        }
        Ok(tree.tree)
    }

    pub async fn blob(&self, repo: &str, blob_sha: &str) -> Result<Vec<u8>, GitHubError> {
        let path = format!("/repos/{repo}/git/blobs/{blob_sha}");
        let reply = self.request(Method::GET, &path, None, true).await?;
        let blob: Blob = decode(&path, reply.body)?;
        if blob.encoding != "base64" {
            return Err(GitHubError::Malformed {
                method: Method::GET,
                path,
                reason: format!("blob encoding `{}`, expected base64", blob.encoding),
            });
        }
        let compact: String = blob.content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(compact).map_err(|e| GitHubError::Malformed {
            method: Method::GET,
            path,
            reason: format!("blob content is not base64: {e}"),
        })
    }

    /// Creates a check run, never twice: when the POST fails in a way that may have reached
    /// GitHub, the head's check runs of that name are listed first and an existing one adopted.
    pub async fn create_check_run(&self, repo: &str, body: &Value) -> Result<u64, GitHubError> {
        let path = format!("/repos/{repo}/check-runs");
        let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let head = body.get("head_sha").and_then(Value::as_str).unwrap_or_default().to_owned();
        let external_id = body.get("external_id").and_then(Value::as_str).map(str::to_owned);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.request(Method::POST, &path, Some(body), false).await {
                Ok(reply) => return Ok(decode::<Created>(&path, reply.body)?.id),
                Err(e) if e.is_ambiguous() && attempt < 5 => {
                    if let Some(id) = self.find_check_run(repo, &head, &name, external_id.as_deref()).await? {
                        return Ok(id);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(300 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The newest check run of `name` on `head_sha` (with `external_id`, when given).
    pub async fn find_check_run(
        &self,
        repo: &str,
        head_sha: &str,
        name: &str,
        external_id: Option<&str>,
    ) -> Result<Option<u64>, GitHubError> {
        let path = format!(
            "/repos/{repo}/commits/{head_sha}/check-runs?check_name={}&app_id={}&per_page=100",
            encode(name),
            self.app_id
        );
        let runs = self.paginate(&path, Some("check_runs")).await?;
        Ok(runs
            .iter()
            .filter(|r| r.get("name").and_then(Value::as_str) == Some(name))
            // Only this App's: another App may post a check of the same name on the commit.
            .filter(|r| r.pointer("/app/id").and_then(Value::as_u64) == Some(self.app_id))
            .filter(|r| external_id.is_none() || r.get("external_id").and_then(Value::as_str) == external_id)
            .filter_map(|r| r.get("id").and_then(Value::as_u64))
            .max())
    }

    /// Updates a check run (the same PATCH twice is harmless, so it is retried).
    pub async fn update_check_run(&self, repo: &str, id: u64, body: &Value) -> Result<(), GitHubError> {
        let path = format!("/repos/{repo}/check-runs/{id}");
        self.request(Method::PATCH, &path, Some(body), true).await.map(|_| ())
    }

    pub async fn comments(&self, repo: &str, number: u64) -> Result<Vec<IssueComment>, GitHubError> {
        let path = format!("/repos/{repo}/issues/{number}/comments?per_page=100");
        let items = self.paginate(&path, None).await?;
        items.into_iter().map(|v| decode(&path, v)).collect()
    }

    pub async fn create_comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, GitHubError> {
        let path = format!("/repos/{repo}/issues/{number}/comments");
        let reply = self.request(Method::POST, &path, Some(&json!({ "body": body })), false).await?;
        Ok(decode::<Created>(&path, reply.body)?.id)
    }

    pub async fn update_comment(&self, repo: &str, comment_id: u64, body: &str) -> Result<(), GitHubError> {
        let path = format!("/repos/{repo}/issues/comments/{comment_id}");
        self.request(Method::PATCH, &path, Some(&json!({ "body": body })), true).await.map(|_| ())
    }

    /// Reacts to a comment (`+1`, `eyes`, `confused` …) so its author sees it was read.
    pub async fn react(&self, repo: &str, comment_id: u64, content: &str) -> Result<(), GitHubError> {
        let path = format!("/repos/{repo}/issues/comments/{comment_id}/reactions");
        // A reaction twice is one reaction on GitHub, so a retry is harmless.
        self.request(Method::POST, &path, Some(&json!({ "content": content })), true).await.map(|_| ())
    }

    pub async fn permission(&self, repo: &str, user: &str) -> Result<Permission, GitHubError> {
        let path = format!("/repos/{repo}/collaborators/{}/permission", encode(user));
        let reply = match self.request(Method::GET, &path, None, true).await {
            Ok(r) => r,
            // Not a collaborator at all.
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => return Ok(Permission::None),
            Err(e) => return Err(e),
        };
        let field = |k: &str| reply.body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        // `role_name` tells maintain and triage apart; `permission` folds them into write/read.
        let p = match (field("role_name").as_str(), field("permission").as_str()) {
            ("admin", _) | (_, "admin") => Permission::Admin,
            ("maintain", _) => Permission::Maintain,
            ("write", _) | (_, "write") => Permission::Write,
            ("triage", _) => Permission::Triage,
            ("read", _) | (_, "read") => Permission::Read,
            _ => Permission::None,
        };
        Ok(p)
    }
}

/// A pull request as the listing gives it (for a bump branch's history).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PullSummary {
    pub number: u64,
    pub state: String,
    #[serde(default)]
    pub merged_at: Option<String>,
    pub head: Branch,
}

impl Installation {
    pub async fn default_branch(&self, repo: &str) -> Result<String, GitHubError> {
        let path = format!("/repos/{repo}");
        let reply = self.request(Method::GET, &path, None, true).await?;
        #[derive(serde::Deserialize)]
        struct Repo {
            default_branch: String,
        }
        Ok(decode::<Repo>(&path, reply.body)?.default_branch)
    }

    /// The commit a branch points at, or `None` when there is no such branch.
    pub async fn branch_head(&self, repo: &str, branch: &str) -> Result<Option<String>, GitHubError> {
        let path = format!("/repos/{repo}/git/ref/heads/{branch}");
        match self.request(Method::GET, &path, None, true).await {
            Ok(reply) => Ok(reply.body["object"]["sha"].as_str().map(str::to_owned)),
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn created_sha(&self, path: &str, body: &Value) -> Result<String, GitHubError> {
        // Creating the same git object twice gives the same object: safe to retry.
        let reply = self.request(Method::POST, path, Some(body), true).await?;
        reply.body["sha"].as_str().map(str::to_owned).ok_or_else(|| GitHubError::Malformed {
            method: Method::POST,
            path: path.to_owned(),
            reason: "no `sha` in the reply".into(),
        })
    }

    /// A commit on `parent` whose tree is `parent`'s with `path` set to `content`.
    pub async fn commit_file(
        &self,
        repo: &str,
        parent: &str,
        path: &str,
        content: &[u8],
        message: &str,
    ) -> Result<String, GitHubError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        let blob = self
            .created_sha(&format!("/repos/{repo}/git/blobs"), &json!({ "content": encoded, "encoding": "base64" }))
            .await?;
        let parent_tree = {
            let p = format!("/repos/{repo}/git/commits/{parent}");
            let reply = self.request(Method::GET, &p, None, true).await?;
            reply.body["tree"]["sha"].as_str().map(str::to_owned).ok_or_else(|| GitHubError::Malformed {
                method: Method::GET,
                path: p,
                reason: "no `tree.sha` in the commit".into(),
            })?
        };
        let tree = self
            .created_sha(
                &format!("/repos/{repo}/git/trees"),
                &json!({ "base_tree": parent_tree, "tree": [{ "path": path, "mode": "100644", "type": "blob", "sha": blob }] }),
            )
            .await?;
        self.created_sha(
            &format!("/repos/{repo}/git/commits"),
            &json!({ "message": message, "tree": tree, "parents": [parent] }),
        )
        .await
    }

    pub async fn create_branch(&self, repo: &str, branch: &str, sha: &str) -> Result<(), GitHubError> {
        let path = format!("/repos/{repo}/git/refs");
        self.request(Method::POST, &path, Some(&json!({ "ref": format!("refs/heads/{branch}"), "sha": sha })), false)
            .await
            .map(|_| ())
    }

    /// Points `branch` at `sha`, replacing what it held (only ever evalgate's own commits).
    pub async fn force_branch(&self, repo: &str, branch: &str, sha: &str) -> Result<(), GitHubError> {
        let path = format!("/repos/{repo}/git/refs/heads/{branch}");
        self.request(Method::PATCH, &path, Some(&json!({ "sha": sha, "force": true })), true).await.map(|_| ())
    }

    /// The pull requests from `branch` (of this repository), newest first.
    pub async fn pulls_from(&self, repo: &str, branch: &str) -> Result<Vec<PullSummary>, GitHubError> {
        let owner = repo.split('/').next().unwrap_or_default();
        let path = format!("/repos/{repo}/pulls?state=all&head={}&per_page=100", encode(&format!("{owner}:{branch}")));
        let items = self.paginate(&path, None).await?;
        let mut pulls: Vec<PullSummary> = items.into_iter().map(|v| decode(&path, v)).collect::<Result<_, _>>()?;
        pulls.retain(|p| p.head.git_ref == branch);
        pulls.sort_by_key(|p| std::cmp::Reverse(p.number));
        Ok(pulls)
    }

    pub async fn create_pull(
        &self,
        repo: &str,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<u64, GitHubError> {
        let path = format!("/repos/{repo}/pulls");
        // `maintainer_can_modify` is about forks; on a branch of the repository itself GitHub
        // refuses it or ignores it, so it is not sent.
        let body = json!({ "title": title, "head": head, "base": base, "body": body });
        let reply = self.request(Method::POST, &path, Some(&body), false).await?;
        Ok(decode::<Created>(&path, reply.body)?.id_or_number())
    }

    pub async fn update_pull(&self, repo: &str, number: u64, title: &str, body: &str) -> Result<(), GitHubError> {
        let path = format!("/repos/{repo}/pulls/{number}");
        self.request(Method::PATCH, &path, Some(&json!({ "title": title, "body": body })), true).await.map(|_| ())
    }
}

/// Percent-encodes a path or query component.
fn encode(s: &str) -> String {
    /// RFC 3986's unreserved characters stay as they are; everything else is encoded.
    const COMPONENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(super::encode("evalgate/refund-agent"), "evalgate%2Frefund-agent");
        assert_eq!(super::encode("a b"), "a%20b");
    }

    #[test]
    fn permissions_rank_as_github_ranks_them() {
        use super::Permission::*;
        assert!(Write.can_write() && Maintain.can_write() && Admin.can_write());
        assert!(!Triage.can_write() && !Read.can_write() && !None.can_write());
    }
}
