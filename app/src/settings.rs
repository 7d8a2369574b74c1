//! Settings from the environment, as SPEC's "Settings" table names them. Secrets are wrapped
//! in [`Secret`] at the moment they are read, so no log line or error can print them.

use anyhow::{Context as _, bail};
use evaluators::provider::{Endpoint, Endpoints, Limits, Secret};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://evalgate.db";
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Days stored deliveries and finished jobs are kept.
pub const DEFAULT_RETENTION_DAYS: u64 = 30;
/// More calls in flight than this is a typo, not a plan.
pub const MAX_CONCURRENCY: usize = 1024;

/// The settings file read when present in the current folder. It sets the same variables as
/// the environment, under the same names (`EVALGATE_BIND = "0.0.0.0:3000"`); the environment
/// wins where both set one.
pub const SETTINGS_FILE: &str = "evalgate.toml";

/// Every variable SPEC names (and two additions), the only keys the file may hold.
const KNOWN: &[&str] = &[
    "EVALGATE_DATABASE_URL",
    "EVALGATE_BIND",
    "EVALGATE_PUBLIC_URL",
    "EVALGATE_GITHUB_API_URL",
    "EVALGATE_APP_ID",
    "EVALGATE_PRIVATE_KEY_PATH",
    "EVALGATE_PRIVATE_KEY",
    "EVALGATE_WEBHOOK_SECRET",
    "EVALGATE_ADMIN_TOKEN",
    "ANTHROPIC_API_KEY",
    "EVALGATE_ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "EVALGATE_OPENAI_BASE_URL",
    "EVALGATE_PIN_SCHEDULE",
    "EVALGATE_CONCURRENCY",
    "EVALGATE_LOG_FORMAT",
    "EVALGATE_RPM",
    "EVALGATE_GITHUB_URL",
    "EVALGATE_LINK_SECRET",
    "EVALGATE_RETENTION_DAYS",
    "EVALGATE_WORKERS",
    "EVALGATE_JOB_LEASE_SECS",
];

static FILE: std::sync::OnceLock<std::collections::BTreeMap<String, String>> = std::sync::OnceLock::new();

