//! Changing a bundle's pinned snapshot ids in `bundle.yaml` in place, for pin-bump pull
//! requests: only the id scalars change (keeping their quoting); every other byte — comments,
//! order, line endings, the golden-set pin — stays as it was.

use crate::parse;
use crate::tree::Node;

/// Which pin of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `model.snapshot`: the model under test.
    Model,
    /// `eval.judge.snapshot`: the judge.
    Judge,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Model => "model",
            Role::Judge => "judge",
        }
    }
}

/// A pin as written in `bundle.yaml`: its provider and id, read leniently (the file may have
/// other problems; a bump only needs these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenPin {
    pub role: Role,
    pub provider: String,
    pub snapshot: String,
}

fn pin_nodes(root: &Node) -> Vec<(Role, &Node, &Node)> {
    let mut out = Vec::new();
    if let Some(m) = root.get("model") {
        if let (Some(p), Some(s)) = (m.get("provider"), m.get("snapshot")) {
            out.push((Role::Model, p, s));
        }
    }
    if let Some(j) = root.get("eval").and_then(|e| e.get("judge")) {
        if let (Some(p), Some(s)) = (j.get("provider"), j.get("snapshot")) {
            out.push((Role::Judge, p, s));
        }
    }
    out
}

/// The pins `bundle.yaml` declares.
pub fn read_pins(text: &str) -> Result<Vec<WrittenPin>, String> {
    let root = parse::yaml::parse(text).map_err(|e| format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    Ok(pin_nodes(&root)
        .into_iter()
        .filter_map(|(role, p, s)| {
            Some(WrittenPin { role, provider: p.as_str()?.to_owned(), snapshot: s.as_str()?.to_owned() })
        })
        .collect())
}

/// `text` with each `(role, new id)` written in place, or why it cannot be.
pub fn write_snapshots(text: &str, changes: &[(Role, String)]) -> Result<String, String> {
    let root = parse::yaml::parse(text).map_err(|e| format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    let nodes = pin_nodes(&root);
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for (role, id) in changes {
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || "\"'#:{}[],&*!|>%@`".contains(c)) {
            return Err(format!("`{id}` is not a snapshot id that can be written as is"));
        }
        let (_, _, node) = nodes
            .iter()
            .find(|(r, _, n)| r == role && n.as_str().is_some())
            .ok_or_else(|| format!("bundle.yaml has no {} snapshot to change", role.as_str()))?;
        let old = &text[node.span.clone()];
        let new = match old.chars().next() {
            Some('"') => format!("\"{id}\""),
            Some('\'') => format!("'{id}'"),
            _ => id.clone(),
        };
        edits.push((node.span.clone(), new));
    }
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut out = text.to_owned();
    for (span, new) in edits {
        out.replace_range(span, &new);
    }
    // Read it back: every change must be what we meant.
    let written = read_pins(&out).map_err(|e| format!("internal error: the edited file no longer parses: {e}"))?;
    for (role, id) in changes {
        if !written.iter().any(|p| p.role == *role && p.snapshot == *id) {
            return Err(format!("internal error: the {} snapshot did not read back", role.as_str()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLE: &str = "bundle: demo # the demo\nmodel:\n  provider: anthropic\n  snapshot: claude-sonnet-4-5-20250929   # pinned\n  params: { temperature: 0 }\neval:\n  golden_set_sha256: \"abc\"\n  judge: { provider: anthropic, snapshot: 'claude-haiku-4-5-20251001', samples: 3 }\n";

    #[test]
    fn the_pins_are_read_with_their_roles() {
        let pins = read_pins(BUNDLE).expect("pins");
        assert_eq!(pins.len(), 2);
        assert_eq!(
            pins[0],
            WrittenPin {
                role: Role::Model,
                provider: "anthropic".into(),
                snapshot: "claude-sonnet-4-5-20250929".into()
            }
        );
        assert_eq!(pins[1].snapshot, "claude-haiku-4-5-20251001");
    }

    #[test]
    fn only_the_ids_change_and_their_quoting_is_kept() {
        let out = write_snapshots(
            BUNDLE,
            &[(Role::Model, "claude-sonnet-4-5-20260101".into()), (Role::Judge, "claude-haiku-4-5-20260202".into())],
        )
        .expect("written");
        let expected = BUNDLE
            .replace("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20260101")
            .replace("'claude-haiku-4-5-20251001'", "'claude-haiku-4-5-20260202'");
        assert_eq!(out, expected, "every other byte is unchanged");
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let crlf = BUNDLE.replace('\n', "\r\n");
        let out = write_snapshots(&crlf, &[(Role::Model, "claude-sonnet-4-5-20260101".into())]).expect("written");
        assert_eq!(out, crlf.replace("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20260101"));
    }

    #[test]
    fn a_missing_judge_is_an_error() {
        let text = "model:\n  provider: openai\n  snapshot: gpt-4o-2024-08-06\n";
        assert!(write_snapshots(text, &[(Role::Judge, "gpt-4o-2024-11-20".into())]).is_err());
    }

    #[test]
    fn an_id_that_would_change_the_yaml_is_refused() {
        assert!(write_snapshots(BUNDLE, &[(Role::Model, "x: y".into())]).is_err());
        assert!(write_snapshots(BUNDLE, &[(Role::Model, "a #b".into())]).is_err());
    }
}
