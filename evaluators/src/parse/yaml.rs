//! YAML 1.2 (core schema) → [`Node`], on top of `saphyr-parser`'s event stream.
//!
//! We build the tree ourselves rather than use a YAML-to-serde crate because we need the
//! position of every key and value, every problem rather than the first, byte ranges for
//! in-place edits, and hard limits on depth and size.

use super::SyntaxError;
use crate::diagnostic::Pos;
use crate::limits::{MAX_DEPTH, MAX_NODES};
use crate::tree::{Key, Kind, Node};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span, Tag};
use std::collections::HashMap;

/// Parses one YAML document. An empty document (only comments, or nothing) is an error: every
/// evalgate YAML file has content.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let offsets = CharOffsets::new(text);
    let mut b =
        Builder { text, offsets: &offsets, stack: Vec::new(), anchors: HashMap::new(), nodes: 0, root: None, docs: 0 };
    for item in Parser::new_from_str(text) {
        let (event, span) =
            item.map_err(|e| SyntaxError { pos: pos_of(e.marker()), message: format!("invalid YAML: {}", e.info()) })?;
        b.event(event, span)?;
    }
    b.root.ok_or_else(|| SyntaxError { pos: Pos::new(1, 1), message: "the file is empty".into() })
}

fn pos_of(m: &Marker) -> Pos {
    Pos::new(m.line().max(1) as u32, m.col() as u32 + 1)
}

/// saphyr counts characters; byte offsets are what an editor of the text needs.
struct CharOffsets {
    /// Empty when the text is ASCII (then char index = byte offset).
    byte_of_char: Vec<usize>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let byte_of_char = if text.is_ascii() { Vec::new() } else { text.char_indices().map(|(b, _)| b).collect() };
        CharOffsets { byte_of_char, len: text.len() }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.byte_of_char.is_empty() {
            char_index.min(self.len)
        } else {
            self.byte_of_char.get(char_index).copied().unwrap_or(self.len)
        }
    }
}

enum Frame {
    Seq { anchor: usize, start: Span, items: Vec<Node> },
    Map { anchor: usize, start: Span, entries: Vec<(Key, Node)>, key: Option<Key> },
}

