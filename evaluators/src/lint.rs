//! Prompt lints (from `.evalgate.yml`) and prompt ↔ tools drift.
//!
//! Drift is what breaks agents quietly: the prompt tells the model to call `refund_order(order_id,
//! amount)` while the schema renamed `amount` or dropped the tool. A call in the prompt is an
//! identifier immediately followed by `(`, counted as a tool mention when it is written like one:
//! it contains `_`, or stands in backticks, or is the name of a declared tool. (Plain words such
//! as "item(s)" are not mentions.)

use crate::config::LintRules;
use crate::decode::did_you_mean;
use crate::diagnostic::FileDiags;
use crate::tools::ToolDef;
use crate::tree::LineIndex;
use regex::Regex;
use std::sync::LazyLock;

static CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(`?)\b([A-Za-z][A-Za-z0-9_-]*)\(([^()\n]{0,400})(\)?)").expect("static regex compiles")
});
static ARG_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?:[=:].*)?$").expect("static regex compiles"));

/// `.evalgate.yml`'s `lint:` rules applied to a prompt.
pub fn prompt(d: &mut FileDiags, text: &str, rules: &LintRules) {
    let index = LineIndex::new(text);
    if let Some(max) = rules.prompt_max_chars {
        let chars = text.chars().count() as u64;
        if chars > max {
            let over = text.char_indices().nth(max as usize).map_or(text.len(), |(i, _)| i);
            d.at(index.pos(text, over), format!("prompt is {chars} characters, over `lint.prompt_max_chars` ({max})"));
        }
    }
    for section in &rules.required_sections {
        if !text.lines().any(|l| l.trim_start().starts_with(section.as_str())) {
            d.at(
                index.pos(text, 0),
                format!("prompt lacks the required section `{section}` (`lint.required_sections`)"),
            );
        }
    }
    for phrase in &rules.forbidden_phrases {
        let Ok(re) = Regex::new(&format!("(?i){}", regex::escape(phrase))) else { continue };
        for m in re.find_iter(text) {
            d.at(
                index.pos(text, m.start()),
                format!("prompt contains the forbidden phrase `{phrase}` (`lint.forbidden_phrases`)"),
            );
        }
    }
}

/// Tool calls named in the prompt that the tools file lacks, or whose argument names differ
/// from the schema's properties.
pub fn drift(d: &mut FileDiags, text: &str, tools: &[ToolDef]) {
    let index = LineIndex::new(text);
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for c in CALL.captures_iter(text) {
        let (Some(whole), Some(name)) = (c.get(0), c.get(2)) else { continue };
        let name = name.as_str();
        let in_backticks = c.get(1).is_some_and(|m| !m.is_empty());
        let tool = tools.iter().find(|t| t.name.as_str() == name);
        if tool.is_none() && !name.contains('_') && !in_backticks {
            continue;
        }
        let at = index.pos(text, c.get(2).map_or(whole.start(), |m| m.start()));
        let Some(tool) = tool else {
            let hint = match did_you_mean(name, &names) {
                Some(n) => format!("; did you mean `{n}`?"),
                None if names.is_empty() => "; the bundle declares no tools".to_owned(),
                None => format!("; declared tools: {}", names.join(", ")),
            };
            d.at(at, format!("prompt names tool `{name}(` that the tools file lacks{hint}"));
            continue;
        };
        let closed = c.get(4).is_some_and(|m| !m.is_empty());
        let args = c.get(3).map_or("", |m| m.as_str()).trim();
        if !closed || args.is_empty() {
            continue;
        }
        let mut arg_names = Vec::new();
        for raw in args.split(',') {
            let raw = raw.trim();
            if raw.is_empty() || raw == "..." || raw == "…" {
                continue;
            }
            match ARG_NAME.captures(raw).and_then(|m| m.get(1)) {
                Some(n) => arg_names.push(n.as_str()),
                // A literal value (`"A1"`, `42`): the signature names no arguments to compare.
                None => {
                    arg_names.clear();
                    break;
                }
            }
        }
        if arg_names.is_empty() {
            continue;
        }
        let props = tool.property_names();
        for a in &arg_names {
            if !props.contains(a) {
                let hint = did_you_mean(a, &props).map(|p| format!("; did you mean `{p}`?")).unwrap_or_default();
                d.at(
                    at,
                    format!("prompt calls `{name}` with argument `{a}`, which its input_schema lacks (properties: {}){hint}", props.join(", ")),
                );
            }
        }
        for r in tool.required_names() {
            if !arg_names.contains(&r) {
                d.at(at, format!("prompt calls `{name}` without its required argument `{r}`"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Diagnostics;
    use crate::ids::ToolName;

    fn tool(name: &str, props: &[&str], required: &[&str]) -> ToolDef {
        let properties: serde_json::Map<String, serde_json::Value> =
            props.iter().map(|p| (p.to_string(), serde_json::json!({"type": "string"}))).collect();
        ToolDef {
            name: ToolName::parse(name).unwrap(),
            description: "d".into(),
            input_schema: serde_json::json!({"type": "object", "properties": properties, "required": required}),
            line: 1,
        }
    }

    fn drift_messages(text: &str, tools: &[ToolDef]) -> Vec<String> {
        let mut diags = Diagnostics::new();
        drift(&mut FileDiags::new("p.md", &mut diags), text, tools);
        diags.iter().map(|d| format!("{}:{}", d.pos.unwrap().line, d.message)).collect()
    }

    #[test]
    fn matching_signatures_are_quiet() {
        let t = [tool("refund_order", &["order_id", "amount"], &["order_id"])];
        assert!(drift_messages("Call refund_order(order_id, amount) once. Item(s) ok.", &t).is_empty());
        assert!(drift_messages("Use `refund_order()` or refund_order(order_id=\"A1\").", &t).is_empty());
    }

    #[test]
    fn unknown_tool_is_reported_with_a_suggestion() {
        let t = [tool("refund_order", &["order_id"], &[])];
        let m = drift_messages("line\nthen call refund_ordr(order_id)", &t);
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("2:") && m[0].contains("did you mean `refund_order`"), "{m:?}");
    }

    #[test]
    fn argument_names_must_match_properties() {
        let t = [tool("refund_order", &["order_id", "amount"], &["order_id", "amount"])];
        let m = drift_messages("refund_order(order_id, amout)", &t);
        assert!(m.iter().any(|x| x.contains("argument `amout`") && x.contains("did you mean `amount`")), "{m:?}");
        assert!(m.iter().any(|x| x.contains("without its required argument `amount`")), "{m:?}");
    }

    #[test]
    fn forbidden_phrases_are_found_case_insensitively_with_positions() {
        let mut diags = Diagnostics::new();
        let rules = LintRules { forbidden_phrases: vec!["as an AI language model".into()], ..Default::default() };
        prompt(&mut FileDiags::new("p.md", &mut diags), "Hello.\nSay: As an AI Language Model, no.", &rules);
        let d: Vec<_> = diags.iter().collect();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pos.unwrap(), crate::diagnostic::Pos::new(2, 6));
    }
}
