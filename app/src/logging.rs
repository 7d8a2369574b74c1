//! Logs go to stderr, as text or one JSON object per line (`EVALGATE_LOG_FORMAT`), filtered by
//! `RUST_LOG` (default: warnings, so a local run prints only its own output; `info` for `serve`,
//! whose logs are its output). JSON lines carry the fields of every span they are in: delivery
//! id, repository, pull request, bundle.

use tracing_subscriber::EnvFilter;

pub fn init(json: bool, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colours only for a person at a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    // A second init (tests calling in-process) keeps the first subscriber.
    let _ =
        if json { builder.json().with_current_span(true).with_span_list(true).try_init() } else { builder.try_init() };
}
