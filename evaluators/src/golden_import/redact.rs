//! `--redact`: personal data and secrets replaced by placeholders before anything is written.
//!
//! Five kinds, looked for in this order in every text, argument and result: secrets (API-key
//! shapes: `sk-…`, `ghp_…` and GitHub's other token prefixes, `AKIA…`/`ASIA…`, Slack's `xox…-`,
//! JWTs, a bearer token, and long high-entropy tokens behind a key-like prefix such as
//! `pk_live_…`), e-mail addresses, IBANs (mod-97 checked), card numbers (13 to 19 digits,
//! Luhn-checked) and phone numbers (international `+…`, North American `(415) 555-0132`, and
//! national numbers starting with 0 in groups). A digit run that fails its checksum is left
//! alone, so order totals and ids stay readable.
//!
//! Each distinct value gets one placeholder per run (`<email-1>`, `<email-2>` …, numbered in
//! the order first seen), so a conversation that names the same address twice still reads as
//! one person. The run remembers a digest of each value, never the value, and the summary
//! counts replacements per kind, never what was replaced.

use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Secret,
    Email,
    Iban,
    Card,
    Phone,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Email, Kind::Phone, Kind::Card, Kind::Iban, Kind::Secret];

    /// The placeholder's word: `<email-1>`.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Email => "email",
            Kind::Iban => "iban",
            Kind::Card => "card",
            Kind::Phone => "phone",
        }
    }

    /// How the summary names it.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::Email => "e-mail addresses",
            Kind::Iban => "IBANs",
            Kind::Card => "card numbers",
            Kind::Phone => "phone numbers",
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::Secret => 0,
            Kind::Email => 1,
            Kind::Iban => 2,
            Kind::Card => 3,
            Kind::Phone => 4,
        }
    }
}

