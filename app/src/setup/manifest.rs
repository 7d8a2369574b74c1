//! The App manifest of GitHub's manifest flow. Its one source is the repository's `app.yml`,
//! built into the binary: the permissions and events come from there unchanged, and every URL is
//! replaced by one under `EVALGATE_PUBLIC_URL`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The repository's `app.yml`, as it was when this evalgate was built.
pub const APP_YML: &str = include_str!("../../../app.yml");
/// The host of `app.yml`'s example URLs, which `evalgate setup` replaces.
pub const EXAMPLE_URL: &str = "https://evalgate.example.com";
/// Where GitHub sends the browser back with the manifest flow's code.
pub const CALLBACK_PATH: &str = "/setup/callback";

/// The permission GitHub requires for an App to subscribe to each event evalgate asks for. GitHub
/// refuses a manifest whose event lacks it ("Default events are not supported by permissions"),
/// and refuses `installation` and `installation_repositories` outright (every App gets them).
pub const EVENT_PERMISSIONS: &[(&str, &str)] = &[
    ("pull_request", "pull_requests"),
    ("issue_comment", "issues"),
    ("check_suite", "checks"),
    ("check_run", "checks"),
    ("merge_group", "merge_queues"),
];

/// What GitHub reads from the `manifest` form field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub url: String,
    pub hook_attributes: HookAttributes,
    pub redirect_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callback_urls: Vec<String>,
    pub public: bool,
    pub default_permissions: BTreeMap<String, Access>,
    pub default_events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookAttributes {
    pub url: String,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
}

impl Manifest {
    /// `app.yml` as built in, checked.
    pub fn app_yml() -> Result<Manifest, String> {
        Manifest::parse(APP_YML)
    }

    /// A manifest in `app.yml`'s shape, checked: every event has the permission GitHub requires.
    pub fn parse(yaml: &str) -> Result<Manifest, String> {
        let node = evaluators::parse::yaml::parse(yaml).map_err(|e| format!("app.yml:{e}"))?;
        let manifest: Manifest = serde_json::from_value(node.to_json()).map_err(|e| format!("app.yml: {e}"))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        for event in &self.default_events {
            let Some((_, permission)) = EVENT_PERMISSIONS.iter().find(|(e, _)| e == event) else {
                return Err(format!("app.yml: evalgate does not know which permission the event `{event}` needs"));
            };
            if !self.default_permissions.contains_key(*permission) {
                return Err(format!("app.yml: the event `{event}` needs the permission `{permission}`"));
            }
        }
        Ok(())
    }

    /// The same manifest with every URL under `public_url` (no trailing slash): the homepage,
    /// the webhook (`/webhooks/github`), the redirect and callback at [`CALLBACK_PATH`].
    pub fn for_public_url(mut self, public_url: &str) -> Manifest {
        let base = public_url.trim_end_matches('/');
        let rebase = |url: &str| match url.strip_prefix(EXAMPLE_URL) {
            Some(path) => format!("{base}{path}"),
            None => url.to_owned(),
        };
        self.url = rebase(&self.url);
        self.hook_attributes.url = rebase(&self.hook_attributes.url);
        self.redirect_url = rebase(&self.redirect_url);
        self.callback_urls = self.callback_urls.iter().map(|u| rebase(u)).collect();
        self
    }

    /// The JSON of the `manifest` form field.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("a manifest is plain strings, bools and maps"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `evalgate serve` takes webhooks.
    const WEBHOOK_PATH: &str = "/webhooks/github";

    #[test]
    fn app_yml_is_a_manifest_github_accepts() {
        let m = Manifest::app_yml().expect("app.yml");
        assert!(!m.public);
        assert!(m.hook_attributes.active);
        assert!(m.default_events.iter().any(|e| e == "merge_group"));
        assert_eq!(m.default_permissions.get("merge_queues"), Some(&Access::Read));
        assert_eq!(m.default_permissions.get("checks"), Some(&Access::Write));
        assert!(!m.default_events.iter().any(|e| e.starts_with("installation")));
    }

    /// The URLs in `app.yml` are the ones `evalgate setup` sends, under the example host.
    #[test]
    fn app_yml_urls_are_the_example_host_with_the_paths_setup_uses() {
        let m = Manifest::app_yml().expect("app.yml");
        assert_eq!(m.url, EXAMPLE_URL);
        assert_eq!(m.hook_attributes.url, format!("{EXAMPLE_URL}{WEBHOOK_PATH}"));
        assert_eq!(m.redirect_url, format!("{EXAMPLE_URL}{CALLBACK_PATH}"));
        assert!(m.callback_urls.iter().all(|u| u.starts_with(EXAMPLE_URL)), "{:?}", m.callback_urls);
    }

    #[test]
    fn every_url_moves_under_the_public_url_and_nothing_else_changes() {
        let m = Manifest::app_yml().expect("app.yml");
        let moved = m.clone().for_public_url("https://gate.acme.test/");
        assert_eq!(moved.url, "https://gate.acme.test");
        assert_eq!(moved.hook_attributes.url, "https://gate.acme.test/webhooks/github");
        assert_eq!(moved.redirect_url, "https://gate.acme.test/setup/callback");
        assert_eq!(moved.callback_urls, ["https://gate.acme.test/setup/callback"]);
        assert!(!moved.to_json().contains("example.com"));
        assert_eq!((moved.default_permissions, moved.default_events), (m.default_permissions, m.default_events));
    }

    #[test]
    fn an_event_without_its_permission_is_refused() {
        let yaml = APP_YML.replace("  merge_queues: read", "");
        assert!(Manifest::parse(&yaml).unwrap_err().contains("merge_queues"));
        let yaml = format!("{APP_YML}  - installation\n");
        assert!(Manifest::parse(&yaml).unwrap_err().contains("installation"));
    }

    #[test]
    fn the_json_has_the_fields_github_reads() {
        let json: serde_json::Value =
            serde_json::from_str(&Manifest::app_yml().expect("app.yml").to_json()).expect("json");
        for key in ["name", "url", "hook_attributes", "redirect_url", "public", "default_permissions", "default_events"]
        {
            assert!(json.get(key).is_some(), "{key}: {json}");
        }
        assert_eq!(json["default_permissions"]["merge_queues"], "read");
    }
}
