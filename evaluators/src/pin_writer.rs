//! Writing the golden-set pin into `bundle.yaml` in place (`evalgate golden pin`).
//!
//! Only the pin's value changes; every other byte of the file — comments, order, quoting,
//! line endings — stays as it was. Where the key is missing it is added on its own line right
//! after `golden_set:`, indented like it.

use crate::ids::Sha256;
use crate::parse;
use crate::tree::Node;

/// `text` with `eval.golden_set_sha256` set to `pin`, or why it cannot be written.
pub fn write_pin(text: &str, pin: &Sha256) -> Result<String, String> {
    let root = parse::yaml::parse(text).map_err(|e| format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    let eval = root.get("eval").ok_or("bundle.yaml has no `eval:` block to hold the pin")?;
    if eval.as_map().is_none() {
        return Err("`eval` in bundle.yaml is not a mapping".into());
    }
    let out = match eval.entry("golden_set_sha256") {
        Some((key, value)) => replace_value(text, key.span.end, value, pin),
        None => insert_entry(text, eval, pin)?,
    };
    // Read it back: the pin must be what we meant, and the rest must still parse.
    let check =
        parse::yaml::parse(&out).map_err(|e| format!("internal error: the pinned file no longer parses: {e}"))?;
    let written = check.get("eval").and_then(|e| e.get("golden_set_sha256")).and_then(Node::as_str).map(Sha256::parse);
    match written {
        Some(Ok(p)) if p == *pin => Ok(out),
        _ => Err("internal error: the pin did not read back; bundle.yaml left unchanged".into()),
    }
}

fn replace_value(text: &str, key_end: usize, value: &Node, pin: &Sha256) -> String {
    let old = &text[value.span.clone()];
    let prefixed = old.trim_matches(['"', '\'']).starts_with("sha256:");
    let hex = if prefixed { pin.to_string() } else { pin.hex() };
    let new = match old.chars().next() {
        Some('\'') => format!("'{hex}'"),
        _ => format!("\"{hex}\""),
    };
    if value.span.is_empty() || old.trim().is_empty() {
        // `golden_set_sha256:` with no value: write it right after the colon.
        let colon = text[key_end..].find(':').map_or(key_end, |i| key_end + i + 1);
        return format!("{} {new}{}", &text[..colon], &text[colon..]);
    }
    format!("{}{new}{}", &text[..value.span.start], &text[value.span.end..])
}

fn insert_entry(text: &str, eval: &Node, pin: &Sha256) -> Result<String, String> {
    let (key, value) = eval.entry("golden_set").ok_or("`eval.golden_set` is missing; add it before pinning")?;
    let entry = format!("golden_set_sha256: \"{}\"", pin.hex());
    if text[eval.span.clone()].trim_start().starts_with('{') {
        // A flow mapping: add the entry after golden_set's value.
        let at = value.span.end;
        return Ok(format!("{}, {entry}{}", &text[..at], &text[at..]));
    }
    let line_start = text[..key.span.start].rfind('\n').map_or(0, |i| i + 1);
    let indent: String = text[line_start..key.span.start].chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let after = value.span.end.max(key.span.end);
    Ok(match text[after..].find('\n') {
        Some(i) => {
            let at = after + i + 1;
            format!("{}{indent}{entry}{newline}{}", &text[..at], &text[at..])
        }
        None => format!("{text}{newline}{indent}{entry}{newline}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> Sha256 {
        Sha256::digest(b"golden")
    }

    #[test]
    fn replaces_a_stale_pin_and_nothing_else() {
        let text = "bundle: x # name\neval:\n  golden_set: ../g   # set\n  golden_set_sha256: \"3f5a...\"  # pin\n  samples: 1\n";
        let out = write_pin(text, &pin()).unwrap();
        assert_eq!(out, text.replace("\"3f5a...\"", &format!("\"{}\"", pin().hex())));
    }

    #[test]
    fn keeps_the_sha256_prefix_and_single_quotes() {
        let text = "eval:\n  golden_set: g\n  golden_set_sha256: 'sha256:00'\n";
        let out = write_pin(text, &pin()).unwrap();
        assert!(out.contains(&format!("'sha256:{}'", pin().hex())), "{out}");
    }

    #[test]
    fn inserts_a_missing_pin_after_golden_set_with_its_indentation() {
        let text = "eval:\n    golden_set: ../g\n    samples: 1\n";
        let out = write_pin(text, &pin()).unwrap();
        assert_eq!(
            out,
            format!("eval:\n    golden_set: ../g\n    golden_set_sha256: \"{}\"\n    samples: 1\n", pin().hex())
        );
    }

    #[test]
    fn fills_an_empty_value() {
        let text = "eval:\n  golden_set: g\n  golden_set_sha256:\n  samples: 1\n";
        let out = write_pin(text, &pin()).unwrap();
        assert!(out.contains(&format!("golden_set_sha256: \"{}\"\n  samples: 1", pin().hex())), "{out}");
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let text = "eval:\r\n  golden_set: g\r\n  samples: 1\r\n";
        let out = write_pin(text, &pin()).unwrap();
        assert_eq!(
            out,
            format!("eval:\r\n  golden_set: g\r\n  golden_set_sha256: \"{}\"\r\n  samples: 1\r\n", pin().hex())
        );
    }

    #[test]
    fn writes_into_a_flow_mapping() {
        let text = "eval: {golden_set: g, samples: 1}\n";
        let out = write_pin(text, &pin()).unwrap();
        assert_eq!(out, format!("eval: {{golden_set: g, golden_set_sha256: \"{}\", samples: 1}}\n", pin().hex()));
    }

    #[test]
    fn refuses_without_an_eval_block() {
        assert!(write_pin("bundle: x\n", &pin()).unwrap_err().contains("eval"));
    }
}