struct Patterns {
    secret: Vec<Regex>,
    generic_key: Regex,
    email: Regex,
    iban: Regex,
    card: Regex,
    phone: Vec<Regex>,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("valid regex");
        Patterns {
            secret: vec![
                re(r"\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{20,}"),
                re(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b"),
                re(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
                re(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
                re(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
                re(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
                // Only the token: `Bearer <secret-1>` still says what it was.
                re(r"(?i:\bbearer)\s+([A-Za-z0-9._~+/-]{20,}=*)"),
            ],
            generic_key: re(r"\b[A-Za-z][A-Za-z0-9]{1,14}[_-](?:[A-Za-z0-9]{1,10}[_-])?([A-Za-z0-9]{20,})\b"),
            email: re(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
            iban: re(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
            card: re(r"\b[0-9](?:[ -]?[0-9]){12,18}\b"),
            phone: vec![
                re(r"\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}\b"),
                re(r"(?:\([0-9]{3}\)|\b[0-9]{3})[ .-][0-9]{3}[ .-][0-9]{4}\b"),
                re(r"\b0[0-9]{2,4}[ /-][0-9]{3,4}[ -]?[0-9]{3,5}\b"),
            ],
        }
    })
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let n = s.chars().count() as f64;
    counts.values().map(|&c| c as f64 / n).map(|p| -p * p.log2()).sum()
}

fn looks_random(tail: &str) -> bool {
    let digits = tail.bytes().any(|b| b.is_ascii_digit());
    let letters = tail.bytes().any(|b| b.is_ascii_alphabetic());
    digits && letters && entropy(tail) >= 3.5
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

fn iban_valid(compact: &str) -> bool {
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u64 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => u64::from(c as u8 - b'0'),
            'A'..='Z' => u64::from(c as u8 - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// Counts for the summary: replacements and distinct values, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub counts: Vec<(Kind, u64, u64)>,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n, _)| n).sum()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> =
            self.counts.iter().map(|(k, n, distinct)| format!("{} {n} ({distinct} distinct)", k.plural())).collect();
        write!(f, "redacted {} value(s): {}", self.total(), parts.join(", "))
    }
}

#[derive(Default)]
pub struct Redactor {
    /// Digest of (kind, normalised value) → its number.
    seen: HashMap<[u8; 16], u32>,
    next: [u32; 5],
    replaced: [u64; 5],
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    fn placeholder(&mut self, kind: Kind, normalised: &str) -> String {
        let mut h = Sha256::new();
        h.update(kind.word().as_bytes());
        h.update([0]);
        h.update(normalised.as_bytes());
        let digest: [u8; 32] = h.finalize().into();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        let i = kind.index();
        self.replaced[i] += 1;
        let next = &mut self.next[i];
        let n = *self.seen.entry(key).or_insert_with(|| {
            *next += 1;
            *next
        });
        format!("<{}-{n}>", kind.word())
    }

    /// `text` with every value found replaced; `None` when nothing was found.
    pub fn text(&mut self, text: &str) -> Option<String> {
        let p = patterns();
        let mut s: Option<String> = None;
        let cur = |s: &Option<String>| s.clone().unwrap_or_else(|| text.to_owned());
        // Secrets with a fixed shape, then key-like tokens that look random.
        for re in &p.secret {
            if re.is_match(s.as_deref().unwrap_or(text)) {
                s = Some(self.replace(&cur(&s), re, Kind::Secret, |m| Some(m.to_owned())));
            }
        }
        if p.generic_key.is_match(s.as_deref().unwrap_or(text)) {
            let t = cur(&s);
            s = Some(self.replace_group(&t, &p.generic_key, Kind::Secret, |_, tail| looks_random(tail)));
        }
        if p.email.is_match(s.as_deref().unwrap_or(text)) {
            s = Some(self.replace(&cur(&s), &p.email, Kind::Email, |m| Some(m.to_lowercase())));
        }
        if p.iban.is_match(s.as_deref().unwrap_or(text)) {
            s = Some(self.replace(&cur(&s), &p.iban, Kind::Iban, |m| {
                let compact: String = m.chars().filter(|c| !c.is_whitespace()).collect();
                iban_valid(&compact).then_some(compact)
            }));
        }
        if p.card.is_match(s.as_deref().unwrap_or(text)) {
            s = Some(self.replace(&cur(&s), &p.card, Kind::Card, |m| {
                let digits: Vec<u8> = m.bytes().filter(u8::is_ascii_digit).collect();
                ((13..=19).contains(&digits.len()) && luhn(&digits))
                    .then(|| String::from_utf8_lossy(&digits).into_owned())
            }));
        }
        for re in &p.phone {
            if re.is_match(s.as_deref().unwrap_or(text)) {
                s = Some(self.replace(&cur(&s), re, Kind::Phone, |m| {
                    let digits: String = m.chars().filter(char::is_ascii_digit).collect();
                    (8..=15).contains(&digits.len()).then_some(digits)
                }));
            }
        }
        s.filter(|out| out != text)
    }

    /// Replaces each match that `normalise` accepts (its normal form names the value).
    fn replace(&mut self, text: &str, re: &Regex, kind: Kind, normalise: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for c in re.captures_iter(text) {
            // A pattern with a group replaces only the group (`Bearer <secret-1>`).
            let m = c.get(1).unwrap_or_else(|| c.get(0).expect("a match"));
            let Some(norm) = normalise(m.as_str()) else { continue };
            out.push_str(&text[last..m.start()]);
            out.push_str(&self.placeholder(kind, &norm));
            last = m.end();
        }
        out.push_str(&text[last..]);
        out
    }

    fn replace_group(&mut self, text: &str, re: &Regex, kind: Kind, accept: impl Fn(&str, &str) -> bool) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for c in re.captures_iter(text) {
            let whole = c.get(0).expect("a match");
            let tail = c.get(1).map_or("", |m| m.as_str());
            if !accept(whole.as_str(), tail) {
                continue;
            }
            out.push_str(&text[last..whole.start()]);
            out.push_str(&self.placeholder(kind, whole.as_str()));
            last = whole.end();
        }
        out.push_str(&text[last..]);
        out
    }

    /// Every string in `v` (and every number that is a valid card number) redacted in place;
    /// object keys are names, not data, and stay.
    pub fn value(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Some(r) = self.text(s) {
                    *s = r;
                }
            }
            Value::Number(n) => {
                let digits = n.to_string();
                if (13..=19).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && luhn(digits.as_bytes())
                {
                    *v = Value::String(self.placeholder(Kind::Card, &digits));
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(m) => m.values_mut().for_each(|i| self.value(i)),
            Value::Null | Value::Bool(_) => {}
        }
    }

    pub fn summary(&self) -> Summary {
        let mut counts = Vec::new();
        for kind in Kind::ALL {
            let i = kind.index();
            if self.replaced[i] > 0 {
                counts.push((kind, self.replaced[i], u64::from(self.next[i])));
            }
        }
        Summary { counts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(s: &str) -> String {
        Redactor::new().text(s).unwrap_or_else(|| s.to_owned())
    }

    #[test]
    fn each_kind_gets_its_placeholder() {
        assert_eq!(redact("mail jane.doe@example.com now"), "mail <email-1> now");
        assert_eq!(redact("call +1 415 555 0132 or (415) 555-0199"), "call <phone-1> or <phone-2>");
        assert_eq!(redact("card 4111 1111 1111 1111 ok"), "card <card-1> ok");
        assert_eq!(redact("IBAN DE89 3704 0044 0532 0130 00 please"), "IBAN <iban-1> please");
        assert_eq!(redact("GB82WEST12345698765432"), "<iban-1>");
        assert_eq!(redact("key sk-ant-api03-abcdefghijklmnopqrstuvwx"), "key <secret-1>");
        assert_eq!(redact("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "<secret-1>");
        assert_eq!(redact("AKIAIOSFODNN7EXAMPLE"), "<secret-1>");
        assert_eq!(redact("xoxb-123456789012-abcdefghij"), "<secret-1>");
        assert_eq!(redact("Authorization: Bearer abcdefghijklmnopqrstuvwxyz123"), "Authorization: Bearer <secret-1>");
        assert_eq!(redact("pk_live_51H8xYzAbCdEfGh12IjKlMn34"), "<secret-1>");
    }

    #[test]
    fn checksums_keep_ordinary_numbers() {
        for keep in [
            "card 4111 1111 1111 1112",
            "order A1042 total 42.00 on 2026-03-02",
            "refund_order_for_customer_account",
            "tracking 1Z999AA10123456784",
        ] {
            assert_eq!(redact(keep), keep);
        }
    }

    #[test]
    fn iban_and_luhn_checks() {
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
    }

    #[test]
    fn the_same_value_gets_the_same_placeholder_within_a_run() {
        let mut r = Redactor::new();
        assert_eq!(r.text("a@x.io and b@x.io").unwrap(), "<email-1> and <email-2>");
        assert_eq!(r.text("again A@X.IO").unwrap(), "again <email-1>");
        let s = r.summary();
        assert_eq!(s.counts, vec![(Kind::Email, 3, 2)]);
        assert!(!s.to_string().contains("x.io"));
    }

    #[test]
    fn json_values_are_redacted_in_strings_and_card_numbers() {
        let mut r = Redactor::new();
        let mut v = serde_json::json!({"email": "jo@example.org", "card": 4111111111111111u64, "n": 42, "k": ["+44 20 7946 0958"]});
        r.value(&mut v);
        assert_eq!(v, serde_json::json!({"email": "<email-1>", "card": "<card-1>", "n": 42, "k": ["<phone-1>"]}));
    }
}
