//! Listing a provider's models.
use crate::provider::{Endpoint, RetryPolicy};
use crate::snapshot::Provider;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub created: Option<i64>,
    pub shutdown: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PinsError {
    #[error("{variable} is not set: the {provider} API key is needed to list its models")]
    MissingKey { provider: Provider, variable: &'static str },
}

pub fn http_client() -> Result<reqwest::Client, PinsError> {
    Ok(reqwest::Client::new())
}

pub async fn list_models(
    http: &reqwest::Client,
    provider: Provider,
    endpoint: &Endpoint,
) -> Result<Vec<ModelInfo>, PinsError> {
    list_models_with(http, provider, endpoint, &RetryPolicy::default()).await
}

pub async fn list_models_with(
    http: &reqwest::Client,
    provider: Provider,
    endpoint: &Endpoint,
    policy: &RetryPolicy,
) -> Result<Vec<ModelInfo>, PinsError> {
    let _ = (http, policy, endpoint);
    Err(PinsError::MissingKey { provider, variable: "X" })
}
