//! One audit entry and its hash. The canonical form is the JSON object
//! `{"repo","seq","at_ms","kind","actor","pr_number","data","prev_sha256"}` in that order, with
//! `data`'s keys sorted (serde_json's default map), no whitespace; its sha256 in lowercase hex
//! is the entry's `sha256`, and the next entry's `prev_sha256`. Anyone can recompute it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev_sha256` of a repository's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A gate run's conclusion with its figures.
    GateDecision,
    /// The pre-registration in force at a pull request's first evaluation.
    PreRegistration,
    /// A body edit that changed the pre-registered thresholds after the first evaluation.
    ThresholdEdit,
    /// A reviewer command, accepted or refused.
    Command,
    /// `/evalgate override`.
    Override,
    /// `/evalgate approve-golden`, `/evalgate accept-thresholds`, a fork's "Run evals".
    Approval,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GateDecision => "gate_decision",
            Kind::PreRegistration => "pre_registration",
            Kind::ThresholdEdit => "threshold_edit",
            Kind::Command => "command",
            Kind::Override => "override",
            Kind::Approval => "approval",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub repo: String,
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub actor: String,
    pub pr_number: Option<i64>,
    pub data: Value,
    pub prev_sha256: String,
    pub sha256: String,
}

#[derive(Serialize)]
struct Canonical<'a> {
    repo: &'a str,
    seq: i64,
    at_ms: i64,
    kind: &'a str,
    actor: &'a str,
    pr_number: Option<i64>,
    data: &'a Value,
    prev_sha256: &'a str,
}

impl Entry {
    /// The bytes the hash is taken over.
    pub fn canonical(&self) -> String {
        let c = Canonical {
            repo: &self.repo,
            seq: self.seq,
            at_ms: self.at_ms,
            kind: &self.kind,
            actor: &self.actor,
            pr_number: self.pr_number,
            data: &self.data,
            prev_sha256: &self.prev_sha256,
        };
        // Serialising plain strings, numbers and a `Value` cannot fail.
        serde_json::to_string(&c).unwrap_or_default()
    }

    /// The sha256 the entry should carry.
    pub fn compute_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let mut e = Entry {
            repo: "acme/agents".into(),
            seq: 1,
            at_ms: 1_700_000_000_000,
            kind: Kind::Override.as_str().into(),
            actor: "jordan".into(),
            pr_number: Some(7),
            data: serde_json::json!({ "reason": "flaky judge", "bundle": "demo" }),
            prev_sha256: GENESIS.into(),
            sha256: String::new(),
        };
        e.sha256 = e.compute_sha256();
        e
    }

    #[test]
    fn the_canonical_form_is_fixed_order_and_sorted_data() {
        assert_eq!(
            entry().canonical(),
            r#"{"repo":"acme/agents","seq":1,"at_ms":1700000000000,"kind":"override","actor":"jordan","pr_number":7,"data":{"bundle":"demo","reason":"flaky judge"},"prev_sha256":"0000000000000000000000000000000000000000000000000000000000000000"}"#
        );
    }

    #[test]
    fn any_changed_field_changes_the_hash() {
        let e = entry();
        let mut f = e.clone();
        f.actor = "mallory".into();
        assert_ne!(f.compute_sha256(), e.sha256);
        let mut g = e.clone();
        g.data["reason"] = "other".into();
        assert_ne!(g.compute_sha256(), e.sha256);
    }
}
