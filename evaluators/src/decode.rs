//! Typed reading of a [`Node`] tree, reporting every problem with its position.
//!
//! Each function reports what is wrong through [`FileDiags`] and returns `None`, so a loader
//! reads on and the user sees every problem in one run. `what` is the dotted path of the value
//! (`eval.judge.samples`), which is how messages name it.

use crate::diagnostic::{FileDiags, Pos};
use crate::tree::{Key, Kind, Node};

/// The entries of a mapping whose keys were all known.
pub struct Fields<'n> {
    pub pos: Pos,
    entries: &'n [(Key, Node)],
}

impl<'n> Fields<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// The value of a key the format requires; its absence is reported at the mapping.
    pub fn require(&self, d: &mut FileDiags, key: &str, what: &str) -> Option<&'n Node> {
        let v = self.get(key);
        if v.is_none() {
            d.at(self.pos, format!("missing required key `{}`", join(what, key)));
        }
        v
    }
}

/// `parent.key`, or `key` at the top level.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

/// The nearest known word, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// A phrase suggesting the nearest known word, or listing them all when none is near.
pub fn suggestion(word: &str, known: &[&str]) -> String {
    match did_you_mean(word, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("expected one of: {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")),
    }
}

/// A mapping with only the `known` keys. Unknown keys are reported (with a suggestion) and
/// the known ones are still returned, so their values are checked too.
pub fn mapping<'n>(d: &mut FileDiags, node: &'n Node, what: &str, known: &[&str]) -> Option<Fields<'n>> {
    let Kind::Map(entries) = &node.kind else {
        let name = if what.is_empty() { "the file".to_owned() } else { format!("`{what}`") };
        d.at(node.pos, format!("{name} must be a mapping, found {}", node.kind_name()));
        return None;
    };
    for (k, _) in entries {
        if !known.contains(&k.name.as_str()) {
            d.at(k.pos, format!("unknown key `{}`; {}", join(what, &k.name), suggestion(&k.name, known)));
        }
    }
    Some(Fields { pos: node.pos, entries })
}

/// Entries of a mapping whose keys are free (metadata, prices, per-provider lists).
pub fn free_mapping<'n>(d: &mut FileDiags, node: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
    match &node.kind {
        Kind::Map(entries) => Some(entries),
        _ => {
            d.at(node.pos, format!("`{what}` must be a mapping, found {}", node.kind_name()));
            None
        }
    }
}

pub fn string(d: &mut FileDiags, node: &Node, what: &str) -> Option<String> {
    match &node.kind {
        Kind::Str(s) => Some(s.clone()),
        _ => {
            let hint = match node.kind {
                Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => " (quote it to make it a string)",
                _ => "",
            };
            d.at(node.pos, format!("`{what}` must be a string, found {}{hint}", node.kind_name()));
            None
        }
    }
}

pub fn nonempty_string(d: &mut FileDiags, node: &Node, what: &str) -> Option<String> {
    let s = string(d, node, what)?;
    if s.trim().is_empty() {
        d.at(node.pos, format!("`{what}` must not be empty"));
        return None;
    }
    Some(s)
}

pub fn int_in(d: &mut FileDiags, node: &Node, what: &str, lo: i64, hi: i64) -> Option<i64> {
    let range = lo..=hi;
    match node.kind {
        Kind::Int(i) if range.contains(&i) => Some(i),
        Kind::Int(i) => {
            d.at(node.pos, format!("`{what}` must be from {} to {}, found {i}", range.start(), range.end()));
            None
        }
        _ => {
            d.at(node.pos, format!("`{what}` must be a whole number, found {}", node.kind_name()));
            None
        }
    }
}

/// A finite number (a whole number is a number too).
pub fn number(d: &mut FileDiags, node: &Node, what: &str) -> Option<f64> {
    match node.kind {
        Kind::Int(i) => Some(i as f64),
        Kind::Float(f) if f.is_finite() => Some(f),
        _ => {
            d.at(node.pos, format!("`{what}` must be a number, found {}", node.kind_name()));
            None
        }
    }
}

pub fn number_in(d: &mut FileDiags, node: &Node, what: &str, lo: f64, hi: f64) -> Option<f64> {
    let x = number(d, node, what)?;
    if !(lo..=hi).contains(&x) {
        d.at(node.pos, format!("`{what}` must be from {lo} to {hi}, found {x}"));
        return None;
    }
    Some(x)
}

pub fn non_negative(d: &mut FileDiags, node: &Node, what: &str) -> Option<f64> {
    number_in(d, node, what, 0.0, f64::MAX)
}

pub fn list<'n>(d: &mut FileDiags, node: &'n Node, what: &str) -> Option<&'n [Node]> {
    match &node.kind {
        Kind::Seq(items) => Some(items),
        _ => {
            d.at(node.pos, format!("`{what}` must be a list, found {}", node.kind_name()));
            None
        }
    }
}

pub fn string_list(d: &mut FileDiags, node: &Node, what: &str) -> Option<Vec<String>> {
    let items = list(d, node, what)?;
    let before = d.count();
    let out: Vec<String> = items.iter().filter_map(|n| nonempty_string(d, n, &format!("{what}[]"))).collect();
    (d.count() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key_for_a_typo() {
        assert_eq!(did_you_mean("modle", &["bundle", "model", "prompt"]), Some("model"));
        assert_eq!(did_you_mean("golden_set_sha", &["golden_set", "golden_set_sha256"]), Some("golden_set_sha256"));
        assert_eq!(did_you_mean("zzzz", &["bundle", "model"]), None);
    }
}
