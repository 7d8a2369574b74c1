//! GitHub's own OpenAPI description of api.github.com (`@octokit/openapi`, which ships
//! github/rest-api-description's file), used to check what evalgate sends: each request is matched
//! to its operation by method and path template (`/repos/{owner}/{repo}/check-runs/{check_run_id}`),
//! its query parameters and path parameters are checked against the operation's parameters, and its
//! JSON body is validated against the operation's `requestBody` schema with `jsonschema`.
//!
//! The description is OpenAPI 3.0: its schemas are JSON Schema draft 4 plus `nullable`. `$ref`s
//! are inlined (a reference to a schema already being inlined becomes `{}`), `nullable: true` is
//! turned into a `"null"` type (or an `anyOf` with one), and the result is compiled as draft 4.
//! Beyond the schema, a body property that the schema does not name (where the schema lists its
//! properties and says nothing of others) is reported too: GitHub ignores such a field, so it is
//! always a mistake of the sender.
//!
//! `EVALGATE_GITHUB_OPENAPI` names the file (`.ci/run` fetches a pinned `@octokit/openapi` and
//! sets it); [`Description::from_env`] fails, never skips, without it.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const ENV: &str = "EVALGATE_GITHUB_OPENAPI";

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Param(String),
}

/// One operation of the description.
pub struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    segs: Vec<Seg>,
    /// Parameters by name, resolved: (`in`, schema, required).
    params: Vec<(String, String, Value, bool)>,
    /// The JSON request body: (required, schema), resolved and converted to draft 4.
    body: Option<(bool, Value)>,
    /// The operation takes a body other than JSON.
    other_body: bool,
}

pub struct Description {
    pub version: String,
    ops: Vec<Operation>,
    validators: std::sync::Mutex<BTreeMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

/// What checking a set of requests found.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests checked, by operation id.
    pub checked: BTreeMap<String, usize>,
    /// Request bodies validated against a schema, by operation id.
    pub bodies: BTreeMap<String, usize>,
    /// Every mismatch: `METHOD path (operation): what`.
    pub problems: Vec<String>,
}

impl Description {
    /// The file `EVALGATE_GITHUB_OPENAPI` names. Panics (the test fails) when it is not set or
    /// cannot be read: a check that cannot run must not pass.
    pub fn from_env() -> Description {
        let path = std::env::var(ENV).unwrap_or_else(|_| {
            panic!(
                "{ENV} is not set: point it at api.github.com.json of @octokit/openapi \
                 (.ci/run fetches it: npm pack @octokit/openapi, package/generated/api.github.com.json)"
            )
        });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{ENV}={path}: {e}"));
        Description::parse(&text).unwrap_or_else(|e| panic!("{ENV}={path}: {e}"))
    }

