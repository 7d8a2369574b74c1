//! Logs go to stderr, as text or one JSON object per line (`EVALGATE_LOG_FORMAT`), filtered by
//! `RUST_LOG` (default: warnings, so a local run prints only its own output).

use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests calling in-process) keeps the first subscriber.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
