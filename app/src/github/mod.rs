//! Talking to GitHub as the App: App JWT → installation tokens through octocrab, one long-lived
//! client per installation (octocrab keeps an installation's token cache in its client), and
//! our own retry policy on top (octocrab's blind retries are off, because retrying a POST that
//! creates a check run could create two).

pub mod api;
pub mod check;
pub mod client;
pub mod tree;

pub use client::{GitHubApp, GitHubError, Installation};