    pub fn parse(text: &str) -> Result<Description, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let openapi = doc["openapi"].as_str().unwrap_or_default();
        if !openapi.starts_with("3.0") {
            return Err(format!("expected an OpenAPI 3.0 description, found `{openapi}`"));
        }
        let paths = doc["paths"].as_object().ok_or("no `paths`")?;
        let mut ops = Vec::new();
        for (template, item) in paths {
            let shared: Vec<Value> = item["parameters"].as_array().cloned().unwrap_or_default();
            for method in ["get", "post", "patch", "put", "delete"] {
                let Some(op) = item.get(method) else { continue };
                let mut params = Vec::new();
                for p in shared.iter().chain(op["parameters"].as_array().into_iter().flatten()) {
                    let p = resolve(&doc, p, &mut Vec::new());
                    let name = p["name"].as_str().unwrap_or_default().to_owned();
                    let location = p["in"].as_str().unwrap_or_default().to_owned();
                    let required = p["required"].as_bool().unwrap_or(false);
                    params.retain(|(n, l, _, _): &(String, String, Value, bool)| !(n == &name && l == &location));
                    params.push((name, location, p["schema"].clone(), required));
                }
                let (mut body, mut other_body) = (None, false);
                if let Some(rb) = op.get("requestBody") {
                    let rb = resolve(&doc, rb, &mut Vec::new());
                    let required = rb["required"].as_bool().unwrap_or(false);
                    match rb["content"].get("application/json") {
                        Some(media) => {
                            let mut schema = media["schema"].clone();
                            to_draft4(&mut schema);
                            body = Some((required, schema));
                        }
                        None => other_body = true,
                    }
                }
                ops.push(Operation {
                    id: op["operationId"].as_str().unwrap_or(template).to_owned(),
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segs: segments(template),
                    params,
                    body,
                    other_body,
                });
            }
        }
        Ok(Description {
            version: doc["info"]["version"].as_str().unwrap_or_default().to_owned(),
            ops,
            validators: Default::default(),
        })
    }

    /// The operation of `METHOD path` (path without query): the template with the most literal
    /// segments among those that match. A last path parameter may take several segments
    /// (`git/refs/{ref}` with `heads/evalgate/pin-bump/demo`), as GitHub's routes do.
    pub fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let actual: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.ops
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
            .filter_map(|op| match_segments(&op.segs, &actual).map(|greedy| (op, greedy)))
            .max_by_key(|(op, greedy)| {
                (!*greedy, op.segs.iter().filter(|s| matches!(s, Seg::Lit(_))).count(), op.segs.len())
            })
            .map(|(op, _)| op)
    }

    fn validator(&self, op: &Operation) -> Result<std::sync::Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = cache.get(&op.id) {
            return Ok(v.clone());
        }
        let (_, schema) = op.body.as_ref().ok_or("no JSON body")?;
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(schema)
            .map_err(|e| format!("the description's schema of {} does not compile: {e}", op.id))?;
        let v = std::sync::Arc::new(v);
        cache.insert(op.id.clone(), v.clone());
        Ok(v)
    }

    /// Checks one request: (method, path with query, body as sent).
    pub fn check(&self, method: &str, path_and_query: &str, body: &str, report: &mut Report) {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let Some(op) = self.operation(method, path) else {
            report.problems.push(format!("{method} {path}: no operation of GitHub's API has this method and path"));
            return;
        };
        let at = format!("{method} {path_and_query} ({})", op.id);
        *report.checked.entry(op.id.clone()).or_default() += 1;

        // Path parameters: integers are integers.
        let actual: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for (seg, value) in op.segs.iter().zip(&actual) {
            if let Seg::Param(name) = seg
                && let Some((_, _, schema, _)) = op.params.iter().find(|(n, l, _, _)| n == name && l == "path")
                && let Some(problem) = check_scalar(schema, &percent_decode(value))
            {
                report.problems.push(format!("{at}: path parameter `{name}` {problem}"));
            }
        }
        // Query parameters: each one the operation has, with a value its schema allows.
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name);
            match op.params.iter().find(|(n, l, _, _)| *n == name && l == "query") {
                None => report.problems.push(format!("{at}: the operation has no query parameter `{name}`")),
                Some((_, _, schema, _)) => {
                    if let Some(problem) = check_scalar(schema, &percent_decode(&value.replace('+', " "))) {
                        report.problems.push(format!("{at}: query parameter `{name}` {problem}"));
                    }
                }
            }
        }
        for (name, location, _, required) in &op.params {
            if *required && location == "query" && !query.split('&').any(|p| p.split('=').next() == Some(name)) {
                report.problems.push(format!("{at}: the required query parameter `{name}` is missing"));
            }
        }

        let sent = !body.trim().is_empty();
        match (&op.body, sent) {
            (None, false) => {}
            (None, true) if op.other_body => {}
            (None, true) => {
                // `{}` is what some clients send for "no body"; anything else is ignored by GitHub.
                if serde_json::from_str::<Value>(body).ok() != Some(json!({})) {
                    report.problems.push(format!("{at}: sends a body, the operation takes none"));
                }
            }
            (Some((true, _)), false) => report.problems.push(format!("{at}: the operation requires a body, none sent")),
            (Some(_), false) => {}
            (Some((_, schema)), true) => {
                let instance: Value = match serde_json::from_str(body) {
                    Ok(v) => v,
                    Err(e) => {
                        report.problems.push(format!("{at}: the body is not JSON: {e}"));
                        return;
                    }
                };
                let validator = match self.validator(op) {
                    Ok(v) => v,
                    Err(e) => {
                        report.problems.push(format!("{at}: {e}"));
                        return;
                    }
                };
                for error in validator.iter_errors(&instance) {
                    report.problems.push(format!("{at}: body at `{}`: {error}", error.instance_path()));
                }
                let mut unknown = Vec::new();
                unknown_properties(schema, &instance, "", &mut unknown);
                for p in unknown {
                    report.problems.push(format!("{at}: body property `{p}` is not in the operation's schema"));
                }
                *report.bodies.entry(op.id.clone()).or_default() += 1;
            }
        }
    }
}

