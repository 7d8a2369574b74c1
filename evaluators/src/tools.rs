//! `tools.yaml`: the tools a bundle's agent may call, each with a JSON Schema for its input.

use crate::decode;
use crate::diagnostic::FileDiags;
use crate::ids::ToolName;
use crate::limits::MAX_TOOLS;
use crate::tree::Node;
use serde_json::Value;

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

/// Checks that `schema` is itself a valid JSON Schema, draft 2020-12.
pub fn validate_schema(schema: &Value) -> Result<(), String> {
    jsonschema::draft202012::meta::validate(schema).map_err(|e| {
        let at = e.instance_path().to_string();
        if at.is_empty() { e.to_string() } else { format!("{e} (at `{at}`)") }
    })?;
    jsonschema::draft202012::new(schema).map(|_| ()).map_err(|e| e.to_string())
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
                d.at(n.pos, format!("`{what}.input_schema` must have `type: object` (tool input is always an object)"));
                return None;
            }
            match validate_schema(&value) {
                Ok(()) => Some(value),
                Err(e) => {
                    d.at(n.pos, format!("`{what}.input_schema` is not a valid JSON Schema: {e}"));
                    None
                }
            }
        });
        if let (Some(name), Some(description), Some(input_schema)) = (name, description, schema) {
            out.push(ToolDef { name, description, input_schema, line: item.pos.line });
        }
    }
    out
}
