//! A check run as GitHub knows it, typed: a status that is queued, in progress, or completed with
//! one of GitHub's conclusions, so a "completed" check without a conclusion (or a conclusion on a
//! queued one) cannot be built.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Check-run titles are one line; GitHub shows little more than this.
fn title_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 250 {
        format!("{}…", line.chars().take(249).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// A check run's `output`, within GitHub's limits.
pub fn output(title: &str, summary: &str, link: Option<&str>) -> Value {
    json!({ "title": title_line(title), "summary": crate::render::fit(summary, crate::render::MAX_CHECK_TEXT, link) })
}

/// The conclusions GitHub accepts for a completed check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    Success,
    Failure,
    Neutral,
    Cancelled,
    Skipped,
    TimedOut,
    ActionRequired,
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Neutral => "neutral",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Skipped => "skipped",
            Conclusion::TimedOut => "timed_out",
            Conclusion::ActionRequired => "action_required",
        }
    }

    pub fn parse(s: &str) -> Option<Conclusion> {
        Some(match s {
            "success" => Conclusion::Success,
            "failure" => Conclusion::Failure,
            "neutral" => Conclusion::Neutral,
            "cancelled" => Conclusion::Cancelled,
            "skipped" => Conclusion::Skipped,
            "timed_out" => Conclusion::TimedOut,
            "action_required" => Conclusion::ActionRequired,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Conclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a check run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "conclusion", rename_all = "snake_case")]
pub enum Status {
    Queued,
    InProgress,
    Completed(Conclusion),
}

/// A button on a check run (`requested_action`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub label: String,
    pub description: String,
    pub identifier: String,
}

/// What one check run must show: kept in the database as JSON, sent to GitHub by
/// [`CheckBody::to_github`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckBody {
    #[serde(flatten)]
    pub status: Status,
    pub title: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

impl CheckBody {
    pub fn new(status: Status, title: impl Into<String>, summary: impl Into<String>) -> CheckBody {
        CheckBody { status, title: title.into(), summary: summary.into(), details_url: None, actions: Vec::new() }
    }

    pub fn conclusion(&self) -> Option<Conclusion> {
        match self.status {
            Status::Completed(c) => Some(c),
            _ => None,
        }
    }

    /// The body of a create or update request, within GitHub's limits (one-line title, summary
    /// cut to 65,535 characters with a link to the full report when there is one).
    pub fn to_github(&self) -> Value {
        let output = output(&self.title, &self.summary, self.details_url.as_deref());
        let mut body = match self.status {
            Status::Queued => json!({ "status": "queued" }),
            Status::InProgress => json!({ "status": "in_progress" }),
            Status::Completed(c) => json!({ "status": "completed", "conclusion": c.as_str(),
                "completed_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }),
        };
        body["output"] = output;
        if let Some(url) = &self.details_url {
            body["details_url"] = json!(url);
        }
        if !self.actions.is_empty() {
            body["actions"] = json!(self.actions);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_round_trips_through_its_stored_form() {
        let b = CheckBody::new(Status::Completed(Conclusion::ActionRequired), "t", "s");
        let text = serde_json::to_string(&b).expect("serialises");
        assert!(text.contains(r#""status":"completed","conclusion":"action_required""#), "{text}");
        assert_eq!(serde_json::from_str::<CheckBody>(&text).expect("parses"), b);
        let q = CheckBody::new(Status::Queued, "q", "s");
        assert_eq!(serde_json::from_str::<CheckBody>(&serde_json::to_string(&q).unwrap()).unwrap(), q);
    }

    #[test]
    fn github_gets_a_conclusion_only_with_completed() {
        let b = CheckBody::new(Status::InProgress, "t", "s").to_github();
        assert_eq!(b["status"], "in_progress");
        assert!(b.get("conclusion").is_none());
        let c = CheckBody::new(Status::Completed(Conclusion::Failure), "t", "s").to_github();
        assert_eq!(c["conclusion"], "failure");
        assert!(c.get("completed_at").is_some());
    }

    #[test]
    fn every_conclusion_parses_back() {
        for c in [
            Conclusion::Success,
            Conclusion::Failure,
            Conclusion::Neutral,
            Conclusion::Cancelled,
            Conclusion::Skipped,
            Conclusion::TimedOut,
            Conclusion::ActionRequired,
        ] {
            assert_eq!(Conclusion::parse(c.as_str()), Some(c));
        }
        assert_eq!(Conclusion::parse("stale"), None);
    }
}
