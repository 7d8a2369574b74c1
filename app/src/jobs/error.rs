//! Why a job did not finish: worth another attempt, or not.

use crate::github::GitHubError;

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (GitHub or the database was unavailable).
    #[error("{0}")]
    Retry(String),
    /// Will not get better by trying again.
    #[error("{0}")]
    Fatal(String),
}

impl From<GitHubError> for JobError {
    fn from(e: GitHubError) -> Self {
        match &e {
            GitHubError::Status { status, .. } if status.is_client_error() && status.as_u16() != 429 => {
                JobError::Fatal(e.to_string())
            }
            GitHubError::Setup(_) => JobError::Fatal(e.to_string()),
            _ => JobError::Retry(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Retry(format!("database: {e}"))
    }
}