struct Builder<'a> {
    text: &'a str,
    offsets: &'a CharOffsets,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
    docs: usize,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let pos = pos_of(&span.start);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => Ok(()),
            Event::DocumentStart(_) => {
                self.docs += 1;
                if self.docs > 1 {
                    return Err(SyntaxError { pos, message: "only one YAML document is allowed in this file".into() });
                }
                Ok(())
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| SyntaxError { pos, message: "alias to an unknown anchor".into() })?;
                self.count(node_count(&node), pos)?;
                self.finish(Node { pos, ..node })
            }
            Event::Scalar(value, style, anchor, tag) => {
                self.count(1, pos)?;
                let kind =
                    resolve_scalar(&value, style, tag.as_deref()).map_err(|message| SyntaxError { pos, message })?;
                let range = self.range(&span);
                let node = Node { pos, span: range.start..scalar_end(self.text, range.clone(), style), kind };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.attach(node, &value, style)
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(pos, tag.as_deref())?;
                self.stack.push(Frame::Seq { anchor, start: span, items: Vec::new() });
                Ok(())
            }
            Event::MappingStart(anchor, tag) => {
                self.open(pos, tag.as_deref())?;
                self.stack.push(Frame::Map { anchor, start: span, entries: Vec::new(), key: None });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self.stack.pop().ok_or_else(|| SyntaxError { pos, message: "unbalanced YAML".into() })?;
                let (anchor, start, kind) = match frame {
                    Frame::Seq { anchor, start, items } => (anchor, start, Kind::Seq(items)),
                    Frame::Map { anchor, start, entries, .. } => (anchor, start, Kind::Map(entries)),
                };
                let end = self.offsets.byte(span.end.index()).max(self.offsets.byte(start.start.index()));
                let node = Node { pos: pos_of(&start.start), span: self.offsets.byte(start.start.index())..end, kind };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.finish(node)
            }
        }
    }

    fn range(&self, span: &Span) -> std::ops::Range<usize> {
        self.offsets.byte(span.start.index())..self.offsets.byte(span.end.index())
    }

    fn count(&mut self, n: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError { pos, message: format!("more than {MAX_NODES} values in one file (limit)") });
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos, tag: Option<&Tag>) -> Result<(), SyntaxError> {
        if let Some(tag) = tag {
            if !(tag.is_yaml_core_schema() && matches!(tag.suffix.as_str(), "seq" | "map")) {
                return Err(SyntaxError { pos, message: format!("YAML tag `{tag}` is not supported here") });
            }
        }
        self.count(1, pos)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError { pos, message: format!("nesting deeper than {MAX_DEPTH} levels (limit)") });
        }
        Ok(())
    }

    /// A scalar arrives: it may be a mapping key rather than a value.
    fn attach(&mut self, node: Node, raw: &str, style: ScalarStyle) -> Result<(), SyntaxError> {
        if let Some(Frame::Map { key: key @ None, .. }) = self.stack.last_mut() {
            // Keys are names: take the text as written (`1:` is the key "1"), but a key that
            // is null (`: x`) names nothing.
            if matches!(node.kind, Kind::Null) && style == ScalarStyle::Plain && raw.is_empty() {
                return Err(SyntaxError { pos: node.pos, message: "a mapping key is missing".into() });
            }
            *key = Some(Key { name: raw.to_owned(), pos: node.pos, span: node.span });
            return Ok(());
        }
        self.finish(node)
    }

    /// A complete value: the root, a list item or a mapping value.
    fn finish(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => Err(SyntaxError { pos: node.pos, message: "mapping keys must be plain strings".into() }),
                Some(k) => {
                    if let Some((first, _)) = entries.iter().find(|(e, _)| e.name == k.name) {
                        return Err(SyntaxError {
                            pos: k.pos,
                            message: format!("duplicate key `{}` (first at line {})", k.name, first.pos.line),
                        });
                    }
                    entries.push((k, node));
                    Ok(())
                }
            },
        }
    }
}

/// Where a scalar's own text ends. The parser's span may run on over trailing blanks and a
/// comment; an in-place edit must replace exactly the value.
fn scalar_end(text: &str, range: std::ops::Range<usize>, style: ScalarStyle) -> usize {
    let Some(src) = text.get(range.clone()) else { return range.end };
    let bytes = src.as_bytes();
    let close = match style {
        ScalarStyle::DoubleQuoted => {
            let mut i = 1;
            loop {
                match bytes.get(i) {
                    None => break None,
                    Some(b'\\') => i += 2,
                    Some(b'"') => break Some(i + 1),
                    Some(_) => i += 1,
                }
            }
        }
        ScalarStyle::SingleQuoted => {
            let mut i = 1;
            loop {
                match (bytes.get(i), bytes.get(i + 1)) {
                    (None, _) => break None,
                    (Some(b'\''), Some(b'\'')) => i += 2,
                    (Some(b'\''), _) => break Some(i + 1),
                    _ => i += 1,
                }
            }
        }
        ScalarStyle::Plain => {
            let cut = src.find(" #").unwrap_or(src.len());
            Some(src[..cut].trim_end().len())
        }
        _ => None,
    };
    close.map_or(range.end, |c| range.start + c)
}

fn node_count(node: &Node) -> usize {
    match &node.kind {
        Kind::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Kind::Map(entries) => 1 + entries.iter().map(|(_, v)| node_count(v)).sum::<usize>(),
        _ => 1,
    }
}

/// The YAML 1.2 core schema: plain scalars may be null, booleans or numbers; anything quoted or
/// in a block is a string. Only the core tags (`!!str`, `!!int`, …) are accepted.
fn resolve_scalar(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Kind, String> {
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            return Err(format!("YAML tag `{tag}` is not supported here"));
        }
        return match tag.suffix.as_str() {
            "str" => Ok(Kind::Str(value.to_string())),
            "null" | "bool" | "int" | "float" => match plain(value) {
                k @ (Kind::Null | Kind::Bool(_)) if tag.suffix == "null" || tag.suffix == "bool" => Ok(k),
                k @ Kind::Int(_) if tag.suffix == "int" => Ok(k),
                Kind::Int(i) if tag.suffix == "float" => Ok(Kind::Float(i as f64)),
                k @ Kind::Float(_) if tag.suffix == "float" => Ok(k),
                _ => Err(format!("`{value}` is not a valid !!{}", tag.suffix)),
            },
            other => Err(format!("YAML tag `!!{other}` is not supported here")),
        };
    }
    Ok(match style {
        ScalarStyle::Plain => plain(value),
        _ => Kind::Str(value.to_string()),
    })
}

