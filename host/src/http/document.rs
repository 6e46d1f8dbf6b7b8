//! The OpenAPI document as served: what utoipa derives, completed where derivation falls short.
//!
//! Two things cannot be said in the annotations without repeating them on every operation or
//! without lying: the problems every operation can answer (a bad key, a wrong role, a body that
//! is not JSON ...), and the shape of structs with `#[serde(flatten)]` fields. utoipa writes
//! the latter as `allOf` of the parts, and a part that forbids extra properties (a type with
//! `deny_unknown_fields`) then forbids the other parts' properties too, so no value satisfies
//! the whole. Both are settled here, once, over the derived document.

use serde_json::{Map, Value, json};

use super::error::PROBLEM;

/// The longest request target (path and query) the service reads; longer ones answer 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The derived document, made exact: `allOf` of objects merged into one object, and the
/// problems every operation may answer listed on each.
pub fn finish(api: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(api).expect("the derived document is plain data");
    merge_all_of(&mut doc);
    add_common_problems(&mut doc);
    doc
}

fn merge_all_of(doc: &mut Value) {
    // Components first, one at a time, so that a reference always meets a merged schema.
    let names: Vec<String> = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| schemas.keys().cloned().collect())
        .unwrap_or_default();
    for name in names {
        let pointer = format!(
            "/components/schemas/{}",
            name.replace('~', "~0").replace('/', "~1")
        );
        let Some(mut schema) = doc.pointer(&pointer).cloned() else {
            continue;
        };
        merge_within(&mut schema, doc, 0);
        if let Some(slot) = doc.pointer_mut(&pointer) {
            *slot = schema;
        }
    }
    if let Some(mut paths) = doc.get("paths").cloned() {
        merge_within(&mut paths, doc, 0);
        doc["paths"] = paths;
    }
}

/// Merges every `allOf` found in `node` and below; `doc` resolves references.
fn merge_within(node: &mut Value, doc: &Value, depth: usize) {
    match node {
        Value::Object(map) => {
            for child in map.values_mut() {
                merge_within(child, doc, depth);
            }
            if let Some(merged) = merged_all_of(map, doc, depth) {
                *map = merged;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| merge_within(i, doc, depth)),
        _ => {}
    }
}

/// One object schema for `{"allOf": [...]}` when every part is an object schema; `None`
/// (leave it as it is) when a part is something else.
fn merged_all_of(
    schema: &Map<String, Value>,
    doc: &Value,
    depth: usize,
) -> Option<Map<String, Value>> {
    let parts = schema.get("allOf")?.as_array()?;
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    // serde refuses a field no part knows as soon as one part denies unknown fields, and
    // writes exactly the parts' fields; a part that is a map opens the whole again.
    let (mut closed, mut open) = (false, false);
    let mut description = None;
    for part in parts {
        let part = object_part(part, doc, depth)?;
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            properties.extend(props.clone());
        }
        for name in part
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
        match part.get("additionalProperties") {
            Some(Value::Bool(false)) => closed = true,
            Some(_) => open = true,
            None => {}
        }
        description = description.or_else(|| part.get("description").cloned());
    }
    let mut merged: Map<String, Value> = schema
        .iter()
        .filter(|(key, _)| key.as_str() != "allOf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    merged.insert("type".into(), json!("object"));
    merged.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        merged.insert("required".into(), Value::Array(required));
    }
    if closed && !open {
        merged.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(description) = description {
        merged.entry("description").or_insert(description);
    }
    Some(merged)
}

/// A part of an `allOf`, references followed, if it is a plain object schema.
fn object_part(part: &Value, doc: &Value, depth: usize) -> Option<Map<String, Value>> {
    // Reference chains are short; the bound only stops a cycle.
    if depth > 16 {
        return None;
    }
    let mut part = match part.get("$ref").and_then(Value::as_str) {
        Some(reference) => doc.pointer(reference.strip_prefix('#')?)?.clone(),
        None => part.clone(),
    };
    merge_within(&mut part, doc, depth + 1);
    let map = part.as_object()?;
    let plain = ["oneOf", "anyOf", "allOf", "$ref"]
        .iter()
        .all(|k| !map.contains_key(*k));
    let object = map.get("type") == Some(&json!("object")) || map.contains_key("properties");
    (plain && object).then(|| map.clone())
}

/// The problems an operation can answer besides its own: described once in
/// `components/responses`, referenced from each operation they apply to that does not list
/// them itself.
const PROBLEMS: &[(u16, &str, &str)] = &[
    (
        400,
        "BadRequest",
        "A path or query parameter, a header or the JSON syntax of the body is not what this operation takes; `detail` says what to send",
    ),
    (
        401,
        "Unauthorized",
        "No API key, or one that is malformed, unknown or revoked: send `Authorization: Bearer <key>` once",
    ),
    (
        403,
        "Forbidden",
        "The key's role may not call this operation; the roles that may are the scopes of its `api_key` requirement",
    ),
    (
        413,
        "PayloadTooLarge",
        "The body is larger than the service accepts",
    ),
    (
        414,
        "UriTooLong",
        "The path and query are longer than 8 KiB (past 64 KiB of request line, the \
         connection answers it and closes)",
    ),
    (
        415,
        "UnsupportedMediaType",
        "The body is not of the content type this operation takes",
    ),
    (
        422,
        "UnprocessableContent",
        "The body does not have the documented shape, or a value breaks a rule; `errors` names each field",
    ),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every role there is; an operation open to all of them never answers 403.
const ALL_ROLES: &[&str] = &["admin", "staff", "advertiser"];

fn add_common_problems(doc: &mut Value) {
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        let responses = components.entry("responses").or_insert_with(|| json!({}));
        for (_, name, description) in PROBLEMS {
            responses[*name] = json!({
                "description": description,
                "content": { PROBLEM: { "schema": { "$ref": "#/components/schemas/Problem" } } },
            });
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for (method, operation) in item.iter_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let answers = common_answers(operation);
            let Some(listed) = operation
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
            else {
                continue;
            };
            for (status, name, _) in PROBLEMS.iter().filter(|(s, ..)| answers.contains(s)) {
                listed
                    .entry(status.to_string())
                    .or_insert_with(|| json!({ "$ref": format!("#/components/responses/{name}") }));
            }
        }
    }
}

/// The statuses of `PROBLEMS` that this operation can answer, from what it takes.
fn common_answers(operation: &Map<String, Value>) -> Vec<u16> {
    let mut answers = vec![414];
    let has_parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    if has_parameters {
        answers.push(400);
    }
    let scopes: Vec<&str> = operation
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|requirement| requirement.get("api_key")?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !scopes.is_empty() {
        answers.push(401);
        if !ALL_ROLES.iter().all(|role| scopes.contains(role)) {
            answers.push(403);
        }
    }
    if let Some(content) = operation
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
    {
        answers.extend([400, 413, 415]);
        if content.contains_key("application/json") {
            answers.push(422);
        }
    }
    answers
}
