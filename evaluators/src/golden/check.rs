//! The checks a case declares, decoded into a closed set of types.

use super::GoldenContext;
use crate::decode;
use crate::diagnostic::FileDiags;
use crate::ids::ToolName;
use crate::tree::Node;
use serde_json::{Map, Value};
use std::fmt;

/// A compiled regular expression that compares by its pattern.
#[derive(Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.0.as_str())
    }
}

/// One check. Deterministic checks apply to the agent's final answer unless said otherwise;
/// `Judge` is graded by the pinned judge model.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Equals {
        value: String,
    },
    Contains {
        value: String,
    },
    NotContains {
        value: String,
    },
    IContains {
        value: String,
    },
    Regex {
        pattern: Pattern,
    },
    StartsWith {
        value: String,
    },
    JsonValid,
    JsonSchema {
        schema: Value,
    },
    MaxChars {
        value: u64,
    },
    /// The tool was called, with arguments that include `args` (a subset).
    ToolCalled {
        tool: ToolName,
        args: Option<Map<String, Value>>,
    },
    ToolNotCalled {
        tool: ToolName,
    },
    /// Every tool call's arguments validate against the bundle's schema.
    ToolArgsValid,
    MaxTurns {
        value: u32,
    },
    MaxTokens {
        value: u64,
    },
    MaxLatencyMs {
        value: u64,
    },
    MaxCostUsd {
        value: f64,
    },
    Judge {
        rubric: Option<String>,
    },
}

/// Every check type with the fields it takes (besides `type`).
pub const TYPES: &[(&str, &[&str])] = &[
    ("equals", &["value"]),
    ("contains", &["value"]),
    ("not_contains", &["value"]),
    ("icontains", &["value"]),
    ("regex", &["pattern"]),
    ("starts_with", &["value"]),
    ("json_valid", &[]),
    ("json_schema", &["schema"]),
    ("max_chars", &["value"]),
    ("tool_called", &["tool", "args"]),
    ("tool_not_called", &["tool"]),
    ("tool_args_valid", &[]),
    ("max_turns", &["value"]),
    ("max_tokens", &["value"]),
    ("max_latency_ms", &["value"]),
    ("max_cost_usd", &["value"]),
    ("judge", &["rubric"]),
];

impl Check {
    /// The check as `cases.jsonl` writes it (`{"type": "contains", "value": "refund"}`): how a
    /// reviewer is shown a changed case, by content.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::from(self.type_name()));
        let mut put = |k: &str, v: Value| {
            m.insert(k.into(), v);
        };
        match self {
            Check::Equals { value }
            | Check::Contains { value }
            | Check::NotContains { value }
            | Check::IContains { value }
            | Check::StartsWith { value } => put("value", Value::from(value.as_str())),
            Check::Regex { pattern } => put("pattern", Value::from(pattern.regex().as_str())),
            Check::JsonSchema { schema } => put("schema", schema.clone()),
            Check::MaxChars { value } | Check::MaxTokens { value } | Check::MaxLatencyMs { value } => {
                put("value", Value::from(*value))
            }
            Check::MaxTurns { value } => put("value", Value::from(*value)),
            Check::MaxCostUsd { value } => put("value", Value::from(*value)),
            Check::ToolCalled { tool, args } => {
                put("tool", Value::from(tool.as_str()));
                if let Some(a) = args {
                    put("args", Value::Object(a.clone()));
                }
            }
            Check::ToolNotCalled { tool } => put("tool", Value::from(tool.as_str())),
            Check::Judge { rubric } => {
                if let Some(r) = rubric {
                    put("rubric", Value::from(r.as_str()));
                }
            }
            Check::JsonValid | Check::ToolArgsValid => {}
        }
        Value::Object(m)
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Check::Equals { .. } => "equals",
            Check::Contains { .. } => "contains",
            Check::NotContains { .. } => "not_contains",
            Check::IContains { .. } => "icontains",
            Check::Regex { .. } => "regex",
            Check::StartsWith { .. } => "starts_with",
            Check::JsonValid => "json_valid",
            Check::JsonSchema { .. } => "json_schema",
            Check::MaxChars { .. } => "max_chars",
            Check::ToolCalled { .. } => "tool_called",
            Check::ToolNotCalled { .. } => "tool_not_called",
            Check::ToolArgsValid => "tool_args_valid",
            Check::MaxTurns { .. } => "max_turns",
            Check::MaxTokens { .. } => "max_tokens",
            Check::MaxLatencyMs { .. } => "max_latency_ms",
            Check::MaxCostUsd { .. } => "max_cost_usd",
            Check::Judge { .. } => "judge",
        }
    }

    pub fn is_judge(&self) -> bool {
        matches!(self, Check::Judge { .. })
    }
}

