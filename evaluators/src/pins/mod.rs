//! Pin tracking (SPEC "Pin tracking"): list a provider's models ([`list_models`]), group
//! snapshots into families ([`family`]), and tell for one pinned snapshot the newest snapshot
//! worth proposing, the lag in days and the retirement ([`assess`]).
//!
//! Used by `evalgate pins` and by the App's daily record and weekly bump job. Typical use:
//!
//! ```no_run
//! # async fn f(endpoint: evaluators::provider::Endpoint, policy: evaluators::snapshot::PinPolicy) -> Result<(), evaluators::pins::PinsError> {
//! use evaluators::pins;
//! use evaluators::snapshot::Provider;
//! let http = pins::http_client()?;
//! let models = pins::list_models(&http, Provider::Anthropic, &endpoint).await?;
//! let models = pins::without_aliases(Provider::Anthropic, &models, &policy);
//! let now = 1_800_000_000;
//! let a = pins::assess(Provider::Anthropic, "claude-sonnet-4-5-20250929", &models, now, 7);
//! # let _ = a; Ok(()) }
//! ```

pub mod assess;
pub mod family;
pub mod models;

pub use assess::{Assessment, URGENT_DAYS, assess, without_aliases};
pub use family::{family, is_preview, proposable};
pub use models::{ModelInfo, PinsError, http_client, list_models, list_models_with, release_times_meaningful};
