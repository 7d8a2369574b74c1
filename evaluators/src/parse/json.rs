//! Strict JSON → [`Node`], on top of `jsonc-parser` with every extension turned off.
//!
//! `serde_json` would give us values but not where each one is; `jsonc-parser` gives an AST
//! with byte ranges, and with its options off it accepts exactly JSON.

use super::SyntaxError;
use crate::diagnostic::Pos;
use crate::limits::MAX_DEPTH;
use crate::tree::{Key, Kind, LineIndex, Node};
use jsonc_parser::ast::{ObjectPropName, Value};
use jsonc_parser::{CollectOptions, ParseOptions, parse_to_ast};

const STRICT: ParseOptions = ParseOptions {
    allow_comments: false,
    allow_loose_object_property_names: false,
    allow_trailing_commas: false,
    allow_missing_commas: false,
    allow_single_quoted_strings: false,
    allow_hexadecimal_numbers: false,
    allow_unary_plus_numbers: false,
    allow_bare_decimal_point_numbers: false,
    allow_non_finite_numbers: false,
    allow_extended_string_escapes: false,
};

/// Parses one JSON value (a whole text).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    parse_at(text, 1)
}

/// Parses one JSON value that starts at line `first_line` of its file (a line of
/// `cases.jsonl`), so positions name the file's lines.
pub fn parse_at(text: &str, first_line: u32) -> Result<Node, SyntaxError> {
    let index = LineIndex::new(text);
    let shift = first_line.saturating_sub(1);
    let at = |offset: usize| {
        let mut p = index.pos(text, offset);
        p.line += shift;
        p
    };
    let result = parse_to_ast(text, &CollectOptions::default(), &STRICT)
        .map_err(|e| SyntaxError { pos: at(e.range().start), message: format!("invalid JSON: {}", e.kind()) })?;
    let value = result.value.ok_or_else(|| SyntaxError { pos: at(0), message: "invalid JSON: no value".into() })?;
    let cx = Cx { at: &at };
    cx.node(&value, 0)
}

struct Cx<'a> {
    at: &'a dyn Fn(usize) -> Pos,
}

impl Cx<'_> {
    fn node(&self, value: &Value<'_>, depth: usize) -> Result<Node, SyntaxError> {
        let range = value_range(value);
        let pos = (self.at)(range.start);
        if depth > MAX_DEPTH {
            return Err(SyntaxError { pos, message: format!("nesting deeper than {MAX_DEPTH} levels (limit)") });
        }
        let kind = match value {
            Value::NullKeyword(_) => Kind::Null,
            Value::BooleanLit(b) => Kind::Bool(b.value),
            Value::StringLit(s) => Kind::Str(s.value.to_string()),
            Value::NumberLit(n) => number(n.value)
                .ok_or_else(|| SyntaxError { pos, message: format!("number `{}` is out of range", n.value) })?,
            Value::Array(a) => Kind::Seq(a.elements.iter().map(|v| self.node(v, depth + 1)).collect::<Result<_, _>>()?),
            Value::Object(o) => {
                let mut entries: Vec<(Key, Node)> = Vec::with_capacity(o.properties.len());
                for prop in &o.properties {
                    let (name, range) = match &prop.name {
                        ObjectPropName::String(s) => (s.value.to_string(), s.range),
                        ObjectPropName::Word(w) => (w.value.to_owned(), w.range),
                    };
                    let kpos = (self.at)(range.start);
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                        return Err(SyntaxError {
                            pos: kpos,
                            message: format!("duplicate key `{name}` (first at column {})", first.pos.col),
                        });
                    }
                    let key = Key { name, pos: kpos, span: range.start..range.end };
                    entries.push((key, self.node(&prop.value, depth + 1)?));
                }
                Kind::Map(entries)
            }
        };
        Ok(Node { pos, span: range.start..range.end, kind })
    }
}

fn value_range(value: &Value<'_>) -> jsonc_parser::common::Range {
    match value {
        Value::StringLit(v) => v.range,
        Value::NumberLit(v) => v.range,
        Value::BooleanLit(v) => v.range,
        Value::Object(v) => v.range,
        Value::Array(v) => v.range,
        Value::NullKeyword(v) => v.range,
    }
}

fn number(raw: &str) -> Option<Kind> {
    if !raw.contains(['.', 'e', 'E']) {
        if let Ok(i) = raw.parse::<i64>() {
            return Some(Kind::Int(i));
        }
    }
    raw.parse::<f64>().ok().filter(|f| f.is_finite()).map(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_carry_columns() {
        let n = parse(r#"{"id": "a", "checks": [{"type": "x"}]}"#).unwrap();
        let (k, v) = n.entry("checks").unwrap();
        assert_eq!(k.pos, Pos::new(1, 13));
        assert_eq!(v.pos, Pos::new(1, 23));
    }

    #[test]
    fn json_extensions_are_rejected() {
        for bad in [
            r#"{"a": 1,}"#,
            r#"{a: 1}"#,
            r#"{"a": 'x'}"#,
            r#"{"a": 0x10}"#,
            "{\"a\": 1} // c",
            r#"{"a": NaN}"#,
            r#"{"a": .5}"#,
        ] {
            assert!(parse(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn syntax_error_names_the_column() {
        let e = parse(r#"{"id": "a" "x": 1}"#).unwrap_err();
        assert_eq!(e.pos.line, 1);
        assert!(e.pos.col > 1, "{e}");
        assert!(e.message.starts_with("invalid JSON"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = parse(r#"{"id": "a", "id": "b"}"#).unwrap_err();
        assert_eq!(e.pos, Pos::new(1, 13));
    }

    #[test]
    fn numbers_keep_integers_exact() {
        let n = parse(r#"[1, -2, 1.5, 1e2, 12345678901234567890]"#).unwrap();
        let Kind::Seq(items) = n.kind else { panic!("not a list") };
        assert_eq!(items[0].kind, Kind::Int(1));
        assert_eq!(items[1].kind, Kind::Int(-2));
        assert_eq!(items[2].kind, Kind::Float(1.5));
        assert_eq!(items[3].kind, Kind::Float(100.0));
        assert!(matches!(items[4].kind, Kind::Float(_)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&text).is_err());
    }
}
