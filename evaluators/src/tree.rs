//! The spanned document tree that every YAML and JSON input is parsed into.
//!
//! Serde would stop at the first problem and forget where values came from; checks need every
//! problem with its line and column, and `golden pin` needs byte ranges to edit a file in place.
//! So both parsers produce this one small tree and typed decoding happens on it (see `decode`).

use crate::diagnostic::Pos;
use std::ops::Range;

/// A value with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    /// Byte range of the value in the source text (for scalars, including quotes).
    pub span: Range<usize>,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in source order; duplicates are rejected by the parsers.
    Map(Vec<(Key, Node)>),
}

/// A mapping key (always a string in evalgate's formats) with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
    pub span: Range<usize>,
}

impl Node {
    /// What kind of value this is, in the words an error message uses.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "a whole number",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// The mapping entry (key and value) for `key`.
    pub fn entry(&self, key: &str) -> Option<(&Key, &Node)> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(k, v)| (k, v))
    }

    /// The value at a JSON pointer (RFC 6901, as `serde_json::Value::pointer` reads it) into
    /// [`Node::to_json`] of this node: `""` is this node, `/properties/amount/type` a nested one.
    /// Lets an error found in the JSON form be reported where the value is in the source.
    pub fn pointer(&self, pointer: &str) -> Option<&Node> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut tokens = pointer.strip_prefix('/')?.split('/').map(|t| t.replace("~1", "/").replace("~0", "~"));
        tokens.try_fold(self, |node, token| match &node.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.name == token).map(|(_, v)| v),
            Kind::Seq(items) => {
                let canonical = token == "0" || !(token.starts_with('0') || token.starts_with('+'));
                if canonical { token.parse::<usize>().ok().and_then(|i| items.get(i)) } else { None }
            }
            _ => None,
        })
    }

    /// The same value as plain JSON, positions dropped (tool fixtures, args, schemas).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }

    /// Depth of nesting (a scalar is 0).
    pub fn depth(&self) -> usize {
        match &self.kind {
            Kind::Seq(items) => 1 + items.iter().map(Node::depth).max().unwrap_or(0),
            Kind::Map(entries) => 1 + entries.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Byte offset → 1-based line and character column, for parsers that report offsets.
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { line_starts }
    }

    pub fn pos(&self, text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        Pos::new(line as u32, col as u32 + 1)
    }
}