fn plain(v: &str) -> Kind {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Kind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Kind::Int(i);
        }
    }
    if let Some(oct) = v.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Kind::Int(i);
        }
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = v.parse::<i64>() {
            return Kind::Int(i);
        }
    }
    if is_core_float(digits) {
        if let Ok(f) = v.parse::<f64>() {
            return Kind::Float(f);
        }
    }
    Kind::Str(v.to_owned())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` without the sign.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && (!int.is_empty() || !frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exp_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_point_at_keys_and_values() {
        let n = parse("a: 1\nbee:\n  c: \"x\"\n").unwrap();
        let (k, v) = n.entry("bee").unwrap();
        assert_eq!(k.pos, Pos::new(2, 1));
        let (ck, cv) = v.entry("c").unwrap();
        assert_eq!(ck.pos, Pos::new(3, 3));
        assert_eq!(cv.pos, Pos::new(3, 6));
        assert_eq!(cv.kind, Kind::Str("x".into()));
    }

    #[test]
    fn scalar_spans_are_byte_ranges_even_after_multibyte_text() {
        let text = "é: \"ü\"\nk: abc\n";
        let n = parse(text).unwrap();
        let v = n.get("k").unwrap();
        assert_eq!(&text[v.span.clone()], "abc");
        let q = n.get("é").unwrap();
        assert_eq!(&text[q.span.clone()], "\"ü\"");
        let c = parse("a: \"x\\\"y\"   # note\nb: 'it''s'  # c\nc: plain words  # c\n").unwrap();
        assert_eq!(c.get("a").unwrap().span.len(), "\"x\\\"y\"".len());
        assert_eq!(c.get("b").unwrap().span.len(), "'it''s'".len());
        assert_eq!(c.get("c").unwrap().span.len(), "plain words".len());
    }

    #[test]
    fn core_schema_resolves_plain_scalars_only() {
        let n = parse("a: 1\nb: '1'\nc: 1.5\nd: true\ne: ~\nf: 1.10\ng: 0x1f\nh: 1e3\ni: 12abc\n").unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Int(1));
        assert_eq!(n.get("b").unwrap().kind, Kind::Str("1".into()));
        assert_eq!(n.get("c").unwrap().kind, Kind::Float(1.5));
        assert_eq!(n.get("d").unwrap().kind, Kind::Bool(true));
        assert_eq!(n.get("e").unwrap().kind, Kind::Null);
        assert_eq!(n.get("f").unwrap().kind, Kind::Float(1.1));
        assert_eq!(n.get("g").unwrap().kind, Kind::Int(31));
        assert_eq!(n.get("h").unwrap().kind, Kind::Float(1000.0));
        assert_eq!(n.get("i").unwrap().kind, Kind::Str("12abc".into()));
    }

    #[test]
    fn duplicate_keys_are_rejected_with_both_lines() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.pos, Pos::new(3, 1));
        assert!(e.message.contains("duplicate key `a` (first at line 1)"), "{e}");
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{e}");
        assert!(e.pos.line >= 1);
    }

    #[test]
    fn alias_bombs_hit_the_value_limit() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("limit"), "{e}");
    }

    #[test]
    fn deep_nesting_hits_the_depth_limit() {
        let text = format!("{}1{}", "[".repeat(MAX_DEPTH + 5), "]".repeat(MAX_DEPTH + 5));
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nesting deeper"), "{e}");
    }

    #[test]
    fn several_documents_are_rejected() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("one YAML document"), "{e}");
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(parse("# only a comment\n").unwrap_err().message.contains("empty"));
    }
}
