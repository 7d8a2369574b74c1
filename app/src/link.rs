//! Signed, expiring capabilities for report links (`GET /runs/{id}?token=…`): the token is
//! `<expiry unix seconds>.<hex HMAC-SHA256 of "run:<id>:<expiry>">` under a key derived from
//! `EVALGATE_LINK_SECRET` — or, when that is unset, from the first webhook secret, with links
//! accepted under any configured webhook secret, so rotating the webhook secret (adding the new
//! one first) keeps every link valid. A link opens one run's report until it expires.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a report link stays valid.
pub const LINK_LIFETIME_SECS: i64 = 90 * 24 * 3600;

#[derive(Clone)]
pub struct LinkSigner {
    /// Signs new links.
    key: Vec<u8>,
    /// Every key a link may be signed with (the signing key first).
    accepted: Vec<Vec<u8>>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(***)")
    }
}

fn mac(key: &[u8], run_id: &str, expiry: i64) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(format!("run:{run_id}:{expiry}").as_bytes());
    m
}

impl LinkSigner {
    /// A key of its own, derived from the webhook secret, so the secret itself never leaves.
    pub fn from_secret(secret: &[u8]) -> LinkSigner {
        let key = derive(secret);
        LinkSigner { accepted: vec![key.clone()], key }
    }

    /// As SPEC's settings say: the link secret signs and alone is accepted when set; else the
    /// first webhook secret signs and every configured one is accepted.
    pub fn from_settings(link_secret: Option<&[u8]>, webhook_secrets: &[&[u8]]) -> LinkSigner {
        match (link_secret, webhook_secrets.first()) {
            (Some(s), _) => LinkSigner::from_secret(s),
            (None, Some(first)) => {
                LinkSigner { key: derive(first), accepted: webhook_secrets.iter().map(|s| derive(s)).collect() }
            }
            (None, None) => LinkSigner::from_secret(b""),
        }
    }

    /// The expiry is rounded up to the end of a UTC day, so every link to one run made on one
    /// day is the same text: a check or comment that shows it is not rewritten for a new token.
    pub fn token(&self, run_id: &str, now_secs: i64) -> String {
        const DAY: i64 = 86_400;
        let expiry = (now_secs + LINK_LIFETIME_SECS).div_euclid(DAY) * DAY + DAY;
        let sig = mac(&self.key, run_id, expiry).finalize().into_bytes();
        format!("{expiry}.{}", hex::encode(sig))
    }

    /// Whether `token` opens `run_id` at `now_secs` (compared in constant time).
    pub fn verify(&self, run_id: &str, token: &str, now_secs: i64) -> bool {
        let Some((expiry, hex)) = token.split_once('.') else { return false };
        let Ok(expiry) = expiry.parse::<i64>() else { return false };
        if expiry < now_secs || hex.len() != 64 {
            return false;
        }
        let Ok(given) = hex::decode(hex) else { return false };
        self.accepted.iter().any(|key| mac(key, run_id, expiry).verify_slice(&given).is_ok())
    }
}

/// A key of its own for links, so the secret itself is never what signs.
fn derive(secret: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(b"evalgate-report-link-v1");
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_signed_before_the_webhook_secret_was_rotated_still_opens() {
        let before = LinkSigner::from_settings(None, &[b"old-secret"]);
        let token = before.token("run-1", 1_000);
        // Rotation: the new secret first, the old one kept while GitHub switches over…
        let during = LinkSigner::from_settings(None, &[b"new-secret", b"old-secret"]);
        assert!(during.verify("run-1", &token, 1_001));
        // …and new links are signed with the new one.
        let fresh = during.token("run-1", 1_001);
        assert!(LinkSigner::from_settings(None, &[b"new-secret"]).verify("run-1", &fresh, 1_002));
        assert!(!LinkSigner::from_settings(None, &[b"other"]).verify("run-1", &token, 1_001));
    }

    #[test]
    fn a_link_secret_signs_alone_and_outlives_any_webhook_secret() {
        let signer = LinkSigner::from_settings(Some(b"link-key"), &[b"hook-1"]);
        let token = signer.token("run-1", 1_000);
        assert!(LinkSigner::from_settings(Some(b"link-key"), &[b"hook-2"]).verify("run-1", &token, 1_001));
        let by_hook = LinkSigner::from_settings(None, &[b"hook-1"]).token("run-1", 1_000);
        assert!(!signer.verify("run-1", &by_hook, 1_001), "with a link secret, webhook-signed links are not accepted");
    }

    #[test]
    fn a_token_opens_its_run_only() {
        let s = LinkSigner::from_secret(b"secret");
        let t = s.token("run1", 1_000);
        assert!(s.verify("run1", &t, 1_000));
        assert!(!s.verify("run2", &t, 1_000));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let s = LinkSigner::from_secret(b"secret");
        let t = s.token("run1", 1_000);
        assert!(s.verify("run1", &t, 1_000 + LINK_LIFETIME_SECS), "valid for its whole lifetime");
        assert!(!s.verify("run1", &t, 1_000 + LINK_LIFETIME_SECS + 86_400));
    }

    #[test]
    fn links_to_one_run_made_on_one_day_are_the_same_text() {
        let s = LinkSigner::from_secret(b"secret");
        assert_eq!(s.token("run1", 86_400 * 3 + 1), s.token("run1", 86_400 * 4 - 1));
        assert_ne!(s.token("run1", 86_400 * 3 + 1), s.token("run1", 86_400 * 4 + 1));
    }

    #[test]
    fn a_forged_or_extended_token_is_refused() {
        let s = LinkSigner::from_secret(b"secret");
        let t = s.token("run1", 1_000);
        let (_, sig) = t.split_once('.').expect("token");
        assert!(!s.verify("run1", &format!("{}.{sig}", 1_000 + 2 * LINK_LIFETIME_SECS), 1_000));
        assert!(!LinkSigner::from_secret(b"other").verify("run1", &t, 1_000));
        assert!(!s.verify("run1", "garbage", 1_000));
    }
}
