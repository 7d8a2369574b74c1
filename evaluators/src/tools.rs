//! `tools.yaml`: the tools a bundle's agent may call, each with a JSON Schema for its input.

use crate::decode;
use crate::diagnostic::FileDiags;
use crate::ids::ToolName;
use crate::limits::MAX_TOOLS;
use crate::tree::Node;
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: ToolName,
    pub description: String,
    /// A valid JSON Schema (draft 2020-12) for the tool's input object.
    pub input_schema: Value,
    /// Where the tool is defined (1-based line of its `name`), for diagnostics.
    pub line: u32,
}

impl ToolDef {
    /// The names of the schema's top-level properties.
    pub fn property_names(&self) -> Vec<&str> {
        self.input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn required_names(&self) -> Vec<&str> {
        self.input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

const TOOL: &[&str] = &["name", "description", "input_schema"];

/// Why a schema is not a valid JSON Schema, and which part of it is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaDefect {
    pub message: String,
    /// A JSON pointer to the offending part of the schema (`""`: the schema as a whole).
    pub pointer: String,
}

impl fmt::Display for SchemaDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{} (at `{}`)", self.message, self.pointer)
        }
    }
}

/// Every way `schema` is not a valid JSON Schema, draft 2020-12: its violations of the
/// meta-schema, or else why it cannot be compiled (a bad regex, an unresolvable `$ref`).
pub fn schema_defects(schema: &Value) -> Vec<SchemaDefect> {
    let meta = jsonschema::draft202012::meta::validator();
    // Against the meta-schema the schema is the instance: its instance path is the defect.
    let defects: Vec<SchemaDefect> = meta
        .iter_errors(schema)
        .map(|e| SchemaDefect { message: e.to_string(), pointer: e.instance_path().to_string() })
        .collect();
    if !defects.is_empty() {
        return defects;
    }
    // Compiling reports where in the schema it stopped as the error's schema path.
    match jsonschema::draft202012::new(schema) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let at = if e.instance_path().is_empty() { e.schema_path() } else { e.instance_path() };
            vec![SchemaDefect { message: e.to_string(), pointer: at.to_string() }]
        }
    }
}

/// Checks that `schema` is itself a valid JSON Schema, draft 2020-12 (the first defect).
pub fn validate_schema(schema: &Value) -> Result<(), String> {
    match schema_defects(schema).into_iter().next() {
        Some(defect) => Err(defect.to_string()),
        None => Ok(()),
    }
}