fn segments(template: &str) -> Vec<Seg> {
    template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Seg::Param(name.to_owned()),
            None => Seg::Lit(s.to_owned()),
        })
        .collect()
}

/// `Some(greedy)` when `segs` matches `actual`; `greedy` when the last parameter took several
/// segments.
fn match_segments(segs: &[Seg], actual: &[&str]) -> Option<bool> {
    let fits = |n: usize| {
        segs.iter().zip(actual).take(n).all(|(s, a)| match s {
            Seg::Lit(l) => l == a,
            Seg::Param(_) => !a.is_empty(),
        })
    };
    if segs.len() == actual.len() && fits(segs.len()) {
        return Some(false);
    }
    if matches!(segs.last(), Some(Seg::Param(_))) && actual.len() > segs.len() && fits(segs.len()) {
        return Some(true);
    }
    None
}

/// A path or query value against its parameter's schema (type and enum).
fn check_scalar(schema: &Value, value: &str) -> Option<String> {
    let ty = schema["type"].as_str().unwrap_or("string");
    let ok = match ty {
        "integer" => value.parse::<i64>().is_ok(),
        "number" => value.parse::<f64>().is_ok(),
        "boolean" => value == "true" || value == "false",
        _ => true,
    };
    if !ok {
        return Some(format!("`{value}` is not of type {ty}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.iter().any(|a| a.as_str() == Some(value) || a.as_i64().is_some_and(|n| value.parse() == Ok(n)))
    {
        return Some(format!("`{value}` is not one of {}", Value::Array(allowed.clone())));
    }
    None
}

/// `v` with every `$ref` (a local JSON pointer) replaced by what it points at. A reference met
/// again while inlining itself becomes `{}`.
fn resolve(doc: &Value, v: &Value, stack: &mut Vec<String>) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                if stack.iter().any(|s| s == r) {
                    return json!({});
                }
                let Some(target) = r.strip_prefix('#').and_then(|p| doc.pointer(p)) else {
                    return json!({});
                };
                stack.push(r.to_owned());
                let out = resolve(doc, target, stack);
                stack.pop();
                return out;
            }
            Value::Object(m.iter().map(|(k, v)| (k.clone(), resolve(doc, v, stack))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(doc, v, stack)).collect()),
        other => other.clone(),
    }
}

/// An inlined OpenAPI 3.0 schema made a draft 4 JSON Schema: `nullable: true` becomes a `"null"`
/// type (with `null` in its `enum`), or an `anyOf` with `{"type": "null"}` where there is no
/// type; OpenAPI-only keywords are dropped.
fn to_draft4(schema: &mut Value) {
    let Value::Object(m) = schema else { return };
    for key in ["example", "examples", "discriminator", "xml", "externalDocs", "deprecated", "readOnly", "writeOnly"] {
        m.remove(key);
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(to_draft4);
    }
    for key in ["additionalProperties", "items", "not"] {
        if let Some(sub @ Value::Object(_)) = m.get_mut(key) {
            to_draft4(sub);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(subs)) = m.get_mut(key) {
            subs.iter_mut().for_each(to_draft4);
        }
    }
    if m.remove("nullable") == Some(Value::Bool(true)) {
        if let Some(Value::Array(allowed)) = m.get_mut("enum")
            && !allowed.contains(&Value::Null)
        {
            allowed.push(Value::Null);
        }
        match m.get("type").cloned() {
            Some(Value::String(t)) => {
                m.insert("type".into(), json!([t, "null"]));
            }
            _ => {
                let inner = Value::Object(std::mem::take(m));
                m.insert("anyOf".into(), json!([inner, { "type": "null" }]));
            }
        }
    }
}