const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Decodes one check, reporting every problem with its position.
pub fn decode(d: &mut FileDiags, n: &Node, what: &str, ctx: Option<&GoldenContext>) -> Option<Check> {
    let Some(type_node) = n.get("type") else {
        if n.as_map().is_none() {
            d.at(n.pos, format!("`{what}` must be a mapping, found {}", n.kind_name()));
        } else {
            d.at(n.pos, format!("`{what}` has no `type`"));
        }
        return None;
    };
    let ty = decode::string(d, type_node, &format!("{what}.type"))?;
    let Some((_, fields)) = TYPES.iter().find(|(t, _)| *t == ty) else {
        let names: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
        d.at(type_node.pos, format!("unknown check type `{ty}`; {}", decode::suggestion(&ty, &names)));
        return None;
    };
    let mut known = vec!["type"];
    known.extend_from_slice(fields);
    let before = d.count();
    let f = decode::mapping(d, n, what, &known)?;
    let w = |k: &str| decode::join(what, k);
    let string = |d: &mut FileDiags, k: &str| f.require(d, k, what).and_then(|v| decode::string(d, v, &w(k)));
    let count = |d: &mut FileDiags, k: &str| {
        f.require(d, k, what).and_then(|v| decode::int_in(d, v, &w(k), 0, i64::MAX)).map(|v| v as u64)
    };
    let check = match ty.as_str() {
        "equals" => Check::Equals { value: string(d, "value")? },
        "contains" => Check::Contains { value: nonempty(d, &f, what, "value")? },
        "not_contains" => Check::NotContains { value: nonempty(d, &f, what, "value")? },
        "icontains" => Check::IContains { value: nonempty(d, &f, what, "value")? },
        "starts_with" => Check::StartsWith { value: nonempty(d, &f, what, "value")? },
        "regex" => {
            let node = f.require(d, "pattern", what)?;
            let p = decode::nonempty_string(d, node, &w("pattern"))?;
            match regex::RegexBuilder::new(&p).size_limit(REGEX_SIZE_LIMIT).build() {
                Ok(re) => Check::Regex { pattern: Pattern(re) },
                Err(e) => {
                    let first = e.to_string().lines().last().unwrap_or("invalid").trim().to_owned();
                    d.at(node.pos, format!("`{}` is not a valid regex: {first}", w("pattern")));
                    return None;
                }
            }
        }
        "json_valid" => Check::JsonValid,
        "json_schema" => {
            let node = f.require(d, "schema", what)?;
            let schema = node.to_json();
            if !(schema.is_object() || schema.is_boolean()) {
                d.at(node.pos, format!("`{}` must be a JSON Schema object, found {}", w("schema"), node.kind_name()));
                return None;
            }
            if let Err(e) = crate::tools::validate_schema(&schema) {
                d.at(node.pos, format!("`{}` is not a valid JSON Schema: {e}", w("schema")));
                return None;
            }
            Check::JsonSchema { schema }
        }
        "max_chars" => Check::MaxChars { value: count(d, "value")? },
        "max_tokens" => Check::MaxTokens { value: count(d, "value")? },
        "max_latency_ms" => Check::MaxLatencyMs { value: count(d, "value")? },
        "max_turns" => {
            let v = f.require(d, "value", what)?;
            Check::MaxTurns { value: decode::int_in(d, v, &w("value"), 1, i64::from(u32::MAX))? as u32 }
        }
        "max_cost_usd" => {
            let v = f.require(d, "value", what)?;
            Check::MaxCostUsd { value: decode::non_negative(d, v, &w("value"))? }
        }
        "tool_called" | "tool_not_called" => {
            let node = f.require(d, "tool", what)?;
            let name = decode::string(d, node, &w("tool"))?;
            let tool = ToolName::parse(&name).map_err(|e| d.at(node.pos, e)).ok()?;
            if let Some(ctx) = ctx {
                ctx.require_tool(d, node.pos, &tool)?;
            }
            if ty == "tool_not_called" {
                Check::ToolNotCalled { tool }
            } else {
                let args = match f.get("args") {
                    None => None,
                    Some(a) => {
                        let Value::Object(map) = a.to_json() else {
                            d.at(
                                a.pos,
                                format!(
                                    "`{}` must be a mapping of argument names to values, found {}",
                                    w("args"),
                                    a.kind_name()
                                ),
                            );
                            return None;
                        };
                        if let Some(ctx) = ctx {
                            ctx.check_partial_args(d, a.pos, &tool, &map)?;
                        }
                        Some(map)
                    }
                };
                Check::ToolCalled { tool, args }
            }
        }
        "tool_args_valid" => Check::ToolArgsValid,
        "judge" => {
            let rubric = match f.get("rubric") {
                Some(r) => Some(decode::nonempty_string(d, r, &w("rubric"))?),
                None => None,
            };
            if let Some(ctx) = ctx {
                ctx.require_judge(d, type_node.pos, rubric.is_some())?;
            }
            Check::Judge { rubric }
        }
        _ => return None,
    };
    (d.count() == before).then_some(check)
}

fn nonempty(d: &mut FileDiags, f: &decode::Fields<'_>, what: &str, key: &str) -> Option<String> {
    f.require(d, key, what).and_then(|v| decode::nonempty_string(d, v, &decode::join(what, key)))
}