/// Decodes the list of tools, reporting every problem.
pub fn decode(d: &mut FileDiags, root: &Node) -> Vec<ToolDef> {
    let mut out: Vec<ToolDef> = Vec::new();
    let Some(items) = decode::list(d, root, "tools") else { return out };
    if items.len() > MAX_TOOLS {
        d.at(root.pos, format!("{} tools, over the limit of {MAX_TOOLS}", items.len()));
        return out;
    }
    for (i, item) in items.iter().enumerate() {
        let what = format!("tools[{i}]");
        let Some(f) = decode::mapping(d, item, &what, TOOL) else { continue };
        let name_node = f.require(d, "name", &what);
        let name = name_node.and_then(|n| {
            let s = decode::string(d, n, &format!("{what}.name"))?;
            ToolName::parse(&s).map_err(|e| d.at(n.pos, e)).ok()
        });
        if let (Some(name), Some(n)) = (&name, name_node) {
            if let Some(first) = out.iter().find(|t| &t.name == name) {
                d.at(n.pos, format!("duplicate tool name `{name}` (first at line {})", first.line));
            }
        }
        let description = f
            .require(d, "description", &what)
            .and_then(|n| decode::nonempty_string(d, n, &format!("{what}.description")));
        let schema = f.require(d, "input_schema", &what).and_then(|n| {
            decode::free_mapping(d, n, &format!("{what}.input_schema"))?;
            let value = n.to_json();
            if value.get("type").and_then(Value::as_str) != Some("object") {
                let at = n.get("type").map_or(n.pos, |t| t.pos);
                d.at(at, format!("`{what}.input_schema` must have `type: object` (tool input is always an object)"));
                return None;
            }
            let defects = schema_defects(&value);
            for defect in &defects {
                // At the offending value itself; at `input_schema` when the pointer names none.
                let at = n.pointer(&defect.pointer).map_or(n.pos, |node| node.pos);
                d.at(at, format!("`{what}.input_schema` is not a valid JSON Schema: {defect}"));
            }
            defects.is_empty().then_some(value)
        });
        if let (Some(name), Some(description), Some(input_schema)) = (name, description, schema) {
            out.push(ToolDef { name, description, input_schema, line: item.pos.line });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Diagnostics, Pos};
    use serde_json::json;

    fn pointers(schema: Value) -> Vec<String> {
        schema_defects(&schema).into_iter().map(|d| d.pointer).collect()
    }

    /// The errors of decoding `yaml` as a tools file, as (line, col, message).
    fn decode_errors(yaml: &str) -> Vec<(u32, u32, String)> {
        let root = crate::parse::yaml::parse(yaml).expect("valid YAML");
        let mut diags = Diagnostics::new();
        decode(&mut FileDiags::new("tools.yaml", &mut diags), &root);
        diags
            .into_sorted()
            .into_iter()
            .map(|d| (d.pos.unwrap_or_default(), d.message))
            .map(|(p, m)| (p.line, p.col, m))
            .collect()
    }

    #[test]
    fn a_valid_schema_has_no_defects() {
        assert!(
            pointers(json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]})).is_empty()
        );
    }

    #[test]
    fn a_meta_schema_violation_points_at_the_offending_part() {
        assert_eq!(pointers(json!({"type": "object", "required": "notalist"})), ["/required"]);
        assert_eq!(pointers(json!({"type": "object", "properties": 5})), ["/properties"]);
        assert_eq!(
            pointers(json!({"type": "object", "properties": {"amount": {"type": "numbr"}}})),
            ["/properties/amount/type"]
        );
    }

    #[test]
    fn every_meta_schema_violation_is_found() {
        let mut found = pointers(json!({"type": "object", "required": 1, "properties": {"a": {"type": "numbr"}}}));
        found.sort();
        assert_eq!(found, ["/properties/a/type", "/required"]);
    }

    #[test]
    fn a_schema_that_does_not_compile_points_at_the_keyword() {
        let defects =
            schema_defects(&json!({"type": "object", "properties": {"id": {"type": "string", "pattern": "("}}}));
        assert_eq!(defects.len(), 1, "{defects:?}");
        assert_eq!(defects[0].pointer, "/properties/id/pattern");
    }

    #[test]
    fn validate_schema_names_where_the_first_defect_is() {
        let e = validate_schema(&json!({"type": "object", "required": "x"})).unwrap_err();
        assert!(e.ends_with("(at `/required`)"), "{e}");
    }

    #[test]
    fn a_defect_is_reported_at_its_node_in_the_source() {
        let yaml = "- name: t\n  description: d\n  input_schema:\n    type: object\n    properties:\n      a: { type: numbr }\n    required: x\n";
        let errors = decode_errors(yaml);
        let at: Vec<(u32, u32)> = errors.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, [(6, 18), (7, 15)], "{errors:?}");
        assert!(errors.iter().all(|(_, _, m)| m.starts_with("`tools[0].input_schema` is not a valid JSON Schema: ")));
    }

    #[test]
    fn a_wrong_top_level_type_is_reported_at_the_type() {
        let errors = decode_errors("- name: t\n  description: d\n  input_schema: { type: objekt }\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].0, errors[0].1), (3, 25));
        let errors = decode_errors("- name: t\n  description: d\n  input_schema: { properties: {} }\n");
        assert_eq!((errors[0].0, errors[0].1), (3, 17), "no `type`: at the schema itself");
    }

    #[test]
    fn a_pointer_finds_nested_values_and_nothing_else() {
        let root = crate::parse::yaml::parse("a:\n  b: [x, { c~d: 1, e/f: 2 }]\n").expect("valid YAML");
        let at = |p: &str| root.pointer(p).map(|n| n.pos);
        assert_eq!(at(""), Some(root.pos));
        assert_eq!(at("/a/b/0"), Some(Pos::new(2, 7)));
        assert_eq!(at("/a/b/1/c~0d"), Some(Pos::new(2, 17)));
        assert_eq!(at("/a/b/1/e~1f"), Some(Pos::new(2, 25)));
        assert_eq!(at("/a/b/2"), None);
        assert_eq!(at("/a/b/01"), None);
        assert_eq!(at("/a/missing"), None);
        assert_eq!(at("a"), None);
    }
}