/// Reads `evalgate.toml` when there is one; a file that is not valid TOML, or that names a
/// setting evalgate does not have, stops start-up with the place and a suggestion.
pub fn load_file() -> anyhow::Result<()> {
    let path = std::path::Path::new(SETTINGS_FILE);
    let values = match std::fs::read_to_string(path) {
        Ok(text) => parse_file(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => bail!("{SETTINGS_FILE}: cannot read it: {e}"),
    };
    let _ = FILE.set(values);
    Ok(())
}

pub(crate) fn parse_file(text: &str) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{SETTINGS_FILE}: {e}"))?;
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in table {
        if !KNOWN.contains(&key.as_str()) {
            let near = KNOWN.iter().copied().max_by(|a, b| {
                strsim::jaro_winkler(&key, a)
                    .partial_cmp(&strsim::jaro_winkler(&key, b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            match near.filter(|n| strsim::jaro_winkler(&key, n) >= 0.8) {
                Some(n) => bail!("{SETTINGS_FILE}: unknown setting `{key}`; did you mean `{n}`?"),
                None => bail!("{SETTINGS_FILE}: unknown setting `{key}`; the settings are {}", KNOWN.join(", ")),
            }
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            other => bail!("{SETTINGS_FILE}: `{key}` must be a string or a whole number, found {}", other.type_str()),
        };
        out.insert(key, text);
    }
    Ok(out)
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| FILE.get().and_then(|f| f.get(name).cloned())).filter(|v| !v.trim().is_empty())
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

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:3000";
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// The web host of GitHub's manifest flow (`evalgate setup`); GitHub Enterprise's otherwise.
pub const DEFAULT_GITHUB_URL: &str = "https://github.com";
/// Jobs worked on at once by one server.
pub const DEFAULT_WORKERS: usize = 4;
/// How long a claimed job stays a worker's without a heartbeat.
pub const DEFAULT_JOB_LEASE_SECS: u64 = 30;

/// What `evalgate serve` needs. Secrets are [`Secret`]s from the moment they are read.
pub struct ServeSettings {
    pub bind: String,
    pub public_url: String,
    pub github_api_url: String,
    pub app_id: u64,
    pub private_key: Secret,
    /// One or more secrets (comma-separated), so the secret can be rotated without downtime.
    pub webhook_secrets: Vec<Secret>,
    /// `EVALGATE_ADMIN_TOKEN`: optional, since only the admin API (evidence export) needs it.
    pub admin_token: Option<Secret>,
    /// `EVALGATE_LINK_SECRET`: signs report links; unset, the webhook secrets do.
    pub link_secret: Option<Secret>,
    /// `EVALGATE_RETENTION_DAYS`: how long stored deliveries and finished jobs are kept
    /// (default 30; the audit log is never deleted).
    pub retention_days: u64,
    pub database_url: String,
    pub workers: usize,
    pub job_lease_ms: i64,
    /// `EVALGATE_PIN_SCHEDULE`: when the weekly pin bumps run (five-field cron, UTC).
    pub pin_schedule: crate::pins::schedule::Schedule,
}

fn required(name: &str, what: &str) -> anyhow::Result<String> {
    var(name).with_context(|| format!("{name} is not set: {what}"))
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| anyhow::anyhow!("{name} must be a whole number, found `{v}`")),
    }
}

impl ServeSettings {
    /// Reads and checks every setting; the first one missing or wrong is named in one line.
    pub fn from_env() -> anyhow::Result<ServeSettings> {
        let app_id = required("EVALGATE_APP_ID", "set it to the GitHub App's id")?;
        let app_id: u64 =
            app_id.trim().parse().map_err(|_| anyhow::anyhow!("EVALGATE_APP_ID must be a number, found `{app_id}`"))?;
        let private_key = match (var("EVALGATE_PRIVATE_KEY"), var("EVALGATE_PRIVATE_KEY_PATH")) {
            (Some(pem), _) => Secret::new(pem),
            (None, Some(path)) => Secret::new(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("EVALGATE_PRIVATE_KEY_PATH: cannot read `{path}`"))?,
            ),
            (None, None) => bail!(
                "EVALGATE_PRIVATE_KEY_PATH is not set: set it to the App's private key file (or EVALGATE_PRIVATE_KEY to the key itself)"
            ),
        };
        let secrets = required("EVALGATE_WEBHOOK_SECRET", "set it to the App's webhook secret")?;
        let webhook_secrets: Vec<Secret> =
            secrets.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Secret::new(s.to_owned())).collect();
        if webhook_secrets.is_empty() {
            bail!("EVALGATE_WEBHOOK_SECRET is empty: set it to the App's webhook secret");
        }
        let retention_days: u64 = number("EVALGATE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)?;
        if retention_days == 0 {
            bail!("EVALGATE_RETENTION_DAYS must be at least 1 (deliveries are kept that many days)");
        }
        let workers = number("EVALGATE_WORKERS", DEFAULT_WORKERS)?;
        if !(1..=256).contains(&workers) {
            bail!("EVALGATE_WORKERS must be between 1 and 256, found {workers}");
        }
        let lease: u64 = number("EVALGATE_JOB_LEASE_SECS", DEFAULT_JOB_LEASE_SECS)?;
        if lease == 0 {
            bail!("EVALGATE_JOB_LEASE_SECS must be at least 1");
        }
        let pattern =
            var("EVALGATE_PIN_SCHEDULE").unwrap_or_else(|| crate::pins::schedule::DEFAULT_PIN_SCHEDULE.to_owned());
        let pin_schedule = crate::pins::schedule::Schedule::parse(pattern.trim())
            .map_err(|e| anyhow::anyhow!("EVALGATE_PIN_SCHEDULE {e}"))?;
        Ok(ServeSettings {
            bind: var("EVALGATE_BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned()),
            public_url: var("EVALGATE_PUBLIC_URL")
                .unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            github_api_url: var("EVALGATE_GITHUB_API_URL").unwrap_or_else(|| DEFAULT_GITHUB_API_URL.to_owned()),
            app_id,
            private_key,
            webhook_secrets,
            admin_token: var("EVALGATE_ADMIN_TOKEN").map(Secret::new),
            link_secret: var("EVALGATE_LINK_SECRET").filter(|s| !s.trim().is_empty()).map(Secret::new),
            retention_days,
            database_url: database_url(),
            workers,
            job_lease_ms: (lease * 1000) as i64,
            pin_schedule,
        })
    }
}

/// What `evalgate setup` needs: where to serve its page, the address GitHub sends the browser
/// back to and registers the webhook under, and GitHub's web and API hosts.
pub struct SetupSettings {
    pub bind: String,
    pub public_url: String,
    pub github_url: String,
    pub github_api_url: String,
}

impl SetupSettings {
    pub fn from_env() -> anyhow::Result<SetupSettings> {
        let url = |name: &str, default: &str| -> anyhow::Result<String> {
            let v = var(name).unwrap_or_else(|| default.to_owned());
            let v = v.trim().trim_end_matches('/').to_owned();
            let host = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://")).unwrap_or_default();
            if host.is_empty()
                || v.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '?' | '#'))
            {
                bail!("{name} must be an http:// or https:// address without query, found `{v}`");
            }
            Ok(v)
        };
        Ok(SetupSettings {
            bind: var("EVALGATE_BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned()),
            public_url: url("EVALGATE_PUBLIC_URL", DEFAULT_PUBLIC_URL)?,
            github_url: url("EVALGATE_GITHUB_URL", DEFAULT_GITHUB_URL)?,
            github_api_url: url("EVALGATE_GITHUB_API_URL", DEFAULT_GITHUB_API_URL)?,
        })
    }
}

#[cfg(test)]
mod file_tests {
    use super::parse_file;

    #[test]
    fn the_file_sets_strings_and_numbers_under_the_variables_names() {
        let f = parse_file("EVALGATE_BIND = \"0.0.0.0:3000\"\nEVALGATE_CONCURRENCY = 8\n").expect("valid");
        assert_eq!(f["EVALGATE_BIND"], "0.0.0.0:3000");
        assert_eq!(f["EVALGATE_CONCURRENCY"], "8");
    }

    #[test]
    fn an_unknown_setting_is_named_with_the_nearest_one() {
        let e = parse_file("EVALGATE_BND = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("`EVALGATE_BND`") && e.contains("`EVALGATE_BIND`"), "{e}");
    }

    #[test]
    fn invalid_toml_says_where() {
        let e = parse_file("EVALGATE_BIND = \n").unwrap_err().to_string();
        assert!(e.contains("evalgate.toml") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn a_table_is_not_a_setting() {
        assert!(parse_file("[EVALGATE_BIND]\nx = 1\n").is_err());
    }
}
