//! `X-Hub-Signature-256`: `sha256=` followed by the hex HMAC-SHA256 of the raw body under the
//! webhook secret. Compared in constant time (`hmac`'s `verify_slice`), so a forger learns
//! nothing from how long a wrong guess took.

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `header` (the value of `X-Hub-Signature-256`, if any) against `body`. Several secrets
/// may be configured at once, so a secret can be rotated without dropping deliveries.
pub fn verify(secrets: &[&[u8]], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let given = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { continue };
        mac.update(body);
        if mac.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
/// The header value GitHub would send for `body` under `secret` (tests and tools sign with it).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", hex::encode(bytes))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    hex::decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in GitHub's documentation "Validating webhook deliveries".
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const EXPECTED: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_test_vector_verifies() {
        assert_eq!(sign(SECRET, BODY), EXPECTED);
        assert_eq!(verify(&[SECRET], BODY, Some(EXPECTED)), Ok(()));
    }

    #[test]
    fn a_changed_body_does_not_verify() {
        assert_eq!(verify(&[SECRET], b"Hello, World?", Some(EXPECTED)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn another_secret_does_not_verify() {
        assert_eq!(verify(&[b"guess"], BODY, Some(EXPECTED)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_rotated_secret_verifies_while_both_are_configured() {
        assert_eq!(verify(&[b"new secret", SECRET], BODY, Some(EXPECTED)), Ok(()));
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        assert_eq!(verify(&[SECRET], BODY, None), Err(SignatureError::Missing));
        assert_eq!(verify(&[SECRET], BODY, Some("sha1=abc")), Err(SignatureError::Malformed));
        assert_eq!(verify(&[SECRET], BODY, Some("sha256=zz")), Err(SignatureError::Malformed));
        let non_hex = format!("sha256={}", "g".repeat(64));
        assert_eq!(verify(&[SECRET], BODY, Some(&non_hex)), Err(SignatureError::Malformed));
    }
}
