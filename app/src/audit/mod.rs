//! The audit trail: every gate decision, pre-registration, threshold edit, command, override and
//! approval as an append-only entry chained to the previous one by sha256, and the evidence an
//! auditor exports and verifies offline.

pub mod entry;
pub mod export;
pub mod verify;

pub use entry::{Entry, GENESIS, Kind};
