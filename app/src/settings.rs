//! Settings from the environment, as SPEC's "Settings" table names them. Secrets are wrapped
//! in [`Secret`] at the moment they are read, so no log line or error can print them.

use anyhow::{Context as _, bail};
use evaluators::provider::{Endpoint, Endpoints, Limits, Secret};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://evalgate.db";
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_CONCURRENCY: usize = 16;
/// More calls in flight than this is a typo, not a plan.
pub const MAX_CONCURRENCY: usize = 1024;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn database_url() -> String {
    var("EVALGATE_DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

pub fn endpoints() -> Endpoints {
    Endpoints {
        anthropic: Endpoint {
            base_url: var("EVALGATE_ANTHROPIC_BASE_URL").unwrap_or_else(|| DEFAULT_ANTHROPIC_BASE_URL.to_owned()),
            api_key: var("ANTHROPIC_API_KEY").map(Secret::new),
        },
        openai: Endpoint {
            base_url: var("EVALGATE_OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.to_owned()),
            api_key: var("OPENAI_API_KEY").map(Secret::new),
        },
    }
}

/// `--concurrency` wins over `EVALGATE_CONCURRENCY`; `EVALGATE_RPM` is optional.
pub fn limits(flag: Option<usize>) -> anyhow::Result<Limits> {
    let concurrency = match flag {
        Some(n) => n,
        None => match var("EVALGATE_CONCURRENCY") {
            Some(v) => {
                v.trim().parse().with_context(|| format!("EVALGATE_CONCURRENCY must be a whole number, found `{v}`"))?
            }
            None => DEFAULT_CONCURRENCY,
        },
    };
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        bail!("concurrency must be between 1 and {MAX_CONCURRENCY}, found {concurrency}");
    }
    let rpm = match var("EVALGATE_RPM") {
        Some(v) => {
            let n: u32 =
                v.trim().parse().with_context(|| format!("EVALGATE_RPM must be a whole number, found `{v}`"))?;
            if n == 0 {
                bail!("EVALGATE_RPM must be at least 1 (unset it for no limit)");
            }
            Some(n)
        }
        None => None,
    };
    Ok(Limits { concurrency, rpm })
}

/// `EVALGATE_LOG_FORMAT`: `text` (default) or `json`.
pub fn log_json() -> anyhow::Result<bool> {
    match var("EVALGATE_LOG_FORMAT").as_deref() {
        None | Some("text") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => bail!("EVALGATE_LOG_FORMAT must be `text` or `json`, found `{other}`"),
    }
}
