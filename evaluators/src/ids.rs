//! Names and digests that are valid by construction: once built, always well-formed.

use std::fmt;

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A bundle's name: `[a-z0-9][a-z0-9-]{0,62}`. It names the check run `evalgate/<bundle>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BundleName(String);
string_newtype!(BundleName);

impl BundleName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        if !ok {
            return Err(format!(
                "bundle name `{s}` is not valid: use 1 to 63 lowercase letters, digits and `-`, starting with a letter or digit"
            ));
        }
        if RESERVED_BUNDLE_NAMES.contains(&s) {
            return Err(format!(
                "bundle name `{s}` is reserved: `evalgate/{s}` is the name of one of evalgate's own checks"
            ));
        }
        Ok(BundleName(s.to_owned()))
    }
}

/// Names no bundle may take: `evalgate/<name>` is one of evalgate's own check runs, and a
/// bundle's check of that name would stand in for it.
pub const RESERVED_BUNDLE_NAMES: [&str; 2] = ["pre-registration", "golden-set"];

/// A tool's name as the providers accept it: `^[a-zA-Z0-9_-]{1,64}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ToolName(String);
string_newtype!(ToolName);

impl ToolName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
        if ok {
            Ok(ToolName(s.to_owned()))
        } else {
            Err(format!("tool name `{s}` is not valid: use 1 to 64 letters, digits, `_` and `-`"))
        }
    }
}

/// A case's id: 1 to 128 of `[A-Za-z0-9._:-]`, so it can be typed in `/evalgate explain <id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseId(String);
string_newtype!(CaseId);

impl CaseId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(CaseId(s.to_owned()))
        } else {
            Err(format!("case id `{s}` is not valid: use 1 to 128 letters, digits, `.`, `_`, `:` and `-`"))
        }
    }
}

/// A SHA-256 digest: always 64 lowercase hex digits. Shown as `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Sha256(bytes)
    }

    pub fn digest(data: &[u8]) -> Self {
        use sha2::Digest;
        Sha256(sha2::Sha256::digest(data).into())
    }

    /// Accepts 64 lowercase hex digits, optionally after `sha256:`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
            return Err(format!(
                "`{s}` is not a sha256: expected 64 lowercase hex digits (a `sha256:` prefix is accepted)"
            ));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Sha256(out))
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The first 12 hex digits, as titles show a hash.
    pub fn short(&self) -> String {
        self.hex()[..12].to_owned()
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.hex())
    }
}

impl serde::Serialize for Sha256 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read back as it is written (`sha256:<hex>`, or bare hex), so a stored report reads as the
/// `Report` it was.
impl<'de> serde::Deserialize<'de> for Sha256 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Sha256::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_names_follow_the_spec_pattern() {
        assert!(BundleName::parse("refund-agent").is_ok());
        assert!(BundleName::parse("9lives").is_ok());
        assert!(BundleName::parse("-x").is_err());
        assert!(BundleName::parse("Refund").is_err());
        assert!(BundleName::parse(&"a".repeat(64)).is_err());
        assert!(BundleName::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn a_bundle_cannot_take_the_name_of_an_evalgate_check() {
        for name in RESERVED_BUNDLE_NAMES {
            let err = BundleName::parse(name).expect_err("reserved");
            assert!(err.contains("reserved") && err.contains(&format!("evalgate/{name}")), "{err}");
        }
        assert!(BundleName::parse("golden-set-2").is_ok());
    }

    #[test]
    fn tool_names_follow_the_provider_pattern() {
        assert!(ToolName::parse("refund_order").is_ok());
        assert!(ToolName::parse("refund order").is_err());
        assert!(ToolName::parse(&"t".repeat(65)).is_err());
    }

    #[test]
    fn sha256_accepts_prefix_and_rejects_uppercase() {
        let hex = "3f5a".repeat(16);
        assert_eq!(Sha256::parse(&hex).unwrap().hex(), hex);
        assert_eq!(Sha256::parse(&format!("sha256:{hex}")).unwrap().to_string(), format!("sha256:{hex}"));
        assert!(Sha256::parse(&hex.to_uppercase()).is_err());
        assert!(Sha256::parse("3f5a...").is_err());
    }

    #[test]
    fn sha256_digest_matches_the_known_vector() {
        assert_eq!(Sha256::digest(b"abc").hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
