//! evalgate's engine: bundles, golden sets, checks, providers, judge and statistics.
//!
//! Nothing here knows about GitHub: the app crate turns webhooks into calls of this library.
//! Inputs from customers' repositories are parsed into types that cannot hold invalid values
//! ([`ids::Sha256`], [`snapshot::Snapshot`], [`ids::ToolName`] …), and every problem found on the
//! way is a [`diagnostic::Diagnostic`] with file, line and column.

pub mod bundle;
pub mod canonical;
pub mod config;
pub mod decode;
pub mod diagnostic;
pub mod engine;
pub mod gate;
pub mod golden;
pub mod golden_diff;
pub mod golden_import;
pub mod ids;
pub mod instrument;
pub mod limits;
pub mod lint;
pub mod parse;
pub mod pin_writer;
pub mod pins;
pub mod preregistration;
pub mod pricing;
pub mod provider;
pub mod repo;
pub mod report;
pub mod snapshot;
pub mod snapshot_writer;
pub mod stats;
pub mod tools;
pub mod tree;
pub mod workspace;
