//! Pin tracking (SPEC "Pin tracking"): list a provider's models ([`list_models`]), group
//! snapshots into families ([`family`]), and tell for one pinned snapshot the newest snapshot
//! worth proposing, the lag in days and the retirement ([`assess`]).
//!
//! Used by `evalgate pins` and by the App's daily record and weekly bump job.

pub mod assess;
pub mod family;
pub mod models;

pub use assess::{Assessment, assess, without_aliases};
pub use family::{family, proposable};
pub use models::{ModelInfo, PinsError, http_client, list_models, list_models_with};
