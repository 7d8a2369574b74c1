//! `.evalgate.yml`, the optional repository configuration at the repository root.

use crate::decode::{self, Fields};
use crate::diagnostic::{Diagnostics, FileDiags};
use crate::limits::MAX_YAML_FILE_BYTES;
use crate::parse;
use crate::repo::{ReadError, RepoFs, RepoPath};
use crate::snapshot::{PinPolicy, Provider};
use crate::tree::{Key, Node};
use std::collections::BTreeMap;

pub const FILE_NAME: &str = ".evalgate.yml";
pub const DEFAULT_BUNDLE_GLOB: &str = "**/bundle.yaml";

/// Per-million-token prices of one snapshot, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LintRules {
    pub prompt_max_chars: Option<u64>,
    pub required_sections: Vec<String>,
    pub forbidden_phrases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RepoConfig {
    /// Globs, relative to the repository root, that find bundle manifests.
    pub bundles: Vec<String>,
    pub lint: LintRules,
    pub pin_policy: PinPolicy,
    pub prices: BTreeMap<String, Price>,
    pub soak_days: u32,
    /// `review.allow_self_approval`: may a PR's author override or approve their own PR.
    pub allow_self_approval: bool,
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig {
            bundles: vec![DEFAULT_BUNDLE_GLOB.to_owned()],
            lint: LintRules::default(),
            pin_policy: PinPolicy::default(),
            prices: BTreeMap::new(),
            soak_days: 7,
            allow_self_approval: false,
        }
    }
}

const TOP: &[&str] = &["bundles", "lint", "pinned_ids", "aliases", "prices", "pins", "review"];
const REVIEW: &[&str] = &["allow_self_approval"];
const LINT: &[&str] = &["prompt_max_chars", "required_sections", "forbidden_phrases"];
const PRICE: &[&str] = &["input_per_mtok", "output_per_mtok"];
const PINS: &[&str] = &["soak_days"];

/// Reads `.evalgate.yml` at the root; a missing file means the defaults. Problems are
/// reported and the defaults stand in for what could not be read.
pub fn load(fs: &dyn RepoFs, diags: &mut Diagnostics) -> RepoConfig {
    let path = RepoPath::parse(FILE_NAME).expect("a constant file name is a valid path");
    let mut d = FileDiags::new(FILE_NAME, diags);
    let text = match fs.read_text(&path, MAX_YAML_FILE_BYTES) {
        Ok(t) => t,
        Err(ReadError::NotFound) => return RepoConfig::default(),
        Err(e) => {
            d.whole(format!("{FILE_NAME} {e}"));
            return RepoConfig::default();
        }
    };
    match parse::yaml::parse(&text) {
        Ok(root) => decode(&mut d, &root),
        Err(e) => {
            d.at(e.pos, e.message);
            RepoConfig::default()
        }
    }
}

fn decode(d: &mut FileDiags, root: &Node) -> RepoConfig {
    let mut cfg = RepoConfig::default();
    let Some(f) = decode::mapping(d, root, "", TOP) else { return cfg };
    if let Some(n) = f.get("bundles") {
        if let Some(globs) = decode::string_list(d, n, "bundles") {
            let before = d.count();
            for (g, item) in globs.iter().zip(decode::list(d, n, "bundles").unwrap_or_default()) {
                if let Err(e) = globset::Glob::new(g) {
                    d.at(item.pos, format!("`bundles` glob `{g}` is not valid: {}", e.kind()));
                }
            }
            if globs.is_empty() {
                d.at(n.pos, "`bundles` must list at least one glob");
            } else if d.count() == before {
                cfg.bundles = globs;
            }
        }
    }
    if let Some(n) = f.get("lint") {
        if let Some(l) = decode::mapping(d, n, "lint", LINT) {
            cfg.lint = lint_rules(d, &l);
        }
    }
    if let Some(n) = f.get("pinned_ids") {
        cfg.pin_policy.pinned_ids = provider_lists(d, n, "pinned_ids");
    }
    if let Some(n) = f.get("aliases") {
        cfg.pin_policy.aliases = provider_lists(d, n, "aliases");
    }
    if let Some(n) = f.get("prices") {
        for (k, v) in decode::free_mapping(d, n, "prices").unwrap_or_default() {
            if let Some(p) = price(d, k, v) {
                cfg.prices.insert(k.name.clone(), p);
            }
        }
    }
    if let Some(n) = f.get("review") {
        if let Some(r) = decode::mapping(d, n, "review", REVIEW) {
            if let Some(v) = r.get("allow_self_approval") {
                match v.kind {
                    crate::tree::Kind::Bool(b) => cfg.allow_self_approval = b,
                    _ => d.at(
                        v.pos,
                        format!("`review.allow_self_approval` must be `true` or `false`, found {}", v.kind_name()),
                    ),
                }
            }
        }
    }
    if let Some(n) = f.get("pins") {
        if let Some(p) = decode::mapping(d, n, "pins", PINS) {
            if let Some(s) = p.get("soak_days").and_then(|v| decode::int_in(d, v, "pins.soak_days", 0, 365)) {
                cfg.soak_days = s as u32;
            }
        }
    }
    cfg
}

fn lint_rules(d: &mut FileDiags, l: &Fields<'_>) -> LintRules {
    LintRules {
        prompt_max_chars: l
            .get("prompt_max_chars")
            .and_then(|v| decode::int_in(d, v, "lint.prompt_max_chars", 1, i64::MAX))
            .map(|v| v as u64),
        required_sections: l
            .get("required_sections")
            .and_then(|v| decode::string_list(d, v, "lint.required_sections"))
            .unwrap_or_default(),
        forbidden_phrases: l
            .get("forbidden_phrases")
            .and_then(|v| decode::string_list(d, v, "lint.forbidden_phrases"))
            .unwrap_or_default(),
    }
}

fn provider_lists(d: &mut FileDiags, n: &Node, what: &str) -> BTreeMap<Provider, Vec<String>> {
    let mut out = BTreeMap::new();
    // Unknown provider names are reported by `mapping`; the known ones are read.
    let Some(entries) = decode::mapping(d, n, what, &Provider::NAMES).and_then(|_| n.as_map()) else {
        return out;
    };
    for (k, v) in entries {
        if let (Some(p), Some(ids)) =
            (Provider::parse(&k.name), decode::string_list(d, v, &decode::join(what, &k.name)))
        {
            out.insert(p, ids);
        }
    }
    out
}

fn price(d: &mut FileDiags, key: &Key, v: &Node) -> Option<Price> {
    let what = format!("prices.{}", key.name);
    let f = decode::mapping(d, v, &what, PRICE)?;
    let input = f
        .require(d, "input_per_mtok", &what)
        .and_then(|n| decode::non_negative(d, n, &format!("{what}.input_per_mtok")));
    let output = f
        .require(d, "output_per_mtok", &what)
        .and_then(|n| decode::non_negative(d, n, &format!("{what}.output_per_mtok")));
    Some(Price { input_per_mtok: input?, output_per_mtok: output? })
}
