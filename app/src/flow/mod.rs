//! The pull-request gate: what each job does. A delivery job reads what changed and posts the
//! pre-registration and golden-set checks and one queued check per touched bundle; a gate job
//! evaluates one bundle at one head and completes its check. Both are safe to run again after
//! a crash: check runs are found by their stored ids, results come from the result cache.

pub mod aggregate;
pub mod checks;
pub mod comment;
pub mod gate;
pub mod merge_group;
pub mod pr;
pub mod touched;

pub use crate::jobs::{Ctx, JobError, installation_of};