/// Body properties the schema does not name, where it names its properties and allows no others
/// explicitly (no `additionalProperties`, `patternProperties` or composition).
fn unknown_properties(schema: &Value, instance: &Value, at: &str, out: &mut Vec<String>) {
    let Value::Object(s) = schema else { return };
    if ["allOf", "anyOf", "oneOf", "additionalProperties", "patternProperties"].iter().any(|k| s.contains_key(*k)) {
        return;
    }
    match (s.get("properties"), instance) {
        (Some(Value::Object(props)), Value::Object(fields)) => {
            for (k, v) in fields {
                let here = format!("{at}/{k}");
                match props.get(k) {
                    Some(sub) => unknown_properties(sub, v, &here, out),
                    None => out.push(here),
                }
            }
        }
        _ => {
            if let (Some(items), Value::Array(values)) = (s.get("items"), instance) {
                for (i, v) in values.iter().enumerate() {
                    unknown_properties(items, v, &format!("{at}/{i}"), out);
                }
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A small description in GitHub's shape, for the checker's own tests.
pub fn sample() -> Description {
    Description::parse(
        &json!({
            "openapi": "3.0.3",
            "info": { "version": "test" },
            "components": {
                "schemas": {
                    "node": { "type": "object", "properties": { "child": { "$ref": "#/components/schemas/node" } } }
                },
                "parameters": { "per-page": { "name": "per_page", "in": "query", "schema": { "type": "integer" } } }
            },
            "paths": {
                "/repos/{owner}/{repo}/check-runs/{check_run_id}": {
                    "patch": {
                        "operationId": "checks/update",
                        "parameters": [{ "name": "check_run_id", "in": "path", "required": true, "schema": { "type": "integer" } }],
                        "requestBody": { "required": true, "content": { "application/json": { "schema": {
                            "type": "object",
                            "properties": {
                                "status": { "type": "string", "enum": ["queued", "completed"] },
                                "details_url": { "type": "string", "nullable": true },
                                "tree": { "$ref": "#/components/schemas/node" }
                            }
                        } } } }
                    }
                },
                "/repos/{owner}/{repo}/git/refs/{ref}": {
                    "patch": { "operationId": "git/update-ref", "requestBody": { "required": true, "content": { "application/json": {
                        "schema": { "type": "object", "properties": { "sha": { "type": "string" } }, "required": ["sha"] } } } } }
                },
                "/repos/{owner}/{repo}/git/refs": {
                    "get": { "operationId": "git/list", "parameters": [{ "$ref": "#/components/parameters/per-page" }] }
                }
            }
        })
        .to_string(),
    )
    .expect("the sample description")
}

#[cfg(test)]
mod self_tests {
    use super::*;

    fn problems(method: &str, path: &str, body: &str) -> Vec<String> {
        let mut r = Report::default();
        sample().check(method, path, body, &mut r);
        r.problems
    }

    #[test]
    fn a_valid_body_passes_and_a_null_is_allowed_where_nullable() {
        assert_eq!(
            problems("PATCH", "/repos/a/b/check-runs/7", r#"{"status":"queued","details_url":null}"#),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_wrong_value_an_unknown_field_and_a_missing_required_one_are_found() {
        assert_eq!(problems("PATCH", "/repos/a/b/check-runs/7", r#"{"status":"done"}"#).len(), 1);
        let p =
            problems("PATCH", "/repos/a/b/check-runs/7", r#"{"status":"queued","colour":"red","tree":{"child":{}}}"#);
        assert!(p.len() == 1 && p[0].contains("`/colour`"), "{p:?}");
        assert_eq!(problems("PATCH", "/repos/a/b/git/refs/heads/x/y", "{}").len(), 1, "sha is required");
        assert!(problems("PATCH", "/repos/a/b/check-runs/x", "{}")[0].contains("check_run_id"));
        assert!(problems("PATCH", "/repos/a/b/check-runs/7", "")[0].contains("requires a body"));
    }

    #[test]
    fn paths_and_query_parameters_are_matched() {
        assert!(problems("GET", "/repos/a/b/git/refs?per_page=100", "").is_empty());
        assert_eq!(problems("GET", "/repos/a/b/git/refs?per_page=all", "").len(), 1);
        assert_eq!(problems("GET", "/repos/a/b/git/refs?perpage=1", "").len(), 1);
        assert!(problems("DELETE", "/repos/a/b/git/refs", "")[0].contains("no operation"));
    }
}
